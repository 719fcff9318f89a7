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
import math
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
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
    Inputs,
    fused_scores,
    ndcg_at,
    target_ranks,
    tune_blocks,
)
from eval.plot import ndcg_plot, sasrec_curve_plot
from eval.sequential import choose
from eval.significance import against_best_baseline, paired_bootstrap
from tools import candidate_pool
from tools.candidate_pool import content_scores, history_matrix
from tools.collaborative import FUSION_FILE, CollabModel
from tools.ranker import LearnedRanker
from tools.sasrec import SASRec, SASRecConfig

PUBLISHED = {
    "SASRec (published)": {"NDCG@10": 0.0522, "Recall@10": 0.0993},
    "LlamaRec, Llama-2-7B fine-tuned (published; its 'ml-100k' is ml-latest-small)": {
        "NDCG@10": 0.0759,
        "Recall@10": 0.1524,
    },
}
CHUNK = 1024  # users per block when a users x items matrix is built
POOL_OFFSET = 1e4  # pool items score above this, the rest (by the collaborative blend) below

Scorer = Callable[[list[int]], np.ndarray]  # user indices -> one row of item scores each


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


def refit_sasrec(
    histories: list[list[int]], n_items: int, chosen: SASRecConfig, previous: SASRec, mode: str
) -> SASRec:
    """The chosen SASRec setting trained on more histories (train + validation, or all)."""
    if mode == "warm":
        config = replace(chosen, epochs=max(1, math.ceil(chosen.epochs / 4)), max_seconds=None)
        return SASRec.fit(histories, n_items, config, warm=previous)
    return SASRec.fit(histories, n_items, replace(chosen, max_seconds=None))


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


@dataclass
class Stage:
    """Every retriever fitted on what is known before one stage ("valid" or "test")."""

    name: str
    users: list[int]
    targets: list[int]
    histories: list[list[int]]  # every user's, index = user
    model: CollabModel

    def unseen(self, scores: np.ndarray, users: list[int]) -> np.ndarray:
        """A copy of ``scores`` (row n: ``users[n]``) with each user's history at -inf."""
        out = scores.copy()
        for row, user in enumerate(users):
            out[row, self.histories[user]] = -np.inf
        return out

    def x(self, users: list[int]) -> np.ndarray:
        return history_matrix([self.histories[u] for u in users], len(self.model.item_ids))

    def fusion_inputs(self, users: list[int]) -> Inputs:
        chosen = [self.histories[u] for u in users]
        sequential, item_item = self.model.parts(chosen)
        x = self.x(users)
        assert self.model.content is not None
        return Inputs(
            seen=x > 0,
            sequential=sequential,
            item_item=item_item,
            content=content_scores(x, self.model.content),
        )


def fit_stage(
    split: Split, name: str, users: list[int], sequential: SASRec, item_vectors: np.ndarray
) -> Stage:
    histories = [split.history(u, name) for u in range(split.n_users)]
    model = CollabModel.fit(histories, split.item_ids, content=item_vectors, sequential=sequential)
    targets = [(split.test if name == "test" else split.valid)[u] for u in users]
    return Stage(name, users, targets, histories, model)


def ranked_scores(
    stage: Stage,
    users: list[int],
    pool: candidate_pool.Pool,
    scores: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """Users x items: ``scores`` (the ranker's, one per candidate of ``pool``, whose row n is
    ``users[n]``) over each user's pool, then the collaborative blend's order below it."""
    out = stage.model.scores([stage.histories[u] for u in users], alpha).astype(np.float64)
    out[pool.rows, pool.items] = POOL_OFFSET + scores
    return out


def pool_scores(
    stage: Stage, users: list[int], ranker: LearnedRanker, depth: int, alpha: float
) -> tuple[np.ndarray, candidate_pool.Pool]:
    """The learned ranker's order over each user's pool, then the collaborative blend's."""
    pool = candidate_pool.build(
        stage.model.pool_parts(), [stage.histories[u] for u in users], depth
    )
    return ranked_scores(stage, users, pool, ranker.scores(pool.features), alpha), pool


def out_of_fold(
    stage: Stage, pool: candidate_pool.Pool, ranker: LearnedRanker, users: list[int], alpha: float
) -> np.ndarray:
    """The ranker's validation order for the first users, each scored by the fold model that
    did not train on them (``pool`` covers every user, in order)."""
    assert ranker.out_of_fold is not None
    keep = pool.rows < len(users)
    chosen = candidate_pool.Pool(pool.rows[keep], pool.items[keep], pool.features[keep])
    return ranked_scores(stage, users, chosen, ranker.out_of_fold[keep], alpha)


def top_lists(scores: np.ndarray, n: int) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :n]


