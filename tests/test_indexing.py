"""The indexing pipeline on a real slice of the demo catalogue, into a real embedded Chroma."""

import json
import shutil
from pathlib import Path

import pytest

from indexing.loaders import load_catalogue
from indexing.pipeline import Indexer
from indexing.records import Filters
from indexing.store import Store, open_store
from tests import media
from tests.conftest import copy_slice
from tests.tiny_models import tiny_clip
from tools.config import Settings
from tools.errors import InputError, StoreError
from tools.vision import VECTOR_VERSION


def _store(settings: Settings, reembed: bool = False) -> tuple[Store, Indexer]:
    store, models = open_store(settings, reembed=reembed)
    return store, Indexer(store, models, settings.index)


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_index_reindex_change_and_prune(
    settings: Settings, demo_slice: Path, tmp_path: Path
) -> None:
    catalogue = copy_slice(demo_slice, tmp_path / "cat")
    store, indexer = _store(settings)
    first = indexer.run(load_catalogue(catalogue))
    rows = _rows(catalogue)
    assert first.failed == [] and len(first.indexed) == len(rows)
    with_images = sum(1 for r in rows if r.get("image"))
    assert store.count() == (len(rows), with_images)
    assert first.times.calls["transcribe"] > 0 and first.times.calls["caption"] > 0

    # Captions and transcripts are stored and findable.
    speaking = next(r for r in rows if r["attributes"]["has_spoken_description"])  # type: ignore[index]
    stored = store.items([str(speaking["id"])])[str(speaking["id"])]
    assert stored.facts["transcript"]
    assert stored.facts["caption_source"] == "vision:efficientnet-lite0"
    assert stored.title == speaking["title"]

    # An unchanged re-run does no model work.
    again = indexer.run(load_catalogue(catalogue))
    assert again.indexed == [] and len(again.unchanged) == len(rows)
    assert again.times.model_calls == 0

    # One changed description: exactly that item is redone; no image work for it.
    rows[0]["description"] = "A completely new description about volcanoes."
    _write(catalogue, rows)
    changed = indexer.run(load_catalogue(catalogue))
    assert changed.indexed == [rows[0]["id"]]
    assert changed.times.calls.get("embed_image", 0) == 0
    assert store.search_text("volcanoes", k=1)[0].id == rows[0]["id"]

    # Removing items: kept without --prune, deleted with it.
    _write(catalogue, rows[2:])
    kept = indexer.run(load_catalogue(catalogue))
    assert kept.pruned == [] and store.count()[0] == len(rows)
    pruned = indexer.run(load_catalogue(catalogue), prune=True)
    assert sorted(pruned.pruned) == sorted(str(r["id"]) for r in rows[:2])
    assert store.count()[0] == len(rows) - 2


def test_bad_inputs_are_reported_and_never_damage_the_store(
    settings: Settings, demo_slice: Path, tmp_path: Path
) -> None:
    catalogue = copy_slice(demo_slice, tmp_path / "cat")
    root = catalogue.parent
    rows = _rows(catalogue)[:6]
    _write(catalogue, rows)
    store, indexer = _store(
        settings.model_copy(
            update={"index": settings.index.model_copy(update={"max_image_pixels": 2_000_000})}
        )
    )
    assert indexer.run(load_catalogue(catalogue)).failed == []
    before = store.text.get(ids=[str(rows[0]["id"])], include=["metadatas", "embeddings"])

    # Break the first item's picture on disk: it is reported, its stored version is untouched.
    picture = root / str(rows[0]["image"])
    picture.unlink()
    media.corrupt_png(picture.with_suffix(".png"))
    rows[0]["image"] = str(picture.with_suffix(".png").relative_to(root))
    rows[0]["description"] = "changed, so the item must be redone"
    sound = next((root / "media").rglob("*.ogg"))
    bad = [
        {"id": "zero", "title": "Zero-byte picture", "image": "zero.png"},
        {"id": "huge", "title": "Too many pixels", "image": "huge.png"},
        {"id": "cut", "title": "Truncated sound", "audio": "cut.ogg"},
        {"id": "gone", "title": "Missing file", "image": "nowhere.png"},
        {"id": "escape", "title": "Escaping path", "image": "../../etc/passwd"},
        {"id": "../up", "title": "Escaping id"},
        {"id": "zero", "title": "Duplicate id"},
    ]
    (root / "zero.png").write_bytes(b"")
    media.png(root / "huge.png", (0, 0, 0, 255), (3000, 3000))
    media.truncated_copy(sound, root / "cut.ogg", 0.05)
    _write(catalogue, rows + bad)
    report = indexer.run(load_catalogue(catalogue))
    reasons = {e.item_id: e.problem for e in report.failed}
    assert (
        "corrupt" in reasons[str(rows[0]["id"])] or "not a readable" in reasons[str(rows[0]["id"])]
    )
    assert "empty" in reasons["zero"]
    assert "pixels, over the limit" in reasons["huge"]
    assert "audio" in reasons["cut"]
    assert "not found" in reasons["gone"]
    assert "leaves the catalogue folder" in reasons["escape"]
    assert "not allowed" in reasons["../up"]
    assert "duplicate id" in reasons["zero"] or any("duplicate" in e.problem for e in report.failed)
    assert len(report.failed) == 8
    after = store.text.get(ids=[str(rows[0]["id"])], include=["metadatas", "embeddings"])
    assert after["metadatas"] == before["metadatas"]
    assert (after["embeddings"] == before["embeddings"]).all()
    assert store.count()[0] == 6  # the good items, nothing from the bad ones


