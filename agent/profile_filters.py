"""The profile's constraints as store filters and a candidate check: the turn without request
understanding (``turn.understanding = false``) filters by these."""

from __future__ import annotations

from collections.abc import Callable

from agent.buffer import Candidate
from agent.profile import UserProfile
from indexing.records import Filters


def filters_for(profile: UserProfile) -> Filters:
    c = profile.constraints
    return Filters(
        category=c.categories[0] if len(c.categories) == 1 else None,
        min_price=c.min_price,
        max_price=c.max_price,
        has_image=True if c.modality == "image" else None,
        has_audio=True if c.modality == "audio" else None,
    )


def allowed_by(profile: UserProfile) -> Callable[[Candidate], bool]:
    c = profile.constraints
    wanted = {x.lower() for x in c.categories}
    banned = {x.lower() for x in c.exclude_categories}

    def allowed(candidate: Candidate) -> bool:
        category = (candidate.category or "").lower()
        price = candidate.facts.get("price")
        if wanted and category not in wanted:
            return False
        if category in banned:
            return False
        if not within_price(price, c.min_price, c.max_price):
            return False
        if c.modality == "audio" and not candidate.facts.get("has_audio"):
            return False
        return not (c.modality == "image" and not candidate.facts.get("has_image"))

    return allowed


def within_price(price: object, min_price: float | None, max_price: float | None) -> bool:
    """Whether a price meets the bounds; an item without a price meets none."""
    if min_price is None and max_price is None:
        return True
    if not isinstance(price, int | float):
        return False
    return (max_price is None or price <= max_price) and (min_price is None or price >= min_price)
