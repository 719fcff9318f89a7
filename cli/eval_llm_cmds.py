"""``recagent eval synthesize``, ``judge`` and ``simulate``: the evaluations that generate data or
ask an LLM (registered on ``eval_app`` by :mod:`cli.eval_cmds`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.eval_common import judge_endpoint, llm_endpoint, print_results, resumable, setup_simulation
from cli.options import (
    ConcurrencyOpt,
    ConfigOpt,
    JudgeKeyOpt,
    JudgeModelOpt,
    JudgeUrlOpt,
    ResultsOpt,
    StoreOpt,
    settings,
)
from cli.render import console
from tools.errors import InputError


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


def eval_judge(
    ctx: typer.Context,
    out: ResultsOpt = Path("results/judge-ml-100k"),
    limit: Annotated[int, typer.Option(help="Cases (ML-100K users, seeded sample).", min=1)] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the user sample.")] = 2026,
    concurrency: ConcurrencyOpt = 8,
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_api_key: JudgeKeyOpt = None,
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


def eval_judge_labels(
    ctx: typer.Context,
    out: ResultsOpt = Path("results/judge-labels"),
    half: Annotated[
        str, typer.Option(help="The labelled half whose turns are judged: dev or test.")
    ] = "dev",
    limit: Annotated[
        int | None, typer.Option(help="Only the first N conversations of the half.", min=1)
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the relevant item drawn per turn.")] = 2026,
    concurrency: ConcurrencyOpt = 8,
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_api_key: JudgeKeyOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """How often an LLM judge agrees with the labelled conversations: per turn, one item the
    labels count as relevant and the best plain-search hit they do not count, each judged
    "fits or not" under a JSON schema; agreement, Cohen's kappa, the judge's precision and
    recall, per slice. Resumable: answers are cached in OUT/llm-cache.jsonl."""
    from agent.build import open_indexed_store
    from eval import label_judge
    from eval.conversation_set import HALVES, load_set
    from eval.llm_client import ChatClient, ResponseCache

    if half not in HALVES:
        raise InputError(f"--half must be one of {', '.join(HALVES)}, not {half!r}")
    cfg = settings(ctx, config, store_dir=store)
    target = judge_endpoint(llm_endpoint(cfg), judge_url, judge_model, judge_api_key)
    # the local server serves any model under one name: report the configured model's
    name = target.model if judge_url or judge_model else cfg.models.llm
    indexed, _ = open_indexed_store(cfg)
    items = indexed.all_items()
    by_attribute = any("has_sound_effect" in (i.facts.get("attributes") or {}) for i in items)

    def search(query: str, k: int) -> list[str]:
        return [hit.id for hit in indexed.search_text(query, k)]

    client = ChatClient(
        target, ResponseCache(out / "llm-cache.jsonl"), concurrency, cfg.llm.request_timeout
    )
    with resumable("answers so far are cached, a re-run resumes"):
        results = label_judge.run(
            load_set(half)[:limit], items, search, client, out, seed, by_attribute, name
        )
    console.print(
        f"{name}: agreement {results['agreement']:.3f}, kappa {results['kappa']:.3f} "
        f"over {results['answered']} of {results['pairs']} pairs"
    )
    print_results(out, "results.json, results.md, pairs.jsonl")
