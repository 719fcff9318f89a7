"""The LLM reads a message, with the recent turns, into slots (JSON schema, constrained
decoding): what is wanted, concrete kinds that fit, what to avoid, whether it is a new topic,
which earlier pick it points at, and whether sound is wanted. The model's words are never
trusted as categories or ids: :mod:`agent.resolve` resolves them against the catalogue."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

import prompts
from agent.conversation import Conversation
from tools.text import shorten

Phrase = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)]
RECENT = 3  # earlier requests shown to the model
KINDS = 4  # every output token costs ~0.15 s on 2 cores: the answer is kept short
PICKS = 5
TITLE_CHARS = 60
MESSAGE_CHARS = 300


class Reading(BaseModel):
    """What the model read in a message (the schema it writes under)."""

    wanted: Annotated[str, StringConstraints(strip_whitespace=True, max_length=80)]
    kinds: list[Phrase] = Field(default_factory=list, max_length=KINDS)
    avoid: list[Phrase] = Field(default_factory=list, max_length=6)
    new_topic: bool = True
    refers_to: int = Field(0, ge=0, le=PICKS)
    sound: Literal["yes", "no", "unsaid"] = "unsaid"


def _context(convo: Conversation) -> tuple[str, str]:
    earlier = (
        " | ".join(
            shorten(" ".join(t.message.split()), MESSAGE_CHARS) for t in convo.requests[-RECENT:]
        )
        or "(none)"
    )
    last = convo.requests[-1] if convo.requests else None
    picks = (  # catalogue titles are data: one line each, cut short
        " ".join(
            f"{n}. {shorten(' '.join(title.split()), TITLE_CHARS)}"
            for n, title in enumerate(last.titles[:PICKS], start=1)
        )
        if last and last.titles
        else "(none)"
    )
    return earlier, picks


def messages(convo: Conversation, message: str) -> list[tuple[str, str]]:
    """The chat the model answers: the rules, worked examples, then this message."""
    chat: list[tuple[str, str]] = [("system", prompts.render("read_system"))]
    for line in prompts.load_text("read_examples.jsonl").splitlines():
        if line.strip():
            example = json.loads(line)
            chat.append(
                (
                    "human",
                    prompts.render(
                        "read",
                        earlier=example["earlier"],
                        picks=example["picks"],
                        message=example["message"],
                    ),
                )
            )
            compact = json.dumps(example["reading"], separators=(",", ":"))  # fewer tokens
            chat.append(("ai", compact))
    earlier, picks = _context(convo)
    said = shorten(" ".join(message.split()), MESSAGE_CHARS)
    chat.append(("human", prompts.render("read", earlier=earlier, picks=picks, message=said)))
    return chat
