"""Words as the request parser and the explanation checker compare them: lower-cased tokens,
English stop words (with the filler of requests: "show me", "something", "please"), and Snowball
stems, so "birds" matches "bird" and "musical" matches "music".

English only; a catalogue in another language still works through embeddings, but these rules
then match little.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

STOP = frozenset(
    """
    a about above after again against all also am an and any anything are as at be because been
    before being below between both but by can could did do does doing down during each else
    enough ever few for from further get give had has have having he her here hers herself him
    himself his how i i'd i'll i'm i've if in into is it it's its itself just kind kinds let like
    love maybe me might mine more most much must my myself need now of off on once one ones only
    or other our ours out over own please put quite rather really same see seen she should show
    so some something somethings someone still such than that that's the their theirs them then
    there these they thing things this those through time to too under until up us very want
    wanted was way we well were what when where which while who whom why will with would you
    you'd your yours yourself instead actually okay ok hi hello thanks thank lot lots bit also
    again pick picks recommend recommendation suggest find looking look would'd else
    today new another nice good great fun maybe sort sorts type types
    """.split()
)


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


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; a possessive or contraction stays attached ("can't")."""
    return _TOKEN.findall(text.lower().replace("’", "'"))


def content_words(text: str) -> list[str]:
    """Tokens that are not stop words, in order."""
    return [t for t in tokens(text) if t not in STOP and len(t) > 1 and not t.isdigit()]


def stems(text: str) -> list[str]:
    """Stems of the content words, in order, without repeats."""
    return list(dict.fromkeys(stem(w) for w in content_words(text)))


def name_words(name: str) -> list[str]:
    """The words of a catalogue name such as a path segment ("body_parts", "Apple-fuji")."""
    return [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w and not w.isdigit()]
