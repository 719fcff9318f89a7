"""SASRec trained to its potential: early stopping on validation NDCG@10, and the sequence
length and dropout chosen on validation.

Each setting of the grid trains on the training histories and is checked on the validation
items every few epochs (``SASRecConfig.eval_every``); training stops after ``patience`` checks
without a gain and keeps its best state. The best setting's model serves the validation stage;
the test stage retrains that setting on train + validation for the epoch count that won.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from eval.movielens import Split, matrix
from eval.pipeline import ndcg_at, target_ranks
from tools.sasrec import SASRec, SASRecConfig


@dataclass(frozen=True)
class Trial:
    max_len: int
    dropout: float
    best_epoch: int
    valid_ndcg10: float
    seconds: float
    curve: list[dict[str, float]]


@dataclass
class Chosen:
    model: SASRec  # trained on the training histories, best state
    config: SASRecConfig  # the winning setting, epochs = its best epoch (for the refit)
    trials: list[Trial]

    def report(self) -> dict[str, Any]:
        return {
            "chosen": {
                "max_len": self.config.max_len,
                "dropout": self.config.dropout,
                "epochs": self.config.epochs,
            },
            "rule": "early stopping on validation NDCG@10; setting with the best validation "
            "NDCG@10; the test stage trains it on train + validation (from scratch for its best "
            "epoch count, or warm: from these weights for a quarter of it)",
            "trials": [asdict(t) for t in self.trials],
        }


def validation_scorer(split: Split) -> Callable[[SASRec], float]:
    """The model -> NDCG@10 of every user's validation item (full ranking, seen excluded)."""
    histories = [split.train[u] for u in range(split.n_users)]
    seen = matrix(split, "valid") > 0

    def score(model: SASRec) -> float:
        values = np.where(seen, -np.inf, model.scores(histories).astype(np.float64))
        return ndcg_at(target_ranks(values, split.valid))

    return score


def choose(
    split: Split,
    base: SASRecConfig,
    seq_lens: Sequence[int],
    dropouts: Sequence[float],
    progress: bool = True,
) -> Chosen:
    """Train every (sequence length, dropout) with early stopping; keep the best."""
    histories = [split.train[u] for u in range(split.n_users)]
    validate = validation_scorer(split)
    best: tuple[float, SASRec, SASRecConfig] | None = None
    trials: list[Trial] = []
    for max_len in seq_lens:
        for dropout in dropouts:
            config = replace(base, max_len=max_len, dropout=dropout)
            bar = tqdm(
                total=config.epochs,
                desc=f"SASRec max_len {max_len}, dropout {dropout}",
                unit="epoch",
                disable=not progress,
            )

            def tick(epoch: int, loss: float, bar: Any = bar) -> None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")

            model = SASRec.fit(histories, split.n_items, config, tick, validate)
            bar.close()
            score = max((p.valid_ndcg10 for p in model.curve), default=0.0)
            trials.append(
                Trial(
                    max_len,
                    dropout,
                    model.best_epoch,
                    score,
                    model.seconds,
                    [asdict(p) for p in model.curve],
                )
            )
            if best is None or score > best[0]:
                best = (score, model, replace(config, epochs=max(model.best_epoch, 1)))
    if best is None:
        raise ValueError("the SASRec grid is empty: give at least one sequence length and dropout")
    return Chosen(best[1], best[2], trials)
