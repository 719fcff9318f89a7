"""What can honestly be measured from pixels alone, for when no captioning or CLIP weights exist.

* :func:`describe` names dominant colours, orientation, transparency and brightness.
* :func:`embed` is a fixed 256-d image descriptor: a Lab colour histogram, named-colour shares,
  a coarse colour layout, the silhouette (alpha) on a 4x4 grid and edge-orientation statistics,
  each block square-rooted (Hellinger) and weighted, the whole L2-normalised. It captures colour,
  shape and texture, not meaning: "a brown, furry, upright cut-out", not "a bear".

Both work on batches: images are resampled to one small grid and processed as one array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

GRID = 64
VERSION = "pixelstats-v1"

# Reference colours named in captions, in sRGB.
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20),
    "dark grey": (80, 80, 80),
    "grey": (150, 150, 150),
    "white": (245, 245, 245),
    "red": (200, 30, 30),
    "dark red": (120, 20, 25),
    "orange": (240, 140, 30),
    "yellow": (245, 220, 40),
    "green": (60, 160, 60),
    "dark green": (25, 80, 30),
    "blue": (40, 90, 200),
    "light blue": (130, 190, 235),
    "navy": (20, 30, 90),
    "purple": (120, 50, 150),
    "pink": (240, 150, 190),
    "brown": (120, 75, 40),
    "beige": (220, 195, 150),
    "teal": (30, 140, 140),
}
_NAMES = list(NAMED_COLOURS)


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1], shape (..., 3) -> CIE Lab (D65)."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    matrix = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    )
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


_PALETTE_LAB = _srgb_to_lab(np.array(list(NAMED_COLOURS.values()), dtype=np.float64) / 255.0)


def _batch(images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
    """(N, G, G, 3) Lab and (N, G, G) alpha weights on a GRID x GRID resample."""
    arrays = [
        np.asarray(
            img.convert("RGBA").resize((GRID, GRID), Image.Resampling.BILINEAR), dtype=np.float64
        )
        / 255.0
        for img in images
    ]
    stack = np.stack(arrays) if arrays else np.zeros((0, GRID, GRID, 4))
    return _srgb_to_lab(stack[..., :3]), stack[..., 3]


def _colour_shares(lab: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(N, len(NAMED_COLOURS)) share of opaque area nearest each named colour."""
    flat = lab.reshape(-1, 3)
    # |x - p|^2 = |x|^2 - 2 x.p + |p|^2; |x|^2 is constant per pixel, so argmin needs the rest.
    scores = flat @ _PALETTE_LAB.T * -2 + (_PALETTE_LAB**2).sum(axis=1)
    nearest = scores.argmin(axis=1).reshape(lab.shape[0], -1)
    totals = _binned(nearest, alpha.reshape(lab.shape[0], -1), len(_NAMES))
    shares: np.ndarray = totals / np.maximum(totals.sum(axis=1, keepdims=True), 1e-9)
    return shares


@dataclass(frozen=True)
class PixelFacts:
    """Measured facts about one picture."""

    width: int
    height: int
    opaque_share: float
    brightness: float  # mean L* of opaque pixels, 0-100
    colours: list[tuple[str, float]]  # named colours covering >= 8% of the opaque area

    @property
    def orientation(self) -> str:
        ratio = self.width / max(self.height, 1)
        return "landscape" if ratio > 1.15 else "portrait" if ratio < 0.87 else "square"


CHUNK = 8  # images per array pass: larger batches spill the per-pixel arrays out of cache


def analyse(images: Sequence[Image.Image]) -> list[PixelFacts]:
    facts: list[PixelFacts] = []
    for start in range(0, len(images), CHUNK):
        facts.extend(_analyse(images[start : start + CHUNK]))
    return facts


def _analyse(images: Sequence[Image.Image]) -> list[PixelFacts]:
    lab, alpha = _batch(images)
    shares = _colour_shares(lab, alpha)
    weight = np.maximum(alpha.sum(axis=(1, 2)), 1e-9)
    brightness = (lab[..., 0] * alpha).sum(axis=(1, 2)) / weight
    facts = []
    for index, image in enumerate(images):
        ranked = sorted(
            ((_NAMES[c], float(s)) for c, s in enumerate(shares[index]) if s >= 0.08),
            key=lambda pair: -pair[1],
        )
        facts.append(
            PixelFacts(
                width=image.width,
                height=image.height,
                opaque_share=float(alpha[index].mean()),
                brightness=float(brightness[index]),
                colours=ranked[:3],
            )
        )
    return facts


