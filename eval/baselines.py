"""Collaborative baselines, each a function from the user x item history matrix to scores."""

from __future__ import annotations

import numpy as np

from tools.collaborative import ease_weights


def popularity(x: np.ndarray) -> np.ndarray:
    """Every user gets the items ranked by how many users have them."""
    counts = x.sum(axis=0)
    return np.broadcast_to(counts, x.shape).copy()


def item_knn(x: np.ndarray) -> np.ndarray:
    """Item-based collaborative filtering, cosine similarity over co-occurrence, all neighbours."""
    co = x.T @ x
    norms = np.sqrt(np.maximum(np.diag(co), 1e-12))
    similarity = co / norms[:, None] / norms[None, :]
    np.fill_diagonal(similarity, 0.0)
    scores: np.ndarray = x @ similarity
    return scores


def ease(x: np.ndarray, lam: float = 100.0) -> np.ndarray:
    """EASE (Steck 2019) scores for every user: history times the item-item weights."""
    scores: np.ndarray = x @ ease_weights(x, lam)
    return scores
