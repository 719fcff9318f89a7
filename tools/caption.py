"""Image captioning: the vision model's labels by default (:class:`VisionTagger`), a
transformers image-to-text model when configured, else pixel facts.

Every caption says where its text came from (``source``): ``vision:<model>`` for labels (what
the picture looks like to an ImageNet classifier, never a catalogue fact), a model id, or
``"pixels"`` for the measured description, so nobody mistakes colour statistics for an
understanding of the picture. The tagger keeps the pixel facts beside its labels (``pixels``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from tools import pixels
from tools.imagenet import ImageNetClass
from tools.media import composite_rgb
from tools.vision import VisionModel

LABELS_VERSION = "labels-v2"  # bump when the label text changes (items are captioned again)


@dataclass(frozen=True)
class Caption:
    text: str
    source: str
    pixels: str = ""  # the pixel facts, kept apart from a model's text


@dataclass(frozen=True)
class Label:
    """One thing a picture looks like, with the model's probability."""

    kind: ImageNetClass
    probability: float

    def text(self) -> str:
        """ "tiger (big cat, feline, carnivore)": the name, then what it is a kind of."""
        more = [h for h in self.kind.hypernyms if h != self.kind.name]
        return f"{self.kind.name} ({', '.join(more)})" if more else self.kind.name


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


class VisionTagger:
    """A picture's top ImageNet labels (at most ``top``, each at least ``min_confidence``) as
    words with their hypernyms: "looks like: tiger (big cat, feline, carnivore)"."""

    def __init__(self, vision: VisionModel, min_confidence: float, top: int = 3) -> None:
        self.vision = vision
        self.min_confidence = min_confidence
        self.top = top
        self._pixels = PixelCaptioner()

    @property
    def model_id(self) -> str:
        return f"vision:{self.vision.model_id}:{self.min_confidence:g}:{LABELS_VERSION}"

    @property
    def source(self) -> str:
        return f"vision:{self.vision.model_id}"

    def labels(self, images: Sequence[Image.Image]) -> list[list[Label]]:
        """Each picture's labels, most likely first."""
        classes = self.vision.classes
        out: list[list[Label]] = []
        for seen in self.vision.see(images):
            order = seen.probabilities.argsort()[::-1][: self.top]
            out.append(
                [
                    Label(classes[int(i)], float(seen.probabilities[i]))
                    for i in order
                    if seen.probabilities[i] >= self.min_confidence
                ]
            )
        return out

    def caption(self, images: Sequence[Image.Image]) -> list[Caption]:
        facts = self._pixels.caption(images)
        return [
            Caption(
                "looks like: " + "; ".join(label.text() for label in labels) if labels else "",
                self.source,
                fact.text,
            )
            for labels, fact in zip(self.labels(images), facts, strict=True)
        ]


def make_captioner(
    model_ref: str | None, device: str = "cpu", vision: VisionTagger | None = None
) -> Captioner:
    """The configured captioner: transformers when a model is set, else the vision tagger,
    else the pixel describer."""
    if model_ref:
        return TransformersCaptioner(model_ref, device)
    return vision if vision is not None else PixelCaptioner()
