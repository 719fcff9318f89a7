"""The structured user profile: likes, dislikes, standing preferences and a short taste
summary.

The turn notes the likes and dislikes the request states; with ``turn.profile_llm`` the LLM also
writes a :class:`ProfileUpdate` (JSON-schema structured output) that :func:`merge` folds in.
Hard constraints live in each turn's request (:mod:`agent.request`), never in the profile.
Profiles persist in the session database (:mod:`agent.session`) and are shown by the chat's
``/profile`` command.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from agent.request_types import Standing
from agent.words import folded

USER_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # used with fullmatch


PHRASE_CHARS = 60
Phrase = Annotated[str, StringConstraints(max_length=PHRASE_CHARS)]
MAX_PHRASES = 8  # per list; the profile prompt states these limits from here
SUMMARY_CHARS = 240


class ProfileUpdate(BaseModel):
    """What one turn of conversation says about the user (the LLM's structured output; the
    length limits go into the JSON schema, so guided decoding keeps a small model brief)."""

    likes: list[Phrase] = Field(default_factory=list, max_length=MAX_PHRASES)
    dislikes: list[Phrase] = Field(default_factory=list, max_length=MAX_PHRASES)
    summary: str = Field(
        "", max_length=SUMMARY_CHARS, description="One sentence on the user's taste."
    )


class UserProfile(BaseModel):
    user_id: str
    likes: list[str] = Field(default_factory=list)
    dislikes: list[str] = Field(default_factory=list)
    summary: str = ""
    turns: int = 0
    standing: list[Standing] = Field(
        default_factory=list, description="Preferences the user stated as standing."
    )


def union(old: list[str], new: list[str], drop: list[str]) -> list[str]:
    dropped = {folded(d) for d in drop}
    out: list[str] = []
    seen: set[str] = set()
    for value in [*old, *new]:
        key = folded(value)
        if key and key not in seen and key not in dropped:
            seen.add(key)
            out.append(value.strip())
    return out[-20:]


def merge(profile: UserProfile, update: ProfileUpdate) -> UserProfile:
    """New likes/dislikes are added (a new dislike removes the same like, and vice versa); the
    summary is replaced when given."""
    return UserProfile(
        user_id=profile.user_id,
        likes=union(profile.likes, update.likes, update.dislikes),
        dislikes=union(profile.dislikes, update.dislikes, update.likes),
        summary=update.summary.strip() or profile.summary,
        turns=profile.turns + 1,
        standing=profile.standing,
    )
