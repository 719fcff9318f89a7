"""SASRec (Kang & McAuley 2018): a small causal transformer over a user's item sequence.

Trained with full softmax cross-entropy over all items at every position (much stronger than the
paper's sampled binary loss on small catalogues), tied input/output item embeddings, item 0 is
padding. A history longer than ``max_len`` is cut into windows, so every interaction is a
training target once. With a ``validate`` callback, training stops early: ``epochs`` is an upper
bound, the model is checked every ``eval_every`` epochs and the best state is kept after
``patience`` checks without a gain; the curve is kept on the model (``curve``). Training is
deterministic for a given seed and thread count; it runs on CPU in minutes.
"""

from __future__ import annotations

import copy
import time
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
    epochs: int = 200  # an upper bound when training stops early on validation
    seed: int = 2026
    eval_every: int = 2  # epochs between validation checks (early stopping only)
    patience: int = 5  # checks without a gain before training stops
    max_seconds: float | None = None  # a time budget: training stops after the epoch past it


@dataclass(frozen=True)
class Point:
    """One validation check during training."""

    epoch: int
    loss: float
    valid_ndcg10: float
    seconds: float


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


def windows(seqs: Sequence[Sequence[int]], length: int) -> list[Sequence[int]]:
    """Training sequences of at most ``length + 1`` items (inputs and next-item targets): a long
    history is cut from its end into windows that overlap by one item, so every interaction after
    a history's first is a target exactly once."""
    out: list[Sequence[int]] = []
    for seq in seqs:
        end = len(seq)
        while end >= 2:
            out.append(seq[max(0, end - length - 1) : end])
            end -= length
    return out


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
        self.curve: list[Point] = []  # validation checks, when trained with early stopping
        self.best_epoch = 0  # the epoch whose state the model holds (set by fit)
        self.seconds = 0.0  # time to train

    @classmethod
    def fit(
        cls,
        sequences: Sequence[Sequence[int]],
        n_items: int,
        config: SASRecConfig | None = None,
        progress: Callable[[int, float], None] | None = None,
        validate: Callable[[SASRec], float] | None = None,
        warm: SASRec | None = None,
    ) -> SASRec:
        """Train on ``sequences`` (item indices 0..n_items-1, in time order) for
        ``config.epochs`` (or until ``config.max_seconds`` have passed), or, with ``validate``
        (the model -> validation NDCG@10), until it stops improving; the best checked state is
        kept. ``warm``: a model whose weights training continues from (a warm refit)."""
        import torch
        from torch import nn

        config = config or SASRecConfig()
        model = cls(n_items, config, warm.net.state_dict() if warm is not None else None)
        net = model.net
        usable = windows(sequences, config.max_len)
        data = torch.from_numpy(_left_pad(usable, config.max_len + 1))
        inputs, targets = data[:, :-1], data[:, 1:] - 1  # target -1 = padding, ignored
        generator = torch.Generator().manual_seed(config.seed)
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        loss_fn = nn.CrossEntropyLoss(ignore_index=-1)
        began = time.perf_counter()
        best: tuple[float, int, dict[str, Any]] | None = None
        checks_since_best = 0
        epoch = 0
        for epoch in range(1, config.epochs + 1):
            net.train()
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
            loss_value = total / max(len(usable), 1)
            if progress is not None:
                progress(epoch, loss_value)
            out_of_time = config.max_seconds is not None and _since(began) >= config.max_seconds
            due = epoch % config.eval_every == 0 or epoch == config.epochs or out_of_time
            if validate is not None and due:
                net.eval()
                score = validate(model)
                point = Point(epoch, round(loss_value, 4), round(score, 4), _since(began))
                model.curve.append(point)
                if best is None or score > best[0]:
                    best = (score, epoch, copy.deepcopy(net.state_dict()))
                    checks_since_best = 0
                else:
                    checks_since_best += 1
            if checks_since_best >= config.patience or out_of_time:
                break
        if best is not None:
            net.load_state_dict(best[2])
        model.best_epoch = best[1] if best is not None else epoch  # without checks: the last
        model.seconds = _since(began)
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


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 2)
