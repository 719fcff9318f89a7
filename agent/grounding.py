"""Grounded explanations: each cites the item fields it used; a checker rejects or repairs
explanations that name other items or claim facts the item does not have.

Checks, per explanation:

* the item is one of the candidates (else the explanation is rejected outright);
* every cited field exists on the item and is not empty;
* sentences naming another catalogue item (by title) are removed;
* sentences with a number, a colour or a sound claim that the item's own facts do not contain
  are removed;
* with the request's words given (the agent's turn): tautologies ("Bull is a bull.") and
  sentences attributing a word that neither the facts nor the request hold ("Cow is a sweet
  animal.") are removed.

What survives is kept; if nothing does, a template explanation built only from the item's
fields replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from agent.item_text import connectives, item_fields, sentences, tautology
from agent.language import language
from agent.wording import from_facts
from agent.words import content_words, stem, stems

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_WORD = re.compile(r"[a-z]+")


class Explanation(BaseModel):
    """One explanation as the LLM writes it (JSON-schema structured output)."""

    item_id: str
    text: str = Field(max_length=600)
    cited_fields: list[str] = Field(default_factory=list)


@dataclass
class Checked:
    item_id: str
    text: str
    cited_fields: list[str]
    source: str  # "llm", "llm-repaired" or "template"
    problems: list[str] = field(default_factory=list)


def _supported(sentence: str, corpus: str, has_audio: bool) -> str | None:
    """Why ``sentence`` claims something the item's facts do not hold, or None."""
    lowered = sentence.lower()
    for number in _NUMBER.findall(lowered):
        if number not in corpus:
            return f"number {number} is not in the item's facts"
    said = language().explanations
    words = set(_WORD.findall(lowered))
    for colour in words & said.colours:
        if colour not in corpus:
            return f"colour '{colour}' is not in the item's facts"
    if (
        words & said.sound_words
        and not has_audio
        and not words & said.sound_words <= set(_WORD.findall(corpus))
    ):
        return "claims a sound the item does not have"
    return None


@dataclass(frozen=True)
class Claim:
    sentence: str
    problem: str | None  # None: supported by the item's fields


def _others(facts: Mapping[str, Any], corpus: str, titles: Collection[str]) -> list[str]:
    own = str(facts.get("title", "")).lower()
    return [t for t in titles if len(t) >= 3 and t.lower() != own and t.lower() not in corpus]


def _names(sentence: str, titles: list[str]) -> str | None:
    lowered = sentence.lower()
    return next((t for t in titles if re.search(rf"\b{re.escape(t.lower())}\b", lowered)), None)


def claims(
    text: str,
    facts: Mapping[str, Any],
    catalogue_titles: Collection[str] = (),
    content_word: bool = True,
) -> list[Claim]:
    """Each sentence of ``text`` with why it is unsupported, or None when the item's fields back
    it: it names no other item, claims no number, colour or sound the facts lack, and (with
    ``content_word``) shares at least one content word (4+ letters, not a stopword) with them.
    The explanation checker uses it without ``content_word``; the judge's metrics with it."""
    fields = item_fields(facts)
    corpus = " ".join(fields.values()).lower()
    corpus_words = set(_WORD.findall(corpus))
    others = _others(facts, corpus, catalogue_titles)
    has_audio = bool(facts.get("transcript")) or bool(facts.get("has_audio"))
    out = []
    for sentence in sentences(text):
        if not sentence:
            continue
        named = _names(sentence, others)
        problem = f"names another item: {named!r}" if named else None
        problem = problem or _supported(sentence, corpus, has_audio)
        if problem is None and content_word:
            words = {w for w in _WORD.findall(sentence.lower()) if len(w) >= 4}
            words -= language().explanations.stopwords
            if not words & corpus_words:
                problem = "shares no content word with the item's facts"
        out.append(Claim(sentence, problem))
    return out


def unsupported_words(sentence: str, facts: Mapping[str, Any], asked: str = "") -> list[str]:
    """Words the sentence attributes to the item that neither its facts nor the request (the
    computed reasons' words) contain: "sweet" in "Cow is a sweet animal"."""
    corpus = " ".join(item_fields(facts).values())
    known = set(stems(corpus)) | set(stems(asked)) | connectives()
    return [w for w in content_words(sentence) if len(w) >= 3 and stem(w) not in known]


def _says_more(sentence: str, facts: Mapping[str, Any], asked: str) -> str | None:
    """Why a sentence that passed :func:`claims` still says nothing, or too much: a tautology,
    or words neither the facts nor the computed reasons (``asked``) hold."""
    if tautology(sentence, facts):
        return "a tautology: it only repeats the item's name"
    extra = unsupported_words(sentence, facts, asked)
    if extra:
        return f"attributes {', '.join(repr(w) for w in extra[:3])}, which the facts do not say"
    return None


def supported(
    sentence: str,
    facts: Mapping[str, Any],
    asked: str,
    catalogue_titles: Collection[str] = (),
) -> str | None:
    """Why a sentence of an explanation is not backed by the item's facts or the computed
    reasons (``asked``: the request's words they matched), or None when it is."""
    found = claims(sentence, facts, catalogue_titles, content_word=False)
    problem = next((c.problem for c in found if c.problem), None)
    return problem or _says_more(sentence, facts, asked)


def check(
    explanation: Explanation,
    candidates: Mapping[str, Mapping[str, Any]],
    catalogue_titles: Collection[str] = (),
    asked: str | None = None,
) -> Checked:
    """The explanation with its unsupported sentences removed (a template when none is left).
    With ``asked`` (the request's words), tautologies and words the facts do not back are
    removed too."""
    facts = candidates.get(explanation.item_id)
    if facts is None:
        raise ValueError(f"explanation for {explanation.item_id!r}, which is not a candidate")
    fields = item_fields(facts)
    problems = [
        f"cites missing field {name!r}" for name in explanation.cited_fields if name not in fields
    ]
    cited = [name for name in explanation.cited_fields if name in fields]
    found = claims(explanation.text, facts, catalogue_titles, content_word=False)
    if asked is not None:
        found = [
            Claim(c.sentence, c.problem or _says_more(c.sentence, facts, asked)) for c in found
        ]
    problems += [c.problem for c in found if c.problem]
    kept = [c.sentence for c in found if c.problem is None]
    if not kept or not cited:
        if not cited:
            problems.append("cites no field of the item")
        text, used = from_facts(facts)
        return Checked(explanation.item_id, text, used, "template", problems)
    source = "llm" if not problems else "llm-repaired"
    return Checked(explanation.item_id, " ".join(kept), cited, source, problems)
