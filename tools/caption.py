"""Image captioning: a transformers image-to-text model when configured, else pixel facts.

Every caption says where its text came from (``source``): a model id, or ``"pixels"`` for the
measured description, so nobody mistakes colour statistics for an understanding of the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from tools import pixels
from tools.media import composite_rgb


@dataclass(frozen=True)
class Caption:
    text: str
    source: str


class Captioner(Protocol):
    @property
    def model_id(self) -> str: ...

    def caption(self, images: Sequence[Image.Image]) -> list[Caption]: ...


class PixelCaptioner:
    """Describes colours, orientation, transparency and brightness measured from the pixels."""

    model_id = pixels.VERSION

    def caption(self, images: Sequence[Image.Image]) -> list[Caption]:
        return [Caption(text, "pixels") for text in pixels.describe(images)]


class TransformersCaptioner:
    """Any transformers image-to-text checkpoint (BLIP, GIT, …) by Hugging Face id or path.

    Loaded on first use; ``caption`` runs one batched ``generate`` per call.
    """

    def __init__(
        self,
        model_ref: str,
        device: str = "cpu",
        max_new_tokens: int = 30,
        prompt: str | None = None,
    ) -> None:
        self.model_ref = model_ref
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.prompt = prompt
        self._model: Any = None
        self._processor: Any = None

    @property
    def model_id(self) -> str:
        return self.model_ref

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self._processor = AutoProcessor.from_pretrained(self.model_ref)
        self._model = AutoModelForImageTextToText.from_pretrained(self.model_ref)
        self._model.to(self.device).eval()

    def caption(self, images: Sequence[Image.Image]) -> list[Caption]:
        if not images:
            return []
        self._load()
        import torch

        rgb = [composite_rgb(image) for image in images]
        kwargs: dict[str, Any] = {"images": rgb, "return_tensors": "pt"}
        if self.prompt:
            kwargs["text"] = [self.prompt] * len(rgb)
        inputs = self._processor(**kwargs).to(self.device)
        with torch.inference_mode():
            output = self._model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False
            )
        texts = self._processor.batch_decode(output, skip_special_tokens=True)
        return [Caption(text.strip(), self.model_ref) for text in texts]


def make_captioner(model_ref: str | None, device: str = "cpu") -> Captioner:
    """The configured captioner: transformers when a model is set, else the pixel describer."""
    return TransformersCaptioner(model_ref, device) if model_ref else PixelCaptioner()
