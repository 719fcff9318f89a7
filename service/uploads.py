"""Uploaded pictures and voice messages: size-limited while read, kept in a temporary folder
for one request only, named by the server (never by the client's file name). An SVG upload is
also limited in markup size (after inflating ``.svgz``, which stops at the limit) before any
check of its markup runs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from agent.attachments import PICTURES, SOUNDS
from tools.errors import InputError
from tools.svg_child import Refused, inflate

CHUNK = 1 << 16


def save_uploads(
    uploads: dict[str, Any], max_bytes: int, max_svg_bytes: int
) -> tuple[tempfile.TemporaryDirectory[str], dict[str, Path]]:
    """``{"image": UploadFile, "audio": UploadFile}`` saved to a new temporary folder, as
    ``{name: path}`` for :meth:`Recommender.respond`; the caller removes the folder (its
    ``cleanup()``) when the turn is over. A bad upload removes it at once and raises."""
    folder = tempfile.TemporaryDirectory(prefix="recagent-upload-")
    try:
        saved = _save(uploads, Path(folder.name), max_bytes)
        for path in saved.values():
            _check_svg_size(path, max_svg_bytes)
        return folder, saved
    except BaseException:
        folder.cleanup()
        raise


def _save(uploads: dict[str, Any], folder: Path, max_bytes: int) -> dict[str, Path]:
    saved: dict[str, Path] = {}
    for field, upload in uploads.items():
        if upload is None:
            continue
        suffix = Path(str(getattr(upload, "filename", "") or "")).suffix.lower()
        allowed = PICTURES if field == "image" else SOUNDS
        if suffix not in allowed:
            raise InputError(
                f"the {field} upload must be one of {', '.join(sorted(allowed))} "
                f"(got {suffix or 'no extension'!r})"
            )
        path = folder / f"{field}{suffix}"
        size = 0
        with path.open("wb") as out:
            while chunk := upload.file.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise InputError(
                        f"the {field} upload is over the limit of {max_bytes / 1e6:.1f} MB"
                    )
                out.write(chunk)
        if size == 0:
            raise InputError(f"the {field} upload is empty")
        saved[path.name] = path
    return saved


def _check_svg_size(path: Path, limit: int) -> None:
    """An SVG upload's markup is at most ``limit`` bytes (a ``.svgz`` inflated only that far)."""
    suffix = path.suffix.lower()
    if suffix == ".svg" and path.stat().st_size > limit:
        raise InputError(f"the SVG upload is over the limit of {limit / 1e6:.1f} MB")
    if suffix == ".svgz":
        try:
            inflate(path.read_bytes(), limit)
        except Refused as exc:
            raise InputError(f"the SVGZ upload is refused: {exc}") from None
