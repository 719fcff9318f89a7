"""The Chroma side: clients (embedded or server), our embedding functions, the two collections.

* ``<prefix>_text``: one document per item (title, description, caption, transcript) embedded
  with the text embedder; metadata holds filter fields, the caption and transcript, the item
  itself (JSON) and ``text_hash``.
* ``<prefix>_image``: one image per item, stored by ``uri``; Chroma's multimodal path loads
  images through :class:`SafeImageLoader` and embeds them with :class:`ImageEmbeddingFunction`.
  The collection metadata records the image embedder; a different embedder recreates it.

Chroma's default embedding function downloads a model, so every collection is opened with ours.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from PIL import Image

from indexing.schema import Item
from tools.config import Settings
from tools.embed_image import ImageEmbedder, make_image_embedder
from tools.embed_text import TextEmbedder
from tools.factory import Models, build_models
from tools.media import load_image

log = logging.getLogger(__name__)

GET_CHUNK = 500  # ids per Chroma get() call


class TextEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma adapter for :class:`TextEmbedder`."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return cast(Embeddings, list(self.embedder.embed(list(input))))

    @staticmethod
    def name() -> str:
        return "recagent-text"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.embedder.model_id}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> TextEmbeddingFunction:
        return TextEmbeddingFunction(TextEmbedder(str(config["model"])))  # loads lazily

    def default_space(self) -> Any:
        return "cosine"


class ImageEmbeddingFunction(EmbeddingFunction[Any]):
    """Chroma adapter for an :class:`ImageEmbedder`: images (arrays) and, with CLIP, texts."""

    def __init__(self, embedder: ImageEmbedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Any) -> Embeddings:
        items = list(input)
        if items and all(isinstance(x, str) for x in items):
            return cast(Embeddings, list(self.embedder.embed_texts(items)))
        images = [Image.fromarray(np.asarray(x, dtype=np.uint8)) for x in items]
        return cast(Embeddings, list(self.embedder.embed(images)))

    @staticmethod
    def name() -> str:
        return "recagent-image"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.embedder.model_id}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ImageEmbeddingFunction:
        model = str(config["model"])
        ref = model.removeprefix("clip:") if model.startswith("clip:") else None
        return ImageEmbeddingFunction(make_image_embedder(ref))  # loads lazily

    def default_space(self) -> Any:
        return "cosine"


class SafeImageLoader:
    """Chroma data loader for ``uris``: our limits, SVG support and clear errors."""

    def __init__(self, max_bytes: int = 20_000_000, max_pixels: int = 40_000_000) -> None:
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    def __call__(self, uris: Sequence[str | None]) -> list[np.ndarray | None]:
        return [
            None
            if uri is None
            else np.asarray(load_image(Path(uri), self.max_bytes, self.max_pixels).convert("RGBA"))
            for uri in uris
        ]


def open_client(store_dir: Path | None, chroma_url: str | None) -> Any:
    """An HttpClient for ``chroma_url``, else an embedded PersistentClient in ``store_dir``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        parsed = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        if not parsed.hostname:
            raise ValueError(f"not a Chroma server URL: {chroma_url}")
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as exc:
            raise ConnectionError(f"Chroma server at {chroma_url} does not answer: {exc}") from exc
        return client
    if store_dir is None:
        raise ValueError("either a store folder or a Chroma URL is needed")
    store_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(store_dir), settings=chroma_settings)


@dataclass
class StoredState:
    text_hash: dict[str, str]
    image_hash: dict[str, str]


class Store:
    """The text and image collections of one catalogue."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        text_embedder: TextEmbedder,
        image_embedder: ImageEmbedder,
        loader: SafeImageLoader | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.text_ef = TextEmbeddingFunction(text_embedder)
        self.image_ef = ImageEmbeddingFunction(image_embedder)
        self.loader = loader or SafeImageLoader()
        self.text = client.get_or_create_collection(
            f"{prefix}_text",
            embedding_function=self.text_ef,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"text_embedder": text_embedder.model_id},
        )
        self.images = self._image_collection(image_embedder)

    def _image_collection(self, embedder: ImageEmbedder) -> Any:
        name = f"{self.prefix}_image"
        existing = {c.name for c in self.client.list_collections()}
        if name in existing:
            current = self.client.get_collection(
                name, embedding_function=self.image_ef, data_loader=self.loader
            )
            made_by = (current.metadata or {}).get("image_embedder")
            if made_by == embedder.model_id:
                return current
            log.warning(
                "image embedder changed from %s to %s: re-indexing all images",
                made_by,
                embedder.model_id,
            )
            self.client.delete_collection(name)
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
        ids: set[str] = set()
        for collection in (self.text, self.images):
            offset = 0
            while True:
                got = collection.get(include=[], limit=GET_CHUNK * 10, offset=offset)
                ids.update(got["ids"])
                if len(got["ids"]) < GET_CHUNK * 10:
                    break
                offset += len(got["ids"])
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

    def get_item(self, item_id: str) -> dict[str, Any] | None:
        got = self.text.get(ids=[item_id], include=["metadatas", "documents"])
        if not got["ids"]:
            return None
        meta = dict(got["metadatas"][0] or {})
        meta["item"] = json.loads(str(meta.get("item_json", "{}")))
        return meta


def open_store(settings: Settings) -> tuple[Store, Models]:
    """The configured models and the store they index into (embedded or server)."""
    models = build_models(settings)
    client = open_client(settings.resolved_store_dir, settings.chroma_url)
    loader = SafeImageLoader(settings.index.max_image_bytes, settings.index.max_image_pixels)
    store = Store(client, settings.collection, models.text_embedder, models.image_embedder, loader)
    return store, models
