"""Fusing candidates from several retrievals into one ranking, with a score breakdown per item.

``total = w_rrf * RRF + sum(w_kind * best similarity of that kind)`` where
``RRF = sum over sources of 1 / (k + rank)``. Seen items are dropped and hard constraints are
re-checked on each item's facts (the store already filtered with ``where`` clauses; this keeps a
retrieval without filters from slipping an excluded item in).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from agent.buffer import SIGNALS, Candidate


@dataclass(frozen=True)
class FusionWeights:
    rrf_k: int = 60
    rrf: float = 1.0
    text: float = 0.05
    image: float = 0.02
    profile: float = 0.03
    collab: float = 0.0

    def of(self, kind: str) -> float:
        return float(getattr(self, kind))


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    total: float
    breakdown: dict[str, float] = field(default_factory=dict)


def rrf(candidate: Candidate, k: int) -> float:
    return sum(1.0 / (k + rank) for rank in candidate.ranks.values())


def fuse(
    candidates: list[Candidate],
    weights: FusionWeights,
    exclude: Collection[str] = (),
    allowed: Callable[[Candidate], bool] | None = None,
) -> list[Scored]:
    """Rank ``candidates``; ties break by title, then id, so the order is deterministic."""
    scored: list[Scored] = []
    for candidate in candidates:
        if candidate.id in exclude or (allowed is not None and not allowed(candidate)):
            continue
        breakdown = {"rrf": round(rrf(candidate, weights.rrf_k), 6)}
        total = weights.rrf * breakdown["rrf"]
        for kind in SIGNALS:
            values = [s for src, s in candidate.scores.items() if candidate.kinds[src] == kind]
            if values:
                breakdown[kind] = round(max(values), 6)
                total += weights.of(kind) * breakdown[kind]
        breakdown["total"] = round(total, 6)
        scored.append(Scored(candidate, total, breakdown))
    return sorted(scored, key=lambda s: (-s.total, s.candidate.title, s.candidate.id))
