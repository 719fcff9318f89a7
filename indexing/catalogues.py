"""The catalogues recagent can install from installed data packages, by name.

``tuxpaint`` is the demo (the Debian package ``tuxpaint-stamps-default``); ``movielens`` the
ML-100K movies (the ``recbole`` and ``bokeh-sampledata`` wheels). Each installs into a folder
with ``items.jsonl``; by default ``DATA_DIR/catalogues/NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from indexing import movielens, tuxpaint
from tools.errors import InputError, MissingPackage

CATALOGUES: dict[str, str] = {
    "tuxpaint": "linking Tux Paint stamps",
    "movielens": "writing the ML-100K movies",
}
"""Installable catalogues, each with what installing it does (a label for progress)."""


def catalogue_dir(name: str, data_dir: Path) -> Path:
    """Where ``name`` installs by default."""
    return data_dir / "catalogues" / name


def default_catalogue(data_dir: Path) -> Path:
    """The demo catalogue's ``items.jsonl`` (installed by ``recagent catalogue install``)."""
    return catalogue_dir("tuxpaint", data_dir) / "items.jsonl"


def install_catalogue(
    name: str,
    target: Path | None,
    data_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Install catalogue ``name`` into ``target`` (default: under ``data_dir``) and return its
    ``items.jsonl``. ``progress(done, total)`` hears about long installs (Tux Paint's media).

    Raises :class:`InputError` for an unknown name and :class:`MissingPackage` when the data
    it is built from is not installed."""
    if name not in CATALOGUES:
        raise InputError(f"unknown catalogue {name!r}: choose {' or '.join(CATALOGUES)}")
    folder = target or catalogue_dir(name, data_dir)
    if name == "tuxpaint":
        if not tuxpaint.DEFAULT_STAMPS_DIR.is_dir():
            raise MissingPackage(
                f"Tux Paint stamps not found in {tuxpaint.DEFAULT_STAMPS_DIR}: install the "
                f"Debian package with `apt-get install --no-install-recommends "
                f"{tuxpaint.APT_PACKAGE}`"
            )
        return tuxpaint.install(folder, progress=progress)
    return movielens.install(folder)
