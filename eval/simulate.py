"""`recagent eval simulate`: simulated users with a hidden target (the InteRecAgent / iEvaLM
protocol).

An LLM plays a user who wants one item (a real user's next movie on ML-100K, or a sampled item
of the demo catalogue) and describes it without naming it; the agent answers each turn with 10
recommendations; the episode ends when the target is among them or after ``MAX_TURNS`` turns.
A simulator message that contains the target's title voids the episode (leak). Episodes run
concurrently (vLLM batches the requests) and are appended to ``episodes.jsonl`` as they finish,
so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

import prompts
from agent.conversation import Conversation
from agent.feedback import Feedback
from agent.profile import UserProfile
from agent.recommender import Recommender
from eval.cases import Case
from eval.llm_client import ChatClient, content
from indexing.movielens import normalise_title

MAX_TURNS = 5
K = 10
KS = (1, 5, 10)


@dataclass(frozen=True)
class SimConfig:
    dataset: str = "ml-100k"
    limit: int = 20
    seed: int = 2026
    concurrency: int = 4
    max_turns: int = MAX_TURNS
    feedback: bool = False  # the user also likes / dislikes items of each list shown


FEEDBACK_PER_TURN = 2  # likes and dislikes each, per list shown


def opinion(target: dict[str, Any], item: dict[str, Any]) -> str:
    """What a user who wants ``target`` says of a shown item: "like" when it shares the
    target's kind (a genre, or the subcategory), "dislike" when it shares nothing."""
    wanted, shown = target.get("attributes") or {}, item.get("attributes") or {}
    genres = set(wanted.get("genres") or []) & set(shown.get("genres") or [])
    sub = wanted.get("subcategory")
    same_kind = bool(sub) and sub == shown.get("subcategory")
    if genres or same_kind:
        return "like"
    if (
        target.get("category")
        and target.get("category") == item.get("category")
        and not (wanted.get("genres") or sub)
    ):
        return "like"
    return "dislike"


def give_feedback(
    recommender: Recommender, convo: Conversation, shown: Sequence[Any], target: dict[str, Any]
) -> list[tuple[str, str]]:
    """Up to ``FEEDBACK_PER_TURN`` likes and dislikes on the list just shown, in its order."""
    given: list[tuple[str, str]] = []
    counts = {"like": 0, "dislike": 0}
    for rec in shown:
        kind = opinion(target, rec.facts)
        if counts[kind] >= FEEDBACK_PER_TURN:
            continue
        counts[kind] += 1
        recommender.record_feedback(convo, Feedback(item_id=rec.item_id, kind=kind))  # type: ignore[arg-type]
        given.append((rec.item_id, kind))
    return given


def redact(text: str, title: str) -> str:
    """``text`` with the title (as written, and normalised) replaced by "[hidden]"."""
    out = text
    for form in {title, re.sub(r"^(.*), (The|A|An)$", r"\2 \1", title)}:
        if form.strip():
            out = re.sub(re.escape(form), "[hidden]", out, flags=re.IGNORECASE)
    return out


def describe_target(facts: dict[str, Any]) -> str:
    """What the simulated user knows of the target, as short lines, without its name."""
    title = str(facts.get("title", ""))
    lines = []
    if facts.get("category"):
        lines.append(f"category: {facts['category']}")
    for key, value in (facts.get("attributes") or {}).items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value[:4])
        if value not in (None, ""):
            lines.append(f"{key.replace('_', ' ')}: {value}")
    if facts.get("description"):
        lines.append(f"description: {str(facts['description'])[:400]}")
    return redact("\n".join(lines), title)


_PREAMBLE = re.compile(r"^\s*(sure|okay|ok|here)[^\n]*:\s*\n", re.IGNORECASE)


def clean_message(text: str) -> str:
    """The user's message without a chat model's wrapper ("Sure, here's a message:") and quotes."""
    text = _PREAMBLE.sub("", text.strip()).strip()
    if len(text) >= 2 and text[0] in '"“' and text.count(text[0]) + text.count("”") >= 1:
        text = text.strip('"“”').strip()
    return text


def leaks(message: str, title: str) -> bool:
    """Does the message name the target? Compared on normalised words, whole words only."""
    wanted = normalise_title(title)
    said = f" {normalise_title(message)} "
    return bool(wanted) and f" {wanted} " in said


