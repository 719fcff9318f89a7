"""Several OpenAI-compatible endpoints serving one model (``llm.base_urls``: vLLM replicas)
behind one client: each request goes to the next healthy endpoint in turn, and an endpoint that
cannot be reached or times out sits out a cooldown (``llm.endpoint_cooldown_s``).

How: a transport routes every request its HTTP client sends. The OpenAI client (and so
LangChain's ChatOpenAI) takes such a client as ``http_client``, built on HTTPX2 as the SDK is
(:meth:`EndpointPool.sdk_client`); the evaluation client is a plain httpx client
(:class:`SpreadingTransport`). LangChain's ``with_fallbacks`` does not fit: ``create_agent``
(the tool phase) takes only a chat model, not a ``RunnableWithFallbacks``, and a fallback chain
cannot mark an endpoint down, so every request would first wait on the dead one.

- A connection that cannot be made (refused, no route, unknown host) has sent nothing and cost
  no time: the request goes at once to the next healthy endpoint, each tried once.
- A timeout or a connection lost mid-request marks the endpoint down and reaches the client,
  whose own retries (``agent.llm.request_budget``: only while they fit in the turn's deadline)
  then go to the next healthy endpoint. Nothing that reached a server is sent again here.
- With no healthy endpoint, :class:`LLMUnavailable` names each with why and for how long.

Limits: health is per process (each replica of the service learns it by itself); only failures
to connect or to answer in time count, so a server that answers errors (HTTP 5xx) stays in
turn; a streamed reply that stalls after its first bytes is not noticed here (its read timeout
is the client's). Importing this module opens nothing: pools and their clients are made on
first use and kept for the life of the process, one pool per set of endpoints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx
import httpx2

from tools.errors import LLMUnavailable

T = TypeVar("T")
Req = TypeVar("Req", httpx.Request, httpx2.Request)
# (a connection could not be made, any transport failure) in one HTTP library's terms
Errors = tuple[type[Exception], type[Exception]]
HTTPX_ERRORS: Errors = (httpx.ConnectError, httpx.TransportError)
HTTPX2_ERRORS: Errors = (httpx2.ConnectError, httpx2.TransportError)


@dataclass(frozen=True)
class Down:
    until: float  # on the pool's clock
    reason: str


class EndpointPool:
    """Whose turn it is among ``urls`` and which are down; safe to share between threads."""

    def __init__(
        self, urls: Sequence[str], cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not urls:
            raise ValueError("an endpoint pool needs at least one URL")  # a bug, not config
        self.urls = tuple(url.rstrip("/") for url in urls)
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._turn = 0
        self._down: dict[str, Down] = {}
        # as the HTTP client spells a request's URL; longest first (one may begin another)
        self._prefixes = sorted(
            ((str(httpx.URL(url)).rstrip("/"), url) for url in self.urls), key=lambda p: -len(p[0])
        )
        self._sdk_client: httpx2.Client | None = None
        self._sdk_async_client: httpx2.AsyncClient | None = None

    def in_turn(self, move: bool = True) -> list[str]:
        """The healthy endpoints, the one whose turn it is first; ``move``: the turn passes to
        the next (a request is being sent). :class:`LLMUnavailable` when all are down."""
        with self._lock:
            now = self._clock()
            healthy = [url for url in self.urls if self._healthy(url, now)]
            if not healthy:
                raise LLMUnavailable(self._none_healthy(now))
            first = self._turn % len(healthy)
            self._turn += move
        return healthy[first:] + healthy[:first]

    def mark_down(self, url: str, reason: str) -> None:
        with self._lock:
            self._down[url] = Down(self._clock() + self.cooldown_s, reason)

    def route(self, request_url: str) -> tuple[str, str] | None:
        """(endpoint, the rest of the URL) when ``request_url`` lies under one of the
        endpoints, else None (not a request for this pool)."""
        for prefix, url in self._prefixes:
            rest = request_url[len(prefix) :]
            if request_url.startswith(prefix) and (not rest or rest[0] in "/?"):
                return url, rest
        return None

    def sdk_client(self) -> httpx2.Client:
        """The pool's client for the OpenAI SDK (its defaults; connections kept for reuse)."""
        from openai import DefaultHttpxClient

        with self._lock:
            if self._sdk_client is None:
                self._sdk_client = DefaultHttpxClient(transport=SdkTransport(self))
            return self._sdk_client

    def sdk_async_client(self) -> httpx2.AsyncClient:
        from openai import DefaultAsyncHttpxClient

        with self._lock:
            if self._sdk_async_client is None:
                self._sdk_async_client = DefaultAsyncHttpxClient(transport=SdkAsyncTransport(self))
            return self._sdk_async_client

    def _healthy(self, url: str, now: float) -> bool:
        down = self._down.get(url)
        return down is None or down.until <= now

    def _none_healthy(self, now: float) -> str:
        listed = ", ".join(
            f"{url} ({self._down[url].reason}; left out for another "
            f"{max(self._down[url].until - now, 0):.0f} s)"
            for url in self.urls
        )
        return f"none of the LLM endpoints (llm.base_urls) is answering: {listed}"


