"""The store: the text and image collections of one catalogue, and the only door to Chroma.

* ``<prefix>_text``: one document per item (title, description, caption, transcript) embedded
  with the text embedder; metadata holds filter fields, the caption and transcript, the item
  itself (JSON) and ``text_hash`` (see :mod:`indexing.records`).
* ``<prefix>_image``: one image per item, stored by ``uri``; Chroma's multimodal path loads
  images through :class:`~indexing.chroma.SafeImageLoader` and embeds them with
  :class:`~indexing.chroma.ImageEmbeddingFunction`. The collection metadata records the image
  embedder; a different embedder recreates it.

Callers outside ``indexing/`` use the methods here (search, facts for ids, neighbours, taxonomy,
counts), never a collection. Scores are cosine similarities (1 - cosine distance).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from indexing.chroma import (
    ImageEmbeddingFunction,
    SafeImageLoader,
    TextEmbeddingFunction,
    open_client,
)
from indexing.records import (
    Filters,
    Hit,
    StoredItem,
    Taxonomy,
    media_digests,
    media_from_metadata,
)
from indexing.schema import Item
from tools.config import Settings
from tools.embed_image import ImageEmbedder
from tools.embed_text import TextEmbedder
from tools.errors import InputError, StoreError
from tools.factory import Models, build_models
from tools.media import load_image

log = logging.getLogger(__name__)

GET_CHUNK = 500  # ids per Chroma get() call
PAGE = GET_CHUNK * 10  # rows per page when a whole collection is read


def pages(collection: Any, include: list[str]) -> Iterator[dict[str, Any]]:
    """A whole Chroma collection, one ``get()`` answer per page of :data:`PAGE` rows."""
    offset = 0
    while True:
        got: dict[str, Any] = collection.get(include=include, limit=PAGE, offset=offset)
        yield got
        if len(got["ids"]) < PAGE:
            return
        offset += len(got["ids"])


@dataclass
class StoredState:
    text_hash: dict[str, str]
    image_hash: dict[str, str]


class SearchCount:
    """Vector searches a store has run (each query vector of a call counts once): what a turn
    asks of Chroma, for sizing a Chroma node (docs/scaling.md). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0
        self.filtered = 0  # of them, searches with a metadata filter (a scan in Chroma)

    def add(self, searches: int, where: object = None) -> None:
        with self._lock:
            self.value += searches
            if where:
                self.filtered += searches