def first_hits(turns: Sequence[Sequence[str]], target: str) -> dict[str, int | None]:
    """The first turn (1-based) whose top-K holds the target, per K; None if never."""
    out: dict[str, int | None] = {}
    for k in KS:
        out[f"@{k}"] = next((n for n, recs in enumerate(turns, 1) if target in recs[:k]), None)
    return out


def episode_rates(
    recs: Sequence[Sequence[str]], catalogue: set[str], seen: set[str]
) -> dict[str, int]:
    flat = [r for turn in recs for r in turn]
    counted: set[str] = set()
    duplicates = 0
    for r in flat:
        duplicates += r in counted
        counted.add(r)
    return {
        "recommended": len(flat),
        "not_in_catalogue": sum(r not in catalogue for r in flat),
        "duplicates": duplicates,
        "already_seen": sum(r in seen for r in flat),
    }


@dataclass
class Episode:
    case: Case
    messages: list[str] = field(default_factory=list)
    recommendations: list[list[str]] = field(default_factory=list)
    leaked: bool = False
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)
    feedback: list[list[tuple[str, str]]] = field(default_factory=list)


def play(
    case: Case,
    recommender: Recommender,
    simulator: ChatClient,
    kind: str,
    max_turns: int = MAX_TURNS,
    feedback: bool = False,
) -> Episode:
    start = time.perf_counter()
    episode = Episode(case)
    system = prompts.render("simulator", kind=kind, target=describe_target(case.facts))
    chat: list[dict[str, str]] = [{"role": "system", "content": system}]
    convo = Conversation(f"sim-{case.user}", UserProfile(user_id=f"sim-{case.user}"))
    convo.history_ids = list(case.history_ids)
    convo.history_titles = list(case.history)
    cue = prompts.render("simulator_first", kind=kind)
    for _turn in range(max_turns):
        chat.append({"role": "user", "content": cue})
        reply = simulator.one({"messages": chat, "max_tokens": 60, "temperature": 0.0})
        message = clean_message(content(reply)) or "Something I would like, please."
        chat.append({"role": "assistant", "content": message})
        episode.messages.append(message)
        if leaks(message, str(case.facts["title"])):
            episode.leaked = True
            break
        result = recommender.respond(convo, message, k=K, explain=False)
        episode.notices += result.notices
        ids = [r.item_id for r in result.recommendations]
        episode.recommendations.append(ids)
        if case.item_id in ids:
            break
        if feedback:
            episode.feedback.append(
                give_feedback(recommender, convo, result.recommendations, case.facts)
            )
        listed = "; ".join(r.title for r in result.recommendations) or "nothing"
        cue = prompts.render("simulator_next", listed=listed)
    episode.seconds = time.perf_counter() - start
    return episode


def record(episode: Episode, catalogue: set[str]) -> dict[str, Any]:
    case = episode.case
    return {
        "user": case.user,
        "target": case.item_id,
        "title": case.facts["title"],
        "leaked": episode.leaked,
        "turns": len(episode.messages),
        "messages": episode.messages,
        "recommendations": episode.recommendations,
        "first_hit": first_hits(episode.recommendations, case.item_id),
        **episode_rates(episode.recommendations, catalogue, set(case.history_ids)),
        "seconds": round(episode.seconds, 2),
        "notices": sorted(set(episode.notices)),
        "feedback": episode.feedback,
    }


def summarise(rows: list[dict[str, Any]], max_turns: int) -> dict[str, Any]:
    valid = [r for r in rows if not r["leaked"]]
    n = len(valid)
    out: dict[str, Any] = {
        "episodes": len(rows),
        "voided_by_leak": len(rows) - n,
        "leak_rate": (len(rows) - n) / len(rows) if rows else 0.0,
        "scored_episodes": n,
    }
    by_turn: dict[str, list[float]] = {}
    for k in KS:
        firsts = [r["first_hit"][f"@{k}"] for r in valid]
        by_turn[f"Hit@{k}"] = [
            sum(f is not None and f <= t for f in firsts) / n if n else 0.0
            for t in range(1, max_turns + 1)
        ]
    out["hit_by_turn"] = by_turn
    hits = [r["first_hit"]["@10"] for r in valid if r["first_hit"]["@10"] is not None]
    out["average_turns_to_hit@10"] = sum(hits) / len(hits) if hits else None
    recommended = sum(r["recommended"] for r in valid)
    for key in ("not_in_catalogue", "duplicates", "already_seen"):
        out[f"{key}_rate"] = sum(r[key] for r in valid) / recommended if recommended else 0.0
    out["recommended"] = recommended
    return out


