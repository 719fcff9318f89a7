"""Child processes the benchmarks and tests start: a free local port to bind them to, and a
stop that asks first (SIGTERM), then insists (SIGKILL)."""

from __future__ import annotations

import socket
import subprocess


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """Terminate ``process``; kill it if it is still there after ``grace_s``, and reap it."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
