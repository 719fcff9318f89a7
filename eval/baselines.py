"""Collaborative baselines, each a function from the user x item history matrix to scores."""

from __future__ import annotations

import numpy as np

from tools.candidate_pool import knn_similarity
from tools.collaborative import ease_weights


def popularity(x: np.ndarray) -> np.ndarray:
    """Every user gets the items ranked by how many users have them."""
    counts = x.sum(axis=0)
    return np.broadcast_to(counts, x.shape).copy()


def item_knn(x: np.ndarray) -> np.ndarray:
    """Item-based collaborative filtering, cosine similarity over co-occurrence, all neighbours."""
    scores: np.ndarray = x @ knn_similarity(x)
    return scores


def ease(x: np.ndarray, lam: float = 100.0) -> np.ndarray:
    """EASE (Steck 2019) scores for every user: history times the item-item weights."""
    scores: np.ndarray = x @ ease_weights(x, lam)
    return scores
