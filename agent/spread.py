"""Near-duplicates spread apart: a ranked list should not spend its first places on one thing
shown three times (three strawberries, a pig and its recoloured twin).

Two items are near-duplicates when the text embeddings of their titles are at least
``threshold`` alike (their whole documents are not a good measure: one-line descriptions make a
thermometer and a measuring tape 0.94 alike). Measured on the demo catalogue's titles, 0.85
joins "Strawberry" and "Strawberry2" (0.88), "Pig golden" and "Pig golden2" (0.87), "Rocket1"
and "Rocket2" (0.86), "Forklift" and "Forklift2" (0.90), and keeps "A filled" and "B filled"
(0.81), "Cherries" and "Cherry Stella" (0.46) or "Digital thermometer" and "Mercury
thermometer" (0.69) apart. A near-duplicate is not dropped: it moves behind the next items that
are not and are nearly as relevant, and comes back in its order before weaker ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")
SHARE = 0.95  # a different item passes a twin only when it is this relevant (of the twin)


def spread(
    ranked: Sequence[T],
    ids: Sequence[str],
    vectors: Mapping[str, np.ndarray],
    k: int,
    threshold: float,
    relevance: Sequence[float] | None = None,
    share: float = SHARE,
) -> list[T]:
    """The first ``k`` of ``ranked`` (whose item ids are ``ids``), each near-duplicate of an
    item placed before it deferred behind the next different items, but never behind one whose
    ``relevance`` (the request's text similarity) is under ``share`` of its own: a request
    only its twins answer ("a lorry": four lorries) keeps them. Items without a vector are
    never duplicates."""
    chosen: list[int] = []
    deferred: list[int] = []
    kept: list[np.ndarray] = []
    weight = list(relevance) if relevance is not None else [1.0] * len(ids)
    for row, item_id in enumerate(ids):
        while deferred and len(chosen) < k and weight[row] < share * weight[deferred[0]]:
            chosen.append(deferred.pop(0))  # what is left is weaker than the twin
        if len(chosen) >= k:
            break
        vector = vectors.get(item_id)
        if vector is not None:
            unit = vector / (float(np.linalg.norm(vector)) or 1.0)
            if any(float(unit @ other) >= threshold for other in kept):
                deferred.append(row)
                continue
            kept.append(unit)
        chosen.append(row)
    chosen += deferred[: k - len(chosen)]
    return [ranked[row] for row in chosen]
