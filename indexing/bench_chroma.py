"""``recagent bench chroma``: one Chroma node sized as a server, embedded against ``chroma run``.

One run builds a seeded synthetic store and loads the same data into each backend: embedded
Chroma (a ``PersistentClient`` in a temporary folder, in this process) and a ``chroma run``
server (started here on a free loopback port in a temporary folder and stopped at the end, or an
existing one at ``url``). Per backend it measures the load (seconds and items/s per
collection), top-k query latency (p50/p95, one query at a time) without a filter, with a
category equality and with a price range, the recall of those queries against an exact search
over the same vectors, the persist folder's size on disk and the memory held (the server
process's RSS; for embedded, the growth of this process's RSS).

The data, the same for the same :class:`SyntheticSpec`:

* text vectors (384-d, like all-MiniLM-L6-v2) for every item and image vectors (1280-d, like
  the EfficientNet-Lite pooled features) for a share of them, in a second collection. Vectors
  are not uniform noise: each item belongs to one of a few hundred clusters (a Gaussian around
  a random unit centre, then normalised), so HNSW sees neighbourhoods as it does on real
  embeddings. An item's image vector comes from the same cluster as its text vector.
* metadata like the project's filter fields (``indexing/records.py``): a ``category`` out of a
  few hundred (70% of a cluster's items share its home category), a log-normal ``price``,
  ``has_image``, ``has_audio`` and a short ``title``. No documents are stored (the vectors are
  given), so a real store, which also keeps documents and each item as JSON, is larger on disk.

Generation goes in blocks of :data:`BLOCK` items, each from its own seeded generator, so memory
stays bounded at any size and a test can regenerate any item's facts (:func:`item_facts`).

Limits: queries run one at a time from one client (latency, not throughput under concurrency);
with ``url`` the server's memory and disk are not known to this process and are reported as
``None``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np

from indexing.chroma import open_client
from tools.errors import InputError, StoreError

BLOCK = 1000
"""Items generated from one seeded generator: the data does not depend on the batch size."""

TEXT_DIM = 384
IMAGE_DIM = 1280
HOME_SHARE = 0.7
"""Share of a cluster's items filed under the cluster's home category (the rest: any)."""

Progress = Callable[[int, int], None]
ProgressFactory = Callable[[str, int], AbstractContextManager[Progress]]
"""``progress(label, total)``: a context manager yielding a ``(done, total)`` callback."""

Backend = Literal["embedded", "server"]
BACKENDS: tuple[Backend, ...] = ("embedded", "server")
QUERY_KINDS = ("unfiltered", "category", "price", "image")

ADJECTIVES = "red blue green small large wooden metal soft bright quiet old new round".split()
THINGS = "ball car tree house boat bird lamp chair cup hat kite drum bell train clock".split()


@dataclass(frozen=True)
class SyntheticSpec:
    """What the synthetic store holds; the same spec gives the same data."""

    items: int = 1_000_000
    """Items in the text collection (one 384-d vector each)."""
    image_share: float = 0.2
    """Share of items that also get a 1280-d vector in the image collection."""
    audio_share: float = 0.05
    """Share of items flagged ``has_audio`` (metadata only)."""
    clusters: int = 300
    """Gaussian centres of the vector mixture."""
    categories: int = 300
    """Distinct ``category`` values."""
    spread: float = 1.0
    """Length of an item's offset from its unit centre before normalising (1.0 puts items
    at cosine ~0.7 from their centre and ~0.5 from each other)."""
    seed: int = 2026

    def __post_init__(self) -> None:
        if self.items < 1:
            raise InputError("--items must be 1 or more")
        if not 0 <= self.image_share <= 1 or not 0 <= self.audio_share <= 1:
            raise InputError("shares must lie between 0 and 1")
        if self.clusters < 1 or self.categories < 1:
            raise InputError("clusters and categories must be 1 or more")


@dataclass
class Batch:
    """Consecutive items: ids, unit text vectors, metadata and the image entries."""

    ids: list[str]
    text: np.ndarray
    metadatas: list[dict[str, Any]]
    image_ids: list[str] = field(default_factory=list)
    image: np.ndarray = field(default_factory=lambda: np.zeros((0, IMAGE_DIM), np.float32))


@dataclass(frozen=True)
class Query:
    """One query of each kind shares this vector; the filters come with it."""

    text: np.ndarray
    image: np.ndarray
    category: str
    min_price: float
    max_price: float


def item_id(n: int) -> str:
    return f"item-{n:08d}"


def category_name(c: int) -> str:
    return f"category-{c:03d}"


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: np.ndarray = (rows / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


class Mixture:
    """The cluster centres (text and image) and each cluster's home category."""

    def __init__(self, spec: SyntheticSpec) -> None:
        rng = np.random.default_rng([spec.seed, 0])
        self.spec = spec
        self.text = _unit(rng.standard_normal((spec.clusters, TEXT_DIM)))
        self.image = _unit(rng.standard_normal((spec.clusters, IMAGE_DIM)))
        self.home = rng.integers(spec.categories, size=spec.clusters)

    def draw(self, rng: np.random.Generator, clusters: np.ndarray, image: bool) -> np.ndarray:
        centres = self.image if image else self.text
        dim = centres.shape[1]
        noise = rng.standard_normal((len(clusters), dim)) * (self.spec.spread / math.sqrt(dim))
        return _unit(centres[clusters] + noise)


