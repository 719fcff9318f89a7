"""``recagent eval``: ranking, explanation and conversation evaluations on fixed data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from cli import render
from cli.options import ConcurrencyOpt, ConfigOpt, ResultsOpt, StoreOpt, settings
from cli.render import console
from tools.config import Settings
from tools.errors import InputError, LLMRequestError, LLMUnavailable

if TYPE_CHECKING:
    from agent.llm import Endpoint
    from eval.setup import Simulation

eval_app = typer.Typer(help="Offline evaluation.", no_args_is_help=True)


def llm_endpoint(settings: Settings, hint: str = "") -> Endpoint:
    """The configured LLM endpoint; :class:`LLMUnavailable` (with ``hint``) when none runs."""
    from agent.llm import endpoint

    try:
        return endpoint(settings)
    except LLMUnavailable as exc:
        if not hint:
            raise
        raise LLMUnavailable(f"{exc}{hint}") from exc


@contextmanager
def resumable(kept: str) -> Iterator[None]:
    """An LLM that stops answering ends the run; the message says what was ``kept``."""
    try:
        yield
    except LLMRequestError as exc:
        raise LLMRequestError(f"{exc}; {kept}") from exc


def print_results(out: Path, files: str) -> None:
    console.print((out / "results.md").read_text(), markup=False)
    console.print(f"results written to [bold]{escape(str(out))}[/bold] ({files})")


@eval_app.command("rank")
def eval_rank(
    ctx: typer.Context,
    dataset: Annotated[
        str, typer.Option(help="ml-100k (installed by the data packages); see --inter.")
    ] = "ml-100k",
    inter: Annotated[
        Path | None,
        typer.Option(
            help="Any dataset instead: interactions in RecBole's atomic format (tab-separated, "
            "user_id:token, item_id:token, timestamp:float, optional rating:float)."
        ),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(
            help="With --inter: item facts in the atomic format (item_id:token, a title column, "
            "other text columns for the content side)."
        ),
    ] = None,
    min_rating: Annotated[
        float | None,
        typer.Option(
            help="With --inter: only rows rated at least this are interactions (the file needs "
            "a rating column), e.g. 4 for what users liked."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Results folder (default: results/rank-DATASET).")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(help="Evaluate only the first N users (models still train on all)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the sampled negatives and SASRec.")] = 2026,
    epochs: Annotated[
        int,
        typer.Option(
            help="Most SASRec epochs: training stops earlier when validation NDCG@10 stops rising.",
            min=1,
        ),
    ] = 200,
    seq_len: Annotated[
        list[int] | None,
        typer.Option(
            help="SASRec sequence length to try on validation (repeat the option for several; "
            "default 50 and 100).",
            min=2,
        ),
    ] = None,
    dropout: Annotated[
        list[float] | None,
        typer.Option(
            help="SASRec dropout to try on validation (repeat for several; default 0.2 and 0.5).",
            min=0.0,
            max=0.9,
        ),
    ] = None,
    sasrec_minutes: Annotated[
        float | None,
        typer.Option(
            help="A time budget per SASRec setting on validation (it keeps its best state); "
            "for big datasets.",
            min=0.1,
        ),
    ] = None,
    refit: Annotated[
        str,
        typer.Option(
            help="How the chosen SASRec is trained on train + validation: 'scratch' (its best "
            "epoch count) or 'warm' (from the validation weights, a quarter of the epochs; "
            "faster on big datasets).",
        ),
    ] = "scratch",
    pool_depth: Annotated[
        int,
        typer.Option(help="Each retriever's top-N that joins the learned ranker's pool.", min=1),
    ] = 100,
    rerank: Annotated[
        bool, typer.Option(help="LLM rerank of the top 20 (needs the LLM server).")
    ] = True,
    rerank_tune_users: Annotated[
        int, typer.Option(help="Validation users the rerank weight is tuned on.", min=1)
    ] = 200,
    concurrency: ConcurrencyOpt = 8,
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
    """HR/NDCG/Recall@K, MRR and coverage on ML-100K (or --inter FILE) for every system in one
    run: popularity, item-kNN, EASE, SASRec (settings and epochs chosen on validation),
    embedding-only, recagent's previous fusion and the complete pipeline (a learned ranker over
    every retriever's candidates, with the LLM rerank when it earns its place on validation),
    each against the best baseline with a 95% bootstrap interval. Prints each phase's time.
    Writes results.json, results.md, ranks.json, ndcg.png, sasrec-curve.png and the LLM response
    cache (re-runs reuse it)."""
    from dataclasses import replace

    from eval.llm_client import ChatClient, ResponseCache
    from eval.rank import RankConfig, run
    from eval.setup import load_ml100k, rank_dataset
    from tools.factory import build_models

    if refit not in ("scratch", "warm"):
        raise InputError(f"--refit must be 'scratch' or 'warm', not {refit!r}")
    if (items is not None or min_rating is not None) and inter is None:
        raise InputError("--items and --min-rating go with --inter")
    if inter is None:
        rank_dataset(dataset)
    name = inter.stem if inter is not None else dataset
    if min_rating is not None:
        name += f"-min{min_rating:g}"
    out = out or Path(f"results/rank-{name}")
    cfg = settings(ctx, config)
    client = None
    if rerank:
        target = llm_endpoint(cfg, "; or pass --no-rerank")
        cache = ResponseCache(out / "llm-cache.jsonl")
        client = ChatClient(target, cache, concurrency, cfg.llm.request_timeout)
    if inter is not None:
        from eval.datasets import load_path_dataset

        loaded = load_path_dataset(inter, items, min_rating)
        split, texts, titles = loaded.split, loaded.texts, loaded.titles
    else:
        data = load_ml100k()
        split, texts, titles = data.split, data.texts, data.titles
    embedder = build_models(cfg).text_embedder
    rank_config = RankConfig(
        seed=seed,
        limit=limit,
        rerank_tune_users=rerank_tune_users,
        pool_depth=pool_depth,
        refit=refit,
    )
    budget = sasrec_minutes * 60 if sasrec_minutes is not None else None
    rank_config = replace(
        rank_config,
        sasrec=replace(rank_config.sasrec, epochs=epochs, seed=seed, max_seconds=budget),
        seq_lens=tuple(seq_len) if seq_len else rank_config.seq_lens,
        dropouts=tuple(dropout) if dropout else rank_config.dropouts,
    )
    if save is None:  # the agent's model is for the demo-side ML-100K catalogue only
        save = limit is None and inter is None
    target_dir = (save_collab or cfg.data_dir / "collab" / name) if save else None
    with resumable("answers so far are cached, a re-run resumes"):
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
            dataset=loaded.name if inter is not None else name,
            say=lambda line: console.print(line, style="dim", markup=False, highlight=False),
        )
    print_results(out, "results.json, results.md, ranks.json, ndcg.png, sasrec-curve.png")
    if target_dir is not None:
        console.print(
            f"collaborative model and tuned fusion weights saved to {target_dir}", markup=False
        )
    if not report["bar"]["beats_every_baseline"]:
        console.print("[yellow]the complete pipeline did not beat every baseline[/yellow]")


def judge_endpoint(own: Endpoint, url: str | None, model: str | None, key: str | None) -> Endpoint:
    """The judge: the recommender's endpoint ``own`` (another model name allowed) or another
    server."""
    from agent.llm import Endpoint

    if url is None:
        return Endpoint(own.base_url, model or own.model, key or own.api_key)
    if model is None:
        raise InputError("--judge-url needs --judge-model (the model name that server serves)")
    return Endpoint(url.rstrip("/"), model, key or "EMPTY")


@eval_app.command("synthesize")
def eval_synthesize(
    out: Annotated[
        Path, typer.Argument(help="The interactions file to write (the .item file goes beside).")
    ],
    users: Annotated[int, typer.Option(help="Users.", min=10)] = 6_040,
    items: Annotated[int, typer.Option(help="Items.", min=50)] = 3_700,
    interactions: Annotated[
        int, typer.Option(help="Interactions, roughly (each user keeps at least 20).", min=1_000)
    ] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Seed (the same seed writes the same files).")] = 2026,
) -> None:
    """Write a synthetic dataset in RecBole's atomic format (genres, popularity, sequential
    habits), for checking that `eval rank --inter` scales: the defaults have the shape of
    MovieLens-1M (about 6,000 users, 3,700 items, a million interactions)."""
    from eval.synthetic import Synthetic, write

    inter, item_file = write(Synthetic(users, items, interactions, seed), out)
    lines = sum(1 for _ in inter.open()) - 1
    console.print(f"wrote {lines:,} interactions to {inter} and the items to {item_file}")


@eval_app.command("judge")
def eval_judge(
    ctx: typer.Context,
    out: ResultsOpt = Path("results/judge-ml-100k"),
    limit: Annotated[int, typer.Option(help="Cases (ML-100K users, seeded sample).", min=1)] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the user sample.")] = 2026,
    concurrency: ConcurrencyOpt = 8,
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
    from eval.llm_client import ChatClient, ResponseCache
    from eval.setup import load_ml100k

    cfg = settings(ctx, config)
    own = llm_endpoint(cfg)
    judge_target = judge_endpoint(own, judge_url, judge_model, judge_api_key)
    cache = ResponseCache(out / "llm-cache.jsonl")
    timeout = cfg.llm.request_timeout
    explainer = ChatClient(own, cache, concurrency, timeout)
    judge_client = (
        explainer if judge_target == own else ChatClient(judge_target, cache, concurrency, timeout)
    )
    data = load_ml100k()
    cases = data.cases(limit, seed)
    judge_config = judge.JudgeConfig(limit=limit, seed=seed, concurrency=concurrency)
    with resumable("answers so far are cached, a re-run resumes"):
        judge.run(cases, explainer, judge_client, data.catalogue_titles, out, judge_config)
    print_results(out, "results.json, results.md, cases.jsonl")


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
    feedback: Annotated[
        bool,
        typer.Option(
            "--feedback",
            help="Run the episodes twice, without and with the simulated user's like/dislike "
            "on each list shown (a like for items of the target's genre or kind, a dislike "
            "otherwise), and compare: OUT/without-feedback, OUT/with-feedback, OUT/feedback.md.",
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Simulated users with a hidden target: an LLM describes an item without naming it (a leak
    voids the episode), the agent recommends 10 per turn. Hit@1/5/10 by turn, turns to a hit,
    and the rates of ids outside the catalogue, duplicates and already-seen items. On ml-100k
    the movies are indexed once into DATA_DIR/eval-stores/ml-100k. Resumable."""
    from eval import simulate
    from eval.llm_client import ChatClient, ResponseCache
    from eval.setup import simulation_dataset

    simulation_dataset(dataset)
    cfg = settings(ctx, config)
    out = out or Path(f"results/simulate-{dataset}")
    target = llm_endpoint(cfg)
    sim = setup_simulation(cfg, dataset)
    cases = sim.cases(limit, seed)
    simulator = ChatClient(target, ResponseCache(out / "llm-cache.jsonl"), concurrency)
    used = {"llm": target.model, "collab": "yes" if sim.recommender.collab else "no"}
    runs = (
        [(out / "without-feedback", False), (out / "with-feedback", True)]
        if feedback
        else [(out, False)]
    )
    reports = []
    for folder, with_feedback in runs:
        sim_config = simulate.SimConfig(
            dataset, limit, seed, concurrency, max_turns, feedback=with_feedback
        )
        with resumable(f"finished episodes are kept in {folder}/episodes.jsonl"):
            reports.append(
                simulate.run(
                    cases,
                    sim.recommender,
                    simulator,
                    sim.catalogue,
                    folder,
                    sim_config,
                    sim.kind,
                    models=used,
                )
            )
    if feedback:
        (out / "feedback.md").write_text(simulate.comparison(reports[0], reports[1]))
        (out / "feedback.json").write_text(
            json.dumps({"without": reports[0], "with": reports[1]}, indent=2)
        )
        console.print((out / "feedback.md").read_text(), markup=False)
        console.print(
            f"results written to {out} (feedback.md, feedback.json, without-feedback/, "
            "with-feedback/)",
            markup=False,
        )
    else:
        print_results(out, "results.json, results.md, episodes.jsonl")


