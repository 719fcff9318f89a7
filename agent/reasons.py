"""Why an item was chosen, computed before any text is written: which words of the request
matched which field of the item (its kind in the taxonomy, title, description, caption,
transcript), the sound effect the user asked for, the earlier pick it is like. The explanation
is then phrased from these reasons, by a template (:mod:`agent.wording`) or by the LLM, and
checked against them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.request_types import Request
from agent.vocabulary import Vocabulary, item_path
from agent.words import content_words, name_words, stem

TEXT_FIELDS = ("title", "description", "transcript", "caption")


@dataclass(frozen=True)
class Reason:
    """The user's words, the item field they matched, and the item's own words there."""

    asked: str
    field: str  # "kind", "title", "description", "transcript", "caption", "sound", "like"
    value: str

    def words(self) -> str:
        return f"{self.asked} {self.value}"


def has_sound_effect(facts: Mapping[str, Any], by_attribute: bool) -> bool:
    """A sound effect: the ``has_sound_effect`` attribute where the catalogue has one, else any
    audio."""
    attributes = facts.get("attributes") or {}
    if by_attribute and isinstance(attributes, dict):
        return bool(attributes.get("has_sound_effect"))
    return bool(facts.get("has_audio"))


def _kind_words(path: str) -> str:
    parts = [p for p in path.split("/")[1:] or path.split("/") if p.lower() != "cartoon"]
    return " ".join(name_words(parts[-1])) if parts else path


def _field_words(facts: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Per text field: stem -> the item's own word."""
    out: dict[str, dict[str, str]] = {}
    for name in TEXT_FIELDS:
        value = facts.get(name)
        if name == "caption" and facts.get("caption_source") == "pixels":
            continue  # colours of the pixels, not what the item is
        if value:
            words: dict[str, str] = {}
            for word in content_words(str(value)):
                words.setdefault(stem(word), word)
            out[name] = words
    return out


def reasons(
    request: Request,
    facts: Mapping[str, Any],
    vocabulary: Vocabulary,
    seed_titles: Mapping[str, str] | None = None,
    like_ids: Sequence[str] = (),
) -> list[Reason]:
    """The reasons ``facts`` fits ``request``, most telling first; no reason is invented: each
    names a word the user (or an expansion of their request) used and the item's own word."""
    found: list[Reason] = []
    path = item_path(facts)
    for applied in request.applied:
        if applied.kind == "target":
            node = vocabulary.node(applied.value)
            if node is not None and node.contains(path):
                asked = applied.words or _kind_words(applied.value)
                found.append(Reason(asked, "kind", _kind_words(path)))
                break
    asked_words = list(
        dict.fromkeys(request.residual + [w for e in request.expansions for w in content_words(e)])
    )
    fields = _field_words(facts)
    used: set[str] = set()
    for word in asked_words:
        key = stem(word)
        if key in used:
            continue
        for name in TEXT_FIELDS:
            if key in fields.get(name, {}):
                found.append(Reason(word, name, fields[name][key]))
                used.add(key)
                break
    if request.needs_sound and has_sound_effect(facts, vocabulary.has_sound_attribute):
        found.append(Reason("a sound", "sound", "sound effect"))
    for item_id in like_ids:
        title = (seed_titles or {}).get(item_id)
        if title:
            found.append(Reason("more like that", "like", title))
            break
    return found
