"""Listwise LLM reranking of the pipeline's top 20 (LlamaRec-style verbaliser).

The prompt lists the user's recent titles and the candidates labelled A, B, C, ...; the model
answers with one letter, and the candidates are ranked by the log-probability the model gives
each letter (``top_logprobs`` of the first token). The answer can only be one of the letters, so
every id stays inside the candidate set. ``blend`` mixes the LLM's order with the fused order by
rank, ``1 / (k + fused rank) + weight / (k + LLM rank)``; the weight is tuned on validation.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np

import prompts
from eval.llm_client import ChatClient, top_logprobs

TOP = 20
HISTORY = 10
LETTERS = string.ascii_uppercase[:TOP]
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def request(history: Sequence[str], candidates: Sequence[str]) -> dict[str, Any]:
    listed = "\n".join(f"{LETTERS[n]}. {title}" for n, title in enumerate(candidates))
    text = prompts.render(
        "rerank",
        history="\n".join(f"- {t}" for t in history[-HISTORY:]) or "(none)",
        candidates=listed,
        last_letter=LETTERS[len(candidates) - 1],
    )
    return {
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": True,
        "top_logprobs": TOP,
    }


def letter_scores(response: dict[str, Any], n: int) -> np.ndarray:
    """Log-probability per candidate; letters the model did not rank get -inf."""
    found = top_logprobs(response)
    return np.array([found.get(LETTERS[i], float("-inf")) for i in range(n)])


def llm_order(scores: np.ndarray) -> np.ndarray:
    """1-based LLM rank per candidate; unranked letters keep the fused order after the rest."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(scores.size, dtype=np.int64)
    ranks[order] = np.arange(1, scores.size + 1)
    return ranks


def blend(llm_ranks: np.ndarray, weight: float, k: int = 60) -> np.ndarray:
    """New order of the candidates (indices into the fused top list)."""
    fused_ranks = np.arange(1, llm_ranks.size + 1)
    score = 1.0 / (k + fused_ranks) + weight / (k + llm_ranks)
    return np.argsort(-score, kind="stable")


def rerank_all(
    client: ChatClient,
    histories: Sequence[Sequence[str]],
    candidate_titles: Sequence[Sequence[str]],
    desc: str,
) -> list[np.ndarray]:
    """LLM ranks of each user's candidates (one request per user, concurrent, cached)."""
    requests = [request(h, c) for h, c in zip(histories, candidate_titles, strict=True)]
    responses = client.many(requests, desc=desc)
    return [
        llm_order(letter_scores(r, len(c)))
        for r, c in zip(responses, candidate_titles, strict=True)
    ]
