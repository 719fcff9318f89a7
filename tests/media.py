"""Makers of real and deliberately broken media files for tests."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image


def png(path: Path, colour: tuple[int, int, int, int], size: tuple[int, int] = (64, 48)) -> Path:
    Image.new("RGBA", size, colour).save(path)
    return path


def corrupt_png(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    return path


def truncated_copy(source: Path, path: Path, keep: float = 0.3) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: max(64, int(len(data) * keep))])
    return path


def speech_wav(path: Path, text: str) -> Path:
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    return path


def noise_wav(path: Path, seconds: float = 3.0) -> Path:
    import soundfile

    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * seconds)) / 16000
    signal = 0.3 * np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.25) + 0.05 * rng.normal(size=t.size)
    soundfile.write(str(path), signal.astype(np.float32), 16000)
    return path


def lying_wav(path: Path, rate: int, channels: int = 1, data_bytes: int = 20_000) -> Path:
    """A PCM WAV whose header declares ``rate`` and ``channels`` over a few bytes of noise (the
    header is written by hand, so it may claim what no encoder would write)."""
    data = np.random.default_rng(0).integers(-3000, 3000, data_bytes // 2).astype("<i2")
    fmt = struct.pack(
        "<IHHIIHH", 16, 1, channels, rate, (rate * channels * 2) & 0xFFFFFFFF, channels * 2, 16
    )
    body = data.tobytes()
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 36 + len(body))
        + b"WAVEfmt "
        + fmt
        + b"data"
        + struct.pack("<I", len(body))
        + body
    )
    return path
