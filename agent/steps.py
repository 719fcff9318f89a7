"""Running a turn's LLM steps: one place decides what a failed step costs.

A step that gets an unusable answer falls back for that step only (the caller's fallback value);
an endpoint that is down or timing out ends LLM use for the rest of the turn. Every failure is
recorded with the step's name and the reason, and becomes a notice for the user.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
    once the endpoint is unreachable or ``deadline_s`` (all steps together) has passed;
    ``failures`` and ``notices`` say what fell back and why."""

    available: bool
    deadline_s: float | None = None
    cancel: threading.Event | None = None  # set: the client went away, no more LLM calls
    failures: list[StepFailure] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float | None:
        if self.deadline_s is None:
            return None
        return self.deadline_s - (time.monotonic() - self.started)

    def _late(self, step: str) -> None:
        self.available = False
        self.failures.append(StepFailure(step, "deadline", True))
        self.notices.append(
            f"The LLM took longer than the turn allows ({self.deadline_s:g} s) during {step}; "
            "falling back to embedding ranking and template explanations."
        )

    def run(self, step: str, call: Callable[[], T], fallback: T) -> T:
        if self.cancel is not None and self.cancel.is_set():
            self.available = False
        if not self.available:
            return fallback
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            self._late(step)
            return fallback
        try:
            if remaining is None:
                return call()
            pool = ContextPool(1)  # not a ``with``: a late call is left to its timeout
            try:
                return pool.submit(call).result(timeout=remaining)
            except FutureTimeout:
                self._late(step)
                return fallback
            finally:
                pool.shutdown(wait=False)
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


class ContextPool(ThreadPoolExecutor):
    """A thread pool whose calls run in the caller's context (context variables such as a
    benchmark's usage counter follow the call into the thread)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


@contextmanager
def background(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A pool for LLM calls that run beside the turn; leaving it does not wait for a call that
    the runner gave up on (its own request timeout ends it)."""
    pool = ContextPool(workers)
    try:
        yield pool
    finally:
        pool.shutdown(wait=False)
