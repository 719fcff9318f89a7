"""The words of one language that the rules need, as data: ``prompts/language_<code>.toml``
(English: ``language_en.toml``), loaded like the prompts and checked on load.

The request rules (:mod:`agent.request`), the word filters (:mod:`agent.words`,
:mod:`agent.vocabulary`) and the explanation checker (:mod:`agent.grounding`,
:mod:`agent.item_text`) read their words from here and build their patterns once
(:func:`request_patterns`); no module lists English words of its own. Only English ships.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

import prompts


def _split(value: object) -> object:
    """A word list may be written as one string of words separated by spaces."""
    return value.split() if isinstance(value, str) else value


Phrase = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^\S(?:.*\S)?$")]
Words = Annotated[frozenset[Phrase], BeforeValidator(_split)]
Phrases = Annotated[list[Phrase], Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RequestWords(_Strict):
    """The cues of :mod:`agent.request` (see the data file for what each one is)."""

    negation: Phrases
    lasting_negation: Phrases
    closed: Phrases
    closed_links: Phrases
    negated_pronoun: Phrases
    boundary: Phrases
    standing: Phrases
    sound: Phrases
    head_end: Phrases
    like: Phrases
    back: Phrases
    different: Phrases
    pronoun: Phrases
    continuation: Phrases
    reference_words: Words
    sound_words: Words
    ordinals: dict[Phrase, int]
    number: Phrase
    max_price: Phrases
    min_price: Phrases
    currency: str = Field(max_length=10)
    cheaper: Phrases
    food_words: Words
    diets: dict[Phrase, Words]


class ExplanationWords(_Strict):
    """The words of the explanation checker (:mod:`agent.grounding`)."""

    connectives: Words
    copula: Phrases
    colours: Words
    sound_words: Words
    stopwords: Words


class Language(_Strict):
    stop: Words
    generic_path_words: Words
    request: RequestWords
    explanations: ExplanationWords


class LanguageError(ValueError):
    """A language file is missing or malformed (names the file and the problem)."""


@cache
def language(code: str = "en") -> Language:
    """The checked words of language ``code`` (cached: read once per process)."""
    if not re.fullmatch(r"[a-z]{2,3}", code):
        raise LanguageError(f"language code {code!r}: expected two or three lower-case letters")
    filename = f"language_{code}.toml"
    try:
        raw = tomllib.loads(prompts.load_text(filename))
    except FileNotFoundError as exc:
        raise LanguageError(f"no words for language {code!r}: {filename} is missing") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LanguageError(f"{filename}: {exc}") from exc
    try:
        return Language.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise LanguageError(f"{filename}: {problems}") from exc


def any_of(phrases: Iterable[str]) -> str:
    """A non-capturing alternation matching any of ``phrases`` as written, longest first (so
    "never show me" wins over "never" at the same place)."""
    ordered = sorted(set(phrases), key=lambda p: (-len(p), p))
    return "(?:" + "|".join(re.escape(p) for p in ordered) + ")"


def whole(phrases: Iterable[str]) -> str:
    """``any_of`` as whole words."""
    return rf"\b{any_of(phrases)}\b"


def _links(links: Iterable[str]) -> str:
    """Words that link a topic to "done": one that starts with an apostrophe ("'s") is
    written onto the word before, any other follows a space."""
    return "|".join(
        re.escape(link) if link.startswith("'") else rf"\s+{re.escape(link)}"
        for link in sorted(set(links), key=lambda p: (-len(p), p))
    )


@dataclass(frozen=True)
class RequestPatterns:
    """The compiled cues of the request rules for one language."""

    words: RequestWords
    negation: re.Pattern[str]
    closed: re.Pattern[str]  # group "topic": the word before "… is done", at a clause's end
    negated_pronoun: re.Pattern[str]  # "skip them": what the sentence named before is negated
    boundary: re.Pattern[str]
    standing: re.Pattern[str]
    sound: re.Pattern[str]
    head_end: re.Pattern[str]
    like: re.Pattern[str]
    back: re.Pattern[str]  # group "what": the rest of the clause
    different: re.Pattern[str]
    pronoun_follow_up: re.Pattern[str]
    ordinal: re.Pattern[str]  # group 1: an ordinal word, group 2: a digit after "number"
    max_price: re.Pattern[str]  # group 1: the amount
    min_price: re.Pattern[str]
    cheaper: re.Pattern[str]
    diets: dict[str, re.Pattern[str]]
    sound_stems: frozenset[str]  # stems of ``words.sound_words``
    food_stems: frozenset[str]  # stems of ``words.food_words``


@cache
def request_patterns(code: str = "en") -> RequestPatterns:
    from agent.words import stem  # agent.words reads its stop words from here

    w = language(code).request
    currency = f"[{re.escape(w.currency)}]?" if w.currency else ""
    amount = rf"\s*{currency}\s*(\d+(?:\.\d+)?)"
    ordinals = "|".join(re.escape(o) for o in sorted(w.ordinals, key=lambda o: (-len(o), o)))
    return RequestPatterns(
        words=w,
        negation=re.compile(whole(w.negation)),
        closed=re.compile(
            rf"(?<![\w-])(?P<topic>[\w-]+)(?:{_links(w.closed_links)})\s+{any_of(w.closed)}\b"
            r"(?=\s*(?:[.,;:!?]|$))"
        ),
        negated_pronoun=re.compile(whole(w.negated_pronoun)),
        boundary=re.compile(rf"[.;:!?,()]|{whole(w.boundary)}"),
        standing=re.compile(whole(w.standing)),
        sound=re.compile(whole(w.sound)),
        head_end=re.compile(whole(w.head_end)),
        like=re.compile(whole(w.like)),
        back=re.compile(rf"{whole(w.back)}(?P<what>[^.;!?]*)"),
        different=re.compile(whole(w.different)),
        pronoun_follow_up=re.compile(rf"{whole(w.pronoun)}|^{any_of(w.continuation)}\b"),
        ordinal=re.compile(rf"\b({ordinals})\b|\b{re.escape(w.number)} (\d)\b"),
        max_price=re.compile(rf"\b{any_of(w.max_price)}{amount}"),
        min_price=re.compile(rf"\b{any_of(w.min_price)}{amount}"),
        cheaper=re.compile(whole(w.cheaper)),
        diets={diet: re.compile(rf"\b{re.escape(diet)}\b") for diet in w.diets},
        sound_stems=frozenset(stem(x) for x in w.sound_words),
        food_stems=frozenset(stem(x) for x in w.food_words),
    )
