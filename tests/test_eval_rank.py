"""Ranking evaluation: metrics on hand-worked cases, the protocol on toy data, and the ML-100K
baselines against the reference figures measured for product.md."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from eval import baselines
from eval.metrics import coverage, metrics_from_ranks, rank_of
from eval.movielens import k_core, leave_one_out, load_split, matrix
from eval.rank import RankConfig, evaluate


def test_metrics_by_hand() -> None:
    m = metrics_from_ranks([1, 3, 12], ks=(1, 5, 10))
    assert m["HR@1"] == pytest.approx(1 / 3)
    assert m["HR@5"] == pytest.approx(2 / 3) and m["Recall@5"] == m["HR@5"]
    assert m["HR@10"] == pytest.approx(2 / 3)
    assert m["NDCG@1"] == pytest.approx(1 / 3)
    assert m["NDCG@5"] == pytest.approx((1 + 1 / math.log2(4)) / 3)  # (1 + 0.5) / 3 = 0.5
    assert m["NDCG@5"] == pytest.approx(0.5)
    assert m["MRR"] == pytest.approx((1 + 1 / 3 + 1 / 12) / 3)
    assert coverage([[0, 1], [1, 2]], 10) == pytest.approx(0.3)


def test_rank_of_excludes_seen_and_breaks_ties_by_index() -> None:
    scores = np.array([0.9, 0.5, 0.7, 0.5, 0.1])
    assert rank_of(scores, 2, excluded=[]) == 2  # only 0.9 is ahead
    assert rank_of(scores, 2, excluded=[0]) == 1  # the seen item is out
    assert rank_of(scores, 1, excluded=[]) == 3  # tie with item 3: the lower index goes first
    assert rank_of(scores, 3, excluded=[]) == 4
    assert rank_of(scores, 3, excluded=[1]) == 3


def test_k_core_and_leave_one_out_on_toy_data() -> None:
    rows = [("u1", str(i), float(10 + i), i) for i in range(1, 6)]  # u1: items 1..5
    # u2: all in the same second, written to the file in the order 5, 4, 3, 2, 1.
    rows += [("u2", str(i), 5.0, 10 + n) for n, i in enumerate((5, 4, 3, 2, 1))]
    rows += [(f"u{n}", str(i), 1.0, 100 + 10 * n + i) for n in (3, 4, 5) for i in range(1, 6)]
    rows += [("u6", "1", 1.0, 999), ("u6", "9", 1.0, 1000)]  # u6 and item 9: too few
    kept = k_core(rows, 5)
    assert {r[0] for r in kept} == {"u1", "u2", "u3", "u4", "u5"}
    split = leave_one_out(kept)
    first = split.user_ids.index("u1")
    assert split.item_ids[split.test[first]] == "5" and split.item_ids[split.valid[first]] == "4"
    second = split.user_ids.index("u2")
    # Same-second ties keep file row order: u2's rows were written 5, 4, 3, 2, 1.
    assert split.item_ids[split.test[second]] == "1" and split.item_ids[split.valid[second]] == "2"
    assert split.history(second, "test") == split.train[second] + [split.valid[second]]
    x = matrix(split, "valid")
    assert x[second].sum() == 3 and x[second, split.valid[second]] == 0


def test_ease_recovers_a_simple_pattern() -> None:
    # Items 0 and 1 always go together; a user with item 0 should get item 1 first.
    x = np.array(
        [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 0], [1, 0, 0, 0]], dtype=np.float32
    )
    scores = baselines.ease(x, lam=1.0)
    assert scores[4, 1] > scores[4, 2] and scores[4, 1] > scores[4, 3]
    knn = baselines.item_knn(x)
    assert knn[4, 1] == knn[4].max()
    assert baselines.popularity(x)[0].tolist() == [4.0, 3.0, 2.0, 1.0]


@pytest.fixture(scope="module")
def ml100k():  # type: ignore[no-untyped-def]
    return load_split()


def test_ml100k_protocol(ml100k) -> None:  # type: ignore[no-untyped-def]
    assert (ml100k.n_users, ml100k.n_items) == (943, 1349)
    assert all(len(t) >= 3 for t in ml100k.train)


@pytest.mark.parametrize(
    ("name", "scorer", "ndcg10", "recall10"),
    [
        ("popularity", baselines.popularity, 0.0452, 0.0870),
        ("item-kNN", baselines.item_knn, 0.0572, 0.1103),
        ("EASE", baselines.ease, 0.0745, 0.1506),
    ],
)
def test_baselines_match_the_reference_figures(ml100k, name, scorer, ndcg10, recall10) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(ml100k, scorer(matrix(ml100k, "test")), RankConfig())
    assert round(result["full"]["NDCG@10"], 4) == ndcg10, name
    assert round(result["full"]["Recall@10"], 4) == recall10, name
    sampled = result["sampled_99"]
    assert sampled["HR@10"] > result["full"]["HR@10"]  # 99 negatives are easier than all items


def test_eval_rank_command_writes_results(tmp_path: Path, prepared_models: Path) -> None:
    from tests.conftest import recagent

    out = tmp_path / "rank"
    result = recagent(
        "eval",
        "rank",
        "--out",
        str(out),
        "--limit",
        "100",
        "--epochs",
        "2",
        "--seq-len",
        "50",
        "--dropout",
        "0.2",
        "--no-rerank",
        "--save",
        "--save-collab",
        str(tmp_path / "collab"),
        env={"RECAGENT_CACHE_DIR": str(prepared_models), "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    import json

    report = json.loads((out / "results.json").read_text())
    assert list(report["results"]) == [
        "popularity",
        "item-kNN (cosine)",
        "EASE (lambda 100)",
        "SASRec (max_len 50, dropout 0.2, 2 epochs)",
        "embedding-only (MiniLM)",
        "recagent: fusion (previous design)",
        "recagent: learned ranker",
    ]
    assert report["config"]["limit"] == 100 and "row order" in report["split"]["ties"]
    assert report["tuning"]["grid_points"] == 240 and "rerank" not in report["tuning"]
    trial = report["sasrec"]["trials"][0]  # the training curve is in the results
    assert len(report["sasrec"]["trials"]) == 1 and trial["curve"][0]["epoch"] == 2
    assert report["ranker"]["training"]["folds"] == 5 and report["ranker"]["mean_pool_size"] > 100
    assert set(report["ranker"]["importance_gain"]) == set(report["ranker"]["features"])
    assert {
        "SASRec on train (grid, early stopping on validation)",
        "learned ranker (trained on validation)",
    } <= set(report["seconds"])
    assert "learned ranker (trained on validation):" in result.stdout  # each phase's time
    md = (out / "results.md").read_text()
    assert "| EASE (lambda 100) |" in md and "Tuned on validation only" in md
    assert "Time per phase" in md and "LightGBM LambdaRank" in md
    assert (out / "ndcg.png").stat().st_size > 10_000
    assert (out / "sasrec-curve.png").stat().st_size > 5_000
    from tools.collaborative import CollabModel

    agent_model = CollabModel.load(tmp_path / "collab")  # trained on all interactions
    assert agent_model.alpha == report["tuning"]["alpha"] and len(agent_model.item_ids) == 1349
    assert agent_model.ranker is not None  # the agent ranks with the same ranker
    ranked = agent_model.recommend(agent_model.item_ids[:5], 3)
    assert len(ranked) == 3 and set(ranked[0].contributions) == set(report["ranker"]["features"])


def _atomic_dataset(folder: Path) -> tuple[Path, Path]:
    """A small dataset in RecBole's atomic format: 60 users with a taste for one of three
    groups of items, so the collaborative systems have something to learn."""
    import numpy as np

    rng = np.random.default_rng(0)
    inter, items = folder / "toy.inter", folder / "toy.item"
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(60):
        group = user % 3
        picks = rng.choice(np.arange(group * 20, group * 20 + 20), size=12, replace=False)
        lines += [f"u{user}\ti{item}\t4\t{1000 + t}" for t, item in enumerate(picks)]
    inter.write_text("\n".join(lines) + "\n")
    kinds = ["space adventure", "garden flowers", "farm animals"]
    rows = ["item_id:token\ttitle:token_seq\tgenre:token_seq"]
    rows += [f"i{n}\tThing {n}\t{kinds[n // 20]}" for n in range(60)]
    items.write_text("\n".join(rows) + "\n")
    return inter, items


def test_any_dataset_by_path(tmp_path: Path, prepared_models: Path) -> None:
    from eval.datasets import load_path_dataset
    from tests.conftest import recagent
    from tools.errors import InputError

    inter, items = _atomic_dataset(tmp_path)
    loaded = load_path_dataset(inter, items)
    assert loaded.name == "toy" and loaded.split.n_users == 60 and loaded.split.n_items == 60
    assert loaded.texts[0].startswith("Thing") and "genre:" in loaded.texts[0]
    bad = tmp_path / "bad.inter"
    bad.write_text("user\titem\n1\t2\n")
    with pytest.raises(InputError, match="no 'user_id' column"):
        load_path_dataset(bad)
    out = tmp_path / "rank"
    args = ("eval", "rank", "--inter", str(inter), "--items", str(items), "--out", str(out))
    result = recagent(
        *args,
        "--epochs",
        "1",
        "--seq-len",
        "8",
        "--dropout",
        "0.2",
        "--no-rerank",
        env={"RECAGENT_CACHE_DIR": str(prepared_models)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "results.json").read_text())
    assert report["dataset"] == "toy" and report["split"]["items"] == 60
    assert report["agent_model"] is None  # only asked for, never by default on another dataset
    assert (out / "results.md").read_text().startswith("# Ranking on toy")
    significance = report["significance"]  # every report: the pipeline against the best baseline
    assert significance["best_baseline"] in report["results"]
    test = significance["systems"]["recagent: learned ranker"]
    assert test["ci95_low"] <= test["ndcg10_difference"] <= test["ci95_high"]
    assert "95% interval" in (out / "results.md").read_text()
    saved = json.loads((out / "ranks.json").read_text())  # per-user ranks, for later runs
    assert len(saved["users"]) == 60 and len(saved["ranks"]["popularity"]) == 60
    missing = recagent("eval", "rank", "--inter", str(tmp_path / "nope.inter"), "--no-rerank")
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_atomic_loader_keeps_ties_in_row_order_applies_k_core_and_needs_no_ratings(
    tmp_path: Path,
) -> None:
    from eval.datasets import load_path_dataset

    inter = tmp_path / "plain.inter"
    lines = ["item_id:token\ttimestamp:float\tuser_id:token"]  # any column order, no rating
    for user in ("a", "b", "c", "d", "e"):
        lines += [f"i{n}\t{100 + n}\t{user}" for n in range(4)]
        # the last two in the same second, written i5 then i4: row order says i4 is the test item
        lines += [f"i5\t200\t{user}", f"i4\t200\t{user}"]
    lines += ["i0\t1\tf", "i1\t2\tf", "i2\t3\tf", "i3\t4\tf"]  # f: four, below 5-core
    lines += ["rare\t300\ta"]  # an item only one user has: removed, then a still has six
    inter.write_text("\n".join(lines) + "\n")
    loaded = load_path_dataset(inter)
    split = loaded.split
    assert split.user_ids == ["a", "b", "c", "d", "e"] and "rare" not in split.item_ids
    assert split.n_items == 6 and split.meta["interactions"] == 30
    for user in range(5):
        assert split.item_ids[split.test[user]] == "i4"  # same second: the later row
        assert split.item_ids[split.valid[user]] == "i5"
        assert [split.item_ids[i] for i in split.train[user]] == ["i0", "i1", "i2", "i3"]
    assert loaded.titles == split.item_ids  # without an item file an item's title is its id


def test_min_rating_keeps_what_users_liked_and_needs_a_rating_column(tmp_path: Path) -> None:
    from eval.datasets import load_path_dataset, read_inter
    from tools.errors import InputError

    rated = tmp_path / "rated.inter"
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    rows += [f"u{u}\ti{i}\t{5 if i % 2 else 2}\t{i}" for u in range(6) for i in range(12)]
    rated.write_text("\n".join(rows) + "\n")
    liked = read_inter(rated, min_rating=4)
    assert len(liked) == 36 and all(int(item[1:]) % 2 for _, item, _, _ in liked)
    loaded = load_path_dataset(rated, min_rating=4)
    assert loaded.split.n_items == 6 and loaded.name == "rated, ratings >= 4"
    plain = tmp_path / "plain.inter"
    plain.write_text("user_id:token\titem_id:token\ttimestamp:float\nu\ti\t1\n")
    with pytest.raises(InputError, match="no 'rating' column"):
        read_inter(plain, min_rating=4)
