"""The report of `recagent eval rank`: the bar the complete pipeline is held to and the Markdown
table of every system's figures."""

from __future__ import annotations

import json
from typing import Any

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
