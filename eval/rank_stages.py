"""The stages of `recagent eval rank`: every retriever fitted on what is known before one stage
(validation or test), the learned ranker's scores over its candidate pools, the LLM rerank's
tuning, the baselines' scorers and the saved model the agent uses."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from eval import rerank
from eval.llm_client import ChatClient
from eval.movielens import Split
from eval.pipeline import (
    Inputs,
    ndcg_at,
    target_ranks,
)
from eval.significance import paired_bootstrap
from tools import candidate_pool
from tools.candidate_pool import content_scores, history_matrix
from tools.collaborative import FUSION_FILE, CollabModel
from tools.ranker import LearnedRanker
from tools.sasrec import SASRec, SASRecConfig

POOL_OFFSET = 1e4  # pool items score above this, the rest (by the collaborative blend) below

Scorer = Callable[[list[int]], np.ndarray]  # user indices -> one row of item scores each


def refit_sasrec(
    histories: list[list[int]], n_items: int, chosen: SASRecConfig, previous: SASRec, mode: str
) -> SASRec:
    """The chosen SASRec setting trained on more histories (train + validation, or all)."""
    if mode == "warm":
        config = replace(chosen, epochs=max(1, math.ceil(chosen.epochs / 4)), max_seconds=None)
        return SASRec.fit(histories, n_items, config, warm=previous)
    return SASRec.fit(histories, n_items, replace(chosen, max_seconds=None))


@dataclass
class Stage:
    """Every retriever fitted on what is known before one stage ("valid" or "test")."""

    name: str
    users: list[int]
    targets: list[int]
    histories: list[list[int]]  # every user's, index = user
    model: CollabModel

    def unseen(self, scores: np.ndarray, users: list[int]) -> np.ndarray:
        """A copy of ``scores`` (row n: ``users[n]``) with each user's history at -inf."""
        out = scores.copy()
        for row, user in enumerate(users):
            out[row, self.histories[user]] = -np.inf
        return out

    def x(self, users: list[int]) -> np.ndarray:
        return history_matrix([self.histories[u] for u in users], len(self.model.item_ids))

    def fusion_inputs(self, users: list[int]) -> Inputs:
        chosen = [self.histories[u] for u in users]
        sequential, item_item = self.model.parts(chosen)
        x = self.x(users)
        assert self.model.content is not None
        return Inputs(
            seen=x > 0,
            sequential=sequential,
            item_item=item_item,
            content=content_scores(x, self.model.content),
        )


def fit_stage(
    split: Split, name: str, users: list[int], sequential: SASRec, item_vectors: np.ndarray
) -> Stage:
    histories = [split.history(u, name) for u in range(split.n_users)]
    model = CollabModel.fit(histories, split.item_ids, content=item_vectors, sequential=sequential)
    targets = [(split.test if name == "test" else split.valid)[u] for u in users]
    return Stage(name, users, targets, histories, model)


def ranked_scores(
    stage: Stage,
    users: list[int],
    pool: candidate_pool.Pool,
    scores: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """Users x items: ``scores`` (the ranker's, one per candidate of ``pool``, whose row n is
    ``users[n]``) over each user's pool, then the collaborative blend's order below it."""
    out = stage.model.scores([stage.histories[u] for u in users], alpha).astype(np.float64)
    out[pool.rows, pool.items] = POOL_OFFSET + scores
    return out


def pool_scores(
    stage: Stage, users: list[int], ranker: LearnedRanker, depth: int, alpha: float
) -> tuple[np.ndarray, candidate_pool.Pool]:
    """The learned ranker's order over each user's pool, then the collaborative blend's."""
    pool = candidate_pool.build(
        stage.model.pool_parts(), [stage.histories[u] for u in users], depth
    )
    return ranked_scores(stage, users, pool, ranker.scores(pool.features), alpha), pool


def out_of_fold(
    stage: Stage, pool: candidate_pool.Pool, ranker: LearnedRanker, users: list[int], alpha: float
) -> np.ndarray:
    """The ranker's validation order for the first users, each scored by the fold model that
    did not train on them (``pool`` covers every user, in order)."""
    assert ranker.out_of_fold is not None
    keep = pool.rows < len(users)
    chosen = candidate_pool.Pool(pool.rows[keep], pool.items[keep], pool.features[keep])
    return ranked_scores(stage, users, chosen, ranker.out_of_fold[keep], alpha)


def top_lists(scores: np.ndarray, n: int) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :n]


