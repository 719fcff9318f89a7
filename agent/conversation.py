"""What a turn produces and what a session remembers: plain data, no behaviour beyond views."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.feedback import Feedback
from agent.profile import UserProfile
from agent.request_types import Applied, TurnMemory


@dataclass
class Recommendation:
    item_id: str
    title: str
    score: float
    breakdown: dict[str, float]
    explanation: str
    cited_fields: list[str]
    explanation_source: str
    facts: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why it was chosen (computed, not written)


@dataclass
class TurnResult:
    intro: str
    recommendations: list[Recommendation]
    profile: UserProfile
    notices: list[str] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    applied: list[Applied] = field(default_factory=list)  # constraints of this turn, and why

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``recommend --json`` (and of the HTTP API)."""
        return {
            "intro": self.intro,
            "recommendations": [
                {
                    "id": r.item_id,
                    "title": r.title,
                    "score": round(r.score, 6),
                    "breakdown": r.breakdown,
                    "explanation": r.explanation,
                    "cited_fields": r.cited_fields,
                    "explanation_source": r.explanation_source,
                    "reasons": r.reasons,
                }
                for r in self.recommendations
            ],
            "profile": self.profile.model_dump(),
            "notices": self.notices,
            "tool_calls": self.tool_calls,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "constraints": [a.model_dump() for a in self.applied],
        }


@dataclass
class Conversation:
    """What the agent remembers of a session."""

    user_id: str
    profile: UserProfile
    messages: list[tuple[str, str]] = field(default_factory=list)  # (role, text)
    recommended: list[str] = field(default_factory=list)
    history_ids: list[str] = field(default_factory=list)
    history_titles: list[str] = field(default_factory=list)
    requests: list[TurnMemory] = field(default_factory=list)  # what each turn asked for
    feedback: dict[str, Feedback] = field(default_factory=dict)  # item id -> latest word on it
    # what the session store loaded or last saved (its saves add only what changed since)
    base: Any = field(default=None, repr=False, compare=False)

    def transcript(self, last: int = 8) -> str:
        return "\n".join(f"{role}: {text}" for role, text in self.messages[-last:]) or "(none)"
