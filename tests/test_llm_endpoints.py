"""Several LLM endpoints (``llm.base_urls``), over real HTTP: three small OpenAI-compatible
servers (``tests/fake_llm_server.py``, each answering its own name) in processes of their own,
reached through the same clients the agent and the evaluation use (LangChain's ChatOpenAI from
``agent.llm.chat_model``, the evaluation's ``ChatClient``). Requests are spread over them, one
that is stopped or too slow is left out for its cooldown, none answering is a clear
``LLMUnavailable``, and the configuration refuses ``base_url`` beside ``base_urls``."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.llm import chat_model, endpoint
from eval.llm_client import ChatClient
from tests.servers import answers_http, free_port, wait_ready
from tools.config import Settings, load_settings
from tools.errors import ConfigError, LLMUnavailable

SERVER = Path(__file__).with_name("fake_llm_server.py")


@dataclass
class FakeLLM:
    name: str
    port: int
    log: Path
    delay: float = 0.0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait: bool = True) -> None:
        """Start it (again: a restarted server counts its completions from zero)."""
        args = [sys.executable, str(SERVER), str(self.port), self.name, "--delay", str(self.delay)]
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)
        if wait:
            self.wait()

    def wait(self) -> None:
        assert self.process is not None
        why = wait_ready(answers_http(f"{self.url}/models"), self.process, 30, every_s=0.05)
        if why is not None:
            pytest.fail(f"fake LLM {self.name}: {why}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=15)

    def completions(self) -> int:
        """How many completions this server (since its last start) was asked for."""
        stats = httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=5).json()
        return int(stats["completions"])


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[dict[str, FakeLLM]]:
    made = {
        name: FakeLLM(name, free_port(), tmp_path / f"{name}.log")
        for name in ("alpha", "beta", "gamma")
    }
    try:
        for fake in made.values():
            fake.start(wait=False)  # all three start at once
        for fake in made.values():
            fake.wait()
        yield made
    finally:
        for fake in made.values():
            fake.stop()


def spread_settings(*fakes: FakeLLM, turn: dict[str, Any] | None = None, **llm: Any) -> Settings:
    """Settings for these endpoints; each test's free ports make its pool a new one."""
    return load_settings(
        llm={"base_urls": [fake.url for fake in fakes], "model_name": "fake-llm", **llm},
        turn=turn or {},
    )


def ask(settings: Settings) -> str:
    return str(chat_model(settings).invoke("which server are you?").content)


def test_requests_are_spread_over_every_endpoint(fakes: dict[str, FakeLLM]) -> None:
    settings = spread_settings(*fakes.values())
    answered = [ask(settings) for _ in range(3)]
    answered += [
        "".join(str(chunk.content) for chunk in chat_model(settings, streaming=True).stream("hi"))
        for _ in range(3)
    ]

    async def asked_async() -> list[str]:
        return [str((await chat_model(settings).ainvoke("hi")).content) for _ in range(3)]

    answered += asyncio.run(asked_async())
    # in turn: every server answered once in each round of three, whatever the call
    for start in range(0, 9, 3):
        assert sorted(answered[start : start + 3]) == ["alpha", "beta", "gamma"], answered
    assert {name: fake.completions() for name, fake in fakes.items()} == {
        "alpha": 3,
        "beta": 3,
        "gamma": 3,
    }


def test_the_evaluation_client_spreads_its_concurrent_requests(
    fakes: dict[str, FakeLLM],
) -> None:
    client = ChatClient(endpoint(spread_settings(*fakes.values())), concurrency=6)
    try:
        requests = [{"messages": [{"role": "user", "content": f"case {i}"}]} for i in range(30)]
        replies = client.many(requests, progress=False)
    finally:
        client.close()
    answered = Counter(reply["choices"][0]["message"]["content"] for reply in replies)
    # six threads take turns under one lock: exactly a third each
    assert answered == {"alpha": 10, "beta": 10, "gamma": 10}
    assert [fake.completions() for fake in fakes.values()] == [10, 10, 10]