class Store:
    """The text and image collections of one catalogue."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        text_embedder: TextEmbedder,
        image_embedder: ImageEmbedder,
        loader: SafeImageLoader | None = None,
        reembed: bool = False,
    ) -> None:
        """``reembed``: when a collection was embedded by another model than the configured
        one, delete it so the next index run embeds everything again (only ``index`` asks for
        this); otherwise such a store is refused with both models named."""
        self.client = client
        self.prefix = prefix
        self.reembed = reembed
        self.searches = SearchCount()
        self.text_ef = TextEmbeddingFunction(text_embedder)
        self.image_ef = ImageEmbeddingFunction(image_embedder)
        self.loader = loader or SafeImageLoader()
        self._check_embedder(f"{prefix}_text", "text_embedder", text_embedder.model_id)
        self.text = client.get_or_create_collection(
            f"{prefix}_text",
            embedding_function=self.text_ef,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"text_embedder": text_embedder.model_id},
        )
        self.images = self._image_collection(image_embedder)

    def _check_embedder(self, name: str, key: str, wanted: str) -> None:
        """Refuse (or, with ``reembed``, delete) collection ``name`` when its vectors were made
        by another model than ``wanted``."""
        if name not in {c.name for c in self.client.list_collections()}:
            return
        made_by = (self.client.get_collection(name).metadata or {}).get(key)
        if made_by in (None, wanted):
            return
        if not self.reembed:
            raise StoreError(
                f"the store's {key.replace('_', ' ')} is {made_by}, but the configuration names "
                f"{wanted}; set it back to {made_by}, or run `recagent index --reembed` to "
                f"embed the catalogue again with {wanted} (the old vectors are deleted)"
            )
        log.warning("%s changed from %s to %s: embedding everything again", key, made_by, wanted)
        self.client.delete_collection(name)

    def _image_collection(self, embedder: ImageEmbedder) -> Any:
        name = f"{self.prefix}_image"
        self._check_embedder(name, "image_embedder", embedder.model_id)
        if name in {c.name for c in self.client.list_collections()}:
            return self.client.get_collection(
                name, embedding_function=self.image_ef, data_loader=self.loader
            )
        return self.client.create_collection(
            name,
            embedding_function=self.image_ef,
            data_loader=self.loader,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"image_embedder": embedder.model_id},
        )

    @property
    def image_embedder_id(self) -> str:
        return str((self.images.metadata or {}).get("image_embedder", ""))

    def stored_state(self, ids: Sequence[str]) -> StoredState:
        state = StoredState({}, {})
        for start in range(0, len(ids), GET_CHUNK):
            chunk = list(ids[start : start + GET_CHUNK])
            for collection, target, key in (
                (self.text, state.text_hash, "text_hash"),
                (self.images, state.image_hash, "image_hash"),
            ):
                got = collection.get(ids=chunk, include=["metadatas"])
                for item_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                    target[item_id] = str((meta or {}).get(key, ""))
        return state

    def all_ids(self) -> set[str]:
        """Ids in either collection (the indexer's view, for pruning)."""
        ids: set[str] = set()
        for collection in (self.text, self.images):
            for got in pages(collection, []):
                ids.update(got["ids"])
        return ids

    def count(self) -> tuple[int, int]:
        return int(self.text.count()), int(self.images.count())

    def upsert_text(
        self,
        items: Sequence[Item],
        documents: Sequence[str],
        embeddings: np.ndarray,
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        if items:
            self.text.upsert(
                ids=[i.id for i in items],
                documents=list(documents),
                embeddings=list(embeddings),
                metadatas=list(metadatas),
            )

    def upsert_images(
        self, items: Sequence[Item], embeddings: np.ndarray, metadatas: Sequence[dict[str, Any]]
    ) -> None:
        if items:
            self.images.upsert(
                ids=[i.id for i in items],
                embeddings=list(embeddings),
                uris=[str(i.image) for i in items],
                metadatas=list(metadatas),
            )

    def delete(self, ids: Iterable[str], text: bool = True, images: bool = True) -> None:
        chosen = list(ids)
        for start in range(0, len(chosen), GET_CHUNK):
            chunk = chosen[start : start + GET_CHUNK]
            if text:
                self.text.delete(ids=chunk)
            if images:
                self.images.delete(ids=chunk)

    # -- reading -----------------------------------------------------------------------------
    def items(self, ids: Sequence[str]) -> dict[str, StoredItem]:
        """The stored facts of ``ids``; ids the store does not hold are absent."""
        found: dict[str, StoredItem] = {}
        chosen = list(dict.fromkeys(ids))
        for start in range(0, len(chosen), GET_CHUNK):
            got = self.text.get(ids=chosen[start : start + GET_CHUNK], include=["metadatas"])
            for item_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                found[item_id] = StoredItem.from_metadata(item_id, meta)
        return found

    def all_items(self) -> list[StoredItem]:
        """Every stored item, sorted by id."""
        items: list[StoredItem] = []
        for got in pages(self.text, ["metadatas"]):
            for item_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                items.append(StoredItem.from_metadata(item_id, meta))
        return sorted(items, key=lambda item: item.id)

    def ids(self) -> set[str]:
        """Ids of every item in the text collection."""
        return {item.id for item in self.all_items()}

    def taxonomy(self) -> Taxonomy:
        """The catalogue's categories, subcategory paths and attribute names."""
        return Taxonomy.of(self.all_items())

    # -- searching ---------------------------------------------------------------------------
    def _hits(self, result: dict[str, Any], matched: str, skip: str | None = None) -> list[Hit]:
        ids: list[str] = result["ids"][0]
        distances: list[float] = result["distances"][0]
        facts = self.items(ids)
        return [
            Hit.of(
                facts.get(item_id) or StoredItem(item_id, item_id, None), round(1.0 - d, 4), matched
            )
            for item_id, d in zip(ids, distances, strict=True)
            if item_id != skip
        ]

    def search_text(self, query: str, k: int = 5, filters: Filters | None = None) -> list[Hit]:
        """Items whose text is nearest to ``query``."""
        if not query.strip():
            raise InputError("the query is empty")
        where = (filters or Filters()).where()
        self.searches.add(1, where)
        result = self.text.query(
            query_texts=[query],
            n_results=k,
            where=where,
            include=["distances"],
        )
        return self._hits(result, "text")

    def search_weighted(
        self,
        queries: Sequence[tuple[str, float]],
        k: int = 5,
        filters: Filters | None = None,
        matched: str = "labels",
    ) -> list[Hit]:
        """Items near several texts at once, each with a weight: an item's similarity is the
        weighted mean of its similarity to each text (0 where it is not among a text's top
        ``k``), best first. Search by a photo's labels, weighted by their probability."""
        queries = [(q, w) for q, w in queries if q.strip() and w > 0]
        if not queries:
            return []
        where = (filters or Filters()).where()
        self.searches.add(len(queries), where)
        result = self.text.query(
            query_texts=[q for q, _ in queries],
            n_results=k,
            where=where,
            include=["distances"],
        )
        total = sum(w for _, w in queries)
        scores: dict[str, float] = {}
        for (_, weight), ids, distances in zip(
            queries, result["ids"], result["distances"] or [], strict=True
        ):
            for item_id, distance in zip(ids, distances, strict=True):
                scores[item_id] = scores.get(item_id, 0.0) + weight * (1.0 - distance) / total
        ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
        facts = self.items([item_id for item_id, _ in ranked])
        return [
            Hit.of(facts.get(i) or StoredItem(i, i, None), round(score, 4), matched)
            for i, score in ranked
        ]

    def search_image(
        self, image: Path | Image.Image, k: int = 5, filters: Filters | None = None
    ) -> list[Hit]:
        """Items whose pictures look like ``image`` (a decoded picture, or any file the image
        loader reads, SVG included; the loader's size limits apply)."""
        picture = (
            image
            if isinstance(image, Image.Image)
            else load_image(image, self.loader.max_bytes, self.loader.max_pixels)
        )
        where = (filters or Filters()).where()
        self.searches.add(1, where)
        result = self.images.query(
            query_images=[np.asarray(picture.convert("RGBA"))],
            n_results=k,
            where=where,
            include=["distances"],
        )
        return self._hits(result, "image")

    def catalogue_roots(self) -> list[Path]:
        """The folders of the catalogues indexed into this store (their media live there)."""
        raw = (self.text.metadata or {}).get("catalogue_roots", "[]")
        try:
            return [Path(p) for p in json.loads(str(raw)) if isinstance(p, str)]
        except json.JSONDecodeError:
            return []

    def add_catalogue_root(self, root: Path) -> None:
        roots = [str(p) for p in self.catalogue_roots()]
        if str(root) in roots:
            return
        metadata = dict(self.text.metadata or {})
        metadata["catalogue_roots"] = json.dumps([*roots, str(root)])
        self.text.modify(metadata=metadata)

    def media(self, item_id: str) -> tuple[Path | None, list[Path]]:
        """The item's picture and sound files as the catalogue named them (resolved paths)."""
        return self.media_files(item_id)[:2]

    def media_files(self, item_id: str) -> tuple[Path | None, list[Path], dict[str, str]]:
        """:meth:`media` and the SHA-256 of each file as indexed (``{path: digest}``; empty for
        items indexed before digests were stored)."""
        got = self.text.get(ids=[item_id], include=["metadatas"])
        if not got["ids"]:
            return None, [], {}
        meta = (got["metadatas"] or [{}])[0] or {}
        image, audio = media_from_metadata(meta)
        return image, audio, media_digests(meta)

    def text_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored text embeddings of ``ids`` (unknown ids are left out)."""
        found: dict[str, np.ndarray] = {}
        chosen = list(dict.fromkeys(ids))
        for start in range(0, len(chosen), GET_CHUNK):
            got = self.text.get(ids=chosen[start : start + GET_CHUNK], include=["embeddings"])
            for item_id, vector in zip(got["ids"], got["embeddings"], strict=True):
                found[item_id] = np.asarray(vector, dtype=np.float32)
        return found

    def neighbours(
        self, item_id: str, k: int, filters: Filters | None = None
    ) -> dict[str, list[Hit]]:
        """Items near ``item_id`` in the text space and, when it has a picture, in the image
        space: ``{"text": [...], "image": [...]}`` (the item itself left out)."""
        found: dict[str, list[Hit]] = {}
        for collection, kind in ((self.text, "text"), (self.images, "image")):
            got = collection.get(ids=[item_id], include=["embeddings"])
            if not got["ids"]:
                continue
            where = (filters or Filters()).where()
            self.searches.add(1, where)
            result = collection.query(
                query_embeddings=[got["embeddings"][0]],
                n_results=k + 1,
                where=where,
                include=["distances"],
            )
            found[kind] = self._hits(result, kind, skip=item_id)[:k]
        return found


def open_store(settings: Settings, reembed: bool = False) -> tuple[Store, Models]:
    """The configured models and the store they index into (embedded or server). A store
    embedded by other models is refused unless ``reembed`` (see :class:`Store`)."""
    models = build_models(settings)
    client = open_client(settings.resolved_store_dir, settings.chroma_url)
    loader = SafeImageLoader(settings.index.max_image_bytes, settings.index.max_image_pixels)
    store = Store(
        client, settings.collection, models.text_embedder, models.image_embedder, loader, reembed
    )
    return store, models
