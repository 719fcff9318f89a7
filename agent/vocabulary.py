"""The catalogue's own vocabulary: its taxonomy as nodes (categories and subcategory paths), and
the matching of a user's words to those nodes by rule (same stem) or by embedding (a synonym:
"plane" → flight, "doctor" → medical). Only nodes that exist can come out, so a request can
never filter on a category the catalogue lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.language import language
from agent.words import name_words, stem
from indexing.records import Taxonomy


def generic(segment: str) -> bool:
    """A path segment that says how items are drawn, not what they are ("cartoon")."""
    return segment.lower() in language().generic_path_words


Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Node:
    """One place in the taxonomy: a category ("animals") or a subcategory path under it
    ("animals/mammals/bovines")."""

    path: str
    words: tuple[str, ...]  # the name words of its last segment ("bovines")
    items: int

    def contains(self, item_path: str) -> bool:
        return item_path == self.path or item_path.startswith(self.path + "/")


@dataclass(frozen=True)
class NodeMatch:
    node: Node
    word: str  # the user's word
    how: str  # "rule" (same stem) or "embedding" (a synonym, with its similarity)


def item_path(facts: Mapping[str, Any]) -> str:
    """Where an item sits in the taxonomy: ``category/subcategory`` (or just the category)."""
    category = str(facts.get("category") or "")
    attributes = facts.get("attributes") or {}
    sub = str(attributes.get("subcategory", "")) if isinstance(attributes, dict) else ""
    if not category:
        return ""
    return f"{category}/{sub}" if sub and sub != category else category


@dataclass
class Vocabulary:
    """Nodes of a taxonomy, indexed by stem; ``embed`` (the text embedder) adds synonyms with a
    cosine similarity of at least ``threshold``."""

    taxonomy: Taxonomy
    embed: Embed | None = None
    threshold: float = 0.75
    nodes: list[Node] = field(default_factory=list)
    _by_stem: dict[str, list[Node]] = field(default_factory=dict)
    _by_path: dict[str, Node] = field(default_factory=dict)
    _word_vectors: tuple[list[str], np.ndarray] | None = None
    _cache: dict[str, list[NodeMatch]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        counts: dict[str, int] = {}
        for category, n in self.taxonomy.categories.items():
            counts[category] = counts.get(category, 0) + n
        for category, paths in self.taxonomy.subcategories.items():
            for sub, n in paths.items():
                if sub == category:
                    continue
                parts = sub.split("/")
                for depth in range(1, len(parts) + 1):
                    path = category + "/" + "/".join(parts[:depth])
                    counts[path] = counts.get(path, 0) + n
        for path, n in sorted(counts.items()):
            last = path.rsplit("/", 1)[-1]
            words = () if generic(last) else tuple(name_words(last))
            node = Node(path, words, n)
            self.nodes.append(node)
            self._by_path[path] = node
            for word in words:
                self._by_stem.setdefault(stem(word), []).append(node)

    @property
    def has_sound_attribute(self) -> bool:
        """Whether items say if they carry a sound effect (else: any audio counts)."""
        return "has_sound_effect" in self.taxonomy.attributes

    def node(self, path: str) -> Node | None:
        return self._by_path.get(path)

    def _vectors(self) -> tuple[list[str], np.ndarray] | None:
        if self.embed is None:
            return None
        if self._word_vectors is None:
            words = sorted({w for n in self.nodes for w in n.words})
            vectors = self.embed(words) if words else np.zeros((0, 1), dtype=np.float32)
            self._word_vectors = (words, np.asarray(vectors, dtype=np.float32))
        return self._word_vectors

    def match(self, word: str, synonyms: bool = True) -> list[NodeMatch]:
        """The nodes one user word names: by stem, else (with ``synonyms``) by the nearest node
        word's embedding."""
        word = word.lower()
        found = [NodeMatch(n, word, "rule") for n in self._by_stem.get(stem(word), [])]
        if found or not synonyms:
            return found
        if word in self._cache:
            return self._cache[word]
        vectors = self._vectors()
        if vectors is not None and vectors[0]:
            names, matrix = vectors
            query = np.asarray(self.embed([word]), dtype=np.float32)[0]  # type: ignore[misc]
            similarity = matrix @ query
            best = int(np.argmax(similarity))
            if float(similarity[best]) >= self.threshold:
                how = f"embedding ({names[best]}, {float(similarity[best]):.2f})"
                found = [NodeMatch(n, word, how) for n in self._by_stem.get(stem(names[best]), [])]
        self._cache[word] = found
        return found

    def resolve(self, words: Iterable[str], synonyms: bool = True) -> list[NodeMatch]:
        """Nodes named by ``words``, most specific first within one word, without repeats."""
        out: list[NodeMatch] = []
        seen: set[str] = set()
        for word in words:
            for m in self.match(word, synonyms):
                if m.node.path not in seen:
                    seen.add(m.node.path)
                    out.append(m)
        return out
