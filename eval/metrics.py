"""Ranking metrics for one held-out item per user (leave-one-out).

With a single relevant item at 1-based rank r: HR@K = Recall@K = [r <= K];
NDCG@K = 1 / log2(r + 1) if r <= K else 0; MRR = 1 / r (full list, no cut-off).
Coverage@K = distinct items in all top-K lists / catalogue size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

KS = (1, 5, 10, 20)


TIE_RULE = "equal scores are ordered by item index (as a stable sort would)"


def rank_of(scores: np.ndarray, target: int, excluded: Sequence[int]) -> int:
    """1-based rank of ``target`` among all items but ``excluded``; see :data:`TIE_RULE`."""
    masked = scores.astype(np.float64, copy=True)
    masked[list(excluded)] = -np.inf
    ahead = masked > masked[target]
    tied_before = (masked == masked[target]) & (np.arange(masked.size) < target)
    return int(ahead.sum() + tied_before.sum() + 1)


def metrics_from_ranks(ranks: Sequence[int], ks: Sequence[int] = KS) -> dict[str, float]:
    out: dict[str, float] = {}
    n = len(ranks)
    for k in ks:
        hits = [r for r in ranks if r <= k]
        out[f"HR@{k}"] = len(hits) / n
        out[f"Recall@{k}"] = len(hits) / n
        out[f"NDCG@{k}"] = sum(1 / math.log2(r + 1) for r in hits) / n
    out["MRR"] = sum(1 / r for r in ranks) / n
    return out


def coverage(top_lists: Sequence[Sequence[int]], n_items: int) -> float:
    return len({item for top in top_lists for item in top}) / n_items


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0-100) of ``values``; 0.0 when there are none."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return float(ordered[index])
