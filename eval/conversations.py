"""`recagent eval conversations`: the labelled conversation set (eval/conversations), turn by
turn, for several systems in one run.

Each conversation is played from its first turn with a fresh session; each user turn asks for
5 items. Per turn: precision@5 (an item counts when its id matches a relevant prefix and, for a
turn that asks for a sound, it has a sound effect), forbidden items shown, a wrong carry-over
(an item relevant to an earlier turn of the conversation that this turn forbids: the old topic
stayed), the share of explanation sentences backed by the item's facts or the request's words,
tautologies, and the time to the ranked list and to the whole reply.

Systems: plain retrieval (MiniLM over the text collection, the message as the query, no
memory), the agent, the agent with each LLM step switched on in turn, and with each knowledge
field (an ablation). Results are resumable: finished
conversations are kept in ``turns.jsonl`` and skipped on a re-run.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agent.conversation import Conversation
from agent.grounding import supported
from agent.item_text import sentences, tautology
from agent.profile import UserProfile
from agent.reasons import has_sound_effect
from agent.recommender import Recommender
from eval.conversation_set import SLICES, LabelledConversation, LabelledTurn, matches
from eval.conversations_report import markdown
from eval.metrics import percentile
from eval.paraphrase import GAP_BAR, paraphrase_gap
from indexing.records import StoredItem
from tools.config import TurnSettings

K = 5
Answer = Callable[
    [Conversation, str],
    tuple[list[str], list[tuple[str, str, str]], dict[str, float], list[str]],
]
BARS = {"precision": 0.85, "slice_precision": 0.7, "supported": 0.95, "p50_seconds": 10.0}


@dataclass(frozen=True)
class System:
    """One way of answering: plain retrieval, or the agent with these turn settings."""

    name: str
    turn: TurnSettings | None  # None: plain retrieval
    needs_llm: bool = True
    by_default: bool = True  # False: slow, run only when named (``--system``)


LLM_STEPS = ("reading_llm", "profile_llm", "tools_llm", "expansion_llm", "explain_llm", "intro_llm")


def systems() -> list[System]:
    """Every system: plain retrieval, the agent reading by rule alone ("agent"), the agent with
    each LLM step switched on in turn (the ablation that chose the defaults: "agent + LLM
    reading" is the default turn), the agent without the stored knowledge (with the reading
    only when named), and with other knowledge fields searched (only when named)."""
    agent = TurnSettings(reading_llm=False)
    uses_llm = any(getattr(agent, f) for f in LLM_STEPS)
    steps = {
        "agent + LLM reading": ({"reading_llm": True}, True),
        "agent, LLM reading only (no rules)": ({"reading_llm": True, "rules": False}, True),
        "agent + LLM expansion": ({"expansion_llm": True}, True),
        "agent + LLM profile": ({"profile_llm": True}, True),
        "agent + LLM tool phase": ({"tools_llm": True}, True),
        "agent + LLM explanations and intro": ({"explain_llm": True, "intro_llm": True}, False),
    }
    out = [
        System("plain retrieval", None, needs_llm=False),
        System("agent", agent, needs_llm=uses_llm),
    ]
    out += [
        System(name, agent.model_copy(update=changes), by_default=default)
        for name, (changes, default) in steps.items()
    ]
    bare: dict[str, list[str]] = {"knowledge_fields": [], "exclusion_knowledge": []}
    out += [  # the knowledge's share: the default agent, with and without the reading
        System("agent without knowledge", agent.model_copy(update=bare), needs_llm=uses_llm),
        System(
            "agent + LLM reading, without knowledge",
            agent.model_copy(update={"reading_llm": True, **bare}),
            by_default=False,
        ),
    ]
    fields = {  # the fields searched, other than the default's (`recagent enrich` first)
        "agent + wordnet kind": ["kind"],
        "agent + wordnet gloss": ["gloss"],
        "agent + wordnet kind and gloss": ["kind", "gloss"],
    }
    out += [
        System(
            name,
            agent.model_copy(update={"knowledge_fields": chosen}),
            needs_llm=uses_llm,
            by_default=False,
        )
        for name, chosen in fields.items()
        if chosen != agent.knowledge_fields
    ]
    return out


def _relevant(turn: LabelledTurn, item: StoredItem | None, sound_by_attribute: bool) -> bool:
    if item is None:
        return False
    sound = has_sound_effect(item.facts, sound_by_attribute)
    return turn.is_relevant(item.id, sound)


def score_turn(
    turn: LabelledTurn,
    earlier: Sequence[LabelledTurn],
    ids: Sequence[str],
    items: dict[str, StoredItem],
    sound_by_attribute: bool,
) -> dict[str, Any]:
    """Precision@5, forbidden and carried-over items of one answered turn."""
    shown = list(ids)[:K]
    hits = sum(_relevant(turn, items.get(i), sound_by_attribute) for i in shown)
    forbidden = [i for i in shown if turn.is_forbidden(i)]
    carried = [i for i in forbidden if any(matches(i, before.relevant) for before in earlier)]
    return {
        "precision": hits / K,
        "forbidden": len(forbidden),
        "carried_over": bool(carried),
    }


def score_explanations(
    explanations: Sequence[tuple[str, str, str]], items: dict[str, StoredItem]
) -> dict[str, int]:
    """Sentences, the supported ones and the tautologies among (item id, explanation, the
    words of its computed reasons) triples."""
    total = backed = tautologies = 0
    for item_id, text, asked in explanations:
        facts = items[item_id].facts if item_id in items else {}
        for sentence in sentences(text):
            total += 1
            backed += supported(sentence, facts, asked) is None
            tautologies += tautology(sentence, facts)
    return {"sentences": total, "supported": backed, "tautologies": tautologies}


def play(
    conversation: LabelledConversation,
    system: System,
    answer: Answer,
    items: dict[str, StoredItem],
    sound_by_attribute: bool,
) -> list[dict[str, Any]]:
    """Every turn of one conversation for one system, scored."""
    convo = Conversation(f"eval-{conversation.id}", UserProfile(user_id=f"eval-{conversation.id}"))
    records = []
    for number, turn in enumerate(conversation.turns):
        ids, explanations, timings, constraints = answer(convo, turn.user)
        record = {
            "system": system.name,
            "conversation": conversation.id,
            "group": conversation.group,
            "turn": number + 1,
            "slice": turn.slice,
            "user": turn.user,
            "ids": ids,
            **score_turn(turn, conversation.turns[:number], ids, items, sound_by_attribute),
            **score_explanations(explanations, items),
            "seconds": round(timings.get("total", 0.0), 4),
            "ranked_seconds": round(timings.get("ranked", timings.get("total", 0.0)), 4),
            "first_ranked_seconds": round(
                timings.get("first_ranked", timings.get("ranked", timings.get("total", 0.0))), 4
            ),
            "constraints": constraints,  # what the turn understood, with sources (diagnosis)
        }
        records.append(record)
    return records


def answerer(system: System, recommender: Recommender | None, store: Any) -> Answer:
    """How ``system`` answers one message: (ids, (id, explanation, reasons) triples,
    timings, the constraints it understood)."""

    def plain(convo: Conversation, message: str) -> Any:
        start = time.perf_counter()
        hits = store.search_text(message, K)
        took = time.perf_counter() - start
        return [h.id for h in hits], [], {"total": took, "ranked": took}, []

    def agent(convo: Conversation, message: str) -> Any:
        assert recommender is not None
        result = recommender.respond(convo, message, K, on_first_look=lambda ranked: None)
        explanations = [
            (r.item_id, r.explanation, " ".join(r.reasons)) for r in result.recommendations
        ]
        constraints = [f"{a.kind}: {a.value} ({a.source})" for a in result.applied]
        ids = [r.item_id for r in result.recommendations]
        return ids, explanations, result.timings, constraints

    return plain if recommender is None else agent


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Overall and per-slice figures of one system on one half."""
    rows = list(records)
    if not rows:
        return {}

    def block(chosen: list[dict[str, Any]]) -> dict[str, Any]:
        sentences_ = sum(r["sentences"] for r in chosen)
        seconds = [r["seconds"] for r in chosen]
        return {
            "turns": len(chosen),
            "precision_at_5": round(statistics.fmean(r["precision"] for r in chosen), 4),
            "forbidden_items": sum(r["forbidden"] for r in chosen),
            "wrong_carry_overs": sum(r["carried_over"] for r in chosen),
            "supported_share": round(sum(r["supported"] for r in chosen) / sentences_, 4)
            if sentences_
            else None,
            "tautologies": sum(r["tautologies"] for r in chosen),
            "turn_p50_s": round(percentile(seconds, 50), 3),
            "turn_p95_s": round(percentile(seconds, 95), 3),
            "ranked_p50_s": round(percentile((r["ranked_seconds"] for r in chosen), 50), 3),
            "first_ranked_p50_s": round(
                percentile(
                    (r.get("first_ranked_seconds", r["ranked_seconds"]) for r in chosen), 50
                ),
                3,
            ),
        }

    out = {"overall": block(rows)}
    for name in SLICES:
        chosen = [r for r in rows if r["slice"] == name]
        if chosen:
            out[name] = block(chosen)
    return out


