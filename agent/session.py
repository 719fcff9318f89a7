"""Conversations and profiles that persist: what is stored of them and how a save merges.

* **Where**: one SQLite file under DATA_DIR by default (:mod:`agent.session_sqlite`), or a
  PostgreSQL database for several service processes (``sessions.url``,
  :mod:`agent.session_postgres`); :func:`open_sessions` picks by the settings. Both behave alike.
* **No lost update**: a save adds what this conversation did since it was loaded (its new
  messages, recommendations and turn memories, the likes and dislikes it added) to what is
  stored now, inside one transaction that keeps other writers of the user waiting, so two
  processes saving one user both keep their turns. A killed process loses at most the turn it
  had not saved.
* **Validated rows**: a session is a :class:`SessionRecord`; a row that does not parse is an
  error naming the user (``recagent chat --user NAME --reset`` deletes it without reading it).
* **Migration**: the JSON files of earlier versions (``sessions/USER.json``,
  ``profiles/USER.json``) are imported into the SQLite file on first use and then left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field, ValidationError

from agent.conversation import Conversation
from agent.feedback import Feedback
from agent.profile import USER_ID, UserProfile, union
from agent.request_types import TurnMemory
from agent.session_sqlite import SqliteSessions
from tools.config import Settings, describe_errors
from tools.config_service import CLIENT_NAME
from tools.errors import InputError, StoreError
from tools.text import shorten

MAX_MESSAGES = 100
MAX_RECOMMENDED = 500
MAX_REQUESTS = 20
MAX_FEEDBACK = 200

Rows = tuple[str | None, str | None]  # a key's session row and profile row (JSON text)


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


class SessionBackend(Protocol):
    """The database under a :class:`SessionStore`: per key, a session row and a profile row of
    JSON text (None when absent). Every method is one transaction, safe to call from many
    threads and processes; failures are :class:`~tools.errors.StoreError`."""

    def read(self, key: str) -> Rows:
        """Both rows, as one consistent snapshot."""
        ...

    def update(self, key: str, change: Callable[[Rows], tuple[str, str]]) -> None:
        """Read both rows, ``change`` them, write both, in one transaction that keeps every
        other writer of ``key`` waiting; an exception from ``change`` writes nothing."""
        ...

    def delete(self, key: str) -> None:
        """Delete both rows without reading them."""
        ...

    def keys(self) -> list[str]:
        """Every key with a row, sorted."""
        ...

    def check(self) -> None:
        """Read from both tables; raises when the database cannot be read."""
        ...


def open_sessions(settings: Settings) -> SessionStore:
    """The store ``settings.sessions.url`` names: PostgreSQL, or by default the SQLite file
    under DATA_DIR. Nothing is connected until the first call."""
    url = settings.sessions.url
    if url is None:
        return SessionStore(settings.data_dir)
    from agent.session_postgres import PostgresSessions  # psycopg loads only when used

    return SessionStore(backend=PostgresSessions(url))


class SessionStore:
    """Sessions and profiles of every user: in ``folder/sessions.sqlite3``, or in ``backend``
    (see :func:`open_sessions`)."""

    def __init__(
        self, folder: Path | None = None, *, backend: SessionBackend | None = None
    ) -> None:
        if backend is None:
            if folder is None:
                raise TypeError("SessionStore needs a folder or a backend")
            backend = SqliteSessions(folder, _legacy_row)
        self.backend = backend

    def _read(self, rows: Rows, user_id: str) -> tuple[SessionRecord, UserProfile]:
        session, profile = rows
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
        record, profile = self._read(self.backend.read(user_id), user_id)
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
        merged_profile: list[UserProfile] = []

        def merge(rows: Rows) -> tuple[str, str]:
            stored, profile = self._read(rows, convo.user_id)
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
            merged_profile[:] = [new_profile]
            return merged.model_dump_json(), new_profile.model_dump_json()

        self.backend.update(convo.user_id, merge)
        convo.profile = merged_profile[0]
        self._remember(convo)

    def reset(self, user_id: str) -> None:
        """Forget the user's session and profile (without reading them: a corrupt row goes)."""
        check_key(user_id)
        self.backend.delete(user_id)

    def check(self) -> None:
        """Read from the database (what a turn needs); raises when it cannot be read."""
        self.backend.check()

    def users(self) -> list[str]:
        return self.backend.keys()

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


def _legacy_row(table: str, user_id: str, text: str) -> str:
    """A JSON file of an earlier version as the row of ``table`` (SQLite's one-time import)."""
    check_user(user_id)
    data = json.loads(text)
    if table == "sessions":
        return SessionRecord.model_validate(data).bounded().model_dump_json()
    return UserProfile.model_validate(data).model_dump_json()


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
    (likes, dislikes, standing preferences, turns, a new summary) on top of what
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
        }
    )
