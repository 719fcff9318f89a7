"""An item's facts as text: its citable fields, sentences, and the test for a sentence that
only repeats the item's name. Shared by the explanation checker (:mod:`agent.grounding`) and the
wording of template explanations (:mod:`agent.wording`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from agent.language import language, whole
from agent.words import stem, stems

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def item_fields(facts: Mapping[str, Any]) -> dict[str, str]:
    """The citable fields of an item, flattened to text (attributes as ``attributes.NAME``)."""
    out: dict[str, str] = {}
    for key in ("title", "description", "category", "price", "caption", "transcript"):
        value = facts.get(key)
        if value not in (None, "", []):
            out[key] = str(value)
    for name, value in (facts.get("attributes") or {}).items():
        if value not in (None, "", []):
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            out[f"attributes.{name}"] = text
    return out


@cache
def connectives() -> frozenset[str]:
    """Stems of the words an explanation may use about any item: how it connects the item to
    the request ("picked", "because", "matches")."""
    return frozenset(stem(w) for w in language().explanations.connectives)


@cache
def _copula() -> re.Pattern[str]:
    return re.compile(rf"{whole(language().explanations.copula)}|:")


def tautology(sentence: str, facts: Mapping[str, Any]) -> bool:
    """A sentence that names its item and defines it by nothing but its name ("Bull is a
    bull.", "Cow: A cow.")."""
    title = set(stems(str(facts.get("title") or "")))
    said = set(stems(sentence)) - connectives()
    copula = _copula().search(sentence.lower()) is not None
    return bool(title) and copula and title <= set(stems(sentence)) and said <= title
