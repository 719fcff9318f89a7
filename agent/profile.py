"""The structured user profile: likes, dislikes, constraints and a short taste summary.

The LLM writes a :class:`ProfileUpdate` for each turn (JSON-schema structured output);
:func:`merge` folds it into the stored :class:`UserProfile`. Profiles persist in the session
database (:mod:`agent.session`) and are shown by the chat's ``/profile`` command.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from agent.request_types import Standing

USER_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # used with fullmatch


class Constraints(BaseModel):
    categories: list[str] = Field(default_factory=list, description="Only these categories.")
    exclude_categories: list[str] = Field(default_factory=list, description="Never these.")
    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)
    modality: Literal["any", "image", "audio"] = Field(
        "any", description="Require a picture or audio."
    )


PHRASE_CHARS = 60
Phrase = Annotated[str, StringConstraints(max_length=PHRASE_CHARS)]
MAX_PHRASES = 8  # per list; the profile prompt states these limits from here
SUMMARY_CHARS = 240


class ProfileUpdate(BaseModel):
    """What one turn of conversation says about the user (the LLM's structured output; the
    length limits go into the JSON schema, so guided decoding keeps a small model brief)."""

    likes: list[Phrase] = Field(default_factory=list, max_length=MAX_PHRASES)
    dislikes: list[Phrase] = Field(default_factory=list, max_length=MAX_PHRASES)
    constraints: Constraints = Field(default_factory=Constraints)
    summary: str = Field(
        "", max_length=SUMMARY_CHARS, description="One sentence on the user's taste."
    )


class UserProfile(BaseModel):
    user_id: str
    likes: list[str] = Field(default_factory=list)
    dislikes: list[str] = Field(default_factory=list)
    constraints: Constraints = Field(default_factory=Constraints)
    summary: str = ""
    turns: int = 0
    standing: list[Standing] = Field(
        default_factory=list, description="Preferences the user stated as standing."
    )


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def union(old: list[str], new: list[str], drop: list[str]) -> list[str]:
    dropped = {_norm(d) for d in drop}
    out: list[str] = []
    seen: set[str] = set()
    for value in [*old, *new]:
        key = _norm(value)
        if key and key not in seen and key not in dropped:
            seen.add(key)
            out.append(value.strip())
    return out[-20:]


def merge(profile: UserProfile, update: ProfileUpdate) -> UserProfile:
    """New likes/dislikes are added (a new dislike removes the same like, and vice versa); a
    constraint the turn states replaces the old one; the summary is replaced when given."""
    old, new = profile.constraints, update.constraints
    constraints = Constraints(
        categories=new.categories or old.categories,
        exclude_categories=union(old.exclude_categories, new.exclude_categories, new.categories),
        min_price=new.min_price if new.min_price is not None else old.min_price,
        max_price=new.max_price if new.max_price is not None else old.max_price,
        modality=new.modality if new.modality != "any" else old.modality,
    )
    return UserProfile(
        user_id=profile.user_id,
        likes=union(profile.likes, update.likes, update.dislikes),
        dislikes=union(profile.dislikes, update.dislikes, update.likes),
        constraints=constraints,
        summary=update.summary.strip() or profile.summary,
        turns=profile.turns + 1,
        standing=profile.standing,
    )


_PRICE = re.compile(
    r"\b(?:under|below|less than|at most|max(?:imum)?|cheaper than)\s*"
    r"(?:\$|€|£)?\s*(\d+(?:\.\d+)?)",
    re.IGNORECASE,
)
_SOUND = re.compile(
    r"\b(with (?:a )?(?:sound|noise|audio)|makes? (?:a )?(?:sound|noise)s?|"
    r"that (?:i|we) can hear)\b",
    re.IGNORECASE,
)


def stated_constraints(message: str, categories: list[str]) -> ProfileUpdate:
    """Constraints stated in plain words, found without the LLM: "only animals", "under $20",
    "with a sound". A small model misses these often; rules do not."""
    text = message.lower()
    found: list[str] = []
    for category in categories:
        stem = re.escape(category.lower().rstrip("s"))
        if re.search(rf"\b(?:only|just)\s+(?:the\s+)?{stem}s?\b|\b{stem}s?\s+only\b", text):
            found.append(category)
    price = _PRICE.search(message)
    return ProfileUpdate(
        constraints=Constraints(
            categories=found,
            max_price=float(price.group(1)) if price else None,
            modality="audio" if _SOUND.search(message) else "any",
        )
    )


_MODALITY_WORDS = {
    "audio": re.compile(r"\b(sound|sounds|noise|noises|audio|hear|voice|spoken|listen)", re.I),
    "image": re.compile(r"\b(picture|pictures|photo|photos|image|images|look|looks|see)\b", re.I),
}


def grounded(update: ProfileUpdate, message: str) -> ProfileUpdate:
    """The update with only the hard constraints the user's words support. A small model fills
    constraints from the prompt's lists (every category, "audio" for a film); as hard filters
    they would remove everything. Likes, dislikes and the summary stay: they only rank."""
    text = message.lower()

    def said(category: str) -> bool:
        return re.search(rf"\b{re.escape(category.lower().rstrip('s'))}", text) is not None

    numbers = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", message)}
    c = update.constraints
    modality = c.modality
    if modality != "any" and not _MODALITY_WORDS[modality].search(message):
        modality = "any"
    constraints = Constraints(
        categories=[x for x in c.categories if said(x)],
        exclude_categories=[x for x in c.exclude_categories if said(x)],
        min_price=c.min_price if c.min_price in numbers else None,
        max_price=c.max_price if c.max_price in numbers else None,
        modality=modality,
    )
    return update.model_copy(update={"constraints": constraints})
