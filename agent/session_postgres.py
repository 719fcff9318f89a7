"""The session rows in PostgreSQL (``sessions.url``), for several service processes.

The same rows and the same guarantees as the SQLite file (:mod:`agent.session_sqlite`):

* **A transaction per operation**; a save (and a reset) first takes a transaction-scoped
  advisory lock on the user's key, so writers of one user, in any process, run one after the
  other and each merges into what the one before it committed: no update is lost. A process
  killed inside its transaction loses only that transaction (the server rolls it back and
  releases the lock).
* **Two tables**, ``sessions`` and ``profiles`` (``user_id``, ``data`` as JSON text,
  ``updated``), created on first use when missing.
* **Connections are reused**: at most :data:`MAX_CONNECTIONS` per store, each used by one
  thread at a time; a reused connection is checked first, and a forked child opens its own.
* **Errors are** :class:`~tools.errors.StoreError` and name the host, port and database, never
  the password.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg import conninfo
from psycopg.pq import TransactionStatus

from tools.errors import StoreError

MAX_CONNECTIONS = 10  # per store (per process): more threads wait for one
WAIT_S = 30.0  # for a free connection, and for the lock on a user's rows
CONNECT_TIMEOUT_S = 10  # unless the URL says otherwise (connect_timeout=...)
TABLES = ("sessions", "profiles")
_SCHEMA_LOCK = 0x7265636167656E74  # "recagent": serialises creating the tables

Rows = tuple[str | None, str | None]
Connection = psycopg.Connection[tuple[Any, ...]]


def lock_id(key: str) -> int:
    """The advisory lock of one user's rows: a stable signed 64-bit number from the key."""
    digest = hashlib.blake2b(f"recagent.sessions:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresSessions:
    """Sessions and profiles in the PostgreSQL database that ``url`` names."""

    def __init__(self, url: str, max_connections: int = MAX_CONNECTIONS) -> None:
        self._secrets = _secrets(url)
        try:
            params = conninfo.conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise StoreError(
                f"sessions.url is not a valid PostgreSQL URL: {self._scrub(exc)}"
            ) from None
        if params.get("password"):
            self._secrets.append(str(params["password"]))
        self._conninfo = conninfo.make_conninfo(
            "", **{"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "recagent", **params}
        )
        host = params.get("host") or params.get("hostaddr") or "localhost"
        port = params.get("port") or "5432"
        database = params.get("dbname") or params.get("user") or "(default)"
        self.where = f"PostgreSQL database {database!r} at {host}:{port}"
        self._max = max_connections
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, max_connections))
        self._idle: list[Connection] = []
        self._schema_ready = False

    def __str__(self) -> str:
        return f"the session database ({self.where})"

    # -- the interface (agent.session.SessionBackend) ---------------------------------------
    def read(self, key: str) -> Rows:
        with self._transaction() as db:
            return _rows(db, key)

    def update(self, key: str, change: Callable[[Rows], tuple[str, str]]) -> None:
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id(key),))
            session, profile = change(_rows(db, key))
            for table, text in zip(TABLES, (session, profile), strict=True):
                db.execute(
                    f"INSERT INTO {table} (user_id, data, updated) "
                    "VALUES (%s, %s, extract(epoch FROM clock_timestamp())) "
                    "ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, "
                    "updated = excluded.updated",
                    (key, text),
                )

    def delete(self, key: str) -> None:
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id(key),))
            for table in TABLES:
                db.execute(f"DELETE FROM {table} WHERE user_id = %s", (key,))

    def keys(self) -> list[str]:
        with self._transaction() as db:
            rows = db.execute(
                'SELECT user_id COLLATE "C" AS key FROM sessions '  # byte order, as SQLite's
                'UNION SELECT user_id COLLATE "C" FROM profiles ORDER BY key'
            ).fetchall()
        return [str(r[0]) for r in rows]

    def check(self) -> None:
        with self._transaction() as db:
            for table in TABLES:
                db.execute(f"SELECT user_id FROM {table} LIMIT 1").fetchall()

    # -- connections ------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        conn = self._take()
        try:
            if not self._schema_ready:
                self._create_tables(conn)
            with conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"{self} failed: {self._scrub(exc)}") from None
        finally:
            self._give(conn)

    def _take(self) -> Connection:
        if self._pid != os.getpid():  # a forked child: the parent's connections stay its own
            self._fresh()
        if not self._slots.acquire(timeout=WAIT_S):
            raise StoreError(f"{self}: all {self._max} connections stayed busy for {WAIT_S:.0f} s")
        try:
            while True:
                with self._lock:
                    conn = self._idle.pop() if self._idle else None
                if conn is None:
                    return self._connect()
                try:  # the server may have closed it since (a restart, an idle timeout)
                    conn.execute("SELECT 1")
                    return conn
                except psycopg.Error:
                    conn.close()
        except BaseException:
            self._slots.release()
            raise

    def _give(self, conn: Connection) -> None:
        if self._pid != os.getpid():
            return  # taken before a fork: the parent gives it back
        reusable = not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE
        with self._lock:
            kept = reusable and len(self._idle) < self._max
            if kept:
                self._idle.append(conn)
        if not kept:
            conn.close()
        self._slots.release()

    def _fresh(self) -> None:
        """In a forked child: none of the parent's connections."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, self._max))
        self._idle = []

    def _connect(self) -> Connection:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True)  # explicit transactions
        except psycopg.Error as exc:
            raise StoreError(f"{self} cannot be reached: {self._scrub(exc)}") from None
        try:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{WAIT_S:.0f}s",))
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(f"{self} failed: {self._scrub(exc)}") from None
        return conn

    def _create_tables(self, conn: Connection) -> None:
        with conn.transaction():
            missing = [
                table
                for table in TABLES
                if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,)
            ]
            if missing:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for table in missing:
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {table} (user_id TEXT PRIMARY KEY, "
                        "data TEXT NOT NULL, updated DOUBLE PRECISION)"
                    )
        self._schema_ready = True

    def _scrub(self, exc: BaseException) -> str:
        """The driver's message on one line, without the password should it quote it."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text[:400]


def _rows(db: Connection, key: str) -> Rows:
    """Both rows, from one statement (one snapshot)."""
    row = db.execute(
        "SELECT (SELECT data FROM sessions WHERE user_id = %(key)s), "
        "(SELECT data FROM profiles WHERE user_id = %(key)s)",
        {"key": key},
    ).fetchone()
    if row is None:
        return None, None
    return row[0], row[1]


def _secrets(url: str) -> list[str]:
    """What in ``url`` may be a password, as written (the parsed one is added once parsed)."""
    rest = url.partition("://")[2]
    userinfo = rest.partition("/")[0].rpartition("@")[0]
    password = userinfo.partition(":")[2]
    found = [password, unquote(password)]
    for part in rest.partition("?")[2].split("&"):
        name, _, value = part.partition("=")
        if name == "password":
            found += [value, unquote(value)]
    return [s for s in found if s]
