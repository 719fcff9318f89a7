"""A live service in a background thread and a headless Chromium (Debian's `chromium`, driven
by Playwright's Python API through its executable path; nothing is downloaded)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from service.app import Service, create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_service(service: Service) -> Iterator[str]:
    """``service`` served by uvicorn on 127.0.0.1 for the block; yields its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def browser_page() -> Iterator[Any]:
    """A fresh page in headless Chromium that fails the test on any console error."""
    if CHROMIUM is None:
        pytest.fail(
            "chromium is not installed: run scripts/setup.sh (it installs Debian's chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.console_errors = errors  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()


def ask(page: Any, text: str, replies_before: int) -> Any:
    """Send ``text`` and wait until the new reply's last event (``done``) arrived."""
    page.fill("#message", text)
    page.press("#message", "Enter")
    reply = page.locator("li.reply").nth(replies_before)
    reply.locator(".card").first.wait_for(timeout=60_000)
    page.wait_for_function(
        "n => document.querySelectorAll('li.reply')[n].dataset.done === 'yes'",
        arg=replies_before,
        timeout=120_000,
    )
    return reply
