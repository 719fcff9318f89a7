"""`recagent eval rank`: ranking metrics on ML-100K for every system, in one run.

Full ranking over all items (seen items excluded) is the primary number; 1 positive + 99 sampled
unseen negatives (fixed seed) is the secondary one. Systems so far: popularity, item-kNN (cosine),
EASE (lambda 100) and embedding-only (MiniLM: the mean embedding of the user's history against
every item's text). Results: a folder with the config, JSON and a Markdown table.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval import baselines
from eval.metrics import KS, TIE_RULE, coverage, metrics_from_ranks, rank_of
from eval.movielens import Split, load_split, matrix

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
    stage: str = "test"
    negatives: int = 99
    seed: int = 2026
    limit: int | None = None  # users evaluated (None: all)


def sampled_rank(
    scores: np.ndarray, target: int, seen: set[int], rng: np.random.Generator, negatives: int
) -> int:
    pool = np.array([i for i in range(scores.size) if i not in seen and i != target])
    chosen = rng.choice(pool, size=min(negatives, pool.size), replace=False)
    candidates = np.concatenate([[target], chosen])
    return rank_of(scores[candidates], 0, [])


def evaluate(split: Split, scores: np.ndarray, config: RankConfig) -> dict[str, Any]:
    users = range(split.n_users if config.limit is None else min(config.limit, split.n_users))
    targets = split.test if config.stage == "test" else split.valid
    rng = np.random.default_rng(config.seed)
    full, sampled, tops = [], [], []
    for user in users:
        seen = split.history(user, config.stage)
        full.append(rank_of(scores[user], targets[user], seen))
        sampled.append(sampled_rank(scores[user], targets[user], set(seen), rng, config.negatives))
        masked = scores[user].astype(np.float64, copy=True)
        masked[seen] = -np.inf
        tops.append(np.argsort(-masked, kind="stable")[:10].tolist())
    result: dict[str, Any] = {
        "full": metrics_from_ranks(full),
        f"sampled_{config.negatives}": metrics_from_ranks(sampled, KS),
    }
    result["full"]["Coverage@10"] = coverage(tops, split.n_items)
    return result


def embedding_scorer(
    split: Split, texts: list[str], embed: Callable[[list[str]], np.ndarray], stage: str
) -> np.ndarray:
    """Cosine of each item's text embedding with the mean of the user's history embeddings."""
    items = embed(texts)
    x = matrix(split, stage)
    profiles = x @ items / np.maximum(x.sum(axis=1, keepdims=True), 1)
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    scores: np.ndarray = profiles @ items.T
    return scores


def systems(
    split: Split,
    stage: str,
    item_texts: list[str] | None,
    embed: Callable[[list[str]], np.ndarray] | None,
) -> dict[str, Callable[[], np.ndarray]]:
    x = matrix(split, stage)
    out: dict[str, Callable[[], np.ndarray]] = {
        "popularity": lambda: baselines.popularity(x),
        "item-kNN (cosine)": lambda: baselines.item_knn(x),
        "EASE (lambda 100)": lambda: baselines.ease(x, 100.0),
    }
    if item_texts is not None and embed is not None:
        out["embedding-only (MiniLM)"] = lambda: embedding_scorer(split, item_texts, embed, stage)
    return out


def run(
    out_dir: Path,
    config: RankConfig,
    item_texts: list[str] | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    models: dict[str, str] | None = None,
) -> dict[str, Any]:
    split = load_split()
    results: dict[str, Any] = {}
    for name, make in systems(split, config.stage, item_texts, embed).items():
        start = time.perf_counter()
        scores = make()
        results[name] = {
            **evaluate(split, scores, config),
            "seconds": round(time.perf_counter() - start, 2),
        }
    report = {
        "dataset": "ml-100k",
        "split": {
            **split.meta,
            "users": split.n_users,
            "items": split.n_items,
            "stage": config.stage,
            "history": "train + validation" if config.stage == "test" else "train",
        },
        "ranking_ties": TIE_RULE,
        "config": config.__dict__,
        "models": models or {},
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "results": results,
        "published": PUBLISHED,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(report, indent=2))
    (out_dir / "results.md").write_text(markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    cols = ["HR@1", "NDCG@5", "NDCG@10", "Recall@10", "NDCG@20", "Recall@20", "MRR", "Coverage@10"]
    split = report["split"]
    lines = [
        f"# Ranking on ML-100K ({split['users']} users, {split['items']} items, "
        f"{split['protocol']}; {split['ties']}; history = {split['history']})",
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
    return "\n".join(lines) + "\n"