def generate_block(mixture: Mixture, block: int, images: bool = True) -> Batch:
    """Items ``block * BLOCK`` onwards (at most :data:`BLOCK`), from their own generator."""
    spec = mixture.spec
    start = block * BLOCK
    n = min(BLOCK, spec.items - start)
    rng = np.random.default_rng([spec.seed, 1, block])
    clusters = rng.integers(spec.clusters, size=n)
    text = mixture.draw(rng, clusters, image=False)
    home = rng.random(n) < HOME_SHARE
    categories = np.where(home, mixture.home[clusters], rng.integers(spec.categories, size=n))
    prices = np.clip(np.round(rng.lognormal(3.5, 1.0, size=n), 2), 0.5, 5000.0)
    has_image = rng.random(n) < spec.image_share
    has_audio = rng.random(n) < spec.audio_share
    words = rng.integers(len(ADJECTIVES), size=n), rng.integers(len(THINGS), size=n)
    ids = [item_id(start + i) for i in range(n)]
    metadatas = [
        {
            "title": f"{ADJECTIVES[words[0][i]].title()} {THINGS[words[1][i]]} {start + i}",
            "category": category_name(int(categories[i])),
            "price": float(prices[i]),
            "has_image": bool(has_image[i]),
            "has_audio": bool(has_audio[i]),
        }
        for i in range(n)
    ]
    batch = Batch(ids, text, metadatas)
    if images:
        rows = np.flatnonzero(has_image)
        batch.image_ids = [ids[i] for i in rows]
        batch.image = mixture.draw(rng, clusters[rows], image=True)
    return batch


def blocks(spec: SyntheticSpec, images: bool = True) -> Iterator[Batch]:
    mixture = Mixture(spec)
    for block in range(math.ceil(spec.items / BLOCK)):
        yield generate_block(mixture, block, images)


def batches(spec: SyntheticSpec, size: int, images: bool = True) -> Iterator[Batch]:
    """The items in batches of ``size`` (the last one shorter), generated block by block."""
    pending: list[Batch] = []
    held = 0
    for block in blocks(spec, images):
        pending.append(block)
        held += len(block.ids)
        while held >= size:
            merged = _merge(pending)
            yield _slice(merged, 0, size)
            rest = _slice(merged, size, held)
            pending, held = ([rest] if rest.ids else []), held - size
    if held:
        yield _merge(pending)


