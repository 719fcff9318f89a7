"""The figures of ``recagent bench chroma`` as the rows of the table the command prints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from indexing.chroma_throughput import THROUGHPUT_KINDS
from indexing.synthetic_store import QUERY_KINDS


def table_rows(figures: dict[str, Any]) -> list[tuple[str, ...]]:
    """The figures as rows (a label, then one cell per backend) for a front end to draw."""
    runs = figures["backends"]
    k = figures["k"]

    def row(label: str, cell: Callable[[dict[str, Any]], str | None]) -> tuple[str, ...]:
        cells = []
        for run in runs.values():
            try:
                value = cell(run)
            except (KeyError, TypeError):  # a backend that stopped before this figure
                value = None
            cells.append("n/a" if value is None else value)
        return (label, *cells)

    def latency(kind: str) -> Callable[[dict[str, Any]], str]:
        def cell(run: dict[str, Any]) -> str:
            q = run["queries"][kind]
            return f"{q['p50_ms']:.1f} / {q['p95_ms']:.1f} ms"

        return cell

    def recall(kind: str) -> Callable[[dict[str, Any]], str | None]:
        return lambda run: _fmt(run["queries"][kind]["recall_at_k"], "{:.3f}")

    def rate(kind: str, level: str) -> Callable[[dict[str, Any]], str]:
        def cell(run: dict[str, Any]) -> str:
            t = run["throughput"][kind][level]
            return f"{t['queries_per_s']:,.0f} q/s (p95 {t['p95_ms']:,.0f} ms)"

        return cell

    levels = sorted(
        {lv for run in runs.values() for lv in run.get("throughput", {}).get("unfiltered", {})},
        key=int,
    )

    def count(run: dict[str, Any]) -> str:
        return f"{run['count']['text']:,} / {run['count']['image']:,}"

    return [
        ("", *runs),
        row("vectors (text / image)", count),
        row("load (add calls)", lambda r: f"{r['load']['add_seconds']:,.0f} s"),
        row("load rate", lambda r: f"{r['load']['items_per_s']:,.0f} items/s"),
        *[row(f"top-{k} {kind}, p50 / p95", latency(kind)) for kind in QUERY_KINDS],
        *[row(f"recall@{k} {kind}", recall(kind)) for kind in ("unfiltered", "category", "price")],
        *[
            row(f"{kind}, {level} at once", rate(kind, level))
            for kind in THROUGHPUT_KINDS
            for level in levels
        ],
        row("disk", lambda r: f"{r['disk_bytes']['total'] / 2**20:,.0f} MiB"),
        row("memory held", lambda r: _fmt(r["memory"]["held_mb"], "{:,.0f} MiB")),
        row("memory peak", lambda r: _fmt(r["memory"]["held_peak_mb"], "{:,.0f} MiB")),
    ]


def _fmt(value: float | None, pattern: str) -> str | None:
    return None if value is None else pattern.format(value)
