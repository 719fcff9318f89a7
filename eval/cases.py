"""Evaluation cases drawn from real ML-100K histories: a user's recent titles, a plain-words
taste summary built from them (no LLM involved), and the held-out next movie with its facts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from eval.movielens import Split
from indexing.schema import Item

HISTORY = 10


@dataclass(frozen=True)
class Case:
    user: str
    history: list[str]  # titles, oldest first
    history_ids: list[str]
    taste: str
    item_id: str
    facts: dict[str, Any]


def facts_of(item: Item) -> dict[str, Any]:
    """An item's citable facts (the shape the agent's explainer gets from the store)."""
    return {
        "title": item.title,
        "description": item.description,
        "category": item.category,
        "attributes": dict(item.attributes),
    }


def label(item: Item) -> str:
    year = item.attributes.get("year")
    return f"{item.title} ({year})" if year else item.title


def taste(items: list[Item]) -> str:
    genres = Counter(g for it in items for g in (it.attributes.get("genres") or []))  # type: ignore[union-attr]
    top = ", ".join(str(g) for g, _ in genres.most_common(3))
    recent = "; ".join(label(it) for it in items[-5:])
    return f"Watches mostly {top or 'all kinds of films'}. Recently watched: {recent}."


def sample_users(split: Split, n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(split.n_users, size=min(n, split.n_users), replace=False)
    return [int(u) for u in chosen]


def ml100k_cases(split: Split, items: dict[str, Item], n: int, seed: int) -> list[Case]:
    """``n`` users (seeded sample); the target is each one's test item."""
    cases = []
    for user in sample_users(split, n, seed):
        history = [items[split.item_ids[i]] for i in split.history(user, "test")]
        target = items[split.item_ids[split.test[user]]]
        cases.append(
            Case(
                user=split.user_ids[user],
                history=[label(it) for it in history[-HISTORY:]],
                history_ids=[it.id for it in history],
                taste=taste(history),
                item_id=target.id,
                facts=facts_of(target),
            )
        )
    return cases
