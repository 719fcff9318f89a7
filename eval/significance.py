"""Is a difference in NDCG@10 real? A paired bootstrap over users: resample the evaluated users
with replacement, recompute the mean per-user difference, and read the 95% interval from the
2.5th and 97.5th percentiles. Per-user values come from the systems' ranks of the same users'
test items, so the pairing is exact."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

RESAMPLES = 2_000


def per_user_ndcg(ranks: Sequence[int], k: int = 10) -> np.ndarray:
    values = np.asarray(ranks, dtype=np.float64)
    return np.where(values <= k, 1.0 / np.log2(values + 1.0), 0.0)


def paired_bootstrap(
    ours: Sequence[int], theirs: Sequence[int], seed: int, resamples: int = RESAMPLES
) -> dict[str, float]:
    """Mean NDCG@10 difference (ours − theirs) over the same users, with its 95% interval."""
    a, b = per_user_ndcg(ours), per_user_ndcg(theirs)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired ranks need the same, non-empty set of users")
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(resamples, diff.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "ndcg10_difference": round(float(diff.mean()), 4),
        "ci95_low": round(float(low), 4),
        "ci95_high": round(float(high), 4),
        "significant": bool(low > 0 or high < 0),
        "users": int(diff.size),
    }


def against_best_baseline(
    ranks: Mapping[str, Sequence[int]], is_baseline: Callable[[str], bool], seed: int
) -> dict[str, Any]:
    """Every system that is not a baseline (nor a diagnostic) against the best baseline by
    NDCG@10, on the same users."""
    baselines = {name: r for name, r in ranks.items() if is_baseline(name)}
    if not baselines:
        return {}
    best = max(baselines, key=lambda name: per_user_ndcg(baselines[name]).mean())
    return {
        "best_baseline": best,
        "method": f"paired bootstrap over users, {RESAMPLES} resamples, 95% interval",
        "systems": {
            name: paired_bootstrap(r, baselines[best], seed)
            for name, r in ranks.items()
            if not is_baseline(name) and "diagnostic" not in name
        },
    }
