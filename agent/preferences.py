"""Likes and dislikes as soft signals: each candidate's similarity to what the user said they
like, minus its similarity to what they said they dislike. It only reorders the candidates a
turn retrieved (it never adds one), so an old like cannot pull an earlier topic into a new
request; ``fuse`` weighs it with ``FusionWeights.profile`` and ``/why`` shows it as
``profile``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Embed = Callable[[list[str]], np.ndarray]
RECENT = 5  # the most recent likes and dislikes that count


def preference_scores(
    vectors: dict[str, np.ndarray],
    embed: Embed,
    likes: Sequence[str],
    dislikes: Sequence[str],
) -> dict[str, float]:
    """``max cos(item, likes) - max cos(item, dislikes)`` for each item of ``vectors`` (either
    side counts 0 when the profile has none). Empty when there is nothing to weigh."""
    likes, dislikes = list(likes)[-RECENT:], list(dislikes)[-RECENT:]
    if not vectors or not (likes or dislikes):
        return {}
    ids = list(vectors)
    items = unit_rows(np.stack([vectors[i] for i in ids]))
    phrases = unit_rows(np.asarray(embed([*likes, *dislikes]), dtype=np.float32))
    similarity = items @ phrases.T
    liked = similarity[:, : len(likes)].max(axis=1) if likes else np.zeros(len(ids))
    disliked = similarity[:, len(likes) :].max(axis=1) if dislikes else np.zeros(len(ids))
    return {i: round(float(v), 4) for i, v in zip(ids, liked - disliked, strict=True)}


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)
