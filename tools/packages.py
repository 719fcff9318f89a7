"""Locating installed data-carrier packages without importing (executing) them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tools.errors import MissingPackage


def package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackage(f"package {package!r} is not installed; {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))
