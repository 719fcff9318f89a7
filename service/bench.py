"""``recagent bench serve``: concurrent simulated sessions against the running service.

Each session plays a few turns through the streaming endpoint, one after another, as a user
would; sessions run at once (1, 8 and 32 by default). Per level: turns per second, turn latency
p50/p95 (request sent → ``done``), time to the first streamed event, errors, and sessions that
lost a turn (the stored session lacks a turn the client saw answered). The service's own
overhead is the share of a turn's latency spent outside the core turn (``done.timings.total``),
taken from the one-session level (at higher levels the difference is mostly queueing).
The same run is made on the retrieval-only turn (no LLM) and on the full turn (the LLM's
expansion, intro and explanations on), both on 127.0.0.1 only, each level bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from eval.metrics import percentile
from tools.config import Settings
from tools.errors import ServerError
from tools.processes import free_port, stop

MESSAGES = (
    "an animal that makes a noise",
    "now something sweet to eat",
    "a vehicle that flies",
    "a musical instrument with strings",
    "something for Christmas",
    "a bird, but not a parrot",
)


@dataclass
class Level:
    sessions: int
    latencies: list[float] = field(default_factory=list)
    first_events: list[float] = field(default_factory=list)
    ranked: list[float] = field(default_factory=list)
    overheads: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answered: dict[str, int] = field(default_factory=dict)
    lost_sessions: int = 0
    seconds: float = 0.0

    def figures(self) -> dict[str, Any]:
        turns = len(self.latencies)
        return {
            "sessions": self.sessions,
            "turns": turns,
            "seconds": round(self.seconds, 3),
            "turns_per_s": round(turns / self.seconds, 3) if self.seconds else 0.0,
            "turn_p50_s": _p(self.latencies, 50),
            "turn_p95_s": _p(self.latencies, 95),
            "first_event_p50_s": _p(self.first_events, 50),
            "first_event_p95_s": _p(self.first_events, 95),
            "ranked_p50_s": _p(self.ranked, 50),
            "ranked_p95_s": _p(self.ranked, 95),
            "service_overhead_share": round(sum(self.overheads) / len(self.overheads), 4)
            if self.overheads
            else None,
            "errors": len(self.errors),
            "error_examples": sorted(set(self.errors))[:5],
            "lost_sessions": self.lost_sessions,
        }


def _p(values: Sequence[float], q: float) -> float | None:
    return round(percentile(list(values), q), 4) if values else None


async def _turn(
    client: httpx.AsyncClient, user: str, message: str, level: Level, deadline: float
) -> bool:
    started = time.perf_counter()
    first: float | None = None
    ranked: float | None = None
    done: dict[str, Any] | None = None
    try:
        async with client.stream(
            "POST",
            f"/v1/sessions/{user}/messages",
            json={"message": message, "k": 4},
            timeout=max(1.0, deadline - time.perf_counter()),
        ) as response:
            if response.status_code != 200:
                level.errors.append(f"HTTP {response.status_code}")
                return False
            event = None
            async for line in response.aiter_lines():
                if first is None and line.startswith("event:"):
                    first = time.perf_counter() - started
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                    if event == "ranked" and ranked is None:
                        ranked = time.perf_counter() - started
                elif line.startswith("data:") and event in {"done", "error"}:
                    data = json.loads(line.split(":", 1)[1])
                    if event == "error":
                        level.errors.append(str(data.get("error"))[:120])
                        return False
                    done = data
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        level.errors.append(type(exc).__name__)
        return False
    if done is None:
        level.errors.append("the stream ended without a done event")
        return False
    latency = time.perf_counter() - started
    level.latencies.append(latency)
    level.first_events.append(first or latency)
    level.ranked.append(ranked or latency)
    core = float(done.get("timings", {}).get("total", 0.0))
    level.overheads.append(max(0.0, latency - core) / latency if latency else 0.0)
    return True


async def _session(
    client: httpx.AsyncClient, user: str, turns: int, level: Level, deadline: float
) -> None:
    answered = 0
    for n in range(turns):
        if time.perf_counter() > deadline:
            break
        if await _turn(client, user, MESSAGES[n % len(MESSAGES)], level, deadline):
            answered += 1
    level.answered[user] = answered


async def _level(
    base_url: str, sessions: int, turns: int, max_seconds: float, headers: dict[str, str]
) -> Level:
    level = Level(sessions)
    run = uuid.uuid4().hex[:8]
    users = [f"bench-{run}-{sessions}-{i}" for i in range(sessions)]
    limits = httpx.Limits(max_connections=sessions + 4)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits) as client:
        started = time.perf_counter()
        deadline = started + max_seconds
        await asyncio.gather(*(_session(client, u, turns, level, deadline) for u in users))
        level.seconds = time.perf_counter() - started
        for user in users:  # every answered turn must be in the stored session
            stored = (await client.get(f"/v1/sessions/{user}")).json()
            if len(stored.get("messages", [])) != 2 * level.answered.get(user, 0):
                level.lost_sessions += 1
            await client.delete(f"/v1/sessions/{user}")
    return level


def run_levels(
    base_url: str,
    levels: Sequence[int],
    turns: int,
    max_seconds: float,
    token: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The figures of each concurrency level against the service at ``base_url``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    out: dict[str, Any] = {}
    for sessions in levels:
        level = asyncio.run(_level(base_url, sessions, turns, max_seconds, headers))
        out[str(sessions)] = level.figures()
        if log is not None:
            f = out[str(sessions)]
            log(
                f"{sessions} sessions: {f['turns']} turns, {f['turns_per_s']} turns/s, "
                f"p50 {f['turn_p50_s']} s, first event p95 {f['first_event_p95_s']} s, "
                f"errors {f['errors']}, lost sessions {f['lost_sessions']}"
            )
    return out


@contextmanager
def served(
    settings: Settings, turn: dict[str, str], config: Path | None, log: Path
) -> Iterator[str]:
    """`recagent serve` in a process of its own on 127.0.0.1, with ``turn`` settings on top of
    the configuration; yields its URL and stops it afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "RECAGENT_DATA_DIR": str(settings.data_dir),
        "RECAGENT_CACHE_DIR": str(settings.cache_dir),
        "RECAGENT_STORE_DIR": str(settings.resolved_store_dir),
        **{f"RECAGENT_TURN__{k.upper()}": v for k, v in turn.items()},
    }
    if settings.chroma_url:
        env["RECAGENT_CHROMA_URL"] = settings.chroma_url
    if config is not None:
        env["RECAGENT_CONFIG"] = str(config)
    command = [sys.executable, "-m", "cli.app", "serve", "--host", "127.0.0.1"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*command, "--port", str(port)], stdout=sink, stderr=subprocess.STDOUT, env=env
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.time() > deadline:
                raise ServerError(f"recagent serve did not start; see {log}")
            time.sleep(0.5)
        yield url
    finally:
        stop(process)


