"""The learned second stage: the candidate pool and its features, the LambdaRank ranker on a
synthetic set whose best ordering is known, and the agent's collaborative model using it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools import candidate_pool
from tools.candidate_pool import FEATURES, Parts
from tools.collaborative import CollabModel
from tools.ranker import LearnedRanker
from tools.sasrec import SASRecConfig


def synthetic(queries: int, per_query: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each query's positive is the candidate with the largest ``2 * f0 - f1``; f2 is noise."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(queries * per_query, 3)).astype(np.float32)
    rows = np.repeat(np.arange(queries), per_query)
    utility = (2 * features[:, 0] - features[:, 1]).reshape(queries, per_query)
    labels = np.zeros(queries * per_query, dtype=np.int32)
    labels[np.arange(queries) * per_query + utility.argmax(axis=1)] = 1
    return features, labels, rows


def test_the_ranker_learns_a_known_ordering_and_explains_it(tmp_path: Path) -> None:
    features, labels, rows = synthetic(300, 20, seed=0)
    ranker = LearnedRanker.fit(features, labels, rows, ["f0", "f1", "noise"], seed=1)
    assert ranker.training is not None and ranker.training.queries == 300
    assert ranker.training.folds == 5 and 1 <= ranker.training.rounds <= 300
    assert ranker.out_of_fold is not None and ranker.out_of_fold.shape == labels.shape
    fresh, fresh_labels, _ = synthetic(100, 20, seed=7)  # queries it never saw
    scores = ranker.scores(fresh).reshape(100, 20)
    truth = fresh_labels.reshape(100, 20).argmax(axis=1)
    assert (scores.argmax(axis=1) == truth).mean() >= 0.8  # chance: 0.05
    importance = ranker.importance()
    assert importance["f0"] > importance["noise"] and importance["f1"] > importance["noise"]
    contributions = ranker.contributions(fresh[:20])
    assert contributions.shape == (20, 4)  # three features and the bias
    np.testing.assert_allclose(contributions.sum(axis=1), ranker.scores(fresh[:20]), atol=1e-6)
    ranker.save(tmp_path)
    again = LearnedRanker.load(tmp_path)
    np.testing.assert_allclose(again.scores(fresh), ranker.scores(fresh), atol=1e-9)
    assert again.features == ["f0", "f1", "noise"]


def test_queries_without_their_target_teach_nothing() -> None:
    features, labels, rows = synthetic(50, 10, seed=3)
    labels[rows >= 10] = 0  # only ten queries keep a positive
    ranker = LearnedRanker.fit(features, labels, rows, ["f0", "f1", "noise"])
    assert ranker.training is not None and ranker.training.queries == 10
    with pytest.raises(ValueError, match="at least 5"):
        LearnedRanker.fit(features, np.zeros_like(labels), rows, ["f0", "f1", "noise"])


class Fixed:
    """A sequential scorer that prefers higher item indices, whatever the history."""

    def __init__(self, n_items: int) -> None:
        self.row = np.arange(n_items, dtype=np.float32)

    def scores(self, histories: list[list[int]]) -> np.ndarray:
        return np.tile(self.row, (len(histories), 1))


def toy_parts(n_items: int = 12) -> Parts:
    rng = np.random.default_rng(0)
    x = (rng.random((40, n_items)) < 0.3).astype(np.float32)
    content = rng.normal(size=(n_items, 8)).astype(np.float32)
    content /= np.linalg.norm(content, axis=1, keepdims=True)
    return Parts(
        Fixed(n_items),
        rng.normal(size=(n_items, n_items)),
        candidate_pool.knn_similarity(x),
        x.sum(axis=0),
        content,
    )


def test_the_pool_holds_each_retrievers_top_unseen_items_and_their_features() -> None:
    parts = toy_parts()
    histories = [[0, 1, 2], [11], [3, 4, 5, 6, 7]]
    pool = candidate_pool.build(parts, histories, depth=2)
    assert pool.features.shape == (pool.items.size, len(FEATURES))
    column = {name: pool.features[:, n] for n, name in enumerate(FEATURES)}
    for row, history in enumerate(histories):
        mine = pool.items[pool.rows == row]
        assert not set(mine) & set(history)  # never a seen item
        unseen = [i for i in range(12) if i not in history]
        assert set(unseen[::-1][:2]) <= set(mine)  # the sequential scorer's top 2
        assert len(mine) <= 5 * 2  # five retrievers, two each
        assert (column["history_length"][pool.rows == row] == len(history)).all()
    assert column["sasrec_rank"][(pool.rows == 0) & (pool.items == 11)] == 1.0
    assert column["sasrec_rank"][(pool.rows == 1) & (pool.items == 10)] == 1.0  # 11 is seen
    one_at_a_time = candidate_pool.build(parts, histories, depth=2, chunk=1)
    np.testing.assert_array_equal(one_at_a_time.items, pool.items)
    np.testing.assert_allclose(one_at_a_time.features, pool.features, atol=1e-6)
    assert pool.labels([11, 0, 8]).sum() == 2  # items 11 and 8 are in their pools, 0 is not
    assert pool.groups(3).tolist() == [int((pool.rows == r).sum()) for r in range(3)]


def test_the_agents_collaborative_model_ranks_with_the_ranker_and_explains(
    tmp_path: Path,
) -> None:
    ids = [f"m{i}" for i in range(10)]
    rng = np.random.default_rng(0)
    starts, lengths = rng.integers(0, 10, 300), rng.integers(5, 9, 300)
    walks = [[(s + t) % 10 for t in range(n)] for s, n in zip(starts, lengths, strict=True)]
    small = SASRecConfig(hidden=16, blocks=1, heads=1, max_len=8, dropout=0.0, epochs=30, lr=1e-2)
    model = CollabModel.fit([w[:-1] for w in walks], ids, small)
    pool = candidate_pool.build(model.pool_parts(), [w[:-1] for w in walks], depth=3)
    model.ranker = LearnedRanker.fit(
        pool.features, pool.labels([w[-1] for w in walks]), pool.rows, FEATURES
    )
    model.save(tmp_path)
    loaded = CollabModel.load(tmp_path)
    assert loaded.ranker is not None
    ranked = loaded.recommend(["m3", "m4", "m5"], 3)
    assert ranked[0].item_id == "m6"  # the next step of the walk
    assert set(ranked[0].contributions) == set(FEATURES)
    assert "m5" not in [r.item_id for r in ranked]
