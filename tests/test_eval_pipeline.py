"""The evaluation pipeline: the vectorised fusion is the agent's fusion, tuning picks what the
validation data rewards, the LLM rerank keeps ids inside the candidates, the client caches."""

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from agent.buffer import CandidateBuffer, Hit
from agent.fusion import fuse
from agent.llm import Endpoint
from eval import rerank
from eval.llm_client import ChatClient, ResponseCache, content
from eval.metrics import rank_of
from eval.pipeline import Inputs, fused_scores, target_ranks, tune
from eval.rank_report import the_bar
from eval.rank_stages import apply_order
from tools.candidate_pool import list_ranks
from tools.config import FusionWeights
from tools.errors import LLMRequestError


def test_vectorised_fusion_orders_items_like_the_agent() -> None:
    rng = np.random.default_rng(0)
    n = 30
    collab, content = rng.normal(size=(1, n)), rng.uniform(size=(1, n))
    seen = np.zeros((1, n), dtype=bool)
    seen[0, [3, 7]] = True
    weights = FusionWeights(rrf_k=10, rrf=0.3, profile=0.05, collab=1.0)
    ours = fused_scores(collab, content, seen, weights)[0]

    buffer = CandidateBuffer()
    for kind, row in (("collab", collab[0]), ("profile", content[0])):
        order = [i for i in np.argsort(-row, kind="stable") if not seen[0, i]]
        hits = [Hit(f"i{i:02d}", f"t{i:02d}", float(row[i])) for i in order]
        buffer.add(kind, kind, hits)
    agent = fuse(buffer.candidates(), weights)
    assert [s.candidate.id for s in agent] == [
        f"i{i:02d}" for i in np.argsort(-ours, kind="stable")[: n - 2]
    ]
    assert agent[0].total == pytest.approx(ours.max(), abs=1e-5)


def test_target_ranks_match_rank_of_with_ties() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.1], [1.0, 1.0, 1.0, 0.0]])
    targets = [2, 1]
    assert target_ranks(scores, targets).tolist() == [
        rank_of(scores[0], 2, []),
        rank_of(scores[1], 1, []),
    ]
    assert target_ranks(scores, targets).tolist() == [3, 2]
    assert list_ranks(scores)[0].tolist() == [2, 1, 3, 4]


def test_tuning_uses_the_signal_the_validation_targets_reward() -> None:
    users, items = 40, 50
    rng = np.random.default_rng(1)
    targets = rng.integers(0, items, size=users).tolist()
    noise = rng.normal(size=(users, items))
    sequential = noise.copy()
    sequential[np.arange(users), targets] += 5.0  # only SASRec knows the answers
    inputs = Inputs(
        np.zeros((users, items), bool),
        sequential,
        rng.normal(size=(users, items)),
        rng.uniform(size=(users, items)),
    )
    best = tune(inputs, targets)
    assert best.alpha == 1.0 and best.ndcg10 == pytest.approx(1.0)
    assert best.weights.rrf == 0.0 and best.weights.profile == 0.0  # ties go to the simplest


def test_rerank_request_parsing_and_blend() -> None:
    req = rerank.request(["Heat (1995)"], ["Alien (1979)", "Babe (1995)", "Clue (1985)"])
    text = req["messages"][0]["content"]
    assert "A. Alien (1979)" in text and "C. Clue (1985)" in text and "from A to\nC and" in text
    assert "- Heat (1995)" in text
    assert req["max_tokens"] == 1 and req["top_logprobs"] == rerank.TOP
    response = {
        "choices": [
            {
                "logprobs": {
                    "content": [
                        {
                            "token": "C",
                            "top_logprobs": [
                                {"token": "C", "logprob": -0.1},
                                {"token": " A", "logprob": -2.0},
                                {"token": "Z", "logprob": -3.0},  # not a candidate: ignored
                            ],
                        }
                    ]
                }
            }
        ]
    }
    scores = rerank.letter_scores(response, 3)
    assert scores[2] == -0.1 and scores[0] == -2.0 and scores[1] == float("-inf")
    ranks = rerank.llm_order(scores)
    assert ranks.tolist() == [2, 3, 1]
    assert rerank.blend(ranks, 0.0).tolist() == [0, 1, 2]  # weight 0: the fused order
    assert rerank.blend(ranks, 100.0).tolist() == [2, 0, 1]  # a huge weight: the LLM's order
    fused = np.array([[0.9, 0.8, 0.7, 0.1]])
    tops = np.array([[0, 1, 2]])
    reordered = apply_order(fused, tops, [np.array([2, 0, 1])])
    assert np.argsort(-reordered[0]).tolist() == [2, 0, 1, 3]


