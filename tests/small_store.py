"""A small store for the fast test tier: a dozen hand-written items (a few with generated
pictures and sound), indexed with the real shipped text embedder into a real embedded Chroma.
Built in a few seconds, so the agent's control flow can be tested without the demo catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from indexing.loaders import load_catalogue, write_jsonl
from indexing.pipeline import Indexer
from indexing.schema import Item
from indexing.store import Store, open_store
from tests.media import noise_wav, png
from tools.config import Settings, load_settings

# (id, title, description, category, price, picture colour, has a sound)
ROWS: list[tuple[str, str, str, str, float | None, tuple[int, int, int, int] | None, bool]] = [
    (
        "animals/birds/robin",
        "Robin",
        "A small bird with a red breast that sings.",
        "animals",
        None,
        (200, 40, 30, 255),
        False,
    ),
    (
        "animals/birds/owl",
        "Owl",
        "A night bird that hoots in the dark.",
        "animals",
        None,
        None,
        True,
    ),
    (
        "animals/birds/parrot",
        "Parrot",
        "A colourful bird that can copy words.",
        "animals",
        None,
        (30, 180, 40, 255),
        False,
    ),
    (
        "animals/farm/cow",
        "Cow",
        "A farm animal that gives milk and says moo.",
        "animals",
        None,
        None,
        True,
    ),
    (
        "animals/farm/pig",
        "Pig",
        "A pink farm animal that oinks in the mud.",
        "animals",
        None,
        None,
        True,
    ),
    ("animals/farm/sheep", "Sheep", "A woolly farm animal.", "animals", None, None, False),
    (
        "vehicles/road/car",
        "Car",
        "A red car with four wheels.",
        "vehicles",
        20000.0,
        (220, 20, 20, 255),
        False,
    ),
    (
        "vehicles/road/bus",
        "Bus",
        "A big bus that carries many people.",
        "vehicles",
        90000.0,
        None,
        True,
    ),
    (
        "vehicles/road/bicycle",
        "Bicycle",
        "A bicycle with two wheels and pedals.",
        "vehicles",
        300.0,
        None,
        False,
    ),
    (
        "vehicles/air/airplane",
        "Airplane",
        "An airplane that flies through the sky.",
        "vehicles",
        None,
        None,
        False,
    ),
    ("food/fruit/apple", "Apple", "A sweet red fruit.", "food", 1.0, (190, 20, 20, 255), False),
    ("food/fruit/banana", "Banana", "A long yellow fruit.", "food", 0.5, None, False),
    ("food/baked/cake", "Cake", "A sweet cake with cream on top.", "food", 12.0, None, False),
    ("food/baked/bread", "Bread", "A loaf of bread baked this morning.", "food", 3.0, None, False),
    ("household/chair", "Chair", "A wooden chair to sit on.", "household", 45.0, None, False),
    ("household/lamp", "Lamp", "A lamp that lights up the room.", "household", 30.0, None, False),
]


def write_small_catalogue(folder: Path) -> Path:
    """``folder/items.jsonl`` with its media, built from :data:`ROWS`."""
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    items = []
    for item_id, title, description, category, price, colour, sound in ROWS:
        stem = item_id.replace("/", "_")
        extra: dict[str, Any] = {}
        if colour is not None:
            extra["image"] = png(media / f"{stem}.png", colour)
        if sound:
            extra["audio"] = [noise_wav(media / f"{stem}.wav", seconds=1.0)]
        items.append(
            Item(
                id=item_id,
                title=title,
                description=description,
                category=category,
                price=price,
                attributes={
                    "subcategory": item_id.split("/")[1],
                    "has_sound_effect": sound,
                },
                **extra,
            )
        )
    path = folder / "items.jsonl"
    write_jsonl(items, path, root=folder)
    return path


def build_small_store(folder: Path, cache_dir: Path) -> tuple[Settings, Store, Any]:
    """Settings, the indexed store and its models, all under ``folder``."""
    catalogue = write_small_catalogue(folder / "catalogue")
    settings = load_settings(
        cache_dir=cache_dir, data_dir=folder / "data", store_dir=folder / "store"
    )
    store, models = open_store(settings)
    report = Indexer(store, models, settings.index).run(load_catalogue(catalogue))
    assert not report.failed, report.failed
    return settings, store, models
