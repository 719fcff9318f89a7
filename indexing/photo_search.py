"""Search by photo, two paths: the photo's picture against the catalogue's pictures (the image
collection: the vision model's features), and the photo's own labels (what an ImageNet
classifier sees in it, with their hypernyms) against the catalogue's text, each label weighted
by its probability. A cartoon stamp and a photograph of the same animal are far apart as
pictures but share their labels' words, so the second path carries most cross-style matches.
The agent and ``recagent search --image`` fuse the two (:mod:`agent.fusion`, kinds ``image``
and ``labels``); the breakdown shows both."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from indexing.records import Filters, Hit
from indexing.store import Store
from tools.caption import Label, VisionTagger
from tools.media import load_image


@dataclass
class PhotoHits:
    """What a photo found by each path, and the labels it was read as."""

    image: list[Hit] = field(default_factory=list)
    labels: list[Hit] = field(default_factory=list)
    seen: list[Label] = field(default_factory=list)

    def by_kind(self) -> dict[str, list[Hit]]:
        return {"image": self.image, "labels": self.labels}


def search_photo(
    store: Store,
    tagger: VisionTagger | None,
    photo: Path,
    k: int,
    filters: Filters | None = None,
    paths: tuple[str, ...] = ("image", "labels"),
) -> PhotoHits:
    """Both paths for ``photo`` (decoded once, with the store's size limits; a MediaError
    when it cannot be read). Without a vision model only the picture path runs."""
    picture = load_image(photo, store.loader.max_bytes, store.loader.max_pixels)
    found = PhotoHits()
    if "image" in paths:
        found.image = store.search_image(picture, k, filters)
    if tagger is not None and "labels" in paths:
        found.seen = tagger.labels([picture])[0]
        found.labels = store.search_weighted(
            [(label.kind.words(), label.probability) for label in found.seen], k, filters
        )
    return found
