"""`recagent bench eval`: judge and simulator throughput, sequential against concurrent, on the
same server in one run.

Each mode gets its own seeded sample (seed and seed + 1) so neither benefits from the other's
prefix cache, and an in-memory response cache only (nothing is reused between modes). Figures:
cases (judge) and episodes (simulator) per minute, and the concurrent / sequential ratio; the
bar is at least 3x.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.llm import Endpoint
from agent.recommender import Recommender
from eval import judge, simulate
from eval.cases import Case
from eval.llm_client import ChatClient

BAR = 3.0


def judge_throughput(
    target: Endpoint,
    cases: Mapping[str, Sequence[Case]],
    titles: Sequence[str],
    concurrency: int,
    scratch: Path,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, workers in (("sequential", 1), ("concurrent", concurrency)):
        client = ChatClient(target, None, workers)
        config = judge.JudgeConfig(limit=len(cases[mode]), concurrency=workers)
        start = time.perf_counter()
        judge.run(cases[mode], client, client, titles, scratch / f"judge-{mode}", config, False)
        seconds = time.perf_counter() - start
        out[mode] = {
            "cases": len(cases[mode]),
            "requests": client.calls,
            "seconds": round(seconds, 2),
            "cases_per_minute": round(60 * len(cases[mode]) / seconds, 3),
            "concurrency": workers,
        }
    out["speedup"] = round(
        out["concurrent"]["cases_per_minute"] / out["sequential"]["cases_per_minute"], 2
    )
    return out


def simulator_throughput(
    target: Endpoint,
    recommender: Recommender,
    cases: Mapping[str, Sequence[Case]],
    catalogue: set[str],
    concurrency: int,
    max_turns: int,
    kind: str,
    scratch: Path,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, workers in (("sequential", 1), ("concurrent", concurrency)):
        client = ChatClient(target, None, workers)
        config = simulate.SimConfig("bench", len(cases[mode]), 0, workers, max_turns)
        folder = scratch / f"simulate-{mode}"
        start = time.perf_counter()
        simulate.run(cases[mode], recommender, client, catalogue, folder, config, kind, False)
        seconds = time.perf_counter() - start
        turns = _turns(folder)
        out[mode] = {
            "episodes": len(cases[mode]),
            "turns": turns,
            "seconds": round(seconds, 2),
            "episodes_per_minute": round(60 * len(cases[mode]) / seconds, 3),
            "turns_per_minute": round(60 * turns / seconds, 3),
            "concurrency": workers,
        }
    out["speedup"] = round(
        out["concurrent"]["episodes_per_minute"] / out["sequential"]["episodes_per_minute"], 2
    )
    out["speedup_per_turn"] = round(
        out["concurrent"]["turns_per_minute"] / out["sequential"]["turns_per_minute"], 2
    )
    return out


def _turns(folder: Path) -> int:
    lines = (folder / "episodes.jsonl").read_text().splitlines()
    return sum(int(json.loads(line)["turns"]) for line in lines if line.strip())


def run_eval_bench(
    target: Endpoint,
    recommender: Recommender,
    judge_cases: Mapping[str, Sequence[Case]],
    sim_cases: Mapping[str, Sequence[Case]],
    titles: Sequence[str],
    catalogue: set[str],
    out: Path,
    concurrency: int,
    max_turns: int,
    kind: str,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        judged = judge_throughput(target, judge_cases, titles, concurrency, scratch)
        simulated = simulator_throughput(
            target, recommender, sim_cases, catalogue, concurrency, max_turns, kind, scratch
        )
    figures = {
        "model": target.model,
        "judge": judged,
        "simulator": simulated,
        "bars": {
            "judge_speedup": judged["speedup"],
            "simulator_speedup": simulated["speedup"],
            "bar": BAR,
            "judge_ok": judged["speedup"] >= BAR,
            "simulator_ok": simulated["speedup"] >= BAR,
        },
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    return figures
