"""Reading item audio into 16 kHz mono float32, with size and duration limits and clear errors.

libsndfile (through ``soundfile``) reads WAV, FLAC, OGG/Vorbis/Opus and MP3; anything else goes
through PyAV's ffmpeg (bundled with faster-whisper). Resampling uses a polyphase filter.
"""

from __future__ import annotations

import io
import struct
from math import gcd
from pathlib import Path

import numpy as np

from tools.errors import MediaError
from tools.files import read_bounded
from tools.text import without_object_names

SAMPLE_RATE = 16_000
MIN_RATE, MAX_RATE = 4_000, 192_000  # sample rates a file may declare (the demo has 5 kHz)
MAX_CHANNELS = 8
MAX_DECODED_SAMPLES = 32_000_000  # mono samples before resampling (128 MB of float32)
BLOCK_FRAMES = 1 << 16


def load_audio(path: Path, max_bytes: int, max_seconds: float) -> np.ndarray:
    """The file read once (no link followed, size checked), its sample rate, channels and
    duration read from the header and checked before decoding, and decoding stopped at the
    limit (in seconds and in samples) whatever the header says."""
    data = read_bounded(path, max_bytes, "audio")
    declared = _riff_format(data)
    if declared is not None:  # a WAV's own claim, checked even where no decoder can open it
        check_format(*declared, path)
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
                f"unreadable or corrupt audio ({_reason(first)}; ffmpeg: {_reason(second)}): {path}"
            ) from second
    if samples.size == 0:
        raise MediaError(f"audio holds no samples: {path}")
    if not np.isfinite(samples).all():
        raise MediaError(f"audio holds invalid (NaN or infinite) samples: {path}")
    duration = samples.size / rate
    if duration > max_seconds:
        raise MediaError(_too_long(duration, max_seconds, path))
    return resample(samples, rate)


def _reason(exc: Exception) -> str:
    """A decoder's error text without the in-memory file's ``<... object at 0x...>``."""
    return without_object_names(str(exc), "the file")[:300]


def _too_long(seconds: float, max_seconds: float, path: Path) -> str:
    return f"audio lasts {seconds:.0f} s, over the limit of {max_seconds:.0f} s: {path}"


def check_format(rate: int, channels: int, path: Path) -> None:
    """Refuse a declared sample rate or channel count outside sane bounds, before decoding
    (a header may claim anything, and decoding and resampling cost follows the claim)."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise MediaError(
            f"audio declares a sample rate of {rate:,} Hz, outside {MIN_RATE:,}-{MAX_RATE:,} Hz: "
            f"{path}"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise MediaError(f"audio declares {channels} channels, outside 1-{MAX_CHANNELS}: {path}")


def _riff_format(data: bytes) -> tuple[int, int] | None:
    """(sample rate, channels) from a RIFF/WAVE file's ``fmt`` chunk, None if it has none: a
    bounded walk over at most 64 chunk headers."""
    if len(data) < 12 or data[:4] not in {b"RIFF", b"RIFX"} or data[8:12] != b"WAVE":
        return None
    order = "<" if data[:4] == b"RIFF" else ">"
    offset = 12
    for _ in range(64):
        if offset + 8 > len(data):
            return None
        kind, size = (
            data[offset : offset + 4],
            struct.unpack(order + "I", data[offset + 4 : offset + 8])[0],
        )
        if kind == b"fmt " and offset + 16 <= len(data):
            channels, rate = struct.unpack(order + "HI", data[offset + 10 : offset + 16])
            return int(rate), int(channels)
        offset += 8 + size + (size & 1)
    return None


def _sample_cap(rate: int, max_seconds: float) -> int:
    """Mono samples to decode at most: the duration limit (plus a second) at ``rate``, within
    :data:`MAX_DECODED_SAMPLES` whatever the limit says."""
    return min(int((max_seconds + 1) * rate), MAX_DECODED_SAMPLES)


def _read_soundfile(data: bytes, path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    import soundfile

    info = soundfile.info(io.BytesIO(data))
    check_format(int(info.samplerate), int(info.channels), path)
    if info.frames > 0 and info.duration > max_seconds:
        raise MediaError(_too_long(info.duration, max_seconds, path))
    cap = _sample_cap(int(info.samplerate), max_seconds)
    blocks: list[np.ndarray] = []
    total = 0
    with soundfile.SoundFile(io.BytesIO(data)) as sound:  # block by block, mixed down as read
        while total <= cap:
            block = sound.read(min(BLOCK_FRAMES, cap + 1 - total), dtype="float32", always_2d=True)
            if not len(block):
                break
            blocks.append(block.mean(axis=1))
            total += len(block)
    if total > cap:
        raise MediaError(_too_long(total / info.samplerate, max_seconds, path))
    samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return samples, int(info.samplerate)


def _read_av(data: bytes, path: Path, max_seconds: float) -> np.ndarray:
    """ffmpeg (PyAV) for what libsndfile cannot read: the container's duration is checked first,
    then decoding to 16 kHz mono stops as soon as it passes the limit."""
    import av

    with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
        if not container.streams.audio:
            raise MediaError(f"no audio stream in the file: {path}")
        stream = container.streams.audio[0]
        check_format(int(stream.rate or 0), int(stream.channels or 0), path)
        if container.duration is not None and container.duration / 1e6 > max_seconds:
            raise MediaError(_too_long(container.duration / 1e6, max_seconds, path))
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        limit = _sample_cap(SAMPLE_RATE, max_seconds)
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
