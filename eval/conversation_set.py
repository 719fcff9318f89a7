"""The labelled multi-turn conversation set over the Tux Paint demo catalogue.

The set lives beside this module as package data (``eval/conversations/dev.jsonl`` and
``test.jsonl``, one conversation per line; ``eval/conversations/README.md`` describes it). Each
user turn carries one slice (what it tests), the id prefixes of the items a person would accept
(``relevant``), the prefixes that must not appear in the top results (``forbidden``) and whether
only items with a sound effect count (``needs_sound``). An item matches a prefix when its id
starts with it: ``food/`` is a category, ``animals/mammals/`` a subcategory, a full id one item.

Tune on ``dev`` only; ``test`` is for the final numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from importlib.resources import files
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tools.errors import InputError

Slice = Literal[
    "plain",
    "topic_shift",
    "negation",
    "modality",
    "world_knowledge",
    "reference",
    "standing",
    "paraphrase",  # one request in three phrasings: a group of one-turn conversations
    "knowledge",  # needs what the catalogue does not say: looks, habitat, use, users, occasion
]
SLICES: tuple[str, ...] = get_args(Slice)
HALVES: tuple[str, ...] = ("dev", "test")


def matches(item_id: str, prefixes: Iterable[str]) -> bool:
    """Whether ``item_id`` starts with any of ``prefixes``."""
    return any(item_id.startswith(prefix) for prefix in prefixes)


def _check_prefixes(value: list[str]) -> list[str]:
    for prefix in value:
        if not prefix or prefix != prefix.strip() or any(ch.isspace() for ch in prefix):
            raise ValueError(f"an id prefix must be a non-empty string without spaces: {prefix!r}")
    return value


class LabelledTurn(BaseModel):
    """One user turn and what a correct top-5 answer to it looks like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(min_length=1)
    slice: Slice
    relevant: list[str] = Field(min_length=1)
    forbidden: list[str] = Field(default_factory=list)
    needs_sound: bool = False
    note: str = ""

    @field_validator("user")
    @classmethod
    def _user_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the user text is blank")
        return value

    @field_validator("relevant", "forbidden")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        return _check_prefixes(value)

    def is_relevant(self, item_id: str, has_sound_effect: bool = False) -> bool:
        """Whether an item counts as relevant (with a sound effect when the turn needs one)."""
        if self.needs_sound and not has_sound_effect:
            return False
        return matches(item_id, self.relevant)

    def is_forbidden(self, item_id: str) -> bool:
        """Whether an item must not appear in the top results."""
        return matches(item_id, self.forbidden)


class LabelledConversation(BaseModel):
    """A conversation: its turns are asked in order, each with the earlier turns as context."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    title: str = ""
    group: str = ""  # the paraphrase group ("p07"): the same request, phrased differently
    turns: list[LabelledTurn] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the conversation id is blank")
        return value


def number(conversation: LabelledConversation) -> int:
    """The number that decides a conversation's half: its group's, else its id's (odd: dev)."""
    digits = re.search(r"\d+", conversation.group or conversation.id)
    if digits is None:
        raise InputError(f"conversation {conversation.id!r} has no number in its id or group")
    return int(digits.group())


def load_set(half: str) -> list[LabelledConversation]:
    """The conversations of one half (``dev`` or ``test``), in file order."""
    if half not in HALVES:
        raise InputError(f"unknown conversation set half {half!r}: use one of {', '.join(HALVES)}")
    resource = files("eval") / "conversations" / f"{half}.jsonl"
    try:
        text = resource.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the conversation set {resource}: {exc}") from exc
    conversations: list[LabelledConversation] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{resource}, line {lineno}"
        try:
            conversation = LabelledConversation.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg})") from exc
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'row'}: {error['msg']}"
                for error in exc.errors()
            )
            raise InputError(f"{where}: {problems}") from exc
        if conversation.id in seen:
            raise InputError(f"{where}: duplicate conversation id {conversation.id!r}")
        seen.add(conversation.id)
        conversations.append(conversation)
    return conversations