def bars(retrieval: dict[str, Any], full: dict[str, Any] | None) -> dict[str, Any]:
    """The service's bars from the two runs (the full turn's where it ran)."""
    main = full or retrieval
    top = main.get("32") or main[max(main, key=int)]
    one, eight = main.get("1"), main.get("8")
    speedup = (
        round(eight["turns_per_s"] / one["turns_per_s"], 2)
        if one and eight and one["turns_per_s"]
        else None
    )

    def overhead(run: dict[str, Any]) -> float | None:  # one session: no queue
        return run[min(run, key=int)]["service_overhead_share"] if run else None

    return {
        "no_errors_at_most_sessions": all(
            lv["errors"] == 0 and lv["lost_sessions"] == 0 for lv in (top,)
        ),
        "throughput_8_over_1": speedup,
        "throughput_ok (>= 3x)": speedup is not None and speedup >= 3,
        "first_event_p95_s": top["first_event_p95_s"],
        "first_event_ok (<= 2 s)": top["first_event_p95_s"] is not None
        and top["first_event_p95_s"] <= 2.0,
        "ranked_p95_s": top["ranked_p95_s"],
        "service_overhead_share": overhead(main),
        "service_overhead_share_retrieval_only": overhead(retrieval),
        "overhead_ok (<= 0.05)": (overhead(main) or 1.0) <= 0.05,
        "measured_on": "the full turn (LLM)" if full else "the retrieval-only turn (no LLM ran)",
    }
