"""A synthetic interaction dataset of any size, in RecBole's atomic format, for checking that
``eval rank --inter`` scales (no million-interaction dataset ships offline).

It is built to have the kinds of signal real data has, so every retriever has something to find:
items belong to genres and have Zipf popularity; each user has a few favourite genres
(Dirichlet); a user's next item stays in the genre of the last one with probability ``STAY``,
and within a genre it is either close to the last item in the genre's order (a sequential habit)
or drawn by popularity. Histories have log-normal lengths (at least ``MIN_LENGTH``) and
increasing timestamps; a user never repeats an item. The item file names each item's genres, so
the content side sees them. Deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

GENRES = 18
STAY = 0.6  # next item from the last item's genre
STEP = 0.5  # within the genre: a nearby item (else one by popularity)
MIN_LENGTH = 20


@dataclass(frozen=True)
class Synthetic:
    users: int
    items: int
    interactions: int
    seed: int = 2026


def _genre_members(items: int, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    genre = rng.integers(0, GENRES, size=items)
    members = [np.flatnonzero(genre == g) for g in range(GENRES)]
    return genre, members


def generate(spec: Synthetic) -> list[tuple[int, int, int]]:
    """(user, item, timestamp) rows, users in order, each user's rows in time order."""
    rng = np.random.default_rng(spec.seed)
    genre, members = _genre_members(spec.items, rng)
    popularity = 1.0 / np.arange(1, spec.items + 1) ** 0.8
    popularity = popularity[rng.permutation(spec.items)]
    position = np.zeros(spec.items, dtype=np.int64)
    for group in members:
        position[group] = np.arange(group.size)
    within = [np.cumsum(popularity[g]) / popularity[g].sum() for g in members]
    lengths = np.maximum(MIN_LENGTH, rng.lognormal(4.3, 1.0, size=spec.users)).astype(np.int64)
    lengths = np.minimum(lengths, spec.items // 2)
    scale = spec.interactions / lengths.sum()
    lengths = np.clip((lengths * scale).astype(np.int64), MIN_LENGTH, spec.items // 2)
    rows: list[tuple[int, int, int]] = []
    for user in range(spec.users):
        taste = np.cumsum(rng.dirichlet(np.full(GENRES, 0.3)))
        seen: set[int] = set()
        clock = int(rng.integers(9 * 10**8, 10**9))
        last = -1
        tries = 0
        while len(seen) < lengths[user] and tries < 20 * lengths[user]:
            tries += 1
            if last >= 0 and rng.random() < STAY:
                g = int(genre[last])
            else:
                g = min(int(np.searchsorted(taste, rng.random())), GENRES - 1)
            group = members[g]
            if group.size == 0:
                continue
            if last >= 0 and genre[last] == g and rng.random() < STEP:
                offset = int(rng.geometric(0.4)) * (1 if rng.random() < 0.8 else -1)
                item = int(group[(position[last] + offset) % group.size])
            else:
                pick = int(np.searchsorted(within[g], rng.random()))
                item = int(group[min(pick, group.size - 1)])
            if item in seen:
                continue
            seen.add(item)
            clock += int(rng.integers(1, 3_600))
            rows.append((user, item, clock))
            last = item
    return rows


def write(spec: Synthetic, inter: Path) -> tuple[Path, Path]:
    """``inter`` and the item file beside it (same stem, ``.item``)."""
    rng = np.random.default_rng(spec.seed)
    genre, _ = _genre_members(spec.items, rng)
    rows = generate(spec)
    inter.parent.mkdir(parents=True, exist_ok=True)
    with inter.open("w") as handle:
        handle.write("user_id:token\titem_id:token\ttimestamp:float\n")
        handle.writelines(f"u{u}\ti{i}\t{t}\n" for u, i, t in rows)
    items = inter.with_suffix(".item")
    with items.open("w") as handle:
        handle.write("item_id:token\ttitle:token_seq\tgenre:token_seq\n")
        handle.writelines(f"i{i}\tItem {i}\tgenre{genre[i]}\n" for i in range(spec.items))
    return inter, items
