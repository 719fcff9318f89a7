"""The WordNet knowledge source: which noun sense an item is, and what WordNet says of it.

A title's words name several senses ("badger" is first a person from Wisconsin, "duck" also
the meat). The item's own context (its category path and description) picks one: each
candidate sense is described by its lexicographer file and hypernym chain ("animal: duck,
anseriform bird, bird, vertebrate"), with and without its gloss, and the sense whose
descriptions are nearest to the context in the text embedder's space wins, if it is near
enough. Candidates come from the title's word sequences (longest first), else the
description's. Nothing here is a word list: the words come from the item and from WordNet.

The facts stored (source ``wordnet``): ``kind`` (the sense's names and its hypernyms) and
``gloss`` (its definition).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexing.knowledge import Fact
from indexing.records import StoredItem

SOURCE = "wordnet"
VERSION = "wordnet-3.0:senses-v2"
MIN_SIMILARITY = 0.3  # a best sense less similar to the item's context than this is not kept
MAX_SENSES = 12  # candidates per item
MAX_WORDS = 3  # longest word sequence looked up
MAX_TEXT_WORDS = 64  # words of a title or description looked at
HYPERNYMS = 5

Embed = Callable[[Sequence[str]], np.ndarray]
_WORD = re.compile(
    r"[a-z]{3,}"
)  # shorter ones are mostly letters, symbols, units ("a" is a vitamin)


def _name(synset: Any) -> str:
    return str(synset.lemma_names()[0]).replace("_", " ")


def _chain(synset: Any) -> list[str]:
    chain, current = [], synset
    for _ in range(HYPERNYMS):
        # sorted: nltk keeps pointers in a set, whose order changes from run to run
        parents = sorted(current.hypernyms() or current.instance_hypernyms(), key=_name)
        if not parents:
            break
        current = parents[0]
        chain.append(_name(current))
    return chain


def _lexicon(synset: Any) -> str:
    return str(synset.lexname()).partition(".")[2]  # "noun.animal" → "animal"


def context(item: StoredItem) -> str:
    """What the item is, in the catalogue's words: its category path and description."""
    path = " ".join(item.id.split("/")[:-1]).replace("_", " ").replace("-", " ")
    return f"{path}: {item.facts.get('description') or item.title}"


@dataclass(frozen=True)
class Sense:
    synset: Any
    similarity: float

    def facts(self, item_id: str) -> list[Fact]:
        names = [n.replace("_", " ") for n in self.synset.lemma_names()]
        kind = ", ".join(dict.fromkeys([*names, *_chain(self.synset)]))
        return [
            Fact(item_id, "kind", kind, SOURCE),
            Fact(item_id, "gloss", f"{names[0]}: {self.synset.definition()}", SOURCE),
        ]


class SenseChooser:
    """Chooses each item's WordNet sense (``wordnet`` is nltk's WordNet reader)."""

    def __init__(self, wordnet: Any, embed: Embed) -> None:
        self.wordnet = wordnet
        self.embed = embed

    def candidates(self, item: StoredItem) -> list[Any]:
        for text in (item.title, str(item.facts.get("description") or "")):
            words = _WORD.findall(text.lower())[:MAX_TEXT_WORDS]
            found: list[Any] = []
            for n in range(min(MAX_WORDS, len(words)), 0, -1):
                for start in range(len(words) - n, -1, -1):  # the head noun is often last
                    found += self.wordnet.synsets("_".join(words[start : start + n]), "n")
            if found:
                return list(dict.fromkeys(found))[:MAX_SENSES]
        return []

    def choose(self, items: Sequence[StoredItem]) -> dict[str, Sense]:
        """Each item's sense, for the items that have a near enough one."""
        candidates = {item.id: self.candidates(item) for item in items}
        texts: list[str] = []
        for item in items:
            texts.append(context(item))
            for synset in candidates[item.id]:
                described = f"{_lexicon(synset)}: {', '.join([_name(synset), *_chain(synset)])}"
                texts += [described, f"{described}. {synset.definition()}"]
        unique = list(dict.fromkeys(texts))  # items share senses: embed each text once
        at = {text: row for row, text in enumerate(unique)}
        embedded = self.embed(unique) if unique else np.zeros((0, 1))
        vectors = embedded[[at[text] for text in texts]] if texts else embedded
        chosen: dict[str, Sense] = {}
        row = 0
        for item in items:
            here = vectors[row]
            row += 1
            senses = candidates[item.id]
            if not senses:
                continue
            described = vectors[row : row + 2 * len(senses)] @ here
            row += 2 * len(senses)
            scores = described.reshape(len(senses), 2).mean(axis=1)
            best = int(np.argmax(scores))
            if scores[best] >= MIN_SIMILARITY:
                chosen[item.id] = Sense(senses[best], round(float(scores[best]), 4))
        return chosen


class WordNetSource:
    """The ``wordnet`` source for :mod:`indexing.enrich`."""

    name = SOURCE
    version = VERSION

    def __init__(self, wordnet: Any, embed: Embed) -> None:
        self.chooser = SenseChooser(wordnet, embed)

    def facts(self, items: Sequence[StoredItem]) -> list[Fact]:
        chosen = self.chooser.choose(items)
        return [
            fact for item in items if item.id in chosen for fact in chosen[item.id].facts(item.id)
        ]