@eval_app.command("photos")
def eval_photos(
    ctx: typer.Context,
    photos: Annotated[
        Path | None,
        typer.Option(help="A photo set (JSON lines, see eval/photos/README.md); default: ours."),
    ] = None,
    split: Annotated[
        str, typer.Option(help="dev (to look at and tune on), test (to report) or all.")
    ] = "all",
    sweep: Annotated[
        bool, typer.Option(help="Also the dev half's fusion over label threshold and weight.")
    ] = False,
    out: ResultsOpt = Path("results/photos"),
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Search by photo on real photographs (not catalogue items): precision@5 by category for
    pixel statistics, the vision embedding alone, the photo's labels alone and the fusion, over
    the configured (demo) store indexed with the vision model."""
    from agent.build import open_indexed_store
    from eval import photos as photo_eval

    if split not in ("all", *photo_eval.SPLITS):
        raise InputError(f"unknown split {split!r}: use dev, test or all")
    cfg = settings(ctx, config, store_dir=store)
    chosen = photo_eval.load_photos(photos or photo_eval.PHOTO_SET, split, cfg.cache_dir / "photos")
    if not chosen:
        raise InputError(f"no photos in the {split} split")
    indexed, models = open_indexed_store(cfg)
    with render.progress(console, "pixel statistics of the catalogue") as report:
        photo_eval.run(indexed, models, cfg.fusion, chosen, out, sweep, report)
    print_results(out, "results.json, results.md")


@eval_app.command("conversations")
def eval_conversations(
    ctx: typer.Context,
    half: Annotated[
        str, typer.Option(help="dev (to look at and tune on), test (to report) or both.")
    ] = "both",
    out: ResultsOpt = Path("results/conversations"),
    limit: Annotated[
        int | None, typer.Option(help="Only the first N conversations of each half.", min=1)
    ] = None,
    system: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only these systems (repeatable); default: all but the slow ones (the "
            "LLM's explanations, and every LLM step of the sequential design)."
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Conversations in flight.", min=1)] = 4,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The labelled conversation set over the demo catalogue (eval/conversations): precision@5
    by slice (plain, topic shift, negation, modality, world knowledge, references, standing
    preferences), forbidden items, wrong carry-overs, supported explanation sentences,
    tautologies and latency, for plain retrieval, the agent, and the agent with each LLM step
    or knowledge field switched on. Without a running LLM only the
    systems that need none run. Resumable: finished conversations stay in OUT/turns.jsonl."""
    from eval import conversations
    from eval.conversation_set import HALVES, load_set
    from eval.setup import conversation_setup

    halves = list(HALVES) if half == "both" else [half]
    if any(h not in HALVES for h in halves):
        raise InputError(f"unknown half {half!r}: use dev, test or both")
    cfg = settings(ctx, config, store_dir=store)
    setup = conversation_setup(cfg, render.notice_printer(console))
    known = conversations.systems()
    unknown = sorted(set(system or []) - {s.name for s in known})
    if unknown:
        names = "; ".join(s.name for s in known)
        raise InputError(f"unknown system {unknown[0]!r}: choose from {names}")
    if system:
        chosen = [s for s in known if s.name in system]
    else:
        chosen = [s for s in known if s.by_default]
    if not setup.llm:
        chosen = [s for s in chosen if not s.needs_llm]
    data = {h: load_set(h)[:limit] for h in halves}
    used = {"llm": setup.llm or "(none)", "text_embedder": cfg.models.text_embedder}
    conversations.run(data, chosen, setup.make_recommender, setup.store, out, concurrency, used)
    print_results(out, "results.json, results.md, turns.jsonl")


def setup_simulation(cfg: Settings, dataset: str) -> Simulation:
    """:func:`eval.setup.simulation_setup` with its progress and notices on the terminal."""
    from eval.setup import simulation_setup

    with render.progress(console, "indexing movies", lazy=True) as report:
        return simulation_setup(
            cfg, dataset, report, render.printer(console), render.notice_printer(console)
        )
