"""Any interaction dataset by path, in RecBole's atomic format, for ``eval rank --inter``.

* ``FILE.inter``: tab-separated, a header row naming typed columns; ``user_id:token``,
  ``item_id:token`` and ``timestamp:float`` are required, ``rating:float`` is optional (every
  row counts as an interaction: the protocol is implicit feedback).
* ``FILE.item`` (optional): ``item_id:token`` and the item's facts; a title column
  (``title``, ``movie_title`` or ``name``, any type) at least, and every other text column
  (``:token`` or ``:token_seq``) feeds the content side. Without it an item's text is its id.

The protocol is ML-100K's (5-core, leave-one-out by time, the stated tie rule).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from eval.movielens import Split, k_core, leave_one_out
from tools.errors import InputError

TITLE_COLUMNS = ("title", "movie_title", "name", "item_name")
MAX_TEXT_CHARS = 2_000
MAX_FIELD_CHARS = 1_000_000


@dataclass(frozen=True)
class PathDataset:
    """A dataset read from files: its name (the file's stem), the split and, per item of the
    split, the text to embed and the title the LLM rerank sees."""

    name: str
    split: Split
    texts: list[str]
    titles: list[str]


def _header(path: Path, handle: object) -> list[str]:
    reader = csv.reader(handle, delimiter="\t")  # type: ignore[arg-type]
    try:
        return next(reader)
    except StopIteration:
        raise InputError(f"{path} is empty: it needs a header row") from None


def _column(header: list[str], name: str, path: Path) -> int:
    for index, field in enumerate(header):
        if field.split(":", 1)[0] == name:
            return index
    raise InputError(
        f"{path} has no {name!r} column (found: {', '.join(header)}); the atomic format names "
        "typed columns such as user_id:token"
    )


def read_inter(path: Path, min_rating: float | None = None) -> list[tuple[str, str, float, int]]:
    """(user, item, timestamp, row) in file order; a bad row is an error naming its line. With
    ``min_rating``, only rows rated at least that count (the file needs a rating column)."""
    if not path.is_file():
        raise InputError(f"interactions file not found: {path}")
    rows: list[tuple[str, str, float, int]] = []
    with path.open(newline="", encoding="utf-8") as handle:
        header = _header(path, handle)
        u, i, t = (_column(header, f, path) for f in ("user_id", "item_id", "timestamp"))
        r = _column(header, "rating", path) if min_rating is not None else -1
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=2):
            if not row:
                continue
            try:
                if min_rating is not None and float(row[r]) < min_rating:
                    continue
                rows.append((row[u], row[i], float(row[t]), number))
            except (IndexError, ValueError):
                raise InputError(
                    f"{path} line {number}: expected user, item, a numeric timestamp"
                    + (" and a numeric rating" if r >= 0 else "")
                ) from None
    if not rows:
        raise InputError(f"{path} holds no interactions")
    return rows


def read_items(path: Path) -> dict[str, tuple[str, str]]:
    """item id -> (title, text to embed)."""
    if not path.is_file():
        raise InputError(f"items file not found: {path}")
    out: dict[str, tuple[str, str]] = {}
    csv.field_size_limit(MAX_FIELD_CHARS)
    with path.open(newline="", encoding="utf-8") as handle:
        header = _header(path, handle)
        item = _column(header, "item_id", path)
        names = [f.split(":", 1)[0] for f in header]
        title = next((names.index(c) for c in TITLE_COLUMNS if c in names), None)
        if title is None:
            raise InputError(
                f"{path} has no title column (one of {', '.join(TITLE_COLUMNS)}); found "
                f"{', '.join(header)}"
            )
        text_columns = [
            n
            for n, f in enumerate(header)
            if n not in {item, title} and f.split(":", 1)[-1] in {"token", "token_seq"}
        ]
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) <= max(item, title):
                continue
            facts = [f"{names[n]}: {row[n]}" for n in text_columns if n < len(row) and row[n]]
            text = re.sub(r"\s+", " ", ". ".join([row[title], *facts]))[:MAX_TEXT_CHARS]
            out[row[item]] = (row[title], text)
    return out


def load_path_dataset(
    inter: Path, items: Path | None = None, min_rating: float | None = None
) -> PathDataset:
    """The split of ``inter`` under the ML-100K protocol, with texts from ``items``; with
    ``min_rating`` only the rows rated at least that are interactions."""
    split = leave_one_out(k_core(read_inter(inter, min_rating)))
    if split.n_users == 0:
        raise InputError(f"{inter}: no user and item keep 5 interactions (5-core is empty)")
    facts = read_items(items) if items is not None else {}
    titles = [facts.get(i, (i, i))[0] for i in split.item_ids]
    texts = [facts.get(i, (i, i))[1] for i in split.item_ids]
    split.meta["source"] = str(inter)
    name = inter.stem
    if min_rating is not None:
        split.meta["min_rating"] = min_rating
        name = f"{name}, ratings >= {min_rating:g}"
    return PathDataset(name, split, texts, titles)
