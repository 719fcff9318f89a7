"""What the ``recagent eval`` and ``bench`` commands share: the LLM endpoint they need, how an
LLM that stops answering ends a resumable run, the results printout, the simulation set-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from cli import render
from cli.render import console
from tools.config import Settings
from tools.errors import InputError, LLMRequestError, LLMUnavailable

if TYPE_CHECKING:
    from agent.llm import Endpoint
    from eval.setup import Simulation


def llm_endpoint(settings: Settings, hint: str = "") -> Endpoint:
    """The configured LLM endpoint; :class:`LLMUnavailable` (with ``hint``) when none runs."""
    from agent.llm import endpoint

    try:
        return endpoint(settings)
    except LLMUnavailable as exc:
        if not hint:
            raise
        raise LLMUnavailable(f"{exc}{hint}") from exc


@contextmanager
def resumable(kept: str) -> Iterator[None]:
    """An LLM that stops answering ends the run; the message says what was ``kept``."""
    try:
        yield
    except LLMRequestError as exc:
        raise LLMRequestError(f"{exc}; {kept}") from exc


def print_results(out: Path, files: str) -> None:
    console.print((out / "results.md").read_text(), markup=False)
    console.print(f"results written to [bold]{escape(str(out))}[/bold] ({files})")


def judge_endpoint(own: Endpoint, url: str | None, model: str | None, key: str | None) -> Endpoint:
    """The judge: the recommender's endpoint ``own`` (another model name allowed) or another
    server."""
    from dataclasses import replace

    from agent.llm import Endpoint

    if url is None:  # the same server(s): several endpoints stay spread over
        return replace(own, model=model or own.model, api_key=key or own.api_key)
    if model is None:
        raise InputError("--judge-url needs --judge-model (the model name that server serves)")
    return Endpoint(url.rstrip("/"), model, key or "EMPTY")


def setup_simulation(cfg: Settings, dataset: str) -> Simulation:
    """:func:`eval.setup.simulation_setup` with its progress and notices on the terminal."""
    from eval.setup import simulation_setup

    with render.progress(console, "indexing movies", lazy=True) as report:
        return simulation_setup(
            cfg, dataset, report, render.printer(console), render.notice_printer(console)
        )
