"""The collaborative retriever: SASRec learns an order, EASE neighbours, save/load, discovery,
and the agent using it (retrieval by history, similar_items, fusion by rank)."""

import json
from pathlib import Path

import numpy as np
import pytest

from tools.collaborative import CollabModel, discover, ease_weights, standardise, tuned_fusion
from tools.sasrec import SASRec, SASRecConfig

SMALL = SASRecConfig(hidden=16, blocks=1, heads=1, max_len=8, dropout=0.0, epochs=60, lr=1e-2)


def cycles(n_users: int, n_items: int, length: int) -> list[list[int]]:
    """Every user walks 0 -> 1 -> 2 -> ... -> n_items-1 -> 0, from a different start."""
    return [[(start + t) % n_items for t in range(length)] for start in range(n_users)]


def test_sasrec_learns_the_next_item_and_survives_save_load(tmp_path: Path) -> None:
    model = SASRec.fit(cycles(12, 6, 7), 6, SMALL)
    scores = model.scores([[0, 1, 2], [3, 4], [5]])
    assert scores.argmax(axis=1).tolist() == [3, 5, 0]
    model.save(tmp_path / "m.pt")
    again = SASRec.load(tmp_path / "m.pt")
    np.testing.assert_allclose(again.scores([[0, 1, 2]]), scores[:1], rtol=1e-5)
    assert not model.scores([[]]).any()  # an empty history has no opinion


def test_ease_neighbours_and_recommend_exclude_the_history(tmp_path: Path) -> None:
    ids = [f"m{i}" for i in range(6)]
    histories = [[0, 1], [0, 1], [2, 3], [2, 3], [4, 5], [0, 1, 4]]
    model = CollabModel.fit(histories, ids, SASRecConfig(**{**SMALL.__dict__, "epochs": 2}))
    assert model.neighbours("m0", 1)[0][0] == "m1"
    assert model.neighbours("unknown", 3) == []
    top = [r.item_id for r in model.recommend(["m2", "not-in-model"], 5)]
    assert "m2" not in top and len(top) == 5
    assert model.recommend(["nothing-known"], 3) == []
    np.testing.assert_allclose(standardise(np.array([[1.0, 3.0]])), [[-1.0, 1.0]])
    assert np.diag(ease_weights(np.eye(3, dtype=np.float32))).tolist() == [0.0, 0.0, 0.0]

    folder = tmp_path / "collab" / "toy"
    model.save(folder)
    (folder / "fusion.json").write_text(json.dumps({"collab": 1.0, "rrf": 0.25}))
    loaded = CollabModel.load(folder)
    np.testing.assert_allclose(loaded.scores([[0]]), model.scores([[0]]), rtol=1e-5)
    assert discover(tmp_path / "collab", [*ids, "m6", "m7"]) == folder  # a store may hold more
    assert discover(tmp_path / "collab", ids[:4]) is None  # a third of the model's items missing
    assert tuned_fusion(folder) == {"collab": 1.0, "rrf": 0.25}
    with pytest.raises(FileNotFoundError, match="missing"):
        CollabModel.load(tmp_path)


def test_long_histories_are_cut_into_windows_that_use_every_interaction() -> None:
    from tools.sasrec import windows

    cut = windows([list(range(10)), [7], [3, 4]], 4)
    assert cut == [[5, 6, 7, 8, 9], [1, 2, 3, 4, 5], [0, 1], [3, 4]]
    targets = [t for w in cut for t in w[1:]]
    assert sorted(targets) == [1, 2, 3, 4, 4, 5, 6, 7, 8, 9]  # once each (4: two users)


def test_training_stops_early_and_keeps_the_best_state() -> None:
    import torch

    config = SASRecConfig(**{**SMALL.__dict__, "epochs": 50, "eval_every": 1, "patience": 2})
    script = iter([0.1, 0.3, 0.2, 0.25, 0.9])  # the best check is epoch 2; two worse ones stop it
    kept: dict[int, dict[str, torch.Tensor]] = {}

    def validate(model: SASRec) -> float:
        epoch = len(model.curve) + 1
        kept[epoch] = {k: v.clone() for k, v in model.net.state_dict().items()}
        return next(script)

    model = SASRec.fit(cycles(12, 6, 7), 6, config, validate=validate)
    assert [p.epoch for p in model.curve] == [1, 2, 3, 4] and model.best_epoch == 2
    assert [p.valid_ndcg10 for p in model.curve] == [0.1, 0.3, 0.2, 0.25]
    assert all(p.loss > 0 and p.seconds >= 0 for p in model.curve)
    state = model.net.state_dict()
    assert all(torch.equal(state[k], kept[2][k]) for k in state)  # epoch 2's weights, not 4's
    assert not model.net.training  # left ready for scoring


def test_a_time_budget_stops_training_and_a_warm_refit_starts_from_the_given_weights() -> None:
    import torch

    budget = SASRecConfig(**{**SMALL.__dict__, "epochs": 1000, "max_seconds": 0.0})
    quick = SASRec.fit(cycles(12, 6, 7), 6, budget, validate=lambda model: 0.5)
    assert quick.best_epoch == 1 and len(quick.curve) == 1  # one epoch, checked, then out of time
    unchecked = SASRec.fit(cycles(12, 6, 7), 6, budget)
    assert unchecked.best_epoch == 1

    trained = SASRec.fit(cycles(12, 6, 7), 6, SMALL)
    none = SASRecConfig(**{**SMALL.__dict__, "epochs": 1, "lr": 0.0})  # lr 0: nothing moves
    warm = SASRec.fit(cycles(12, 6, 7), 6, none, warm=trained)
    state, before = warm.net.state_dict(), trained.net.state_dict()
    assert all(torch.equal(state[k], before[k]) for k in state)
    assert warm.scores([[0, 1, 2]]).argmax() == 3  # it starts where the trained model is
