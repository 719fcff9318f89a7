"""The work of indexing one chunk of planned items, as plain functions on :class:`Work` lists.

Both engines call exactly these: the local loop (:class:`indexing.pipeline.Indexer`) runs the
stages one after the other on each chunk in this process; the Ray engine
(:mod:`indexing.ray_engine`) runs each stage in an actor that holds its model, then writes the
records on the driver. The stages:

1. :func:`picture_stage`: decode the picture (from the bytes that were hashed), keep an SVG's
   render, caption/tag it (items whose text is redone), embed it (items whose picture is redone);
2. :func:`audio_stage`: decode and transcribe each audio file;
3. :func:`text_stage`: the document, and its text embedding;
4. :func:`build_records` and :func:`write_records`: what is upserted into the two collections.

A bad item (unreadable media, over a limit) gets :attr:`Work.failed` with the reason; later
stages skip it and nothing of it is written. ``times`` hears each stage's seconds and calls.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from indexing.loaders import ItemError
from indexing.records import image_metadata, item_metadata
from indexing.schema import Item
from indexing.store import Store
from tools.audio import load_audio
from tools.caption import Captioner
from tools.config import IndexSettings
from tools.embed_image import ImageEmbedder
from tools.embed_text import TextEmbedder
from tools.errors import MediaError
from tools.files import read_bounded
from tools.media import SVG_SUFFIXES, decode_image
from tools.renders import RenderCache
from tools.transcribe import Transcriber

log = logging.getLogger(__name__)

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

    def add(self, other: StageTimes) -> None:
        """Adds ``other``'s figures to these (a stage's times measured elsewhere)."""
        for name, seconds in other.seconds.items():
            self.seconds[name] += seconds
            self.items[name] += other.items.get(name, 0)
            self.calls[name] += other.calls.get(name, 0)

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
class Planned:
    """An item to index, with its content hashes and what of it must be redone."""

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


@dataclass
class Work:
    """One planned item on its way through the stages, with what each stage made of it.

    Pickled between Ray stages without the decoded picture (only the picture stage uses it)."""

    planned: Planned
    image: Image.Image | None = None
    caption: tuple[str, str, str] | None = None  # text, source, pixel facts
    transcript: str = ""
    document: str = ""
    text_vector: np.ndarray | None = None
    image_vector: np.ndarray | None = None
    failed: str | None = None
    times: StageTimes | None = None  # a Ray batch's stage times ride on its first item

    @property
    def id(self) -> str:
        return self.planned.item.id

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "image": None}


def _live(works: Sequence[Work]) -> list[Work]:
    return [w for w in works if w.failed is None]


def decode_pictures(
    works: Sequence[Work], settings: IndexSettings, renders: RenderCache | None, times: StageTimes
) -> None:
    """Decodes the picture of each item whose text or picture is redone."""
    wanted = [w for w in _live(works) if w.planned.item.image is not None]
    with times.stage("decode_image", len(wanted)):
        for work in wanted:
            path = work.planned.item.image
            assert path is not None
            try:  # decoded from the bytes that are hashed: a file swapped since is refused
                data = read_bounded(path, settings.max_image_bytes, "image")
                digest = work.planned.image_digest
                if digest and hashlib.sha256(data).hexdigest() != digest:
                    raise MediaError(f"image changed while it was indexed: {path}")
                work.image = decode_image(
                    data, path, settings.max_image_bytes, settings.max_image_pixels
                )
                keep_render(work.planned, work.image, renders)
            except MediaError as exc:
                work.failed = str(exc)


def keep_render(planned: Planned, image: Image.Image, renders: RenderCache | None) -> None:
    """An SVG's render kept for serving (content-addressed: done once per file version)."""
    path = planned.item.image
    assert path is not None
    if renders is None or path.suffix.lower() not in SVG_SUFFIXES:
        return
    if renders.get(planned.image_digest) is None:
        try:
            renders.put(planned.image_digest, image)
        except OSError as exc:  # serving renders it later; the index is not at stake
            log.warning("could not keep the render of %s: %s", path, exc)


def caption_pictures(works: Sequence[Work], captioner: Captioner, times: StageTimes) -> None:
    """Captions (tags) the decoded pictures of items whose text is redone, in one call."""
    todo = [w for w in _live(works) if w.planned.needs_text and w.image is not None]
    if not todo:
        return
    with times.stage("caption", len(todo)):
        made = captioner.caption([w.image for w in todo if w.image is not None])
    for work, caption in zip(todo, made, strict=True):
        work.caption = (caption.text, caption.source, caption.pixels)


