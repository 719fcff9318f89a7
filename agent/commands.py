"""What the CLI subcommands do, with terminal output (rich). Kept apart from argument parsing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
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

from indexing.search import Filters, Hit
from indexing.store import open_store
from tools.config import Settings


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("•"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


# -- models ------------------------------------------------------------------------------------
def prepare_models(
    settings: Settings, console: Console, skip_llm: bool = False, force: bool = False
) -> None:
    from tools import models

    for shipped in models.SHIPPED.values():
        if skip_llm and shipped.role == "llm":
            console.print(f"skipped {shipped.hub_id} (--skip-llm)")
            continue
        if models.is_prepared(shipped, settings.models_dir) and not force:
            console.print(f"[green]✓[/green] {shipped.hub_id} ({shipped.role}) already prepared")
            continue
        with _progress(console) as progress:
            task = progress.add_task(f"{shipped.slug}", total=None)

            def update(
                label: str,
                done: int,
                total: int,
                task: TaskID = task,
                progress: Progress = progress,
                shipped: models.ShippedModel = shipped,
            ) -> None:
                progress.update(
                    task, description=f"{shipped.slug}: {label}", completed=done, total=total
                )

            path = models.prepare(shipped, settings.models_dir, update, force=force)
        console.print(f"[green]✓[/green] {shipped.hub_id} ({shipped.role}) -> {path}")


def list_models(settings: Settings, console: Console, verify: bool = False) -> None:
    from tools import models

    table = Table(title=f"models (cache: {settings.models_dir})")
    for column in ("role", "configured", "loads from", "status"):
        table.add_column(column, overflow="fold")
    cfg = settings.models
    roles = {
        "llm": cfg.llm,
        "captioner": cfg.captioner,
        "whisper": cfg.whisper,
        "text_embedder": cfg.text_embedder,
        "image_embedder": cfg.image_embedder,
    }
    for role, ref in roles.items():
        if ref is None:
            fallback = "pixel description" if role == "captioner" else "pixel statistics"
            table.add_row(role, "(none)", fallback, "[green]built in[/green]")
            continue
        shipped = models.SHIPPED.get(ref)
        try:
            where = models.resolve(ref, settings.models_dir)
            status = "[green]ready[/green]" if shipped or Path(where).exists() else "hub id"
        except models.ModelError as exc:
            where = "-"
            status = "[yellow]not prepared[/yellow]" if shipped else f"[red]{exc}[/red]"
        if verify and shipped and models.is_prepared(shipped, settings.models_dir):
            problems = models.verify(shipped, settings.models_dir)
            status = (
                "[green]verified[/green]" if not problems else f"[red]{'; '.join(problems)}[/red]"
            )
        table.add_row(role, ref, where, status)
    console.print(table)


# -- catalogues --------------------------------------------------------------------------------
def install_catalogue(name: str, target: Path | None, settings: Settings, console: Console) -> Path:
    folder = target or settings.data_dir / "catalogues" / name
    if name == "tuxpaint":
        from indexing import tuxpaint

        with _progress(console) as progress:
            task = progress.add_task("linking Tux Paint stamps", total=None)
            return tuxpaint.install(
                folder,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    if name == "movielens":
        from indexing import movielens

        return movielens.install(folder)
    raise ValueError(f"unknown catalogue {name!r}: choose tuxpaint or movielens")


def default_catalogue(settings: Settings) -> Path:
    return settings.data_dir / "catalogues" / "tuxpaint" / "items.jsonl"


# -- indexing ----------------------------------------------------------------------------------
def run_index(
    settings: Settings,
    catalogue: Path,
    console: Console,
    prune: bool = False,
    limit: int | None = None,
    report_path: Path | None = None,
) -> int:
    from indexing.loaders import CatalogueError, load_catalogue
    from indexing.pipeline import Indexer
    from tools.models import ModelError

    try:
        loaded = load_catalogue(catalogue)
    except CatalogueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    if limit is not None:
        loaded.items = loaded.items[:limit]
    target = settings.chroma_url or str(settings.resolved_store_dir)
    console.print(
        f"indexing {len(loaded.items)} items from {catalogue} into {target} "
        f"(collections {settings.collection}_text / {settings.collection}_image)"
    )
    try:
        store, models = open_store(settings)
    except (ModelError, ConnectionError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    indexer = Indexer(store, models, settings.index)
    if console.is_terminal:
        with _progress(console) as progress:
            task = progress.add_task("indexing", total=None)
            report = indexer.run(
                loaded,
                prune=prune,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    else:  # logs and pipes: one plain line per written chunk
        report = indexer.run(
            loaded,
            prune=prune,
            progress=lambda done, total: console.print(f"progress: {done}/{total} items written"),
        )
    print_report(report.as_dict(), console)
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.as_dict(), indent=2))
    text_count, image_count = store.count()
    console.print(f"store now holds {text_count} items ({image_count} with pictures)")
    return 0


def print_report(report: dict[str, object], console: Console) -> None:
    failed = report["failed"]
    assert isinstance(failed, list)
    console.print(
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
            table.add_row(str(entry["item"] or "-"), str(entry["where"]), str(entry["problem"]))
        console.print(table)
        if len(failed) > 50:
            console.print(f"… and {len(failed) - 50} more; reasons: {dict(reasons)}")


# -- search ------------------------------------------------------------------------------------
def run_search(
    settings: Settings,
    console: Console,
    query: str | None,
    image: Path | None,
    k: int,
    filters: Filters,
    as_json: bool,
) -> int:
    from indexing.search import search_image, search_text
    from tools.media import MediaError
    from tools.models import ModelError

    try:
        store, _ = open_store(settings)
        if image is not None:
            hits = search_image(
                store,
                image,
                k,
                filters,
                settings.index.max_image_bytes,
                settings.index.max_image_pixels,
            )
        else:
            assert query is not None
            hits = search_text(store, query, k, filters)
    except (ModelError, ConnectionError, MediaError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    if as_json:
        console.print_json(json.dumps([_hit_json(h) for h in hits]))
    else:
        print_hits(hits, console, title=f"{'image ' + str(image) if image else repr(query)}")
    return 0


def _hit_json(hit: Hit) -> dict[str, object]:
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


def print_hits(hits: list[Hit], console: Console, title: str) -> None:
    table = Table(title=f"top {len(hits)} for {title}")
    for column in ("#", "score", "item", "category", "caption / transcript"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        media = []
        if hit.caption:
            media.append(f"[dim]caption ({hit.caption_source}):[/dim] {hit.caption}")
        if hit.transcript:
            media.append(f"[dim]heard:[/dim] “{hit.transcript}”")
        table.add_row(
            str(rank),
            f"{hit.score:.3f}",
            f"{hit.title}\n[dim]{hit.id}[/dim]",
            hit.category or "-",
            "\n".join(media) or "-",
        )
    console.print(table)
    if not hits:
        console.print("no items matched (is the store indexed? are the filters too strict?)")


# -- demo --------------------------------------------------------------------------------------
DEMO_TEXT_QUERIES = [
    ("an animal that lives on a farm", Filters()),
    ("something sweet to eat", Filters(category="food")),
    ("a vehicle that flies through the sky", Filters()),
    ("a musical instrument", Filters(has_audio=True)),
]


def demo_images() -> list[Path]:
    """Real photos shipped with scikit-learn (a dependency), used as picture queries."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
    return [p for p in (folder / "flower.jpg", folder / "china.jpg") if p.is_file()]


