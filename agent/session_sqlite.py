"""The session rows in one SQLite file (the default): ``DATA_DIR/sessions.sqlite3``.

* **WAL mode**, a transaction per operation; the file is created readable by its owner only.
* **One writer at a time**: :meth:`SqliteSessions.update` reads and writes inside one
  ``BEGIN IMMEDIATE`` transaction, so two processes saving one user both keep their turns. An
  operation that SQLite refuses as "locked" without waiting is done again, until the busy
  timeout (each is one transaction over fresh rows, so doing it again is safe).
* **Migration**: the JSON files of earlier versions (``sessions/USER.json``,
  ``profiles/USER.json``) are imported on first use and then left alone.

The rows are JSON text; what they mean (and how a save merges) is :mod:`agent.session`'s.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from tools.errors import InputError, StoreError

log = logging.getLogger(__name__)

DATABASE = "sessions.sqlite3"
BUSY_TIMEOUT_S = 30.0
TABLES = ("sessions", "profiles")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (user_id TEXT PRIMARY KEY, data TEXT NOT NULL, updated REAL);
CREATE TABLE IF NOT EXISTS profiles (user_id TEXT PRIMARY KEY, data TEXT NOT NULL, updated REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

Rows = tuple[str | None, str | None]
T = TypeVar("T")
# A legacy JSON file's row: (table, user id, the file's text) -> the row's JSON text; raises
# ValueError or InputError when the file cannot be imported.
Importer = Callable[[str, str, str], str]


class SqliteSessions:
    """Sessions and profiles in ``folder/sessions.sqlite3``."""

    def __init__(self, folder: Path, importer: Importer) -> None:
        self.folder = folder
        self.path = folder / DATABASE
        self._importer = importer
        self._set_up = threading.Lock()
        self._ready = False  # WAL mode, tables and the import done (once per instance)

    def __str__(self) -> str:
        return f"the session database {self.path}"

    # -- the interface (agent.session.SessionBackend) ---------------------------------------
    def read(self, key: str) -> Rows:
        return self._transaction(lambda db: self._rows(db, key))

    def update(self, key: str, change: Callable[[Rows], tuple[str, str]]) -> None:
        def write(db: sqlite3.Connection) -> None:
            session, profile = change(self._rows(db, key))  # again on a retry: fresh rows
            now = time.time()
            for table, text in zip(TABLES, (session, profile), strict=True):
                db.execute(
                    f"INSERT INTO {table} (user_id, data, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT(user_id) DO UPDATE SET data = excluded.data, "
                    "updated = excluded.updated",
                    (key, text, now),
                )

        self._transaction(write, write=True)

    def delete(self, key: str) -> None:
        def remove(db: sqlite3.Connection) -> None:
            for table in TABLES:
                db.execute(f"DELETE FROM {table} WHERE user_id = ?", (key,))

        self._transaction(remove, write=True)

    def keys(self) -> list[str]:
        rows = self._transaction(
            lambda db: db.execute(
                "SELECT user_id FROM sessions UNION SELECT user_id FROM profiles ORDER BY 1"
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    def check(self) -> None:
        def probe(db: sqlite3.Connection) -> None:
            for table in TABLES:
                db.execute(f"SELECT user_id FROM {table} LIMIT 1").fetchall()

        self._transaction(probe)

    # -- the database -----------------------------------------------------------------------
    @staticmethod
    def _rows(db: sqlite3.Connection, key: str) -> Rows:
        found: list[str | None] = []
        for table in TABLES:
            row = db.execute(f"SELECT data FROM {table} WHERE user_id = ?", (key,)).fetchone()
            found.append(None if row is None else str(row[0]))
        return found[0], found[1]

    def _open(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"the session database {self.path} cannot be opened: {exc}") from exc

    def _prepare(self) -> None:
        """WAL mode, the tables and the import, once per instance and one thread at a time:
        switching a new file to WAL needs it alone, and SQLite answers "locked" at once (no
        busy wait) to a second connection that tries meanwhile, so a race with another process
        is retried until the busy timeout."""
        with self._set_up:
            if self._ready and self.path.exists():
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # created owner-only, before SQLite opens it
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while True:
                db = self._open()
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.executescript(_SCHEMA)
                    self._migrate(db)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise StoreError(f"the session database {self.path} failed: {exc}") from exc
                    time.sleep(0.05)
                except sqlite3.DatabaseError as exc:
                    raise StoreError(f"the session database {self.path} failed: {exc}") from exc
                finally:
                    db.close()
            self._ready = True

    def _transaction(self, work: Callable[[sqlite3.Connection], T], write: bool = False) -> T:
        """``work`` in one transaction, done again while SQLite answers "locked" without
        waiting (it does so in a few WAL cases, e.g. while the last connection's checkpoint
        removes the log) until the busy timeout; ``work`` must only read and write the
        database, so a retry is safe."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                with self._connect(write) as db:
                    return work(db)
            except StoreError as exc:
                locked = isinstance(exc.__cause__, sqlite3.OperationalError) and (
                    "locked" in str(exc.__cause__)
                )
                if not locked or time.monotonic() > deadline:
                    raise
                log.info("%s was locked; trying again", self.path)
                time.sleep(0.05)

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        self._prepare()
        db = self._open()
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"the session database {self.path} failed: {exc}") from exc
        finally:
            db.close()

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Import the JSON files of earlier versions once (they are left where they are)."""
        if db.execute("SELECT 1 FROM meta WHERE key = 'json_imported'").fetchone():
            return
        db.execute("BEGIN IMMEDIATE")
        if db.execute("SELECT 1 FROM meta WHERE key = 'json_imported'").fetchone():
            db.execute("COMMIT")  # another process imported them meanwhile
            return
        imported = 0
        for table in TABLES:  # each table's files are in the folder of the same name
            for path in sorted((self.folder / table).glob("*.json")):
                user_id = path.stem
                try:
                    text = self._importer(table, user_id, path.read_text())
                except (OSError, ValueError, InputError) as exc:
                    log.warning("not imported: %s (%s)", path, str(exc)[:200])
                    continue
                db.execute(
                    f"INSERT OR IGNORE INTO {table} (user_id, data, updated) VALUES (?, ?, ?)",
                    (user_id, text, time.time()),
                )
                imported += 1
        db.execute("INSERT INTO meta (key, value) VALUES ('json_imported', ?)", (str(imported),))
        db.execute("COMMIT")
