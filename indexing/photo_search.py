"""Search by photo, two paths:

* ``image``: the photo's picture against the catalogue's pictures (the image collection: the
  vision model's features joined with its classes' spread over WordNet, see
  :meth:`tools.vision.Seen.vector`);
* ``labels``: the photo's own labels (what the ImageNet classifier sees in it, with their
  hypernyms) against the catalogue's text, each label weighted by its probability, and the
  path's similarities by the labels' total probability (how sure the model is of what it sees:
  labels that hold a third of the mass count a third as much).

A cartoon stamp and a photograph of the same animal are far apart as features, but their
classes are kin and their labels share words, which carry most cross-style matches.

Each path then ranks its hits by their category's support (:func:`with_support`): an item's
similarity averaged with the mean of the best :data:`SUPPORT_TOP` similarities among the path's
hits of the same category and subcategory. One stamp can look like a photo by accident; several
stamps of one kind that all look like it rarely do, so a kind that several hits agree on rises
together, and a look-alike whose own kin look unlike the photo sinks toward them (an item with
no kin among the hits keeps its own similarity). Each path reads :data:`SUPPORT_DEPTH`
hits for this, then keeps its best ``k``; a hit keeps its own similarity, only its rank moves.

The agent, ``recagent search --image``, the chat's ``/image`` and the web page's upload fuse
the two with the agent's formula (:mod:`agent.fusion`, kinds ``image`` and ``labels``); the
breakdown shows both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from indexing.records import Filters, Hit
from indexing.store import Store
from tools.caption import Label, VisionTagger
from tools.media import load_image

SUPPORT = 8.0  # the category's support against the item's own similarity (chosen on dev)
SUPPORT_TOP = 3  # a category's support: the mean of its best this many similarities
SUPPORT_DEPTH = 200  # hits each path reads before support (the support sees whole categories)


@dataclass
class PhotoHits:
    """What a photo found by each path, and the labels it was read as."""

    image: list[Hit] = field(default_factory=list)
    labels: list[Hit] = field(default_factory=list)
    seen: list[Label] = field(default_factory=list)

    def by_kind(self) -> dict[str, list[Hit]]:
        return {"image": self.image, "labels": self.labels}


def _group(hit: Hit) -> tuple[str, str] | str:
    """The hit's category and subcategory; its own id when it has neither (it stands alone)."""
    attributes = hit.facts.get("attributes") or {}
    sub = str(attributes.get("subcategory", "")) if isinstance(attributes, dict) else ""
    return (hit.category or "", sub) if hit.category or sub else hit.id


def with_support(hits: Sequence[Hit], weight: float = SUPPORT, top: int = SUPPORT_TOP) -> list[Hit]:
    """``hits`` in the order of their supported similarity, ``(score + weight * support) / (1 +
    weight)``, where an item's support is the mean of the best ``top`` scores among ``hits`` in
    its category and subcategory (its own included; an item with neither is its own group);
    ties by id. Each hit keeps its own similarity (the breakdown shows what the path measured),
    only its rank moves. With ``weight`` 0 the order is unchanged."""
    if weight <= 0 or not hits:
        return list(hits)
    members: dict[tuple[str, str] | str, list[float]] = {}
    for hit in hits:
        members.setdefault(_group(hit), []).append(hit.score)
    support = {
        group: sum(sorted(scores, reverse=True)[:top]) / min(top, len(scores))
        for group, scores in members.items()
    }
    return sorted(
        hits, key=lambda hit: (-(hit.score + weight * support[_group(hit)]) / (1 + weight), hit.id)
    )


def search_photo(
    store: Store,
    tagger: VisionTagger | None,
    photo: Path,
    k: int,
    filters: Filters | None = None,
    paths: tuple[str, ...] = ("image", "labels"),
    support: float = SUPPORT,
) -> PhotoHits:
    """Both paths for ``photo`` (decoded once, with the store's size limits; a MediaError
    when it cannot be read), each with its category's ``support`` and cut to ``k``. Without a
    vision model only the picture path runs."""
    picture = load_image(photo, store.loader.max_bytes, store.loader.max_pixels)
    depth = max(k, SUPPORT_DEPTH)
    found = PhotoHits()
    if "image" in paths:
        found.image = with_support(store.search_image(picture, depth, filters), support)[:k]
    if tagger is not None and "labels" in paths:
        found.seen = tagger.labels([picture])[0]
        weighted = [(label.kind.words(), label.probability) for label in found.seen]
        sure = sum(label.probability for label in found.seen)
        hits = [
            replace(hit, score=round(hit.score * sure, 4))
            for hit in store.search_weighted(weighted, depth, filters)
        ]
        found.labels = with_support(hits, support)[:k]
    return found