def run_demo(settings: Settings, console: Console, skip_llm: bool = False) -> int:
    console.rule("1. models")
    prepare_models(settings, console, skip_llm=skip_llm)
    console.rule("2. demo catalogue (Tux Paint stamps)")
    catalogue = install_catalogue("tuxpaint", None, settings, console)
    console.print(f"catalogue: {catalogue}")
    console.rule("3. index")
    code = run_index(settings, catalogue, console, prune=True)
    if code:
        return code
    console.rule("4. sample searches")
    for query, filters in DEMO_TEXT_QUERIES:
        where = filters.where()
        if where:
            console.print(f"[dim]filter: {where}[/dim]")
        run_search(settings, console, query=query, image=None, k=3, filters=filters, as_json=False)
    for photo in demo_images():
        run_search(
            settings, console, query=None, image=photo, k=3, filters=Filters(), as_json=False
        )
    if skip_llm:
        return 0
    console.rule("5. the LLM (vLLM, OpenAI-compatible)")
    if serve_llm(settings, console):
        return 1
    console.rule("6. a conversation (type the same into `recagent chat`)")
    from agent.chat import repl
    from agent.session import SessionStore

    recommender = build_recommender(settings, console, serve=False)
    sessions = SessionStore(settings.data_dir)
    sessions.reset("demo")
    convo = sessions.load("demo")
    repl(recommender, convo, console, 3, sessions.save, DEMO_CONVERSATION)
    console.print("the server keeps running for `recagent chat`; stop it with `recagent llm stop`")
    return 0


# -- LLM and agent -----------------------------------------------------------------------------
def serve_llm(settings: Settings, console: Console) -> int:
    from agent import llm_server

    state, current = llm_server.status(settings)
    if current == "ready" and state is not None:
        console.print(f"[green]✓[/green] vLLM already running: {state.base_url} (pid {state.pid})")
        return 0
    console.print(
        f"starting vLLM for {settings.models.llm} on {settings.llm.host}:"
        f"{settings.llm.port} (CPU start-up takes about 2 minutes)"
    )
    with console.status("waiting for vLLM") as spinner:
        try:
            state = llm_server.serve(
                settings,
                on_wait=lambda seconds, line: spinner.update(f"{seconds:.0f} s: {line[-90:]}"),
            )
        except llm_server.ServerError as exc:
            console.print(f"[red]error:[/red] {exc}")
            return 1
        except Exception as exc:
            from tools.models import ModelError

            if isinstance(exc, ModelError):
                console.print(f"[red]error:[/red] {exc}")
                return 1
            raise
    console.print(
        f"[green]✓[/green] vLLM ready: {state.base_url} (pid {state.pid}, log {state.log})"
    )
    return 0


