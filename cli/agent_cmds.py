"""``recagent llm``, ``recagent recommend`` and ``recagent chat``: the LLM server and the agent."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cli import render
from cli.options import ConfigOpt, HistoryOpt, ServeOpt, StoreOpt, UrlOpt, UserOpt, settings
from cli.render import console, err
from tools.config import Settings
from tools.errors import ModelError, ServerError

if TYPE_CHECKING:
    from agent.recommender import Recommender

llm_app = typer.Typer(help="Run the local vLLM server.", no_args_is_help=True)


# -- the LLM server ----------------------------------------------------------------------------
@llm_app.command("serve")
def llm_serve(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Start vLLM (OpenAI-compatible, tool calling on) for the configured LLM, or reuse it."""
    serve_llm(settings(ctx, config), console)


def serve_llm(settings: Settings, out: Console) -> None:
    """Start the local vLLM (or find it running) and wait, with a spinner, until it answers.
    Raises :class:`ServerError` or :class:`ModelError` when it cannot."""
    from agent import llm_server
    from tools.provisioning import draft_ref

    state, current = llm_server.status(settings)
    if current == "ready" and state is not None:
        out.print(
            f"[green]✓[/green] vLLM already running: {escape(state.base_url)} (pid {state.pid})"
        )
        return
    out.print(
        f"starting vLLM for {settings.models.llm} on {settings.llm.host}:"
        f"{settings.llm.port} (CPU start-up takes about 2 minutes)",
        markup=False,
    )
    with out.status("waiting for vLLM") as spinner:
        state = llm_server.serve(
            settings,
            on_wait=lambda seconds, line: spinner.update(f"{seconds:.0f} s: {escape(line[-90:])}"),
        )
    out.print(
        f"[green]✓[/green] vLLM ready: {escape(state.base_url)} "
        f"(pid {state.pid}, log {escape(state.log)})"
    )
    if state.draft:
        out.print(
            f"  speculative decoding: drafts of {settings.llm.draft_tokens} tokens by "
            f'{escape(state.draft)} (`llm.draft_model = "none"` turns it off)'
        )
    elif (wanted := draft_ref(settings)) is not None:
        out.print(
            f"  [yellow]![/yellow] no draft model: {escape(wanted)} is not "
            "prepared (`recagent models prepare`); answers come without speculative decoding"
        )


@llm_app.command("status")
def llm_status(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Is the LLM endpoint up?"""
    from agent import llm_server

    cfg = settings(ctx, config)
    if cfg.llm.remote_urls:  # several (llm.base_urls): up while one of them answers
        key = cfg.llm.api_key.get_secret_value()
        ready = {url: llm_server.ready(url, api_key=key) for url in cfg.llm.remote_urls}
        for url, ok in ready.items():
            console.print(
                f"remote endpoint {escape(url)}: "
                f"{'[green]ready[/green]' if ok else '[red]unreachable[/red]'}"
            )
        raise typer.Exit(0 if any(ready.values()) else 1)
    state, current = llm_server.status(cfg)
    if state is None:
        console.print("local vLLM: stopped")
        raise typer.Exit(1)
    console.print(
        f"local vLLM: {current} at {state.base_url} (pid {state.pid}, model "
        f"{state.model}, log {state.log})",
        markup=False,
    )
    raise typer.Exit(0 if current == "ready" else 1)


@llm_app.command("stop")
def llm_stop(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Stop the local vLLM server."""
    from agent import llm_server

    stopped = llm_server.stop(settings(ctx, config))
    console.print("local vLLM stopped" if stopped else "local vLLM was not running")


# -- the agent ---------------------------------------------------------------------------------
def open_recommender(
    settings: Settings, serve: bool, out: Console, need_llm: bool = False
) -> Recommender:
    """The recommender on the configured store. ``serve`` first starts the local vLLM unless a
    remote endpoint is configured; a failed start is reported and the recommender then answers
    without the LLM (its notice says so), as it does when no server runs."""
    from agent.build import build_recommender

    def start_llm() -> None:
        try:
            serve_llm(settings, out)
        except (ServerError, ModelError) as exc:  # not fatal: the agent degrades without it
            out.print(f"[red]error:[/red] {escape(exc.message)}")

    wanted = serve and not settings.llm.remote_urls
    notices = render.notice_printer(out)
    return build_recommender(settings, notices, start_llm if wanted else None, need_llm)


def recommend(
    ctx: typer.Context,
    user: UserOpt = "guest",
    query: Annotated[str | None, typer.Option(help="What the user asks for.")] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=20, help="How many items.")] = 3,
    image: Annotated[Path | None, typer.Option(help="Attach a picture.")] = None,
    audio: Annotated[Path | None, typer.Option(help="Attach a voice query.")] = None,
    history: HistoryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    serve: ServeOpt = True,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """One recommendation turn for a user, with explanations."""
    from agent.history import load_history
    from agent.session import open_sessions
    from cli.chat import run_turn

    cfg = settings(ctx, config, store_dir=store, chroma_url=chroma_url)
    recommender = open_recommender(cfg, serve, err if as_json else console)
    sessions = open_sessions(recommender.settings)
    convo = sessions.load(user)
    load_history(convo, history, recommender.store)
    attachments = {p.name: p for p in (image, audio) if p is not None}
    message = query or ""
    if as_json:
        result = recommender.respond(convo, message, k, attachments)
        render.print_json(console, result.as_dict())
    else:
        run_turn(recommender, convo, message, k, attachments, console)
    sessions.save(convo)


def chat(
    ctx: typer.Context,
    user: UserOpt = "guest",
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=20, help="Items per turn.")] = 3,
    history: HistoryOpt = None,
    script: Annotated[
        Path | None, typer.Option(help="Read the user's lines from this file instead.")
    ] = None,
    reset: Annotated[bool, typer.Option(help="Forget this user's session and profile.")] = False,
    serve: ServeOpt = True,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Multi-turn recommendation chat in the terminal (streamed replies, memory, /why)."""
    from agent.history import load_history
    from agent.session import open_sessions
    from cli.chat import repl

    cfg = settings(ctx, config, store_dir=store, chroma_url=chroma_url)
    recommender = open_recommender(cfg, serve, console)
    sessions = open_sessions(recommender.settings)
    if reset:
        sessions.reset(user)
    convo = sessions.load(user)
    load_history(convo, history, recommender.store)
    lines = script.read_text().splitlines() if script else None
    repl(recommender, convo, console, k, sessions.save, lines)
