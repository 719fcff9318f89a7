"""The hand audit of written item facts (`recagent eval audit-sample`, `recagent eval
audit-score`): draw a reproducible sample of one source's stored facts for a person to judge,
then score the judged file.

The sample: the items relevant to at least one turn of a labelled half (the items the
conversations are about), shuffled with a seed; whole items in that order, every fact the source
kept for each, until at least ``facts`` facts are in (so facts of one item come together).

The judged file is the sample with each row's ``true`` set to ``true`` (the fact holds for the
item in real life and says something about it) or ``false`` (wrong, meaningless, or not knowable
from what the source was given), and ``why`` where false. A source whose precision is under
:data:`BAR` stays off by default (README, "Knowledge").
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexing.knowledge import Fact
from tools.errors import InputError

BAR = 0.9  # a source judged less precise than this is not on by default


def draw(
    candidates: Iterable[str],
    facts_of: Callable[[list[str]], Mapping[str, Sequence[Fact]]],
    source: str,
    facts: int,
    seed: int,
) -> list[Fact]:
    """At least ``facts`` facts of ``source`` (fewer only when the candidates run out), whole
    items at a time, the items in a seeded shuffle of ``candidates``."""
    order = sorted(set(candidates))
    random.Random(seed).shuffle(order)
    chosen: list[Fact] = []
    for start in range(0, len(order), 50):
        chunk = order[start : start + 50]
        found = facts_of(chunk)
        for item_id in chunk:
            own = sorted(
                (f for f in found.get(item_id, ()) if f.source == source and f.text.strip()),
                key=lambda f: f.field,
            )
            chosen += own
            if len(chosen) >= facts:
                return chosen
    return chosen


def relevant_items(
    item_ids: Iterable[str], prefixes_per_turn: Iterable[Sequence[str]]
) -> list[str]:
    """The ids relevant to at least one turn (a turn's labels are id prefixes)."""
    prefixes = sorted({p for turn in prefixes_per_turn for p in turn})
    return sorted(i for i in item_ids if any(i.startswith(p) for p in prefixes))


def rows(sample: Sequence[Fact], titles: Mapping[str, str]) -> list[dict[str, Any]]:
    """The sample as the lines of the file to judge (``true`` left ``null``)."""
    return [
        {
            "item_id": f.item_id,
            "title": titles.get(f.item_id, ""),
            "field": f.field,
            "text": f.text,
            "source": f.source,
            "true": None,
            "why": "",
        }
        for f in sample
    ]


@dataclass(frozen=True)
class Score:
    source: str
    facts: int
    true: int
    items: int

    @property
    def precision(self) -> float:
        return self.true / self.facts if self.facts else 0.0

    @property
    def on_by_default(self) -> bool:
        return self.precision >= BAR


def score(path: Path) -> Score:
    """The precision of one judged file; every row must be judged (``true`` a boolean) and all
    rows must come from one source."""
    judged: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}, line {number}: not JSON: {exc.msg}") from exc
        if not isinstance(row, dict) or not isinstance(row.get("true"), bool):
            raise InputError(f'{path}, line {number}: not judged (set "true" to true or false)')
        judged.append(row)
    if not judged:
        raise InputError(f"{path}: no judged facts")
    sources = sorted({str(r.get("source", "")) for r in judged})
    if len(sources) != 1:
        raise InputError(f"{path}: facts of several sources ({', '.join(sources)}): one per file")
    return Score(
        source=sources[0],
        facts=len(judged),
        true=sum(1 for r in judged if r["true"]),
        items=len({str(r.get("item_id")) for r in judged}),
    )
