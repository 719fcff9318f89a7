"""What the store holds of an item and hands back, encoded and decoded in this one place.

* :class:`StoredItem`: a stored item's citable facts (catalogue fields, caption, transcript,
  media flags).
* :class:`Hit`: a stored item found by a search, with its similarity.
* :class:`Filters`: the filterable fields, as a Chroma ``where`` clause.
* :class:`Taxonomy`: the catalogue's own categories, subcategory paths and attribute names.
* :func:`item_metadata` / :func:`facts_from_metadata`: the metadata written beside each
  document at indexing time, and the facts read back from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexing.schema import Item


def _filter_fields(item: Item) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "title": item.title,
        "has_image": item.image is not None,
        "has_audio": bool(item.audio),
    }
    if item.category:
        meta["category"] = item.category
    if item.price is not None:
        meta["price"] = float(item.price)
    return meta


def image_metadata(item: Item, image_hash: str) -> dict[str, Any]:
    """Metadata of an item's entry in the image collection."""
    return {**_filter_fields(item), "image_hash": image_hash}


def item_metadata(
    item: Item,
    text_hash: str,
    caption: tuple[str, str, str] | None,
    transcript: str,
    transcript_source: str,
    media_sha256: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Metadata of an item's entry in the text collection: the filter fields, the media text
    (``caption`` is its text, source and pixel facts), the whole item as JSON (the facts
    explanations may cite) and the SHA-256 of each media file as indexed (``{path: digest}``:
    what may be served)."""
    return {
        **_filter_fields(item),
        "text_hash": text_hash,
        "caption": caption[0] if caption else "",
        "caption_source": caption[1] if caption else "",
        "pixel_facts": caption[2] if caption else "",  # kept apart: not in the document
        "transcript": transcript,
        "transcript_source": transcript_source,
        "item_json": item.model_dump_json(),
        "media_sha256": json.dumps(dict(media_sha256 or {}), sort_keys=True),
    }


def media_digests(meta: Mapping[str, Any]) -> dict[str, str]:
    """``{path: SHA-256}`` of the media files an item was indexed with ({} for older stores)."""
    try:
        digests = json.loads(str(meta.get("media_sha256") or "{}"))
    except json.JSONDecodeError:
        return {}
    if not isinstance(digests, dict):
        return {}
    return {str(k): str(v) for k, v in digests.items()}


def facts_from_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The citable facts of a stored item: its catalogue fields plus caption and transcript."""
    item = json.loads(str(meta.get("item_json", "{}")))
    facts = {
        key: item.get(key) for key in ("title", "description", "category", "price", "attributes")
    }
    facts.update(
        caption=meta.get("caption", ""),
        caption_source=meta.get("caption_source", ""),
        transcript=meta.get("transcript", ""),
        has_audio=bool(meta.get("has_audio")),
        has_image=bool(meta.get("has_image")),
        image=item.get("image"),
    )
    return facts


def media_from_metadata(meta: dict[str, Any]) -> tuple[Path | None, list[Path]]:
    """The picture and sound files a stored item's catalogue row named (resolved paths)."""
    try:
        item = json.loads(str(meta.get("item_json", "{}")))
    except json.JSONDecodeError:
        return None, []
    image = item.get("image")
    audio = item.get("audio") or []
    return (
        Path(image) if isinstance(image, str) else None,
        [Path(a) for a in audio if isinstance(a, str)],
    )


@dataclass(frozen=True)
class StoredItem:
    """One stored item: its id, title, category and citable facts."""

    id: str
    title: str
    category: str | None
    facts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_metadata(cls, item_id: str, meta: dict[str, Any] | None) -> StoredItem:
        meta = dict(meta or {})
        category = meta.get("category")
        return cls(
            item_id,
            str(meta.get("title", item_id)),
            str(category) if category else None,
            facts_from_metadata(meta),
        )

    @property
    def subcategory(self) -> str:
        """The item's subcategory path (an attribute), or "" when it has none."""
        attributes = self.facts.get("attributes") or {}
        return str(attributes.get("subcategory", "")) if isinstance(attributes, dict) else ""


@dataclass(frozen=True)
class Hit:
    """A stored item found by a search; ``score`` is a cosine similarity (higher is better),
    ``matched`` the space it was found in ("text" or "image")."""

    id: str
    title: str
    score: float
    category: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    matched: str = "text"

    @classmethod
    def of(cls, item: StoredItem, score: float, matched: str = "text") -> Hit:
        return cls(item.id, item.title, score, item.category, item.facts, matched)

    @property
    def caption(self) -> str:
        return str(self.facts.get("caption") or "")

    @property
    def caption_source(self) -> str:
        return str(self.facts.get("caption_source") or "")

    @property
    def transcript(self) -> str:
        return str(self.facts.get("transcript") or "")


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

    def admits(self, facts: Mapping[str, Any]) -> bool:
        """Whether an item with these facts passes (the same test ``where`` asks Chroma)."""
        price = facts.get("price")
        checks = (
            self.category is None or facts.get("category") == self.category,
            self.min_price is None or (isinstance(price, int | float) and price >= self.min_price),
            self.max_price is None or (isinstance(price, int | float) and price <= self.max_price),
            self.has_image is None or bool(facts.get("has_image")) == self.has_image,
            self.has_audio is None or bool(facts.get("has_audio")) == self.has_audio,
        )
        return all(checks)

    def within(self, outer: Filters) -> Filters:
        """These filters with every bound ``outer`` sets added (``outer`` wins on a clash)."""
        return Filters(
            category=outer.category or self.category,
            min_price=outer.min_price if outer.min_price is not None else self.min_price,
            max_price=outer.max_price if outer.max_price is not None else self.max_price,
            has_image=outer.has_image if outer.has_image is not None else self.has_image,
            has_audio=outer.has_audio if outer.has_audio is not None else self.has_audio,
        )


@dataclass(frozen=True)
class Taxonomy:
    """The catalogue's own vocabulary: categories, subcategory paths per category (from the
    ``subcategory`` attribute) and the attribute names items carry, with item counts; and how
    many items carry sound and a price (a wish for either means nothing where none does)."""

    categories: dict[str, int] = field(default_factory=dict)
    subcategories: dict[str, dict[str, int]] = field(default_factory=dict)
    attributes: dict[str, int] = field(default_factory=dict)
    with_audio: int = 0
    with_price: int = 0

    @classmethod
    def of(cls, items: list[StoredItem]) -> Taxonomy:
        categories: dict[str, int] = {}
        subcategories: dict[str, dict[str, int]] = {}
        attributes: dict[str, int] = {}
        with_audio = with_price = 0
        for item in items:
            with_audio += bool(item.facts.get("has_audio"))
            with_price += isinstance(item.facts.get("price"), int | float)
            if item.category:
                categories[item.category] = categories.get(item.category, 0) + 1
                if item.subcategory:
                    paths = subcategories.setdefault(item.category, {})
                    paths[item.subcategory] = paths.get(item.subcategory, 0) + 1
            for name in item.facts.get("attributes") or {}:
                attributes[name] = attributes.get(name, 0) + 1
        return cls(
            dict(sorted(categories.items())),
            {c: dict(sorted(p.items())) for c, p in sorted(subcategories.items())},
            dict(sorted(attributes.items())),
            with_audio,
            with_price,
        )
