"""The paired bootstrap behind every ranking report's significance column."""

from __future__ import annotations

import numpy as np
import pytest

from eval.significance import against_best_baseline, paired_bootstrap, per_user_ndcg


def test_per_user_ndcg_by_hand() -> None:
    assert per_user_ndcg([1, 3, 11]).tolist() == pytest.approx([1.0, 0.5, 0.0])


def test_a_clear_gain_is_significant_and_noise_is_not() -> None:
    rng = np.random.default_rng(1)
    theirs = rng.integers(1, 40, size=400)
    better = np.maximum(1, theirs - 5)  # every user's target moves up
    clear = paired_bootstrap(better.tolist(), theirs.tolist(), seed=0)
    assert clear["significant"] and clear["ci95_low"] > 0 < clear["ndcg10_difference"]
    same = paired_bootstrap(theirs.tolist(), theirs.tolist(), seed=0)
    assert not same["significant"] and same["ci95_low"] == same["ci95_high"] == 0.0
    shuffled = rng.permutation(theirs)  # same distribution, no pairing: a coin toss
    noise = paired_bootstrap(shuffled.tolist(), theirs.tolist(), seed=0)
    assert noise["ci95_low"] < noise["ndcg10_difference"] < noise["ci95_high"]
    with pytest.raises(ValueError, match="same"):
        paired_bootstrap([1, 2], [1], seed=0)


def test_systems_are_compared_with_the_best_baseline() -> None:
    ranks = {
        "popularity": [50, 60, 70, 80],
        "EASE (lambda 100)": [5, 6, 7, 8],
        "SASRec (2 epochs)": [9, 9, 9, 9],
        "recagent: fusion, no rerank": [1, 2, 3, 4],
        "LLM order of the top 20 alone (diagnostic)": [1, 1, 1, 1],
    }
    report = against_best_baseline(
        ranks, lambda n: n.startswith(("popularity", "EASE", "SASRec")), seed=0
    )
    assert report["best_baseline"] == "EASE (lambda 100)"
    assert list(report["systems"]) == ["recagent: fusion, no rerank"]
    assert report["systems"]["recagent: fusion, no rerank"]["ndcg10_difference"] > 0


def test_bootstrap_on_hand_worked_numbers() -> None:
    # Every user: rank 1 (NDCG 1) against rank 3 (NDCG 1/log2(4) = 0.5): the difference is 0.5
    # in every resample, so the interval is [0.5, 0.5].
    same_gain = paired_bootstrap([1, 1, 1, 1], [3, 3, 3, 3], seed=0)
    assert same_gain == {
        "ndcg10_difference": 0.5,
        "ci95_low": 0.5,
        "ci95_high": 0.5,
        "significant": True,
        "users": 4,
    }
    # Two users who swap (1 vs 11 and 11 vs 1): differences +1 and -1, mean 0; a resample of two
    # users has mean -1, 0 or +1 (probabilities 1/4, 1/2, 1/4), so the 95% interval is [-1, 1].
    swap = paired_bootstrap([1, 11], [11, 1], seed=0)
    assert swap["ndcg10_difference"] == 0.0
    assert (swap["ci95_low"], swap["ci95_high"]) == (-1.0, 1.0) and not swap["significant"]
    # Three users, ranks 1 vs 2 (1 - 1/log2(3) = 0.3691) and two ties: mean 0.1230.
    third = paired_bootstrap([1, 5, 5], [2, 5, 5], seed=0)
    assert third["ndcg10_difference"] == pytest.approx(0.1230, abs=1e-4)
    assert third["ci95_low"] == 0.0 and third["ci95_high"] == pytest.approx(0.3691, abs=1e-4)
