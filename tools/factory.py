"""Build the configured models (nothing loads until first use)."""

from __future__ import annotations

from dataclasses import dataclass

from tools.caption import Captioner, make_captioner
from tools.config import Settings
from tools.embed_image import ImageEmbedder, make_image_embedder
from tools.embed_text import TextEmbedder
from tools.provisioning import resolve
from tools.transcribe import Transcriber, make_transcriber


@dataclass
class Models:
    captioner: Captioner
    transcriber: Transcriber
    text_embedder: TextEmbedder
    image_embedder: ImageEmbedder


def build_models(settings: Settings) -> Models:
    cfg = settings.models
    models_dir = settings.models_dir

    def local(ref: str | None) -> str | None:
        return resolve(ref, models_dir) if ref else None

    whisper_ref = cfg.whisper
    if cfg.whisper_backend == "faster-whisper":
        whisper_ref = resolve(cfg.whisper, models_dir)
    return Models(
        captioner=make_captioner(local(cfg.captioner), cfg.device),
        transcriber=make_transcriber(
            cfg.whisper_backend,
            whisper_ref,
            model_id=cfg.whisper,
            device=cfg.device,
            no_speech_threshold=settings.index.no_speech_threshold,
        ),
        text_embedder=TextEmbedder(
            resolve(cfg.text_embedder, models_dir), model_id=cfg.text_embedder, device=cfg.device
        ),
        image_embedder=make_image_embedder(local(cfg.image_embedder), cfg.device),
    )
