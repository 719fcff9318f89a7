"""The indexing pipeline: catalogue -> validation -> captions, transcripts, embeddings -> Chroma.

Incremental by content hash: ``text_hash`` covers the item's fields, the bytes of its media and
the ids of the captioner, transcriber and text embedder; ``image_hash`` covers the image bytes and
the image embedder. A run redoes only items whose hash changed, so a re-run over an unchanged
catalogue does no model work. Work is written in chunks of ``batch_size`` items (image collection
first, then text), so a run killed at any point resumes where it stopped: ids are upserted, never
duplicated, and a chunk half-written is simply redone.

A bad item (unreadable media, over a limit) is reported with the reason and skipped; whatever the
store held for it before stays as it was.

The per-chunk work (decode, caption/tag, transcribe, embed, the records to upsert) lives in
:mod:`indexing.stages`, which the Ray engine (:mod:`indexing.ray_engine`) calls as well.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexing.loaders import ItemError, LoadResult
from indexing.schema import Item
from indexing.stages import (
    MODEL_STAGES,
    STAGES,
    Planned,
    StageTimes,
    Work,
    account,
    audio_stage,
    build_records,
    picture_stage,
    text_stage,
    write_records,
)
from indexing.store import Store
from tools.config import IndexSettings
from tools.errors import MediaError
from tools.factory import Models
from tools.files import read_bounded
from tools.renders import RenderCache

__all__ = ["DOC_VERSION", "MODEL_STAGES", "STAGES", "IndexReport", "Indexer", "StageTimes"]

DOC_VERSION = "doc-v4"  # bump when the document layout or stored metadata changes


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

    def plan(self, items: Sequence[Item], report: IndexReport) -> list[Planned]:
        planned: list[Planned] = []
        with report.times.stage("hash", len(items)):
            for item in items:
                try:
                    text_hash, image_hash, files = self._hashes(item)
                except (MediaError, OSError) as exc:
                    report.failed.append(ItemError("media", str(exc), item.id))
                    continue
                planned.append(Planned(item, text_hash, image_hash, files))
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
        self._process(todo, report, progress)
        if prune:
            keep = {item.id for item in loaded.items} | {
                e.item_id for e in loaded.errors if e.item_id
            }
            gone = sorted(self.store.all_ids() - keep)
            self.store.delete(gone)
            report.pruned = gone
        report.wall_seconds = time.perf_counter() - started
        return report

    def _process(self, todo: list[Planned], report: IndexReport, progress: Progress | None) -> None:
        """Runs the stages over ``todo`` in chunks of ``batch_size``, writing each chunk."""
        total = len(todo)
        if progress:
            progress(0, total)
        size = self.settings.batch_size
        for start in range(0, total, size):
            self._chunk(todo[start : start + size], report)
            if progress:
                progress(min(start + size, total), total)

    def _chunk(self, chunk: list[Planned], report: IndexReport) -> None:
        times = report.times
        works = [Work(p) for p in chunk]
        models = self.models
        picture_stage(
            works, models.captioner, models.image_embedder, self.settings, self.renders, times
        )
        audio_stage(works, models.transcriber, self.settings, times)
        text_stage(works, models.text_embedder, times)
        write_records(self.store, build_records(works, models.transcriber.model_id), times)
        account(works, report)
