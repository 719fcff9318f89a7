"""``recagent bench``: throughput and latency figures, written as JSON."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.markup import escape

from cli import render
from cli.agent_cmds import open_recommender, serve_llm
from cli.eval_common import llm_endpoint, setup_simulation
from cli.options import ConfigOpt, FiguresOpt, ServeOpt, StoreOpt, UrlOpt, settings
from cli.render import console
from tools.errors import InputError

bench_app = typer.Typer(help="Benchmarks that write their figures as JSON.", no_args_is_help=True)


def print_figures(figures: dict[str, object], out: Path) -> None:
    render.print_json(console, figures["bars"])
    console.print(f"figures written to [bold]{escape(str(out))}[/bold]")


@bench_app.command("index")
def bench_index(
    ctx: typer.Context,
    catalogue: Annotated[
        Path | None, typer.Option(help="Catalogue to index (default: the demo).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use the first N items.")] = None,
    out: FiguresOpt = Path("bench/index.json"),
    config: ConfigOpt = None,
) -> None:
    """Items/s per stage vs each model alone, batched vs one-at-a-time, and an unchanged re-run."""
    from indexing.bench import run_bench

    figures = run_bench(settings(ctx, config), catalogue, limit, out, render.printer(console))
    print_figures(figures, out)


@bench_app.command("ray")
def bench_ray(
    ctx: typer.Context,
    items: Annotated[int, typer.Option(help="Synthetic catalogue size.", min=1)] = 2000,
    picture_share: Annotated[
        float, typer.Option(help="Share of items with a generated PNG.", min=0, max=1)
    ] = 0.1,
    sound_share: Annotated[
        float, typer.Option(help="Share of items with a generated WAV tone.", min=0, max=1)
    ] = 0.05,
    workers: Annotated[
        list[int] | None,
        typer.Option(help="Ray workers per stage; repeat for each run (default: 1 and 2)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic catalogue.")] = 2026,
    address: Annotated[
        str | None,
        typer.Option(
            help="A running Ray cluster (`ray start --head`, then `ray start --address` on "
            "each worker) instead of a local Ray instance started for the run."
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local/--no-local",
            help="Index with the local indexer too, for the Ray/local ratio. --no-local at "
            "large sizes: the Ray stores are then checked against the catalogue's ids.",
        ),
    ] = True,
    out: FiguresOpt = Path("bench/ray.json"),
    config: ConfigOpt = None,
) -> None:
    """Items/s of the local indexer and of `index --engine ray` at each worker count, on one
    seeded synthetic catalogue in one run (a local Ray instance, or the cluster at --address),
    with each model's raw throughput for reference."""
    from indexing.bench_ray import run_ray_bench

    counts = workers or [1, 2]
    if min(counts) < 1:
        raise InputError("--workers must be 1 or more")
    figures = run_ray_bench(
        settings(ctx, config),
        items,
        picture_share,
        sound_share,
        counts,
        out,
        seed=seed,
        log=render.printer(console),
        address=address,
        local=local,
    )
    print_figures(figures, out)


