"""The first stage of the learned ranker: candidates from every collaborative retriever, each
described by features.

Per history, every retriever (SASRec, EASE, item-kNN, content similarity to the history,
popularity) ranks the unseen items; the pool is the union of each one's top ``depth``. A
candidate's features are each retriever's score (standardised per history over all items) and
rank, how similar it is to the last and the last few items of the history (item-kNN cosine and
text embeddings), how many interactions ago the history's most similar item was, and the history's
length. Histories are processed in chunks, so memory grows with the pool, not with users x items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

DEPTH = 100  # each retriever's top-N joins the pool
CHUNK = 512  # histories per block of users x items matrices
RECENT = 5  # "the last few items" for recent_similarity
AGE_WINDOW = 50  # similar_item_age looks this far back (older counts as this)

RETRIEVERS = ("sasrec", "ease", "knn", "content", "popularity")
FEATURES = (
    *(f"{name}_{kind}" for name in RETRIEVERS for kind in ("score", "rank")),
    "history_length",
    "last_item_similarity",
    "recent_similarity",
    "similar_item_age",
    "content_last_similarity",
)


class SequentialScorer(Protocol):
    """What the pool needs from the sequential model (``tools.sasrec.SASRec``)."""

    def scores(self, histories: Sequence[Sequence[int]]) -> np.ndarray: ...


@dataclass(frozen=True)
class Parts:
    """The fitted retrievers, all over the same item indices 0..n_items-1."""

    sequential: SequentialScorer
    ease: np.ndarray  # item x item EASE weights
    knn: np.ndarray  # item x item cosine of co-occurrence, zero diagonal
    popularity: np.ndarray  # interactions per item in the training histories
    content: np.ndarray | None  # L2-normalised text embedding per item, or None

    @property
    def n_items(self) -> int:
        return int(self.ease.shape[0])


@dataclass(frozen=True)
class Pool:
    """Candidates of many histories, flattened: candidate n belongs to history ``rows[n]``."""

    rows: np.ndarray  # int64, non-decreasing
    items: np.ndarray  # int64 item index
    features: np.ndarray  # float32, one column per name in FEATURES

    def groups(self, n_histories: int) -> np.ndarray:
        """Candidates per history (LightGBM's query sizes)."""
        out: np.ndarray = np.bincount(self.rows, minlength=n_histories)
        return out

    def labels(self, targets: Sequence[int]) -> np.ndarray:
        """1 where the candidate is its history's target item."""
        out: np.ndarray = (self.items == np.asarray(targets)[self.rows]).astype(np.int32)
        return out


def history_matrix(histories: Sequence[Sequence[int]], n_items: int) -> np.ndarray:
    """Binary histories x items matrix (1 where the history holds the item)."""
    x = np.zeros((len(histories), n_items), dtype=np.float32)
    for row, history in enumerate(histories):
        x[row, list(history)] = 1.0
    return x


def knn_similarity(x: np.ndarray) -> np.ndarray:
    """Item-item cosine of co-occurrence in the user x item matrix ``x``, zero diagonal."""
    co = x.T @ x
    norms = np.sqrt(np.maximum(np.diag(co), 1e-12))
    similarity: np.ndarray = co / norms[:, None] / norms[None, :]
    np.fill_diagonal(similarity, 0.0)
    return similarity


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per row: zero mean, unit variance (a constant row becomes zeros)."""
    mean = scores.mean(axis=-1, keepdims=True)
    std = scores.std(axis=-1, keepdims=True)
    out: np.ndarray = (scores - mean) / np.where(std > 0, std, 1.0)
    return out


def list_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every item in each row (stable: equal scores by item index)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(scores.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, scores.shape[1] + 1)[None, :]
    return ranks


def ranks_among_unseen(scores: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """1-based rank of every item per row with seen items last (ties by item index)."""
    return list_ranks(np.where(seen, -np.inf, scores))


def content_scores(x: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine of each item's text embedding with the mean of the history's embeddings (``x``:
    histories x items, ``items``: L2-normalised embeddings)."""
    profiles = x @ items / np.maximum(x.sum(axis=1, keepdims=True), 1)
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    scores: np.ndarray = profiles @ items.T
    return scores


def retriever_scores(
    parts: Parts, histories: Sequence[Sequence[int]], x: np.ndarray
) -> dict[str, np.ndarray]:
    """Each retriever's raw scores, one row per history (``x``: their history matrix)."""
    out = {
        "sasrec": parts.sequential.scores(histories).astype(np.float32),
        "ease": (x @ parts.ease).astype(np.float32),
        "knn": (x @ parts.knn).astype(np.float32),
        "popularity": np.broadcast_to(
            np.log1p(parts.popularity).astype(np.float32), x.shape
        ).copy(),
    }
    if parts.content is not None:
        # the cosine of content_scores without its division by the history's length (the
        # normalisation makes it the same up to rounding; saved rankers were trained on this)
        profile = x @ parts.content
        profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-12)
        out["content"] = (profile @ parts.content.T).astype(np.float32)
    else:
        out["content"] = np.zeros_like(x)
    return out


