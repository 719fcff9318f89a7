"""The local vLLM's state file is trusted only while its pid is still the server recagent
started: a stale file whose pid was reused by another program is cleared, and that program is
never signalled."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from agent import llm_server
from tools.config import Settings


@pytest.fixture
def bystander() -> subprocess.Popen[bytes]:
    """An unrelated process in a group of its own, as a reused pid would be."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def _stale(settings: Settings, pid: int, process_start: str) -> None:
    state = llm_server.ServerState(
        pid, "127.0.0.1", 1, "m", "recagent-llm", "/dev/null", time.time(), "k", process_start
    )
    path = llm_server.state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(state)))


@pytest.mark.parametrize("recorded_start", ["", "1"])
def test_a_reused_pid_is_never_signalled(
    tmp_path: Path, bystander: subprocess.Popen[bytes], recorded_start: str
) -> None:
    # "" : an old state file without a start time (the command line tells it is not vLLM);
    # "1": a start time that is not the bystander's
    settings = Settings(data_dir=tmp_path)
    _stale(settings, bystander.pid, recorded_start)
    assert llm_server.status(settings) == (None, "stopped")
    assert not llm_server.state_path(settings).exists()  # the stale record is cleared
    _stale(settings, bystander.pid, recorded_start)
    assert llm_server.stop(settings) is False
    time.sleep(0.2)
    assert bystander.poll() is None  # still running: nothing was sent to it