def run(
    cases: Sequence[Case],
    recommender: Recommender,
    simulator: ChatClient,
    catalogue: set[str],
    out_dir: Path,
    config: SimConfig,
    kind: str = "movie",
    progress: bool = True,
    models: dict[str, str] | None = None,
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "episodes.jsonl"
    done: dict[str, dict[str, Any]] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[f"{row['user']}:{row['target']}"] = row
    todo = [c for c in cases if f"{c.user}:{c.item_id}" not in done]
    lock = threading.Lock()
    bar = tqdm(
        total=len(cases), initial=len(cases) - len(todo), desc="episodes", disable=not progress
    )
    start = time.perf_counter()

    def one(case: Case) -> None:
        episode = play(case, recommender, simulator, kind, config.max_turns, config.feedback)
        row = record(episode, catalogue)
        with lock, log.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
            done[f"{case.user}:{case.item_id}"] = row
            bar.update(1)

    with ThreadPoolExecutor(config.concurrency) as pool:
        for future in [pool.submit(one, c) for c in todo]:
            future.result()
    bar.close()
    rows = [done[f"{c.user}:{c.item_id}"] for c in cases]
    report = summarise(rows, config.max_turns)
    report.update(
        config=asdict(config),
        models=models or {},
        seconds=round(time.perf_counter() - start, 2),
        episodes_this_run=len(todo),
    )
    (out_dir / "results.json").write_text(json.dumps(report, indent=2))
    (out_dir / "results.md").write_text(markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    turns = len(next(iter(report["hit_by_turn"].values())))
    lines = [
        f"# Simulated users on {report['config']['dataset']} ({report['scored_episodes']} scored "
        f"episodes, {report['voided_by_leak']} voided by a leak)",
        "",
        "| by turn | " + " | ".join(str(t) for t in range(1, turns + 1)) + " |",
        "| --- |" + " --- |" * turns,
    ]
    for name, values in report["hit_by_turn"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    avg = report["average_turns_to_hit@10"]
    lines += [
        "",
        f"Average turns to a hit@10: {avg:.2f}" if avg is not None else "No hit@10.",
        f"Of {report['recommended']} recommendations: not in the catalogue "
        f"{report['not_in_catalogue_rate']:.1%}, duplicates {report['duplicates_rate']:.1%}, "
        f"already seen {report['already_seen_rate']:.1%}. Leak rate {report['leak_rate']:.1%}.",
    ]
    return "\n".join(lines) + "\n"


def demo_cases(ids_titles: Sequence[tuple[str, dict[str, Any]]], n: int, seed: int) -> list[Case]:
    """Demo-catalogue episodes: a seeded sample of items as targets, users without history."""
    import numpy as np

    rng = np.random.default_rng(seed)
    picked = rng.choice(len(ids_titles), size=min(n, len(ids_titles)), replace=False)
    return [
        Case(f"demo{n}", [], [], "", ids_titles[i][0], ids_titles[i][1])
        for n, i in enumerate(sorted(int(p) for p in picked))
    ]


def comparison(without: dict[str, Any], with_feedback: dict[str, Any]) -> str:
    """Markdown: the same episodes without and with the simulated user's feedback."""
    turns = len(next(iter(without["hit_by_turn"].values())))
    lines = [
        f"# Feedback on {without['config']['dataset']}: the same episodes without and with "
        "like/dislike on each list shown",
        "",
        "| run | metric | " + " | ".join(f"turn {t}" for t in range(1, turns + 1)) + " |",
        "| --- | --- |" + " --- |" * turns,
    ]
    for name, report in (("without feedback", without), ("with feedback", with_feedback)):
        for metric in ("Hit@5", "Hit@10"):
            values = report["hit_by_turn"][metric]
            lines.append(f"| {name} | {metric} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    lines.append("")
    for name, report in (("without feedback", without), ("with feedback", with_feedback)):
        avg = report["average_turns_to_hit@10"]
        shown = f"{avg:.2f}" if avg is not None else "no hit"
        lines.append(
            f"- {name}: {report['scored_episodes']} scored episodes, average turns to a "
            f"hit@10 {shown}"
        )
    return "\n".join(lines) + "\n"
