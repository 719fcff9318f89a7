"""The chat page in a real browser (headless Chromium) against a live service on the small
store: a message streams cards in, a like changes the next turn, a picture upload searches by
it, the page works on a phone-sized screen by keyboard alone, and logs no console error. The
run writes a screenshot of the page (linked from the README)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.recommender import Recommender
from agent.session import SessionStore
from service.app import Service
from tests.browser import ask, browser_page, live_service
from tests.media import png
from tests.small_store import build_small_store

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "chat-page.png"


@pytest.fixture(scope="module")
def small(prepared_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_small_store(tmp_path_factory.mktemp("browser-store"), prepared_models)


def test_chat_page_streams_cards_takes_feedback_and_pictures(small: Any, tmp_path: Path) -> None:
    settings, store, models = small
    settings = settings.model_copy(update={"data_dir": tmp_path})
    service = Service(
        settings,
        Recommender.build(settings, store, models, None),
        SessionStore(tmp_path),
        lambda: None,
    )
    with live_service(service) as url, browser_page() as page:
        page.goto(url)
        assert page.title() == "recagent"
        first = ask(page, "an animal", 0)  # typed, sent with Enter: keyboard only
        cards = first.locator(".card")
        assert cards.count() == 4
        assert cards.first.locator(".why-text").inner_text().strip()
        assert "from:" in cards.first.locator(".cited").inner_text()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.card img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        liked_id = cards.first.get_attribute("data-id")
        like = cards.first.locator("button[data-kind=like]")
        like.focus()
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => document.querySelector('.card button[data-kind=like]')"
            ".getAttribute('aria-pressed') === 'true'"
        )
        second = ask(page, "another animal", 1)
        why = second.locator(".card").first.locator("details")
        why.locator("summary").click()
        assert "feedback" in why.inner_text()  # the like entered the next ranking
        assert liked_id not in [c.get_attribute("data-id") for c in second.locator(".card").all()]
        green = png(tmp_path / "green.png", (30, 180, 40, 255))
        page.set_input_files("#picture", str(green))
        assert "green.png" in page.inner_text("#attached")
        page.click("#send")
        third = page.locator("li.reply").nth(2)
        third.locator(".card").first.wait_for(timeout=60_000)
        assert third.locator(".card").first.get_attribute("data-id") == "animals/birds/parrot"
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.set_viewport_size({"width": 1000, "height": 900})
        second.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOT))
        assert page.console_errors == []  # type: ignore[attr-defined]
