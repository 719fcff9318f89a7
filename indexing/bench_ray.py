"""``recagent bench ray``: items/s of the local indexer and of the Ray engine at several worker
counts, on one synthetic catalogue, in one run, with each model's raw throughput beside them.

The catalogue is generated from a seed: text for every item, a small generated PNG for a share
of them and a short generated WAV tone for another share. Each engine indexes it into a fresh
store, its models unloaded at the start (the local run loads its models once; each Ray worker
loads its own), so every figure is end to end: plan, model loads, stages and store writes. The
Ray runs share one local Ray instance, started before them (its start is not counted). A
re-run over the last Ray store must make no model call; every store must hold the same ids.
"""

from __future__ import annotations

import json
import os
import platform
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from indexing.bench import _rate, _raw_components, _warm_up
from indexing.chroma import SafeImageLoader, open_client
from indexing.loaders import LoadResult, load_catalogue, write_jsonl
from indexing.pipeline import Indexer, IndexReport
from indexing.ray_engine import RayIndexer, connect, start_local
from indexing.schema import Item
from indexing.store import Store, pages
from tools.config import Settings
from tools.factory import Models, build_models

WORDS = (
    "red blue green small large wooden metal soft bright quiet fast old new round square "
    "striped spotted shiny warm cold light heavy tiny giant happy sleepy noisy gentle"
).split()
THINGS = (
    "ball car tree house boat bird fish cat dog lamp chair cup hat kite drum bell train "
    "flower star moon apple bread clock book shoe"
).split()
CATEGORIES = ("toys", "animals", "household", "food", "nature", "vehicles", "music")
RATE = 16000


def synthetic_catalogue(
    folder: Path, count: int, picture_share: float, sound_share: float, seed: int
) -> Path:
    """``folder/items.jsonl``: ``count`` items, the same for the same arguments."""
    import soundfile

    rng = random.Random(seed)
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    for n in range(count):
        words = rng.sample(WORDS, 3)
        thing = rng.choice(THINGS)
        category = rng.choice(CATEGORIES)
        extra: dict[str, Any] = {}
        if rng.random() < picture_share:
            picture = Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3)))
            draw = ImageDraw.Draw(picture)
            for _ in range(3):
                x, y = rng.randrange(48), rng.randrange(48)
                colour = tuple(rng.randrange(256) for _ in range(3))
                draw.ellipse((x, y, x + rng.randrange(8, 32), y + rng.randrange(8, 32)), colour)
            extra["image"] = media / f"item{n:06d}.png"
            picture.save(extra["image"])
        if rng.random() < sound_share:
            seconds = rng.uniform(0.5, 2.0)
            t = np.arange(int(RATE * seconds)) / RATE
            tone = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 900) * t)
            extra["audio"] = [media / f"item{n:06d}.wav"]
            soundfile.write(str(extra["audio"][0]), tone.astype(np.float32), RATE)
        items.append(
            Item(
                id=f"{category}/{thing}-{n:06d}",
                title=f"{words[0].title()} {thing}",
                description=f"A {words[0]}, {words[1]} and {words[2]} {thing} ({category}).",
                category=category,
                price=round(rng.uniform(1, 200), 2),
                attributes={"subcategory": thing},
                **extra,
            )
        )
    path = folder / "items.jsonl"
    write_jsonl(items, path, root=folder)
    return path


RAW_SAMPLE = 10_000  # items each model is timed on alone (rates, not totals, are compared)


def _store(folder: Path, models: Models, settings: Settings) -> Store:
    cfg = settings.index
    return Store(
        open_client(folder, None),
        "bench",
        models.text_embedder,
        models.image_embedder,
        SafeImageLoader(cfg.max_image_bytes, cfg.max_image_pixels),
    )


def _vectors(collection: Any) -> dict[str, np.ndarray]:
    return {
        item_id: np.asarray(vector, dtype=np.float32)
        for got in pages(collection, ["embeddings"])
        for item_id, vector in zip(got["ids"], got["embeddings"], strict=True)
    }


def compare_stores(local: Store, other: Store) -> dict[str, dict[str, Any]]:
    """Per collection: whether both stores hold the same ids, and the largest difference
    between the two embeddings of one record."""
    out: dict[str, dict[str, Any]] = {}
    pairs = (("text", local.text, other.text), ("image", local.images, other.images))
    for name, mine, theirs in pairs:
        a, b = _vectors(mine), _vectors(theirs)
        common = sorted(a.keys() & b.keys())
        gaps = [float(np.max(np.abs(a[i] - b[i]))) for i in common]
        out[name] = {
            "records": len(common),
            "same_ids": a.keys() == b.keys(),
            "max_abs_diff": max(gaps, default=0.0),
        }
    return out


