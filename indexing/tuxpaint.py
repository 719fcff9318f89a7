"""The demo catalogue: Tux Paint's stamps (Debian package ``tuxpaint-stamps-default``, GPL-2).

Each stamp is a ``.txt`` description (first line English, then translations) beside a PNG or
SVG picture, an optional sound effect ``stem.ogg`` and an optional English spoken description
``stem_desc.ogg``. :func:`install` builds a self-contained catalogue folder: the media are
hard-linked (or copied) under ``media/`` and ``items.jsonl`` lists the items.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from indexing.loaders import write_jsonl
from indexing.schema import Item

DEFAULT_STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
APT_PACKAGE = "tuxpaint-stamps-default"


def _title(stem: str) -> str:
    words = re.sub(r"[_\-]+", " ", stem).strip()
    words = re.sub(r"^\d+\s*(?=[A-Za-z])", "", words)  # "025quarter" -> "quarter"
    return words[:1].upper() + words[1:] if words else stem


def _english_line(path: Path) -> str:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not re.match(r"^[a-z]{2,3}(_[A-Za-z]+)?\.utf8=", line):
            return line
    return ""


def _dat_flags(path: Path) -> dict[str, str | bool]:
    flags: dict[str, str | bool] = {}
    if not path.is_file():
        return flags
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.strip().partition(" ")
        if key in {"colorable", "tintable"}:
            flags[key] = True
        elif key in {"nomirror", "noflip"}:
            flags[key.replace("no", "can_")] = False
        elif key == "scale" and value:
            flags["scale"] = value
    return flags


def scan(stamps_dir: Path) -> list[tuple[Item, list[Path]]]:
    """Items (with media paths still pointing into ``stamps_dir``) and their source files."""
    found: list[tuple[Item, list[Path]]] = []
    for txt in sorted(stamps_dir.rglob("*.txt")):
        rel = txt.relative_to(stamps_dir).with_suffix("")
        stem_path = txt.with_suffix("")
        image = next(
            (p for ext in (".png", ".svg", ".jpg") if (p := stem_path.with_suffix(ext)).is_file()),
            None,
        )
        speech = stem_path.with_name(stem_path.name + "_desc.ogg")
        effect = stem_path.with_suffix(".ogg")
        audio = [p for p in (speech, effect) if p.is_file()]
        parts = rel.parts
        attributes: dict[str, str | bool | int | float | list[str | bool | int | float]] = {
            "subcategory": "/".join(parts[1:-1]) or parts[0],
            "picture_format": image.suffix[1:] if image else "none",
            "has_spoken_description": speech.is_file(),
            "has_sound_effect": effect.is_file(),
        }
        attributes.update(_dat_flags(stem_path.with_suffix(".dat")))
        item = Item(
            id=str(rel).replace(" ", "_"),
            title=_title(rel.name),
            description=_english_line(txt),
            category=parts[0] if len(parts) > 1 else "misc",
            attributes=attributes,
            image=image,
            audio=audio,
            metadata={"source": "tuxpaint-stamps", "licence": "GPL-2.0"},
        )
        found.append((item, ([image] if image else []) + audio))
    return found


def _link_or_copy(source: Path, dest: Path) -> None:
    if dest.exists():
        if dest.stat().st_size == source.stat().st_size:
            return
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def install(
    target: Path,
    stamps_dir: Path = DEFAULT_STAMPS_DIR,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Build ``target/items.jsonl`` with media under ``target/media``; idempotent."""
    if not stamps_dir.is_dir():
        raise FileNotFoundError(
            f"Tux Paint stamps not found in {stamps_dir}: install the Debian package with "
            f"`apt-get install --no-install-recommends {APT_PACKAGE}`"
        )
    media = target / "media"
    entries = scan(stamps_dir)
    items: list[Item] = []
    for done, (item, files) in enumerate(entries, start=1):
        for source in files:
            _link_or_copy(source, media / source.relative_to(stamps_dir))
        updates: dict[str, object] = {}
        if item.image is not None:
            updates["image"] = media / item.image.relative_to(stamps_dir)
        if item.audio:
            updates["audio"] = [media / p.relative_to(stamps_dir) for p in item.audio]
        items.append(item.model_copy(update=updates))
        if progress:
            progress(done, len(entries))
    out = target / "items.jsonl"
    write_jsonl(items, out, root=target)
    return out
