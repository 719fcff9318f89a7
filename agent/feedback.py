"""Feedback on shown items (like, dislike, click, a 1-5 rating) and what it does to the next
ranking of that session:

* **liked** items (a like, a click, a rating of 4 or 5) pull their neighbours up: their text
  and image neighbours join the candidates (within the request's constraints), and every
  candidate gains ``FusionWeights.feedback`` times its similarity to the nearest liked item;
* **disliked** items (a dislike, a rating of 1 or 2) push theirs down by the same term, and
  they and their near-duplicates (text similarity at least ``NEAR_DUPLICATE``) are never shown
  again in that session.

``/why`` and the API's breakdown show it as ``feedback``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from agent.preferences import unit_rows

FeedbackKind = Literal["like", "dislike", "click", "rating"]
NEAR_DUPLICATE = 0.95
RECENT = 10  # the most recent liked and disliked items that count


class Feedback(BaseModel):
    """One piece of feedback on an item the session was shown."""

    item_id: str = Field(min_length=1, max_length=200)
    kind: FeedbackKind
    rating: int | None = Field(None, ge=1, le=5)

    @model_validator(mode="after")
    def _rating_with_rating(self) -> Feedback:
        if (self.kind == "rating") != (self.rating is not None):
            raise ValueError("a rating (1-5) goes with kind 'rating' only, and it needs one")
        return self

    @property
    def liked(self) -> bool:
        return self.kind in {"like", "click"} or (self.rating or 0) >= 4

    @property
    def disliked(self) -> bool:
        return self.kind == "dislike" or self.rating in {1, 2}


@dataclass(frozen=True)
class Opinions:
    """The session's feedback reduced to liked and disliked ids (latest word per item)."""

    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()

    @classmethod
    def of(cls, feedback: Mapping[str, Feedback]) -> Opinions:
        liked = [i for i, f in feedback.items() if f.liked][-RECENT:]
        disliked = [i for i, f in feedback.items() if f.disliked][-RECENT:]
        return cls(tuple(liked), tuple(disliked))

    def __bool__(self) -> bool:
        return bool(self.liked or self.disliked)


def feedback_scores(
    vectors: Mapping[str, np.ndarray], opinions: Opinions
) -> tuple[dict[str, float], set[str]]:
    """(item id → max cos to a liked item − max cos to a disliked item, the ids that are a
    disliked item or its near-duplicate) for the items of ``vectors``, which must also hold the
    liked and disliked items' own vectors."""
    liked = [vectors[i] for i in opinions.liked if i in vectors]
    disliked = [vectors[i] for i in opinions.disliked if i in vectors]
    candidates = [i for i in vectors if i not in opinions.liked and i not in opinions.disliked]
    if not candidates or not (liked or disliked):
        return {}, set(opinions.disliked)
    items = unit_rows(np.stack([vectors[i] for i in candidates]))
    pull = items @ unit_rows(np.stack(liked)).T if liked else np.zeros((len(candidates), 1))
    push = items @ unit_rows(np.stack(disliked)).T if disliked else np.zeros((len(candidates), 1))
    near = push.max(axis=1) >= NEAR_DUPLICATE if disliked else np.zeros(len(candidates), bool)
    scores = (pull.max(axis=1) if liked else 0.0) - (push.max(axis=1) if disliked else 0.0)
    shown = {i: round(float(s), 4) for i, s in zip(candidates, np.atleast_1d(scores), strict=True)}
    blocked = {i for i, n in zip(candidates, near, strict=True) if n} | set(opinions.disliked)
    return shown, blocked
