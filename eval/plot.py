"""The plots of a ranking run: NDCG@K per system and SASRec's training curves (PNG, no display
needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.metrics import KS


def ndcg_plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.8), dpi=120)
    for name, result in report["results"].items():
        values = [result["full"][f"NDCG@{k}"] for k in KS]
        style = "-" if name.startswith("recagent") else "--"
        ax.plot(KS, values, style, marker="o", label=name)
    for name, points in report["published"].items():
        if "NDCG@10" in points:
            ax.scatter([10], [points["NDCG@10"]], marker="x", s=60, label=name.split(",")[0])
    split = report["split"]
    ax.set(
        xlabel="K",
        ylabel="NDCG@K (full ranking)",
        xticks=list(KS),
        title=f"{report.get('dataset', 'ml-100k')}, {split['users']} users, {split['items']} "
        "items, leave-one-out",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def sasrec_curve_plot(report: dict[str, Any], path: Path) -> None:
    """Validation NDCG@10 by epoch for every SASRec setting tried (``report["sasrec"]``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=120)
    for trial in report["sasrec"]["trials"]:
        epochs = [p["epoch"] for p in trial["curve"]]
        values = [p["valid_ndcg10"] for p in trial["curve"]]
        label = f"max_len {trial['max_len']}, dropout {trial['dropout']}"
        ax.plot(epochs, values, marker=".", label=label)
    ax.set(xlabel="epoch", ylabel="validation NDCG@10", title="SASRec training curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