@bench_app.command("chroma")
def bench_chroma(
    items: Annotated[int, typer.Option(help="Items in the synthetic store.", min=1)] = 1_000_000,
    image_share: Annotated[
        float, typer.Option(help="Share of items with an image vector too.", min=0, max=1)
    ] = 0.2,
    queries: Annotated[int, typer.Option(help="Timed queries of each kind.", min=1)] = 200,
    k: Annotated[int, typer.Option("--k", help="Results per query.", min=1)] = 50,
    batch: Annotated[int, typer.Option(help="Items per add call.", min=1)] = 2000,
    backend: Annotated[
        list[str] | None,
        typer.Option(help="embedded or server; repeat for both (default: both)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="Use the `chroma run` server at this URL instead of starting one (its memory "
            "and disk are then not measured; the benchmark's collections are deleted after)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic store.")] = 2026,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Where the temporary persist folders go (default: the system's)."),
    ] = None,
    concurrency: Annotated[
        list[int] | None,
        typer.Option(
            help="Client threads querying at once, for queries/s (unfiltered and category); "
            "repeat for each level (default: 1, 8 and 32; 0 to skip)."
        ),
    ] = None,
    out: FiguresOpt = Path("bench/chroma.json"),
) -> None:
    """Size one Chroma node: the same synthetic store (clustered 384-d text vectors for every
    item, 1280-d image vectors for a share, category/price/has_image/has_audio metadata)
    loaded into embedded Chroma and into a `chroma run` server (started here on a free port,
    or the one at --url), in one run. Per backend: load time and items/s, top-k latency
    p50/p95 unfiltered, with a category filter, with a price range and on the image
    collection, recall against an exact search, queries/s with several client threads at
    once, disk size and memory (server RSS; for embedded, this process's RSS growth).
    Persist folders are temporary and deleted at the end. At 1,000,000 items expect more
    than an hour on 2 cores."""
    from rich.table import Table

    from indexing.bench_chroma import BACKENDS, run_chroma_bench
    from indexing.bench_chroma_table import table_rows
    from indexing.synthetic_store import SyntheticSpec

    levels = [1, 8, 32] if concurrency is None else [c for c in concurrency if c != 0]
    if any(c < 0 for c in levels):
        raise InputError("--concurrency must be 1 or more (0 skips the throughput runs)")
    chosen = backend or list(BACKENDS)
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown:
        raise InputError(f"--backend must be embedded or server, not {', '.join(unknown)}")
    figures = run_chroma_bench(
        SyntheticSpec(items=items, image_share=image_share, seed=seed),
        out,
        backends=[b for b in BACKENDS if b in chosen],
        queries=queries,
        k=k,
        batch=batch,
        url=url,
        workdir=workdir,
        concurrency=levels,
        progress=lambda label, total: render.progress(console, label, total),
        log=render.printer(console),
    )
    header, *rows = table_rows(figures)
    table = Table(title=f"Chroma at {items:,} items ({figures['date']})")
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*(render.safe(cell) for cell in row))
    console.print(table)
    console.print(f"figures written to [bold]{escape(str(out))}[/bold]")