def _chunk(parts: Parts, histories: Sequence[Sequence[int]], depth: int) -> Pool:
    n = len(histories)
    x = history_matrix(histories, parts.n_items)
    seen = x > 0
    raw = retriever_scores(parts, histories, x)
    ranks = {name: ranks_among_unseen(raw[name], seen) for name in RETRIEVERS}
    chosen = np.zeros_like(seen)
    for name in RETRIEVERS:
        chosen |= ranks[name] <= depth
    chosen &= ~seen
    rows, items = np.nonzero(chosen)
    columns: dict[str, np.ndarray] = {}
    for name in RETRIEVERS:
        columns[f"{name}_score"] = standardise(raw[name])[rows, items]
        columns[f"{name}_rank"] = ranks[name][rows, items].astype(np.float32)
    lengths = np.array([len(h) for h in histories], dtype=np.float32)
    columns["history_length"] = lengths[rows]
    last = np.array([h[-1] if len(h) else -1 for h in histories])
    has_last = last[rows] >= 0
    columns["last_item_similarity"] = np.where(
        has_last, parts.knn[np.maximum(last[rows], 0), items], 0.0
    )
    recent = np.zeros(rows.size, dtype=np.float32)
    age = np.full(rows.size, float(AGE_WINDOW), dtype=np.float32)
    starts = np.searchsorted(rows, np.arange(n + 1))
    for row, history in enumerate(histories):
        lo, hi = starts[row], starts[row + 1]
        if lo == hi or not history:
            continue
        window = np.asarray(history[-AGE_WINDOW:])
        similarity = parts.knn[np.ix_(window, items[lo:hi])]  # history items x candidates
        recent[lo:hi] = similarity[-RECENT:].mean(axis=0)
        best = similarity.argmax(axis=0)
        age[lo:hi] = np.where(similarity.max(axis=0) > 0, window.size - best, AGE_WINDOW)
    columns["recent_similarity"] = recent
    columns["similar_item_age"] = age
    if parts.content is not None:
        content_last = np.einsum(
            "ij,ij->i", parts.content[np.maximum(last[rows], 0)], parts.content[items]
        )
        columns["content_last_similarity"] = np.where(has_last, content_last, 0.0)
    else:
        columns["content_last_similarity"] = np.zeros(rows.size, dtype=np.float32)
    features = np.stack([columns[name] for name in FEATURES], axis=1).astype(np.float32)
    return Pool(rows.astype(np.int64), items.astype(np.int64), features)


def build(
    parts: Parts, histories: Sequence[Sequence[int]], depth: int = DEPTH, chunk: int = CHUNK
) -> Pool:
    """The candidate pool of every history (in order), built ``chunk`` histories at a time."""
    pieces: list[Pool] = []
    for start in range(0, len(histories), chunk):
        piece = _chunk(parts, histories[start : start + chunk], depth)
        pieces.append(Pool(piece.rows + start, piece.items, piece.features))
    if not pieces:
        empty = np.zeros(0, dtype=np.int64)
        return Pool(empty, empty, np.zeros((0, len(FEATURES)), dtype=np.float32))
    return Pool(
        np.concatenate([p.rows for p in pieces]),
        np.concatenate([p.items for p in pieces]),
        np.concatenate([p.features for p in pieces]),
    )
