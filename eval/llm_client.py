"""Many chat requests at once against an OpenAI-compatible endpoint, cached by prompt hash.

vLLM batches concurrent requests, so evaluation sends them from a thread pool. Each response is
appended to a JSONL cache keyed by the SHA-256 of the full request (model, messages, sampling),
so an interrupted run resumes where it stopped and a re-run costs nothing. With several endpoints
(``llm.base_urls``) the requests are spread over them (:mod:`agent.llm_endpoints`); the cache key
does not name the endpoint, since all serve the same model.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from agent.llm import Endpoint
from agent.llm_endpoints import SpreadingTransport
from tools.errors import LLMRequestError


def request_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class ResponseCache:
    """Append-only JSONL of ``{"key": ..., "response": ...}``; safe across threads."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {}
        if path is not None and path.is_file():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill: redo that request
                    continue
                self._data[row["key"]] = row["response"]

    def get(self, key: str) -> dict[str, Any] | None:
        return self._data.get(key)

    def put(self, key: str, response: dict[str, Any]) -> None:
        with self._lock:
            self._data[key] = response
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as handle:
                    handle.write(json.dumps({"key": key, "response": response}) + "\n")

    def __len__(self) -> int:
        return len(self._data)


class ChatClient:
    def __init__(
        self,
        target: Endpoint,
        cache: ResponseCache | None = None,
        concurrency: int = 8,
        timeout: float = 300.0,
        retries: int = 2,
    ) -> None:
        self.target = target
        self.cache = cache if cache is not None else ResponseCache(None)
        self.concurrency = max(1, concurrency)
        self.retries = retries
        limits = httpx.Limits(max_connections=self.concurrency + 2)
        self._http = httpx.Client(
            base_url=target.base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {target.api_key}"},
            limits=limits,
            transport=(
                SpreadingTransport(target.pool, httpx.HTTPTransport(limits=limits))
                if target.pool is not None
                else None
            ),
        )
        # what an error names: the one endpoint, or all of them
        self.where = ", ".join(target.pool.urls) if target.pool is not None else target.base_url
        self.calls = 0  # requests that went to the server (not served from the cache)

    def payload(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.target.model, **request}

    def one(self, request: dict[str, Any]) -> dict[str, Any]:
        body = self.payload(request)
        key = request_key(body)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        error: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._http.post("/chat/completions", json=body)
                if response.status_code < 500:
                    response.raise_for_status()
                    self.calls += 1
                    data, problem = well_formed(response)
                    if data is not None:
                        self.cache.put(key, data)  # only a well-formed answer is kept
                        return data
                    error = LLMRequestError(f"{self.where} answered {problem}")
                    time.sleep(min(2.0**attempt, 10.0))
                    continue
                error = httpx.HTTPStatusError(
                    f"{response.status_code}: {response.text[:200]}",
                    request=response.request,
                    response=response,
                )
            except httpx.HTTPStatusError as exc:
                raise LLMRequestError(
                    f"{self.where} refused a request "
                    f"({exc.response.status_code}: {exc.response.text[:300]})"
                ) from exc
            except httpx.TransportError as exc:
                error = exc
            time.sleep(min(2.0**attempt, 10.0))
        raise LLMRequestError(f"{self.where} did not answer: {error}") from error

    def many(
        self, requests: Sequence[dict[str, Any]], desc: str = "LLM requests", progress: bool = True
    ) -> list[dict[str, Any]]:
        """Responses in the order of ``requests``; ``concurrency`` of them in flight at once."""
        bar = tqdm(total=len(requests), desc=desc, unit="req", disable=not progress)
        out = []
        try:
            with ThreadPoolExecutor(self.concurrency) as pool:
                futures = [pool.submit(self.one, r) for r in requests]
                try:
                    for future in futures:
                        out.append(future.result())
                        bar.update(1)
                except BaseException:
                    for future in futures:  # do not wait for the rest of a failed batch
                        future.cancel()
                    raise
        finally:
            bar.close()
        return out

    def close(self) -> None:
        self._http.close()


def well_formed(response: httpx.Response) -> tuple[dict[str, Any] | None, str]:
    """The body as a chat completion, or None and what is wrong with it."""
    try:
        data = response.json()
    except ValueError:
        return None, f"with a body that is not JSON ({response.text[:120]!r})"
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        return None, f"without choices ({response.text[:120]!r})"
    first = choices[0]
    if not isinstance(first, dict) or not isinstance(first.get("message"), dict):
        return None, f"with a choice that has no message ({response.text[:120]!r})"
    return data, ""


def content(response: dict[str, Any]) -> str:
    return str(response["choices"][0]["message"].get("content") or "")


def top_logprobs(response: dict[str, Any]) -> dict[str, float]:
    """The first generated token's alternatives: token text (stripped) -> best logprob."""
    entries = (response["choices"][0].get("logprobs") or {}).get("content") or []
    out: dict[str, float] = {}
    if entries:
        for alt in entries[0].get("top_logprobs", []):
            token = str(alt["token"]).strip()
            out[token] = max(out.get(token, float("-inf")), float(alt["logprob"]))
    return out
