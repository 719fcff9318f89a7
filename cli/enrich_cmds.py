"""``recagent enrich``: knowledge from other sources for every stored item
(:mod:`indexing.enrich`); ``recagent index`` runs it after embedding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
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

SOURCES = ("wordnet", "llm")
BATCH_TIMEOUT_S = 900.0
DEFAULT_SOURCES = ("wordnet",)  # llm: asked for by name (slow on CPU; see README, the audit)


@dataclass(frozen=True)
class LLMOptions:
    """How the ``llm`` source asks: answers drawn per item, requests in flight."""

    samples: int = 2
    concurrency: int = 16


def make_sources(
    settings: Settings,
    store: Store,
    models: Models,
    names: list[str],
    llm: LLMOptions | None = None,
) -> list[Source]:
    """The named knowledge sources, in the order given (a ModelError or LLMUnavailable when one
    cannot be set up)."""
    unknown = sorted(set(names) - set(SOURCES))
    if unknown:
        raise InputError(f"unknown knowledge source {unknown[0]!r}: use {', '.join(SOURCES)}")
    sources: list[Source] = []
    for name in dict.fromkeys(names):
        if name == "wordnet":
            from indexing.senses import WordNetSource
            from tools.wordnet import open_wordnet

            sources.append(
                WordNetSource(open_wordnet(settings.cache_dir), models.text_embedder.embed)
            )
        else:
            sources.append(llm_source(settings, store, models, llm or LLMOptions()))
    return sources


def llm_source(settings: Settings, store: Store, models: Models, options: LLMOptions) -> Source:
    """The ``llm`` source on the configured endpoint(s); answers cached beside the data."""
    from agent.llm import endpoint
    from eval.llm_client import ChatClient, ResponseCache
    from indexing.knowledge import KnowledgeStore
    from indexing.llm_facts import LLMFactSource

    target = endpoint(settings)
    knowledge = KnowledgeStore(store)

    def gloss(item_ids: Sequence[str]) -> dict[str, str]:
        return {
            item_id: fact.text
            for item_id, facts in knowledge.facts(item_ids).items()
            for fact in facts
            if fact.source == "wordnet" and fact.field == "gloss"
        }

    cache = ResponseCache(settings.data_dir / "llm" / "facts-cache.jsonl")
    # batch work, not a turn: a request waits behind the others the server is decoding
    timeout = max(settings.llm.request_timeout, BATCH_TIMEOUT_S)
    client = ChatClient(target, cache, options.concurrency, timeout)
    return LLMFactSource(
        settings.models.llm.rsplit("/", 1)[-1],
        lambda requests: client.many(requests, desc="LLM facts", progress=False),
        models.text_embedder.embed,
        gloss,
        samples=options.samples,
    )


def enrich_store(
    settings: Settings,
    store: Store,
    models: Models,
    out: Console,
    names: list[str],
    report_path: Path | None = None,
    llm: LLMOptions | None = None,
) -> None:
    """Enrich ``store`` from the named sources: a bar on a terminal, then the report."""
    from indexing.enrich import enrich

    sources = make_sources(settings, store, models, names, llm)
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
        typer.Option(
            help=f"Knowledge source, repeatable: {', '.join(SOURCES)} (default: "
            f"{', '.join(DEFAULT_SOURCES)}; llm needs a running LLM, see `recagent llm serve`)."
        ),
    ] = None,
    samples: Annotated[
        int,
        typer.Option(
            min=2, max=8, help="llm: answers drawn per item; a fact is kept when two agree."
        ),
    ] = 2,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="llm: requests in flight (the server batches them).")
    ] = 16,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    collection: Annotated[str | None, typer.Option(help="Collection prefix.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the run report as JSON here.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Give every indexed item facts from knowledge sources (WordNet: the item's sense, chosen
    by its category path and description; its names, hypernyms and gloss. The LLM, asked by
    name: short phrases under a schema, kept where two samples agree), stored one vector per
    fact beside the store's collections. Incremental by item hash and source version, resumable
    after a kill; `recagent index` runs it after embedding (`--no-enrich` skips it)."""
    from agent.build import open_indexed_store

    cfg = settings(ctx, config, store_dir=store, chroma_url=chroma_url, collection=collection)
    indexed, models = open_indexed_store(cfg)
    options = LLMOptions(samples, concurrency)
    enrich_store(cfg, indexed, models, console, list(source or DEFAULT_SOURCES), report, options)