def llm_status(settings: Settings, console: Console) -> int:
    from agent import llm_server

    if settings.llm.base_url:
        ok = llm_server.ready(settings.llm.base_url.rstrip("/"))
        console.print(
            f"remote endpoint {settings.llm.base_url}: "
            f"{'[green]ready[/green]' if ok else '[red]unreachable[/red]'}"
        )
        return 0 if ok else 1
    state, current = llm_server.status(settings)
    if state is None:
        console.print("local vLLM: stopped")
        return 1
    console.print(
        f"local vLLM: {current} at {state.base_url} (pid {state.pid}, model "
        f"{state.model}, log {state.log})"
    )
    return 0 if current == "ready" else 1


def stop_llm(settings: Settings, console: Console) -> int:
    from agent import llm_server

    stopped = llm_server.stop(settings)
    console.print("local vLLM stopped" if stopped else "local vLLM was not running")
    return 0


def build_recommender(settings: Settings, console: Console, serve: bool):  # type: ignore[no-untyped-def]
    """A Recommender on the configured store; without a reachable LLM it still works (embedding
    ranking and template explanations) and says so."""
    from agent.llm import LLMUnavailable, chat_model, endpoint
    from agent.recommender import Recommender

    store, models = open_store(settings)
    if store.count()[0] == 0:
        raise ValueError(
            f"the store {settings.chroma_url or settings.resolved_store_dir} is "
            "empty: index a catalogue first (`recagent index …` or `recagent demo`)"
        )
    if serve and not settings.llm.base_url:
        serve_llm(settings, console)

    def chat(streaming: bool, budget: int) -> Any:
        return chat_model(settings, streaming=streaming, max_tokens=budget)

    try:
        endpoint(settings)
    except LLMUnavailable as exc:
        console.print(f"[yellow]notice:[/yellow] {exc}; answering without the LLM")
        return Recommender(settings, store, models, None)
    return Recommender(settings, store, models, chat)


def load_history(convo: object, history: Path | None, store: object) -> None:
    """Seed a conversation's interaction history from a JSON list of item ids."""
    if history is None:
        return
    ids = [str(i) for i in json.loads(history.read_text())]
    got = store.text.get(ids=ids, include=["metadatas"])  # type: ignore[attr-defined]
    titles = {i: str(m["title"]) for i, m in zip(got["ids"], got["metadatas"], strict=True)}
    missing = [i for i in ids if i not in titles]
    if missing:
        raise ValueError(f"history names items not in the store: {', '.join(missing[:5])}")
    convo.history_ids = ids  # type: ignore[attr-defined]
    convo.history_titles = [titles[i] for i in ids]  # type: ignore[attr-defined]


DEMO_CONVERSATION = [
    "Hi! I love farm animals, especially ones that make a noise.",
    "Now something sweet to eat, please: fruit would be nice.",
    "/why 1",
    "/profile",
]


SIMULATION_DATASETS = ("ml-100k", "demo")


def simulation_setup(settings: Settings, dataset: str, console: Console):  # type: ignore[no-untyped-def]
    """The recommender, catalogue ids, a case sampler ``(n, seed) -> cases`` and the item kind
    for simulated users. ml-100k indexes the movies once into DATA_DIR/eval-stores/ml-100k
    (unless a store is configured); demo uses the configured store."""
    from agent.toolkit import facts_from_metadata
    from eval import simulate
    from eval.cases import ml100k_cases
    from eval.movielens import load_split
    from indexing import movielens
    from indexing.loaders import LoadResult
    from indexing.pipeline import Indexer

    if dataset not in SIMULATION_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: use {' or '.join(SIMULATION_DATASETS)}")
    if dataset == "ml-100k":
        if settings.store_dir is None and settings.chroma_url is None:
            settings = settings.model_copy(
                update={"store_dir": settings.data_dir / "eval-stores" / "ml-100k"}
            )
        items = {item.id: item for item in movielens.load_items()}
        store, models = open_store(settings)
        if store.count()[0] < len(items):
            console.print(f"indexing the {len(items)} ML-100K movies for the agent (once)")
            with _progress(console) as bar:
                task = bar.add_task("indexing movies", total=len(items))
                Indexer(store, models, settings.index).run(
                    LoadResult(list(items.values())),
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        split = load_split()
        recommender = build_recommender(settings, console, serve=False)
        catalogue = set(recommender.store.text.get(include=[])["ids"])
        return (
            recommender,
            catalogue,
            (lambda n, seed: ml100k_cases(split, items, n, seed)),
            "movie",
        )
    recommender = build_recommender(settings, console, serve=False)
    stored = recommender.store.text.get(include=["metadatas"])
    pairs = [
        (i, facts_from_metadata(m))
        for i, m in sorted(zip(stored["ids"], stored["metadatas"], strict=True))
    ]
    catalogue = set(stored["ids"])
    return (
        recommender,
        catalogue,
        (lambda n, seed: simulate.demo_cases(pairs, n, seed)),
        "catalogue item",
    )
