"""Read catalogues from JSONL or CSV into validated :class:`Item` objects.

A bad row never aborts a load: it becomes an :class:`ItemError` naming the line and the item id
(when one could be read), and the remaining rows load. Media paths are resolved against the
catalogue file's folder and must stay inside it (symlinks are followed before the check).
Bounds: a row is at most ``MAX_LINE_BYTES`` and nests at most ``MAX_DEPTH`` levels; control and
bidirectional-override characters are removed from every string (:mod:`tools.text`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError

from indexing.schema import Item
from tools.errors import CatalogueError, InputError
from tools.text import clean_all

CSV_LIST_SEPARATOR = ";"
MAX_LINE_BYTES = 1_000_000  # one catalogue row
MAX_DEPTH = 16  # JSON nesting within a row


@dataclass(frozen=True)
class ItemError:
    """Why one item (or row) was not indexed."""

    where: str
    problem: str
    item_id: str | None = None

    def __str__(self) -> str:
        who = f"item {self.item_id!r}" if self.item_id else self.where
        where = f" ({self.where})" if self.item_id else ""
        return f"{who}{where}: {self.problem}"


@dataclass
class LoadResult:
    items: list[Item] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    root: Path = Path(".")


def load_catalogue(path: Path) -> LoadResult:
    """Load a ``.jsonl`` / ``.json`` (one object per line) or ``.csv`` catalogue."""
    if not path.is_file():
        raise CatalogueError(f"catalogue file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        rows = _jsonl_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise CatalogueError(f"unknown catalogue format {suffix!r}: use .jsonl or .csv")
    root = path.resolve().parent
    result = LoadResult(root=root)
    first_seen: dict[str, str] = {}
    for where, row in rows:
        if isinstance(row, ItemError):
            result.errors.append(row)
            continue
        raw_id = row.get("id")
        item_id = str(raw_id) if isinstance(raw_id, str | int) else None
        try:
            row = clean_all(row)  # no terminal escapes or bidi overrides in stored text
            _resolve_media(row, root)
            item = Item.model_validate(row)
        except (ValidationError, InputError) as exc:
            result.errors.append(ItemError(where, _explain(exc), item_id))
            continue
        if item.id in first_seen:
            result.errors.append(
                ItemError(where, f"duplicate id (first defined at {first_seen[item.id]})", item.id)
            )
            continue
        first_seen[item.id] = where
        result.items.append(item)
    return result


def _explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'row'}: {err['msg']}" for err in exc.errors()
        )
    return str(exc)


def confine(value: str | Path, root: Path) -> Path:
    """Resolve a media path against ``root``; refuse anything that ends up outside it."""
    raw = Path(value).expanduser()
    candidate = (raw if raw.is_absolute() else root / raw).resolve()
    if not candidate.is_relative_to(root):
        raise InputError(f"path {str(value)!r} leaves the catalogue folder {root}")
    return candidate


def _resolve_media(row: dict[str, Any], root: Path) -> None:
    image = row.get("image")
    if image not in (None, ""):
        if not isinstance(image, str):
            raise InputError("image: must be a path string")
        row["image"] = confine(image, root)
    audio = row.get("audio")
    if audio not in (None, "", []):
        paths = [audio] if isinstance(audio, str) else audio
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise InputError("audio: must be a path string or a list of path strings")
        row["audio"] = [confine(p, root) for p in paths]


def _decode(raw: bytes, where: str) -> str | ItemError:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ItemError(where, f"not valid UTF-8 text ({exc.reason} at byte {exc.start})")


def _lines(handle: BinaryIO) -> Iterator[bytes | None]:
    """The file's lines, each read up to ``MAX_LINE_BYTES``; None for a longer line (the rest of
    it is skipped without being held in memory)."""
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        if len(raw) <= MAX_LINE_BYTES or raw.endswith(b"\n"):
            yield raw
            continue
        while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
            pass
        yield None


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | ItemError]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(_lines(handle), start=1):
            where = f"line {number}"
            if raw is None:
                yield where, ItemError(where, f"line is over the limit of {MAX_LINE_BYTES:,} bytes")
                continue
            line = _decode(raw, where)
            if isinstance(line, ItemError):
                yield where, line
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield where, ItemError(where, f"malformed JSON: {exc.msg} at column {exc.colno}")
                continue
            except RecursionError:
                yield where, ItemError(where, "JSON nested too deeply")
                continue
            if _depth(row) > MAX_DEPTH:
                yield where, ItemError(where, f"JSON nested deeper than {MAX_DEPTH} levels")
                continue
            if not isinstance(row, dict):
                yield where, ItemError(where, "each line must be a JSON object")
                continue
            yield where, row


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, Any] | ItemError]]:
    """CSV columns: the schema's fields; ``attr.NAME`` columns become attributes, ``audio`` may
    hold several paths separated by ';', ``attributes``/``metadata`` may hold a JSON object."""
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    if not lines:
        return
    try:
        header_text = lines[0].decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path}: header is not valid UTF-8") from exc
    header = next(csv.reader([header_text]))
    if "id" not in header or "title" not in header:
        raise CatalogueError(f"{path}: the header must name at least 'id' and 'title' columns")
    for number, raw in enumerate(lines[1:], start=2):
        where = f"line {number}"
        if len(raw) > MAX_LINE_BYTES:
            yield where, ItemError(where, f"line is over the limit of {MAX_LINE_BYTES:,} bytes")
            continue
        text = _decode(raw, where)
        if isinstance(text, ItemError):
            yield where, text
            continue
        if not text.strip():
            continue
        values = next(csv.reader(io.StringIO(text)))
        if len(values) != len(header):
            yield where, ItemError(where, f"has {len(values)} fields, the header has {len(header)}")
            continue
        try:
            yield where, _csv_row(dict(zip(header, values, strict=True)))
        except InputError as exc:
            yield where, ItemError(where, str(exc), values[header.index("id")] or None)


def _csv_row(cells: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, value in cells.items():
        if key.startswith("attr."):
            if value != "":
                attributes[key[5:]] = value
        elif key in {"attributes", "metadata"}:
            if value:
                try:
                    row[key] = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{key}: not a JSON object ({exc.msg})") from exc
        elif key == "audio":
            row[key] = [p.strip() for p in value.split(CSV_LIST_SEPARATOR) if p.strip()]
        elif key == "price":
            row[key] = value or None
        else:
            row[key] = value
    if attributes:
        row.setdefault("attributes", {}).update(attributes)
    return row


def write_jsonl(items: list[Item], path: Path, root: Path | None = None) -> None:
    """Write items as JSONL, media paths relative to ``root`` (default: the file's folder)."""
    base = (root or path.parent).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for item in items:
            row = item.model_dump(mode="json", exclude_defaults=True)
            if item.image is not None:
                row["image"] = str(item.image.relative_to(base))
            if item.audio:
                row["audio"] = [str(p.relative_to(base)) for p in item.audio]
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
