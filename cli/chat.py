"""Terminal front ends of the agent: a one-shot turn and the multi-turn chat (REPL).

Chat commands: ``/profile`` shows the profile (standing preferences included) and the last
turn's constraints, ``/why N`` the score breakdown, reasons, grounding and constraints of
recommendation N, ``/image PATH`` and ``/audio PATH`` attach a picture or a voice query to the
next message, ``/reset`` forgets the session, ``/quit`` leaves.

Everything the catalogue or the LLM wrote (titles, explanations, notices) prints with markup off.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from cli.render import safe

if TYPE_CHECKING:
    from agent.conversation import Conversation, TurnResult
    from agent.recommender import Recommender

HELP = (
    "commands: /profile, /why N, /image PATH, /audio PATH, /reset, /quit "
    "(anything else is a message)"
)


def print_turn(result: TurnResult, console: Console, streamed: bool) -> None:
    if not streamed:
        console.print(f"[bold]recagent:[/bold] {safe(result.intro)}")
    for notice in result.notices:
        console.print(f"[yellow]notice:[/yellow] {safe(notice)}")
    for number, rec in enumerate(result.recommendations, start=1):
        console.print(
            f"  [bold]{number}. {safe(rec.title)}[/bold] [dim]({safe(rec.item_id)}, "
            f"score {rec.score:.4f})[/dim]"
        )
        console.print(
            f"     {safe(rec.explanation)} [dim]— from {safe(', '.join(rec.cited_fields))}; "
            f"{safe(rec.explanation_source)}[/dim]"
        )


def print_constraints(result: TurnResult | None, console: Console) -> None:
    """The constraints that applied in a turn, and where each came from."""
    if result is None or not result.applied:
        console.print("no constraints applied this turn")
        return
    table = Table(title="constraints this turn")
    for column in ("kind", "value", "from", "your words"):
        table.add_column(column, overflow="fold")
    for a in result.applied:
        table.add_row(safe(a.kind), safe(a.shown()), safe(a.source), safe(a.words))
    console.print(table)


def why(result: TurnResult | None, number: int, console: Console) -> None:
    if result is None or not 1 <= number <= len(result.recommendations):
        console.print("no such recommendation")
        return
    rec = result.recommendations[number - 1]
    table = Table(title=safe(f"why {rec.title} ({rec.item_id})"))
    table.add_column("signal")
    table.add_column("value")
    for key, value in rec.breakdown.items():
        table.add_row(safe(key), f"{value:.4f}")
    console.print(table)
    console.print(f"explanation ({rec.explanation_source}): {rec.explanation}", markup=False)
    console.print(f"cited fields: {', '.join(rec.cited_fields)}", markup=False)
    for reason in rec.reasons:
        console.print(f"reason: {reason}", markup=False)
    print_constraints(result, console)
    if rec.problems:
        console.print(f"grounding checker removed: {'; '.join(rec.problems)}", markup=False)
    facts = {k: v for k, v in rec.facts.items() if v not in (None, "", [], {})}
    console.print_json(json.dumps(facts, ensure_ascii=False, default=str))


def run_turn(
    recommender: Recommender,
    convo: Conversation,
    message: str,
    k: int,
    attachments: dict[str, Path],
    console: Console,
    stream: bool = True,
) -> TurnResult:
    """One turn on the terminal: the ranked titles as soon as they are known, then the reply
    (streamed when the LLM writes it) and each item with its explanation."""
    streamed: list[str] = []
    prefixed: list[bool] = []

    def prefix() -> None:
        if not prefixed:
            prefixed.append(True)
            console.print("[bold]recagent:[/bold] ", end="")

    def on_token(text: str) -> None:
        prefix()
        streamed.append(text)
        console.print(text, end="", markup=False, highlight=False)

    def on_ranked(ranked: list[tuple[str, str]]) -> None:
        if ranked:
            console.print(f"[dim]found: {safe(' · '.join(title for _, title in ranked))}[/dim]")

    def on_first_look(ranked: list[tuple[str, str]]) -> None:
        if ranked:
            titles = safe(" · ".join(title for _, title in ranked))
            console.print(f"[dim]first look (the rules' reading): {titles} … reading …[/dim]")

    result = recommender.respond(
        convo,
        message,
        k,
        attachments,
        on_token if stream else None,
        on_ranked=on_ranked,
        on_first_look=on_first_look,
    )
    if streamed:
        console.print()
        if "".join(streamed).strip().strip('"') != result.intro:
            console.print(
                f"[dim](withdrawn: that sentence named items that are not among the "
                f"recommendations)[/dim] {safe(result.intro)}"
            )
    else:
        prefix()
        console.print(result.intro, markup=False)
    print_turn(result, console, streamed=True)
    return result


def repl(
    recommender: Recommender,
    convo: Conversation,
    console: Console,
    k: int,
    save: Callable[[Conversation], None],
    lines: Iterable[str] | None = None,
) -> None:
    """The chat loop; ``lines`` replaces the keyboard (scripted conversations, tests)."""
    console.print(f"chatting as [bold]{safe(convo.user_id)}[/bold]; {HELP}")
    attachments: dict[str, Path] = {}
    last: TurnResult | None = None
    source = iter(lines) if lines is not None else None
    while True:
        try:
            line = next(source) if source is not None else console.input("[bold]you:[/bold] ")
        except (EOFError, StopIteration):
            break
        if source is not None:
            console.print(f"[bold]you:[/bold] {safe(line)}")
        line = line.strip()
        if not line:
            continue
        if line in {"/quit", "/exit"}:
            break
        if line == "/profile":
            console.print_json(convo.profile.model_dump_json())
            print_constraints(last, console)
        elif line.startswith("/why"):
            arg = line.removeprefix("/why").strip()
            why(last, int(arg) if arg.isdigit() else 0, console)
        elif line.startswith(("/image ", "/audio ")):
            path = Path(line.split(maxsplit=1)[1]).expanduser()
            if not path.is_file():
                console.print(f"no such file: {path}", markup=False)
            else:
                attachments[path.name] = path
                console.print(f"attached {path.name} to the next message", markup=False)
        elif line == "/reset":
            convo.messages.clear()
            convo.recommended.clear()
            convo.requests.clear()
            console.print("session cleared (the profile is kept; delete it with --reset)")
        elif line.startswith("/"):
            console.print(HELP)
        else:
            last = run_turn(recommender, convo, line, k, attachments, console)
            attachments = {}
            save(convo)
