"""`recagent eval rank`: ranking metrics on ML-100K (or any dataset by path) for every system,
in one run.

Full ranking over all items (seen items excluded) is the primary number; 1 positive + 99 sampled
unseen negatives (fixed seed) is the secondary one. Systems: popularity, item-kNN (cosine),
EASE (lambda 100), SASRec trained here, embedding-only (MiniLM: the mean embedding of the user's
history against every item's text), and recagent's pipeline (eval/pipeline.py) with and without
the LLM rerank (eval/rerank.py). Everything the pipeline chooses (the collaborative blend, the
fusion weights, the rerank weight) is tuned on the validation split, then evaluated on test.
Results: a folder with the config, JSON, a Markdown table and an NDCG@K plot.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from eval import baselines, rerank
from eval.llm_client import ChatClient
from eval.metrics import KS, TIE_RULE, coverage, metrics_from_ranks, rank_of
from eval.movielens import Split, matrix
from eval.pipeline import (
    CONTENT_DEPTH,
    GRID,
    Inputs,
    fused_scores,
    ndcg_at,
    target_ranks,
    tune,
)
from eval.plot import ndcg_plot
from eval.significance import against_best_baseline, paired_bootstrap
from tools.collaborative import FUSION_FILE, CollabModel
from tools.sasrec import SASRecConfig

PUBLISHED = {
    "SASRec (published)": {"NDCG@10": 0.0522, "Recall@10": 0.0993},
    "LlamaRec, Llama-2-7B fine-tuned (published; its 'ml-100k' is ml-latest-small)": {
        "NDCG@10": 0.0759,
        "Recall@10": 0.1524,
    },
}

Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RankConfig:
    negatives: int = 99
    seed: int = 2026
    limit: int | None = None  # users evaluated (None: all)
    rerank_tune_users: int = 200  # validation users the rerank weight is tuned on
    sasrec: SASRecConfig = field(default_factory=SASRecConfig)


def sampled_rank(
    scores: np.ndarray, target: int, seen: set[int], rng: np.random.Generator, negatives: int
) -> int:
    pool = np.array([i for i in range(scores.size) if i not in seen and i != target])
    chosen = rng.choice(pool, size=min(negatives, pool.size), replace=False)
    candidates = np.concatenate([[target], chosen])
    return rank_of(scores[candidates], 0, [])


def evaluate(
    split: Split, scores: np.ndarray, config: RankConfig, users: list[int] | None = None
) -> dict[str, Any]:
    """Test-item metrics; row ``n`` of ``scores`` belongs to ``users[n]`` (default: all)."""
    users = list(range(split.n_users)) if users is None else users
    rng = np.random.default_rng(config.seed)
    full, sampled, tops = [], [], []
    for row, user in enumerate(users):
        seen = split.history(user, "test")
        target = split.test[user]
        full.append(rank_of(scores[row], target, seen))
        sampled.append(sampled_rank(scores[row], target, set(seen), rng, config.negatives))
        masked = scores[row].astype(np.float64, copy=True)
        masked[seen] = -np.inf
        tops.append(np.argsort(-masked, kind="stable")[:10].tolist())
    result: dict[str, Any] = {
        "full": metrics_from_ranks(full),
        f"sampled_{config.negatives}": metrics_from_ranks(sampled, KS),
        "ranks": full,  # per user: run() moves these to ranks.json for significance
    }
    result["full"]["Coverage@10"] = coverage(tops, split.n_items)
    return result


def embedding_scores(x: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine of each item's text embedding with the mean of the user's history embeddings."""
    profiles = x @ items / np.maximum(x.sum(axis=1, keepdims=True), 1)
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    scores: np.ndarray = profiles @ items.T
    return scores


@dataclass
class Stage:
    """Everything fitted on what is known before one stage ("valid" or "test")."""

    name: str
    users: list[int]
    targets: list[int]
    histories: list[list[int]]
    x: np.ndarray
    collab: CollabModel
    inputs: Inputs


