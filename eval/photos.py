"""``recagent eval photos``: search by photo on real photographs (``eval/photos``), precision@5
by category for each path alone and fused:

* ``pixel statistics``: the old default, a colour/shape descriptor of every catalogue picture
  (computed here, in memory, for the comparison);
* ``vision features``: the photo's pooled features against every catalogue picture's (computed
  here, in memory): the picture path before the classes' spread and the category support;
* ``vision embedding``: the photo's vector (features and its classes' spread over WordNet)
  against the store's image collection, ranked by its category's support
  (:mod:`indexing.photo_search`);
* ``labels``: the photo's ImageNet labels (with hypernyms) against the store's text,
  weighted by probability, ranked by its category's support;
* ``fusion``: both, fused by the agent's formula (what the agent, ``search --image``, the chat's
  ``/image`` and the web page's upload use).

``--sweep`` reports the dev half's fusion over the label threshold, the labels' fusion weight
and the category support's weight: the settings are chosen there, never on the test half.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from agent.photo import ranked_photo_hits
from eval.conversation_set import HALVES, matches
from eval.qt_resources import read_resource
from indexing.photo_search import SUPPORT, SUPPORT_DEPTH, PhotoHits, search_photo, with_support
from indexing.records import Hit
from indexing.store import Store
from tools.caption import VisionTagger
from tools.config import FusionWeights
from tools.embed_image import PixelEmbedder
from tools.errors import InputError, MediaError
from tools.factory import Models
from tools.media import load_image
from tools.vision import VisionModel

PHOTO_SET = Path(__file__).resolve().parent / "photos" / "photos.jsonl"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "recagent-photos"  # extracted bundle photos
SPLITS = HALVES  # dev to look at and tune on, test to report
SYSTEMS = ("pixel statistics", "vision features", "vision embedding", "labels", "fusion")
K = 5
DEPTH = 50  # each path's depth before fusion
CHUNK = 32  # catalogue pictures decoded at a time for the in-memory comparisons
SWEEP_CONFIDENCE = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
SWEEP_LABEL_WEIGHT = (0.01, 0.02, 0.04, 0.08)
SWEEP_SUPPORT = (0.0, 1.0, 2.0, 4.0, 8.0)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Photo:
    id: str
    path: Path
    split: str
    what: str
    relevant: tuple[str, ...]

    def precision(self, ids: Sequence[str], k: int = K) -> float:
        return sum(matches(i, self.relevant) for i in ids[:k]) / k


def _source(value: str, folder: Path, cache: Path) -> Path:
    """Where a photo row's ``source`` is on disk: ``distribution:path`` inside an installed
    wheel; ``deb:PACKAGE:/bundle.rcc#path/inside`` inside a Qt resource bundle of an installed
    Debian package (extracted once into ``cache``); or a path relative to ``folder``."""
    if value.startswith("deb:"):
        return _from_bundle(value, cache)
    if ":" in value and not Path(value).is_absolute():
        dist, _, inside = value.partition(":")
        try:
            return Path(str(importlib.metadata.distribution(dist).locate_file(inside)))
        except importlib.metadata.PackageNotFoundError:
            raise InputError(
                f"photo source {value!r}: the package {dist!r} is not installed "
                "(install requirements/data.txt)"
            ) from None
    return (folder / value).resolve()


def _from_bundle(value: str, cache: Path) -> Path:
    package, _, rest = value.removeprefix("deb:").partition(":")
    bundle, _, inside = rest.partition("#")
    if not package or not bundle or not inside:
        raise InputError(f"photo source {value!r}: use deb:PACKAGE:/bundle.rcc#path/inside")
    target = cache / f"{hashlib.sha256(value.encode()).hexdigest()[:24]}{Path(inside).suffix}"
    if not target.is_file():
        if not Path(bundle).is_file():
            raise InputError(
                f"photo source {value!r}: {bundle} is missing "
                f"(apt-get install {package}; scripts/setup.sh does)"
            )
        data = read_resource(Path(bundle), inside)
        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return target


def load_photos(
    path: Path = PHOTO_SET, split: str = "all", cache: Path = DEFAULT_CACHE
) -> list[Photo]:
    """The photo set in ``path`` (JSON lines), only ``split`` unless "all"; photos that ship
    inside bundles are extracted into ``cache``."""
    photos = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            photo = Photo(
                str(row["id"]),
                _source(str(row["source"]), path.parent, cache),
                str(row.get("split", "test")),
                str(row.get("what", "")),
                tuple(str(p) for p in row["relevant"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}, line {number}: not a photo row ({exc})") from None
        if split in ("all", photo.split):
            photos.append(photo)
    return photos


class PictureIndex:
    """Every catalogue picture's pixel-statistics vector and, with a vision model, its pooled
    features, in memory: the comparisons "pixel statistics" and "vision features"."""

    def __init__(
        self, store: Store, vision: VisionModel | None = None, progress: Progress | None = None
    ) -> None:
        embedder = PixelEmbedder()
        ids: list[str] = []
        pixel_rows: list[np.ndarray] = []
        feature_rows: list[np.ndarray] = []
        items = [i for i in store.all_items() if i.facts.get("has_image")]
        for start in range(0, len(items), CHUNK):
            chunk: list[tuple[str, Image.Image]] = []
            for item in items[start : start + CHUNK]:
                image, _ = store.media(item.id)
                if image is not None:
                    try:
                        picture = load_image(image, store.loader.max_bytes, store.loader.max_pixels)
                    except MediaError:
                        continue
                    chunk.append((item.id, picture))
            if chunk:
                ids += [item_id for item_id, _ in chunk]
                pictures = [picture for _, picture in chunk]
                pixel_rows += list(embedder.embed(pictures))
                if vision is not None:
                    feature_rows += [seen.features for seen in vision.see(pictures)]
            if progress:
                progress(min(start + CHUNK, len(items)), len(items))
        self.ids = ids
        self.pixels = _stack(pixel_rows)
        self.features = _stack(feature_rows)
        self.embedder = embedder
        self.vision = vision

    def search(self, path: Path, store: Store, k: int) -> list[str]:
        """The ``k`` nearest pictures by pixel statistics."""
        picture = load_image(path, store.loader.max_bytes, store.loader.max_pixels)
        return self._nearest(self.pixels, self.embedder.embed([picture])[0], k)

    def search_features(self, path: Path, store: Store, k: int) -> list[str]:
        """The ``k`` nearest pictures by the vision model's pooled features alone."""
        if self.vision is None:
            return []
        picture = load_image(path, store.loader.max_bytes, store.loader.max_pixels)
        return self._nearest(self.features, self.vision.see([picture])[0].features, k)

    def _nearest(self, vectors: np.ndarray, query: np.ndarray, k: int) -> list[str]:
        if not self.ids:
            return []
        scores = vectors @ query
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        return [self.ids[int(i)] for i in order]


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    return np.stack(rows) if rows else np.zeros((0, 1), dtype=np.float32)


