"""Fuzzing the loaders of untrusted input (Hypothesis, bounded in time): whatever bytes a
catalogue file, a picture or a sound holds, loading it either succeeds or reports a clear error
for that row or file; nothing else escapes."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexing.loaders import load_catalogue
from tools.audio import load_audio
from tools.errors import MediaError
from tools.media import load_image

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
LIMIT = 2_000_000
T = TypeVar("T")


def loaded_or_named_error(load: Callable[[Path], T], path: Path) -> T | None:
    """``load(path)``, or None when it refused the file with a MediaError naming it (anything
    else propagates and fails the test)."""
    try:
        return load(path)
    except MediaError as exc:
        assert str(path) in str(exc)
        return None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
rows = st.one_of(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "title",
                "description",
                "price",
                "category",
                "attributes",
                "image",
                "audio",
                "metadata",
                "extra",
            ]
        ),
        json_values,
    ),
    json_values,
)


@FUZZ
@given(st.lists(st.one_of(rows.map(json.dumps), st.binary(max_size=200).map(repr)), max_size=8))
def test_catalogue_loader_never_raises_on_rows(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "items.jsonl"
        path.write_text("\n".join(lines) + "\n")
        result = load_catalogue(path)
        assert len(result.items) + len(result.errors) <= len(lines)
        for error in result.errors:
            assert error.where.startswith("line ") and error.problem


@FUZZ
@given(st.binary(max_size=4000), st.sampled_from([".png", ".jpg", ".gif", ".svg", ".svgz"]))
def test_image_loader_raises_only_media_errors(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"picture{suffix}"
        path.write_bytes(data)
        image = loaded_or_named_error(lambda p: load_image(p, LIMIT, LIMIT), path)
        if image is not None:
            assert image.mode == "RGBA" and max(image.size) <= 384


svg_bodies = st.lists(
    st.sampled_from(
        [
            '<rect width="5" height="5" fill="red"/>',
            "<g>",
            "</g>",
            '<image href="/etc/passwd"/>',
            '<circle r="1e30"/>',
            "<text>hi</text>",
            "&amp;",
            "<!-- x -->",
            '<use href="#a"/>',
            '<filter id="f"><feGaussianBlur stdDeviation="1e9"/></filter>',
        ]
    ),
    max_size=12,
).map("".join)


@FUZZ
@given(
    svg_bodies,
    st.sampled_from(
        ['width="10" height="10"', 'viewBox="0 0 1e9 1"', 'width="-5"', 'viewBox="a b c d"', ""]
    ),
)
def test_svg_markup_raises_only_media_errors(body: str, size: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "picture.svg"
        path.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" {size}>{body}</svg>')
        loaded_or_named_error(lambda p: load_image(p, LIMIT, LIMIT), path)


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([".wav", ".ogg", ".mp3", ".flac", ".m4a"]))
def test_audio_loader_raises_only_media_errors(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"sound{suffix}"
        path.write_bytes(data)
        samples = loaded_or_named_error(lambda p: load_audio(p, LIMIT, 30), path)
        if samples is not None:
            assert samples.dtype == np.float32 and np.isfinite(samples).all()


def _valid_bytes(suffix: str) -> bytes:
    import io

    import soundfile
    from PIL import Image

    buffer = io.BytesIO()
    if suffix == ".png":
        Image.new("RGBA", (24, 16), (10, 200, 30, 255)).save(buffer, format="PNG")
    else:
        soundfile.write(buffer, np.zeros(8000, dtype=np.float32), 16000, format="WAV")
    return buffer.getvalue()


@FUZZ
@given(
    st.sampled_from([".png", ".wav"]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=12),
    st.integers(0, 10_000),
)
def test_mutated_valid_media_raise_only_media_errors(
    suffix: str, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_valid_bytes(suffix))
    for position, value in flips:
        data[position % len(data)] = value
    data = data[: max(1, len(data) - cut % len(data))]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"mutated{suffix}"
        path.write_bytes(bytes(data))
        if suffix == ".png":
            loaded_or_named_error(lambda p: load_image(p, LIMIT, LIMIT), path)
        else:
            loaded_or_named_error(lambda p: load_audio(p, LIMIT, 30), path)
