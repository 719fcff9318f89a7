"""Words as the request parser and the explanation checker compare them: lower-cased tokens,
English stop words (with the filler of requests: "show me", "something", "please"; from
``prompts/language_en.toml``), and Snowball
stems, so "birds" matches "bird" and "musical" matches "music".

English only; a catalogue in another language still works through embeddings, but these rules
then match little.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

from agent.language import language

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_local = threading.local()  # a Snowball stemmer keeps state while it works: one per thread


def _stemmer() -> Any:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _local.stemmer = snowballstemmer.stemmer("english")
    return stemmer


@lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """The Snowball stem of one lower-case word (thread-safe)."""
    return str(_stemmer().stemWord(word))


def folded(text: str) -> str:
    """``text`` lower-cased with each run of whitespace as one space: how two phrases (a
    title, a kind the model wrote, a profile entry) are compared as the same words."""
    return " ".join(text.lower().split())


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; a possessive or contraction stays attached ("can't")."""
    return _TOKEN.findall(text.lower().replace("’", "'"))


def content_words(text: str) -> list[str]:
    """Tokens that are not stop words, in order."""
    stop = language().stop
    return [t for t in tokens(text) if t not in stop and len(t) > 1 and not t.isdigit()]


def stems(text: str) -> list[str]:
    """Stems of the content words, in order, without repeats."""
    return list(dict.fromkeys(stem(w) for w in content_words(text)))


def name_words(name: str) -> list[str]:
    """The words of a catalogue name such as a path segment ("body_parts", "Apple-fuji")."""
    return [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w and not w.isdigit()]


def compound_heads(word: str) -> list[str]:
    """The stems of the words a compound ends in ("basketball": ball; "sunflowers": flower):
    English compounds name their kind last. Only parts of 4 letters or more after 3 or more
    ("elephant" is no ant)."""
    return [
        head
        for i in range(3, len(word) - 3)
        if word[i - 1].isalpha() and len(head := stem(word[i:])) >= 4
    ]