def sentence(facts: PixelFacts) -> str:
    """A plain description of what the pixels show, with no claim about what the picture depicts."""
    if facts.opaque_share < 0.01:
        return f"A fully transparent {facts.orientation} picture."
    tone = "dark" if facts.brightness < 35 else "bright" if facts.brightness > 70 else "mid-toned"
    if facts.colours:
        main = facts.colours[0][0]
        others = [name for name, _ in facts.colours[1:]]
        colours = f"mostly {main}" + (f" with {' and '.join(others)}" if others else "")
    else:
        colours = "many colours, none dominant"
    if facts.opaque_share < 0.97:
        shape = (
            f"cut-out on a transparent background (covering {facts.opaque_share:.0%} of the frame)"
        )
    else:
        shape = "picture filling the frame"
    return f"A {tone} {facts.orientation} {shape}; {colours}."


def describe(images: Sequence[Image.Image]) -> list[str]:
    return [sentence(f) for f in analyse(images)]


def _binned(bins: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """Per-row weighted histogram of (N, P) bin indices, in one bincount."""
    n = bins.shape[0]
    offsets = (bins + np.arange(n)[:, None] * size).ravel()
    return np.bincount(offsets, weights=weights.ravel(), minlength=n * size).reshape(n, size)


def _hellinger(block: np.ndarray) -> np.ndarray:
    total = np.maximum(block.sum(axis=1, keepdims=True), 1e-9)
    root: np.ndarray = np.sqrt(block / total)
    return root


def embed(images: Sequence[Image.Image]) -> np.ndarray:
    """(N, 256) float32 L2-normalised descriptors (see module docstring)."""
    lab, alpha = _batch(images)
    n = lab.shape[0]
    # 1. Lab histogram, 4 x 6 x 6 = 144 bins, weighted by opacity.
    l_bin = np.clip((lab[..., 0] / 100 * 4).astype(int), 0, 3)
    a_bin = np.clip(((lab[..., 1] + 80) / 160 * 6).astype(int), 0, 5)
    b_bin = np.clip(((lab[..., 2] + 80) / 160 * 6).astype(int), 0, 5)
    bins = (l_bin * 36 + a_bin * 6 + b_bin).reshape(n, -1)
    weights = alpha.reshape(n, -1)
    hist = _binned(bins, weights, 144)
    # 2. Named-colour shares (18).
    shares = _colour_shares(lab, alpha)
    # 3. Colour layout: mean Lab in a 2 x 2 grid (12), scaled to about [-1, 1].
    cells = lab.reshape(n, 2, GRID // 2, 2, GRID // 2, 3)
    cell_alpha = alpha.reshape(n, 2, GRID // 2, 2, GRID // 2)[..., None]
    layout = (cells * cell_alpha).sum(axis=(2, 4)) / np.maximum(cell_alpha.sum(axis=(2, 4)), 1e-9)
    layout = (layout / np.array([100.0, 80.0, 80.0])).reshape(n, -1)
    # 4. Silhouette: opaque share in a 4 x 4 grid (16).
    silhouette = alpha.reshape(n, 4, GRID // 4, 4, GRID // 4).mean(axis=(2, 4)).reshape(n, -1)
    # 5. Texture: gradient orientation histogram, 8 bins weighted by magnitude, plus the mean
    #    magnitude and the share of strong edges (10).
    lum = lab[..., 0] / 100 * alpha + (1 - alpha)  # transparent areas read as flat white
    gy, gx = np.gradient(lum, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    angle = (np.arctan2(gy, gx) % np.pi) / np.pi * 8
    angle_bins = np.clip(angle.astype(int), 0, 7).reshape(n, -1)
    orient = _binned(angle_bins, magnitude.reshape(n, -1), 8)
    edge_stats = np.stack(
        [magnitude.mean(axis=(1, 2)) * 4, (magnitude > 0.1).mean(axis=(1, 2))], axis=1
    )
    blocks = [
        (_hellinger(hist), 1.0),
        (_hellinger(shares), 0.8),
        (layout, 0.5),
        (silhouette, 0.6),
        (_hellinger(orient), 0.5),
        (edge_stats, 0.5),
    ]
    parts = [block * weight for block, weight in blocks]
    used = sum(p.shape[1] for p in parts)
    parts.append(np.zeros((n, DIMENSIONS - used)))
    out = np.concatenate(parts, axis=1)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    return out.astype(np.float32)


DIMENSIONS = 256
