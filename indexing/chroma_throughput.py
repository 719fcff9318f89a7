"""Queries/s of one Chroma node under concurrency, for ``recagent bench chroma``.

The latency figures of the benchmark come from one query at a time; a node serving many turns
answers many at once. Here the same query set is sent from ``level`` client threads at once
(each thread waits for its answer before sending the next, a closed loop), and the run reports
queries/s over the whole set and the latency each query saw under that load. Unfiltered and
category-filtered queries only: a price range at a million items takes seconds even alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from indexing.synthetic_store import Query, where_clause

THROUGHPUT_KINDS = ("unfiltered", "category")


def _percentile(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 3) if values else 0.0


def run_throughput(
    text: Any,
    queries: Sequence[Query],
    k: int,
    levels: Sequence[int],
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, dict[str, dict[str, float]]]:
    """{kind: {level: figures}} for each query kind and number of client threads."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in THROUGHPUT_KINDS:

        def one(query: Query, kind: str = kind) -> float:
            start = time.perf_counter()
            text.query(
                query_embeddings=[query.text],
                n_results=k,
                where=where_clause(kind, query),
                include=["distances"],
            )
            return (time.perf_counter() - start) * 1000

        out[kind] = {}
        for level in levels:
            with ThreadPoolExecutor(max_workers=level) as pool:
                list(pool.map(one, queries[:level]))  # every thread's first query: warm-up
                start = time.perf_counter()
                latencies = list(pool.map(one, queries))
                wall = time.perf_counter() - start
            out[kind][str(level)] = {
                "queries": len(latencies),
                "queries_per_s": round(len(latencies) / wall, 1) if wall > 0 else 0.0,
                "p50_ms": _percentile(latencies, 50),
                "p95_ms": _percentile(latencies, 95),
            }
            figures = out[kind][str(level)]
            say(
                f"  {kind}, {level} at once: {figures['queries_per_s']:,.1f} queries/s, "
                f"p95 {figures['p95_ms']:,.1f} ms"
            )
    return out