def test_search_filters_and_search_by_image(settings: Settings, demo_slice: Path) -> None:
    store, indexer = _store(settings)
    loaded = load_catalogue(demo_slice)
    indexer.run(loaded)
    categories = {i.category for i in loaded.items}
    target = "animals" if "animals" in categories else sorted(c for c in categories if c)[0]
    hits = store.search_text("an animal", k=10, filters=Filters(category=target))
    assert hits and all(h.category == target for h in hits)
    hits = store.search_text("a sound", k=10, filters=Filters(has_audio=True))
    assert hits and all(h.facts["has_audio"] for h in hits)
    assert all(
        h.facts["has_audio"] is False
        for h in store.search_text("a sound", k=5, filters=Filters(has_audio=False))
    )
    # Chroma's multimodal path: query by an item's own picture finds that item first,
    # through our image loader (query_uris) and through decoded pixels alike.
    item = next(i for i in loaded.items if i.image is not None and i.image.suffix == ".png")
    assert store.search_image(item.image, k=3)[0].id == item.id  # type: ignore[arg-type]
    by_uri = store.images.query(query_uris=[str(item.image)], n_results=1)
    assert by_uri["ids"][0][0] == item.id
    with pytest.raises(InputError, match="empty"):
        store.search_text("  ")


def test_switching_image_embedder_reindexes_images(
    settings: Settings, demo_slice: Path, tmp_path: Path
) -> None:
    catalogue = copy_slice(demo_slice, tmp_path / "cat")
    rows = _rows(catalogue)[:5]
    _write(catalogue, rows)
    store, indexer = _store(settings)
    indexer.run(load_catalogue(catalogue))
    assert store.image_embedder_id == f"vision:efficientnet-lite0:{VECTOR_VERSION}"
    clip = settings.model_copy(
        update={
            "models": settings.models.model_copy(
                update={"image_embedder": str(tiny_clip(tmp_path / "clip"))}
            )
        }
    )
    # any other command (it opens the store without reembed) refuses, naming both models,
    # and the stored vectors stay
    with pytest.raises(StoreError, match=r"vision:efficientnet-lite0.*clip:"):
        open_store(clip)
    assert _store(settings)[0].images.count() == len([r for r in rows if r.get("image")])
    clip_store, clip_indexer = _store(clip, reembed=True)  # only index --reembed re-embeds
    report = clip_indexer.run(load_catalogue(catalogue))
    assert clip_store.image_embedder_id.startswith("clip:")
    with_images = [str(r["id"]) for r in rows if r.get("image")]
    assert sorted(report.images_reindexed) == sorted(with_images)  # text was left alone
    assert report.times.calls.get("transcribe", 0) == 0
    vector = clip_store.images.get(ids=with_images[:1], include=["embeddings"])["embeddings"][0]
    assert len(vector) == 16
    # CLIP embeds text too: a text query against the image collection works.
    assert clip_store.images.query(query_texts=["a red dog"], n_results=2)["ids"][0]
    shutil.rmtree(tmp_path / "clip")
