"""Untrusted SVGs (tools.svg): references outside the picture's folder never reach the
renderer, a declared shape cannot ask for gigabytes, an SVGZ cannot inflate past the limit, and
a renderer crash, memory limit or deadline costs that picture only."""

from __future__ import annotations

import gzip
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.errors import MediaError
from tools.files import read_bounded
from tools.media import load_image
from tools.svg import MAX_SVG_BYTES, Renderer, RendererPool, renderer

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


def test_entities_expand_before_the_checks_see_the_markup(catalogue: Path) -> None:
    """An entity that builds a reference is expanded by the parser, so the reference is seen and
    removed like any other; an external entity is refused."""
    secret = catalogue.parent / "secret.png"
    path = catalogue / "entity.svg"
    path.write_text(
        f"<!DOCTYPE svg [<!ENTITY e \"<image width='100' height='100' h&#114;ef='{secret}'/>\">]>"
        f'<svg {NS} width="100" height="100">&e;</svg>'
    )
    assert (255, 0, 0, 255) not in _colours(path)
    external = catalogue / "external.svg"
    external.write_text(
        f'<!DOCTYPE svg [<!ENTITY e SYSTEM "{secret}">]><svg {NS} width="9" height="9">&e;</svg>'
    )
    with pytest.raises(MediaError, match="external entity"):
        load_image(external, LIMIT, LIMIT)


def test_markup_checks_are_linear_and_bounded(catalogue: Path) -> None:
    """Inputs that made the old regular-expression checks quadratic are parsed (or refused) at
    once, and nested <use> that would multiply into 100,000 elements is refused."""
    for name, body in (
        ("opens.svg", f"<svg {NS}>" + "<svg " * 40_000),
        ("word.svg", f'<svg {NS} width="9" height="9"><rect id="' + "a" * 200_000 + '"/></svg>'),
    ):
        path = catalogue / name
        path.write_text(body)
        try:
            load_image(path, LIMIT, LIMIT)
        except MediaError as exc:
            assert "not well-formed" in str(exc)
    defs = '<rect id="l0" width="1" height="1"/>'
    for level in range(1, 6):
        uses = f'<use xlink:href="#l{level - 1}"/>' * 10
        defs += f'<g id="l{level}">{uses}</g>'
    bomb = _svg(catalogue, "use.svg", f'<defs>{defs}</defs><use xlink:href="#l5"/>')
    with pytest.raises(MediaError, match="expands to more than"):
        load_image(bomb, LIMIT, LIMIT)
    blur = '<filter id="f"><feGaussianBlur stdDeviation="20"/></filter>'
    blurred = '<rect id="l0" width="100" height="100" filter="url(#f)"/>'
    for level in range(1, 4):  # 1,000 blurred copies: few elements, 36 s for resvg
        uses = f'<use xlink:href="#l{level - 1}"/>' * 10
        blurred += f'<g id="l{level}">{uses}</g>'
    slow = _svg(catalogue, "blur.svg", f'<defs>{blur}{blurred}</defs><use xlink:href="#l3"/>')
    with pytest.raises(MediaError, match="with filters, masks"):
        load_image(slow, LIMIT, LIMIT)
    loop = _svg(catalogue, "loop.svg", '<g id="a"><use xlink:href="#a"/></g>')
    with pytest.raises(MediaError, match="leads back to itself"):
        load_image(loop, LIMIT, LIMIT)
    big = catalogue / "big.svg"
    big.write_text(f"<svg {NS}>" + " " * (MAX_SVG_BYTES + 1) + "</svg>")
    with pytest.raises(MediaError, match="over the limit"):
        load_image(big, LIMIT, LIMIT)


def test_cost_bounds_read_references_as_the_renderer_does(catalogue: Path) -> None:
    """What a review found slipping past the bounds: targets with spaces, a plain href beside a
    cheap xlink:href (resvg takes the plain one), markers drawn at every vertex, layers made
    by group opacity, and an SVG hidden in a malformed raster data: URL."""
    import base64

    def nested(use: str) -> str:
        defs = '<rect id="cheap" width="1" height="1"/><rect id="l0" width="1" height="1"/>'
        for level in range(1, 9):
            defs += f'<g id="l{level}">' + use.format(level - 1) * 10 + "</g>"
        return f'<defs>{defs}</defs><use href="#l8"/>'

    marker = '<marker id="m">' + '<rect width="1" height="1"/>' * 100 + "</marker>"
    points = " ".join(f"{i},{i % 7}" for i in range(1000))
    for name, body, problem in (
        ("spaces.svg", nested('<use xlink:href=" #l{} "/>'), "expands to more than"),
        ("hrefs.svg", nested('<use xlink:href="#cheap" href="#l{}"/>'), "expands to more than"),
        (
            "markers.svg",
            f'<defs>{marker}</defs><polyline points="{points}" marker-mid="url(#m)"/>',
            "expands to more than",
        ),
        ("layers.svg", '<g opacity=".5"><rect width="9" height="9"/></g>' * 300, "opacity"),
    ):
        with pytest.raises(MediaError, match=problem):
            load_image(_svg(catalogue, name, body), LIMIT, LIMIT)
    red = f'<svg {NS} width="9" height="9"><rect width="9" height="9" fill="#ff0000"/></svg>'
    hidden = base64.b64encode(red.encode()).decode()
    for kind in ("image/png/x", "image/png"):  # malformed, and an SVG under a raster type
        image = f'<image width="100" height="100" href="data:{kind};base64,{hidden}"/>'
        assert (255, 0, 0, 255) not in _colours(_svg(catalogue, "hidden.svg", image))


def test_a_full_pool_refuses_at_once_instead_of_queueing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = RendererPool(size=1, queue_limit=0)
    started, release = threading.Event(), threading.Event()
    real = Renderer.render

    def slow(self: Renderer, data: bytes, path: Path, size: int, **limits: object) -> bytes:
        started.set()
        release.wait(10)
        return real(self, data, path, size, **limits)

    monkeypatch.setattr(Renderer, "render", slow)
    try:
        first = threading.Thread(target=pool.render, args=(GOOD.encode(), tmp_path / "a.svg", 10))
        first.start()
        assert started.wait(10)  # the only renderer is busy with a slow picture
        with pytest.raises(MediaError, match="too many SVG pictures"):
            pool.render(GOOD.encode(), tmp_path / "waits.svg", 10)
        release.set()
        first.join(10)
        assert pool.render(GOOD.encode(), tmp_path / "ok.svg", 10).startswith(b"\x89PNG")
    finally:
        release.set()
        pool.close()


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
            small.render(GOOD.encode(), tmp_path / "big.svg", 65535)
        assert small.render(GOOD.encode(), tmp_path / "ok.svg", 10).startswith(b"\x89PNG")
    finally:
        small.close()
    slow = Renderer(deadline=0.001)
    try:
        with pytest.raises(MediaError, match="longer than"):
            slow.render(GOOD.encode(), tmp_path / "slow.svg", 10)
    finally:
        slow.close()
    assert renderer().render(GOOD.encode(), tmp_path / "shared.svg", 10).startswith(b"\x89PNG")


def test_links_and_devices_are_not_read(catalogue: Path) -> None:
    real = catalogue / "real.svg"
    real.write_text(GOOD)
    link = catalogue / "link.svg"
    os.symlink(real, link)
    with pytest.raises(MediaError, match="symbolic link"):
        load_image(link, LIMIT, LIMIT)
    with pytest.raises(MediaError, match="not a regular file"):
        read_bounded(Path("/dev/zero"), LIMIT, "image")
