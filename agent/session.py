"""Conversations and profiles that persist: one SQLite database under DATA_DIR.

* **One database, WAL mode**, a transaction per save; the file is readable by its owner only.
* **No lost update**: a save adds what this conversation did since it was loaded (its new
  messages, recommendations and turn memories, the likes and dislikes it added) to what is
  stored now, inside one ``BEGIN IMMEDIATE`` transaction, so two processes saving one user
  both keep their turns. A killed process loses at most the turn it had not saved.
* **Validated rows**: a session is a :class:`SessionRecord`; a row that does not parse is an
  error naming the user (``recagent chat --user NAME --reset`` deletes it without reading it).
* **Migration**: the JSON files of earlier versions (``sessions/USER.json``,
  ``profiles/USER.json``) are imported on first use and then left alone.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from agent.conversation import Conversation
from agent.feedback import Feedback
from agent.profile import USER_ID, UserProfile, union
from agent.request_types import TurnMemory
from tools.config import CLIENT_NAME, describe_errors
from tools.errors import InputError, StoreError
from tools.text import shorten

log = logging.getLogger(__name__)

DATABASE = "sessions.sqlite3"
MAX_MESSAGES = 100
MAX_RECOMMENDED = 500
MAX_REQUESTS = 20
MAX_FEEDBACK = 200
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (user_id TEXT PRIMARY KEY, data TEXT NOT NULL, updated REAL);
CREATE TABLE IF NOT EXISTS profiles (user_id TEXT PRIMARY KEY, data TEXT NOT NULL, updated REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SessionRecord(BaseModel):
    """What is stored of a conversation (the profile is stored beside it)."""

    messages: list[tuple[Literal["user", "assistant"], str]] = Field(default_factory=list)
    recommended: list[str] = Field(default_factory=list)
    history_ids: list[str] = Field(default_factory=list)
    history_titles: list[str] = Field(default_factory=list)
    requests: list[TurnMemory] = Field(default_factory=list)
    feedback: list[Feedback] = Field(default_factory=list)  # the latest word per item

    @classmethod
    def of(cls, convo: Conversation) -> SessionRecord:
        return cls(
            messages=convo.messages,  # type: ignore[arg-type]
            recommended=convo.recommended,
            history_ids=convo.history_ids,
            history_titles=convo.history_titles,
            requests=convo.requests,
            feedback=list(convo.feedback.values()),
        )

    def bounded(self) -> SessionRecord:
        return self.model_copy(
            update={
                "messages": self.messages[-MAX_MESSAGES:],
                "recommended": self.recommended[-MAX_RECOMMENDED:],
                "requests": self.requests[-MAX_REQUESTS:],
                "feedback": self.feedback[-MAX_FEEDBACK:],
            }
        )


@dataclass(frozen=True)
class Loaded:
    """What a conversation looked like when it was loaded or last saved (the base its changes
    are counted from)."""

    messages: int
    recommended: int
    requests: int
    history_ids: tuple[str, ...]
    profile: UserProfile
    feedback: tuple[tuple[str, Feedback], ...] = ()


def check_user(user_id: str) -> str:
    if not USER_ID.fullmatch(user_id):
        raise InputError(
            f"user id {shorten(user_id)!r} is not allowed: use 1-64 letters, digits, _.@-"
        )
    return user_id


SPACE_MARK = "~"  # never in a user id: ``space~user`` cannot collide with one


def session_key(space: str, user: str) -> str:
    """The key of ``user``'s session in ``space`` (a per-client token's name; "" for the
    default space, where the key is the user id itself)."""
    return f"{space}{SPACE_MARK}{user}" if space else user


def check_key(key: str) -> str:
    """A session's key (see :func:`session_key`): a user id, or ``space~user``."""
    space, mark, user = key.rpartition(SPACE_MARK)
    if mark and not CLIENT_NAME.fullmatch(space):
        raise InputError(f"session space {shorten(space, 40)!r} is not allowed")
    check_user(user)
    return key