def test_the_bar_needs_the_pipeline_above_every_baseline() -> None:
    def r(x: float) -> dict[str, dict[str, float]]:
        return {"full": {"NDCG@10": x}}

    results = {"EASE (lambda 100)": r(0.07), "SASRec (3 epochs)": r(0.09), "recagent: x": r(0.1)}
    assert the_bar(results)["beats_every_baseline"]
    results["SASRec (3 epochs)"] = r(0.11)
    bar = the_bar(results)
    assert not bar["beats_every_baseline"] and bar["best_baseline"] == "SASRec (3 epochs)"


def test_client_caches_by_request_and_resumes(tmp_path: Path) -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        text = body["messages"][0]["content"].upper()
        return httpx.Response(200, json={"choices": [{"message": {"content": text}}]})

    cache_path = tmp_path / "cache.jsonl"
    target = Endpoint("http://llm.invalid/v1", "m", "k")
    client = ChatClient(target, ResponseCache(cache_path), concurrency=3)
    client._http = httpx.Client(base_url=target.base_url, transport=httpx.MockTransport(handler))
    requests = [{"messages": [{"role": "user", "content": f"q{i}"}]} for i in range(5)]
    out = client.many(requests, progress=False)
    assert [o["choices"][0]["message"]["content"] for o in out] == [f"Q{i}" for i in range(5)]
    assert client.calls == 5 and all(b["model"] == "m" for b in seen)

    with cache_path.open("a") as handle:
        handle.write('{"key": "cut sho')  # a line cut short by a kill is skipped on resume
    again = ChatClient(target, ResponseCache(cache_path))
    again._http = client._http
    assert again.many(requests, progress=False) == out and again.calls == 0


@pytest.mark.parametrize(
    "body", [b"<html>bad gateway</html>", b'{"choices": null}', b'{"choices": [{"x": 1}]}']
)
def test_malformed_answers_are_errors_and_never_cached(tmp_path: Path, body: bytes) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) <= 1:
            return httpx.Response(200, content=body, headers={"content-type": "text/html"})
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    cache_path = tmp_path / "cache.jsonl"
    target = Endpoint("http://llm.invalid/v1", "m", "k")
    client = ChatClient(target, ResponseCache(cache_path), retries=0)
    client._http = httpx.Client(base_url=target.base_url, transport=httpx.MockTransport(handler))
    request = {"messages": [{"role": "user", "content": "q"}]}
    with pytest.raises(LLMRequestError, match="answered"):
        client.one(request)
    assert not cache_path.exists() or not cache_path.read_text().strip()
    again = ChatClient(target, ResponseCache(cache_path), retries=0)
    again._http = client._http
    assert content(again.one(request)) == "ok"  # the re-run asks again, it does not replay


def test_tuning_a_block_of_users_at_a_time_chooses_what_tuning_all_at_once_does() -> None:
    from eval.pipeline import tune_blocks

    users, items = 60, 40
    rng = np.random.default_rng(4)
    targets = rng.integers(0, items, size=users).tolist()
    sequential, item_item = rng.normal(size=(2, users, items))
    item_item[np.arange(users), targets] += rng.uniform(0, 3, size=users)  # EASE knows some
    content = rng.uniform(size=(users, items))
    content[np.arange(users), targets] += rng.uniform(0, 0.5, size=users)
    seen = rng.uniform(size=(users, items)) < 0.1
    seen[np.arange(users), targets] = False
    whole = Inputs(seen, sequential, item_item, content)
    at_once = tune(whole, targets)

    def part(rows: slice) -> Inputs:
        return Inputs(seen[rows], sequential[rows], item_item[rows], content[rows])

    blocks = [(part(slice(n, n + 25)), targets[n : n + 25]) for n in range(0, users, 25)]
    in_blocks = tune_blocks(blocks)
    assert (in_blocks.alpha, in_blocks.weights) == (at_once.alpha, at_once.weights)
    assert in_blocks.ndcg10 == pytest.approx(at_once.ndcg10)
    assert at_once.alpha < 1.0  # the signal is in EASE, so the blend moved away from SASRec
