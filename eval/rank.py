"""`recagent eval rank`: ranking metrics on ML-100K (or any dataset by path) for every system,
in one run.

Full ranking over all items (seen items excluded) is the primary number; 1 positive + 99 sampled
unseen negatives (fixed seed) is the secondary one. Systems: popularity, item-kNN (cosine),
EASE (lambda 100), SASRec (sequence length, dropout and epochs chosen on validation:
eval/sequential.py), embedding-only (MiniLM: the mean embedding of the user's history against
every item's text), and recagent's pipeline: the hand-tuned fusion of the previous design
(eval/pipeline.py; its weights are what the agent fuses live retrievals with) and the complete
pipeline, the learned ranker over every retriever's candidates (tools/candidate_pool.py,
tools/ranker.py), with the LLM rerank of its top 20 (eval/rerank.py) when that earns its place.

Everything chosen is chosen on validation: retrievers fitted on train rank the validation item;
the ranker learns from those pools; then the retrievers are refitted on train + validation and
the ranker orders the test pools. Each phase's time is printed and reported. Results: a folder
with the config, JSON, a Markdown table, per-user ranks, an NDCG@K plot and SASRec's training
curves.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval import rerank
from eval.llm_client import ChatClient
from eval.metrics import KS, TIE_RULE, coverage, metrics_from_ranks, rank_of
from eval.movielens import Split
from eval.pipeline import (
    CONTENT_DEPTH,
    GRID,
    fused_scores,
    target_ranks,
    tune_blocks,
)
from eval.plot import ndcg_plot, sasrec_curve_plot
from eval.rank_report import BASELINES, markdown, the_bar
from eval.rank_stages import (
    Scorer,
    apply_order,
    baseline_scorers,
    fit_stage,
    llm_ranks,
    out_of_fold,
    pool_scores,
    refit_sasrec,
    save_agent_model,
    tune_rerank,
)
from eval.sequential import choose
from eval.significance import against_best_baseline
from tools import candidate_pool
from tools.ranker import LearnedRanker
from tools.sasrec import SASRecConfig

PUBLISHED = {
    "SASRec (published)": {"NDCG@10": 0.0522, "Recall@10": 0.0993},
    "LlamaRec, Llama-2-7B fine-tuned (published; its 'ml-100k' is ml-latest-small)": {
        "NDCG@10": 0.0759,
        "Recall@10": 0.1524,
    },
}
CHUNK = 1024  # users per block when a users x items matrix is built


@dataclass(frozen=True)
class RankConfig:
    negatives: int = 99
    seed: int = 2026
    limit: int | None = None  # users evaluated (None: all)
    rerank_tune_users: int = 200  # validation users the rerank weight is tuned on
    sasrec: SASRecConfig = field(default_factory=SASRecConfig)  # epochs: the upper bound
    seq_lens: tuple[int, ...] = (50, 100)  # SASRec settings tried on validation
    dropouts: tuple[float, ...] = (0.2, 0.5)
    pool_depth: int = candidate_pool.DEPTH
    # "scratch": the test stage retrains the chosen SASRec setting for its best epoch count;
    # "warm": it continues from the validation-stage weights for a quarter of them (big data)
    refit: str = "scratch"


class Clock:
    """Seconds per phase, printed as each phase ends."""

    def __init__(self, report: Callable[[str], None] | None) -> None:
        self.seconds: dict[str, float] = {}
        self.report = report

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 2)
        if self.report is not None:
            self.report(f"{name}: {self.seconds[name]:.1f} s")


def sampled_rank(
    scores: np.ndarray, target: int, seen: Sequence[int], rng: np.random.Generator, negatives: int
) -> int:
    allowed = np.ones(scores.size, dtype=bool)
    allowed[list(seen)] = False
    allowed[target] = False
    pool = np.flatnonzero(allowed)
    chosen = rng.choice(pool, size=min(negatives, pool.size), replace=False)
    candidates = np.concatenate([[target], chosen])
    return rank_of(scores[candidates], 0, [])


def evaluate(
    split: Split, score: Scorer | np.ndarray, config: RankConfig, users: list[int] | None = None
) -> dict[str, Any]:
    """Test-item metrics for ``users`` (default: all); ``score`` gives their rows of scores,
    a block of users at a time (an array: row ``n`` belongs to ``users[n]``)."""
    users = list(range(split.n_users)) if users is None else users
    rng = np.random.default_rng(config.seed)
    full: list[int] = []
    sampled, tops = [], []
    for start in range(0, len(users), CHUNK):
        block = users[start : start + CHUNK]
        rows = score[start : start + len(block)] if isinstance(score, np.ndarray) else score(block)
        values = rows.astype(np.float64, copy=True)
        for row, user in enumerate(block):
            seen = split.history(user, "test")
            values[row, seen] = -np.inf
            sampled.append(sampled_rank(rows[row], split.test[user], seen, rng, config.negatives))
        full += target_ranks(values, [split.test[u] for u in block]).tolist()
        tops += np.argsort(-values, axis=1, kind="stable")[:, :10].tolist()
    result: dict[str, Any] = {
        "full": metrics_from_ranks(full),
        f"sampled_{config.negatives}": metrics_from_ranks(sampled, KS),
        "ranks": full,  # per user: run() moves these to ranks.json for significance
    }
    result["full"]["Coverage@10"] = coverage(tops, split.n_items)
    return result


def run(
    out_dir: Path,
    config: RankConfig,
    split: Split,
    item_texts: list[str],
    titles: list[str],
    embed: Callable[[list[str]], np.ndarray],
    models: dict[str, str] | None = None,
    client: ChatClient | None = None,
    save_collab: Path | None = None,
    progress: bool = True,
    dataset: str = "ml-100k",
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit, choose on validation, evaluate on test; write results.json/.md, ranks.json and
    ndcg.png. ``item_texts`` and ``titles`` follow ``split.item_ids``; ``say`` hears each
    phase's time as it ends."""
    users = list(range(split.n_users if config.limit is None else min(config.limit, split.n_users)))
    clock = Clock(say)
    began = time.perf_counter()
    with clock.phase("item embeddings"):
        item_vectors = np.asarray(embed(item_texts), dtype=np.float32)
        item_vectors /= np.maximum(np.linalg.norm(item_vectors, axis=1, keepdims=True), 1e-12)

    with clock.phase("SASRec on train (grid, early stopping on validation)"):
        chosen = choose(split, config.sasrec, config.seq_lens, config.dropouts, progress)
    with clock.phase("other retrievers on train"):
        valid = fit_stage(split, "valid", users, chosen.model, item_vectors)
    with clock.phase("candidate pools (validation)"):
        valid_pool = candidate_pool.build(
            valid.model.pool_parts(), valid.histories, config.pool_depth
        )
    with clock.phase("learned ranker (trained on validation)"):
        ranker = LearnedRanker.fit(
            valid_pool.features,
            valid_pool.labels(split.valid),
            valid_pool.rows,
            candidate_pool.FEATURES,
            config.seed,
        )
    with clock.phase("fusion grid (validation)"):
        blocks = [valid.users[n : n + CHUNK] for n in range(0, len(valid.users), CHUNK)]
        tuned = tune_blocks((valid.fusion_inputs(b), [split.valid[u] for u in b]) for b in blocks)
    tuning: dict[str, Any] = {
        "alpha": tuned.alpha,
        "fusion": tuned.weights.model_dump(),
        "validation_ndcg10": round(tuned.ndcg10, 4),
        "grid_points": tuned.tried,
        "grid": {k: list(v) for k, v in GRID.items()},
    }
    rerank_weight = 0.0
    if client is not None:
        rows = users[: config.rerank_tune_users]
        with clock.phase("LLM rerank (validation users)"):
            scores = out_of_fold(valid, valid_pool, ranker, rows, tuned.alpha)
            tuning["rerank"] = tune_rerank(
                client, valid, rows, scores, titles, tuned.weights.rrf_k, config.seed
            )
        rerank_weight = tuning["rerank"]["weight"]

    with clock.phase(f"SASRec on train + validation (refit, {config.refit})"):
        test_histories = [split.history(u, "test") for u in range(split.n_users)]
        refit = refit_sasrec(
            test_histories, split.n_items, chosen.config, chosen.model, config.refit
        )
    with clock.phase("other retrievers on train + validation"):
        test = fit_stage(split, "test", users, refit, item_vectors)
    results: dict[str, Any] = {}
    with clock.phase("baselines (test)"):
        for name, scorer in baseline_scorers(test, chosen.config, item_vectors).items():
            results[name] = evaluate(split, scorer, config, users)
    with clock.phase("fusion (test)"):

        def fused(block: list[int]) -> np.ndarray:
            inputs = test.fusion_inputs(block)
            collab = inputs.collab(tuned.alpha)
            return fused_scores(collab, inputs.content, inputs.seen, tuned.weights)

        results["recagent: fusion (previous design)"] = evaluate(split, fused, config, users)
    with clock.phase("candidate pools and learned ranker (test)"):
        ranked, test_pool = pool_scores(test, users, ranker, config.pool_depth, tuned.alpha)
        results["recagent: learned ranker"] = evaluate(split, ranked, config, users)
    if client is not None and rerank_weight:  # 0: the rerank did not earn its place
        with clock.phase("LLM rerank (test users)"):
            values = test.unseen(ranked, users)
            tops, ranks = llm_ranks(client, test, users, values, titles)
            orders = [rerank.blend(r, rerank_weight, tuned.weights.rrf_k) for r in ranks]
            name = f"recagent: learned ranker + LLM rerank of top {rerank.TOP}"
            results[f"{name} (weight {rerank_weight})"] = evaluate(
                split, apply_order(values, tops, orders), config, users
            )

    if save_collab is not None:
        with clock.phase("agent model (all interactions)"):
            save_agent_model(
                save_collab,
                split,
                chosen.config,
                refit,
                config.refit,
                tuned.alpha,
                tuned.weights.model_dump(),
                item_vectors,
                ranker,
            )

    clock.seconds["total (wall clock)"] = round(time.perf_counter() - began, 2)
    user_ranks: dict[str, list[int]] = {
        name: result.pop("ranks") for name, result in results.items()
    }
    significance = against_best_baseline(
        user_ranks, lambda name: name.startswith(BASELINES), config.seed
    )
    bar = the_bar(results)
    bar["significant"] = bool(
        significance.get("systems", {}).get(bar["complete_pipeline"], {}).get("significant")
    )
    in_pool = test_pool.labels([split.test[u] for u in users]).sum() / max(len(users), 1)
    report: dict[str, Any] = {
        "dataset": dataset,
        "split": {
            **split.meta,
            "users": split.n_users,
            "evaluated_users": len(users),
            "items": split.n_items,
            "history": "train + validation (test); train (validation, for choosing)",
        },
        "ranking_ties": TIE_RULE,
        "config": {**asdict(config), "content_depth": CONTENT_DEPTH},
        "sasrec": {
            **chosen.report(),
            "refit": config.refit,
            "refit_seconds": clock.seconds.get(
                f"SASRec on train + validation (refit, {config.refit})"
            ),
        },
        "ranker": {
            "features": list(candidate_pool.FEATURES),
            "training": asdict(ranker.training) if ranker.training else None,
            "importance_gain": ranker.importance(),
            "pool_depth": config.pool_depth,
            "mean_pool_size": round(len(test_pool.items) / max(len(users), 1), 1),
            "test_items_in_pool": round(float(in_pool), 4),
        },
        "tuning": tuning,
        "models": {**(models or {}), **({"llm": client.target.model} if client else {})},
        "seconds": clock.seconds,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "results": results,
        "published": PUBLISHED,
        "significance": significance,
        "bar": bar,
        "agent_model": str(save_collab) if save_collab else None,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(report, indent=2))
    (out_dir / "ranks.json").write_text(  # later runs can be compared user by user
        json.dumps({"users": [split.user_ids[u] for u in users], "ranks": user_ranks})
    )
    (out_dir / "results.md").write_text(markdown(report))
    ndcg_plot(report, out_dir / "ndcg.png")
    sasrec_curve_plot(report, out_dir / "sasrec-curve.png")
    return report
