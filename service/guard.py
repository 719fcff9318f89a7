"""What every request passes before a route sees it (a pure ASGI middleware, so streamed answers
pass through untouched):

* **Host**: only the names this server answers to (the loopback names, the bound address and
  ``service.allowed_hosts``) — a DNS-rebinding page on another name gets 400;
* **Origin**: a state-changing request (POST, PUT, PATCH, DELETE) from a browser must come from
  the page's own origin (or ``service.cors_origins``) — a cross-site form gets 403;
* **body size by route**: multipart only where a route takes uploads, with its own limit; every
  other route gets ``service.max_body_bytes``; the declared length is checked before a byte of
  the body is read (no length: 411);
* **the token** (where one is configured) for everything but the page and ``/healthz``, before
  a byte of the body is read;
* **body time**: the whole body must arrive within ``service.read_timeout_s`` of the headers
  (a JSON body is read here, within that deadline, before any route runs; a form raises
  :class:`BodyTimeout` in the route that reads it); 408 otherwise;
* **headers on every answer**: the page's Content-Security-Policy (no framing), nosniff and no
  referrer, on the page, its files and the API alike.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse

from service.auth import Tokens, Unauthorised
from tools.config_service import LOOPBACK_HOSTS, ServiceSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
BODY_METHODS = {"POST", "PUT", "PATCH"}
UPLOAD_ROUTE = re.compile(r"/v1/sessions/[^/]+/messages")
MULTIPART_OVERHEAD = 100_000  # form fields and part headers beside the two files


class BodyTimeout(Exception):
    """The request body did not arrive in time."""


def host_name(host: str) -> str:
    """The name part of a Host header or URL authority (``[::1]:80`` → ``::1``), lower-cased;
    anything malformed comes back as it is (and matches no allowed name)."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :] if end > 0 else "?"
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return host
        return host[1:end]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_form(content_type: str) -> bool:
    """Whether a body is a multipart form (the one kind the upload route reads as such)."""
    return content_type.strip().lower().startswith("multipart/form-data")


@dataclass
class Policy:
    """The admission rules of one service configuration."""

    cfg: ServiceSettings
    hosts: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.hosts = {*LOOPBACK_HOSTS, *(host_name(h) for h in self.cfg.allowed_hosts)}
        try:
            if not ipaddress.ip_address(self.cfg.host).is_unspecified:
                self.hosts.add(host_name(self.cfg.host))
        except ValueError:  # a name, such as localhost or the machine's
            self.hosts.add(host_name(self.cfg.host))

    def body_limit(self, method: str, path: str, multipart: bool) -> int:
        if multipart and method == "POST" and UPLOAD_ROUTE.fullmatch(path):
            return self.cfg.max_upload_bytes * 2 + MULTIPART_OVERHEAD
        return self.cfg.max_body_bytes

    def refusal(self, method: str, path: str, headers: Headers) -> tuple[int, str] | None:
        """(status, message) when the request is refused before any route runs, else None."""
        host = host_name(headers.get("host", ""))
        if "*" not in self.hosts and host not in self.hosts:
            return 400, (
                f"this server does not answer to the host name {host[:100]!r} "
                "(add it to service.allowed_hosts)"
            )
        origin = headers.get("origin")
        if method in STATE_CHANGING and origin is not None and not self._same_site(origin, headers):
            return 403, "cross-site requests are refused (the Origin is not this server's page)"
        length = headers.get("content-length")
        if length is None and (method in BODY_METHODS or "transfer-encoding" in headers):
            return 411, "a Content-Length header is required"
        if length is not None:
            limit = self.body_limit(method, path, is_form(headers.get("content-type", "")))
            if not length.isdigit() or int(length) > limit:
                return 413, f"the request body is over this route's limit of {limit:,} bytes"
        return None

    def _same_site(self, origin: str, headers: Headers) -> bool:
        if origin in self.cfg.cors_origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            return False  # "null" (sandboxed frames, files) and anything odd
        return parts.netloc.lower() == headers.get("host", "").strip().lower()


class Guard:
    """The ASGI middleware applying :class:`Policy`, the token (before a byte of the body is
    read) and the security headers (module doc)."""

    def __init__(self, app: App, cfg: ServiceSettings, tokens: Tokens) -> None:
        self.app = app
        self.policy = Policy(cfg)
        self.tokens = tokens
        self.read_timeout = cfg.read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refused = self.policy.refusal(scope["method"], scope["path"], headers)
        if refused is None and not PUBLIC.fullmatch(scope["path"]):
            try:  # the routes read the space it opens from the request's state
                space = self.tokens.space(headers.get("authorization", ""))
                scope.setdefault("state", {})[SPACE] = space
            except Unauthorised:
                refused = 401, UNAUTHORISED
        if refused is not None:
            await _refuse(*refused, scope, receive, send)
            return
        until = asyncio.get_running_loop().time() + self.read_timeout  # the whole body's time
        if not is_form(headers.get("content-type", "")) and int(headers.get("content-length") or 0):
            try:  # read (bounded by its checked length) before any route runs
                body = await _read_body(receive, until)
            except BodyTimeout:
                await _refuse(408, late(self.read_timeout), scope, receive, send)
                return
            receive = _replay(body, receive)

        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # after the body: waiting for a disconnect is not bounded
                return await receive()
            message = await _before(receive(), until)
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _secure(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, timed_receive, send_with_headers)


def late(seconds: float) -> str:
    """What a client whose body was too slow is told."""
    return f"the request body did not arrive within {seconds:g} s"


PUBLIC = re.compile(r"/|/healthz|/static/.*")  # what needs no token: the page and liveness
UNAUTHORISED = "a valid `Authorization: Bearer TOKEN` header is required"
SPACE = "session_space"  # the request state's key for the space the token opens


def _secure(headers: MutableHeaders) -> None:
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value


async def _refuse(status: int, message: str, scope: Scope, receive: Receive, send: Send) -> None:
    extra = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    response = JSONResponse({"error": message}, status, headers={**SECURITY_HEADERS, **extra})
    await response(scope, receive, send)


async def _before(waiting: Awaitable[Message], until: float) -> Message:
    remaining = until - asyncio.get_running_loop().time()
    try:
        return await asyncio.wait_for(waiting, max(remaining, 0.0))
    except TimeoutError:
        raise BodyTimeout from None


async def _read_body(receive: Receive, until: float) -> bytes:
    chunks = []
    while True:
        message = await _before(receive(), until)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
