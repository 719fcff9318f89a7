"""Build the configured models (nothing loads until first use)."""

from __future__ import annotations

from dataclasses import dataclass

from tools.caption import Captioner, VisionTagger, make_captioner
from tools.config import NO_MODEL, Settings
from tools.embed_image import PIXELS, ImageEmbedder, make_image_embedder
from tools.embed_text import TextEmbedder
from tools.provisioning import resolve
from tools.transcribe import Transcriber, make_transcriber
from tools.vision import VisionModel, make_vision


@dataclass
class Models:
    captioner: Captioner
    transcriber: Transcriber
    text_embedder: TextEmbedder
    image_embedder: ImageEmbedder
    tagger: VisionTagger | None = None  # the vision model's labels of catalogue pictures
    photo_tagger: VisionTagger | None = None  # the same model's labels of a photo searched by


def build_models(settings: Settings) -> Models:
    cfg = settings.models
    models_dir = settings.models_dir

    def local(ref: str | None) -> str | None:
        return resolve(ref, models_dir) if ref else None

    vision: VisionModel | None = None
    tagger: VisionTagger | None = None
    photo_tagger: VisionTagger | None = None
    if cfg.vision and cfg.vision.lower() != NO_MODEL:
        vision = make_vision(
            cfg.vision, resolve(cfg.vision, models_dir), settings.cache_dir, cfg.device
        )
        tagger = VisionTagger(vision, cfg.vision_min_confidence)
        photo_tagger = VisionTagger(vision, cfg.photo_min_confidence)
    whisper_ref = cfg.whisper
    if cfg.whisper_backend == "faster-whisper":
        whisper_ref = resolve(cfg.whisper, models_dir)
    return Models(
        captioner=make_captioner(local(cfg.captioner), cfg.device, tagger),
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
        image_embedder=make_image_embedder(
            cfg.image_embedder if cfg.image_embedder == PIXELS else local(cfg.image_embedder),
            cfg.device,
            vision,
        ),
        tagger=tagger,
        photo_tagger=photo_tagger,
    )
