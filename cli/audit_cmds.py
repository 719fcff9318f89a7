"""``recagent eval audit-sample`` and ``audit-score``: the hand audit of written item facts
(:mod:`eval.fact_audit`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.options import ConfigOpt, StoreOpt, settings
from cli.render import console
from tools.errors import InputError


def audit_sample(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            help="The facts' source as stored: llm:<model> (the LLM's), wordnet, vision:<model>."
        ),
    ],
    out: Annotated[Path, typer.Option(help="The JSONL file to judge (one fact a line).")],
    facts: Annotated[int, typer.Option(min=1, max=10_000, help="Facts to draw, at least.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the items' shuffle.")] = 7,
    half: Annotated[
        str, typer.Option(help="The labelled half whose relevant items are sampled (dev).")
    ] = "dev",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Draw facts of one source for a person to judge: the items relevant to a turn of the
    labelled half, shuffled with --seed, every fact of each item in that order until --facts
    are in. Set each line's "true" to true or false (and "why"), then `eval audit-score`."""
    from agent.build import open_indexed_store
    from eval.conversation_set import HALVES, load_set
    from eval.fact_audit import draw, relevant_items, rows
    from indexing.knowledge import KnowledgeStore

    if half not in HALVES:
        raise InputError(f"--half must be one of {', '.join(HALVES)}, not {half!r}")
    if out.exists():
        raise InputError(f"{out} exists: judged work is never overwritten; choose another --out")
    cfg = settings(ctx, config, store_dir=store)
    indexed, _ = open_indexed_store(cfg)
    items = {i.id: i.title for i in indexed.all_items()}
    turns = [t.relevant for c in load_set(half) for t in c.turns]
    candidates = relevant_items(items, turns)
    sample = draw(candidates, KnowledgeStore(indexed).facts, source, facts, seed)
    if not sample:
        raise InputError(
            f"no facts from {source!r} for the {len(candidates)} items relevant to the {half} "
            "half: run `recagent enrich --source …` first, and name the source as stored "
            "(for the LLM: llm:<model name>)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    try:  # "x": a file made meanwhile is not overwritten either
        with out.open("x", encoding="utf-8") as file:
            file.write("".join(json.dumps(r) + "\n" for r in rows(sample, items)))
    except FileExistsError as exc:
        raise InputError(f"{out} exists: judged work is never overwritten") from exc
    count = len({f.item_id for f in sample})
    console.print(
        f"{len(sample)} facts of {count} items from {escape(source)} written to "
        f"[bold]{escape(str(out))}[/bold]: judge each line, then `recagent eval audit-score`"
    )


def audit_score(
    judged: Annotated[list[Path], typer.Argument(help="Judged files, one source each.")],
) -> None:
    """Precision of each judged file (true facts / facts) against the 90% bar a source must
    pass to be on by default."""
    from eval.fact_audit import BAR, score

    table = Table(title="Audited facts")
    for column in ("file", "source", "items", "facts", "true", "precision", f"≥ {BAR:.0%}"):
        table.add_column(column)
    for path in judged:
        s = score(path)
        table.add_row(
            escape(path.name),
            escape(s.source),
            str(s.items),
            str(s.facts),
            str(s.true),
            f"{s.precision:.0%}",
            "yes" if s.on_by_default else "no",
        )
    console.print(table)
