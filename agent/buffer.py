"""The candidate buffer: every retrieval writes here; the model only ever sees short summaries.

Item ids travel through this shared state, never through the model's text (the pattern of
InteRecAgent's CandidateBuffer), so the model cannot make up an item: whatever it writes, the
recommendations are drawn from ``Candidate`` objects that came out of the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from indexing.records import Hit

SIGNALS = ("text", "image", "labels", "profile", "knowledge", "collab", "feedback")
# labels: a photo's labels against the text; feedback: near a liked item


@dataclass
class Candidate:
    """One catalogue item seen by at least one retrieval, with what each retrieval said of it."""

    id: str
    title: str
    category: str | None
    facts: dict[str, Any]
    ranks: dict[str, int] = field(default_factory=dict)  # source -> 1-based rank
    scores: dict[str, float] = field(default_factory=dict)  # source -> similarity
    kinds: dict[str, str] = field(default_factory=dict)  # source -> signal kind
    # the learned ranker's feature contributions to its collaborative rank (shown by /why)
    explained: dict[str, float] = field(default_factory=dict)
    # what other sources know it as (WordNet's kind and gloss, :mod:`indexing.knowledge`): only
    # checked against the request's exclusions, never shown or cited as a catalogue fact
    known: str = ""


class CandidateBuffer:
    def __init__(self) -> None:
        self._items: dict[str, Candidate] = {}
        self.sources: list[str] = []

    def add(self, source: str, kind: str, hits: Iterable[Hit]) -> list[Candidate]:
        """Record one ranked retrieval under ``source`` (e.g. "text:red shoes")."""
        if kind not in SIGNALS:
            raise ValueError(f"unknown signal kind {kind!r}; expected one of {SIGNALS}")
        if source not in self.sources:
            self.sources.append(source)
        added = []
        for rank, hit in enumerate(hits, start=1):
            candidate = self._items.get(hit.id)
            if candidate is None:
                candidate = Candidate(hit.id, hit.title, hit.category, dict(hit.facts))
                self._items[hit.id] = candidate
            if source not in candidate.ranks:
                candidate.ranks[source] = rank
                candidate.scores[source] = float(hit.score)
                candidate.kinds[source] = kind
            added.append(candidate)
        return added

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, item_id: str) -> Candidate | None:
        return self._items.get(item_id)

    def candidates(self) -> list[Candidate]:
        return list(self._items.values())

    def summary(self, candidates: list[Candidate], limit: int = 8) -> str:
        """What a tool tells the model: titles and categories only, numbered, no ids."""
        if not candidates:
            return "No matching items."
        lines = [
            f"{n}. {c.title} ({c.category or 'uncategorised'})"
            for n, c in enumerate(candidates[:limit], start=1)
        ]
        shown = f"; the first {limit}" if len(candidates) > limit else ""
        return f"Found {len(candidates)} items{shown}:\n" + "\n".join(lines)
