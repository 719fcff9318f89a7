"""The synthetic store ``recagent bench chroma`` loads, the same for the same
:class:`SyntheticSpec`:

* text vectors (384-d, like all-MiniLM-L6-v2) for every item and image vectors (1280-d, like
  the EfficientNet-Lite pooled features) for a share of them. Vectors are not uniform noise:
  each item belongs to one of a few hundred clusters (a Gaussian around a random unit centre,
  then normalised), so HNSW sees neighbourhoods as it does on real embeddings. An item's image
  vector comes from the same cluster as its text vector.
* metadata like the project's filter fields (``indexing/records.py``): a ``category`` out of a
  few hundred (70% of a cluster's items share its home category), a log-normal ``price``,
  ``has_image``, ``has_audio`` and a short synthetic ``title``.

Generation goes in blocks of :data:`BLOCK` items, each from its own seeded generator, so memory
stays bounded at any size and a test can regenerate any item's facts (:func:`item_facts`); the
queries and their exact answers (:func:`exact_search`) come from the same spec.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tools.errors import InputError

QUERY_KINDS = ("unfiltered", "category", "price", "image")
"""What :func:`where_clause` knows: no filter, a category, a price range, the image collection."""

BLOCK = 1000
"""Items generated from one seeded generator: the data does not depend on the batch size."""

TEXT_DIM = 384
IMAGE_DIM = 1280
HOME_SHARE = 0.7
"""Share of a cluster's items filed under the cluster's home category (the rest: any)."""


ADJECTIVES = "red blue green small large wooden metal soft bright quiet old new round".split()
THINGS = "ball car tree house boat bird lamp chair cup hat kite drum bell train clock".split()


@dataclass(frozen=True)
class SyntheticSpec:
    """What the synthetic store holds; the same spec gives the same data."""

    items: int = 1_000_000
    """Items in the text collection (one 384-d vector each)."""
    image_share: float = 0.2
    """Share of items that also get a 1280-d vector in the image collection."""
    audio_share: float = 0.05
    """Share of items flagged ``has_audio`` (metadata only)."""
    clusters: int = 300
    """Gaussian centres of the vector mixture."""
    categories: int = 300
    """Distinct ``category`` values."""
    spread: float = 1.0
    """Length of an item's offset from its unit centre before normalising (1.0 puts items
    at cosine ~0.7 from their centre and ~0.5 from each other)."""
    seed: int = 2026

    def __post_init__(self) -> None:
        if self.items < 1:
            raise InputError("--items must be 1 or more")
        if not 0 <= self.image_share <= 1 or not 0 <= self.audio_share <= 1:
            raise InputError("shares must lie between 0 and 1")
        if self.clusters < 1 or self.categories < 1:
            raise InputError("clusters and categories must be 1 or more")


@dataclass
class Batch:
    """Consecutive items: ids, unit text vectors, metadata and the image entries."""

    ids: list[str]
    text: np.ndarray
    metadatas: list[dict[str, Any]]
    image_ids: list[str] = field(default_factory=list)
    image: np.ndarray = field(default_factory=lambda: np.zeros((0, IMAGE_DIM), np.float32))


@dataclass(frozen=True)
class Query:
    """One query of each kind shares this vector; the filters come with it."""

    text: np.ndarray
    image: np.ndarray
    category: str
    min_price: float
    max_price: float


def item_id(n: int) -> str:
    return f"item-{n:08d}"


def category_name(c: int) -> str:
    return f"category-{c:03d}"


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: np.ndarray = (rows / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


class Mixture:
    """The cluster centres (text and image) and each cluster's home category."""

    def __init__(self, spec: SyntheticSpec) -> None:
        rng = np.random.default_rng([spec.seed, 0])
        self.spec = spec
        self.text = _unit(rng.standard_normal((spec.clusters, TEXT_DIM)))
        self.image = _unit(rng.standard_normal((spec.clusters, IMAGE_DIM)))
        self.home = rng.integers(spec.categories, size=spec.clusters)

    def draw(self, rng: np.random.Generator, clusters: np.ndarray, image: bool) -> np.ndarray:
        centres = self.image if image else self.text
        dim = centres.shape[1]
        noise = rng.standard_normal((len(clusters), dim)) * (self.spec.spread / math.sqrt(dim))
        return _unit(centres[clusters] + noise)


