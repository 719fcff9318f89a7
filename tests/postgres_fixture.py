"""A real PostgreSQL server for the tests (Debian's ``postgresql`` package, which
scripts/setup.sh installs), started once per test session in a temporary folder, on a free port of
127.0.0.1 only, with a generated password, and stopped at the end. PostgreSQL refuses to run as
root: as root the server runs as ``nobody``."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.servers import free_port, wait_ready

INSTALL_HINT = (
    "the PostgreSQL tests need the PostgreSQL server (Debian: `apt-get install postgresql`, "
    "which scripts/setup.sh does)"
)
UNPRIVILEGED = "nobody"


def postgres_bindir() -> Path:
    """The folder of initdb and postgres: ``pg_config --bindir``, else the newest Debian one."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        found = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False
        )
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(p) for p in debian), key=lambda p: _version(p.parent.name))[::-1]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    pytest.fail(f"initdb and postgres not found: {INSTALL_HINT}")


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def _as_server_user() -> dict[str, object]:
    """Popen arguments that drop root to an unprivileged user (none when not root)."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam(UNPRIVILEGED)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a superuser connection to the ``postgres`` database of a fresh server."""
    bindir = postgres_bindir()
    drop = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="recagent-postgres-"))
    password = secrets.token_urlsafe(24)
    (folder / "password").write_text(password)
    if drop:
        for path in (folder, folder / "password"):
            os.chown(path, drop["user"], drop["group"])  # type: ignore[arg-type]
    data = folder / "data"
    init = subprocess.run(
        [
            str(bindir / "initdb"),
            "--pgdata",
            str(data),
            "--username",
            "postgres",
            "--pwfile",
            str(folder / "password"),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        check=False,
        **drop,  # type: ignore[arg-type]
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"initdb failed: {init.stderr[-2000:]}")
    port = free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={port}",
            "-c",
            "unix_socket_directories=",  # TCP on 127.0.0.1 only
            "-c",
            "fsync=off",  # a throw-away server
            "-c",
            "max_connections=200",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        **drop,  # type: ignore[arg-type]
    )
    url = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    try:

        def ready() -> bool:
            try:
                with psycopg.connect(url, connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                return False

        why = wait_ready(ready, process, 60, every_s=0.2)
        if why is not None:
            pytest.fail(f"postgres did not start ({why}): {(folder / 'server.log').read_text()}")
        yield url
    finally:
        process.send_signal(signal.SIGINT)  # fast shutdown: clients are disconnected
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: str) -> str:
    """The URL of a new, empty database on the test server (one per test)."""
    name = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return postgres_server.rpartition("/")[0] + f"/{name}"