def apply_order(scores: np.ndarray, tops: np.ndarray, orders: list[np.ndarray]) -> np.ndarray:
    """Scores whose top lists follow ``orders`` (the rest keep their fused order below)."""
    out = scores.copy()
    ceiling = np.nanmax(np.where(np.isfinite(scores), scores, np.nan)) + 1.0
    for row, (top, order) in enumerate(zip(tops, orders, strict=True)):
        out[row, top[order]] = ceiling + np.arange(len(order), 0, -1)
    return out


def llm_ranks(
    client: ChatClient,
    stage: Stage,
    users: list[int],
    scores: np.ndarray,
    titles: list[str],
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The LLM's order of each user's top 20 (``scores``: rows follow ``users``, seen items
    already at -inf)."""
    tops = top_lists(scores, rerank.TOP)
    histories = [[titles[i] for i in stage.histories[u]] for u in users]
    candidates = [[titles[i] for i in top] for top in tops]
    return tops, rerank.rerank_all(client, histories, candidates, f"LLM rerank ({stage.name})")


def tune_rerank(
    client: ChatClient,
    stage: Stage,
    rows: list[int],
    scores: np.ndarray,
    titles: list[str],
    rrf_k: int,
    seed: int,
) -> dict[str, Any]:
    """The rerank weight with the best validation NDCG@10 on ``rows`` (users), kept only if its
    gain over no rerank is significant; otherwise 0."""
    values = stage.unseen(scores, rows)
    tops, ranks = llm_ranks(client, stage, rows, values, titles)
    targets = [stage.targets[stage.users.index(u)] for u in rows]
    by_weight, ranks_by_weight = {}, {}
    for weight in rerank.WEIGHTS:
        orders = [rerank.blend(r, weight, rrf_k) for r in ranks]
        ranks_by_weight[weight] = target_ranks(apply_order(values, tops, orders), targets)
        by_weight[weight] = ndcg_at(ranks_by_weight[weight])
    best = max(by_weight, key=lambda w: (by_weight[w], -w))
    gain = paired_bootstrap(ranks_by_weight[best].tolist(), ranks_by_weight[0.0].tolist(), seed)
    weight = best if best != 0.0 and gain["significant"] and gain["ndcg10_difference"] > 0 else 0.0
    return {
        "weight": weight,
        "best_on_validation": best,
        "gain_over_no_rerank": gain,
        "validation_users": len(rows),
        "ranker_scores": "out of fold (each user ordered by a ranker that did not train on them)",
        "validation_ndcg10_by_weight": {str(w): round(v, 4) for w, v in by_weight.items()},
    }


def baseline_scorers(
    test: Stage, sasrec: SASRecConfig, item_vectors: np.ndarray
) -> dict[str, Scorer]:
    """Each baseline's scores for a block of users, from the retrievers fitted for the test
    stage (the same fits the pipeline uses)."""
    model = test.model
    assert model.popularity is not None and model.knn is not None
    popularity, knn = model.popularity, model.knn

    def by_items(matrix_of: Callable[[np.ndarray], np.ndarray]) -> Scorer:
        return lambda block: matrix_of(test.x(block))

    name = f"SASRec (max_len {sasrec.max_len}, dropout {sasrec.dropout}, {sasrec.epochs} epochs)"
    return {
        "popularity": lambda block: np.broadcast_to(popularity, (len(block), popularity.size)),
        "item-kNN (cosine)": by_items(lambda x: x @ knn),
        "EASE (lambda 100)": by_items(lambda x: x @ model.item_item),
        name: lambda block: model.sequential.scores([test.histories[u] for u in block]),
        "embedding-only (MiniLM)": by_items(lambda x: content_scores(x, item_vectors)),
    }


def save_agent_model(
    folder: Path,
    split: Split,
    chosen: SASRecConfig,
    refit: SASRec,
    mode: str,
    tuned_alpha: float,
    fusion: dict[str, Any],
    item_vectors: np.ndarray,
    ranker: LearnedRanker,
) -> None:
    """Every retriever trained on all interactions, with the ranker and the fusion weights
    chosen on validation, where the agent finds them."""
    full = [split.train[u] + [split.valid[u], split.test[u]] for u in range(split.n_users)]
    sequential = refit_sasrec(full, split.n_items, chosen, refit, mode)
    model = CollabModel.fit(
        full, split.item_ids, alpha=tuned_alpha, content=item_vectors, sequential=sequential
    )
    model.ranker = ranker
    model.save(folder)
    (folder / FUSION_FILE).write_text(json.dumps(fusion, indent=2))
