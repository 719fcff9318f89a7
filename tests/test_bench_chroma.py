"""`recagent bench chroma`: the synthetic store is the same whatever the batch size, the exact
reference search finds what it should, and a tiny run against embedded Chroma and a real
`chroma run` server writes sane figures whose filtered results match the generated data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexing.synthetic_store import (
    BLOCK,
    Query,
    SyntheticSpec,
    batches,
    exact_search,
    item_facts,
    make_queries,
)
from tests.conftest import recagent

SMALL = SyntheticSpec(items=2 * BLOCK + 500, clusters=20, categories=30, seed=7)


def test_the_data_does_not_depend_on_the_batch_size() -> None:
    one = list(batches(SMALL, 700))
    other = list(batches(SMALL, 2000))
    assert [len(b.ids) for b in one] == [700, 700, 700, 400]
    for name in ("ids", "metadatas", "image_ids"):
        assert [x for b in one for x in getattr(b, name)] == [
            x for b in other for x in getattr(b, name)
        ]
    assert np.array_equal(
        np.concatenate([b.text for b in one]), np.concatenate([b.text for b in other])
    )
    assert np.array_equal(
        np.concatenate([b.image for b in one]), np.concatenate([b.image for b in other])
    )
    ids = [x for b in one for x in b.ids]
    assert ids == [f"item-{n:08d}" for n in range(SMALL.items)]
    metas = [m for b in one for m in b.metadatas]
    assert item_facts(SMALL, 2345) == metas[2345]
    images = [x for b in one for x in b.image_ids]
    assert images == [i for i, m in zip(ids, metas, strict=True) if m["has_image"]]
    assert 0.1 < len(images) / SMALL.items < 0.3  # image_share 0.2


def test_vectors_are_unit_and_clustered() -> None:
    batch = next(batches(SMALL, 1000))
    assert np.allclose(np.linalg.norm(batch.text, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(batch.image, axis=1), 1, atol=1e-5)
    sims = batch.text @ batch.text.T
    # each item's nearest other item is far closer than a random pair (about 0 in 384-d)
    np.fill_diagonal(sims, -1)
    assert np.median(sims.max(axis=1)) > 0.4
    assert abs(float(np.median(sims[sims > -1]))) < 0.2


def test_exact_search_finds_a_stored_vector_first() -> None:
    queries = make_queries(SMALL, 3)
    stored = next(batches(SMALL, 3000))
    n = 1234
    probe = Query(
        stored.text[n],
        queries[0].image,
        stored.metadatas[n]["category"],
        stored.metadatas[n]["price"],
        stored.metadatas[n]["price"],
    )
    truth = exact_search(SMALL, [probe, *queries[1:]], 5, top_of=1)
    for kind in ("unfiltered", "category", "price"):
        assert truth.top[kind][0][0] == f"item-{n:08d}"
    category = stored.metadatas[n]["category"]
    assert truth.matching["category"][0] == sum(m["category"] == category for m in stored.metadatas)
    assert len(truth.top["unfiltered"]) == 1  # top_of=1: the other queries only count matches
    assert len(truth.matching["price"]) == 3


@pytest.mark.slow
def test_bench_chroma_on_both_backends(tmp_path: Path) -> None:
    out = tmp_path / "chroma.json"
    items, queries = 2000, 20
    result = recagent(
        "bench",
        "chroma",
        "--items",
        str(items),
        "--queries",
        str(queries),
        "--batch",
        "500",
        "--workdir",
        str(tmp_path),
        "--concurrency",
        "1",
        "--concurrency",
        "4",
        "--out",
        str(out),
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "embedded" in result.stdout and "server" in result.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("recagent-bench-chroma-")]
    figures = json.loads(out.read_text())
    spec = SyntheticSpec(**figures["spec"])
    assert spec.items == items
    images = sum(m["has_image"] for b in batches(spec, 1000, images=False) for m in b.metadatas)
    assert set(figures["backends"]) == {"embedded", "server"}
    for name, run in figures["backends"].items():
        assert run["count"] == {"text": items, "image": images}, name
        assert run["load"]["text"]["vectors"] == items
        assert run["load"]["image"]["vectors"] == images
        assert run["load"]["items_per_s"] > 0
        assert run["disk_bytes"]["total"] > 0 and run["disk_bytes"]["sqlite"] > 0
        assert run["memory"]["held_mb"] > 0 and run["memory"]["peak_mb"] > 0
        for kind, q in run["queries"].items():
            assert q["queries"] == queries, (name, kind)
            assert q["p95_ms"] >= q["p50_ms"] > 0, (name, kind)
            assert q["returned_mean"] > 0 and q["filter_violations"] == 0, (name, kind)
        assert run["queries"]["unfiltered"]["returned_mean"] == 50
        assert run["queries"]["unfiltered"]["recall_at_k"] > 0.5
        assert run["queries"]["category"]["recall_at_k"] > 0.9
        # filtered results, checked against the generated data rather than Chroma's metadata
        for sample in run["queries"]["category"]["samples"]:
            wanted = sample["where"]["category"]
            assert sample["ids"]
            for found in sample["ids"][:5]:
                assert item_facts(spec, int(found.removeprefix("item-")))["category"] == wanted
        for sample in run["queries"]["price"]["samples"]:
            low, high = (c["price"] for c in sample["where"]["$and"])
            for found in sample["ids"][:5]:
                price = item_facts(spec, int(found.removeprefix("item-")))["price"]
                assert low["$gte"] <= price <= high["$lte"]
    assert figures["backends"]["server"]["memory_of"] == "the server process (RSS)"
    for name, run in figures["backends"].items():  # queries/s with 1 and 4 client threads
        assert set(run["throughput"]) == {"unfiltered", "category"}, name
        for kind, levels in run["throughput"].items():
            assert set(levels) == {"1", "4"}, (name, kind)
            for level in levels.values():
                assert level["queries"] == queries and level["queries_per_s"] > 0
                assert level["p95_ms"] >= level["p50_ms"] > 0
    assert "unfiltered, 4 at once" in result.stdout
