"""What the tests that start server processes share: a free loopback port, and waiting until a
started server answers (or telling why it never will)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable

import httpx

from tools.processes import free_port

__all__ = ["answers_http", "free_port", "wait_ready"]


def answers_http(url: str, timeout: float = 2.0) -> Callable[[], bool]:
    """A readiness probe: ``url`` answers 200."""

    def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=timeout).status_code == 200
        return False

    return ready


def wait_ready(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    within_s: float,
    every_s: float = 0.3,
) -> str | None:
    """None as soon as ``ready()`` holds; else why it did not: the process exited (with its
    status) or ``within_s`` seconds passed. The caller adds the server's log."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exit status {process.returncode}"
        if ready():
            return None
        time.sleep(every_s)
    return f"no answer within {within_s:.0f} s"
