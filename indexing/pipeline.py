"""The indexing pipeline: catalogue -> validation -> captions, transcripts, embeddings -> Chroma.

Incremental by content hash: ``text_hash`` covers the item's fields, the bytes of its media and
the ids of the captioner, transcriber and text embedder; ``image_hash`` covers the image bytes and
the image embedder. A run redoes only items whose hash changed, so a re-run over an unchanged
catalogue does no model work. Work is written in chunks of ``batch_size`` items (image collection
first, then text), so a run killed at any point resumes where it stopped: ids are upserted, never
duplicated, and a chunk half-written is simply redone.

A bad item (unreadable media, over a limit) is reported with the reason and skipped; whatever the
store held for it before stays as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from indexing.loaders import ItemError, LoadResult
from indexing.records import image_metadata, item_metadata
from indexing.schema import Item
from indexing.store import Store
from tools.audio import load_audio
from tools.config import IndexSettings
from tools.errors import MediaError
from tools.factory import Models
from tools.files import read_bounded
from tools.media import SVG_SUFFIXES, decode_image
from tools.renders import RenderCache
from tools.transcribe import Transcript

log = logging.getLogger(__name__)

DOC_VERSION = "doc-v4"  # bump when the document layout or stored metadata changes

STAGES = (
    "hash",
    "decode_image",
    "caption",
    "decode_audio",
    "transcribe",
    "embed_text",
    "embed_image",
    "store",
)
MODEL_STAGES = ("caption", "transcribe", "embed_text", "embed_image")


@dataclass
class StageTimes:
    """Seconds, calls and items per stage; ``model_calls`` counts calls into a model."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    items: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @contextmanager
    def stage(self, name: str, count: int = 1) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.items[name] += count
            self.calls[name] += 1

    @property
    def model_calls(self) -> int:
        return sum(self.calls[s] for s in MODEL_STAGES if s in self.calls)

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "seconds": round(self.seconds[name], 4),
                "items": self.items[name],
                "calls": self.calls[name],
            }
            for name in STAGES
            if name in self.seconds
        }


@dataclass
class IndexReport:
    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[ItemError] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    images_reindexed: list[str] = field(default_factory=list)
    times: StageTimes = field(default_factory=StageTimes)
    wall_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "indexed": len(self.indexed),
            "unchanged": len(self.unchanged),
            "failed": [
                {"item": e.item_id, "where": e.where, "problem": e.problem} for e in self.failed
            ],
            "pruned": len(self.pruned),
            "images_reindexed": len(self.images_reindexed),
            "wall_seconds": round(self.wall_seconds, 3),
            "stages": self.times.as_dict(),
            "model_calls": self.times.model_calls,
        }


Progress = Callable[[int, int], None]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _file_digest(path: Path, max_bytes: int, kind: str) -> str:
    """The file's SHA-256, read from one handle without following a link, within the limit."""
    return hashlib.sha256(read_bounded(path, max_bytes, kind)).hexdigest()


@dataclass
class _Planned:
    item: Item
    text_hash: str
    image_hash: str | None
    media_sha256: dict[str, str] = field(default_factory=dict)  # {path: SHA-256} of every file
    needs_text: bool = False
    needs_image: bool = False

    @property
    def image_digest(self) -> str:
        """SHA-256 of the image file's bytes ("" without a picture)."""
        image = self.item.image
        return self.media_sha256.get(str(image), "") if image is not None else ""


