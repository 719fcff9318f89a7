"""SASRec (Kang & McAuley 2018): a small causal transformer over a user's item sequence.

Trained with full softmax cross-entropy over all items at every position (much stronger than the
paper's sampled binary loss on small catalogues), tied input/output item embeddings, item 0 is
padding. Training is deterministic for a given seed and thread count; it runs on CPU in minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SASRecConfig:
    hidden: int = 64
    blocks: int = 2
    heads: int = 2
    max_len: int = 50
    dropout: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 100
    seed: int = 2026


def _module(n_items: int, config: SASRecConfig) -> Any:
    import torch
    from torch import nn

    class SASRec(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.items = nn.Embedding(n_items + 1, config.hidden, padding_idx=0)
            self.positions = nn.Embedding(config.max_len, config.hidden)
            self.dropout = nn.Dropout(config.dropout)
            layer = nn.TransformerEncoderLayer(
                config.hidden,
                config.heads,
                dim_feedforward=config.hidden,
                dropout=config.dropout,
                batch_first=True,
                norm_first=True,
            )
            self.encoder = nn.TransformerEncoder(layer, config.blocks, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(config.hidden)
            mask = torch.triu(torch.ones(config.max_len, config.max_len, dtype=torch.bool), 1)
            self.register_buffer("causal", mask, persistent=False)
            nn.init.normal_(self.items.weight, std=0.02)
            nn.init.normal_(self.positions.weight, std=0.02)

        def forward(self, seq: torch.Tensor) -> torch.Tensor:
            length = seq.shape[1]
            positions = torch.arange(length, device=seq.device)
            h = self.items(seq) + self.positions(positions)[None]
            h = self.dropout(h) * (seq > 0).unsqueeze(-1)
            h = self.encoder(h, mask=self.causal[:length, :length], src_key_padding_mask=None)
            out: torch.Tensor = self.norm(h)
            return out

        def logits(self, hidden: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = hidden @ self.items.weight[1:].T  # item k -> column k
            return out

    return SASRec()


def _left_pad(seqs: Sequence[Sequence[int]], length: int) -> np.ndarray:
    """Items shifted by one (0 is padding), the last ``length`` of each, padded on the left."""
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for row, seq in enumerate(seqs):
        tail = [i + 1 for i in seq[-length:]]
        if tail:
            out[row, length - len(tail) :] = tail
    return out


class SASRec:
    """A trained model: ``scores(histories)`` gives one row of item scores per history."""

    def __init__(self, n_items: int, config: SASRecConfig, state: dict[str, Any] | None = None):
        import torch

        self.n_items = n_items
        self.config = config
        torch.manual_seed(config.seed)
        self.net = _module(n_items, config)
        if state is not None:
            self.net.load_state_dict(state)
        self.net.eval()

    @classmethod
    def fit(
        cls,
        sequences: Sequence[Sequence[int]],
        n_items: int,
        config: SASRecConfig | None = None,
        progress: Callable[[int, float], None] | None = None,
    ) -> SASRec:
        """Train on ``sequences`` (item indices 0..n_items-1, in time order)."""
        import torch
        from torch import nn

        config = config or SASRecConfig()
        model = cls(n_items, config)
        net = model.net
        usable = [s for s in sequences if len(s) >= 2]
        data = torch.from_numpy(_left_pad(usable, config.max_len + 1))
        inputs, targets = data[:, :-1], data[:, 1:] - 1  # target -1 = padding, ignored
        generator = torch.Generator().manual_seed(config.seed)
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        loss_fn = nn.CrossEntropyLoss(ignore_index=-1)
        net.train()
        for epoch in range(config.epochs):
            order = torch.randperm(len(usable), generator=generator)
            total = 0.0
            for start in range(0, len(usable), config.batch_size):
                batch = order[start : start + config.batch_size]
                optimiser.zero_grad()
                logits = net.logits(net(inputs[batch]))
                loss = loss_fn(logits.reshape(-1, n_items), targets[batch].reshape(-1))
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            if progress is not None:
                progress(epoch + 1, total / len(usable))
        net.eval()
        return model

    def scores(self, histories: Sequence[Sequence[int]], batch_size: int = 256) -> np.ndarray:
        """Next-item scores (logits) for each history; an empty history gets zeros."""
        import torch

        rows = []
        with torch.no_grad():
            for start in range(0, len(histories), batch_size):
                chunk = histories[start : start + batch_size]
                seq = torch.from_numpy(_left_pad(chunk, self.config.max_len))
                hidden = self.net(seq)[:, -1]
                out = self.net.logits(hidden).numpy()
                out[[len(h) == 0 for h in chunk]] = 0.0
                rows.append(out)
        return np.concatenate(rows) if rows else np.zeros((0, self.n_items), np.float32)

    def save(self, path: Path) -> None:
        import torch

        torch.save(
            {
                "n_items": self.n_items,
                "config": asdict(self.config),
                "state": self.net.state_dict(),
            },
            path,
        )

    @classmethod
    def load(cls, path: Path) -> SASRec:
        import torch

        saved = torch.load(path, map_location="cpu", weights_only=True)
        return cls(int(saved["n_items"]), SASRecConfig(**saved["config"]), saved["state"])
