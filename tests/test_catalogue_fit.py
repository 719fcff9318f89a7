"""A wish the catalogue cannot meet at all (sound from a catalogue without audio, a price bound
where no item has a price) is left out of the turn with a notice that says so, instead of
filtering every item away: a film catalogue asked for "a film with a soundtrack" still answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.conversation import Conversation
from agent.profile import UserProfile
from agent.recommender import Recommender
from agent.request_types import Applied, Request
from agent.understanding import Understanding
from indexing.loaders import load_catalogue, write_jsonl
from indexing.pipeline import Indexer
from indexing.records import StoredItem, Taxonomy
from indexing.schema import Item
from indexing.store import open_store
from tests.small_store import build_small_store
from tools.config import TurnSettings, load_settings

FILMS = [
    ("f1", "Night Train", "A crime thriller about a robbery on a night train.", "Thriller"),
    ("f2", "Harbour Lights", "A crime drama set in a fishing town.", "Drama"),
    ("f3", "The Laughing Cow", "A comedy about a farmer and his cow.", "Comedy"),
    ("f4", "Deep Space", "A science fiction film about a lost crew.", "Sci-Fi"),
]


def _stored(audio: bool, price: float | None, sound_attribute: bool = False) -> StoredItem:
    attributes = {"has_sound_effect": True} if sound_attribute else {}
    facts = {"price": price, "has_audio": audio, "attributes": attributes}
    return StoredItem("x", "X", "films", facts)


def test_the_taxonomy_counts_items_with_audio_and_with_a_price() -> None:
    taxonomy = Taxonomy.of([_stored(True, None), _stored(False, 3.0), _stored(False, None)])
    assert taxonomy.with_audio == 1 and taxonomy.with_price == 1
    assert Taxonomy.of([_stored(False, None)]).with_audio == 0


def _sound_and_price() -> Request:
    applied = [
        Applied(kind="sound", value="has a sound effect", source="rule", words="soundtrack"),
        Applied(kind="max_price", value="5", source="rule", words="under $5"),
    ]
    return Request(message="m", query="m", needs_sound=True, max_price=5.0, applied=applied)


def test_wishes_no_item_can_meet_are_left_out_with_a_notice() -> None:
    bare = Understanding.of(Taxonomy(categories={"films": 3}), None, 0.75)
    request, notices = bare.within_catalogue(_sound_and_price())
    assert not request.needs_sound and request.max_price is None
    assert not [a for a in request.applied if a.kind in {"sound", "max_price"}]
    assert len(notices) == 2
    assert any("sound" in n for n in notices) and any("price" in n for n in notices)


def test_wishes_some_item_can_meet_are_kept() -> None:
    full = Taxonomy(categories={"films": 3}, with_audio=1, with_price=2)
    request, notices = Understanding.of(full, None, 0.75).within_catalogue(_sound_and_price())
    assert request.needs_sound and request.max_price == 5.0 and not notices
    # items that say whether they carry a sound effect answer the wish by that attribute
    by_attribute = Taxonomy(categories={"films": 3}, attributes={"has_sound_effect": 3})
    kept, _ = Understanding.of(by_attribute, None, 0.75).within_catalogue(_sound_and_price())
    assert kept.needs_sound


@pytest.fixture(scope="module")
def films(prepared_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    folder = tmp_path_factory.mktemp("films")
    items = [
        Item(id=i, title=t, description=d, category="films", attributes={"subcategory": g})
        for i, t, d, g in FILMS
    ]
    path = folder / "items.jsonl"
    write_jsonl(items, path, root=folder)
    settings = load_settings(
        cache_dir=prepared_models, data_dir=folder / "data", store_dir=folder / "store"
    )
    store, models = open_store(settings)
    assert not Indexer(store, models, settings.index).run(load_catalogue(path)).failed
    turn = TurnSettings(reading_llm=False)
    return Recommender.build(settings.model_copy(update={"turn": turn}), store, models, None)


@pytest.mark.parametrize(
    ("message", "word"),
    [
        ("a crime film with a great soundtrack I can hear", "sound"),
        ("a crime thriller under $5", "price"),
    ],
)
def test_a_film_catalogue_still_answers(films: Recommender, message: str, word: str) -> None:
    convo = Conversation("u", UserProfile(user_id="u"))
    result = films.respond(convo, message, k=3, explain=False)
    assert result.recommendations, result.notices
    assert any(word in n for n in result.notices), result.notices
    assert result.recommendations[0].item_id in {"f1", "f2"}


def test_a_catalogue_with_prices_keeps_the_bound(
    prepared_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings, store, models = build_small_store(tmp_path_factory.mktemp("fit"), prepared_models)
    turn = TurnSettings(reading_llm=False)
    recommender = Recommender.build(settings.model_copy(update={"turn": turn}), store, models, None)
    convo = Conversation("u", UserProfile(user_id="u"))
    result = recommender.respond(convo, "some fruit under $0.75", k=3, explain=False)
    assert [r.item_id for r in result.recommendations] == ["food/fruit/banana"]
    assert not any("price" in n for n in result.notices)
