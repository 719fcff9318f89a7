"""Running the app under uvicorn with the service's connection limits: a client has
``service.read_timeout_s`` to send a request's headers (checked here, on the connection) and its
body (checked by :mod:`service.guard`), idle keep-alive connections close after 5 s, and at most
``service.max_connections`` connections are served at once (more are answered 503).
:func:`serving` runs it in a background thread for benchmarks and tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from service.app import Service, create_app
from tools.config_service import ServiceSettings
from tools.errors import ServerError
from tools.processes import free_port

KEEP_ALIVE_S = 5


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with a deadline on each request's headers: a connection that
    opens and sends nothing, or sends part of the headers, is closed after ``seconds``."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(seconds, self._headers_late)

        def _disarm(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_late(self) -> None:
            self._header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


def uvicorn_config(app: Any, cfg: ServiceSettings, **options: Any) -> Any:
    """The uvicorn configuration of ``app`` under ``cfg``'s connection limits."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        http=header_timeout_protocol(cfg.read_timeout_s),
        limit_concurrency=cfg.max_connections,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=5,
        **options,
    )


@contextmanager
def serving(service: Service, timeout: float = 30.0) -> Iterator[str]:
    """``service`` served on 127.0.0.1 for the block; yields its base URL."""
    import uvicorn

    port = free_port()
    cfg = service.settings.service.model_copy(update={"host": "127.0.0.1", "port": port})
    server = uvicorn.Server(uvicorn_config(create_app(service), cfg, log_level="warning"))
    thread = threading.Thread(target=server.run, name="recagent-serve", daemon=True)
    thread.start()
    deadline = time.time() + timeout
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise ServerError("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