def _merge(parts: list[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    return Batch(
        [i for p in parts for i in p.ids],
        np.concatenate([p.text for p in parts]),
        [m for p in parts for m in p.metadatas],
        [i for p in parts for i in p.image_ids],
        np.concatenate([p.image for p in parts]),
    )


def _slice(batch: Batch, start: int, stop: int) -> Batch:
    ids = batch.ids[start:stop]
    wanted = set(ids)
    rows = [i for i, image_id in enumerate(batch.image_ids) if image_id in wanted]
    return Batch(
        ids,
        batch.text[start:stop],
        batch.metadatas[start:stop],
        [batch.image_ids[i] for i in rows],
        batch.image[rows] if rows else np.zeros((0, IMAGE_DIM), np.float32),
    )


def item_facts(spec: SyntheticSpec, n: int) -> dict[str, Any]:
    """The metadata item ``n`` was generated with (regenerates its block only)."""
    if not 0 <= n < spec.items:
        raise InputError(f"item {n} is outside 0..{spec.items - 1}")
    batch = generate_block(Mixture(spec), n // BLOCK, images=False)
    return batch.metadatas[n % BLOCK]


def make_queries(spec: SyntheticSpec, count: int) -> list[Query]:
    """``count`` queries drawn from the same mixture; each filters on its cluster's home
    category and on a price range around a price drawn like the items' (x1 to x1.5)."""
    mixture = Mixture(spec)
    rng = np.random.default_rng([spec.seed, 2])
    clusters = rng.integers(spec.clusters, size=count)
    text = mixture.draw(rng, clusters, image=False)
    image = mixture.draw(rng, clusters, image=True)
    low = np.round(rng.lognormal(3.5, 1.0, size=count), 2)
    return [
        Query(
            text[i],
            image[i],
            category_name(int(mixture.home[clusters[i]])),
            float(low[i]),
            float(round(low[i] * 1.5, 2)),
        )
        for i in range(count)
    ]


def where_clause(kind: str, query: Query) -> dict[str, Any] | None:
    if kind == "category":
        return {"category": query.category}
    if kind == "price":
        return {
            "$and": [{"price": {"$gte": query.min_price}}, {"price": {"$lte": query.max_price}}]
        }
    return None


def _matches(kind: str, query: Query, meta: dict[str, Any]) -> bool:
    if kind == "category":
        return bool(meta.get("category") == query.category)
    if kind == "price":
        price = meta.get("price")
        return isinstance(price, float) and query.min_price <= price <= query.max_price
    return True


@dataclass
class Truth:
    """Exact answers for the first queries, and how many items each filter lets through."""

    top: dict[str, list[list[str]]]
    matching: dict[str, list[int]]


def exact_search(spec: SyntheticSpec, queries: Sequence[Query], k: int, top_of: int) -> Truth:
    """Exact top-``k`` by cosine over every text vector (streamed block by block) for the first
    ``top_of`` queries, without a filter and with each filter, and for every query the number
    of items each filter lets through."""
    q = np.stack([x.text for x in queries[:top_of]])
    kinds = ("unfiltered", "category", "price")
    best: dict[str, tuple[np.ndarray, np.ndarray]] = {
        kind: (np.full((len(q), 0), -np.inf), np.zeros((len(q), 0), np.int64)) for kind in kinds
    }
    matching = {kind: np.zeros(len(queries), np.int64) for kind in ("category", "price")}
    categories = np.array([x.category for x in queries])[:, None]
    low = np.array([x.min_price for x in queries])[:, None]
    high = np.array([x.max_price for x in queries])[:, None]
    offset = 0
    for block in blocks(spec, images=False):
        cats = np.array([m["category"] for m in block.metadatas])[None, :]
        prices = np.array([m["price"] for m in block.metadatas])[None, :]
        masks = {"category": categories == cats, "price": (prices >= low) & (prices <= high)}
        for kind, mask in masks.items():
            matching[kind] += mask.sum(axis=1)
        sims = q @ block.text.T  # (top_of, block)
        rows = np.arange(offset, offset + len(block.ids))[None, :].repeat(len(q), 0)
        for kind in kinds:
            scores = (
                sims if kind == "unfiltered" else np.where(masks[kind][: len(q)], sims, -np.inf)
            )
            old_scores, old_rows = best[kind]
            all_scores = np.concatenate([old_scores, scores], axis=1)
            all_rows = np.concatenate([old_rows, rows], axis=1)
            keep = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
            best[kind] = (
                np.take_along_axis(all_scores, keep, 1),
                np.take_along_axis(all_rows, keep, 1),
            )
        offset += len(block.ids)
    top = {
        kind: [
            [item_id(int(r)) for r, s in zip(rows, scores, strict=True) if np.isfinite(s)]
            for rows, scores in zip(best[kind][1], best[kind][0], strict=True)
        ]
        for kind in kinds
    }
    return Truth(top, {kind: [int(c) for c in counts] for kind, counts in matching.items()})


# -- memory and disk ---------------------------------------------------------------------


def rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` and its children (psutil when installed, else /proc for the
    process alone); None when it cannot be read."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        return _proc_rss(pid)
    try:
        process = psutil.Process(pid)
        children = process.children(recursive=True)
        return int(process.memory_info().rss) + sum(
            int(c.memory_info().rss) for c in children if c.is_running()
        )
    except psutil.Error:
        return None


def _proc_rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class RssSampler:
    """The highest RSS of a process seen between :meth:`start` and :meth:`stop`, sampled every
    ``every_s`` seconds."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.pid = pid
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid) or 0)
            self._stop.wait(self.every_s)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> int:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes(self.pid) or 0)
        return self.peak


def folder_bytes(folder: Path) -> dict[str, int]:
    """Bytes under ``folder``: in all, in the SQLite file(s) and in the segment folders."""
    total = sqlite = 0
    for path in folder.rglob("*"):
        if path.is_file():
            size = path.stat().st_size
            total += size
            if path.name.startswith("chroma.sqlite3"):
                sqlite += size
    return {"total": total, "sqlite": sqlite, "segments": total - sqlite}


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


# -- the server --------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    pid: int | None
    path: Path | None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_executable() -> str:
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if found is None:
        raise StoreError("the `chroma` command (from the chromadb package) is not installed")
    return found


@contextlib.contextmanager
def chroma_server(folder: Path, within_s: float = 120.0) -> Iterator[Server]:
    """``chroma run`` on 127.0.0.1 at a free port with its data in ``folder/data``; stopped
    when the block ends."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "server.log"
    command = [chroma_executable(), "run", "--path", str(folder / "data")]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + within_s
        while not _answers(f"{url}/api/v2/heartbeat"):
            if process.poll() is not None or time.monotonic() > deadline:
                why = (
                    f"exit status {process.returncode}"
                    if process.poll() is not None
                    else f"no answer within {within_s:.0f} s"
                )
                raise StoreError(
                    f"chroma run did not start ({why}): {log_path.read_text()[-2000:]}"
                )
            time.sleep(0.3)
        yield Server(url, process.pid, folder / "data")
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- one backend -------------------------------------------------------------------------


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
            violations += sum(1 for m in metas if not _matches(kind, query, m))
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
        "baseline_mb": _mb(baseline),
        "after_load_mb": _mb(after_load),
        "after_queries_mb": _mb(after),
        "peak_mb": _mb(peak),
        "growth_mb": _mb(after - baseline) if after is not None and baseline is not None else None,
        "held_mb": _mb(after - base) if after is not None and base is not None else None,
        "held_peak_mb": _mb(peak - base) if peak is not None and base is not None else None,
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

    def count(run: dict[str, Any]) -> str:
        return f"{run['count']['text']:,} / {run['count']['image']:,}"

    return [
        ("", *runs),
        row("vectors (text / image)", count),
        row("load (add calls)", lambda r: f"{r['load']['add_seconds']:,.0f} s"),
        row("load rate", lambda r: f"{r['load']['items_per_s']:,.0f} items/s"),
        *[row(f"top-{k} {kind}, p50 / p95", latency(kind)) for kind in QUERY_KINDS],
        *[row(f"recall@{k} {kind}", recall(kind)) for kind in ("unfiltered", "category", "price")],
        row("disk", lambda r: f"{r['disk_bytes']['total'] / 2**20:,.0f} MiB"),
        row("memory held", lambda r: _fmt(r["memory"]["held_mb"], "{:,.0f} MiB")),
        row("memory peak", lambda r: _fmt(r["memory"]["held_peak_mb"], "{:,.0f} MiB")),
    ]


def _fmt(value: float | None, pattern: str) -> str | None:
    return None if value is None else pattern.format(value)
