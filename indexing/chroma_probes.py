"""What ``recagent bench chroma`` measures around Chroma: a process's resident memory (sampled
while it works), a folder's size on disk, and a ``chroma run`` server started on a free
loopback port and stopped at the end."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tools.errors import StoreError
from tools.processes import free_port, stop


def rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` and its children (psutil when installed, else /proc for the
    process alone); None when it cannot be read."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        return _proc_rss(pid)
    try:
        process = psutil.Process(pid)
        children = process.children(recursive=True)
        return int(process.memory_info().rss) + sum(
            int(c.memory_info().rss) for c in children if c.is_running()
        )
    except psutil.Error:
        return None


def _proc_rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class RssSampler:
    """The highest RSS of a process seen between :meth:`start` and :meth:`stop`, sampled every
    ``every_s`` seconds."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.pid = pid
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid) or 0)
            self._stop.wait(self.every_s)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> int:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes(self.pid) or 0)
        return self.peak


def folder_bytes(folder: Path) -> dict[str, int]:
    """Bytes under ``folder``: in all, in the SQLite file(s) and in the segment folders."""
    total = sqlite = 0
    for path in folder.rglob("*"):
        if path.is_file():
            size = path.stat().st_size
            total += size
            if path.name.startswith("chroma.sqlite3"):
                sqlite += size
    return {"total": total, "sqlite": sqlite, "segments": total - sqlite}


def megabytes(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


# -- the server --------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    pid: int | None
    path: Path | None


def chroma_executable() -> str:
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if found is None:
        raise StoreError("the `chroma` command (from the chromadb package) is not installed")
    return found


@contextlib.contextmanager
def chroma_server(folder: Path, within_s: float = 120.0) -> Iterator[Server]:
    """``chroma run`` on 127.0.0.1 at a free port with its data in ``folder/data``; stopped
    when the block ends."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "server.log"
    command = [chroma_executable(), "run", "--path", str(folder / "data")]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + within_s
        while not _answers(f"{url}/api/v2/heartbeat"):
            if process.poll() is not None or time.monotonic() > deadline:
                why = (
                    f"exit status {process.returncode}"
                    if process.poll() is not None
                    else f"no answer within {within_s:.0f} s"
                )
                raise StoreError(
                    f"chroma run did not start ({why}): {log_path.read_text()[-2000:]}"
                )
            time.sleep(0.3)
        yield Server(url, process.pid, folder / "data")
    finally:
        stop(process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- one backend -------------------------------------------------------------------------