@bench_app.command("chat")
def bench_chat(
    ctx: typer.Context,
    out: FiguresOpt = Path("bench/chat.json"),
    serve: ServeOpt = True,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Per-turn latency split (LLM, tools, retrieval), tokens/s, and raw vLLM in the same run."""
    from eval.bench_chat import run_chat_bench

    cfg = settings(ctx, config, store_dir=store, chroma_url=chroma_url)
    recommender = open_recommender(cfg, serve, console, need_llm=True)
    if recommender.chat is None:
        raise InputError("bench chat needs a running LLM")
    figures = run_chat_bench(recommender, out, render.printer(console))
    print_figures(figures, out)


@bench_app.command("eval")
def bench_eval(
    ctx: typer.Context,
    out: FiguresOpt = Path("bench/eval.json"),
    judge_cases: Annotated[int, typer.Option(help="Judge cases per mode.", min=1)] = 16,
    episodes: Annotated[int, typer.Option(help="Simulator episodes per mode.", min=1)] = 8,
    max_turns: Annotated[int, typer.Option(help="Turns per episode.", min=1)] = 2,
    concurrency: Annotated[int, typer.Option(help="Requests / episodes in flight.", min=2)] = 8,
    dataset: Annotated[str, typer.Option(help="Simulator dataset: demo or ml-100k.")] = "demo",
    seed: Annotated[int, typer.Option(help="Seed; the concurrent mode uses seed + 1.")] = 2026,
    config: ConfigOpt = None,
) -> None:
    """Judge and simulator throughput with concurrent requests against sequential ones, on the
    same server in one run (bar: 3x)."""
    from eval.bench import run_eval_bench
    from eval.setup import load_ml100k, simulation_dataset

    simulation_dataset(dataset)
    cfg = settings(ctx, config)
    target = llm_endpoint(cfg)
    data = load_ml100k()
    judged = {
        "sequential": data.cases(judge_cases, seed),
        "concurrent": data.cases(judge_cases, seed + 1),
    }
    sim = setup_simulation(cfg, dataset)
    simulated = {
        "sequential": sim.cases(episodes, seed),
        "concurrent": sim.cases(episodes, seed + 1),
    }
    figures = run_eval_bench(
        target,
        sim.recommender,
        judged,
        simulated,
        data.catalogue_titles,
        sim.catalogue,
        out,
        concurrency,
        max_turns,
        sim.kind,
    )
    print_figures(figures, out)


@bench_app.command("serve")
def bench_serve(
    ctx: typer.Context,
    out: FiguresOpt = Path("bench/serve.json"),
    levels: Annotated[
        str, typer.Option(help="Concurrent sessions per level, comma-separated.")
    ] = "1,8,32",
    turns: Annotated[int, typer.Option(help="Turns each session plays.", min=1)] = 3,
    max_seconds: Annotated[
        float, typer.Option(help="Time bound of each level, in seconds.", min=1)
    ] = 300.0,
    llm: Annotated[
        bool, typer.Option("--llm/--no-llm", help="Also run the full turn (the LLM's steps on).")
    ] = True,
    url: Annotated[
        str | None,
        typer.Option(
            help="Play against a running service (e.g. a balancer in front of replicas) "
            "instead of starting one; its own turn settings apply, --llm is ignored.",
        ),
    ] = None,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Concurrent simulated sessions against `recagent serve` (started here on 127.0.0.1, a
    process of its own, so client and server do not share an interpreter, or the one at --url):
    turns/s, turn p50/p95, time to the first streamed event, errors and lost sessions at each
    level, for the retrieval-only turn and the full turn (the LLM's expansion, intro and
    explanations on). With --url the token is service.token (RECAGENT_SERVICE__TOKEN)."""
    import json

    from service.bench import bars, run_levels, served

    try:
        counts = [int(x) for x in levels.split(",") if x.strip()]
    except ValueError as exc:
        raise InputError(f"--levels must be numbers separated by commas: {levels!r}") from exc
    if not counts or min(counts) < 1:
        raise InputError("--levels needs at least one level of 1 session or more")
    cfg = settings(ctx, config, store_dir=store, chroma_url=chroma_url)
    log = render.printer(console)
    if url is not None:
        _bench_url(cfg.service.token, url, counts, turns, max_seconds, out, log)
        return
    if llm and not cfg.llm.remote_urls:  # base_url or base_urls: not the local server
        serve_llm(cfg, console)  # the full turn's server finds it running
    runs: dict[str, object] = {}
    designs: list[tuple[str, dict[str, str]]] = [("retrieval only", {})]
    if llm:
        designs.append(
            ("full turn", {"expansion_llm": "true", "explain_llm": "true", "intro_llm": "true"})
        )
    for name, turn in designs:
        log(f"{name}: starting the service")
        with served(cfg, turn, config, out.parent / f"serve-{name.replace(' ', '-')}.log") as url:
            runs[name] = run_levels(url, counts, turns, max_seconds, log=log)
    retrieval = runs["retrieval only"]
    figures = {
        "levels": counts,
        "turns_per_session": turns,
        "runs": runs,
        "bars": bars(retrieval, runs.get("full turn")),  # type: ignore[arg-type]
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print_figures(figures, out)


def _bench_url(
    token: SecretStr | None,
    url: str,
    counts: list[int],
    turns: int,
    max_seconds: float,
    out: Path,
    log: Callable[[str], None],
) -> None:
    """`bench serve --url`: the levels against a service that is already running."""
    import json

    from service.bench import bars, run_levels

    if not url.startswith(("http://", "https://")):
        raise InputError(f"--url must start with http:// or https://, not {url!r}")
    secret = token.get_secret_value() if token is not None else None
    log(f"against {url}")
    run = run_levels(url.rstrip("/"), counts, turns, max_seconds, token=secret, log=log)
    figures = {
        "levels": counts,
        "turns_per_session": turns,
        "url": url,
        "runs": {"given service": run},
        "bars": bars(run, None) | {"measured_on": "the service at --url (its own turn settings)"},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print_figures(figures, out)
