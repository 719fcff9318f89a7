"""``recagent eval judge-labels``: how often an LLM judge agrees with the hand labels.

The labelled conversation set (:mod:`eval.conversation_set`) says, per user turn, which items a
person would accept. An LLM judge that agreed with those labels could score answers the labels
do not cover (a new catalogue, a new request); one that does not must not be trusted as a metric.
Per turn two items are judged: one the labels count as relevant (a seeded random choice) and a
hard negative, the best plain-search hit of the message that they do not count. The judge sees
the shopper's earlier messages, the message and the item (as data) and answers ``{"fits": bool}``
under a JSON schema (``prompts/judge_relevance*.md``). Reported: agreement, Cohen's kappa, the
judge's precision and recall against the labels, and agreement per slice.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

import prompts
from agent.reasons import has_sound_effect
from eval.conversation_set import LabelledConversation, LabelledTurn
from indexing.records import StoredItem

SEARCH_DEPTH = 20  # plain-search hits looked through for a hard negative
MAX_TOKENS = 16  # {"fits":false} is a handful of tokens
FIELD_CHARS = 300  # an item's text is cut to this, so one long row cannot flood the prompt

Search = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True)
class Pair:
    """One (turn, item) question for the judge, with the labels' answer."""

    conversation: str
    turn: int  # 1-based
    slice: str
    earlier: tuple[str, ...]
    message: str
    item_id: str
    title: str
    category: str
    description: str
    has_sound: bool
    needs_sound: bool
    labelled: bool


class Fit(BaseModel):
    """The judge's answer."""

    model_config = ConfigDict(extra="forbid")

    fits: bool


def _pair(
    convo: LabelledConversation,
    index: int,
    item: StoredItem,
    sound_by_attribute: bool,
) -> Pair:
    turn = convo.turns[index]
    sound = has_sound_effect(item.facts, sound_by_attribute)
    return Pair(
        conversation=convo.id,
        turn=index + 1,
        slice=turn.slice,
        earlier=tuple(t.user for t in convo.turns[:index]),
        message=turn.user,
        item_id=item.id,
        title=item.title,
        category=item.category or "",
        description=str(item.facts.get("description", "") or ""),
        has_sound=sound,
        needs_sound=turn.needs_sound,
        labelled=turn.is_relevant(item.id, sound),
    )


def sample_pairs(
    conversations: Sequence[LabelledConversation],
    items: Sequence[StoredItem],
    search: Search,
    seed: int = 2026,
    sound_by_attribute: bool = True,
) -> list[Pair]:
    """Per user turn, a relevant item and a hard negative (see the module's docstring); a turn
    with no relevant item in the catalogue is skipped. The same seed gives the same pairs."""
    rng = random.Random(seed)
    by_id = {item.id: item for item in items}
    ordered = sorted(by_id)

    def relevant(turn: LabelledTurn, item: StoredItem) -> bool:
        return turn.is_relevant(item.id, has_sound_effect(item.facts, sound_by_attribute))

    pairs: list[Pair] = []
    for convo in conversations:
        for index, turn in enumerate(convo.turns):
            fitting = [i for i in ordered if relevant(turn, by_id[i])]
            if not fitting:
                continue
            positive = by_id[rng.choice(fitting)]
            hits = [i for i in search(turn.user, SEARCH_DEPTH) if i in by_id]
            negative_id = next((i for i in hits if not relevant(turn, by_id[i])), None)
            if negative_id is None:
                others = [i for i in ordered if not relevant(turn, by_id[i])]
                if not others:
                    continue
                negative_id = rng.choice(others)
            pairs.append(_pair(convo, index, positive, sound_by_attribute))
            pairs.append(_pair(convo, index, by_id[negative_id], sound_by_attribute))
    return pairs


def _short(text: str) -> str:
    return " ".join(text.split())[:FIELD_CHARS]


def request(pair: Pair) -> dict[str, Any]:
    """The chat request that asks the judge about ``pair``."""
    earlier = " | ".join(_short(m) for m in pair.earlier) or "(none)"
    user = prompts.render(
        "judge_relevance",
        earlier=earlier,
        message=_short(pair.message),
        title=_short(pair.title),
        category=_short(pair.category) or "(none)",
        description=_short(pair.description) or "(none)",
        sound="yes" if pair.has_sound else "no",
    )
    return {
        "messages": [
            {"role": "system", "content": prompts.render("judge_relevance_system")},
            {"role": "user", "content": user},
        ],
        "temperature": 0.0,
        "max_tokens": MAX_TOKENS,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Fit", "schema": Fit.model_json_schema()},
        },
    }