def embed_pictures(works: Sequence[Work], embedder: ImageEmbedder, times: StageTimes) -> None:
    """Embeds the decoded pictures of items whose picture is redone, in one call."""
    todo = [w for w in _live(works) if w.planned.needs_image and w.image is not None]
    if not todo:
        return
    with times.stage("embed_image", len(todo)):
        vectors = embedder.embed([w.image for w in todo if w.image is not None])
    for work, vector in zip(todo, vectors, strict=True):
        work.image_vector = np.asarray(vector, dtype=np.float32)


def picture_stage(
    works: Sequence[Work],
    captioner: Captioner,
    image_embedder: ImageEmbedder,
    settings: IndexSettings,
    renders: RenderCache | None,
    times: StageTimes,
) -> None:
    """Decode, caption and embed the pictures; the decoded pictures are dropped after."""
    decode_pictures(works, settings, renders, times)
    caption_pictures(works, captioner, times)
    embed_pictures(works, image_embedder, times)
    for work in works:
        work.image = None


def audio_stage(
    works: Sequence[Work], transcriber: Transcriber, settings: IndexSettings, times: StageTimes
) -> None:
    """Transcribes the audio files of each item whose text is redone (joined by spaces)."""
    for work in _live(works):
        item = work.planned.item
        if not (work.planned.needs_text and item.audio):
            continue
        texts: list[str] = []
        try:
            for path in item.audio:
                with times.stage("decode_audio"):
                    samples = load_audio(path, settings.max_audio_bytes, settings.max_audio_seconds)
                with times.stage("transcribe"):
                    result = transcriber.transcribe(samples)
                if result.text:
                    texts.append(result.text)
        except MediaError as exc:
            work.failed = str(exc)
            continue
        work.transcript = " ".join(texts)


def text_stage(works: Sequence[Work], embedder: TextEmbedder, times: StageTimes) -> None:
    """The document of each item whose text is redone, embedded in one call."""
    todo = [w for w in _live(works) if w.planned.needs_text]
    for work in todo:
        caption = work.caption or ("", "", "")
        work.document = work.planned.item.text_for_embedding(
            caption[0], work.transcript, caption[2]
        )
    if not todo:
        return
    with times.stage("embed_text", len(todo)):
        vectors = embedder.embed([w.document for w in todo])
    for work, vector in zip(todo, vectors, strict=True):
        work.text_vector = np.asarray(vector, dtype=np.float32)


@dataclass
class Records:
    """What one chunk upserts: the image collection's entries, then the text collection's."""

    image_items: list[Item] = field(default_factory=list)
    image_vectors: list[np.ndarray] = field(default_factory=list)
    image_metadatas: list[dict[str, Any]] = field(default_factory=list)
    text_items: list[Item] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    text_vectors: list[np.ndarray] = field(default_factory=list)
    text_metadatas: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.image_items) + len(self.text_items)


def build_records(works: Sequence[Work], transcriber_id: str) -> Records:
    """The entries of the items that did not fail (``transcriber_id``: the transcripts' source)."""
    records = Records()
    for work in _live(works):
        p = work.planned
        if p.needs_image and work.image_vector is not None:
            records.image_items.append(p.item)
            records.image_vectors.append(work.image_vector)
            records.image_metadatas.append(image_metadata(p.item, p.image_hash or ""))
        if p.needs_text and work.text_vector is not None:
            source = transcriber_id if p.item.audio else ""
            records.text_items.append(p.item)
            records.documents.append(work.document)
            records.text_vectors.append(work.text_vector)
            records.text_metadatas.append(
                item_metadata(
                    p.item, p.text_hash, work.caption, work.transcript, source, p.media_sha256
                )
            )
    return records


def _stack(vectors: list[np.ndarray]) -> np.ndarray:
    return np.stack(vectors) if vectors else np.zeros((0, 1), dtype=np.float32)


def write_records(store: Store, records: Records, times: StageTimes) -> None:
    """Upserts one chunk: pictures first, then text (whose hash marks the item as done)."""
    with times.stage("store", len(records)):
        store.upsert_images(
            records.image_items, _stack(records.image_vectors), records.image_metadatas
        )
        store.upsert_text(
            records.text_items,
            records.documents,
            _stack(records.text_vectors),
            records.text_metadatas,
        )


def account(works: Sequence[Work], report: Any) -> None:
    """Each item of a written chunk into ``report`` (an IndexReport): failed, or indexed."""
    for work in works:
        if work.failed is not None:
            report.failed.append(ItemError("media", work.failed, work.id))
        else:
            report.indexed.append(work.id)
            if work.planned.needs_image and not work.planned.needs_text:
                report.images_reindexed.append(work.id)
