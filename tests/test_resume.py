"""A run killed with SIGKILL mid-way resumes: no duplicates, nothing lost, same final store."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from indexing.store import open_client
from tests.conftest import pick_slice, recagent


def _snapshot(store_dir: Path) -> dict[str, tuple[str, str]]:
    client = open_client(store_dir, None)
    text = client.get_collection("catalog_text", embedding_function=None)
    got = text.get(include=["metadatas", "documents"])
    return {
        i: (str(m["text_hash"]), str(d))
        for i, m, d in zip(got["ids"], got["metadatas"], got["documents"], strict=True)
    }


def test_sigkill_mid_run_then_resume(
    demo_catalogue: Path, tmp_path: Path, prepared_models: Path
) -> None:
    rows = pick_slice(demo_catalogue, size=40)
    catalogue = demo_catalogue.parent / "resume-slice.jsonl"
    catalogue.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {
        **os.environ,
        "RECAGENT_CACHE_DIR": str(prepared_models),
        "RECAGENT_DATA_DIR": str(tmp_path / "data"),
    }
    killed_store = tmp_path / "killed"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "recagent"),
            "index",
            str(catalogue),
            "--store",
            str(killed_store),
            "--batch-size",
            "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    written = 0
    for line in process.stdout:
        if line.startswith("progress:"):
            written = int(line.split()[1].split("/")[0])
            if written >= 8:
                process.send_signal(signal.SIGKILL)
                break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert 8 <= written < len(rows)

    report = tmp_path / "report.json"
    resumed = recagent(
        "index", str(catalogue), "--store", str(killed_store), "--report", str(report), env=env
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    figures = json.loads(report.read_text())
    assert figures["unchanged"] >= written  # finished chunks were not redone
    assert figures["indexed"] + figures["unchanged"] == len(rows)

    reference = tmp_path / "reference"
    clean = recagent("index", str(catalogue), "--store", str(reference), env=env)
    assert clean.returncode == 0
    resumed_state, reference_state = _snapshot(killed_store), _snapshot(reference)
    assert len(resumed_state) == len(rows)
    assert resumed_state == reference_state
