"""Fusing candidates from several retrievals into one ranking, with a score breakdown per item.

``total = rrf * RRF(content sources) + collab * RRF(collaborative sources)
+ sum(w_kind * best similarity of that kind)`` for the kinds text, image, labels (a photo's
labels against the text), knowledge (the item's stored facts, :mod:`indexing.knowledge`) and
profile (or, for
profile, the preference term: similarity to the likes minus similarity to the dislikes), where
``RRF(sources) = sum over those sources of 1 / (k + rank)``. Collaborative scores are not
similarities (they have no common scale), so they enter by rank only. ``eval rank`` tunes these
weights on ML-100K's validation split with the same formula (``eval/pipeline.py``). When the
collaborative model has a learned ranker, its feature contributions to an item's collaborative
rank are shown beside ``collab`` as ``ranker.<feature>`` (they explain that rank; no weight).

Seen items are dropped and hard constraints are re-checked on each item's facts (the store
already filtered with ``where`` clauses; this keeps a retrieval without filters from slipping
an excluded item in).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from agent.buffer import Candidate
from tools.config import FusionWeights


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    total: float
    breakdown: dict[str, float] = field(default_factory=dict)


SIMILARITY_KINDS = ("text", "image", "labels", "profile", "knowledge")


def rrf(candidate: Candidate, k: int, collab: bool = False) -> float:
    """RRF over the candidate's content sources (or, with ``collab``, its collaborative ones)."""
    return sum(
        1.0 / (k + rank)
        for source, rank in candidate.ranks.items()
        if (candidate.kinds[source] == "collab") == collab
    )


def fuse(
    candidates: list[Candidate],
    weights: FusionWeights,
    exclude: Collection[str] = (),
    allowed: Callable[[Candidate], bool] | None = None,
    preference: Mapping[str, float] | None = None,
    feedback: Mapping[str, float] | None = None,
) -> list[Scored]:
    """Rank ``candidates``; ties break by title, then id, so the order is deterministic.
    ``preference`` (item id → similarity to the user's likes minus their dislikes, from
    :mod:`agent.preferences`) enters as the ``profile`` term for items without a profile
    retrieval of their own. ``feedback`` (item id → similarity to the session's liked items
    minus its disliked ones, from :mod:`agent.feedback`) enters as the ``feedback`` term."""
    scored: list[Scored] = []
    for candidate in candidates:
        if candidate.id in exclude or (allowed is not None and not allowed(candidate)):
            continue
        breakdown = {"rrf": round(rrf(candidate, weights.rrf_k), 6)}
        total = weights.rrf * breakdown["rrf"]
        collab = rrf(candidate, weights.rrf_k, collab=True)
        if collab:
            breakdown["collab"] = round(collab, 6)
            total += weights.collab * breakdown["collab"]
            breakdown.update(candidate.explained)  # what set the collaborative rank (no weight)
        for kind in SIMILARITY_KINDS:
            values = [s for src, s in candidate.scores.items() if candidate.kinds[src] == kind]
            if values:
                breakdown[kind] = round(max(values), 6)
                total += weights.of(kind) * breakdown[kind]
        if preference and candidate.id in preference and "profile" not in breakdown:
            breakdown["profile"] = preference[candidate.id]
            total += weights.profile * breakdown["profile"]
        if feedback and candidate.id in feedback:
            breakdown["feedback"] = feedback[candidate.id]
            total += weights.feedback * breakdown["feedback"]
        breakdown["total"] = round(total, 6)
        scored.append(Scored(candidate, total, breakdown))
    return sorted(scored, key=lambda s: (-s.total, s.candidate.title, s.candidate.id))