def verdict(response: dict[str, Any]) -> bool | None:
    """The judge's ``fits``, or None when its answer is not the schema's JSON."""
    try:
        text = response["choices"][0]["message"].get("content") or ""
        return Fit.model_validate_json(text, strict=True).fits
    except (KeyError, IndexError, TypeError, AttributeError, ValidationError):
        return None


def judge(pairs: Sequence[Pair], client: Any) -> list[bool | None]:
    """One verdict per pair, in order (the client sends the requests concurrently)."""
    responses = client.many([request(p) for p in pairs], desc="judging (turn, item) pairs")
    return [verdict(r) for r in responses]


def _share(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def _kappa(answered: Sequence[tuple[bool, bool]]) -> float:
    n = len(answered)
    if not n:
        return 0.0
    observed = sum(v == lab for v, lab in answered) / n
    judge_yes = sum(v for v, _ in answered) / n
    label_yes = sum(lab for _, lab in answered) / n
    expected = judge_yes * label_yes + (1 - judge_yes) * (1 - label_yes)
    return round((observed - expected) / (1 - expected), 3) if expected < 1 else 0.0


def agreement(pairs: Sequence[Pair], verdicts: Sequence[bool | None]) -> dict[str, Any]:
    """Agreement, Cohen's kappa, precision and recall of the verdicts against the labels."""
    if len(pairs) != len(verdicts):
        raise ValueError(f"{len(pairs)} pairs but {len(verdicts)} verdicts")
    answered = [(v, p) for p, v in zip(pairs, verdicts, strict=True) if v is not None]
    both = [(v, p.labelled) for v, p in answered]
    said_yes = [lab for v, lab in both if v]
    labelled_yes = [v for v, lab in both if lab]
    slices: dict[str, list[bool]] = {}
    for v, p in answered:
        slices.setdefault(p.slice, []).append(v == p.labelled)
    return {
        "pairs": len(pairs),
        "answered": len(answered),
        "agreement": _share(sum(v == lab for v, lab in both), len(both)),
        "kappa": _kappa(both),
        "judge_yes": _share(len(said_yes), len(both)),
        "labelled_yes": _share(len(labelled_yes), len(both)),
        "precision": _share(sum(said_yes), len(said_yes)),
        "recall": _share(sum(labelled_yes), len(labelled_yes)),
        "by_slice": {
            name: {"pairs": len(agreed), "agreement": _share(sum(agreed), len(agreed))}
            for name, agreed in sorted(slices.items())
        },
    }


def markdown(results: dict[str, Any]) -> str:
    """The results as a readable table."""
    lines = [
        f"# The LLM judge against the labels ({results.get('model', 'judge')})",
        "",
        "| pairs | answered | agreement | Cohen's kappa | judge says fits | labelled relevant "
        "| precision | recall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {results['pairs']} | {results['answered']} | {results['agreement']:.3f} "
        f"| {results['kappa']:.3f} | {results['judge_yes']:.3f} | {results['labelled_yes']:.3f} "
        f"| {results['precision']:.3f} | {results['recall']:.3f} |",
        "",
        "| slice | pairs | agreement |",
        "| --- | --- | --- |",
    ]
    for name, row in results["by_slice"].items():
        lines.append(f"| {name} | {row['pairs']} | {row['agreement']:.3f} |")
    return "\n".join(lines) + "\n"


def run(
    conversations: Sequence[LabelledConversation],
    items: Sequence[StoredItem],
    search: Search,
    client: Any,
    out: Path,
    seed: int = 2026,
    sound_by_attribute: bool = True,
    model: str = "",
) -> dict[str, Any]:
    """Sample, judge, and write ``out/pairs.jsonl``, ``results.json`` and ``results.md``."""
    pairs = sample_pairs(conversations, items, search, seed, sound_by_attribute)
    verdicts = judge(pairs, client)
    results = {**agreement(pairs, verdicts), "seed": seed}
    if isinstance(getattr(client, "calls", None), int):  # requests not served from the cache
        results["requests_sent"] = client.calls
    if model:
        results["model"] = model
    out.mkdir(parents=True, exist_ok=True)
    with (out / "pairs.jsonl").open("w") as handle:
        for pair, said in zip(pairs, verdicts, strict=True):
            handle.write(json.dumps({**asdict(pair), "verdict": said}) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    return results