class SessionStore:
    """Sessions and profiles of every user, in ``folder/sessions.sqlite3``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / DATABASE

    # -- the database -----------------------------------------------------------------------
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
        for table, folder in (("sessions", "sessions"), ("profiles", "profiles")):
            for path in sorted((self.folder / folder).glob("*.json")):
                user_id = path.stem
                try:
                    check_user(user_id)
                    data = json.loads(path.read_text())
                    if table == "sessions":
                        text = SessionRecord.model_validate(data).bounded().model_dump_json()
                    else:
                        text = UserProfile.model_validate(data).model_dump_json()
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

    def _row(self, db: sqlite3.Connection, table: str, user_id: str) -> str | None:
        row = db.execute(f"SELECT data FROM {table} WHERE user_id = ?", (user_id,)).fetchone()
        return None if row is None else str(row[0])

    def _read(self, db: sqlite3.Connection, user_id: str) -> tuple[SessionRecord, UserProfile]:
        session, profile = self._row(db, "sessions", user_id), self._row(db, "profiles", user_id)
        try:
            record = SessionRecord.model_validate_json(session) if session else SessionRecord()
            stored = (
                UserProfile.model_validate_json(profile)
                if profile
                else UserProfile(user_id=user_id)
            )
        except ValidationError as exc:
            raise StoreError(
                f"the stored session of user {user_id!r} cannot be read "
                f"({describe_errors(exc)[:300]}); `recagent chat --user {user_id} --reset` "
                "deletes it"
            ) from None
        return record, stored

    # -- the interface ----------------------------------------------------------------------
    def load(self, user_id: str) -> Conversation:
        check_key(user_id)
        with self._connect() as db:
            record, profile = self._read(db, user_id)
        convo = Conversation(
            user_id,
            profile,
            messages=list(record.messages),
            recommended=list(record.recommended),
            history_ids=list(record.history_ids),
            history_titles=list(record.history_titles),
            requests=list(record.requests),
            feedback={f.item_id: f for f in record.feedback},
        )
        self._remember(convo)
        return convo

    def save(self, convo: Conversation) -> None:
        """Add what ``convo`` did since it was loaded to what is stored now (one transaction)."""
        check_key(convo.user_id)
        base = convo.base if isinstance(convo.base, Loaded) else _empty(convo.user_id)
        with self._connect(write=True) as db:
            stored, profile = self._read(db, convo.user_id)
            history_changed = tuple(convo.history_ids) != base.history_ids
            merged = SessionRecord(
                messages=[*stored.messages, *convo.messages[base.messages :]],  # type: ignore[list-item]
                recommended=[*stored.recommended, *convo.recommended[base.recommended :]],
                history_ids=convo.history_ids if history_changed else stored.history_ids,
                history_titles=(convo.history_titles if history_changed else stored.history_titles),
                requests=[*stored.requests, *convo.requests[base.requests :]],
                feedback=_merged_feedback(stored.feedback, dict(base.feedback), convo.feedback),
            ).bounded()
            new_profile = _merged_profile(profile, base.profile, convo.profile)
            now = time.time()
            for table, text in (
                ("sessions", merged.model_dump_json()),
                ("profiles", new_profile.model_dump_json()),
            ):
                db.execute(
                    f"INSERT INTO {table} (user_id, data, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT(user_id) DO UPDATE SET data = excluded.data, "
                    "updated = excluded.updated",
                    (convo.user_id, text, now),
                )
        convo.profile = new_profile
        self._remember(convo)

    def reset(self, user_id: str) -> None:
        """Forget the user's session and profile (without reading them: a corrupt row goes)."""
        check_key(user_id)
        with self._connect(write=True) as db:
            db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
            db.execute("DELETE FROM profiles WHERE user_id = ?", (user_id,))

    def check(self) -> None:
        """Read from the database (what a turn needs); raises when it cannot be read."""
        with self._connect() as db:
            db.execute("SELECT user_id FROM sessions LIMIT 1").fetchall()
            db.execute("SELECT user_id FROM profiles LIMIT 1").fetchall()

    def users(self) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT user_id FROM sessions UNION SELECT user_id FROM profiles ORDER BY 1"
            ).fetchall()
        return [str(r[0]) for r in rows]

    @staticmethod
    def _remember(convo: Conversation) -> None:
        convo.base = Loaded(
            len(convo.messages),
            len(convo.recommended),
            len(convo.requests),
            tuple(convo.history_ids),
            convo.profile.model_copy(deep=True),
            tuple(convo.feedback.items()),
        )


def _merged_feedback(
    stored: list[Feedback], base: dict[str, Feedback], mine: dict[str, Feedback]
) -> list[Feedback]:
    """What is stored, with the feedback this conversation gave since ``base`` on top."""
    merged = {f.item_id: f for f in stored}
    for item_id, given in mine.items():
        if base.get(item_id) != given:
            merged.pop(item_id, None)
            merged[item_id] = given
    return list(merged.values())


def _empty(user_id: str) -> Loaded:
    """The base of a conversation that was never loaded: everything in it is new."""
    return Loaded(0, 0, 0, (), UserProfile(user_id=user_id))


def _merged_profile(stored: UserProfile, base: UserProfile, mine: UserProfile) -> UserProfile:
    """``mine`` when nobody else changed the profile since ``base``; else what ``mine`` added
    (likes, dislikes, standing preferences, turns, a new summary or constraints) on top of what
    is stored."""
    if stored == base:
        return mine
    liked = [x for x in mine.likes if x not in base.likes]
    disliked = [x for x in mine.dislikes if x not in base.dislikes]
    return stored.model_copy(
        update={
            "likes": union(stored.likes, liked, disliked),
            "dislikes": union(stored.dislikes, disliked, liked),
            "standing": [
                *stored.standing,
                *(s for s in mine.standing if s not in base.standing and s not in stored.standing),
            ],
            "turns": stored.turns + max(0, mine.turns - base.turns),
            "summary": mine.summary if mine.summary != base.summary else stored.summary,
            "constraints": (
                mine.constraints if mine.constraints != base.constraints else stored.constraints
            ),
        }
    )
