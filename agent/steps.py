"""Running a turn's LLM steps: one place decides what a failed step costs.

A step that gets an unusable answer falls back for that step only (the caller's fallback value);
an endpoint that is down or timing out ends LLM use for the rest of the turn. Every failure is
recorded with the step's name and the reason, and becomes a notice for the user.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import ValidationError

from tools.errors import LLMUnavailable, RecagentError

T = TypeVar("T")


class LLMFailure(RecagentError):
    """The LLM could not be used for one step. ``unreachable``: the endpoint is down or timed
    out (no point asking again this turn); otherwise its answer was unusable for this step."""

    def __init__(self, message: str, unreachable: bool = True) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def llm_errors() -> tuple[type[BaseException], ...]:
    """What an LLM call can raise that is the LLM's fault, not ours."""
    import httpx
    import openai
    from langchain_core.exceptions import OutputParserException

    return (
        LLMUnavailable,
        openai.OpenAIError,
        httpx.HTTPError,
        OutputParserException,
        ValidationError,
        json.JSONDecodeError,
        TimeoutError,
        ConnectionError,
        # langchain raises plain ValueError for some malformed model answers (e.g. a tool call
        # or structured output it cannot parse): at this boundary that is the model's fault
        ValueError,
        # an HTTP 200 whose body is not a chat completion (an HTML error page from a proxy,
        # "choices": null) surfaces from the client's parsing as one of these; the calls this
        # guards are only the model request and its parsing
        AttributeError,
        TypeError,
        KeyError,
        IndexError,
    )


def as_failure(exc: BaseException) -> LLMFailure:
    """An LLM error as a step failure, unreachable when it is a transport problem."""
    import httpx
    import openai

    transport = (
        openai.APIConnectionError,
        openai.APITimeoutError,
        httpx.TransportError,
        LLMUnavailable,
        ConnectionError,
        TimeoutError,
    )
    return LLMFailure(f"{type(exc).__name__}: {exc}", unreachable=isinstance(exc, transport))


@dataclass
class StepFailure:
    step: str
    reason: str
    unreachable: bool


@dataclass
class StepRunner:
    """Runs named LLM steps for one turn. ``available`` turns false for the rest of the turn
    once the endpoint is unreachable; ``failures`` and ``notices`` say what fell back and why."""

    available: bool
    failures: list[StepFailure] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def run(self, step: str, call: Callable[[], T], fallback: T) -> T:
        if not self.available:
            return fallback
        try:
            return call()
        except LLMFailure as exc:
            self.failures.append(StepFailure(step, str(exc), exc.unreachable))
            if exc.unreachable:
                self.available = False
                self.notices.append(
                    f"The LLM failed during {step} ({exc}); falling back to embedding "
                    "ranking and template explanations."
                )
            else:
                self.notices.append(
                    f"The LLM's answer for {step} was unusable ({str(exc)[:160]}); "
                    "that step fell back."
                )
            return fallback
