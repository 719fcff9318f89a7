"""Reading item audio into 16 kHz mono float32, with size and duration limits and clear errors.

libsndfile (through ``soundfile``) reads WAV, FLAC, OGG/Vorbis/Opus and MP3; anything else goes
through PyAV's ffmpeg (bundled with faster-whisper). Resampling uses a polyphase filter.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np

from tools.errors import MediaError
from tools.media import check_file

SAMPLE_RATE = 16_000


def load_audio(path: Path, max_bytes: int, max_seconds: float) -> np.ndarray:
    check_file(path, max_bytes, "audio")
    try:
        samples, rate = _read_soundfile(path, max_seconds)
    except MediaError:
        raise
    except Exception as first:  # libsndfile refused: try ffmpeg before giving up
        try:
            samples, rate = _read_av(path), SAMPLE_RATE
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
        raise MediaError(
            f"audio lasts {duration:.0f} s, over the limit of {max_seconds:.0f} s: {path}"
        )
    return resample(samples, rate)


def _read_soundfile(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    import soundfile

    info = soundfile.info(str(path))
    if info.frames > 0 and info.duration > max_seconds:
        raise MediaError(
            f"audio lasts {info.duration:.0f} s, over the limit of {max_seconds:.0f} s: {path}"
        )
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return data.mean(axis=1), int(rate)


def _read_av(path: Path) -> np.ndarray:
    from faster_whisper.audio import decode_audio

    return np.asarray(decode_audio(str(path), sampling_rate=SAMPLE_RATE), dtype=np.float32)


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    if rate == target:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    factor = gcd(rate, target)
    resampled = resample_poly(samples, target // factor, rate // factor)
    return np.asarray(resampled, dtype=np.float32)
