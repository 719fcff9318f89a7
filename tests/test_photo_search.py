"""Search by photo's own arithmetic, checked against answers worked by hand: the category
support that ranks a path's hits, the spread of a class distribution over the WordNet
hierarchy, a picture's vector, and the labels path weighted by how sure the labels are (a fake
store and model, so no weights are needed; the real model is in ``test_vision.py``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from PIL import Image

from indexing.chroma import SafeImageLoader
from indexing.photo_search import SUPPORT_DEPTH, search_photo, with_support
from indexing.records import Filters, Hit
from indexing.store import Store
from tools.caption import VisionTagger
from tools.imagenet import Ancestry, ImageNetClass
from tools.vision import CLASS_SHARE, Seen


def _hit(item_id: str, score: float, category: str = "", sub: str = "") -> Hit:
    facts: dict[str, Any] = {"attributes": {"subcategory": sub}} if sub else {}
    return Hit(item_id, item_id, score, category or None, facts, "image")


def test_support_lifts_a_kind_that_several_hits_agree_on() -> None:
    hits = [
        _hit("a", 0.9, "animals", "cats"),  # a cat stamp, alone in looking like the photo
        _hit("f", 0.85),  # no category: its own group, its own support
        _hit("c", 0.8, "animals", "dogs"),
        _hit("d", 0.7, "animals", "dogs"),
        _hit("e", 0.6, "animals", "dogs"),
        _hit("b", 0.5, "animals", "cats"),
    ]
    # weight 1, top 2: cats' support (0.9 + 0.5) / 2 = 0.7, dogs' (0.8 + 0.7) / 2 = 0.75;
    # a (0.9 + 0.7) / 2 = 0.8, b 0.6, c 0.775, d 0.725, e 0.675, f (0.85 + 0.85) / 2 = 0.85
    ranked = with_support(hits, weight=1.0, top=2)
    assert [h.id for h in ranked] == ["f", "a", "c", "d", "e", "b"]
    assert [h.score for h in ranked] == [0.85, 0.9, 0.8, 0.7, 0.6, 0.5]  # ranks move, not scores
    assert with_support(hits, weight=0.0) == hits
    assert with_support([], weight=2.0) == []
    # the same subcategory name under two categories is two kinds
    twins = [_hit("x", 0.9, "food", "cartoon"), _hit("y", 0.2, "town", "cartoon")]
    assert [h.id for h in with_support([*twins, _hit("z", 0.85, "town", "cartoon")], 1.0, 2)] == [
        "x",
        "z",
        "y",
    ]


def _classes() -> list[ImageNetClass]:
    return [
        ImageNetClass("n1", ("tabby",), (), ("x", "y")),  # x: feline, y: domestic cat
        ImageNetClass("n2", ("tiger",), (), ("x", "z")),  # z: big cat
        ImageNetClass("n3", ("teapot",), (), ("w",)),
    ]


def test_the_spread_shares_kin_classes_ancestors_weighted_by_how_specific_they_are() -> None:
    ancestry = Ancestry(_classes())
    assert ancestry.size == 4  # w, x, y, z
    # x holds two of the three classes: log(3/2); the others one each: log 3
    assert ancestry.weights.tolist() == pytest.approx(
        [math.log(3), math.log(1.5)] + [math.log(3)] * 2
    )
    tabby, tiger, teapot = (ancestry.spread(np.eye(3)[i]) for i in range(3))
    assert tabby @ tiger == pytest.approx(
        math.log(1.5) ** 2 / (math.log(1.5) ** 2 + math.log(3) ** 2)
    )
    assert tabby @ teapot == 0.0  # nothing in common: no more than one-hot classes would share
    assert np.linalg.norm(ancestry.spread(np.array([0.5, 0.3, 0.2]))) == pytest.approx(1.0)
    # a transformers model's own labels have no ancestors: the spread is sqrt(p), normalised
    plain = Ancestry([ImageNetClass("", ("kite",), ()), ImageNetClass("", ("owl",), ())])
    assert plain.size == 2
    assert plain.spread(np.array([0.64, 0.36])).tolist() == pytest.approx([0.8, 0.6])


def test_a_pictures_vector_mixes_features_and_spread_by_the_class_share() -> None:
    ancestry = Ancestry(_classes())
    one = Seen(np.array([1.0, 0.0, 0.0]), np.array([0.6, 0.8], dtype=np.float32))
    two = Seen(np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0], dtype=np.float32))
    features = 0.6
    spread = float(ancestry.spread(one.probabilities) @ ancestry.spread(two.probabilities))
    assert one.vector(ancestry) @ two.vector(ancestry) == pytest.approx(
        (1 - CLASS_SHARE) * features + CLASS_SHARE * spread, abs=1e-6
    )
    assert np.linalg.norm(one.vector(ancestry)) == pytest.approx(1.0, abs=1e-6)
    assert one.vector(ancestry).shape == (2 + ancestry.size,)


class _Vision:
    """Sees every picture as tabby 0.5, tiger 0.3, teapot 0.2."""

    model_id = "fake"
    classes = _classes()

    def see(self, images: Sequence[Image.Image]) -> list[Seen]:
        return [Seen(np.array([0.5, 0.3, 0.2]), np.array([1.0], np.float32)) for _ in images]


class _Store:
    """Answers each path with fixed hits and records how deep it was asked."""

    def __init__(self) -> None:
        self.loader = SafeImageLoader()
        self.asked: list[tuple[str, int]] = []
        self.queries: list[tuple[str, float]] = []

    def search_image(self, image: Image.Image, k: int, filters: Filters | None) -> list[Hit]:
        self.asked.append(("image", k))
        odd = [_hit("odd", 0.9, "town", "a"), _hit("odd-kin", 0.3, "town", "a")]
        return [*odd, *(_hit(f"cat{i}", 0.8, "animals", "cats") for i in range(3))]

    def search_weighted(
        self, queries: Sequence[tuple[str, float]], k: int, filters: Filters | None
    ) -> list[Hit]:
        self.asked.append(("labels", k))
        self.queries = list(queries)
        return [_hit("cat", 0.6, "animals", "cats")]


def test_each_path_reads_deep_ranks_by_support_and_the_labels_count_as_sure_as_they_are(
    tmp_path: Path,
) -> None:
    photo = tmp_path / "p.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(photo)
    store = _Store()
    tagger = VisionTagger(cast(Any, _Vision()), min_confidence=0.25, top=3)
    found = search_photo(cast(Store, store), tagger, photo, k=2)
    assert store.asked == [("image", SUPPORT_DEPTH), ("labels", SUPPORT_DEPTH)]
    # three agreeing cats (0.8 each) outrank a look-alike (0.9) whose kin does not look like the
    # photo (0.3): its support is 0.6, so (0.9 + w * 0.6) / (1 + w) < 0.8 for any weight w > 0.5;
    # the path is cut to k
    assert [h.id for h in found.image] == ["cat0", "cat1"]
    assert [label.kind.name for label in found.seen] == ["tabby", "tiger"]  # teapot under 0.25
    assert [w for _, w in store.queries] == pytest.approx([0.5, 0.3])
    assert found.labels[0].score == pytest.approx(0.6 * 0.8)  # labels that hold 0.8 of the mass
    assert found.by_kind() == {"image": found.image, "labels": found.labels}
