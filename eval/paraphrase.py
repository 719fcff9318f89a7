"""The paraphrase bar: a request asked in other words should do as well as when first asked.

The set's paraphrase slice holds groups of one-turn conversations (``group``: "p07"), the same
request in three phrasings (ids "p07a", "p07b", "p07c": "a" was written first). The gap is the
mean precision@5 of the first phrasings minus that of the others (the bar: at most 0.05)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

GAP_BAR = 0.05


def paraphrase_gap(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``{"groups", "first", "others", "gap"}`` over the paraphrase turns of ``records`` (one
    system, one half, ordered by conversation id, so a group's first phrasing comes first);
    empty when there are none."""
    firsts: dict[str, float] = {}
    others: list[float] = []
    for record in records:
        group = record.get("group")
        if record.get("slice") != "paraphrase" or not group:
            continue
        if group not in firsts:
            firsts[group] = record["precision"]
        else:
            others.append(record["precision"])
    if not firsts or not others:
        return {}
    first, rest = statistics.fmean(firsts.values()), statistics.fmean(others)
    return {
        "groups": len(firsts),
        "first": round(first, 4),
        "others": round(rest, 4),
        "gap": round(first - rest, 4),
    }