def generate_block(mixture: Mixture, block: int, images: bool = True) -> Batch:
    """Items ``block * BLOCK`` onwards (at most :data:`BLOCK`), from their own generator."""
    spec = mixture.spec
    start = block * BLOCK
    n = min(BLOCK, spec.items - start)
    rng = np.random.default_rng([spec.seed, 1, block])
    clusters = rng.integers(spec.clusters, size=n)
    text = mixture.draw(rng, clusters, image=False)
    home = rng.random(n) < HOME_SHARE
    categories = np.where(home, mixture.home[clusters], rng.integers(spec.categories, size=n))
    prices = np.clip(np.round(rng.lognormal(3.5, 1.0, size=n), 2), 0.5, 5000.0)
    has_image = rng.random(n) < spec.image_share
    has_audio = rng.random(n) < spec.audio_share
    words = rng.integers(len(ADJECTIVES), size=n), rng.integers(len(THINGS), size=n)
    ids = [item_id(start + i) for i in range(n)]
    metadatas = [
        {
            "title": f"{ADJECTIVES[words[0][i]].title()} {THINGS[words[1][i]]} {start + i}",
            "category": category_name(int(categories[i])),
            "price": float(prices[i]),
            "has_image": bool(has_image[i]),
            "has_audio": bool(has_audio[i]),
        }
        for i in range(n)
    ]
    batch = Batch(ids, text, metadatas)
    if images:
        rows = np.flatnonzero(has_image)
        batch.image_ids = [ids[i] for i in rows]
        batch.image = mixture.draw(rng, clusters[rows], image=True)
    return batch


def blocks(spec: SyntheticSpec, images: bool = True) -> Iterator[Batch]:
    mixture = Mixture(spec)
    for block in range(math.ceil(spec.items / BLOCK)):
        yield generate_block(mixture, block, images)


def batches(spec: SyntheticSpec, size: int, images: bool = True) -> Iterator[Batch]:
    """The items in batches of ``size`` (the last one shorter), generated block by block."""
    pending: list[Batch] = []
    held = 0
    for block in blocks(spec, images):
        pending.append(block)
        held += len(block.ids)
        while held >= size:
            merged = _merge(pending)
            yield _slice(merged, 0, size)
            rest = _slice(merged, size, held)
            pending, held = ([rest] if rest.ids else []), held - size
    if held:
        yield _merge(pending)


