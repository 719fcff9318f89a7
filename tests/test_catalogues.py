"""The two real catalogues: Tux Paint stamps (the demo) and MovieLens-100K items."""

from pathlib import Path

from indexing import movielens
from indexing.loaders import load_catalogue


def test_tuxpaint_catalogue(demo_catalogue: Path) -> None:
    result = load_catalogue(demo_catalogue)
    assert result.errors == []
    items = result.items
    assert 900 <= len(items) <= 1000  # ~952 stamps with an English description
    by_id = {i.id: i for i in items}
    assert len(by_id) == len(items)
    assert sum(1 for i in items if i.image) >= 940
    assert sum(1 for i in items if i.image and i.image.suffix == ".svg") >= 100
    assert sum(1 for i in items if i.attributes["has_spoken_description"]) >= 60
    assert sum(1 for i in items if i.attributes["has_sound_effect"]) >= 120
    assert {"animals", "food", "vehicles", "symbols"} <= {i.category for i in items}
    quarter = by_id["symbols/money/us/coins/025quarter"]
    assert quarter.title == "Quarter"
    assert quarter.description == "A US 25 cent piece ($.25) called a quarter."
    root = demo_catalogue.parent.resolve()
    assert all(
        p.is_relative_to(root) and p.is_file()
        for i in items
        for p in [*i.audio] + ([i.image] if i.image else [])
    )
    # Idempotent: installing again rewrites the same file.
    from indexing import tuxpaint

    before = demo_catalogue.read_bytes()
    tuxpaint.install(demo_catalogue.parent)
    assert demo_catalogue.read_bytes() == before


def test_movielens_items_enriched() -> None:
    items = movielens.load_items()
    assert len(items) == 1682
    enriched = [i for i in items if i.metadata["enriched"]]
    assert len(enriched) > 1000
    toy_story = items[0]
    assert toy_story.id == "1" and toy_story.title == "Toy Story"
    assert toy_story.attributes["year"] == 1995
    assert toy_story.attributes["director"] == "John Lasseter"
    assert toy_story.attributes["genres"] == ["Animation", "Children's", "Comedy"]
    assert "Lasseter" in toy_story.description


def test_title_normalisation() -> None:
    assert movielens.normalise_title("Usual Suspects, The") == "the usual suspects"
    assert movielens.normalise_title("Seven (Se7en)") == "seven"
    assert movielens.normalise_title("Amélie") == "amelie"
