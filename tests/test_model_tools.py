"""The model-backed tools on real shipped models (Whisper tiny.en, MiniLM) and on tiny
random-weight transformers models loaded through the same code as real checkpoints."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import media
from tests.tiny_models import tiny_blip, tiny_clip
from tools import pixels
from tools.audio import load_audio
from tools.caption import PixelCaptioner, TransformersCaptioner, make_captioner
from tools.config import DEFAULT_TEXT_EMBEDDER, DEFAULT_WHISPER
from tools.embed_image import ClipEmbedder, PixelEmbedder, make_image_embedder
from tools.embed_text import TextEmbedder
from tools.provisioning import resolve
from tools.transcribe import FasterWhisperTranscriber, OpenAIWhisperTranscriber

SENTENCE = (
    "Welcome to the music shop. Today we recommend a warm wool sweater, a fresh loaf "
    "of bread, and a red bicycle for the weekend."
)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    wav = media.speech_wav(tmp_path_factory.mktemp("speech") / "s.wav", SENTENCE)
    audio = load_audio(wav, 10**8, 60)
    assert audio.size / 16000 >= 5.0  # tiny.en needs 5 s or more to be reliable
    return audio


@pytest.fixture(scope="module")
def whisper(prepared_models: Path) -> FasterWhisperTranscriber:
    return FasterWhisperTranscriber(
        resolve(DEFAULT_WHISPER, prepared_models / "models"), model_id=DEFAULT_WHISPER
    )


def _words(text: str) -> set[str]:
    return {w.strip(".,!?").lower() for w in text.split()}


def test_faster_whisper_transcribes_espeak_speech(
    whisper: FasterWhisperTranscriber, speech: np.ndarray
) -> None:
    result = whisper.transcribe(speech)
    expected = _words(SENTENCE)
    assert len(_words(result.text) & expected) >= 0.8 * len(expected), result.text
    assert {"bicycle", "bread", "weekend"} <= _words(result.text)
    assert result.language == "en"
    assert result.segments and result.segments[0].start < result.segments[-1].end
    assert result.source == DEFAULT_WHISPER


def test_sound_effects_yield_no_invented_text(
    whisper: FasterWhisperTranscriber, tmp_path: Path
) -> None:
    noise = load_audio(media.noise_wav(tmp_path / "n.wav", 4.0), 10**8, 60)
    result = whisper.transcribe(noise)
    assert result.text == "" and result.language is None


def test_openai_whisper_backend_loads_a_checkpoint_file(tmp_path: Path, speech: np.ndarray) -> None:
    """No openai-whisper weights ship offline: a tiny random checkpoint exercises the real path."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=32,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51864,
        n_text_ctx=64,
        n_text_state=32,
        n_text_head=2,
        n_text_layer=1,
    )
    checkpoint = tmp_path / "tiny.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": Whisper(dims).state_dict()}, checkpoint)
    transcriber = OpenAIWhisperTranscriber(str(checkpoint), no_speech_threshold=1.0)
    result = transcriber.transcribe(speech[: 16000 * 6])
    assert result.source == f"openai-whisper:{checkpoint}"
    assert result.speech_seconds > 3
    assert isinstance(result.text, str)  # random weights: the words are noise, the path is real
    noise = load_audio(media.noise_wav(tmp_path / "n.wav"), 10**8, 60)
    assert transcriber.transcribe(noise).text == ""


def test_minilm_similarity(prepared_models: Path) -> None:
    embedder = TextEmbedder(resolve(DEFAULT_TEXT_EMBEDDER, prepared_models / "models"))
    vectors = embedder.embed(
        ["a small dog playing fetch", "a puppy chasing a ball", "quarterly tax spreadsheet"]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_pixel_captions_name_what_is_measurable() -> None:
    red = Image.new("RGBA", (200, 100), (210, 25, 25, 255))
    cutout = Image.new("RGBA", (100, 200), (0, 0, 0, 0))
    cutout.paste((30, 60, 200, 255), (25, 50, 75, 150))
    dark = Image.new("RGBA", (100, 100), (15, 15, 15, 255))
    captions = PixelCaptioner().caption([red, cutout, dark])
    assert all(c.source == "pixels" for c in captions)
    assert "landscape" in captions[0].text and "mostly red" in captions[0].text
    assert "filling the frame" in captions[0].text
    assert "portrait" in captions[1].text and "transparent background" in captions[1].text
    assert "blue" in captions[1].text
    assert "dark" in captions[2].text and "black" in captions[2].text
    assert isinstance(make_captioner(None), PixelCaptioner)


def test_pixel_embedding_is_batch_invariant_and_discriminates() -> None:
    rng = np.random.default_rng(1)
    red = Image.new("RGBA", (64, 64), (200, 30, 30, 255))
    red_noisy = Image.fromarray(
        np.clip(np.asarray(red) + rng.integers(-12, 12, (64, 64, 4)), 0, 255).astype(np.uint8)
    )
    green = Image.new("RGBA", (64, 64), (40, 170, 60, 255))
    embedder = make_image_embedder(None)
    assert isinstance(embedder, PixelEmbedder)
    batch = embedder.embed([red, red_noisy, green])
    assert batch.shape == (3, pixels.DIMENSIONS)
    assert np.allclose(batch[2], embedder.embed([green])[0], atol=1e-6)
    assert batch[0] @ batch[1] > batch[0] @ batch[2] + 0.2
    with pytest.raises(NotImplementedError):
        embedder.embed_texts(["red"])


def test_transformers_captioner_on_a_tiny_blip(tmp_path: Path) -> None:
    folder = tiny_blip(tmp_path / "blip")
    captioner = make_captioner(str(folder))
    assert isinstance(captioner, TransformersCaptioner)
    images = [
        Image.new("RGBA", (40, 30), (255, 0, 0, 255)),
        Image.new("RGB", (20, 50), "blue"),
        Image.new("RGBA", (64, 64), (0, 0, 0, 0)),
    ]
    captions = captioner.caption(images)
    assert len(captions) == 3
    assert all(c.source == str(folder) and isinstance(c.text, str) for c in captions)


def test_clip_embedder_on_a_tiny_clip(tmp_path: Path) -> None:
    embedder = make_image_embedder(str(tiny_clip(tmp_path / "clip")))
    assert isinstance(embedder, ClipEmbedder) and embedder.supports_text
    images = embedder.embed(
        [Image.new("RGBA", (40, 30), (255, 0, 0, 255)), Image.new("RGB", (50, 50), "blue")]
    )
    texts = embedder.embed_texts(["a red dog", "sky"])
    assert images.shape == (2, 16) and texts.shape == (2, 16)
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    assert embedder.model_id == f"clip:{tmp_path / 'clip'}"


def test_a_few_texts_embed_on_one_thread_a_batch_on_all(prepared_models: Path) -> None:
    """A query's few phrases embed on one thread, so they never wait on a core that another
    process holds (the local vLLM busy-waits after each answer); a batch keeps every thread.
    The vectors do not depend on it, and the caller's thread count is restored."""
    import torch

    embedder = TextEmbedder(resolve(DEFAULT_TEXT_EMBEDDER, prepared_models / "models"))
    seen: list[int] = []
    embedder.load().register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    phrases = ["an animal that eats fish", "salmon, tuna, shark"]
    short = embedder.embed(phrases)
    assert set(seen) == {1} and torch.get_num_threads() == before
    seen.clear()
    batch = embedder.embed(phrases * 40)
    assert set(seen) == {before}
    assert np.allclose(short, batch[:2], atol=1e-5)