def bars(summary: dict[str, dict[str, Any]], plain: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The product's bars for the conversation set, checked on one half."""
    overall = summary["overall"]
    slices = {k: v for k, v in summary.items() if k != "overall"}
    failing = [k for k, v in slices.items() if v["precision_at_5"] < BARS["slice_precision"]]
    not_above = [
        k
        for k, v in slices.items()
        if k in plain and v["precision_at_5"] <= plain[k]["precision_at_5"]
    ]
    return {
        "precision_at_5": overall["precision_at_5"] >= BARS["precision"],
        "every_slice_at_least_0.7": not failing,
        "slices_below_0.7": failing,
        "above_plain_retrieval_on_every_slice": not not_above,
        "slices_not_above_plain": not_above,
        "no_forbidden_items": overall["forbidden_items"] == 0,
        "no_wrong_carry_overs": overall["wrong_carry_overs"] == 0,
        "supported_at_least_95%": (overall["supported_share"] or 0) >= BARS["supported"],
        "no_tautologies": overall["tautologies"] == 0,
        "turn_p50_at_most_10_s": overall["turn_p50_s"] <= BARS["p50_seconds"],
    }


class Journal:
    """Finished conversations, one JSON line per turn; thread-safe appends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a kill: that conversation reruns
                continue
        return out

    def add(self, records: list[dict[str, Any]]) -> None:
        with self.lock, self.path.open("a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))


def run(
    halves: dict[str, list[LabelledConversation]],
    chosen: list[System],
    make_recommender: Callable[[TurnSettings], Recommender],
    store: Any,
    out: Path,
    concurrency: int = 4,
    models: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Play every conversation of every half for every system; write results.json/.md."""
    journal = Journal(out / "turns.jsonl")
    done = journal.load()
    finished = {(r["half"], r["system"], r["conversation"]) for r in done}
    items = {item.id: item for item in store.all_items()}
    sound_by_attribute = any(
        "has_sound_effect" in (i.facts.get("attributes") or {}) for i in items.values()
    )
    work = [
        (half, system, conversation)
        for system in chosen
        for half, conversations in halves.items()
        for conversation in conversations
        if (half, system.name, conversation.id) not in finished
    ]
    recommenders = {
        s.name: make_recommender(s.turn) if s.turn is not None else None for s in chosen
    }
    counter = getattr(store, "searches", None)
    searches_before = (counter.value, counter.filtered) if counter is not None else None

    def one(job: tuple[str, System, LabelledConversation]) -> None:
        half, system, conversation = job
        answer = answerer(system, recommenders[system.name], store)
        records = play(conversation, system, answer, items, sound_by_attribute)
        journal.add([{**r, "half": half} for r in records])

    with (
        ThreadPoolExecutor(concurrency) as pool,
        tqdm(total=len(work), desc="conversations", unit="conv") as bar,
    ):
        for _ in pool.map(one, work):
            bar.update()
    records = journal.load()
    results: dict[str, Any] = {"k": K, "models": models or {}, "halves": {}}
    played = sum(len(c.turns) for _, _, c in work)
    if searches_before is not None and len(chosen) == 1 and not done and played:
        # vector searches per turn, for sizing Chroma (only where one system played every turn
        # of this run: the counter is the store's, shared by all systems)
        searches = store.searches.value - searches_before[0]
        filtered = store.searches.filtered - searches_before[1]
        results["chroma_searches_per_turn"] = {
            chosen[0].name: {
                "all": round(searches / played, 2),
                "filtered": round(filtered / played, 2),
            }
        }
    names = [s.name for s in systems()]
    present = sorted(
        {r["system"] for r in records}, key=lambda n: names.index(n) if n in names else len(names)
    )
    for half in halves:
        per_system = {
            name: summarise(r for r in records if r["half"] == half and r["system"] == name)
            for name in present
        }
        plain = per_system.get("plain retrieval", {})
        ordered = sorted(records, key=lambda r: (r["conversation"], r["turn"]))
        gaps = {
            name: paraphrase_gap(r for r in ordered if r["half"] == half and r["system"] == name)
            for name in present
        }
        checked = bars(per_system["agent"], plain) if per_system.get("agent") and plain else {}
        if checked and gaps.get("agent"):
            checked["paraphrase_within_0.05"] = gaps["agent"]["gap"] <= GAP_BAR
        results["halves"][half] = {"systems": per_system, "paraphrase": gaps, "bars": checked}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown(results))
    return results
