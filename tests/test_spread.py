"""Near-duplicates spread apart in a ranked list (real MiniLM vectors of real demo titles)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agent.spread import spread
from indexing.store import open_store
from tools.config import Settings, TurnSettings

THRESHOLD = TurnSettings().near_duplicate


@pytest.fixture(scope="module")
def embed(tmp_path_factory: pytest.TempPathFactory, prepared_models: Any) -> Any:
    from tools.config import load_settings

    folder = tmp_path_factory.mktemp("spread")
    settings: Settings = load_settings(cache_dir=prepared_models, data_dir=folder)
    _, models = open_store(settings)
    return models.text_embedder.embed


def _vectors(embed: Any, texts: dict[str, str]) -> dict[str, np.ndarray]:
    rows = embed(list(texts.values()))
    return {item_id: rows[n] for n, item_id in enumerate(texts)}


def test_a_twin_moves_behind_the_next_different_item(embed: Any) -> None:
    texts = {
        "s1": "Strawberry",
        "s2": "Strawberry2",
        "b": "Digital thermometer",
        "p": "Measuring tape",
    }
    ids = list(texts)
    assert spread(ids, ids, _vectors(embed, texts), 3, THRESHOLD) == ["s1", "b", "p"]
    # nothing else left: the twin comes back, in its place after the others
    assert spread(ids, ids, _vectors(embed, texts), 4, THRESHOLD) == ["s1", "b", "p", "s2"]


def test_different_things_of_one_kind_are_not_duplicates(embed: Any) -> None:
    texts = {
        "a": "A filled",
        "b": "B filled",
        "g": "Apple green",
        "s": "Apple granny smith",
        "t": "Mercury thermometer",
        "d": "Digital thermometer",
    }
    ids = list(texts)
    assert spread(ids, ids, _vectors(embed, texts), len(ids), THRESHOLD) == ids


def test_items_without_vectors_keep_their_place() -> None:
    ids = ["x", "y", "z"]
    one = np.ones(4, dtype=np.float32)
    assert spread(ids, ids, {"x": one}, 2, 0.9) == ["x", "y"]
    assert spread(ids, ids, {"x": one, "y": one * 3}, 2, 0.9) == ["x", "z"]


def test_a_twin_is_not_passed_by_a_much_weaker_item(embed: Any) -> None:
    texts = {"l1": "Iso lorry3", "l2": "Iso lorry1", "c": "100loonie", "k": "Kite"}
    ids = list(texts)
    vectors = _vectors(embed, texts)
    # the coin is a fifth less like the request than the second lorry: the lorry stays
    assert spread(ids, ids, vectors, 3, THRESHOLD, [0.34, 0.33, 0.26, 0.19]) == ["l1", "l2", "c"]
    # nearly as relevant: the coin goes first and the twin follows
    assert spread(ids, ids, vectors, 3, THRESHOLD, [0.34, 0.33, 0.32, 0.19]) == ["l1", "c", "l2"]
