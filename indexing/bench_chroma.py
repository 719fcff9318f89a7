"""``recagent bench chroma``: one Chroma node sized as a server, embedded against ``chroma run``.

One run builds a seeded synthetic store and loads the same data into each backend: embedded
Chroma (a ``PersistentClient`` in a temporary folder, in this process) and a ``chroma run``
server (started here on a free loopback port in a temporary folder and stopped at the end, or an
existing one at ``url``). Per backend it measures the load (seconds and items/s per
collection), top-k query latency (p50/p95, one query at a time) without a filter, with a
category equality and with a price range, the recall of those queries against an exact search
over the same vectors, the persist folder's size on disk and the memory held (the server
process's RSS; for embedded, the growth of this process's RSS).

The data and its exact answers: :mod:`indexing.synthetic_store`; the memory, disk and server
probes: :mod:`indexing.chroma_probes`.

Throughput: the same queries sent from several client threads at once (queries/s per
concurrency level, :mod:`indexing.chroma_throughput`). With ``url`` the server's memory and
disk are not known to this process and are reported as ``None``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indexing.chroma import open_client
from indexing.chroma_probes import (
    RssSampler,
    Server,
    chroma_server,
    folder_bytes,
    megabytes,
    rss_bytes,
)
from indexing.chroma_throughput import run_throughput
from indexing.synthetic_store import (
    IMAGE_DIM,
    QUERY_KINDS,
    TEXT_DIM,
    Query,
    SyntheticSpec,
    Truth,
    batches,
    exact_search,
    make_queries,
    matches_query,
    where_clause,
)
from tools.errors import InputError

Progress = Callable[[int, int], None]
ProgressFactory = Callable[[str, int], AbstractContextManager[Progress]]
"""``progress(label, total)``: a context manager yielding a ``(done, total)`` callback."""
Backend = Literal["embedded", "server"]
BACKENDS: tuple[Backend, ...] = ("embedded", "server")


def _percentile(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 3) if values else 0.0


def _load(
    client: Any,
    spec: SyntheticSpec,
    prefix: str,
    batch: int,
    progress: ProgressFactory | None,
    say: Callable[[str], None],
) -> tuple[Any, Any, dict[str, Any]]:
    """Both collections, filled batch by batch; seconds count only the ``add`` calls."""
    size = max(1, min(batch, int(client.get_max_batch_size())))
    config = {"hnsw": {"space": "cosine"}}
    text = client.create_collection(f"{prefix}_text", embedding_function=None, configuration=config)
    image = client.create_collection(
        f"{prefix}_image", embedding_function=None, configuration=config
    )
    seconds = {"text": 0.0, "image": 0.0}
    counts = {"text": 0, "image": 0}
    started = time.perf_counter()
    marks = {spec.items * n // 10 for n in range(1, 11)}
    with contextlib.ExitStack() as stack:
        report = stack.enter_context(progress("loading", spec.items)) if progress else None
        for part in batches(spec, size):
            t0 = time.perf_counter()
            text.add(ids=part.ids, embeddings=part.text, metadatas=part.metadatas)
            t1 = time.perf_counter()
            if part.image_ids:
                rows = {i: n for n, i in enumerate(part.ids)}
                image.add(
                    ids=part.image_ids,
                    embeddings=part.image,
                    metadatas=[part.metadatas[rows[i]] for i in part.image_ids],
                )
            t2 = time.perf_counter()
            seconds["text"] += t1 - t0
            seconds["image"] += t2 - t1
            before = counts["text"]
            counts["text"] += len(part.ids)
            counts["image"] += len(part.image_ids)
            if report is not None:
                report(counts["text"], spec.items)
            if any(before < m <= counts["text"] for m in marks):
                rate = counts["text"] / (time.perf_counter() - started)
                say(f"  {counts['text']:,}/{spec.items:,} items ({rate:,.0f} items/s)")
    wall = time.perf_counter() - started
    add = seconds["text"] + seconds["image"]
    figures = {
        "batch_size": size,
        "wall_seconds": round(wall, 2),
        "add_seconds": round(add, 2),
        "items_per_s": round(spec.items / add, 1) if add else None,
        "vectors_per_s": round((counts["text"] + counts["image"]) / add, 1) if add else None,
        **{
            name: {
                "vectors": counts[name],
                "add_seconds": round(seconds[name], 2),
                "vectors_per_s": round(counts[name] / seconds[name], 1) if seconds[name] else None,
            }
            for name in ("text", "image")
        },
    }
    return text, image, figures


def _run_queries(
    text: Any,
    image: Any,
    queries: Sequence[Query],
    k: int,
    truth: Truth,
    samples: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Each kind: one warm-up query (timed as ``first_ms``), then every query timed alone."""
    out: dict[str, Any] = {}
    for kind in QUERY_KINDS:
        collection = image if kind == "image" else text
        latencies: list[float] = []
        returned: list[int] = []
        violations = 0
        recall: list[float] = []
        shown: list[dict[str, Any]] = []
        first_ms = 0.0
        for n, query in enumerate([queries[0], *queries]):
            vector = query.image if kind == "image" else query.text
            where = where_clause(kind, query)
            start = time.perf_counter()
            result = collection.query(
                query_embeddings=[vector],
                n_results=k,
                where=where,
                include=["metadatas", "distances"],
            )
            took = (time.perf_counter() - start) * 1000
            if n == 0:  # warm-up: loads the index where it is not in memory yet
                first_ms = round(took, 3)
                continue
            latencies.append(took)
            ids: list[str] = result["ids"][0]
            metas: list[dict[str, Any]] = result["metadatas"][0]
            returned.append(len(ids))
            violations += sum(1 for m in metas if not matches_query(kind, query, m))
            i = n - 1
            if kind in truth.top and i < len(truth.top[kind]):
                expected = truth.top[kind][i]
                if expected:
                    recall.append(len(set(ids) & set(expected)) / len(expected))
            if where is not None and len(shown) < samples:
                shown.append({"where": where, "ids": ids[:10]})
        out[kind] = {
            "queries": len(latencies),
            "p50_ms": _percentile(latencies, 50),
            "p95_ms": _percentile(latencies, 95),
            "mean_ms": round(float(np.mean(latencies)), 3) if latencies else 0.0,
            "first_ms": first_ms,
            "returned_mean": round(float(np.mean(returned)), 2) if returned else 0.0,
            "filter_violations": violations,
            "recall_at_k": round(float(np.mean(recall)), 4) if recall else None,
            "recall_queries": len(recall),
        }
        if kind in truth.matching:
            counts = truth.matching[kind][: len(queries)]
            out[kind]["matching_items_mean"] = round(float(np.mean(counts)), 1)
        if shown:
            out[kind]["samples"] = shown
        say(f"  {kind}: p50 {out[kind]['p50_ms']:,.1f} ms, p95 {out[kind]['p95_ms']:,.1f} ms")
    return out


