"""Shared fixtures: real shipped models (prepared once into the model cache), a slice of the real
demo catalogue, and helpers that make media files for the bad-input corpus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexing import tuxpaint
from tests.postgres_fixture import postgres_database, postgres_server
from tests.servers import answers_http, free_port, wait_ready
from tools import provisioning as model_registry
from tools.config import Settings, load_settings

__all__ = ["postgres_database", "postgres_server"]  # fixtures of tests.postgres_fixture

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """No LLM runs in the tests unless a test starts one: the default turn's LLM reading is off
    for them (child processes too), so a turn answers by rule alone without a notice and the
    CLI starts no server. The reading is tested with a scripted model (tests/test_reading.py)
    and a real server (tests/test_llm_integration.py), both with their own turn settings."""
    os.environ.setdefault("RECAGENT_TURN__READING_LLM", "false")


def model_cache() -> Path:
    """The model cache the tests share with the CLI (prepared models are reused across runs)."""
    return load_settings().cache_dir


@pytest.fixture(scope="session")
def prepared_models() -> Path:
    cache = model_cache()
    for shipped in model_registry.SHIPPED.values():
        if shipped.kind == "folder":
            model_registry.prepare(shipped, cache / "models")
    return cache


@pytest.fixture
def settings(tmp_path: Path, prepared_models: Path) -> Settings:
    return load_settings(
        cache_dir=prepared_models, data_dir=tmp_path / "data", store_dir=tmp_path / "store"
    )


@pytest.fixture(scope="session")
def demo_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full Tux Paint catalogue, installed (hard links) into a session folder."""
    if not tuxpaint.DEFAULT_STAMPS_DIR.is_dir():
        pytest.fail(f"the demo catalogue needs `apt-get install {tuxpaint.APT_PACKAGE}`")
    return tuxpaint.install(tmp_path_factory.mktemp("tuxpaint"))


def pick_slice(catalogue: Path, size: int = 24) -> list[dict[str, object]]:
    """A deterministic, varied slice: items with speech, sound effects, SVG and PNG pictures."""
    rows = [json.loads(line) for line in catalogue.read_text().splitlines()]
    speech = [r for r in rows if r.get("attributes", {}).get("has_spoken_description")][:5]
    effects = [
        r for r in rows if r.get("attributes", {}).get("has_sound_effect") and r not in speech
    ][:3]
    svg = [r for r in rows if str(r.get("image", "")).endswith(".svg")][:4]
    chosen = speech + effects + svg
    seen = {r["id"] for r in chosen}
    categories: dict[str, int] = {}
    for row in rows:
        category = str(row.get("category"))
        if row["id"] not in seen and categories.get(category, 0) < 2 and len(chosen) < size:
            chosen.append(row)
            seen.add(row["id"])
            categories[category] = categories.get(category, 0) + 1
    return chosen


@pytest.fixture(scope="session")
def demo_slice(demo_catalogue: Path) -> Path:
    """A 24-item slice of the demo catalogue, written beside it (media paths stay valid)."""
    path = demo_catalogue.parent / "slice.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in pick_slice(demo_catalogue)))
    return path


def copy_slice(demo_slice: Path, target: Path) -> Path:
    """A private, editable copy of the slice with its media (for tests that change items)."""
    shutil.copytree(demo_slice.parent / "media", target / "media", copy_function=os.link)
    shutil.copy(demo_slice, target / "items.jsonl")
    return target / "items.jsonl"


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` server on 127.0.0.1, started once per test session."""
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    chroma = Path(sys.executable).parent / "chroma"
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(chroma),
            "run",
            "--path",
            str(folder / "data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        why = wait_ready(answers_http(f"{url}/api/v2/heartbeat", timeout=1), process, 60)
        if why is not None:
            raise RuntimeError(
                f"chroma run did not start ({why}): {(folder / 'server.log').read_text()}"
            )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def recagent(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI as a user would."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "recagent"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