def _ids(hits: Sequence[Hit]) -> list[str]:
    return [h.id for h in hits]


def _paths(store: Store, tagger: VisionTagger, photo: Photo) -> PhotoHits:
    return search_photo(store, tagger, photo.path, DEPTH)


def run(
    store: Store,
    models: Models,
    weights: FusionWeights,
    photos: Sequence[Photo],
    out: Path,
    sweep: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Precision@5 of each system on each split of ``photos``; writes ``out/results.json`` and
    ``out/results.md`` and returns the figures."""
    tagger = models.photo_tagger
    if tagger is None or not store.image_embedder_id.startswith("vision:"):
        raise InputError(
            "search by photo needs the vision model: set models.vision (default "
            "efficientnet-lite0) and index the catalogue with it (`recagent index FILE "
            f"--reembed`); the store's pictures were embedded by {store.image_embedder_id}"
        )
    pictures = PictureIndex(store, tagger.vision, progress)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for photo in photos:
        try:  # a photo that cannot be read costs itself only
            found = _paths(store, tagger, photo)
        except MediaError as exc:
            skipped.append({"id": photo.id, "problem": str(exc)})
            continue
        ranked = {
            "pixel statistics": pictures.search(photo.path, store, K),
            "vision features": pictures.search_features(photo.path, store, K),
            "vision embedding": _ids(found.image),
            "labels": _ids(found.labels),
            "fusion": _ids(ranked_photo_hits(found, weights, K)),
        }
        rows.append(
            {
                "id": photo.id,
                "split": photo.split,
                "what": photo.what,
                "relevant": list(photo.relevant),
                "looks like": [
                    [label.kind.name, round(label.probability, 3)] for label in found.seen
                ],
                "precision@5": {name: photo.precision(ids) for name, ids in ranked.items()},
                "top5": {name: ids[:K] for name, ids in ranked.items()},
            }
        )
    splits = sorted({r["split"] for r in rows}, key=lambda s: (s not in SPLITS, s))
    figures: dict[str, Any] = {
        "k": K,
        "photos": {s: sum(r["split"] == s for r in rows) for s in splits},
        "vision model": tagger.vision.model_id,
        "label threshold": tagger.min_confidence,
        "support": SUPPORT,
        "fusion weights": {"image": weights.image, "labels": weights.labels, "rrf": weights.rrf},
        "precision@5": {
            name: {
                s: round(
                    float(np.mean([r["precision@5"][name] for r in rows if r["split"] == s])), 3
                )
                for s in splits
            }
            for name in SYSTEMS
        },
        "per photo": rows,
        "skipped": skipped,
    }
    read = {row["id"] for row in rows}
    if sweep:
        figures["dev sweep"] = _sweep(
            store, tagger, weights, [p for p in photos if p.split == "dev" and p.id in read]
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(figures, indent=1))
    (out / "results.md").write_text(markdown(figures))
    return figures


def _sweep(
    store: Store, tagger: VisionTagger, weights: FusionWeights, photos: Sequence[Photo]
) -> list[dict[str, float]]:
    """The dev half's fusion precision@5 for each label threshold, labels weight and support
    weight (each path read once per threshold, :data:`SUPPORT_DEPTH` deep, then supported and
    cut here as :func:`search_photo` does)."""
    results = []
    for confidence in SWEEP_CONFIDENCE:
        variant = VisionTagger(tagger.vision, confidence, tagger.top)
        deep = {
            p.id: search_photo(store, variant, p.path, SUPPORT_DEPTH, support=0.0) for p in photos
        }
        for support in SWEEP_SUPPORT:
            found = {
                key: PhotoHits(
                    with_support(hits.image, support)[:DEPTH],
                    with_support(hits.labels, support)[:DEPTH],
                    hits.seen,
                )
                for key, hits in deep.items()
            }
            for weight in SWEEP_LABEL_WEIGHT:
                tuned = weights.model_copy(update={"labels": weight})
                score = np.mean(
                    [p.precision(_ids(ranked_photo_hits(found[p.id], tuned, K))) for p in photos]
                )
                results.append(
                    {
                        "label threshold": confidence,
                        "support": support,
                        "labels weight": weight,
                        "dev precision@5": round(float(score), 3),
                    }
                )
    return results


def markdown(figures: dict[str, Any]) -> str:
    splits = list(figures["photos"])
    lines = [
        f"Search by photo: precision@{figures['k']} by category ({figures['vision model']}, "
        f"labels from {figures['label threshold']:g}, support {figures['support']:g}; photos: "
        + ", ".join(f"{s} {n}" for s, n in figures["photos"].items())
        + ")",
        "",
        "| system | " + " | ".join(splits) + " |",
        "| --- | " + " | ".join("---" for _ in splits) + " |",
    ]
    for name, by_split in figures["precision@5"].items():
        lines.append(f"| {name} | " + " | ".join(f"{by_split[s]:.2f}" for s in splits) + " |")
    lines += ["", "| photo | split | looks like | pixels | features | vision | labels | fusion |"]
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in figures["per photo"]:
        seen = ", ".join(f"{n} {p:.2f}" for n, p in row["looks like"]) or "-"
        scores = " | ".join(f"{row['precision@5'][s]:.1f}" for s in SYSTEMS)
        lines.append(f"| {row['id']} | {row['split']} | {seen} | {scores} |")
    for bad in figures.get("skipped", []):
        lines.append(f"\nskipped {bad['id']}: {bad['problem']}")
    if "dev sweep" in figures:
        lines += [
            "",
            "| label threshold | support | labels weight | dev precision@5 |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {r['label threshold']:g} | {r['support']:g} | {r['labels weight']:g} "
            f"| {r['dev precision@5']:.2f} |"
            for r in figures["dev sweep"]
        ]
    return "\n".join(lines) + "\n"
