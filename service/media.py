"""Serving an item's picture and sound: only files inside the folders of the catalogues the store
was indexed from, found through the item's own record (no path from a request reaches the file
system), read without following links, and only while their bytes are the ones indexed (their
SHA-256 is stored with the item; for stores indexed before that, the bytes must at least be of
the declared type), with the right content type. SVG pictures are served as the PNG rendered at
index time (an SVG served as is could run script in the page's origin); a picture without a
stored render is rendered once by the sandboxed renderer and kept."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from tools.errors import InputError, MediaError
from tools.files import read_bounded
from tools.media import SVG_SUFFIXES, decode_image
from tools.renders import RenderCache

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
PIL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF", ".webp": "WEBP"}
AUDIO_MAGIC = {  # the first bytes of each served sound type
    ".ogg": (b"OggS",),
    ".oga": (b"OggS",),
    ".opus": (b"OggS",),
    ".wav": (b"RIFF",),
    ".mp3": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"),
    ".flac": (b"fLaC",),
    ".m4a": (b"ftyp",),  # at offset 4
    ".webm": (b"\x1a\x45\xdf\xa3",),
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


@dataclass(frozen=True)
class Limits:
    """What a served picture or sound may be."""

    max_image_bytes: int
    max_image_pixels: int
    max_audio_bytes: int


def _indexed(data: bytes, path: Path, digests: dict[str, str]) -> str:
    """The SHA-256 of ``data``; NotServed when it is not the digest the item was indexed with
    (an item indexed with digests but none for this file is refused too; an item of a store
    indexed before digests were kept has none at all)."""
    actual = hashlib.sha256(data).hexdigest()
    digest = digests.get(str(path))
    if digests and digest is None:
        raise NotServed(f"this item's file was not indexed, it is not served: {path.name}")
    if digest is not None and actual != digest:
        raise NotServed(
            "this item's file changed since the catalogue was indexed; it is not served until "
            f"the catalogue is indexed again: {path.name}"
        )
    return actual


def picture(
    path: Path,
    roots: list[Path],
    digests: dict[str, str],
    renders: RenderCache,
    limits: Limits,
) -> tuple[bytes, str]:
    """(bytes, content type) of an item's picture (``digests``: the item's files as indexed);
    an SVG comes back as its stored PNG."""
    where = confined(path, roots)
    suffix = where.suffix.lower()
    try:
        data = read_bounded(where, limits.max_image_bytes, "image")
        actual = _indexed(data, path, digests)
        if suffix in SVG_SUFFIXES:
            stored = renders.get(actual)
            if stored is not None:
                return stored, "image/png"
            image = decode_image(data, where, limits.max_image_bytes, limits.max_image_pixels)
            try:
                return renders.put(actual, image), "image/png"
            except OSError:  # not kept: served all the same
                rendered = io.BytesIO()
                image.save(rendered, format="PNG")
                return rendered.getvalue(), "image/png"
        if suffix not in IMAGE_TYPES:
            raise NotServed(f"pictures of type {suffix!r} are not served")
        _check_picture(data, suffix, where)
        return data, IMAGE_TYPES[suffix]
    except MediaError as exc:
        raise NotServed(f"this item's picture cannot be served: {exc.message}") from exc


def _check_picture(data: bytes, suffix: str, path: Path) -> None:
    """The bytes are a picture of the type the file's name says (never text served as PNG)."""
    try:
        kind = Image.open(io.BytesIO(data)).format
    except (UnidentifiedImageError, OSError, ValueError):
        kind = None
    if kind != PIL_FORMATS[suffix]:
        raise NotServed(f"this item's picture is not a {suffix} picture: {path.name}")


def sound(
    path: Path, roots: list[Path], digests: dict[str, str], limits: Limits
) -> tuple[bytes, str]:
    """(bytes, content type) of an item's sound file."""
    where = confined(path, roots)
    suffix = where.suffix.lower()
    if suffix not in AUDIO_TYPES:
        raise NotServed(f"sounds of type {suffix!r} are not served")
    try:
        data = read_bounded(where, limits.max_audio_bytes, "audio")
    except MediaError as exc:
        raise NotServed(f"this item's sound cannot be served: {exc.message}") from exc
    _indexed(data, path, digests)
    head = data[4:12] if suffix == ".m4a" else data[:4]
    if not any(head.startswith(magic) for magic in AUDIO_MAGIC[suffix]):
        raise NotServed(f"this item's sound is not a {suffix} file: {where.name}")
    return data, AUDIO_TYPES[suffix]


def effect_first(audio: list[Path]) -> list[Path]:
    """The item's sounds, its sound effect before a spoken description (``*_desc``)."""
    return sorted(audio, key=lambda p: p.stem.endswith("_desc"))
