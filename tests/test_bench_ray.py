"""`recagent bench ray --address … --no-local` on a real Ray cluster of two nodes on this machine
(`ray start --head` plus one `ray start --address` worker, as the README's recipe), with the real
shipped models: the way the 100,000-item figures are measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.config import Settings
from tools.processes import free_port, stop

pytestmark = pytest.mark.ray

RAY = str(Path(sys.executable).with_name("ray"))


def _nodes(address: str) -> int:
    probe = (
        "import ray, sys; from indexing.ray_engine import connect; connect(sys.argv[1]); "
        "print(sum(1 for n in ray.nodes() if n['Alive'])); ray.shutdown()"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, address], capture_output=True, text=True, timeout=120
    )
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0


@pytest.fixture
def ray_cluster() -> Iterator[str]:
    """A head node and one worker node, one CPU each; stopped (with their processes) after."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]
    head = subprocess.Popen(
        [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        # each probe imports Ray (seconds on a busy 2-core machine): each node has its own time
        deadline = time.monotonic() + 180
        while _nodes(address) < 1:
            assert time.monotonic() < deadline, "the Ray head did not start"
            time.sleep(2)
        # `ray start --head` turned token authentication on; a joining node must be told
        # (it reads the token from ~/.ray/auth_token, written by the head on this machine)
        worker = subprocess.Popen(
            [RAY, "start", f"--address={address}", *common],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "RAY_AUTH_MODE": "token"},
        )
        deadline = time.monotonic() + 180
        while _nodes(address) < 2:
            assert time.monotonic() < deadline, "the Ray worker did not join"
            time.sleep(2)
        yield address
    finally:
        if worker is not None:
            stop(worker)
        stop(head)


def test_bench_ray_on_a_two_node_cluster_without_the_local_indexer(
    ray_cluster: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from indexing.bench_ray import run_ray_bench

    # `ray start` turned token authentication on: the client finds the token by itself (and
    # the variable it sets is undone after the test)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    out = tmp_path / "ray.json"
    figures = run_ray_bench(
        settings, 40, 0.1, 0.1, [1, 2], out, seed=3, address=ray_cluster, local=False
    )
    assert json.loads(out.read_text()) == figures
    assert figures["machine"]["ray_cluster"] == {
        "address": ray_cluster,
        "nodes": 2,
        "cpus": 1.0 + 1.0,
    }
    assert "local" not in figures and "local_items_per_s" not in figures["bars"]
    for run in figures["ray"].values():
        assert run["indexed"] == 40 and run["failed"] == 0
        assert run["same_ids_as_catalogue"] is True
    assert figures["bars"]["stores_match"] is True
    assert figures["bars"]["rerun_model_calls"] == 0
    assert figures["raw"]["sample_items"] == 40


def test_the_token_is_sent_only_to_a_cluster_on_this_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from indexing.ray_engine import _on_this_machine, token_auth_if_available

    assert _on_this_machine("127.0.0.1:6379") and _on_this_machine("localhost:6379")
    assert not _on_this_machine("203.0.113.7:6379")  # a documentation address, not ours
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    token_auth_if_available("203.0.113.7:6379")
    assert "RAY_AUTH_MODE" not in os.environ  # nothing switched on for another machine


def test_bench_ray_compares_each_ray_store_with_the_local_one(
    settings: Settings, tmp_path: Path
) -> None:
    """With the local indexer on, each Ray store is checked record by record against it: the
    same ids in both collections and embeddings within 1e-5 (a local Ray instance)."""
    from indexing.bench_ray import run_ray_bench

    figures = run_ray_bench(settings, 30, 0.2, 0.1, [1], tmp_path / "ray.json", seed=5)
    compared = figures["ray"]["1"]["vs_local"]
    assert compared["text"]["records"] == 30 and compared["image"]["records"] > 0
    assert all(c["same_ids"] and c["max_abs_diff"] <= 1e-5 for c in compared.values())
    assert figures["bars"]["embeddings_match_local (max abs diff <= 1e-5)"] is True
    assert figures["bars"]["stores_match"] is True and figures["ray"]["1"]["same_ids_as_local"]
