"""The collaborative retriever: a sequential model (SASRec), item-item EASE and item-kNN,
popularity and, where item texts were embedded, content similarity; with a learned ranker
(:mod:`tools.ranker`) over their candidate pool when ``eval rank`` trained one.

All are trained on interaction histories (lists of catalogue ids in time order). ``recommend``
ranks the items for one history (the profile's history in the agent): by the learned ranker
over the pool of every retriever's top items when there is one (with each feature's contribution
to the score), otherwise by ``alpha * z(SASRec) + (1 - alpha) * z(EASE)`` (each standardised per
user; ``alpha`` is tuned on the validation split). ``neighbours`` gives an item's collaborative
neighbours (EASE weights), used by the agent's ``similar_items`` tool.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tools import candidate_pool
from tools.candidate_pool import Parts, history_matrix, standardise
from tools.ranker import RANKER_FILE, LearnedRanker
from tools.sasrec import SASRec, SASRecConfig

MODEL_FILE = "sasrec.pt"
EASE_FILE = "ease.npy"
KNN_FILE = "knn.npy"
POPULARITY_FILE = "popularity.npy"
CONTENT_FILE = "content.npy"
META_FILE = "collab.json"
FUSION_FILE = "fusion.json"
COVERAGE = 0.9  # share of a model's items the store must hold for it to be picked automatically


def ease_weights(x: np.ndarray, lam: float = 100.0) -> np.ndarray:
    """EASE (Steck 2019): closed-form item-item weights with a zero diagonal."""
    gram = (x.T @ x).astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    out: np.ndarray = weights
    return out


@dataclass(frozen=True)
class Ranked:
    """One recommended item: its score and, from the learned ranker, what each feature added."""

    item_id: str
    score: float
    contributions: dict[str, float] = field(default_factory=dict)


class CollabModel:
    def __init__(
        self,
        item_ids: list[str],
        sequential: SASRec,
        item_item: np.ndarray,
        alpha: float = 0.5,
        lam: float = 100.0,
        knn: np.ndarray | None = None,
        popularity: np.ndarray | None = None,
        content: np.ndarray | None = None,
        ranker: LearnedRanker | None = None,
    ) -> None:
        self.item_ids = item_ids
        self.index = {item: n for n, item in enumerate(item_ids)}
        self.sequential = sequential
        self.item_item = item_item
        self.alpha = alpha
        self.lam = lam
        self.knn = knn
        self.popularity = popularity
        self.content = content
        self.ranker = ranker

    @classmethod
    def fit(
        cls,
        histories: Sequence[Sequence[int]],
        item_ids: list[str],
        config: SASRecConfig | None = None,
        alpha: float = 0.5,
        lam: float = 100.0,
        progress: Callable[[int, float], None] | None = None,
        content: np.ndarray | None = None,
        sequential: SASRec | None = None,
    ) -> CollabModel:
        """Train every retriever on ``histories`` (indices into ``item_ids``, in time order);
        a ``sequential`` model already trained on them is used as it is. ``content``: one
        L2-normalised text embedding per item, for the content features."""
        if sequential is None:
            sequential = SASRec.fit(histories, len(item_ids), config or SASRecConfig(), progress)
        x = history_matrix(histories, len(item_ids))
        return cls(
            item_ids,
            sequential,
            ease_weights(x, lam),
            alpha,
            lam,
            knn=candidate_pool.knn_similarity(x),
            popularity=x.sum(axis=0),
            content=content,
        )

    def pool_parts(self) -> Parts:
        if self.knn is None or self.popularity is None:
            raise ValueError("this collaborative model has no item-kNN and popularity parts")
        return Parts(self.sequential, self.item_item, self.knn, self.popularity, self.content)

    def parts(self, histories: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Standardised (SASRec, EASE) scores, one row per history."""
        sequential = standardise(self.sequential.scores(histories))
        item_item = standardise(history_matrix(histories, len(self.item_ids)) @ self.item_item)
        return sequential, item_item

    def scores(self, histories: Sequence[Sequence[int]], alpha: float | None = None) -> np.ndarray:
        sequential, item_item = self.parts(histories)
        a = self.alpha if alpha is None else alpha
        out: np.ndarray = a * sequential + (1 - a) * item_item
        return out

    def known(self, ids: Sequence[str]) -> list[int]:
        """Indices of the ids this model was trained on, in order (unknown ids are skipped)."""
        return [self.index[i] for i in ids if i in self.index]

    def recommend(self, history_ids: Sequence[str], k: int) -> list[Ranked]:
        """The top ``k`` unseen items for a history of catalogue ids: by the learned ranker
        when there is one (with each feature's contribution), else by the SASRec/EASE blend."""
        history = self.known(history_ids)
        if not history:
            return []
        if self.ranker is not None and self.knn is not None:
            return self._ranked(history, k)
        row = self.scores([history])[0]
        row[history] = -np.inf
        top = np.argsort(-row, kind="stable")[:k]
        return [Ranked(self.item_ids[i], float(row[i])) for i in top]

    def _ranked(self, history: list[int], k: int) -> list[Ranked]:
        assert self.ranker is not None
        pool = candidate_pool.build(self.pool_parts(), [history])
        scores = self.ranker.scores(pool.features)
        top = np.argsort(-scores, kind="stable")[:k]
        contributions = self.ranker.contributions(pool.features[top])
        names = self.ranker.features
        return [
            Ranked(
                self.item_ids[int(pool.items[n])],
                float(scores[n]),
                {name: round(float(v), 4) for name, v in zip(names, row[:-1], strict=True)},
            )
            for n, row in zip(top, contributions, strict=True)
        ]

    def neighbours(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """Items that go with ``item_id`` in users' histories (largest EASE weights)."""
        if item_id not in self.index:
            return []
        column = self.item_item[self.index[item_id]].copy()
        column[self.index[item_id]] = -np.inf
        top = np.argsort(-column, kind="stable")[:k]
        return [(self.item_ids[i], float(column[i])) for i in top]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.sequential.save(folder / MODEL_FILE)
        np.save(folder / EASE_FILE, self.item_item)
        for name, part in (
            (KNN_FILE, self.knn),
            (POPULARITY_FILE, self.popularity),
            (CONTENT_FILE, self.content),
        ):
            if part is not None:
                np.save(folder / name, part)
        if self.ranker is not None:
            self.ranker.save(folder)
        meta = {
            "item_ids": self.item_ids,
            "alpha": self.alpha,
            "lam": self.lam,
            "sasrec": asdict(self.sequential.config),
        }
        (folder / META_FILE).write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> CollabModel:
        missing = [f for f in (MODEL_FILE, EASE_FILE, META_FILE) if not (folder / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{folder} is not a collaborative model folder (missing {', '.join(missing)}); "
                "train one with `recagent eval rank`"
            )
        meta = json.loads((folder / META_FILE).read_text())

        def optional(name: str) -> np.ndarray | None:
            path = folder / name
            return np.load(path) if path.is_file() else None

        knn, popularity = optional(KNN_FILE), optional(POPULARITY_FILE)
        ranker = None
        if (folder / RANKER_FILE).is_file() and knn is not None and popularity is not None:
            ranker = LearnedRanker.load(folder)
        return cls(
            list(meta["item_ids"]),
            SASRec.load(folder / MODEL_FILE),
            np.load(folder / EASE_FILE),
            float(meta["alpha"]),
            float(meta["lam"]),
            knn=knn,
            popularity=popularity,
            content=optional(CONTENT_FILE),
            ranker=ranker,
        )


def discover(root: Path, store_ids: Collection[str]) -> Path | None:
    """The model folder under ``root`` trained on this catalogue: at least 90% of its items are
    in ``store_ids`` (a model may know fewer items than the store: ML-100K's 5-core keeps 1,349
    of 1,682 movies). The best match, or None."""
    if not root.is_dir() or not store_ids:
        return None
    best: tuple[float, Path] | None = None
    for meta in sorted(root.glob(f"*/{META_FILE}")):
        try:
            known = set(json.loads(meta.read_text())["item_ids"])
        except (OSError, ValueError, KeyError):
            continue
        ids = set(store_ids)
        share = sum(i in ids for i in known) / max(len(known), 1)
        if share >= COVERAGE and (best is None or share > best[0]):
            best = (share, meta.parent)
    return best[1] if best else None


def tuned_fusion(folder: Path) -> dict[str, float] | None:
    """The fusion weights tuned with this model (``fusion.json``), if present."""
    path = folder / FUSION_FILE
    if not path.is_file():
        return None
    data: dict[str, float] = json.loads(path.read_text())
    return data
