"""`recagent eval judge`: an LLM judge of recommendation explanations, beside deterministic
grounding metrics.

For each case (a real user's taste and held-out next movie) two explainers write an explanation:
recagent's (the agent's explain prompt, JSON schema, grounding check) and a baseline (a plain
prompt with the title and the taste, as a hand-rolled demo would do). The judge, which may be a
different model, scores each 1-5 on faithfulness, relevance, informativeness and persuasiveness
(rubric in prompts/judge_rubric.md, JSON-schema output), and compares the two in both orders
(prompts/judge_pairwise.md) so position bias cancels: a side wins a case only when it wins in
both orders. Every request is cached by prompt hash, so a killed run resumes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

import prompts
from agent.explainer import checked, explain_prompt, explanation_schema
from agent.grounding import claims
from agent.wording import from_facts
from eval.cases import Case
from eval.llm_client import ChatClient, content

CRITERIA = ("faithfulness", "relevance", "informativeness", "persuasiveness")
EXPLAINERS = ("recagent", "baseline")
REQUEST = "Recommend me a movie I would like."
_YEAR = re.compile(r" \(\d{4}\)$")

Score = Literal[1, 2, 3, 4, 5]


class Scores(BaseModel):
    faithfulness: Score
    relevance: Score
    informativeness: Score
    persuasiveness: Score


class Verdict(BaseModel):
    better: Literal["A", "B", "tie"]


def _json_request(prompt: str, schema: type[BaseModel], max_tokens: int) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
        },
    }


def explain_requests(case: Case) -> dict[str, dict[str, Any]]:
    ours = explain_prompt([(case.item_id, case.facts)], case.taste, REQUEST)
    baseline = prompts.render(
        "explain_baseline", profile_summary=case.taste, title=case.facts["title"]
    )
    return {
        "recagent": _json_request(ours, explanation_schema([case.item_id]), 200),
        "baseline": {
            "messages": [{"role": "user", "content": baseline}],
            "max_tokens": 120,
            "temperature": 0.0,
        },
    }


def recagent_text(case: Case, response: dict[str, Any], titles: Sequence[str]) -> tuple[str, str]:
    """The checked explanation and its source (llm, llm-repaired or template); an answer that
    does not parse gets the template, as in the agent ("template (unparsed)")."""
    schema = explanation_schema([case.item_id])
    try:
        parsed = schema.model_validate_json(content(response))
        result = checked(parsed.explanations, {case.item_id: case.facts}, titles)  # type: ignore[attr-defined]
    except (ValidationError, ValueError):
        result = {}
    if case.item_id not in result:
        return from_facts(case.facts)[0], "template (unparsed)"
    return result[case.item_id].text, result[case.item_id].source


def rubric_request(case: Case, text: str) -> dict[str, Any]:
    prompt = prompts.render(
        "judge_rubric",
        profile_summary=case.taste,
        item_json=json.dumps(case.facts, ensure_ascii=False),
        explanation=text,
    )
    return _json_request(prompt, Scores, 80)


def pairwise_request(case: Case, first: str, second: str) -> dict[str, Any]:
    prompt = prompts.render(
        "judge_pairwise",
        profile_summary=case.taste,
        item_json=json.dumps(case.facts, ensure_ascii=False),
        first=first,
        second=second,
    )
    return _json_request(prompt, Verdict, 12)


def parse_scores(response: dict[str, Any]) -> dict[str, int] | None:
    try:
        return Scores.model_validate_json(content(response)).model_dump()
    except ValidationError:
        return None


def parse_verdict(response: dict[str, Any]) -> str | None:
    try:
        return Verdict.model_validate_json(content(response)).better
    except ValidationError:
        return None


def pairwise_outcome(ours_first: str | None, ours_second: str | None) -> str:
    """recagent's result from the two orders: in the first it is A, in the second B. A win
    needs both orders; disagreement (position bias) or a tie is a tie."""
    if ours_first == "A" and ours_second == "B":
        return "win"
    if ours_first == "B" and ours_second == "A":
        return "loss"
    return "tie"


def grounding_metrics(
    texts: Sequence[str], cases: Sequence[Case], titles: Sequence[str]
) -> dict[str, float]:
    """Share of sentences the item's fields support; share of explanations naming another
    catalogue item. Titles from the user's own recent history (shown in the taste) are allowed:
    "like Heat, which you watched" invents nothing."""
    total = supported = invented = 0
    for text, case in zip(texts, cases, strict=True):
        own = {_YEAR.sub("", label) for label in case.history}
        found = claims(text, case.facts, [t for t in titles if t not in own])
        total += len(found)
        supported += sum(c.problem is None for c in found)
        invented += any(c.problem and c.problem.startswith("names another item") for c in found)
    return {
        "supported_claim_share": supported / total if total else 0.0,
        "invented_item_rate": invented / len(cases) if cases else 0.0,
        "sentences": float(total),
    }


@dataclass(frozen=True)
class JudgeConfig:
    limit: int = 100
    seed: int = 2026
    concurrency: int = 8


def run(
    cases: Sequence[Case],
    explainer: ChatClient,
    judge: ChatClient,
    titles: Sequence[str],
    out_dir: Path,
    config: JudgeConfig,
    progress: bool = True,
    on_phase: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    clock: dict[str, float] = {}

    def phase(
        name: str, requests: list[dict[str, Any]], client: ChatClient
    ) -> list[dict[str, Any]]:
        start = time.perf_counter()
        got = client.many(requests, desc=name, progress=progress)
        clock[name] = round(time.perf_counter() - start, 2)
        if on_phase is not None:
            on_phase(name, clock[name])
        return got

    # Two phases, each one batch of independent requests, so the server always has work:
    # every explanation, then every judge request (rubric for both, pairwise in both orders).
    n = len(cases)
    explain = [explain_requests(c) for c in cases]
    written = phase(
        "explain (both explainers)",
        [e["recagent"] for e in explain] + [e["baseline"] for e in explain],
        explainer,
    )
    ours_raw, base_raw = written[:n], written[n:]
    ours = [recagent_text(c, r, titles) for c, r in zip(cases, ours_raw, strict=True)]
    texts = {
        "recagent": [t for t, _ in ours],
        "baseline": [content(r).strip() for r in base_raw],
    }
    pairs = list(zip(cases, texts["recagent"], texts["baseline"], strict=True))
    judged = phase(
        "judge (rubric and pairwise, both orders)",
        [rubric_request(c, t) for c, t, _ in pairs]
        + [rubric_request(c, t) for c, _, t in pairs]
        + [pairwise_request(c, a, b) for c, a, b in pairs]
        + [pairwise_request(c, b, a) for c, a, b in pairs],
        judge,
    )
    rubric = {"recagent": judged[:n], "baseline": judged[n : 2 * n]}
    first, second = judged[2 * n : 3 * n], judged[3 * n :]

    rows = []
    for row, case in enumerate(cases):
        verdicts = (parse_verdict(first[row]), parse_verdict(second[row]))
        rows.append(
            {
                "user": case.user,
                "item_id": case.item_id,
                "title": case.facts["title"],
                "taste": case.taste,
                "recagent": {
                    "text": texts["recagent"][row],
                    "source": ours[row][1],
                    "scores": parse_scores(rubric["recagent"][row]),
                },
                "baseline": {
                    "text": texts["baseline"][row],
                    "scores": parse_scores(rubric["baseline"][row]),
                },
                "pairwise": {
                    "recagent_first": verdicts[0],
                    "baseline_first": verdicts[1],
                    "outcome": pairwise_outcome(*verdicts),
                },
            }
        )
    report = summarise(rows, cases, titles)
    report.update(
        config=asdict(config),
        models={
            "explainer": explainer.target.model,
            "judge": judge.target.model,
            "judge_url": judge.target.base_url,
        },
        seconds=clock,
        requests={"sent": explainer.calls + (judge.calls if judge is not explainer else 0)},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out_dir / "results.json").write_text(json.dumps(report, indent=2))
    (out_dir / "results.md").write_text(markdown(report))
    return report


def summarise(
    rows: list[dict[str, Any]], cases: Sequence[Case], titles: Sequence[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {"cases": len(rows), "explainers": {}}
    for name in EXPLAINERS:
        scored = [r[name]["scores"] for r in rows if r[name]["scores"] is not None]
        means = {c: sum(s[c] for s in scored) / len(scored) if scored else 0.0 for c in CRITERIA}
        out["explainers"][name] = {
            "judge_means": means,
            "judge_unparsed": len(rows) - len(scored),
            **grounding_metrics([r[name]["text"] for r in rows], cases, titles),
        }
    sources = [r["recagent"]["source"] for r in rows]
    out["explainers"]["recagent"]["sources"] = {s: sources.count(s) for s in sorted(set(sources))}
    outcomes = [r["pairwise"]["outcome"] for r in rows]
    picks_a = [
        v
        for r in rows
        for v in (r["pairwise"]["recagent_first"], r["pairwise"]["baseline_first"])
        if v
    ]
    out["pairwise"] = {
        "win": outcomes.count("win") / len(rows) if rows else 0.0,
        "tie": outcomes.count("tie") / len(rows) if rows else 0.0,
        "loss": outcomes.count("loss") / len(rows) if rows else 0.0,
        "position_A_rate": picks_a.count("A") / len(picks_a) if picks_a else 0.0,
    }
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Explanations judged by {report['models']['judge']} ({report['cases']} ML-100K cases)",
        "",
        "| explainer | "
        + " | ".join(CRITERIA)
        + " | supported claims | invented items | unparsed |",
        "| --- |" + " --- |" * (len(CRITERIA) + 3),
    ]
    for name, e in report["explainers"].items():
        means = " | ".join(f"{e['judge_means'][c]:.2f}" for c in CRITERIA)
        lines.append(
            f"| {name} | {means} | {e['supported_claim_share']:.1%} | "
            f"{e['invented_item_rate']:.1%} | {e['judge_unparsed']} |"
        )
    p = report["pairwise"]
    lines += [
        "",
        f"Pairwise, both orders (a win needs both): recagent wins {p['win']:.1%}, ties "
        f"{p['tie']:.1%}, loses {p['loss']:.1%}; the judge picked position A in "
        f"{p['position_A_rate']:.1%} of its verdicts.",
        "",
        f"recagent explanation sources: {json.dumps(report['explainers']['recagent']['sources'])}.",
    ]
    return "\n".join(lines) + "\n"
