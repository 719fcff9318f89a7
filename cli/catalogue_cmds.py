"""``recagent index`` and ``recagent search``: build the store from a catalogue, query it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from cli import render
from cli.options import ConfigOpt, StoreOpt, UrlOpt, settings
from cli.render import console
from indexing.records import Filters
from tools.config import Settings
from tools.errors import InputError

Engine = Literal["local", "ray"]
PHOTO_DEPTH = 50  # each path's depth before fusion


def index(
    ctx: typer.Context,
    catalogue: Annotated[Path, typer.Argument(help="A .jsonl or .csv catalogue (see README).")],
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    collection: Annotated[
        str | None, typer.Option(help="Collection prefix (default: catalog).")
    ] = None,
    prune: Annotated[
        bool, typer.Option(help="Remove stored items that left the catalogue.")
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option(help="Items per model batch / store write.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Index only the first N items.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the run report as JSON here.")] = None,
    reembed: Annotated[
        bool,
        typer.Option(
            help="When the store was embedded by other models than the configured ones, delete "
            "its vectors and embed everything again (without it such a store is refused)."
        ),
    ] = False,
    enrich: Annotated[
        bool,
        typer.Option(help="Then give the items knowledge from WordNet (`recagent enrich`)."),
    ] = True,
    engine: Annotated[
        Engine,
        typer.Option(
            help="local: the stages in this process; ray: the stages as Ray Data actors "
            "(a local Ray instance, or the cluster at --address)."
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="With --engine ray: a running Ray cluster, e.g. 10.0.0.5:6379."),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="With --engine ray: actors per stage.", min=1, max=256)
    ] = 1,
    config: ConfigOpt = None,
) -> None:
    """Build or update the Chroma collections for a catalogue (incremental, resumable), then
    enrich the items (`recagent enrich`; `--no-enrich` skips it)."""
    if engine == "local" and (address is not None or workers != 1):
        raise InputError("--address and --workers need --engine ray")
    cfg = settings(
        ctx,
        config,
        store_dir=store,
        chroma_url=chroma_url,
        collection=collection,
        index={"batch_size": batch_size},
    )
    index_catalogue(
        cfg,
        catalogue,
        console,
        prune=prune,
        limit=limit,
        report_path=report,
        reembed=reembed,
        enrich=enrich,
        engine=engine,
        address=address,
        workers=workers,
    )


def index_catalogue(
    settings: Settings,
    catalogue: Path,
    out: Console,
    prune: bool = False,
    limit: int | None = None,
    report_path: Path | None = None,
    reembed: bool = False,
    enrich: bool = False,
    engine: Engine = "local",
    address: str | None = None,
    workers: int = 1,
) -> None:
    """Index ``catalogue`` into the configured store: a bar on a terminal, one line per written
    chunk in logs and pipes; then the report (also written to ``report_path`` as JSON); then,
    with ``enrich``, the items' knowledge (a source that cannot be set up is a notice).
    ``engine`` "ray" runs the model stages on Ray (``address``: a running cluster; ``workers``:
    actors per stage)."""
    from indexing.loaders import load_catalogue
    from indexing.pipeline import Indexer
    from indexing.store import open_store
    from tools.renders import RenderCache

    loaded = load_catalogue(catalogue)
    if limit is not None:
        loaded.items = loaded.items[:limit]
    target = settings.chroma_url or str(settings.resolved_store_dir)
    out.print(
        f"indexing {len(loaded.items)} items from {catalogue} into {target} "
        f"(collections {settings.collection}_text / {settings.collection}_image)",
        markup=False,
    )
    store, models = open_store(settings, reembed=reembed)
    renders = RenderCache(settings.renders_dir)
    indexer: Indexer
    if engine == "ray":
        from indexing.ray_engine import RayIndexer

        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        out.print(f"engine: ray ({where}, {workers} worker(s) per stage)", markup=False)
        indexer = RayIndexer(store, models, settings, renders, address=address, workers=workers)
    else:
        indexer = Indexer(store, models, settings.index, renders)
    if out.is_terminal:
        with render.progress(out, "indexing") as report_progress:
            report = indexer.run(loaded, prune=prune, progress=report_progress)
    else:  # logs and pipes: one plain line per written chunk
        report = indexer.run(
            loaded,
            prune=prune,
            progress=lambda done, total: out.print(f"progress: {done}/{total} items written"),
        )
    render.print_report(report.as_dict(), out)
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.as_dict(), indent=2))
    text_count, image_count = store.count()
    out.print(f"store now holds {text_count} items ({image_count} with pictures)")
    if enrich:
        from cli.enrich_cmds import DEFAULT_SOURCES, enrich_store
        from tools.errors import ModelError

        try:
            enrich_store(settings, store, models, out, list(DEFAULT_SOURCES))
        except ModelError as exc:
            out.print(f"notice: the items were not enriched: {exc}", markup=False)


def search(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="What to look for, in words.")] = None,
    image: Annotated[
        Path | None, typer.Option(help="Find items whose picture looks like this file.")
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=200, help="How many items.")] = 5,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    min_price: Annotated[float | None, typer.Option(help="Minimum price.")] = None,
    max_price: Annotated[float | None, typer.Option(help="Maximum price.")] = None,
    has_image: Annotated[
        bool | None, typer.Option("--has-image/--no-image", help="Items with/without a picture.")
    ] = None,
    has_audio: Annotated[
        bool | None, typer.Option("--has-audio/--no-audio", help="Items with/without audio.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    collection: Annotated[str | None, typer.Option(help="Collection prefix.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Search the indexed catalogue by text or by picture, with filters."""
    if (query is None) == (image is None):
        raise InputError("give either a text QUERY or --image FILE")
    cfg = settings(ctx, config, store_dir=store, chroma_url=chroma_url, collection=collection)
    filters = Filters(category, min_price, max_price, has_image, has_audio)
    search_store(cfg, console, query=query, image=image, k=k, filters=filters, as_json=as_json)


def search_store(
    settings: Settings,
    out: Console,
    query: str | None,
    image: Path | None,
    k: int,
    filters: Filters,
    as_json: bool = False,
) -> None:
    """Search by ``image`` if given, else by ``query``; print a table or JSON."""
    from agent.photo import ranked_photo_hits
    from indexing.photo_search import search_photo
    from indexing.store import open_store

    store, models = open_store(settings)
    if image is not None:
        found = search_photo(store, models.photo_tagger, image, max(k, PHOTO_DEPTH), filters)
        hits = ranked_photo_hits(found, settings.fusion, k)
        seen = ", ".join(f"{label.kind.name} {label.probability:.2f}" for label in found.seen)
    else:
        assert query is not None
        hits = store.search_text(query, k, filters)
    if as_json:
        render.print_json(out, [render.hit_json(h) for h in hits])
        return
    if image is not None:
        model = models.photo_tagger.vision.model_id if models.photo_tagger else "no vision model"
        out.print(f"the photo looks like ({escape(model)}): {escape(seen or 'nothing sure')}")
    render.print_hits(hits, out, title=f"image {image}" if image else repr(query))
