"""Text embeddings with sentence-transformers (default: all-MiniLM-L6-v2, 384-d, normalised)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

# A request's phrases (its query, the LLM's reading, a page of titles) embed on one thread: as
# fast within milliseconds, and they never wait on a core another process holds. On 2 cores the
# local vLLM's worker busy-waits for a second after each answer, just when the agent embeds
# the answer's phrases; a two-thread embedding then took 30x longer (0.34 s against 0.01 s).
FEW_TEXTS = 32


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
        model = self.load()
        with _threads(1 if len(texts) <= FEW_TEXTS and self.device == "cpu" else None):
            vectors = model.encode(
                list(texts),
                batch_size=batch_size or self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """torch's intra-op threads for the calling thread set to ``count`` (None: unchanged),
    restored after; other threads keep theirs."""
    import torch

    before = torch.get_num_threads()
    if count is None or count >= before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
