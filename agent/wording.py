"""Every fixed sentence the agent writes: the reply's opening line, the template explanation
from the computed reasons, and the one from the item's fields alone. The words themselves live
in ``prompts/wording.toml``; this module only fills them in. The LLM's phrasing, when on, is
checked against the same facts and reasons (:mod:`agent.grounding`) and replaced by these when
rejected."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import prompts
from agent.item_text import item_fields, sentences, tautology
from agent.reasons import Reason
from agent.vocabulary import generic, item_path
from agent.words import name_words, stems

CITED_BY_REASON = {"kind": "attributes.subcategory", "sound": "audio", "like": "title"}


@cache
def _wording() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = tomllib.loads(prompts.load_text("wording.toml"))
    return loaded


def say(section: str, key: str, **values: Any) -> str:
    """The sentence ``section.key`` of the wording file with ``values`` filled in."""
    return _wording()[section][key].format(**values)


def intro(titles: Sequence[str]) -> str:
    """The reply's first sentence: the picks by name."""
    if not titles:
        return say("intro", "none")
    if len(titles) == 1:
        return say("intro", "one", title=titles[0])
    return say("intro", "many", count=len(titles), titles=", ".join(titles[:-1]), last=titles[-1])


def reason(found: Reason, kind_said: bool = False) -> str:
    """One computed reason in words; ``kind_said``: the opening already named the kind."""
    if found.field == "kind":
        return say("reason", "kind_said" if kind_said else "kind", **_parts(found))
    key = found.field if found.field in {"sound", "like", "title", "caption"} else "field"
    return say("reason", key, **_parts(found))


def _parts(found: Reason) -> dict[str, str]:
    return {"asked": found.asked, "field": found.field, "value": found.value}


def from_reasons(
    facts: Mapping[str, Any],
    found: Sequence[Reason],
) -> tuple[str, list[str]]:
    """The template explanation: what the item is (its own description, unless that only
    repeats its name) and why it was picked. Returns the text and the fields it cites."""
    title = str(facts.get("title") or "This item")
    description = str(facts.get("description") or "").strip()
    first = sentences(description)[0].rstrip(".") if description else ""
    cited = ["title"]
    found = list(found[:3])
    title_stems = set(stems(title))
    kinds = [
        " ".join(name_words(p)) for p in reversed(item_path(facts).split("/")) if not generic(p)
    ]
    kind = next((k for k in kinds if k and not set(stems(k)) <= title_stems), "")
    if found and all(r.field == "title" for r in found) and kind:
        # "its name says penguin" alone only repeats the name: say what kind of item it is
        found.insert(0, Reason(found[0].asked, "kind", kind))
    if first:
        opening = say("explanation", "opening", title=title, first=first)
    else:
        opening = say("explanation", "opening_bare", title=title)
    kind_said = False
    if first and not tautology(opening, facts):  # a description that says something
        cited.append("description")
    elif kind:
        opening = say("explanation", "opening_kind", title=title, kind=kind)
        kind_said = True
        cited.append("attributes.subcategory")
    because = say("explanation", "joiner").join(reason(r, kind_said) for r in found)
    text = say("explanation", "because", opening=opening, because=because) if because else opening
    for r in found:
        field = CITED_BY_REASON.get(r.field, r.field)
        if field not in cited:
            cited.append(field)
    return text, cited


def from_facts(facts: Mapping[str, Any], extra: str = "") -> tuple[str, list[str]]:
    """An explanation built only from the item's own fields, and the fields it used; ``extra``
    is appended as it is."""
    fields = item_fields(facts)
    title = fields.get("title", "This item")
    used = ["title"]
    if "description" in fields:
        first = sentences(fields["description"])[0].rstrip(".")
        text = say("facts", "description", title=title, first=first)
        used.append("description")
    else:
        text = say("facts", "bare", title=title)
    if "category" in fields:
        text += say("facts", "category", category=fields["category"])
        used.append("category")
    if "transcript" in fields:
        text += say("facts", "transcript", transcript=fields["transcript"])
        used.append("transcript")
    if extra:
        text += f" {extra}"
    return text, used
