"""Serving an item's picture and sound: only files inside the folders of the catalogues the store
was indexed from, found through the item's own record (no path from a request reaches the file
system), read without following links, with the right content type. SVG pictures are rendered
to PNG by the sandboxed renderer: an SVG served as is could run script in the page's origin."""

from __future__ import annotations

import io
from pathlib import Path

from tools.errors import InputError, MediaError
from tools.files import read_bounded
from tools.media import SVG_SUFFIXES, load_image

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
AUDIO_TYPES = {
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
}


class NotServed(InputError):
    """The item has no such file, or it may not be served."""


def confined(path: Path, roots: list[Path]) -> Path:
    """``path`` when it lies inside one of ``roots`` (links resolved), else NotServed."""
    try:
        resolved = path.resolve(strict=True)
    except OSError as exc:
        raise NotServed(f"the file of this item is missing: {path.name}") from exc
    if not any(resolved.is_relative_to(root.resolve()) for root in roots):
        raise NotServed("this item's file is outside the catalogue folders; it is not served")
    return resolved


def picture(path: Path, roots: list[Path], max_bytes: int, max_pixels: int) -> tuple[bytes, str]:
    """(bytes, content type) of an item's picture; an SVG comes back rendered as PNG."""
    where = confined(path, roots)
    suffix = where.suffix.lower()
    try:
        if suffix in SVG_SUFFIXES:
            rendered = io.BytesIO()
            load_image(where, max_bytes, max_pixels).save(rendered, format="PNG")
            return rendered.getvalue(), "image/png"
        if suffix not in IMAGE_TYPES:
            raise NotServed(f"pictures of type {suffix!r} are not served")
        return read_bounded(where, max_bytes, "image"), IMAGE_TYPES[suffix]
    except MediaError as exc:
        raise NotServed(f"this item's picture cannot be served: {exc.message}") from exc


def sound(path: Path, roots: list[Path], max_bytes: int) -> tuple[bytes, str]:
    """(bytes, content type) of an item's sound file."""
    where = confined(path, roots)
    suffix = where.suffix.lower()
    if suffix not in AUDIO_TYPES:
        raise NotServed(f"sounds of type {suffix!r} are not served")
    try:
        return read_bounded(where, max_bytes, "audio"), AUDIO_TYPES[suffix]
    except MediaError as exc:
        raise NotServed(f"this item's sound cannot be served: {exc.message}") from exc


def effect_first(audio: list[Path]) -> list[Path]:
    """The item's sounds, its sound effect before a spoken description (``*_desc``)."""
    return sorted(audio, key=lambda p: p.stem.endswith("_desc"))
