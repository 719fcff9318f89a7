"""Terminal output shared by the commands: the consoles, progress bars, hit tables, the index
report, and printers handed to lower layers as plain callbacks.

Catalogue and LLM text (titles, captions, transcripts, explanations, problems) is untrusted: it is
escaped or printed with markup off, so a title like ``[red]`` prints as written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tools.text import clean

if TYPE_CHECKING:
    from indexing.records import Hit


class SafeConsole(Console):
    """A console that never writes a control or bidirectional-override character it was given
    as text (a catalogue title or an LLM answer could carry a terminal escape)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(clean(o) if isinstance(o, str) else o for o in objects), **kwargs)


def safe(text: str) -> str:
    """Untrusted ``text`` for a markup string: escaped, control characters removed."""
    return escape(clean(text))


console = SafeConsole()
err = SafeConsole(stderr=True)


def progress_bar(out: Console) -> Progress:
    """A bar with done/total, elapsed time and ETA (use as a context manager)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("•"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=out,
        transient=False,
    )


@contextmanager
def progress(
    out: Console, label: str, total: int | None = None, lazy: bool = False
) -> Iterator[Callable[[int, int], None]]:
    """A ``(done, total)`` callback that draws a bar labelled ``label``. ``lazy``: the bar
    appears on the first report only (work that may have nothing to do draws nothing)."""
    bar = progress_bar(out)
    task: TaskID | None = None

    def start() -> TaskID:
        bar.start()
        return bar.add_task(label, total=total)

    def report(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = start()
        bar.update(task, completed=done, total=total)

    if not lazy:
        task = start()
    try:
        yield report
    finally:
        if task is not None:
            bar.stop()


def printer(out: Console) -> Callable[[str], None]:
    """``log(line)`` for lower layers: each line printed as written (markup off)."""

    def log(line: str) -> None:
        out.print(line, markup=False)

    return log


def notice_printer(out: Console) -> Callable[[str], None]:
    """``on_notice(text)``: a yellow ``notice:`` line."""

    def notice(text: str) -> None:
        out.print(f"[yellow]notice:[/yellow] {safe(text)}")

    return notice


def print_json(out: Console, data: Any) -> None:
    """``data`` as indented JSON (values JSON does not know become strings)."""
    import json

    out.print_json(json.dumps(data, default=str))


def hit_json(hit: Hit) -> dict[str, object]:
    """One hit in the shape of ``search --json``."""
    return {
        "id": hit.id,
        "title": hit.title,
        "score": hit.score,
        "matched": hit.matched,
        "category": hit.category,
        "caption": hit.caption,
        "caption_source": hit.caption_source,
        "transcript": hit.transcript,
    }


def print_hits(hits: Sequence[Hit], out: Console, title: str) -> None:
    """A ranked table of hits (score, item, category, caption / transcript)."""
    table = Table(title=f"top {len(hits)} for {safe(title)}")
    for column in ("#", "score", "item", "category", "caption / transcript"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        score = f"{hit.score:.3f}"
        if hit.matched not in {"text", "image"}:  # a fused photo search: each path's share
            score += f"\n[dim]{safe(hit.matched)}[/dim]"
        media = []
        if hit.caption:
            media.append(f"[dim]caption ({safe(hit.caption_source)}):[/dim] {safe(hit.caption)}")
        if hit.transcript:
            media.append(f"[dim]heard:[/dim] “{safe(hit.transcript)}”")
        table.add_row(
            str(rank),
            score,
            f"{safe(hit.title)}\n[dim]{safe(hit.id)}[/dim]",
            safe(hit.category or "-"),
            "\n".join(media) or "-",
        )
    out.print(table)
    if not hits:
        out.print("no items matched (is the store indexed? are the filters too strict?)")


def print_report(report: dict[str, object], out: Console) -> None:
    """An index run's summary line and, when items failed, a table of why (first 50)."""
    failed = report["failed"]
    assert isinstance(failed, list)
    out.print(
        f"[bold]indexed {report['indexed']}[/bold] · unchanged {report['unchanged']} · "
        f"[{'red' if failed else 'green'}]failed {len(failed)}[/] · pruned {report['pruned']} · "
        f"{report['wall_seconds']} s · model calls {report['model_calls']}"
    )
    if failed:
        reasons = Counter(str(f["problem"]).split(":")[0] for f in failed)
        table = Table(title="failed items (skipped; anything stored for them is kept)")
        table.add_column("item")
        table.add_column("where")
        table.add_column("problem", overflow="fold")
        for entry in failed[:50]:
            table.add_row(
                safe(str(entry["item"] or "-")),
                safe(str(entry["where"])),
                safe(str(entry["problem"])),
            )
        out.print(table)
        if len(failed) > 50:
            out.print(f"… and {len(failed) - 50} more; reasons: {dict(reasons)}", markup=False)
