"""What an exclusion is checked against (agent/understanding.py): the item's own words, the
kind its title's last word ends in ("basketball" is a ball, a "football helmet" is not), and
what the stored knowledge says of it (WordNet's kind and gloss, given to each candidate by
``note_known`` from the real knowledge collection)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.buffer import Candidate
from agent.request_types import Request
from agent.toolkit import note_known
from agent.understanding import Understanding
from agent.vocabulary import Vocabulary
from agent.words import compound_heads
from indexing.knowledge import Fact, KnowledgeStore
from indexing.records import Taxonomy
from tests.small_store import build_small_store

TAXONOMY = Taxonomy(
    categories={"sports": 5, "town": 5, "animals": 5},
    subcategories={"town": {"houses": 5}, "animals": {"mammals": 5}},
    attributes={"subcategory": 15},
)


def _item(item_id: str, title: str, known: str = "") -> Candidate:
    category, _, rest = item_id.partition("/")
    sub = rest.rsplit("/", 1)[0] if "/" in rest else category
    facts = {
        "title": title,
        "description": f"A {title.lower()}.",
        "category": category,
        "attributes": {"subcategory": sub},
    }
    return Candidate(item_id, title, category, facts, known=known)


def _allowed(terms: list[str]) -> Any:
    request = Request(message="m", query="m", exclude_terms=terms)
    return Understanding(Vocabulary(TAXONOMY)).allowed(request)


def test_compounds_name_their_kind_last() -> None:
    assert "ball" in compound_heads("basketball")
    assert "flower" in compound_heads("sunflowers")
    assert "berri" in compound_heads("strawberries")
    assert not any(len(h) < 4 for w in ["elephant", "magpie"] for h in compound_heads(w))


def test_an_exclusion_reaches_a_compound_title_but_not_its_modifier() -> None:
    allowed = _allowed(["ball"])
    assert not allowed(_item("sports/basketball", "Basketball"))
    assert not allowed(_item("sports/cricketball", "Cricket ball"))
    assert allowed(_item("sports/football_helmet", "Football helmet"))
    assert allowed(_item("animals/mammals/elephant", "Elephant")) and _allowed(["ant"])(
        _item("animals/mammals/elephant", "Elephant")
    )


def test_an_exclusion_reaches_what_the_knowledge_says() -> None:
    allowed = _allowed(["religi"])  # "nothing religious"
    monastery = "monastery: the residence of a religious community"
    assert not allowed(_item("town/houses/monastery", "Monastery", known=monastery))
    assert allowed(_item("town/houses/monastery", "Monastery"))  # the catalogue alone: no
    assert allowed(_item("town/houses/windmill", "Windmill", known="windmill: a mill"))


@pytest.fixture(scope="module")
def small(prepared_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_small_store(tmp_path_factory.mktemp("exclusion-store"), prepared_models)


def test_the_candidates_learn_what_the_stored_knowledge_says(small: Any) -> None:
    _, store, _ = small
    assert KnowledgeStore.existing(store) is None  # nothing enriched: nothing is created
    knowledge = KnowledgeStore(store)
    items = store.items(["animals/farm/cow", "animals/birds/owl"])
    facts = [
        Fact("animals/farm/cow", "kind", "cow, cattle, bovine, ruminant, mammal", "wordnet"),
        Fact("animals/farm/cow", "gloss", "cow: mature female of mammals", "wordnet"),
        Fact("animals/birds/owl", "gloss", "owl: nocturnal bird of prey", "wordnet"),
    ]
    knowledge.replace("wordnet", "1", list(items.values()), {}, facts)
    cow, owl, pig = (
        _item(i, t)
        for i, t in [
            ("animals/farm/cow", "Cow"),
            ("animals/birds/owl", "Owl"),
            ("animals/farm/pig", "Pig"),
        ]
    )
    note_known([cow, owl, pig], knowledge, ["kind"])
    assert "mammal" in cow.known and owl.known == "" and pig.known == ""
    note_known([cow, owl], knowledge, ["kind", "gloss"])
    assert "nocturnal" in owl.known
    assert KnowledgeStore.existing(store) is not None
