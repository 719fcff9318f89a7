"""ML-100K interactions and the leave-one-out protocol.

* 5-core: users and items with fewer than 5 interactions are removed, repeatedly, until every
  remaining user and item has at least 5 (ML-100K: 943 users, 1,349 items).
* Leave-one-out by time: per user, interactions are ordered by timestamp; same-second ties keep
  the data file's row order (44% of users have their last two in the same second, so the rule
  matters: it is stated in every result). Last = test, second-to-last = validation.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexing.movielens import ml100k_dir
from tools.candidate_pool import history_matrix

TIE_RULE = "same-second ties keep the data file's row order"


@dataclass
class Split:
    """Items are re-indexed 0..n_items-1; ``item_ids`` maps back to ML-100K ids."""

    n_users: int
    n_items: int
    user_ids: list[str]
    item_ids: list[str]
    train: list[list[int]]  # per user, in time order
    valid: list[int]
    test: list[int]
    meta: dict[str, object] = field(default_factory=dict)

    def history(self, user: int, stage: str) -> list[int]:
        """What the model may see when predicting ``stage`` ("valid" or "test")."""
        return self.train[user] + ([self.valid[user]] if stage == "test" else [])


def read_interactions(path: Path | None = None) -> list[tuple[str, str, float, int]]:
    """(user, item, timestamp, row) in file order."""
    source = path or ml100k_dir() / "ml-100k.inter"
    rows: list[tuple[str, str, float, int]] = []
    with source.open(newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader)
        u, i, t = (header.index(f) for f in ("user_id:token", "item_id:token", "timestamp:float"))
        for row_number, row in enumerate(reader):
            rows.append((row[u], row[i], float(row[t]), row_number))
    return rows


def k_core(
    rows: list[tuple[str, str, float, int]], k: int = 5
) -> list[tuple[str, str, float, int]]:
    while True:
        users = Counter(r[0] for r in rows)
        items = Counter(r[1] for r in rows)
        kept = [r for r in rows if users[r[0]] >= k and items[r[1]] >= k]
        if len(kept) == len(rows):
            return kept
        rows = kept


def _id_order(value: str) -> tuple[int, int, str]:
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def leave_one_out(rows: list[tuple[str, str, float, int]]) -> Split:
    by_user: dict[str, list[tuple[float, int, str]]] = {}
    for user, item, timestamp, row in rows:
        by_user.setdefault(user, []).append((timestamp, row, item))
    item_ids = sorted({r[1] for r in rows}, key=_id_order)
    index = {item: n for n, item in enumerate(item_ids)}
    user_ids = sorted(by_user, key=_id_order)
    train, valid, test = [], [], []
    for user in user_ids:
        ordered = [index[item] for _, _, item in sorted(by_user[user])]  # (time, row) order
        train.append(ordered[:-2])
        valid.append(ordered[-2])
        test.append(ordered[-1])
    return Split(
        len(user_ids),
        len(item_ids),
        user_ids,
        item_ids,
        train,
        valid,
        test,
        {
            "protocol": "5-core, leave-one-out by timestamp",
            "ties": TIE_RULE,
            "interactions": len(rows),
        },
    )


def load_split(path: Path | None = None) -> Split:
    return leave_one_out(k_core(read_interactions(path)))


def matrix(split: Split, stage: str) -> np.ndarray:
    """Binary user x item matrix of what is known before ``stage``."""
    histories = [split.history(user, stage) for user in range(split.n_users)]
    return history_matrix(histories, split.n_items)
