"""Untrusted SVGs (tools.svg): references outside the picture's folder never reach the
renderer, a declared shape cannot ask for gigabytes, an SVGZ cannot inflate past the limit, and
a renderer crash, memory limit or deadline costs that picture only."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.errors import MediaError
from tools.files import read_bounded
from tools.media import load_image
from tools.svg import Renderer, renderer

LIMIT = 20_000_000
NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
GOOD = f'<svg {NS} width="10" height="10"><rect width="10" height="10" fill="#00ff00"/></svg>'


def _svg(folder: Path, name: str, body: str, size: str = 'width="100" height="100"') -> Path:
    path = folder / name
    path.write_text(f"<svg {NS} {size}>{body}</svg>")
    return path


def _colours(path: Path) -> set[tuple[int, ...]]:
    pixels = np.asarray(load_image(path, LIMIT, LIMIT)).reshape(-1, 4)
    return {tuple(int(v) for v in p) for p in pixels[::37]}


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "secret.png")  # outside the folder
    folder = tmp_path / "catalogue"
    folder.mkdir()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(folder / "own.png")
    return folder


def test_references_outside_the_folder_are_not_loaded(catalogue: Path) -> None:
    secret = catalogue.parent / "secret.png"
    image = '<image {}="{}" width="100" height="100"/>'
    for attr, target in (
        ("xlink:href", str(secret)),
        ("href", "../secret.png"),
        ("href", f"file://{secret}"),
        ("xlink:href", "/dev/zero"),
    ):
        path = _svg(catalogue, "outside.svg", image.format(attr, target))
        assert (255, 0, 0, 255) not in _colours(path), (attr, target)
    inside = _svg(catalogue, "inside.svg", image.format("href", "own.png"))
    assert (0, 0, 255, 255) in _colours(inside)  # a picture beside the SVG is still drawn


def test_markup_building_entities_are_refused(catalogue: Path) -> None:
    path = catalogue / "entity.svg"
    path.write_text(
        f"<!DOCTYPE svg [<!ENTITY e \"<image h&#114;ef='/etc/passwd'/>\">]><svg {NS}>&e;</svg>"
    )
    with pytest.raises(MediaError, match="entity"):
        load_image(path, LIMIT, LIMIT)


def test_extreme_declared_shape_is_refused_before_rendering(catalogue: Path) -> None:
    path = _svg(catalogue, "thin.svg", '<rect width="1" height="5"/>', 'viewBox="0 0 1 100000"')
    with pytest.raises(MediaError, match="thinner than"):
        load_image(path, LIMIT, LIMIT)
    huge = _svg(
        catalogue, "huge.svg", '<rect width="10" height="10"/>', 'width="1000000" height="1000000"'
    )
    assert load_image(huge, LIMIT, LIMIT).size == (384, 384)  # output from the working size


def test_svgz_inflation_is_capped(catalogue: Path) -> None:
    path = catalogue / "bomb.svgz"
    path.write_bytes(gzip.compress(b"<svg>" + b" " * 30_000_000 + b"</svg>"))
    assert path.stat().st_size < 100_000
    with pytest.raises(MediaError, match="inflates to more than"):
        load_image(path, LIMIT, LIMIT)


def test_a_crash_costs_one_picture_and_the_next_one_renders(catalogue: Path) -> None:
    deep = catalogue / "deep.svg"
    deep.write_text(
        f'<svg {NS} width="10" height="10">' + "<g>" * 100_000 + "</g>" * 100_000 + "</svg>"
    )
    with pytest.raises(MediaError, match=re.escape(str(deep))):
        load_image(deep, LIMIT, LIMIT)
    good = catalogue / "good.svg"
    good.write_text(GOOD)
    assert (0, 255, 0, 255) in _colours(good)


def test_memory_limit_and_deadline_are_enforced(tmp_path: Path) -> None:
    small = Renderer(memory=300 << 20)
    try:  # a 65535 x 65535 canvas needs 17 GB: over the limit, an error for this picture only
        with pytest.raises(MediaError, match=r"memory limit|could not be rendered"):
            small.render(GOOD, 65535, 65535, tmp_path / "big.svg")
        assert small.render(GOOD, 10, 10, tmp_path / "ok.svg").startswith(b"\x89PNG")
    finally:
        small.close()
    slow = Renderer(deadline=0.001)
    try:
        with pytest.raises(MediaError, match="longer than"):
            slow.render(GOOD, 10, 10, tmp_path / "slow.svg")
    finally:
        slow.close()
    assert renderer().render(GOOD, 10, 10, tmp_path / "shared.svg").startswith(b"\x89PNG")


def test_links_and_devices_are_not_read(catalogue: Path) -> None:
    real = catalogue / "real.svg"
    real.write_text(GOOD)
    link = catalogue / "link.svg"
    os.symlink(real, link)
    with pytest.raises(MediaError, match="symbolic link"):
        load_image(link, LIMIT, LIMIT)
    with pytest.raises(MediaError, match="not a regular file"):
        read_bounded(Path("/dev/zero"), LIMIT, "image")
