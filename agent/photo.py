"""One ranking for a search by photo outside a conversation (``recagent search --image``,
``recagent eval photos``): the two paths of :mod:`indexing.photo_search` fused by the agent's
own formula (:mod:`agent.fusion`), each hit saying what each path gave it."""

from __future__ import annotations

from agent.buffer import CandidateBuffer
from agent.fusion import fuse
from indexing.photo_search import PhotoHits
from indexing.records import Hit
from tools.config import FusionWeights


def ranked_photo_hits(found: PhotoHits, weights: FusionWeights, k: int) -> list[Hit]:
    """The fused top ``k``; ``score`` is the fused total and ``matched`` names each path's
    similarity ("image 0.71, labels 0.55")."""
    buffer = CandidateBuffer()
    for kind, hits in found.by_kind().items():
        buffer.add(kind, kind, hits)
    ranked = []
    for scored in fuse(buffer.candidates(), weights)[:k]:
        c, parts = scored.candidate, scored.breakdown
        matched = ", ".join(
            f"{kind} {parts[kind]:.2f}" for kind in ("image", "labels") if kind in parts
        )
        ranked.append(Hit(c.id, c.title, round(scored.total, 4), c.category, c.facts, matched))
    return ranked
