"""Image embeddings: the vision model's pooled features and classes by default
(:class:`VisionEmbedder`), transformers CLIP by id or path when configured, else pixel
statistics.

A CLIP embedder also embeds text into the same space (text-to-image search); the pixel embedder
cannot, and says so with ``supports_text = False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from PIL import Image

from tools import pixels
from tools.imagenet import Ancestry
from tools.media import composite_rgb
from tools.vision import VECTOR_VERSION, VisionModel

PIXELS = "pixels"  # models.image_embedder value that asks for pixel statistics


class ImageEmbedder(Protocol):
    @property
    def model_id(self) -> str: ...

    supports_text: bool

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


class PixelEmbedder:
    """Colour, layout, silhouette and texture statistics (see :mod:`tools.pixels`)."""

    model_id = pixels.VERSION
    supports_text = False

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, pixels.DIMENSIONS), dtype=np.float32)
        step = pixels.CHUNK
        return np.concatenate(
            [pixels.embed(images[i : i + step]) for i in range(0, len(images), step)]
        )

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError("the pixel-statistics embedder cannot embed text; configure CLIP")


class VisionEmbedder:
    """An ImageNet model's pooled features joined with its classes' spread over the WordNet
    hierarchy, one unit vector per picture (:meth:`tools.vision.Seen.vector`)."""

    supports_text = False

    def __init__(self, vision: VisionModel) -> None:
        self.vision = vision
        self._ancestry: Ancestry | None = None

    @property
    def ancestry(self) -> Ancestry:
        """Built on first use (it reads the class list and WordNet)."""
        if self._ancestry is None:
            self._ancestry = Ancestry(self.vision.classes)
        return self._ancestry

    @property
    def model_id(self) -> str:
        return f"vision:{self.vision.model_id}:{VECTOR_VERSION}"

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        seen = self.vision.see(images)
        if not seen:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([s.vector(self.ancestry) for s in seen]).astype(np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError("an ImageNet classifier cannot embed text; configure CLIP")


class ClipEmbedder:
    """transformers ``CLIPModel`` (any CLIP checkpoint); L2-normalised image and text features."""

    supports_text = True

    def __init__(self, model_ref: str, device: str = "cpu") -> None:
        self.model_ref = model_ref
        self.device = device
        self._model: Any = None
        self._processor: Any = None

    @property
    def model_id(self) -> str:
        return f"clip:{self.model_ref}"

    def _load(self) -> None:
        if self._model is None:
            from transformers import CLIPModel, CLIPProcessor

            self._processor = CLIPProcessor.from_pretrained(self.model_ref)
            self._model = CLIPModel.from_pretrained(self.model_ref).to(self.device).eval()

    @staticmethod
    def _features(output: Any) -> Any:
        # transformers may return a tensor or a model output holding the projected embeddings.
        if hasattr(output, "pooler_output") and not hasattr(output, "shape"):
            return output.pooler_output
        return output

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        self._load()
        import torch

        inputs = self._processor(images=[composite_rgb(i) for i in images], return_tensors="pt")
        with torch.inference_mode():
            features = self._features(
                self._model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device))
            )
        return _normalise(features.float().cpu().numpy())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self._load()
        import torch

        inputs = self._processor(
            text=list(texts), return_tensors="pt", padding=True, truncation=True
        )
        with torch.inference_mode():
            features = self._features(
                self._model.get_text_features(
                    input_ids=inputs["input_ids"].to(self.device),
                    attention_mask=inputs["attention_mask"].to(self.device),
                )
            )
        return _normalise(features.float().cpu().numpy())


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unit: np.ndarray = (vectors / norms).astype(np.float32)
    return unit


def make_image_embedder(
    model_ref: str | None, device: str = "cpu", vision: VisionModel | None = None
) -> ImageEmbedder:
    """CLIP when a model is set, pixel statistics when asked for (``pixels``) or when no
    vision model is configured, else the vision model's features."""
    if model_ref == PIXELS or (model_ref is None and vision is None):
        return PixelEmbedder()
    if model_ref:
        return ClipEmbedder(model_ref, device)
    assert vision is not None
    return VisionEmbedder(vision)