def spread(pool: EndpointPool, url: str, send: Callable[[str], T], errors: Errors) -> T:
    """``send`` a request for ``url`` to the endpoint whose turn it is (see the module's
    docstring for what a failure does); a URL under none of the endpoints goes as it is."""
    routed = pool.route(url)
    if routed is None:
        return send(url)
    connect, transport = errors
    refused: list[str] = []
    for endpoint in pool.in_turn():
        try:
            return send(endpoint + routed[1])
        except connect as exc:  # nothing was sent: the next one, at once
            refused.append(_failed(pool, endpoint, exc))
        except transport as exc:  # the client's retries decide
            _failed(pool, endpoint, exc)
            raise
    raise LLMUnavailable(_none_reached(pool, refused))


async def spread_async(
    pool: EndpointPool, url: str, send: Callable[[str], Awaitable[T]], errors: Errors
) -> T:
    """:func:`spread` for asynchronous clients."""
    routed = pool.route(url)
    if routed is None:
        return await send(url)
    connect, transport = errors
    refused: list[str] = []
    for endpoint in pool.in_turn():
        try:
            return await send(endpoint + routed[1])
        except connect as exc:
            refused.append(_failed(pool, endpoint, exc))
        except transport as exc:
            _failed(pool, endpoint, exc)
            raise
    raise LLMUnavailable(_none_reached(pool, refused))


class SpreadingTransport(httpx.BaseTransport):
    """Spreads an httpx client's requests over the pool (the evaluation client)."""

    def __init__(self, pool: EndpointPool, inner: httpx.BaseTransport | None = None) -> None:
        self.pool = pool
        self.inner = inner or httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        def send(url: str) -> httpx.Response:
            return self.inner.handle_request(rebased(request, url))

        return spread(self.pool, str(request.url), send, HTTPX_ERRORS)

    def close(self) -> None:
        self.inner.close()


class SdkTransport(httpx2.BaseTransport):
    """Spreads the OpenAI client's requests over the pool (HTTPX2, the SDK's library)."""

    def __init__(self, pool: EndpointPool) -> None:
        self.pool = pool
        self.inner = httpx2.HTTPTransport(
            limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        def send(url: str) -> httpx2.Response:
            return self.inner.handle_request(rebased(request, url))

        return spread(self.pool, str(request.url), send, HTTPX2_ERRORS)

    def close(self) -> None:
        self.inner.close()


class SdkAsyncTransport(httpx2.AsyncBaseTransport):
    """:class:`SdkTransport` for the asynchronous OpenAI client."""

    def __init__(self, pool: EndpointPool) -> None:
        self.pool = pool
        self.inner = httpx2.AsyncHTTPTransport(
            limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        async def send(url: str) -> httpx2.Response:
            return await self.inner.handle_async_request(rebased(request, url))

        return await spread_async(self.pool, str(request.url), send, HTTPX2_ERRORS)

    async def aclose(self) -> None:
        await self.inner.aclose()


def rebased(request: Req, url: str) -> Req:
    """``request`` sent to ``url`` instead (a new request: the original may go elsewhere next)."""
    target = type(request.url)(url)
    headers = request.headers.copy()
    headers["Host"] = target.netloc.decode("ascii")
    return type(request)(
        request.method,
        target,
        headers=headers,
        stream=request.stream,
        extensions=request.extensions,
    )


def _failed(pool: EndpointPool, url: str, exc: Exception) -> str:
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    pool.mark_down(url, reason)
    return f"{url} ({reason})"


def _none_reached(pool: EndpointPool, refused: list[str]) -> str:
    return (
        f"none of the LLM endpoints (llm.base_urls) could be reached: {', '.join(refused)}; "
        f"each is left out for {pool.cooldown_s:g} s"
    )


_pools: dict[tuple[tuple[str, ...], float], EndpointPool] = {}
_pools_lock = threading.Lock()


def shared_pool(urls: Sequence[str], cooldown_s: float) -> EndpointPool:
    """The process's one pool for these endpoints: every chat model, every thread and every
    client made from the same configuration learns and shares the same health."""
    key = (tuple(url.rstrip("/") for url in urls), cooldown_s)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = EndpointPool(key[0], cooldown_s)
        return pool
