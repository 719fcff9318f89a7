"""``recagent eval``: ranking, explanation and conversation evaluations on fixed data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli import audit_cmds, eval_llm_cmds, render
from cli.eval_common import llm_endpoint, print_results, resumable
from cli.options import ConcurrencyOpt, ConfigOpt, ResultsOpt, StoreOpt, settings
from cli.render import console
from tools.errors import InputError

if TYPE_CHECKING:
    pass

eval_app = typer.Typer(help="Offline evaluation.", no_args_is_help=True)
eval_app.command("synthesize")(eval_llm_cmds.eval_synthesize)
eval_app.command("judge")(eval_llm_cmds.eval_judge)
eval_app.command("judge-labels")(eval_llm_cmds.eval_judge_labels)
eval_app.command("simulate")(eval_llm_cmds.eval_simulate)
eval_app.command("audit-sample")(audit_cmds.audit_sample)
eval_app.command("audit-score")(audit_cmds.audit_score)


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
    llm_cache: Annotated[
        Path | None,
        typer.Option(
            help="Keep the LLM's answers in this file and reuse them: a dev re-run after a "
            "change below the LLM asks only new prompts (for development, not for reported "
            "figures' speed)."
        ),
    ] = None,
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
    cache = None
    if llm_cache is not None:
        from langchain_core.globals import set_llm_cache

        from eval.llm_cache import FileCache

        cache = FileCache(llm_cache)
        set_llm_cache(cache)
    conversations.run(data, chosen, setup.make_recommender, setup.store, out, concurrency, used)
    if cache is not None:
        console.print(f"LLM cache {llm_cache}: {cache.hits} answers reused, {cache.misses} asked")
    print_results(out, "results.json, results.md, turns.jsonl")
