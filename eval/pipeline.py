"""recagent's ranking pipeline, vectorised for evaluation.

Per user: a collaborative list (the :class:`~tools.collaborative.CollabModel` over the whole
catalogue) and a content list (MiniLM profile similarity, the top ``CONTENT_DEPTH``) fused with
the agent's formula (:func:`agent.fusion.fuse`): ``collab / (k + collab rank) + rrf / (k +
content rank) + profile * similarity``. Seen items are excluded. ``tune`` picks the weights and
the collaborative blend on the validation split only; the winner is saved for the agent.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tools.candidate_pool import ranks_among_unseen
from tools.config import FusionWeights

CONTENT_DEPTH = 100

GRID: dict[str, Sequence[float]] = {
    "alpha": (0.0, 0.25, 0.5, 0.75, 1.0),
    "rrf_k": (10, 30, 60),
    "rrf": (0.0, 0.1, 0.25, 0.5),
    "profile": (0.0, 0.01, 0.02, 0.05),
}


def target_ranks(scores: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """1-based rank of each row's target, ties by item index (as :func:`eval.metrics.rank_of`)."""
    rows = np.arange(scores.shape[0])
    value = scores[rows, targets][:, None]
    index = np.arange(scores.shape[1])[None, :]
    ahead = (scores > value) | ((scores == value) & (index < np.asarray(targets)[:, None]))
    out: np.ndarray = ahead.sum(axis=1) + 1
    return out


def ndcg_at(ranks: np.ndarray, k: int = 10) -> float:
    return float(np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0).mean())


@dataclass(frozen=True)
class Inputs:
    """What the fusion needs for one stage: seen mask, collab parts, content similarity."""

    seen: np.ndarray  # bool, users x items
    sequential: np.ndarray  # standardised SASRec scores
    item_item: np.ndarray  # standardised EASE scores
    content: np.ndarray  # cosine of the profile with each item

    def collab(self, alpha: float) -> np.ndarray:
        out: np.ndarray = alpha * self.sequential + (1 - alpha) * self.item_item
        return out


def fused_scores(
    collab: np.ndarray, content: np.ndarray, seen: np.ndarray, weights: FusionWeights
) -> np.ndarray:
    return fused_from_ranks(
        ranks_among_unseen(collab, seen), ranks_among_unseen(content, seen), content, seen, weights
    )


def fused_from_ranks(
    collab_rank: np.ndarray,
    content_rank: np.ndarray,
    content: np.ndarray,
    seen: np.ndarray,
    weights: FusionWeights,
) -> np.ndarray:
    """The fusion of precomputed ranks (the grid computes each ranking once, not per point)."""
    in_content = content_rank <= CONTENT_DEPTH
    k = weights.rrf_k
    total = weights.collab / (k + collab_rank) + np.where(
        in_content, weights.rrf / (k + content_rank) + weights.profile * content, 0.0
    )
    total[seen] = -np.inf
    out: np.ndarray = total
    return out


@dataclass(frozen=True)
class Tuned:
    alpha: float
    weights: FusionWeights
    ndcg10: float
    tried: int


def tune(
    inputs: Inputs, targets: Sequence[int], grid: Mapping[str, Sequence[float]] = GRID
) -> Tuned:
    """Best NDCG@10 over ``grid`` on the given (validation) targets; see :func:`tune_blocks`."""
    return tune_blocks([(inputs, targets)], grid)


def tune_blocks(
    blocks: Iterable[tuple[Inputs, Sequence[int]]], grid: Mapping[str, Sequence[float]] = GRID
) -> Tuned:
    """Best NDCG@10 over ``grid`` on (validation) targets given a block of users at a time, so
    memory follows the block, not users x items. Each ranking is computed once per block and
    blend, not per grid point. Ties go to the earlier grid point, so the simplest setting wins
    when a signal adds nothing."""
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    sums = np.zeros(len(points))
    users = 0
    for inputs, targets in blocks:
        content_rank = ranks_among_unseen(inputs.content, inputs.seen)
        for alpha in dict.fromkeys(float(p["alpha"]) for p in points):
            collab_rank = ranks_among_unseen(inputs.collab(alpha), inputs.seen)
            for n, point in enumerate(points):
                if float(point["alpha"]) != alpha:
                    continue
                scores = fused_from_ranks(
                    collab_rank, content_rank, inputs.content, inputs.seen, _weights(point)
                )
                ranks = target_ranks(scores, targets)
                sums[n] += np.where(ranks <= 10, 1.0 / np.log2(ranks + 1.0), 0.0).sum()
        users += len(targets)
    if not users:
        raise ValueError("tuning needs at least one user")
    best = int(np.argmax(sums))  # the first of equal sums: the earlier grid point
    chosen = points[best]
    return Tuned(float(chosen["alpha"]), _weights(chosen), sums[best] / users, len(points))


def _weights(point: Mapping[str, float]) -> FusionWeights:
    return FusionWeights(
        rrf_k=int(point["rrf_k"]),
        rrf=float(point["rrf"]),
        profile=float(point["profile"]),
        collab=1.0,
    )