def apply_order(scores: np.ndarray, tops: np.ndarray, orders: list[np.ndarray]) -> np.ndarray:
    """Scores whose top lists follow ``orders`` (the rest keep their fused order below)."""
    out = scores.copy()
    ceiling = np.nanmax(np.where(np.isfinite(scores), scores, np.nan)) + 1.0
    for row, (top, order) in enumerate(zip(tops, orders, strict=True)):
        out[row, top[order]] = ceiling + np.arange(len(order), 0, -1)
    return out


def llm_ranks(
    client: ChatClient,
    stage: Stage,
    users: list[int],
    scores: np.ndarray,
    titles: list[str],
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The LLM's order of each user's top 20 (``scores``: rows follow ``users``, seen items
    already at -inf)."""
    tops = top_lists(scores, rerank.TOP)
    histories = [[titles[i] for i in stage.histories[u]] for u in users]
    candidates = [[titles[i] for i in top] for top in tops]
    return tops, rerank.rerank_all(client, histories, candidates, f"LLM rerank ({stage.name})")


def tune_rerank(
    client: ChatClient,
    stage: Stage,
    rows: list[int],
    scores: np.ndarray,
    titles: list[str],
    rrf_k: int,
    seed: int,
) -> dict[str, Any]:
    """The rerank weight with the best validation NDCG@10 on ``rows`` (users), kept only if its
    gain over no rerank is significant; otherwise 0."""
    values = stage.unseen(scores, rows)
    tops, ranks = llm_ranks(client, stage, rows, values, titles)
    targets = [stage.targets[stage.users.index(u)] for u in rows]
    by_weight, ranks_by_weight = {}, {}
    for weight in rerank.WEIGHTS:
        orders = [rerank.blend(r, weight, rrf_k) for r in ranks]
        ranks_by_weight[weight] = target_ranks(apply_order(values, tops, orders), targets)
        by_weight[weight] = ndcg_at(ranks_by_weight[weight])
    best = max(by_weight, key=lambda w: (by_weight[w], -w))
    gain = paired_bootstrap(ranks_by_weight[best].tolist(), ranks_by_weight[0.0].tolist(), seed)
    weight = best if best != 0.0 and gain["significant"] and gain["ndcg10_difference"] > 0 else 0.0
    return {
        "weight": weight,
        "best_on_validation": best,
        "gain_over_no_rerank": gain,
        "validation_users": len(rows),
        "ranker_scores": "out of fold (each user ordered by a ranker that did not train on them)",
        "validation_ndcg10_by_weight": {str(w): round(v, 4) for w, v in by_weight.items()},
    }


def baseline_scorers(
    test: Stage, sasrec: SASRecConfig, item_vectors: np.ndarray
) -> dict[str, Scorer]:
    """Each baseline's scores for a block of users, from the retrievers fitted for the test
    stage (the same fits the pipeline uses)."""
    model = test.model
    assert model.popularity is not None and model.knn is not None
    popularity, knn = model.popularity, model.knn

    def by_items(matrix_of: Callable[[np.ndarray], np.ndarray]) -> Scorer:
        return lambda block: matrix_of(test.x(block))

    name = f"SASRec (max_len {sasrec.max_len}, dropout {sasrec.dropout}, {sasrec.epochs} epochs)"
    return {
        "popularity": lambda block: np.broadcast_to(popularity, (len(block), popularity.size)),
        "item-kNN (cosine)": by_items(lambda x: x @ knn),
        "EASE (lambda 100)": by_items(lambda x: x @ model.item_item),
        name: lambda block: model.sequential.scores([test.histories[u] for u in block]),
        "embedding-only (MiniLM)": by_items(lambda x: content_scores(x, item_vectors)),
    }


def save_agent_model(
    folder: Path,
    split: Split,
    chosen: SASRecConfig,
    refit: SASRec,
    mode: str,
    tuned_alpha: float,
    fusion: dict[str, Any],
    item_vectors: np.ndarray,
    ranker: LearnedRanker,
) -> None:
    """Every retriever trained on all interactions, with the ranker and the fusion weights
    chosen on validation, where the agent finds them."""
    full = [split.train[u] + [split.valid[u], split.test[u]] for u in range(split.n_users)]
    sequential = refit_sasrec(full, split.n_items, chosen, refit, mode)
    model = CollabModel.fit(
        full, split.item_ids, alpha=tuned_alpha, content=item_vectors, sequential=sequential
    )
    model.ranker = ranker
    model.save(folder)
    (folder / FUSION_FILE).write_text(json.dumps(fusion, indent=2))


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


BASELINES = (
    "popularity",
    "item-kNN (cosine)",
    "EASE (lambda 100)",
    "SASRec",
    "embedding-only (MiniLM)",
)


def the_bar(results: dict[str, Any]) -> dict[str, Any]:
    """Does the complete pipeline (with the rerank when it ran) beat every baseline?"""
    complete = [n for n in results if n.startswith("recagent")][-1]
    baselines_run = {n: r for n, r in results.items() if n.startswith(BASELINES)}
    best = max(baselines_run, key=lambda n: baselines_run[n]["full"]["NDCG@10"])
    ours = results[complete]["full"]
    return {
        "complete_pipeline": complete,
        "best_baseline": best,
        "metric": "NDCG@10 (full ranking)",
        "pipeline": round(ours["NDCG@10"], 4),
        "baseline": round(baselines_run[best]["full"]["NDCG@10"], 4),
        "beats_every_baseline": all(
            ours["NDCG@10"] > r["full"]["NDCG@10"] for r in baselines_run.values()
        ),
    }


def markdown(report: dict[str, Any]) -> str:
    cols = ["HR@1", "NDCG@5", "NDCG@10", "Recall@10", "NDCG@20", "Recall@20", "MRR", "Coverage@10"]
    split = report["split"]
    lines = [
        f"# Ranking on {report.get('dataset', 'ml-100k')} ({split['evaluated_users']} of "
        f"{split['users']} users, "
        f"{split['items']} items, {split['protocol']}; {split['ties']}; "
        f"history = {split['history']})",
        "",
        "Full ranking over all unseen items:",
        "",
        "| system | " + " | ".join(cols) + " |",
        "| --- |" + " --- |" * len(cols),
    ]
    for name, result in report["results"].items():
        full = result["full"]
        lines.append(f"| {name} | " + " | ".join(f"{full[c]:.4f}" for c in cols) + " |")
    for name, points in report["published"].items():
        lines.append(
            f"| {name} | "
            + " | ".join(f"{points[c]:.4f}" if c in points else "" for c in cols)
            + " |"
        )
    sampled_key = next(k for k in next(iter(report["results"].values())) if k.startswith("sampled"))
    lines += [
        "",
        f"Sampled ({sampled_key.split('_')[1]} negatives, seed {report['config']['seed']}):",
        "",
        "| system | HR@10 | NDCG@10 | MRR |",
        "| --- | --- | --- | --- |",
    ]
    for name, result in report["results"].items():
        s = result[sampled_key]
        lines.append(f"| {name} | {s['HR@10']:.4f} | {s['NDCG@10']:.4f} | {s['MRR']:.4f} |")
    tuning = report["tuning"]
    bar = report["bar"]
    verdict = "beats" if bar["beats_every_baseline"] else "does NOT beat"
    lines += [
        "",
        f"Tuned on validation only: collaborative blend alpha {tuning['alpha']}, fusion "
        f"{json.dumps(tuning['fusion'])} (validation NDCG@10 {tuning['validation_ndcg10']}, "
        f"{tuning['grid_points']} grid points)"
        + (_rerank_line(tuning["rerank"]) if "rerank" in tuning else "; no LLM rerank in this run")
        + ".",
        "",
        f"The bar: {bar['complete_pipeline']} ({bar['pipeline']}) {verdict} every baseline "
        f"in this run (best: {bar['best_baseline']}, {bar['baseline']}; {bar['metric']}).",
    ]
    lines += _sasrec_lines(report.get("sasrec")) + _ranker_lines(report.get("ranker"))
    significance = report.get("significance") or {}
    if significance:
        lines += [
            "",
            f"Against the best baseline ({significance['best_baseline']}), NDCG@10 difference "
            f"with its 95% interval ({significance['method']}):",
            "",
            "| system | difference | 95% interval | significant |",
            "| --- | --- | --- | --- |",
        ]
        for name, test in significance["systems"].items():
            lines.append(
                f"| {name} | {test['ndcg10_difference']:+.4f} | "
                f"[{test['ci95_low']:+.4f}, {test['ci95_high']:+.4f}] | "
                f"{'yes' if test['significant'] else 'no'} |"
            )
    lines += ["", "Time per phase (seconds):", "", "| phase | seconds |", "| --- | --- |"]
    lines += [f"| {phase} | {seconds:.1f} |" for phase, seconds in report["seconds"].items()]
    return "\n".join(lines) + "\n"


def _sasrec_lines(sasrec: dict[str, Any] | None) -> list[str]:
    if not sasrec:
        return []
    chosen = sasrec["chosen"]
    lines = [
        "",
        f"SASRec settings tried on validation (early stopping; chosen: max_len "
        f"{chosen['max_len']}, dropout {chosen['dropout']}, {chosen['epochs']} epochs; refit on "
        f"train + validation ({sasrec.get('refit', 'scratch')}) in "
        f"{sasrec.get('refit_seconds') or 0:.0f} s):",
        "",
        "| max_len | dropout | best epoch | validation NDCG@10 | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {t['max_len']} | {t['dropout']} | {t['best_epoch']} | {t['valid_ndcg10']:.4f} | "
        f"{t['seconds']:.0f} |"
        for t in sasrec["trials"]
    ]
    return lines


def _ranker_lines(ranker: dict[str, Any] | None) -> list[str]:
    if not ranker or not ranker.get("training"):
        return []
    training = ranker["training"]
    top = sorted(ranker["importance_gain"].items(), key=lambda kv: -kv[1])[:5]
    return [
        "",
        f"Learned ranker (LightGBM LambdaRank): trained on {training['queries']} validation "
        f"users with their item in the pool, {training['rounds']} boosting rounds chosen by "
        f"{training['folds']}-fold cross-validation over users (NDCG@10 {training['cv_ndcg10']} "
        "on those users); pool = "
        f"each retriever's top {ranker['pool_depth']}, {ranker['mean_pool_size']} items per user "
        f"on average, holding {ranker['test_items_in_pool']:.1%} of the test items; strongest "
        "features by gain: " + ", ".join(f"{name} {share:.0%}" for name, share in top) + ".",
    ]


def _rerank_line(chosen: dict[str, Any]) -> str:
    gain = chosen["gain_over_no_rerank"]
    verdict = (
        f"rerank weight {chosen['weight']}"
        if chosen["weight"]
        else "the LLM rerank stays off (weight 0): the best weight's gain over no rerank was "
        "not significant"
    )
    return (
        f"; {verdict} (best on {chosen['validation_users']} validation users: weight "
        f"{chosen['best_on_validation']}, NDCG@10 {gain['ndcg10_difference']:+.4f} "
        f"[{gain['ci95_low']:+.4f}, {gain['ci95_high']:+.4f}] over no rerank; by weight "
        f"{json.dumps(chosen['validation_ndcg10_by_weight'])})"
    )
