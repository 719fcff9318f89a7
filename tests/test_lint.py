"""ruff (lint and format) and mypy (strict) are part of the test suite."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_packages_has_no_side_effects() -> None:
    """Importing must not load models, read config or touch the disk (in a fresh process)."""
    code = (
        "import sys, cli.app, indexing.pipeline, indexing.store, "
        "indexing.bench, tools.factory, tools.transcribe, tools.caption;"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'faster_whisper',"
        " 'whisper') if m in sys.modules]; print(heavy)"
    )
    result = _run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_lock_pins_every_direct_dependency() -> None:
    """pyproject's dependencies appear in requirements/lock.txt at the same version (a clean
    install uses the lock, so a dependency missing there would be missing in CI)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    lock = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for requirement in wanted:
        name, version = requirement.split("==")
        key = name.split("[")[0].lower().replace("_", "-")  # psycopg[binary]: psycopg
        assert key in lock, f"{name} is not in requirements/lock.txt"
        assert lock[key].split("+")[0] == version, f"{name}: lock has {lock[key]}, not {version}"
