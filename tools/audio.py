"""Reading item audio into 16 kHz mono float32, with size and duration limits and clear errors.

libsndfile (through ``soundfile``) reads WAV, FLAC, OGG/Vorbis/Opus and MP3; anything else goes
through PyAV's ffmpeg (bundled with faster-whisper). Resampling uses a polyphase filter.
"""

from __future__ import annotations

import io
from math import gcd
from pathlib import Path

import numpy as np

from tools.errors import MediaError
from tools.files import read_bounded

SAMPLE_RATE = 16_000


def load_audio(path: Path, max_bytes: int, max_seconds: float) -> np.ndarray:
    """The file read once (no link followed, size checked), its duration read from the
    container before decoding, and decoding stopped at the limit whatever the container says."""
    data = read_bounded(path, max_bytes, "audio")
    try:
        samples, rate = _read_soundfile(data, path, max_seconds)
    except MediaError:
        raise
    except Exception as first:  # libsndfile refused: try ffmpeg before giving up
        try:
            samples, rate = _read_av(data, path, max_seconds), SAMPLE_RATE
        except MediaError:
            raise
        except Exception as second:
            raise MediaError(
                f"unreadable or corrupt audio ({first}; ffmpeg: {second}): {path}"
            ) from second
    if samples.size == 0:
        raise MediaError(f"audio holds no samples: {path}")
    if not np.isfinite(samples).all():
        raise MediaError(f"audio holds invalid (NaN or infinite) samples: {path}")
    duration = samples.size / rate
    if duration > max_seconds:
        raise MediaError(_too_long(duration, max_seconds, path))
    return resample(samples, rate)


def _too_long(seconds: float, max_seconds: float, path: Path) -> str:
    return f"audio lasts {seconds:.0f} s, over the limit of {max_seconds:.0f} s: {path}"


def _read_soundfile(data: bytes, path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    import soundfile

    info = soundfile.info(io.BytesIO(data))
    if info.frames > 0 and info.duration > max_seconds:
        raise MediaError(_too_long(info.duration, max_seconds, path))
    frames = int((max_seconds + 1) * info.samplerate)  # never more than the limit, if it lies
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True, frames=frames)
    return samples.mean(axis=1), int(rate)


def _read_av(data: bytes, path: Path, max_seconds: float) -> np.ndarray:
    """ffmpeg (PyAV) for what libsndfile cannot read: the container's duration is checked first,
    then decoding to 16 kHz mono stops as soon as it passes the limit."""
    import av

    with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
        if not container.streams.audio:
            raise MediaError(f"no audio stream in the file: {path}")
        if container.duration is not None and container.duration / 1e6 > max_seconds:
            raise MediaError(_too_long(container.duration / 1e6, max_seconds, path))
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        limit = int((max_seconds + 1) * SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        total = 0
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += chunk.size
            if total > limit:
                raise MediaError(_too_long(total / SAMPLE_RATE, max_seconds, path))
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    if rate == target:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    factor = gcd(rate, target)
    resampled = resample_poly(samples, target // factor, rate // factor)
    return np.asarray(resampled, dtype=np.float32)
