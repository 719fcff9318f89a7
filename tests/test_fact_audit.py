"""The hand audit of written facts: `recagent eval audit-sample` draws a reproducible sample of
one source's stored facts, `recagent eval audit-score` scores the judged file (real MiniLM, real
embedded Chroma)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.fact_audit import BAR, draw, relevant_items, score
from indexing.knowledge import Fact, KnowledgeStore
from indexing.loaders import load_catalogue
from indexing.pipeline import Indexer
from indexing.store import open_store
from tests.conftest import recagent
from tools.config import Settings
from tools.errors import InputError

FACTS = {
    f"item{n}": [
        Fact(f"item{n}", "lives", f"Item {n} lives in: place {n}", "llm:m"),
        Fact(f"item{n}", "eats", f"Item {n} eats: food {n}", "llm:m"),
        Fact(f"item{n}", "kind", f"kind {n}", "wordnet"),
        Fact(f"item{n}", "uses", "", "llm:m"),  # an empty marker is no fact
    ]
    for n in range(10)
}


def _facts_of(ids: list[str]) -> dict[str, list[Fact]]:
    return {i: FACTS[i] for i in ids if i in FACTS}


def test_the_sample_is_whole_items_of_one_source_in_a_seeded_order() -> None:
    first = draw(FACTS, _facts_of, "llm:m", facts=5, seed=7)
    assert first == draw(list(reversed(FACTS)), _facts_of, "llm:m", facts=5, seed=7)
    assert len(first) == 6  # whole items: 3 items of 2 facts reach 5
    assert {f.source for f in first} == {"llm:m"} and all(f.text for f in first)
    items = [f.item_id for f in first]
    assert all(items.count(i) == 2 for i in items)
    assert draw(FACTS, _facts_of, "llm:m", facts=5, seed=8) != first
    assert len(draw(FACTS, _facts_of, "llm:m", facts=1000, seed=7)) == 20  # all there is
    assert draw(FACTS, _facts_of, "llm:other", facts=5, seed=7) == []


def test_relevant_items_follow_the_labels_prefixes() -> None:
    ids = ["animals/birds/penguin", "animals/birds/duck", "food/fruit/banana", "space/moon"]
    turns = [["animals/birds/penguin"], ["food/"], ["animals/birds/penguin"]]
    assert relevant_items(ids, turns) == ["animals/birds/penguin", "food/fruit/banana"]


def _judged(path: Path, verdicts: list[object], source: str = "llm:m") -> Path:
    rows = [
        {"item_id": f"i{n % 2}", "text": f"fact {n}", "source": source, "true": v}
        for n, v in enumerate(verdicts)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_judged_file_scores_its_precision(tmp_path: Path) -> None:
    result = score(_judged(tmp_path / "a.jsonl", [True, True, True, False]))
    assert (result.source, result.facts, result.true, result.items) == ("llm:m", 4, 3, 2)
    assert result.precision == 0.75 and not result.on_by_default
    assert score(_judged(tmp_path / "b.jsonl", [True] * 10)).precision >= BAR


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"source": "s", "true": true}\n{"source": "s", "true": null}\n', "line 2: not judged"),
        ('{"source": "s", "true": "yes"}\n', "line 1: not judged"),
        ("not json\n", "line 1: not JSON"),
        ("\n", "no judged facts"),
        ('{"source": "a", "true": true}\n{"source": "b", "true": false}\n', "several sources"),
    ],
)
def test_a_file_not_fully_judged_is_refused(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "judged.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=problem):
        score(path)


def test_audit_sample_then_score_on_a_real_store(settings: Settings, tmp_path: Path) -> None:
    rows = [  # ids the dev half's labels name
        {"id": "animals/birds/penguin", "title": "Penguin", "description": "A penguin."},
        {"id": "food/fruit/banana", "title": "Banana", "description": "A banana."},
        {"id": "zz/not/labelled", "title": "Stray", "description": "No turn asks for it."},
    ]
    catalogue = tmp_path / "items.jsonl"
    catalogue.write_text("".join(json.dumps({**r, "category": r["id"][:2]}) + "\n" for r in rows))
    store, models = open_store(settings)
    assert not Indexer(store, models, settings.index).run(load_catalogue(catalogue)).failed
    items = list(store.items([r["id"] for r in rows]).values())
    KnowledgeStore(store).replace(
        "llm:m",
        "v1",
        items,
        {},
        [
            Fact("animals/birds/penguin", "lives", "Penguin lives in: Antarctica", "llm:m"),
            Fact("food/fruit/banana", "looks", "Banana looks: blue", "llm:m"),
            Fact("zz/not/labelled", "lives", "Stray lives in: nowhere", "llm:m"),
        ],
    )
    out = tmp_path / "audit" / "sample.jsonl"
    store_dir = str(settings.resolved_store_dir)
    args = ["eval", "audit-sample", "--store", store_dir, "--source", "llm:m", "--out", str(out)]
    done = recagent(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    drawn = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["item_id"] for r in drawn) == ["animals/birds/penguin", "food/fruit/banana"]
    assert {r["title"] for r in drawn} == {"Penguin", "Banana"}
    assert all(r["true"] is None for r in drawn)

    again = recagent(*args)  # judged work is never overwritten
    assert again.returncode != 0 and "exists" in again.stdout + again.stderr
    none = recagent(*args[:-1], str(tmp_path / "other.jsonl"), "--source", "llm:nobody")
    assert none.returncode != 0 and "no facts from 'llm:nobody'" in none.stdout + none.stderr

    unjudged = recagent("eval", "audit-score", str(out))
    assert unjudged.returncode != 0 and "not judged" in unjudged.stdout + unjudged.stderr
    for row in drawn:
        row["true"] = row["item_id"] == "animals/birds/penguin"
    out.write_text("".join(json.dumps(r) + "\n" for r in drawn))
    scored = recagent("eval", "audit-score", str(out))
    assert scored.returncode == 0, scored.stdout + scored.stderr
    assert "50%" in scored.stdout and "llm:m" in scored.stdout