class Indexer:
    """Runs the pipeline for one store with one set of models."""

    def __init__(
        self,
        store: Store,
        models: Models,
        settings: IndexSettings,
        renders: RenderCache | None = None,
    ) -> None:
        self.store = store
        self.models = models
        self.settings = settings
        self.renders = renders  # where SVG pictures are kept rendered, for serving

    # -- planning -------------------------------------------------------------------------
    def _hashes(self, item: Item) -> tuple[str, str | None, dict[str, str]]:
        """Content hashes; raises MediaError when a media file is missing or over a limit."""
        image_digest = ""
        if item.image is not None:
            image_digest = _file_digest(item.image, self.settings.max_image_bytes, "image")
        audio_digests = [
            _file_digest(path, self.settings.max_audio_bytes, "audio") for path in item.audio
        ]
        files = dict(zip(map(str, item.audio), audio_digests, strict=True))
        if item.image is not None:
            files[str(item.image)] = image_digest
        fields = item.model_dump(mode="json", exclude={"image", "audio"})
        text_hash = _digest(
            DOC_VERSION,
            json.dumps(fields, sort_keys=True),
            image_digest,
            *audio_digests,
            self.models.captioner.model_id if item.image else "",
            self.models.transcriber.model_id if item.audio else "",
            self.models.text_embedder.model_id,
        )
        image_hash = (
            _digest(image_digest, self.models.image_embedder.model_id) if item.image else None
        )
        return text_hash, image_hash, files

    def plan(self, items: Sequence[Item], report: IndexReport) -> list[_Planned]:
        planned: list[_Planned] = []
        with report.times.stage("hash", len(items)):
            for item in items:
                try:
                    text_hash, image_hash, files = self._hashes(item)
                except (MediaError, OSError) as exc:
                    report.failed.append(ItemError("media", str(exc), item.id))
                    continue
                planned.append(_Planned(item, text_hash, image_hash, files))
            state = self.store.stored_state([p.item.id for p in planned])
        for p in planned:
            p.needs_text = state.text_hash.get(p.item.id) != p.text_hash
            p.needs_image = (
                p.image_hash is not None and state.image_hash.get(p.item.id) != p.image_hash
            )
        stale_images = [
            p.item.id for p in planned if p.image_hash is None and p.item.id in state.image_hash
        ]
        if stale_images:  # the item lost its image
            self.store.delete(stale_images, text=False)
        return planned

    # -- running --------------------------------------------------------------------------
    def run(
        self, loaded: LoadResult, prune: bool = False, progress: Progress | None = None
    ) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport(failed=list(loaded.errors))
        self.store.add_catalogue_root(loaded.root)  # where its media may be served from
        planned = self.plan(loaded.items, report)
        todo = [p for p in planned if p.needs_text or p.needs_image]
        report.unchanged = [p.item.id for p in planned if not (p.needs_text or p.needs_image)]
        total = len(todo)
        if progress:
            progress(0, total)
        size = self.settings.batch_size
        for start in range(0, total, size):
            self._chunk(todo[start : start + size], report)
            if progress:
                progress(min(start + size, total), total)
        if prune:
            keep = {item.id for item in loaded.items} | {
                e.item_id for e in loaded.errors if e.item_id
            }
            gone = sorted(self.store.all_ids() - keep)
            self.store.delete(gone)
            report.pruned = gone
        report.wall_seconds = time.perf_counter() - started
        return report

    def _chunk(self, chunk: list[_Planned], report: IndexReport) -> None:
        times = report.times
        failed: dict[str, str] = {}
        images: dict[str, Image.Image] = {}
        wanted_images = [
            p for p in chunk if p.item.image is not None and (p.needs_image or p.needs_text)
        ]
        with times.stage("decode_image", len(wanted_images)):
            for p in wanted_images:
                assert p.item.image is not None
                try:  # decoded from the bytes that are hashed: a file swapped since is refused
                    data = read_bounded(p.item.image, self.settings.max_image_bytes, "image")
                    if p.image_digest and hashlib.sha256(data).hexdigest() != p.image_digest:
                        raise MediaError(f"image changed while it was indexed: {p.item.image}")
                    images[p.item.id] = decode_image(
                        data,
                        p.item.image,
                        self.settings.max_image_bytes,
                        self.settings.max_image_pixels,
                    )
                    self._keep_render(p, images[p.item.id])
                except MediaError as exc:
                    failed[p.item.id] = str(exc)
        text_work = [p for p in chunk if p.needs_text and p.item.id not in failed]
        transcripts = self._transcripts(text_work, failed, times)
        text_work = [p for p in text_work if p.item.id not in failed]
        image_work = [p for p in chunk if p.needs_image and p.item.id not in failed]

        to_caption = [p for p in text_work if p.item.id in images]
        captions: dict[str, tuple[str, str, str]] = {}
        if to_caption:
            with times.stage("caption", len(to_caption)):
                made = self.models.captioner.caption([images[p.item.id] for p in to_caption])
            captions = {
                p.item.id: (c.text, c.source, c.pixels)
                for p, c in zip(to_caption, made, strict=True)
            }

        documents = [
            p.item.text_for_embedding(
                captions.get(p.item.id, ("", "", ""))[0],
                transcripts.get(p.item.id, ""),
                captions.get(p.item.id, ("", "", ""))[2],
            )
            for p in text_work
        ]
        text_vectors = np.zeros((0, 1), dtype=np.float32)
        if documents:
            with times.stage("embed_text", len(documents)):
                text_vectors = self.models.text_embedder.embed(documents)
        image_vectors = np.zeros((0, 1), dtype=np.float32)
        if image_work:
            with times.stage("embed_image", len(image_work)):
                image_vectors = self.models.image_embedder.embed(
                    [images[p.item.id] for p in image_work]
                )

        with times.stage("store", len(text_work) + len(image_work)):
            self.store.upsert_images(
                [p.item for p in image_work],
                image_vectors,
                [self._image_metadata(p) for p in image_work],
            )
            self.store.upsert_text(
                [p.item for p in text_work],
                documents,
                text_vectors,
                [
                    self._text_metadata(p, captions.get(p.item.id), transcripts.get(p.item.id, ""))
                    for p in text_work
                ],
            )

        for p in chunk:
            if p.item.id in failed:
                report.failed.append(ItemError("media", failed[p.item.id], p.item.id))
            else:
                report.indexed.append(p.item.id)
                if p.needs_image and not p.needs_text:
                    report.images_reindexed.append(p.item.id)

    def _transcripts(
        self, work: list[_Planned], failed: dict[str, str], times: Any
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in work:
            if not p.item.audio:
                continue
            texts: list[str] = []
            try:
                for path in p.item.audio:
                    with times.stage("decode_audio"):
                        samples = load_audio(
                            path, self.settings.max_audio_bytes, self.settings.max_audio_seconds
                        )
                    with times.stage("transcribe"):
                        result: Transcript = self.models.transcriber.transcribe(samples)
                    if result.text:
                        texts.append(result.text)
            except MediaError as exc:
                failed[p.item.id] = str(exc)
                continue
            out[p.item.id] = " ".join(texts)
        return out

    def _text_metadata(
        self, p: _Planned, caption: tuple[str, str, str] | None, transcript: str
    ) -> dict[str, Any]:
        source = self.models.transcriber.model_id if p.item.audio else ""
        return item_metadata(p.item, p.text_hash, caption, transcript, source, p.media_sha256)

    def _keep_render(self, p: _Planned, image: Image.Image) -> None:
        """An SVG's render kept for serving (content-addressed: done once per file version)."""
        assert p.item.image is not None
        if self.renders is None or p.item.image.suffix.lower() not in SVG_SUFFIXES:
            return
        if self.renders.get(p.image_digest) is None:
            try:
                self.renders.put(p.image_digest, image)
            except OSError as exc:  # serving renders it later; the index is not at stake
                log.warning("could not keep the render of %s: %s", p.item.image, exc)

    def _image_metadata(self, p: _Planned) -> dict[str, Any]:
        return image_metadata(p.item, p.image_hash or "")
