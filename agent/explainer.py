"""The explanation step's parts, shared by the agent and the judge evaluation: which facts an
explanation may use, the prompt, the JSON schema (item ids constrained to the candidates), and
the grounding check of what comes back."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

import prompts
from agent.grounding import Checked, Explanation, check
from agent.item_text import item_fields
from agent.words import content_words, stem, stems


def explainable(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Facts worth explaining with: a pixel-statistics caption describes colours and shape only,
    and the small model then explains nothing but that, so it is left out; a vision model's
    labels are given as what the picture looks like (``caption`` says so), not as a fact."""
    skip = {"image", "caption_source", "has_image", "has_audio"}
    if facts.get("caption_source") == "pixels":
        skip.add("caption")
    shown = {k: v for k, v in facts.items() if v not in (None, "", [], {}) and k not in skip}
    if "caption" in shown and str(facts.get("caption_source", "")).startswith("vision:"):
        shown["caption"] = f"(what the picture looks like to a vision model) {shown['caption']}"
    return shown


def explanation_schema(ids: Sequence[str]) -> type[BaseModel]:
    """``{"explanations": [{"item_id", "text", "cited_fields"}]}`` with ``item_id`` an enum and
    at most one entry per item (a small model otherwise keeps writing entries until the token
    budget cuts the JSON short)."""
    entry = create_model(
        "ItemExplanation",
        item_id=(Literal[tuple(ids)], ...),  # type: ignore[valid-type,arg-type]
        text=(str, Field(max_length=600)),
        cited_fields=(list[str], Field(default_factory=list)),
    )
    entries = (list[entry], Field(min_length=1, max_length=len(ids)))  # type: ignore[valid-type]
    return create_model("Explanations", explanations=entries)  # type: ignore[call-overload,no-any-return]


def explain_prompt(
    items: Sequence[tuple[str, Mapping[str, Any]]], profile_summary: str, request: str
) -> str:
    listed = [
        {"item": n, "item_id": item_id, **explainable(facts)}
        for n, (item_id, facts) in enumerate(items, start=1)
    ]
    return prompts.render(
        "explain",
        profile_summary=profile_summary or "(unknown)",
        request=request,
        items_json=json.dumps(listed, ensure_ascii=False, indent=1),
    )


class ItemExplanation(BaseModel):
    """One item's explanation as the model writes it (one call per item, so the calls run side
    by side and each answer stays short; which fields it used is computed, not asked)."""

    text: str = Field(max_length=200)


def item_prompt(facts: Mapping[str, Any], profile_summary: str, request: str) -> str:
    """The prompt for one item (the request first, so the items of a turn share the prefix)."""
    return prompts.render(
        "explain_item",
        request=request,
        profile_summary=profile_summary or "(unknown)",
        item_json=json.dumps(explainable(facts), ensure_ascii=False, separators=(",", ":")),
    )


def used_fields(text: str, facts: Mapping[str, Any]) -> list[str]:
    """The item's fields that share a content word with ``text``: what an explanation cites."""
    said = {stem(w) for w in content_words(text) if len(w) >= 3}
    return [name for name, value in item_fields(facts).items() if said & set(stems(value))]


def checked(
    explanations: Sequence[Any],
    facts: Mapping[str, Mapping[str, Any]],
    catalogue_titles: Collection[str] = (),
    asked: Mapping[str, str] | None = None,
) -> dict[str, Checked]:
    """The first explanation per item, each through the grounding check (with ``asked``, item
    id -> the words of its computed reasons, also the tautology and attribute checks)."""
    out: dict[str, Checked] = {}
    for raw in explanations:
        if raw.item_id in out:
            continue
        out[raw.item_id] = check(
            Explanation(item_id=raw.item_id, text=raw.text, cited_fields=raw.cited_fields),
            facts,
            catalogue_titles,
            None if asked is None else asked.get(raw.item_id, ""),
        )
    return out
