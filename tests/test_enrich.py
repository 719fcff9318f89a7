"""Item knowledge (`recagent enrich`): the WordNet sense chosen by the item's own context, facts
stored one vector per field with their source, and the incremental, resumable run (real
WordNet, real MiniLM, real embedded Chroma)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from indexing.enrich import enrich
from indexing.knowledge import Fact, KnowledgeStore
from indexing.loaders import load_catalogue
from indexing.pipeline import Indexer
from indexing.records import Filters, StoredItem
from indexing.senses import SOURCE, WordNetSource
from indexing.store import Store, open_store
from tools.config import Settings
from tools.errors import ModelError
from tools.wordnet import open_wordnet

ROWS = [
    {"id": "animals/mammals/badger", "title": "Badger", "description": "A badger."},
    {"id": "animals/birds/duck", "title": "Duck", "description": "A duck."},
    {"id": "food/meat/duck", "title": "Duck", "description": "Roast duck for dinner."},
    {"id": "household/tools/wrench", "title": "Wrench", "description": "A wrench."},
    {"id": "symbols/zorblat", "title": "Zorblat", "description": "A zorblat."},
]


def _catalogue(folder: Path, rows: list[dict[str, str]]) -> Path:
    path = folder / "items.jsonl"
    for row in rows:
        row.setdefault("category", row["id"].split("/")[0])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _indexed(settings: Settings, rows: list[dict[str, str]], prune: bool = False) -> Store:
    store, models = open_store(settings)
    loaded = load_catalogue(_catalogue(settings.data_dir.parent, [dict(r) for r in rows]))
    assert not Indexer(store, models, settings.index).run(loaded, prune=prune).failed
    return store


@pytest.fixture
def text_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"models": settings.models.model_copy(update={"vision": "none"})}
    )


@pytest.fixture
def wordnet(text_settings: Settings) -> WordNetSource:
    _, models = open_store(text_settings)
    try:
        return WordNetSource(open_wordnet(text_settings.cache_dir), models.text_embedder.embed)
    except ModelError as exc:
        pytest.fail(f"WordNet is needed (scripts/setup.sh installs it): {exc}")


def test_the_items_context_chooses_the_sense(
    text_settings: Settings, wordnet: WordNetSource
) -> None:
    store = _indexed(text_settings, ROWS)
    items = store.all_items()
    chosen = wordnet.chooser.choose(items)
    assert "burrowing mammal" in chosen["animals/mammals/badger"].synset.definition()
    assert "swimming bird" in chosen["animals/birds/duck"].synset.definition()
    assert "flesh of a duck" in chosen["food/meat/duck"].synset.definition()  # not the bird
    assert "nut or bolt" in chosen["household/tools/wrench"].synset.definition()  # not an injury
    assert "symbols/zorblat" not in chosen  # no such word: no fact rather than a wrong one
    facts = {(f.item_id, f.field): f for f in wordnet.facts(items)}
    kind = facts[("animals/mammals/badger", "kind")]
    assert kind.source == SOURCE and "mammal" in kind.text and "carnivore" in kind.text
    assert facts[("animals/mammals/badger", "gloss")].text.startswith("badger: ")


class _Counting:
    """A source that records what it was asked and can fail on a chosen item."""

    name, version = "counting", "v1"

    def __init__(self, fail_on: str = "", stop_after: int = 0) -> None:
        self.asked: list[str] = []
        self.fail_on, self.stop_after = fail_on, stop_after

    def facts(self, items: Sequence[StoredItem]) -> list[Fact]:
        if self.stop_after and len(self.asked) >= self.stop_after:
            raise KeyboardInterrupt  # a kill between batches
        self.asked += [i.id for i in items]
        if any(i.id == self.fail_on for i in items):
            raise ValueError("the source broke")
        return [Fact(i.id, "note", f"{i.title} is noted", self.name) for i in items]


def test_enrichment_is_incremental_resumable_and_prunes(text_settings: Settings) -> None:
    store = _indexed(text_settings, ROWS)
    killed = _Counting(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        enrich(store, [killed], batch=2)
    assert len(killed.asked) == 2  # one batch written before the kill
    resumed = _Counting()
    report = enrich(store, [resumed], batch=2)
    assert sorted(resumed.asked) == sorted(r["id"] for r in ROWS[2:])  # only the rest
    assert report.sources["counting"].unchanged == 2
    again = _Counting()
    assert enrich(store, [again]).sources["counting"].asked == 0 and not again.asked
    changed = [dict(r) for r in ROWS[1:]]
    changed[0]["description"] = "A duck on a pond."
    store = _indexed(text_settings, changed, prune=True)  # the badger leaves, the duck changes
    after = _Counting()
    report = enrich(store, [after])
    assert after.asked == ["animals/birds/duck"]
    assert report.pruned == 1
    knowledge = KnowledgeStore(store)
    assert "animals/mammals/badger" not in knowledge.item_ids()
    assert knowledge.facts(["food/meat/duck"])["food/meat/duck"][0].text == "Duck is noted"


def test_a_failing_batch_costs_that_batch_only(text_settings: Settings) -> None:
    store = _indexed(text_settings, ROWS)
    broken = _Counting(fail_on="animals/mammals/badger")
    report = enrich(store, [broken], batch=1).sources["counting"]
    assert report.asked == len(ROWS) - 1 and len(report.failed) == 1
    assert "animals/mammals/badger" in report.failed[0] and "broke" in report.failed[0]
    retry = _Counting()
    enrich(store, [retry], batch=1)
    assert retry.asked == ["animals/mammals/badger"]  # asked again next time


class _Sloppy(_Counting):
    """A source that also answers for items it was not asked about, and twice for one."""

    def facts(self, items: Sequence[StoredItem]) -> list[Fact]:
        own = super().facts(items)
        return [*own, *own[:1], Fact("not/asked", "note", "stray", self.name)]


def test_a_sources_stray_or_repeated_facts_are_dropped(text_settings: Settings) -> None:
    store = _indexed(text_settings, ROWS)
    report = enrich(store, [_Sloppy()], batch=2).sources["counting"]
    assert report.asked == len(ROWS) and not report.failed
    knowledge = KnowledgeStore(store)
    assert "not/asked" not in knowledge.item_ids()
    assert all(len(facts) == 1 for facts in knowledge.facts([r["id"] for r in ROWS]).values())


def test_each_field_is_searched_on_its_own_within_filters(
    text_settings: Settings, wordnet: WordNetSource
) -> None:
    store = _indexed(text_settings, ROWS)
    report = enrich(store, [wordnet]).sources[SOURCE]
    assert report.with_facts == 4 and report.facts == 8
    knowledge = KnowledgeStore(store)
    digging = knowledge.search("an animal that digs burrows", 3, ["gloss"])
    assert digging[0].id == "animals/mammals/badger" and digging[0].matched == "knowledge"
    tools = knowledge.search("hand tool", 1, ["kind"], Filters(category="household"))
    assert [h.id for h in tools] == ["household/tools/wrench"]
    assert knowledge.search("hand tool", 3, ["kind"], Filters(category="food"))[0].id == (
        "food/meat/duck"
    )
    assert knowledge.search("hand tool", 3, []) == []
