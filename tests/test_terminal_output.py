"""Catalogue and LLM text reaches the terminal as plain text: markup in it is printed as
written (and cannot crash the command), control characters and bidi overrides never reach it."""

from __future__ import annotations

import io

from agent.conversation import Recommendation, TurnResult
from agent.profile import UserProfile
from cli.chat import print_turn, why
from cli.render import SafeConsole, print_hits
from indexing.records import Hit

HOSTILE = "Frog [/bold] [link=http://evil.example]click[/link] \x1b]0;owned\x07\x1b[2J\u202eevil"


def _console() -> tuple[SafeConsole, io.StringIO]:
    buffer = io.StringIO()
    return SafeConsole(file=buffer, force_terminal=False, width=200), buffer


def _assert_safe(text: str) -> None:
    """No escape sequence, bell or bidi override came through (styling is off here)."""
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


def test_search_table_prints_hostile_titles_as_written() -> None:
    console, buffer = _console()
    hit = Hit("a/frog", HOSTILE, 0.5, "animals", {"caption": "[red]x[/x]", "transcript": "\x1b[5m"})
    print_hits([hit], console, title="[/bold]")
    out = buffer.getvalue()
    assert "[/bold]" in out and "[link=http://evil.example]" in out and "[/x]" in out
    _assert_safe(out)


def test_turn_and_why_print_hostile_llm_text_as_written() -> None:
    console, buffer = _console()
    rec = Recommendation(
        "a/frog",
        HOSTILE,
        1.0,
        {"total": 1.0},
        "It is green [/x] \x1b[2J.",
        ["title"],
        "llm",
        {},
        ["[/y]"],
        ["[/z]"],
    )
    result = TurnResult("Hi [/bold] \x1b]0;t\x07", [rec], UserProfile(user_id="u"), ["[/w]"])
    print_turn(result, console, streamed=False)
    why(result, 1, console)
    out = buffer.getvalue()
    assert "[/x]" in out and "[/bold]" in out and "[/w]" in out and "[/z]" in out
    _assert_safe(out)
