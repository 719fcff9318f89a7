"""The state of one turn, as one typed object: what the turn was given (the conversation, the
message, the attached files, the caller's bounds, the step runner and clock) and what
understanding made of it (the request and the profile). The steps of
:class:`~agent.recommender.Recommender` read it; a step that refines the request returns a new
one (:meth:`Turn.with_request`), so nothing is changed behind a step's back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent.conversation import Conversation, Recommendation
from agent.llm_steps import Clock
from agent.profile import UserProfile
from agent.request_types import Request
from agent.steps import StepRunner
from indexing.records import Filters


@dataclass(frozen=True)
class Turn:
    convo: Conversation
    message: str  # with an attached voice message's words, when there was one
    request: Request
    profile: UserProfile  # this turn's: the stored profile with what the message added
    runner: StepRunner
    clock: Clock
    bounds: Filters = field(default_factory=Filters)  # hard bounds from the caller
    attachments: Mapping[str, Path] = field(default_factory=dict)
    pictures: Sequence[Path] = ()  # attached pictures to search by

    def with_request(self, request: Request) -> Turn:
        return replace(self, request=request)

    def remember(self, intro: str, recommendations: Sequence[Recommendation]) -> None:
        """The turn into its conversation: the messages, what was shown, the profile and the
        request (later turns refer back to it)."""
        convo = self.convo
        convo.messages.append(("user", self.message))
        convo.messages.append(
            ("assistant", intro + " " + "; ".join(r.title for r in recommendations))
        )
        convo.recommended.extend(r.item_id for r in recommendations)
        convo.profile = self.profile
        convo.requests.append(
            self.request.memory(
                [r.item_id for r in recommendations],
                [r.title for r in recommendations],
                [_price(r.facts.get("price")) for r in recommendations],
            )
        )


def _price(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
