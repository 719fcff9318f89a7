"""The second stage: a learning-to-rank model (LightGBM's LambdaRank) over the candidate pool.

Trained on validation targets with the retrievers fitted on the training histories: one query
per user, the pool's candidates as documents, label 1 for the item the user went on to choose.
The number of boosting rounds is chosen by 5-fold cross-validation over users (the round with
the best mean held-out NDCG@10), then one model is trained on every user; each user's
out-of-fold scores are kept (``out_of_fold``) for steps tuned after it, such as the LLM rerank.
Small trees with large leaves: with one positive per user and a few hundred users, deeper trees
overfit (5-fold NDCG@10 on ML-100K validation: 31 leaves 0.126, 7 leaves 0.146).
``contributions`` gives each feature's share of a candidate's score (TreeSHAP), which the agent
shows in ``/why``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RANKER_FILE = "ranker.txt"

PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.9,
    "lambdarank_truncation_level": 20,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbosity": -1,
}
ROUNDS = 300  # the most boosting rounds; cross-validation picks how many are kept
FOLDS = 5


@dataclass(frozen=True)
class Training:
    """How the ranker was trained (for the report)."""

    queries: int  # users with their target in the pool
    folds: int
    rounds: int  # boosting rounds kept (best mean NDCG@10 over the held-out folds)
    cv_ndcg10: float  # that mean, over the users with their target in the pool


class LearnedRanker:
    def __init__(
        self,
        booster: Any,
        features: Sequence[str],
        training: Training | None = None,
        out_of_fold: np.ndarray | None = None,
    ):
        self.booster = booster
        self.features = list(features)
        self.training = training
        # per training candidate, the score of the fold model that did not see its user
        self.out_of_fold = out_of_fold

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        rows: np.ndarray,
        names: Sequence[str],
        seed: int = 2026,
    ) -> LearnedRanker:
        """``rows[n]`` is the query (user) of candidate n, non-decreasing; queries without a
        positive label teach nothing and are left out of training."""
        import lightgbm as lgb

        n_queries = int(rows.max()) + 1 if rows.size else 0
        positives = np.bincount(rows, weights=labels, minlength=n_queries) > 0
        queries = np.flatnonzero(positives)
        if queries.size < FOLDS:
            raise ValueError(f"the ranker needs at least {FOLDS} users whose target is in the pool")
        fold = np.full(n_queries, -1)
        fold[queries] = np.random.default_rng(seed).permutation(queries.size) % FOLDS
        params = {**PARAMS, "seed": seed}

        def dataset(mask: np.ndarray, reference: Any = None) -> Any:
            group = np.bincount(rows[mask], minlength=n_queries)
            return lgb.Dataset(
                features[mask],
                labels[mask],
                group=group[group > 0],
                feature_name=list(names),
                reference=reference,
                free_raw_data=False,
            )

        curves, boosters = [], []
        for k in range(FOLDS):
            train, held = fold[rows] != k, fold[rows] == k
            train &= positives[rows]
            record: dict[str, Any] = {}
            boosters.append(
                lgb.train(
                    params,
                    dataset(train),
                    num_boost_round=ROUNDS,
                    valid_sets=[dataset(held)],
                    valid_names=["held_out"],
                    callbacks=[lgb.record_evaluation(record)],
                )
            )
            curves.append(record["held_out"]["ndcg@10"])
        mean = np.mean(curves, axis=0)
        rounds = int(mean.argmax()) + 1
        out_of_fold = np.zeros(rows.size)
        for k, booster in enumerate(boosters):
            held = fold[rows] == k
            out_of_fold[held] = booster.predict(features[held], num_iteration=rounds)
        final = lgb.train(params, dataset(positives[rows]), num_boost_round=rounds)
        missing = fold[rows] < 0  # users without a positive: no fold held them out
        if missing.any():
            out_of_fold[missing] = final.predict(features[missing])
        training = Training(int(queries.size), FOLDS, rounds, round(float(mean.max()), 4))
        return cls(final, names, training, out_of_fold)

    def scores(self, features: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.booster.predict(features)
        return out

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """Per candidate, each feature's contribution to its score, then the bias (the columns
        sum to ``scores``)."""
        out: np.ndarray = self.booster.predict(features, pred_contrib=True)
        return out

    def importance(self) -> dict[str, float]:
        """Each feature's share of the total split gain."""
        gain = self.booster.feature_importance(importance_type="gain")
        total = float(gain.sum()) or 1.0
        return {
            name: round(float(g) / total, 4) for name, g in zip(self.features, gain, strict=True)
        }

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / RANKER_FILE))

    @classmethod
    def load(cls, folder: Path) -> LearnedRanker:
        import lightgbm as lgb

        booster = lgb.Booster(model_file=str(folder / RANKER_FILE))
        return cls(booster, booster.feature_name())
