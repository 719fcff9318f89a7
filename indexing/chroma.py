"""Chroma adapters: our embedding functions (Chroma's default one downloads a model), the image
loader Chroma uses for ``uris`` (our limits, SVG support, clear errors) and the client (embedded
or a ``chroma run`` server)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from PIL import Image

from tools.embed_image import ImageEmbedder, make_image_embedder
from tools.embed_text import TextEmbedder
from tools.errors import ConfigError, StoreError
from tools.media import load_image


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
            raise ConfigError(f"not a Chroma server URL: {chroma_url}")
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as exc:
            raise StoreError(f"Chroma server at {chroma_url} does not answer: {exc}") from exc
        return client
    if store_dir is None:
        raise ConfigError("either a store folder or a Chroma URL is needed")
    store_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(store_dir), settings=chroma_settings)