def fit_stage(
    split: Split,
    name: str,
    users: list[int],
    item_vectors: np.ndarray,
    sasrec: SASRecConfig,
    progress: bool,
) -> Stage:
    histories = [split.history(u, name) for u in range(split.n_users)]
    bar = tqdm(
        total=sasrec.epochs, desc=f"SASRec ({name} stage)", unit="epoch", disable=not progress
    )

    def tick(epoch: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")

    collab = CollabModel.fit(histories, split.item_ids, sasrec, progress=tick)
    bar.close()
    x = matrix(split, name)
    chosen = [histories[u] for u in users]
    sequential, item_item = collab.parts(chosen)
    inputs = Inputs(
        seen=x[users] > 0,
        sequential=sequential,
        item_item=item_item,
        content=embedding_scores(x[users], item_vectors),
    )
    targets = [(split.test if name == "test" else split.valid)[u] for u in users]
    return Stage(name, users, targets, histories, x, collab, inputs)


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
    client: ChatClient, stage: Stage, scores: np.ndarray, titles: list[str], rows: list[int]
) -> tuple[np.ndarray, list[np.ndarray]]:
    tops = top_lists(scores[rows], rerank.TOP)
    histories = [[titles[i] for i in stage.histories[stage.users[r]]] for r in rows]
    candidates = [[titles[i] for i in top] for top in tops]
    return tops, rerank.rerank_all(client, histories, candidates, f"LLM rerank ({stage.name})")


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
) -> dict[str, Any]:
    """Fit, tune on validation, evaluate on test; write results.json/.md and ndcg.png.
    ``item_texts`` and ``titles`` follow ``split.item_ids``."""
    users = list(range(split.n_users if config.limit is None else min(config.limit, split.n_users)))
    clock: dict[str, float] = {}
    start = time.perf_counter()
    item_vectors = embed(item_texts)
    clock["item embeddings"] = time.perf_counter() - start

    start = time.perf_counter()
    valid = fit_stage(split, "valid", users, item_vectors, config.sasrec, progress)
    clock["fit (validation stage)"] = time.perf_counter() - start
    tuned = tune(valid.inputs, valid.targets)
    valid_fused = fused_scores(
        valid.inputs.collab(tuned.alpha), valid.inputs.content, valid.inputs.seen, tuned.weights
    )
    rerank_weight = None
    tuning: dict[str, Any] = {
        "alpha": tuned.alpha,
        "fusion": tuned.weights.model_dump(),
        "validation_ndcg10": round(tuned.ndcg10, 4),
        "grid_points": tuned.tried,
        "grid": {k: list(v) for k, v in GRID.items()},
    }
    if client is not None:
        rows = list(range(min(config.rerank_tune_users, len(users))))
        start = time.perf_counter()
        tops, ranks = llm_ranks(client, valid, valid_fused, titles, rows)
        clock["LLM rerank (validation users)"] = time.perf_counter() - start
        by_weight, ranks_by_weight = {}, {}
        for weight in rerank.WEIGHTS:
            orders = [rerank.blend(r, weight, tuned.weights.rrf_k) for r in ranks]
            reordered = apply_order(valid_fused[rows], tops, orders)
            ranks_by_weight[weight] = target_ranks(reordered, [valid.targets[r] for r in rows])
            by_weight[weight] = ndcg_at(ranks_by_weight[weight])
        best = max(by_weight, key=lambda w: (by_weight[w], -w))
        # the LLM step earns its place: its validation gain over no rerank must be significant
        gain = paired_bootstrap(
            ranks_by_weight[best].tolist(), ranks_by_weight[0.0].tolist(), config.seed
        )
        rerank_weight = (
            best if best != 0.0 and gain["significant"] and gain["ndcg10_difference"] > 0 else 0.0
        )
        tuning["rerank"] = {
            "weight": rerank_weight,
            "best_on_validation": best,
            "gain_over_no_rerank": gain,
            "validation_users": len(rows),
            "validation_ndcg10_by_weight": {str(w): round(v, 4) for w, v in by_weight.items()},
        }

    start = time.perf_counter()
    test = fit_stage(split, "test", users, item_vectors, config.sasrec, progress)
    clock["fit (test stage)"] = time.perf_counter() - start
    x = test.x
    systems: dict[str, Callable[[], np.ndarray]] = {
        "popularity": lambda: baselines.popularity(x),
        "item-kNN (cosine)": lambda: baselines.item_knn(x),
        "EASE (lambda 100)": lambda: baselines.ease(x, 100.0),
    }
    results: dict[str, Any] = {}
    for name, make in systems.items():
        begin = time.perf_counter()
        scores = make()[users]
        results[name] = {**evaluate(split, scores, config, users), "seconds": _since(begin)}
    results[f"SASRec ({config.sasrec.epochs} epochs)"] = {
        **evaluate(
            split, test.collab.sequential.scores([test.histories[u] for u in users]), config, users
        ),
        "seconds": round(clock["fit (test stage)"], 2),
    }
    results["embedding-only (MiniLM)"] = evaluate(split, test.inputs.content, config, users)
    fused = fused_scores(
        test.inputs.collab(tuned.alpha), test.inputs.content, test.inputs.seen, tuned.weights
    )
    results["recagent: fusion, no rerank"] = evaluate(split, fused, config, users)
    if client is not None and rerank_weight:  # 0: the rerank did not earn its place
        rows = list(range(len(users)))
        start = time.perf_counter()
        tops, ranks = llm_ranks(client, test, fused, titles, rows)
        clock["LLM rerank (test users)"] = time.perf_counter() - start
        orders = [rerank.blend(r, rerank_weight, tuned.weights.rrf_k) for r in ranks]
        name = f"recagent: fusion + LLM rerank of top {rerank.TOP} (weight {rerank_weight})"
        results[name] = evaluate(split, apply_order(fused, tops, orders), config, users)
        llm_only = apply_order(fused, tops, [np.argsort(r, kind="stable") for r in ranks])
        results["LLM order of the top 20 alone (diagnostic)"] = evaluate(
            split, llm_only, config, users
        )

    if save_collab is not None:
        start = time.perf_counter()
        full = [split.train[u] + [split.valid[u], split.test[u]] for u in range(split.n_users)]
        agent_model = CollabModel.fit(full, split.item_ids, config.sasrec, alpha=tuned.alpha)
        agent_model.save(save_collab)
        (save_collab / FUSION_FILE).write_text(json.dumps(tuned.weights.model_dump(), indent=2))
        clock["fit (agent model, all interactions)"] = time.perf_counter() - start

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
    report: dict[str, Any] = {
        "dataset": dataset,
        "split": {
            **split.meta,
            "users": split.n_users,
            "evaluated_users": len(users),
            "items": split.n_items,
            "history": "train + validation (test); train (validation, for tuning)",
        },
        "ranking_ties": TIE_RULE,
        "config": {**asdict(config), "content_depth": CONTENT_DEPTH},
        "tuning": tuning,
        "models": {**(models or {}), **({"llm": client.target.model} if client else {})},
        "seconds": {k: round(v, 2) for k, v in clock.items()},
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
    return report


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 2)


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
    return "\n".join(lines) + "\n"


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
