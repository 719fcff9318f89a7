"""``recagent enrich``: knowledge from other sources for every stored item
(:mod:`indexing.enrich`); ``recagent index`` runs it after embedding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli import render
from cli.options import ConfigOpt, StoreOpt, UrlOpt, settings
from cli.render import console
from indexing.enrich import Source
from indexing.store import Store
from tools.config import Settings
from tools.errors import InputError
from tools.factory import Models

SOURCES = ("wordnet",)


def make_sources(settings: Settings, models: Models, names: list[str]) -> list[Source]:
    """The named knowledge sources (a ModelError when one cannot be set up)."""
    from indexing.senses import WordNetSource
    from tools.wordnet import open_wordnet

    unknown = sorted(set(names) - set(SOURCES))
    if unknown:
        raise InputError(f"unknown knowledge source {unknown[0]!r}: use {', '.join(SOURCES)}")
    return [WordNetSource(open_wordnet(settings.cache_dir), models.text_embedder.embed)]


def enrich_store(
    settings: Settings,
    store: Store,
    models: Models,
    out: Console,
    names: list[str],
    report_path: Path | None = None,
) -> None:
    """Enrich ``store`` from the named sources: a bar on a terminal, then the report."""
    from indexing.enrich import enrich

    sources = make_sources(settings, models, names)
    if out.is_terminal:
        with render.progress(out, "enriching") as progress:
            report = enrich(store, sources, progress)
    else:
        report = enrich(store, sources)
    for name, result in report.sources.items():
        out.print(
            f"knowledge from {name}: {result.asked} items asked, {result.unchanged} unchanged, "
            f"{result.with_facts} with facts ({result.facts} facts), {len(result.failed)} "
            f"failed batches, {result.seconds:.1f} s",
            markup=False,
        )
        for failure in result.failed:
            out.print(f"  failed: {failure}", markup=False)
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.as_dict(), indent=2))


def enrich_cmd(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None,
        typer.Option(help=f"Knowledge source (repeatable; default: all of {', '.join(SOURCES)})."),
    ] = None,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    collection: Annotated[str | None, typer.Option(help="Collection prefix.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the run report as JSON here.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Give every indexed item facts from knowledge sources (WordNet: the item's sense, chosen
    by its category path and description; its names, hypernyms and gloss), stored one vector per
    fact beside the store's collections. Incremental by item hash and source version, resumable
    after a kill; `recagent index` runs it after embedding (`--no-enrich` skips it)."""
    from agent.build import open_indexed_store

    cfg = settings(ctx, config, store_dir=store, chroma_url=chroma_url, collection=collection)
    indexed, models = open_indexed_store(cfg)
    enrich_store(cfg, indexed, models, console, list(source or SOURCES), report)
