"""Safe loading of item media: size limits, corrupt files and SVG rendering, with clear errors.

Every failure is a :class:`MediaError` whose message names the file and the problem, so the
indexer can report it against the item and move on.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tools.errors import MediaError
from tools.files import read_bounded
from tools.svg import MAX_SVG_BYTES, renderer

SVG_SUFFIXES = {".svg", ".svgz"}
WORKING_SIZE = 384  # longest side kept after decoding; captioners and embedders downscale anyway


def load_image(
    path: Path, max_bytes: int, max_pixels: int, working_size: int = WORKING_SIZE
) -> Image.Image:
    """Decode an image (raster or SVG) to RGBA, downscaled to ``working_size`` on its long side.
    The file is read once, without following a link; an SVG is rendered by :mod:`tools.svg`."""
    return decode_image(
        read_bounded(path, max_bytes, "image"), path, max_bytes, max_pixels, working_size
    )


def decode_image(
    data: bytes, path: Path, max_bytes: int, max_pixels: int, working_size: int = WORKING_SIZE
) -> Image.Image:
    """:func:`load_image` on bytes already read from ``path`` (named in errors)."""
    if path.suffix.lower() in SVG_SUFFIXES:
        image = _render_svg(data, path, max_bytes, working_size)
    else:
        image = _decode_raster(data, path, max_pixels)
    if image.width * image.height > max_pixels:
        raise MediaError(
            f"image is {image.width}x{image.height} pixels, "
            f"over the limit of {max_pixels:,}: {path}"
        )
    image = image.convert("RGBA")
    image.thumbnail((working_size, working_size), Image.Resampling.BILINEAR)
    return image


def _decode_raster(data: bytes, path: Path, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
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


def _render_svg(data: bytes, path: Path, max_bytes: int, size: int) -> Image.Image:
    png = renderer().render(
        data, path, size, max_bytes=min(max_bytes, MAX_SVG_BYTES), max_ref_bytes=max_bytes
    )
    try:
        image = Image.open(io.BytesIO(png))
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