def test_a_stopped_endpoint_is_skipped_during_its_cooldown(fakes: dict[str, FakeLLM]) -> None:
    alpha, beta = fakes["alpha"], fakes["beta"]
    settings = spread_settings(alpha, beta, endpoint_cooldown_s=600)
    assert sorted(ask(settings) for _ in range(2)) == ["alpha", "beta"]

    beta.stop()
    # the request whose turn was beta's goes on to alpha at once; every one succeeds
    assert [ask(settings) for _ in range(4)] == ["alpha"] * 4

    beta.start()  # back, but its cooldown is not over: it is not even tried
    assert [ask(settings) for _ in range(4)] == ["alpha"] * 4
    assert beta.completions() == 0
    assert endpoint(settings).base_url == alpha.url


def test_an_endpoint_is_tried_again_after_its_cooldown(fakes: dict[str, FakeLLM]) -> None:
    alpha, beta = fakes["alpha"], fakes["beta"]
    settings = spread_settings(alpha, beta, endpoint_cooldown_s=0.5)
    beta.stop()
    assert [ask(settings) for _ in range(2)] == ["alpha"] * 2
    beta.start()
    time.sleep(0.6)
    assert sorted(ask(settings) for _ in range(4)) == ["alpha", "alpha", "beta", "beta"]
    assert beta.completions() == 2


def test_a_timeout_is_retried_on_another_endpoint_within_the_budget(tmp_path: Path) -> None:
    slow = FakeLLM("slow", free_port(), tmp_path / "slow.log", delay=10)
    fast = FakeLLM("fast", free_port(), tmp_path / "fast.log")
    try:
        slow.start()
        fast.start()
        # 1 s per request within a 3 s deadline: two retries fit (agent.llm.request_budget)
        settings = spread_settings(slow, fast, turn={"llm_deadline_s": 3}, request_timeout=1)
        started = time.perf_counter()
        answered = [ask(settings) for _ in range(4)]
        seconds = time.perf_counter() - started
        assert answered == ["fast"] * 4
        assert slow.completions() == 1  # timed out once, then left out
        assert seconds < 6, f"{seconds:.1f} s: the slow endpoint was waited on more than once"
    finally:
        slow.stop()
        fast.stop()


def test_every_endpoint_down_is_llm_unavailable_naming_them(fakes: dict[str, FakeLLM]) -> None:
    alpha, beta = fakes["alpha"], fakes["beta"]
    settings = spread_settings(alpha, beta)
    alpha.stop()
    beta.stop()
    with pytest.raises(LLMUnavailable) as tried:
        ask(settings)
    assert alpha.url in tried.value.message and beta.url in tried.value.message
    assert "could be reached" in tried.value.message
    # both are now left out: the next model is refused before any request, naming them
    for attempt in (lambda: endpoint(settings), lambda: chat_model(settings)):
        with pytest.raises(LLMUnavailable) as refused:
            attempt()
        assert alpha.url in refused.value.message and beta.url in refused.value.message
        assert "left out for another" in refused.value.message


def test_base_url_and_base_urls_together_are_a_config_error() -> None:
    with pytest.raises(ConfigError) as both:
        load_settings(llm={"base_url": "http://one:8000/v1", "base_urls": ["http://two:8000/v1"]})
    assert re.search(r"llm\.base_url\b", both.value.message), both.value.message
    assert "llm.base_urls" in both.value.message and "not both" in both.value.message
    with pytest.raises(ConfigError) as bad:
        load_settings(llm={"base_urls": ["http://two:8000/v1", "two:8000/v1"]})
    assert "llm.base_urls" in bad.value.message and "entry 2" in bad.value.message
    # base_url alone is one endpoint, as before: no pool
    single = endpoint(load_settings(llm={"base_url": "http://one:8000/v1/"}))
    assert single.base_url == "http://one:8000/v1" and single.pool is None
