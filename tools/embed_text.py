"""Text embeddings with sentence-transformers (default: all-MiniLM-L6-v2, 384-d, normalised)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class TextEmbedder:
    """Lazily loads a sentence-transformers model; ``embed`` returns L2-normalised float32 rows."""

    def __init__(
        self, model_ref: str, model_id: str | None = None, device: str = "cpu", batch_size: int = 64
    ) -> None:
        self.model_ref = model_ref
        self.model_id = model_id or model_ref
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.model_ref, device=self.device)
        return self._model

    @property
    def dimensions(self) -> int:
        return int(self.load().get_sentence_embedding_dimension())

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self.load().encode(
            list(texts),
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
