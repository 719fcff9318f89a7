"""Query the store: text queries against the text collection, pictures against the image one.

Filters become a Chroma ``where`` clause on the metadata written at indexing time. Scores are
cosine similarities (1 - cosine distance), higher is better.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexing.store import Store
from tools.media import load_image


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    has_image: bool | None = None
    has_audio: bool | None = None

    def where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.category:
            clauses.append({"category": self.category})
        if self.min_price is not None:
            clauses.append({"price": {"$gte": float(self.min_price)}})
        if self.max_price is not None:
            clauses.append({"price": {"$lte": float(self.max_price)}})
        if self.has_image is not None:
            clauses.append({"has_image": self.has_image})
        if self.has_audio is not None:
            clauses.append({"has_audio": self.has_audio})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass(frozen=True)
class Hit:
    id: str
    title: str
    score: float
    matched: str  # "text" or "image"
    category: str | None
    caption: str
    caption_source: str
    transcript: str
    metadata: dict[str, Any]


def hits_from_result(store: Store, result: dict[str, Any], matched: str) -> list[Hit]:
    ids: list[str] = result["ids"][0]
    distances: list[float] = result["distances"][0]
    if not ids:
        return []
    details = store.text.get(ids=ids, include=["metadatas"])
    by_id = dict(zip(details["ids"], details["metadatas"] or [], strict=True))
    hits = []
    for item_id, distance in zip(ids, distances, strict=True):
        meta = dict(by_id.get(item_id) or {})
        hits.append(
            Hit(
                id=item_id,
                title=str(meta.get("title", item_id)),
                score=round(1.0 - float(distance), 4),
                matched=matched,
                category=meta.get("category"),
                caption=str(meta.get("caption", "")),
                caption_source=str(meta.get("caption_source", "")),
                transcript=str(meta.get("transcript", "")),
                metadata=meta,
            )
        )
    return hits


def search_text(store: Store, query: str, k: int = 5, filters: Filters | None = None) -> list[Hit]:
    if not query.strip():
        raise ValueError("the query is empty")
    result = store.text.query(
        query_texts=[query],
        n_results=k,
        where=(filters or Filters()).where(),
        include=["distances"],
    )
    return hits_from_result(store, result, "text")


def search_image(
    store: Store,
    image: Path,
    k: int = 5,
    filters: Filters | None = None,
    max_bytes: int = 20_000_000,
    max_pixels: int = 40_000_000,
) -> list[Hit]:
    """Items whose pictures look like ``image`` (any file the image loader reads, SVG included)."""
    picture = load_image(image, max_bytes, max_pixels)  # clear errors before Chroma sees it
    import numpy as np

    result = store.images.query(
        query_images=[np.asarray(picture.convert("RGBA"))],
        n_results=k,
        where=(filters or Filters()).where(),
        include=["distances"],
    )
    return hits_from_result(store, result, "image")
