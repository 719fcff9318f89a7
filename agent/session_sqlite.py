"""The session rows in one SQLite file (the default): ``DATA_DIR/sessions.sqlite3``.

* **WAL mode**, a transaction per operation; the file is created readable by its owner only.
* **One writer at a time**: :meth:`SqliteSessions.update` reads and writes inside one
  ``BEGIN IMMEDIATE`` transaction, so two processes saving one user both keep their turns.
* **Migration**: the JSON files of earlier versions (``sessions/USER.json``,
  ``profiles/USER.json``) are imported on first use and then left alone.

The rows are JSON text; what they mean (and how a save merges) is :mod:`agent.session`'s.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

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
# A legacy JSON file's row: (table, user id, the file's text) -> the row's JSON text; raises
# ValueError or InputError when the file cannot be imported.
Importer = Callable[[str, str, str], str]


class SqliteSessions:
    """Sessions and profiles in ``folder/sessions.sqlite3``."""

    def __init__(self, folder: Path, importer: Importer) -> None:
        self.folder = folder
        self.path = folder / DATABASE
        self._importer = importer

    def __str__(self) -> str:
        return f"the session database {self.path}"

    # -- the interface (agent.session.SessionBackend) ---------------------------------------
    def read(self, key: str) -> Rows:
        with self._connect() as db:
            return self._rows(db, key)

    def update(self, key: str, change: Callable[[Rows], tuple[str, str]]) -> None:
        with self._connect(write=True) as db:
            session, profile = change(self._rows(db, key))
            now = time.time()
            for table, text in zip(TABLES, (session, profile), strict=True):
                db.execute(
                    f"INSERT INTO {table} (user_id, data, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT(user_id) DO UPDATE SET data = excluded.data, "
                    "updated = excluded.updated",
                    (key, text, now),
                )

    def delete(self, key: str) -> None:
        with self._connect(write=True) as db:
            for table in TABLES:
                db.execute(f"DELETE FROM {table} WHERE user_id = ?", (key,))

    def keys(self) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT user_id FROM sessions UNION SELECT user_id FROM profiles ORDER BY 1"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def check(self) -> None:
        with self._connect() as db:
            for table in TABLES:
                db.execute(f"SELECT user_id FROM {table} LIMIT 1").fetchall()

    # -- the database -----------------------------------------------------------------------
    @staticmethod
    def _rows(db: sqlite3.Connection, key: str) -> Rows:
        found: list[str | None] = []
        for table in TABLES:
            row = db.execute(f"SELECT data FROM {table} WHERE user_id = ?", (key,)).fetchone()
            found.append(None if row is None else str(row[0]))
        return found[0], found[1]

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # created owner-only, before SQLite opens it
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"the session database {self.path} cannot be opened: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._migrate(db)
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
