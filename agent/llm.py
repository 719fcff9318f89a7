"""The chat model behind a tiny interface: LangChain's ChatOpenAI on any OpenAI-compatible
endpoint (the managed local vLLM by default, a remote deployment or another provider by config,
or several replicas of one model that requests are spread over: :mod:`agent.llm_endpoints`),
with timeouts and retries with backoff."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agent import llm_server
from agent.llm_endpoints import EndpointPool, shared_pool
from tools.config import Settings
from tools.errors import LLMUnavailable

if TYPE_CHECKING:
    import httpx2


@dataclass(frozen=True)
class Endpoint:
    """Where the chat requests go. With several endpoints (``llm.base_urls``) ``pool`` spreads
    the requests of every client given :meth:`http_client` over them, and ``base_url`` is the
    first healthy one (what a client is built on, and what a single probe checks)."""

    base_url: str
    model: str
    api_key: str = field(repr=False)  # a secret: never in a log or traceback
    pool: EndpointPool | None = field(default=None, compare=False, repr=False)

    def http_client(self) -> httpx2.Client | None:
        """The ``http_client`` for an OpenAI client that spreads its requests over the pool
        (None with one endpoint: the SDK's default)."""
        return self.pool.sdk_client() if self.pool is not None else None

    def http_async_client(self) -> httpx2.AsyncClient | None:
        return self.pool.sdk_async_client() if self.pool is not None else None


def endpoint(settings: Settings) -> Endpoint:
    """The configured endpoint; :class:`LLMUnavailable` when the local server is not ready or
    every endpoint of ``llm.base_urls`` is left out after failing."""
    cfg = settings.llm
    if cfg.base_urls:
        pool = shared_pool(cfg.remote_urls, cfg.endpoint_cooldown_s)
        return Endpoint(
            pool.in_turn(move=False)[0],
            cfg.model_name or cfg.served_name,
            cfg.api_key.get_secret_value(),
            pool,
        )
    if cfg.base_url:
        return Endpoint(
            cfg.base_url.rstrip("/"),
            cfg.model_name or cfg.served_name,
            cfg.api_key.get_secret_value(),
        )
    state, current = llm_server.status(settings)
    if state is None:
        raise LLMUnavailable(
            "the local LLM server is not running: start it with "
            "`recagent llm serve` (or set llm.base_url)"
        )
    if current != "ready":
        raise LLMUnavailable(f"the local LLM server (pid {state.pid}) is still starting")
    return Endpoint(
        state.base_url,
        cfg.model_name or state.served_name,
        state.api_key or cfg.api_key.get_secret_value(),
    )


class ChatFactory(Protocol):
    """Makes the LangChain chat model one LLM step uses (a fresh client per step is cheap, and
    lets each step set its own output budget and streaming)."""

    def __call__(self, *, streaming: bool, max_tokens: int) -> Any: ...


@dataclass(frozen=True)
class EndpointChat:
    """The :class:`ChatFactory` for the configured endpoint."""

    settings: Settings

    def __call__(self, *, streaming: bool, max_tokens: int) -> Any:
        return chat_model(self.settings, streaming=streaming, max_tokens=max_tokens)


def chat_model(settings: Settings, streaming: bool = False, **overrides: Any) -> Any:
    """A ChatOpenAI client for the configured endpoint (raises LLMUnavailable); with several,
    each of its requests goes to the next healthy one, a retry included."""
    from langchain_openai import ChatOpenAI

    target = endpoint(settings)
    timeout, retries = request_budget(settings)
    return ChatOpenAI(
        base_url=target.base_url,
        api_key=target.api_key,  # type: ignore[arg-type]
        model=target.model,
        temperature=settings.llm.temperature,
        timeout=timeout,
        max_retries=retries,
        streaming=streaming,
        stream_usage=True,  # token counts for streamed replies too (bench chat)
        http_client=target.http_client(),
        http_async_client=target.http_async_client(),
        **overrides,
    )


def request_budget(settings: Settings) -> tuple[float, int]:
    """(seconds per request, retries) within the turn's LLM deadline: one request never waits
    longer than the deadline, and retries only while they all fit in it."""
    deadline = settings.turn.llm_deadline_s
    timeout = min(settings.llm.request_timeout, deadline)
    retries = min(settings.llm.max_retries, max(0, int(deadline // timeout) - 1))
    return timeout, retries