def _merge(parts: list[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    return Batch(
        [i for p in parts for i in p.ids],
        np.concatenate([p.text for p in parts]),
        [m for p in parts for m in p.metadatas],
        [i for p in parts for i in p.image_ids],
        np.concatenate([p.image for p in parts]),
    )


def _slice(batch: Batch, start: int, stop: int) -> Batch:
    ids = batch.ids[start:stop]
    wanted = set(ids)
    rows = [i for i, image_id in enumerate(batch.image_ids) if image_id in wanted]
    return Batch(
        ids,
        batch.text[start:stop],
        batch.metadatas[start:stop],
        [batch.image_ids[i] for i in rows],
        batch.image[rows] if rows else np.zeros((0, IMAGE_DIM), np.float32),
    )


def item_facts(spec: SyntheticSpec, n: int) -> dict[str, Any]:
    """The metadata item ``n`` was generated with (regenerates its block only)."""
    if not 0 <= n < spec.items:
        raise InputError(f"item {n} is outside 0..{spec.items - 1}")
    batch = generate_block(Mixture(spec), n // BLOCK, images=False)
    return batch.metadatas[n % BLOCK]


def make_queries(spec: SyntheticSpec, count: int) -> list[Query]:
    """``count`` queries drawn from the same mixture; each filters on its cluster's home
    category and on a price range around a price drawn like the items' (x1 to x1.5)."""
    mixture = Mixture(spec)
    rng = np.random.default_rng([spec.seed, 2])
    clusters = rng.integers(spec.clusters, size=count)
    text = mixture.draw(rng, clusters, image=False)
    image = mixture.draw(rng, clusters, image=True)
    low = np.round(rng.lognormal(3.5, 1.0, size=count), 2)
    return [
        Query(
            text[i],
            image[i],
            category_name(int(mixture.home[clusters[i]])),
            float(low[i]),
            float(round(low[i] * 1.5, 2)),
        )
        for i in range(count)
    ]


def where_clause(kind: str, query: Query) -> dict[str, Any] | None:
    if kind == "category":
        return {"category": query.category}
    if kind == "price":
        return {
            "$and": [{"price": {"$gte": query.min_price}}, {"price": {"$lte": query.max_price}}]
        }
    return None


def matches_query(kind: str, query: Query, meta: dict[str, Any]) -> bool:
    if kind == "category":
        return bool(meta.get("category") == query.category)
    if kind == "price":
        price = meta.get("price")
        return isinstance(price, float) and query.min_price <= price <= query.max_price
    return True


@dataclass
class Truth:
    """Exact answers for the first queries, and how many items each filter lets through."""

    top: dict[str, list[list[str]]]
    matching: dict[str, list[int]]


def exact_search(spec: SyntheticSpec, queries: Sequence[Query], k: int, top_of: int) -> Truth:
    """Exact top-``k`` by cosine over every text vector (streamed block by block) for the first
    ``top_of`` queries, without a filter and with each filter, and for every query the number
    of items each filter lets through."""
    q = np.stack([x.text for x in queries[:top_of]])
    kinds = ("unfiltered", "category", "price")
    best: dict[str, tuple[np.ndarray, np.ndarray]] = {
        kind: (np.full((len(q), 0), -np.inf), np.zeros((len(q), 0), np.int64)) for kind in kinds
    }
    matching = {kind: np.zeros(len(queries), np.int64) for kind in ("category", "price")}
    categories = np.array([x.category for x in queries])[:, None]
    low = np.array([x.min_price for x in queries])[:, None]
    high = np.array([x.max_price for x in queries])[:, None]
    offset = 0
    for block in blocks(spec, images=False):
        cats = np.array([m["category"] for m in block.metadatas])[None, :]
        prices = np.array([m["price"] for m in block.metadatas])[None, :]
        masks = {"category": categories == cats, "price": (prices >= low) & (prices <= high)}
        for kind, mask in masks.items():
            matching[kind] += mask.sum(axis=1)
        sims = q @ block.text.T  # (top_of, block)
        rows = np.arange(offset, offset + len(block.ids))[None, :].repeat(len(q), 0)
        for kind in kinds:
            scores = (
                sims if kind == "unfiltered" else np.where(masks[kind][: len(q)], sims, -np.inf)
            )
            old_scores, old_rows = best[kind]
            all_scores = np.concatenate([old_scores, scores], axis=1)
            all_rows = np.concatenate([old_rows, rows], axis=1)
            keep = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
            best[kind] = (
                np.take_along_axis(all_scores, keep, 1),
                np.take_along_axis(all_rows, keep, 1),
            )
        offset += len(block.ids)
    top = {
        kind: [
            [item_id(int(r)) for r, s in zip(rows, scores, strict=True) if np.isfinite(s)]
            for rows, scores in zip(best[kind][1], best[kind][0], strict=True)
        ]
        for kind in kinds
    }
    return Truth(top, {kind: [int(c) for c in counts] for kind, counts in matching.items()})


# -- memory and disk ---------------------------------------------------------------------
