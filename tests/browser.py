"""A live service in a background thread and a headless Chromium (Debian's `chromium`, driven
by Playwright's Python API through its executable path; nothing is downloaded)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from service.serving import serving as live_service

__all__ = ["ask", "browser_page", "live_service"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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