def run_backend(
    backend: Backend,
    spec: SyntheticSpec,
    workdir: Path,
    queries: Sequence[Query],
    truth: Truth,
    *,
    k: int,
    batch: int,
    url: str | None = None,
    samples: int = 5,
    concurrency: Sequence[int] = (),
    progress: ProgressFactory | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Load the synthetic store into one backend and measure it. Memory is the server
    process's RSS, or for embedded this process's RSS growth from just before the client
    opened; ``peak`` is sampled while loading and querying."""
    figures: dict[str, Any] = {"backend": backend, "load_average_before": _load_average()}
    with contextlib.ExitStack() as stack:
        if backend == "embedded":
            path: Path | None = workdir / backend
            pid: int | None = os.getpid()
            baseline = rss_bytes(os.getpid())
            client = open_client(path, None)
            figures["memory_of"] = "this process (RSS growth from before the client opened)"
        else:
            server = (
                Server(url, None, None)
                if url
                else stack.enter_context(chroma_server(workdir / backend))
            )
            path, pid = server.path, server.pid
            baseline = rss_bytes(pid) if pid is not None else None
            client = open_client(None, server.url)
            figures["url"] = url or "started here (chroma run on 127.0.0.1)"
            figures["memory_of"] = "the server process (RSS)" if pid else None
        prefix = f"bench_{uuid.uuid4().hex[:8]}"
        sampler = RssSampler(pid).start() if pid is not None else None
        try:
            say(f"{backend}: loading {spec.items:,} items")
            text, image, figures["load"] = _load(client, spec, prefix, batch, progress, say)
            after_load = rss_bytes(pid) if pid is not None else None
            figures["count"] = {"text": int(text.count()), "image": int(image.count())}
            say(f"{backend}: {len(queries)} queries of each kind ({', '.join(QUERY_KINDS)})")
            figures["queries"] = _run_queries(text, image, queries, k, truth, samples, say)
            if concurrency:
                say(f"{backend}: queries/s with {', '.join(map(str, concurrency))} at once")
                figures["throughput"] = run_throughput(text, queries, k, concurrency, say)
            after = rss_bytes(pid) if pid is not None else None
            peak = sampler.stop() if sampler is not None else None
            figures["memory"] = _memory(backend, baseline, after_load, after, peak)
            figures["disk_bytes"] = folder_bytes(path) if path is not None else None
            figures["load_average_after"] = _load_average()
        finally:
            if sampler is not None:
                sampler.stop()
            if url is not None:  # someone else's server: leave nothing behind
                for name in (f"{prefix}_text", f"{prefix}_image"):
                    with contextlib.suppress(Exception):
                        client.delete_collection(name)
            if backend == "embedded":
                client.clear_system_cache()  # closes the embedded node before the next backend
    if url is None:  # the server has stopped: free the disk before the next backend loads
        shutil.rmtree(workdir / backend, ignore_errors=True)
    return figures


def _memory(
    backend: Backend,
    baseline: int | None,
    after_load: int | None,
    after: int | None,
    peak: int | None,
) -> dict[str, Any]:
    """Absolute RSS figures; ``growth`` from the baseline (a fresh server, or this process
    before the client opened) to after the queries; ``held``: what the Chroma node holds
    after the queries (the growth for embedded, the whole server process otherwise) with its
    ``held_peak``."""
    base = baseline if backend == "embedded" else 0
    return {
        "baseline_mb": megabytes(baseline),
        "after_load_mb": megabytes(after_load),
        "after_queries_mb": megabytes(after),
        "peak_mb": megabytes(peak),
        "growth_mb": megabytes(after - baseline)
        if after is not None and baseline is not None
        else None,
        "held_mb": megabytes(after - base) if after is not None and base is not None else None,
        "held_peak_mb": megabytes(peak - base) if peak is not None and base is not None else None,
    }


# -- the whole run -----------------------------------------------------------------------


def run_chroma_bench(
    spec: SyntheticSpec,
    out: Path,
    *,
    backends: Sequence[Backend] = BACKENDS,
    queries: int = 200,
    k: int = 50,
    batch: int = 2000,
    url: str | None = None,
    recall_queries: int = 20,
    workdir: Path | None = None,
    concurrency: Sequence[int] = (1, 8, 32),
    progress: ProgressFactory | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark on each backend, write its figures to ``out`` as JSON and return
    them. Persist folders live in a temporary folder under ``workdir`` (default: the system's
    temporary folder), deleted at the end."""
    import chromadb

    def say(line: str) -> None:
        if log is not None:
            log(line)

    if queries < 1 or k < 1 or batch < 1:
        raise InputError("--queries, --k and --batch must be 1 or more")
    if not backends:
        raise InputError("name at least one backend")
    if url is not None and not url.startswith(("http://", "https://")):
        raise InputError(f"--url must start with http:// or https://, not {url!r}")
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "spec": asdict(spec),
        "dims": {"text": TEXT_DIM, "image": IMAGE_DIM},
        "queries": queries,
        "k": k,
        "machine": _machine(chromadb.__version__),
        "backends": {},
    }
    query_set = make_queries(spec, queries)
    say(f"exact top-{k} for {min(recall_queries, queries)} queries (recall reference)")
    started = time.perf_counter()
    truth = exact_search(spec, query_set, k, recall_queries)
    figures["exact_search_seconds"] = round(time.perf_counter() - started, 1)
    with tempfile.TemporaryDirectory(prefix="recagent-bench-chroma-", dir=workdir) as tmp:
        for backend in backends:
            figures["backends"][backend] = run_backend(
                backend,
                spec,
                Path(tmp),
                query_set,
                truth,
                k=k,
                batch=batch,
                url=url if backend == "server" else None,
                concurrency=concurrency,
                progress=progress,
                say=say,
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(figures, indent=2))  # what is done so far survives
    figures["per_million_items"] = {
        name: _per_million(spec, run) for name, run in figures["backends"].items()
    }
    out.write_text(json.dumps(figures, indent=2))
    return figures


def _per_million(spec: SyntheticSpec, run: dict[str, Any]) -> dict[str, float | None]:
    """Memory growth, disk and load time scaled linearly to a million items: only meaningful
    from a size where the fixed costs (a fresh server's ~110 MB) no longer dominate."""
    scale = 1_000_000 / spec.items
    growth = run.get("memory", {}).get("growth_mb")
    disk = run.get("disk_bytes")
    return {
        "memory_growth_mb": round(growth * scale, 1) if growth is not None else None,
        "disk_mb": round(disk["total"] / 2**20 * scale, 1) if disk else None,
        "load_minutes": round(run["load"]["add_seconds"] * scale / 60, 1),
    }


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _machine(chroma_version: str) -> dict[str, Any]:
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        memory = round(int(first.split()[1]) / 2**20, 1)
    return {
        "cpus": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "chromadb": chroma_version,
        "numpy": np.__version__,
    }