def _figures(report: IndexReport, store: Store) -> dict[str, Any]:
    return {
        "wall_seconds": round(report.wall_seconds, 3),
        "items_per_s": _rate(len(report.indexed), report.wall_seconds),
        "indexed": len(report.indexed),
        "failed": len(report.failed),
        "model_calls": report.times.model_calls,
        "stored": list(store.count()),
        "stages": report.times.as_dict(),
    }


def run_ray_bench(
    settings: Settings,
    count: int,
    picture_share: float,
    sound_share: float,
    workers: Sequence[int],
    out: Path,
    seed: int = 2026,
    log: Callable[[str], None] | None = None,
    address: str | None = None,
    local: bool = True,
) -> dict[str, Any]:
    """Run the benchmark, write its figures to ``out`` as JSON and return them.

    ``address``: a running Ray cluster (``ray start --head`` plus workers) instead of a local
    instance started for the run. ``local=False`` skips the local indexer (at 100,000 items it
    alone takes over an hour on 2 cores); the Ray stores are then compared with each other and
    with the catalogue's ids, and the raw components are timed on the last Ray store."""
    import ray

    def say(line: str) -> None:
        if log is not None:
            log(line)

    figures: dict[str, Any] = {
        "items": count,
        "picture_share": picture_share,
        "sound_share": sound_share,
        "seed": seed,
        "batch_size": settings.index.batch_size,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "ray": ray.__version__,
        },
    }
    with tempfile.TemporaryDirectory(prefix="recagent-bench-ray-") as tmp:
        folder = Path(tmp)
        say(f"bench ray: generating {count} items (seed {seed})")
        catalogue = synthetic_catalogue(
            folder / "catalogue", count, picture_share, sound_share, seed
        )
        loaded: LoadResult = load_catalogue(catalogue)
        figures["pictures"] = sum(1 for i in loaded.items if i.image is not None)
        figures["sounds"] = sum(1 for i in loaded.items if i.audio)

        models = build_models(settings)
        expected_ids = {i.id for i in loaded.items}
        store: Store | None = None
        local_store: Store | None = None
        if local:
            say("local indexer (models load in this process)")
            store = local_store = _store(folder / "local", models, settings)
            figures["local"] = _figures(Indexer(store, models, settings.index).run(loaded), store)
            expected_ids = store.all_ids()

        if address:
            connect(address)
            nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
            cpus: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
            figures["machine"]["ray_cluster"] = {
                "address": address,
                "nodes": sum(1 for n in nodes if n.get("Alive")),
                "cpus": cpus.get("CPU", 0),
            }
        else:
            start_local(max(max(workers), os.cpu_count() or 1))
        figures["ray"] = {}
        try:
            for n in workers:
                say(f"ray engine, {n} worker(s) per stage (each loads its models)")
                ray_models = build_models(settings)  # the driver's: ids and store only
                store = _store(folder / f"ray-{n}", ray_models, settings)
                report = RayIndexer(store, ray_models, settings, workers=n).run(loaded)
                same = store.all_ids() == expected_ids
                key = "same_ids_as_local" if local else "same_ids_as_catalogue"
                figures["ray"][str(n)] = {**_figures(report, store), key: same}
                if local_store is not None:  # record by record against the local indexer
                    figures["ray"][str(n)]["vs_local"] = compare_stores(local_store, store)
            assert store is not None
            say("re-run over the last Ray store")
            again = RayIndexer(store, build_models(settings), settings, workers=max(workers))
            rerun = again.run(loaded)
        finally:
            ray.shutdown()

        sample = loaded.items[:RAW_SAMPLE]
        say(f"each model alone, warm, on the first {len(sample)} items")
        _warm_up(models)
        figures["raw"] = _raw_components(store, models, settings, sample)
        figures["raw"]["sample_items"] = len(sample)

    local_rate = figures["local"]["items_per_s"] if local else 0
    figures["bars"] = {
        **({"local_items_per_s": local_rate} if local else {}),
        **{f"ray_{n}_items_per_s": figures["ray"][str(n)]["items_per_s"] for n in workers},
        **{
            f"ray_{n}_vs_local": round(figures["ray"][str(n)]["items_per_s"] / local_rate, 3)
            for n in workers
            if local_rate
        },
        "raw_embed_text_items_per_s": figures["raw"]["embed_text"]["items_per_s"],
        **(
            {
                "embeddings_match_local (max abs diff <= 1e-5)": all(
                    c["same_ids"] and c["max_abs_diff"] <= 1e-5
                    for r in figures["ray"].values()
                    for c in r["vs_local"].values()
                )
            }
            if local
            else {}
        ),
        "stores_match": all(
            r.get("same_ids_as_local", r.get("same_ids_as_catalogue"))
            for r in figures["ray"].values()
        ),
        "rerun_model_calls": rerun.times.model_calls,
        "rerun_ok (== 0)": rerun.times.model_calls == 0,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    return figures
