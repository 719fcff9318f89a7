"""Safe loading of item media: size limits, corrupt files and SVG rendering, with clear errors.

Every failure is a :class:`MediaError` whose message names the file and the problem, so the
indexer can report it against the item and move on.
"""

from __future__ import annotations

import gzip
import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tools.errors import MediaError

SVG_SUFFIXES = {".svg", ".svgz"}
WORKING_SIZE = 384  # longest side kept after decoding; captioners and embedders downscale anyway


def check_file(path: Path, max_bytes: int, kind: str) -> int:
    """Existence, type, emptiness and size checks; returns the size in bytes."""
    if not path.exists():
        raise MediaError(f"{kind} file not found: {path}")
    if not path.is_file():
        raise MediaError(f"{kind} path is not a regular file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{kind} file is empty (0 bytes): {path}")
    if size > max_bytes:
        raise MediaError(
            f"{kind} file is {size / 1e6:.1f} MB, over the limit of "
            f"{max_bytes / 1e6:.1f} MB: {path}"
        )
    return size


def load_image(
    path: Path, max_bytes: int, max_pixels: int, working_size: int = WORKING_SIZE
) -> Image.Image:
    """Decode an image (raster or SVG) to RGBA, downscaled to ``working_size`` on its long side."""
    check_file(path, max_bytes, "image")
    if path.suffix.lower() in SVG_SUFFIXES:
        image = _render_svg(path, working_size)
    else:
        image = _decode_raster(path, max_pixels)
    if image.width * image.height > max_pixels:
        raise MediaError(
            f"image is {image.width}x{image.height} pixels, "
            f"over the limit of {max_pixels:,}: {path}"
        )
    image = image.convert("RGBA")
    image.thumbnail((working_size, working_size), Image.Resampling.BILINEAR)
    return image


def _decode_raster(path: Path, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            width, height = image.size
            if width * height > max_pixels:
                raise MediaError(
                    f"image is {width}x{height} pixels, over the limit of {max_pixels:,}: {path}"
                )
            image.draft("RGB", (WORKING_SIZE * 2, WORKING_SIZE * 2))  # JPEG: decode at lower scale
            image.load()
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"image is too large to decode safely ({exc}): {path}") from exc
    except UnidentifiedImageError as exc:
        raise MediaError(f"not a readable image (unknown or corrupt format): {path}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"corrupt or truncated image ({exc}): {path}") from exc
    return image


_UNIT_PX = {"px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
_SIZE_ATTR = re.compile(r'\b(width|height)\s*=\s*"\s*([0-9.]+)\s*(px|pt|pc|mm|cm|in|%)\s*"')


def _px_units(svg_text: str) -> str:
    """Rewrite the root element's width/height in absolute units to pixels (resvg rejects some
    unit forms as an invalid size); percentages are dropped so the viewBox decides."""
    match = re.search(r"<svg\b[^>]*>", svg_text)
    if not match:
        return svg_text

    def fix(attr: re.Match[str]) -> str:
        if attr.group(3) == "%":
            return ""
        return f'{attr.group(1)}="{float(attr.group(2)) * _UNIT_PX[attr.group(3)]:.2f}"'

    tag = _SIZE_ATTR.sub(fix, match.group(0))
    return svg_text[: match.start()] + tag + svg_text[match.end() :]


def _render_svg(path: Path, size: int) -> Image.Image:
    import resvg_py

    try:
        raw = path.read_bytes()
        if path.suffix.lower() == ".svgz":
            raw = gzip.decompress(raw)
        text = _px_units(raw.decode("utf-8", errors="replace"))
        png = resvg_py.svg_to_bytes(svg_string=text, width=size, resources_dir=str(path.parent))
        image = Image.open(io.BytesIO(bytes(png)))
        image.load()
    except (ValueError, OSError, EOFError) as exc:
        raise MediaError(f"SVG could not be rendered ({exc}): {path}") from exc
    return image


def to_array(image: Image.Image) -> np.ndarray:
    """RGBA uint8 array of shape (H, W, 4)."""
    return np.asarray(image.convert("RGBA"), dtype=np.uint8)


def composite_rgb(
    image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)
) -> Image.Image:
    """Flatten transparency onto a background, as models expect RGB."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")
