"""The bad-input corpus at the media level, plus SVG rendering."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import media
from tools.audio import load_audio
from tools.media import MediaError, load_image

BIG = 10**9


def test_png_and_svg_decode(tmp_path: Path) -> None:
    image = load_image(media.png(tmp_path / "a.png", (255, 0, 0, 128), (800, 400)), BIG, BIG)
    assert image.mode == "RGBA" and max(image.size) == 384
    svg = tmp_path / "a.svg"
    svg.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="2in" height="1in">'
        '<rect width="100%" height="100%" fill="#00ff00"/></svg>'
    )
    rendered = np.asarray(load_image(svg, BIG, BIG))
    assert rendered.shape[1] == 384 and rendered.shape[0] == 192  # 'in' units handled
    assert tuple(rendered[10, 10]) == (0, 255, 0, 255)


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("zero.png", b"", "empty"),
        ("text.png", b"just text", "not a readable"),
        ("broken.svg", b"<svg><unclosed", "SVG"),
        ("missing.png", None, "not found"),
        ("corrupt.png", "corrupt", "corrupt"),
    ],
)
def test_bad_images_name_the_problem(
    tmp_path: Path, name: str, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / name
    if content == "corrupt":
        media.corrupt_png(path)
    elif isinstance(content, bytes):
        _write(path, content)
    with pytest.raises(MediaError, match=message) as info:
        load_image(path, BIG, BIG)
    assert str(path) in str(info.value)


def test_truncated_png(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(good)
    with pytest.raises(MediaError, match="corrupt or truncated"):
        load_image(media.truncated_copy(good, tmp_path / "cut.png", 0.5), BIG, BIG)


def test_image_limits(tmp_path: Path) -> None:
    path = media.png(tmp_path / "big.png", (0, 0, 0, 255), (3000, 2000))
    with pytest.raises(MediaError, match="3000x2000 pixels, over the limit"):
        load_image(path, BIG, 1_000_000)
    with pytest.raises(MediaError, match="MB, over the limit"):
        load_image(path, 100, BIG)


def test_audio_decode_resamples_and_rejects_bad_files(tmp_path: Path) -> None:
    wav = media.noise_wav(tmp_path / "n.wav", 2.0)
    assert load_audio(wav, BIG, 60).shape == (32000,)
    import soundfile

    soundfile.write(str(tmp_path / "hi.flac"), np.zeros(44100, dtype=np.float32), 44100)
    assert load_audio(tmp_path / "hi.flac", BIG, 60).shape == (16000,)
    (tmp_path / "zero.ogg").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        load_audio(tmp_path / "zero.ogg", BIG, 60)
    (tmp_path / "junk.ogg").write_bytes(b"OggS" + bytes(100))
    with pytest.raises(MediaError, match="unreadable or corrupt audio"):
        load_audio(tmp_path / "junk.ogg", BIG, 60)
    with pytest.raises(MediaError, match="over the limit of 1 s"):
        load_audio(wav, BIG, 1)


def test_truncated_ogg_is_an_error_or_shorter_audio(tmp_path: Path, demo_catalogue: Path) -> None:
    source = next((demo_catalogue.parent / "media").rglob("*_desc.ogg"))
    cut = media.truncated_copy(source, tmp_path / "cut.ogg", 0.1)
    try:
        samples = load_audio(cut, BIG, 60)
    except MediaError as exc:
        assert str(cut) in str(exc)
    else:  # libsndfile may decode the pages that survived: never more than the original
        assert 0 < samples.size < load_audio(source, BIG, 60).size


def _aac(path: Path, seconds: float) -> Path:
    """An M4A (AAC) file: a format libsndfile cannot read, so ffmpeg decodes it."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"  # type: ignore[union-attr]
        samples = np.zeros((1, 1024), dtype=np.float32)
        for index in range(int(seconds * 16000 / 1024)):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = index * 1024
            for packet in stream.encode(frame):  # type: ignore[union-attr]
                container.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            container.mux(packet)
    return path


def test_audio_duration_is_read_from_the_container_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _aac(tmp_path / "long.m4a", 6.0)
    assert load_audio(path, BIG, 60).shape[0] > 5 * 16000  # ffmpeg reads it
    import av

    decoded: list[int] = []
    original = av.container.InputContainer.decode

    def counting(self: object, *args: object, **kwargs: object) -> object:
        decoded.append(1)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(av.container.InputContainer, "decode", counting)
    with pytest.raises(MediaError, match="over the limit of 2 s"):
        load_audio(path, BIG, 2)
    assert decoded == []  # refused from the container's duration, nothing decoded


def test_media_symlinks_are_not_followed(tmp_path: Path) -> None:
    wav = media.noise_wav(tmp_path / "n.wav", 1.0)
    (tmp_path / "link.wav").symlink_to(wav)
    with pytest.raises(MediaError, match="symbolic link"):
        load_audio(tmp_path / "link.wav", BIG, 60)


@pytest.mark.parametrize(
    ("rate", "channels", "problem"),
    [
        (1_000_003, 1, "sample rate of 1,000,003 Hz"),
        (10_000_019, 1, "sample rate"),
        (2**31 - 1, 1, "sample rate"),
        (3_999, 1, "sample rate"),
        (16_000, 16, "16 channels"),
    ],
)
def test_audio_header_claims_are_refused_before_decoding(
    tmp_path: Path, rate: int, channels: int, problem: str
) -> None:
    """A 20 KB WAV may claim any sample rate or channel count; decoding and resampling cost
    follows the claim, so it is checked first (a million Hz once took 900 MB)."""
    path = media.lying_wav(tmp_path / "voice.wav", rate, channels)
    with pytest.raises(MediaError, match=problem):
        load_audio(path, 1_000_000, 600)
    fine = media.lying_wav(tmp_path / "fine.wav", 16_000, 2)
    assert load_audio(fine, 1_000_000, 600).shape == (5_000,)
