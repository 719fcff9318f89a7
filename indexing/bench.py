"""`recagent bench index`: indexing throughput per stage, each model alone, batching, re-runs.

One run measures, on the same items and the same machine:

1. the pipeline into a fresh store: wall time and time per stage (models loaded beforehand, so
   load time is not counted as work);
2. each component alone on the same inputs, called directly (sentence-transformers ``encode``,
   faster-whisper ``transcribe``, the captioner and image embedder, a Chroma ``upsert``);
3. batched against one-at-a-time calls for the batchable stages;
4. a re-run over the unchanged catalogue, which must make no model call.

Bars (product.md): time outside the stages under 10% of the stage sum; batched stages at least
3x one-at-a-time; zero model calls on an unchanged re-run.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from indexing.catalogues import default_catalogue
from indexing.chroma import SafeImageLoader, open_client
from indexing.loaders import load_catalogue
from indexing.pipeline import MODEL_STAGES, Indexer
from indexing.store import Store
from indexing.svg_cost import svg_sandbox_cost
from tools.audio import load_audio
from tools.config import Settings
from tools.errors import MediaError
from tools.factory import Models, build_models
from tools.media import load_image


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _rate(items: int, seconds: float) -> float:
    return round(items / seconds, 2) if seconds > 0 else float("inf")


def _warm_up(models: Models) -> None:
    from PIL import Image

    picture = Image.new("RGBA", (32, 32), (200, 30, 30, 255))
    models.captioner.caption([picture])
    models.image_embedder.embed([picture])
    models.text_embedder.embed(["warm up"])
    tone = (0.1 * np.sin(np.arange(16000) / 8)).astype(np.float32)
    models.transcriber.transcribe(tone)


def run_bench(
    settings: Settings,
    catalogue: Path | None,
    limit: int | None,
    out: Path,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark on ``catalogue`` (default: the installed demo), write its figures to
    ``out`` as JSON and return them; ``log`` hears which step is running."""

    def say(line: str) -> None:
        if log is not None:
            log(line)

    path = catalogue or default_catalogue(settings.data_dir)
    loaded = load_catalogue(path)
    if limit is not None:
        loaded.items = loaded.items[:limit]
    items = loaded.items
    models = build_models(settings)
    say(f"bench: {len(items)} items from {path}; loading models")
    _warm_up(models)
    cfg = settings.index
    figures: dict[str, Any] = {
        "catalogue": str(path),
        "items": len(items),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "models": {
            "vision": models.tagger.vision.model_id if models.tagger else None,
            "captioner": models.captioner.model_id,
            "transcriber": models.transcriber.model_id,
            "text_embedder": models.text_embedder.model_id,
            "image_embedder": models.image_embedder.model_id,
        },
        "batch_size": cfg.batch_size,
    }
    with tempfile.TemporaryDirectory(prefix="recagent-bench-") as tmp:
        client = open_client(Path(tmp) / "store", None)
        store = Store(
            client,
            "bench",
            models.text_embedder,
            models.image_embedder,
            SafeImageLoader(cfg.max_image_bytes, cfg.max_image_pixels),
        )
        # 1. the pipeline
        say("pipeline run (fresh store)")
        report = Indexer(store, models, cfg).run(loaded)
        stages = report.times.as_dict()
        stage_sum = sum(s["seconds"] for s in stages.values())
        model_sum = sum(stages[s]["seconds"] for s in MODEL_STAGES if s in stages)
        figures["pipeline"] = {
            "wall_seconds": round(report.wall_seconds, 3),
            "items_per_s": _rate(len(report.indexed), report.wall_seconds),
            "indexed": len(report.indexed),
            "failed": len(report.failed),
            "stages": {
                name: {**s, "items_per_s": _rate(int(s["items"]), s["seconds"])}
                for name, s in stages.items()
            },
            "stage_sum_seconds": round(stage_sum, 3),
            "model_stage_seconds": round(model_sum, 3),
            "outside_stages_seconds": round(report.wall_seconds - stage_sum, 3),
        }
        # 2. each component alone, same inputs
        say("components alone")
        figures["raw"] = _raw_components(store, models, settings, items)
        # 3. batching
        say("batched vs one at a time")
        figures["batching"] = _batching(models, items, settings)
        # 4. the SVG sandbox against resvg in this process, same pictures
        say("SVG rendering: sandboxed vs in process")
        figures["svg_sandbox"] = svg_sandbox_cost(
            [i.image for i in items if i.image is not None], cfg.max_image_bytes
        )
        # 5. unchanged re-run
        say("re-run over the unchanged catalogue")
        rerun = Indexer(store, models, cfg).run(loaded)
        figures["rerun"] = {
            "wall_seconds": round(rerun.wall_seconds, 3),
            "model_calls": rerun.times.model_calls,
            "unchanged": len(rerun.unchanged),
            "indexed": len(rerun.indexed),
        }
    raw_sum = sum(v["seconds"] for k, v in figures["raw"].items() if k != "vision_forward")
    stages = figures["pipeline"]["stages"]
    if "vision_forward" in figures["raw"]:  # the picture stage (tags + embeddings, one pass)
        pictures = sum(stages.get(s, {}).get("seconds", 0.0) for s in ("caption", "embed_image"))
        forward = figures["raw"]["vision_forward"]["seconds"]
        figures["pictures"] = {
            "stage_seconds": round(pictures, 3),
            "stage_items_per_s": _rate(figures["raw"]["vision_forward"]["items"], pictures),
            "raw_forward_seconds": forward,
            "raw_forward_items_per_s": figures["raw"]["vision_forward"]["items_per_s"],
            "stage_vs_raw_forward": round(pictures / forward, 3) if forward else None,
        }
    speedups = {k: v["speedup"] for k, v in figures["batching"].items()}
    figures["bars"] = {
        "overhead_vs_stage_sum": round(figures["pipeline"]["outside_stages_seconds"] / stage_sum, 4)
        if stage_sum
        else 0.0,
        "overhead_ok (< 0.10)": figures["pipeline"]["outside_stages_seconds"] < 0.1 * stage_sum,
        "pipeline_wall_vs_raw_components": round(report.wall_seconds / raw_sum, 3)
        if raw_sum
        else None,
        "batched_speedups": speedups,
        "batched_ok (>= 3x, model stages)": all(
            v >= 3
            for k, v in speedups.items()
            if k in {"embed_text", "caption_model", "embed_image_model", "vision_forward"}
        ),
        "svg_sandbox_overhead_share": figures["svg_sandbox"]["sandbox_overhead_share"],
        "svg_sandbox_ok (<= 0.10)": figures["svg_sandbox"]["overhead_ok (<= 0.10)"],
        "rerun_model_calls": figures["rerun"]["model_calls"],
        "rerun_ok (== 0)": figures["rerun"]["model_calls"] == 0,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    return figures


def _decode_all(items: list[Any], settings: Settings) -> list[Any]:
    images = []
    for item in items:
        if item.image is None:
            continue
        try:
            images.append(
                load_image(
                    item.image, settings.index.max_image_bytes, settings.index.max_image_pixels
                )
            )
        except MediaError:
            continue
    return images


def _raw_components(
    store: Store, models: Models, settings: Settings, items: list[Any]
) -> dict[str, dict[str, float]]:
    cfg = settings.index
    raw: dict[str, dict[str, float]] = {}
    vision = models.tagger.vision if models.tagger is not None else None
    seconds, images = _timed(lambda: _decode_all(items, settings))
    raw["decode_image"] = {
        "seconds": round(seconds, 3),
        "items": len(images),
        "items_per_s": _rate(len(images), seconds),
    }
    if vision is not None:  # the model's forward pass alone: what the picture stage costs
        seconds, _ = _timed(lambda: vision.raw_forward(images))
        raw["vision_forward"] = {
            "seconds": round(seconds, 3),
            "items": len(images),
            "items_per_s": _rate(len(images), seconds),
        }
        vision.forget()  # the stages below pay the forward pass again, as indexing does
    seconds, captions = _timed(
        lambda: [
            c
            for i in range(0, len(images), cfg.batch_size)
            for c in models.captioner.caption(images[i : i + cfg.batch_size])
        ]
    )
    raw["caption"] = {
        "seconds": round(seconds, 3),
        "items": len(images),
        "items_per_s": _rate(len(images), seconds),
    }
    seconds, vectors = _timed(lambda: models.image_embedder.embed(images))
    raw["embed_image"] = {
        "seconds": round(seconds, 3),
        "items": len(images),
        "items_per_s": _rate(len(images), seconds),
    }
    documents = [
        item.text_for_embedding(c.text, "", c.pixels)
        for item, c in zip([i for i in items if i.image is not None], captions, strict=False)
    ]
    documents += [item.text_for_embedding() for item in items if item.image is None]
    model = models.text_embedder.load()
    seconds, text_vectors = _timed(
        lambda: model.encode(documents, batch_size=64, normalize_embeddings=True)
    )
    raw["embed_text"] = {
        "seconds": round(seconds, 3),
        "items": len(documents),
        "items_per_s": _rate(len(documents), seconds),
    }
    audio_paths = [p for item in items for p in item.audio]
    clips = []
    decode_seconds = 0.0
    for audio_path in audio_paths:
        try:
            start = time.perf_counter()
            clip = load_audio(audio_path, cfg.max_audio_bytes, cfg.max_audio_seconds)
            took = time.perf_counter() - start
        except MediaError:
            continue
        decode_seconds += took
        clips.append(clip)
    raw["decode_audio"] = {
        "seconds": round(decode_seconds, 3),
        "items": len(clips),
        "items_per_s": _rate(len(clips), decode_seconds),
    }
    whisper = getattr(models.transcriber, "_load", None)
    if whisper is not None and hasattr(models.transcriber, "beam_size"):
        engine = whisper()

        def transcribe_all() -> None:
            for clip in clips:
                segments, _ = engine.transcribe(
                    clip,
                    beam_size=1,
                    vad_filter=True,
                    condition_on_previous_text=False,
                    without_timestamps=True,
                )
                list(segments)

        seconds, _ = _timed(transcribe_all)
    else:
        seconds, _ = _timed(lambda: [models.transcriber.transcribe(c) for c in clips])
    raw["transcribe"] = {
        "seconds": round(seconds, 3),
        "items": len(clips),
        "items_per_s": _rate(len(clips), seconds),
        "audio_seconds": round(sum(len(c) for c in clips) / 16000, 1),
    }
    seconds = _raw_upserts(store, "bench_raw_text", text_vectors, cfg.batch_size, documents)
    seconds += _raw_upserts(store, "bench_raw_image", np.asarray(vectors), cfg.batch_size)
    stored = len(text_vectors) + len(vectors)
    raw["store"] = {
        "seconds": round(seconds, 3),
        "items": stored,
        "items_per_s": _rate(stored, seconds),
    }
    return raw


def _raw_upserts(
    store: Store, name: str, vectors: np.ndarray, batch: int, documents: list[str] | None = None
) -> float:
    """Seconds for plain Chroma upserts of ``vectors`` into a scratch collection."""
    scratch = store.client.create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    try:
        seconds, _ = _timed(
            lambda: [
                scratch.upsert(
                    ids=[f"raw-{j}" for j in range(i, min(i + batch, len(vectors)))],
                    embeddings=list(vectors[i : i + batch]),
                    documents=documents[i : i + batch] if documents else None,
                )
                for i in range(0, len(vectors), batch)
            ]
        )
    finally:
        store.client.delete_collection(name)
    return seconds


def _batching(models: Models, items: list[Any], settings: Settings) -> dict[str, dict[str, float]]:
    """Throughput with one call per batch vs one call per item, on a sample."""
    out: dict[str, dict[str, float]] = {}
    documents = [item.text_for_embedding() for item in items][:256]
    batch = settings.index.batch_size

    def compare(name: str, inputs: list[Any], call: Callable[[list[Any]], Any]) -> None:
        if len(inputs) < 2:
            return
        batched, _ = _timed(
            lambda: [call(inputs[i : i + batch]) for i in range(0, len(inputs), batch)]
        )
        single, _ = _timed(lambda: [call([x]) for x in inputs])
        out[name] = {
            "items": len(inputs),
            "batched_items_per_s": _rate(len(inputs), batched),
            "single_items_per_s": _rate(len(inputs), single),
            "speedup": round(single / batched, 2) if batched else 0.0,
        }

    compare("embed_text", documents, lambda xs: models.text_embedder.embed(xs, batch_size=batch))
    images = _decode_all(items[:64], settings)
    caption_key = (
        "caption_pixels" if models.captioner.model_id.startswith("pixelstats") else "caption_model"
    )
    if models.tagger is not None:  # captions and embeddings share one pass (memoised)
        compare("vision_forward", images, models.tagger.vision.raw_forward)
        return out
    compare(caption_key, images, models.captioner.caption)
    image_key = (
        "embed_image_pixels"
        if models.image_embedder.model_id.startswith("pixelstats")
        else "embed_image_model"
    )
    compare(image_key, images, models.image_embedder.embed)
    return out
