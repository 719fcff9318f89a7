"""The LLM knowledge source: facts the catalogue does not state, written by the LLM under a
JSON schema and kept only where independent samples agree.

For each item the model reads its title, category path, description and (when the WordNet
source found its sense) the dictionary gloss, and fills a fixed schema of short phrases: what it
looks like, where it lives or is found, what it eats, what it does, what people use it for, and
the occasions it belongs to (:class:`ItemFacts`). vLLM decodes under the schema (structured
outputs) and draws ``samples`` answers per item in one request; a phrase is kept only when
another sample says the same thing (their text embeddings at least ``AGREE`` alike), so one
sample's invention does not become a stored fact. Requests are sent concurrently so the server
batches them, and every answer is cached by the full request (model, prompt, sampling) beside
the store, so a killed run resumes without asking again.

Facts are stored with source ``llm:<model>`` (one vector per field, :mod:`indexing.knowledge`);
the version names the prompt and schema, so changing either remakes them. The item's text is
data inside the prompt, never instructions, and the model's answer is untrusted: it is parsed by
the schema, cut to size, and an answer that does not parse costs that item its facts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field, StringConstraints, ValidationError

import prompts
from indexing.knowledge import Fact
from indexing.records import StoredItem
from tools.text import shorten

log = logging.getLogger(__name__)
PROMPT_VERSION = "facts-v1"
AGREE = 0.75  # two phrases this alike (cosine of their text embeddings) say the same thing
PHRASES = 3  # per field, in the schema and kept
TEXT_CHARS = 200  # of the title, description or gloss shown to the model
MAX_TOKENS = 160

Phrase = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)]
Embed = Callable[[Sequence[str]], np.ndarray]
Ask = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _phrases(label: str) -> Any:
    return Field(default_factory=list, max_length=PHRASES, title=label)


class ItemFacts(BaseModel):
    """What the model writes about one item. Each field's title is how its facts read in the
    stored text ("Camel lives in: desert, North Africa")."""

    looks: list[Phrase] = _phrases("looks")
    lives: list[Phrase] = _phrases("lives in")
    eats: list[Phrase] = _phrases("eats")
    does: list[Phrase] = _phrases("does")
    uses: list[Phrase] = _phrases("used for")
    occasions: list[Phrase] = _phrases("belongs to")


FIELDS = tuple(ItemFacts.model_fields)


def _label(field: str) -> str:
    return str(ItemFacts.model_fields[field].title or field)


def version() -> str:
    """Changes whenever the prompt, its examples or the schema change."""
    parts = [
        prompts.load("facts_system"),
        prompts.load("facts"),
        prompts.load_text("facts_examples.jsonl"),
        json.dumps(ItemFacts.model_json_schema(), sort_keys=True),
    ]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:10]
    return f"{PROMPT_VERSION}:{digest}"


def _user(title: str, category: str, description: str, gloss: str) -> str:
    return prompts.render(
        "facts",
        title=shorten(" ".join(title.split()), TEXT_CHARS),
        category=shorten(category, TEXT_CHARS),
        description=shorten(" ".join(description.split()), TEXT_CHARS) or "(none)",
        gloss=shorten(" ".join(gloss.split()), TEXT_CHARS) or "(none)",
    )


def category_path(item: StoredItem) -> str:
    return " / ".join(item.id.split("/")[:-1]).replace("_", " ") or (item.category or "")


def messages(item: StoredItem, gloss: str) -> list[dict[str, str]]:
    """The chat for one item: the rules, worked examples, then the item."""
    chat = [{"role": "system", "content": prompts.render("facts_system")}]
    for line in prompts.load_text("facts_examples.jsonl").splitlines():
        if line.strip():
            example = json.loads(line)
            said = _user(
                example["title"], example["category"], example["description"], example["gloss"]
            )
            chat.append({"role": "user", "content": said})
            chat.append(
                {
                    "role": "assistant",
                    "content": json.dumps(example["facts"], separators=(",", ":")),
                }
            )
    description = str(item.facts.get("description") or "")
    chat.append(
        {"role": "user", "content": _user(item.title, category_path(item), description, gloss)}
    )
    return chat


def request(item: StoredItem, gloss: str, samples: int, temperature: float) -> dict[str, Any]:
    """One chat completion request drawing ``samples`` answers under the schema."""
    return {
        "messages": messages(item, gloss),
        "max_tokens": MAX_TOKENS,
        "temperature": temperature,
        "n": samples,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "ItemFacts", "schema": ItemFacts.model_json_schema()},
        },
    }


def parse_samples(response: dict[str, Any]) -> list[ItemFacts]:
    """The answers of one response that parse under the schema (the rest are dropped)."""
    parsed = []
    for choice in response.get("choices") or []:
        text = str((choice.get("message") or {}).get("content") or "")
        try:
            parsed.append(ItemFacts.model_validate_json(text))
        except ValidationError as exc:
            log.info("an answer did not parse: %s", str(exc).splitlines()[0])
    return parsed


def _clean(phrase: str) -> str:
    return " ".join(phrase.split()).strip(" .,;:").lower()


def agreed(samples: Sequence[ItemFacts], embed: Embed, need: int = 2) -> dict[str, list[str]]:
    """Per field, the phrases said by at least ``need`` samples (the same words, or phrases
    whose embeddings are at least ``AGREE`` alike), in the order first said, at most
    ``PHRASES``."""
    said: list[tuple[str, int, str]] = []  # (field, sample, phrase)
    for n, sample in enumerate(samples):
        for field in FIELDS:
            for phrase in getattr(sample, field):
                if cleaned := _clean(phrase):
                    said.append((field, n, cleaned))
    if not said:
        return {}
    unique = list(dict.fromkeys(phrase for _, _, phrase in said))
    at = {phrase: row for row, phrase in enumerate(unique)}
    vectors = embed(unique)
    similar = vectors @ vectors.T
    kept: dict[str, list[str]] = {}
    for field, n, phrase in said:
        here = kept.setdefault(field, [])
        if len(here) >= PHRASES:
            continue
        row = at[phrase]
        if any(similar[row, at[k]] >= AGREE for k in here):
            continue  # already kept in other words
        backers = {n} | {
            m for f, m, other in said if f == field and similar[row, at[other]] >= AGREE
        }
        if len(backers) >= need:
            here.append(phrase)
    return {field: phrases for field, phrases in kept.items() if phrases}


def facts_of(item: StoredItem, fields: dict[str, list[str]], source: str) -> list[Fact]:
    title = " ".join(item.title.split())
    return [
        Fact(item.id, field, f"{title} {_label(field)}: {', '.join(phrases)}", source)
        for field, phrases in fields.items()
    ]


class LLMFactSource:
    """The ``llm:<model>`` source for :mod:`indexing.enrich`.

    ``ask`` sends chat completion requests (concurrently, cached) and returns their responses;
    ``gloss`` gives the WordNet gloss of the items that have one; ``embed`` is the text embedder
    the agreement is measured with."""

    def __init__(
        self,
        model: str,
        ask: Ask,
        embed: Embed,
        gloss: Callable[[Sequence[str]], dict[str, str]],
        samples: int = 2,
        temperature: float = 0.7,
    ) -> None:
        if samples < 2:
            raise ValueError("LLM facts need at least 2 samples to agree")
        self.name = f"llm:{model}"
        self.version = f"{version()}:n{samples}:t{temperature:g}"
        self.ask = ask
        self.embed = embed
        self.gloss = gloss
        self.samples = samples
        self.temperature = temperature

    def facts(self, items: Sequence[StoredItem]) -> list[Fact]:
        glosses = self.gloss([i.id for i in items])
        requests = [
            request(i, glosses.get(i.id, ""), self.samples, self.temperature) for i in items
        ]
        found: list[Fact] = []
        for item, response in zip(items, self.ask(requests), strict=True):
            samples = parse_samples(response)
            if len(samples) >= 2:
                found += facts_of(item, agreed(samples, self.embed), self.name)
        return found
