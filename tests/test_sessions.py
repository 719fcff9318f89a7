"""The session database, on SQLite and on PostgreSQL alike: round trips, bad ids, no lost update
between processes or threads, a corrupt row named and deletable, a killed writer losing at most
its own turn. SQLite only: the owner-only file, the JSON files of earlier versions imported once.
PostgreSQL only: a bad URL, an unreachable server or a wrong password (never printed), a server
that dropped the store's connections."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from agent.conversation import Conversation
from agent.profile import UserProfile
from agent.request_types import Standing, TurnMemory
from agent.session import SessionStore, open_sessions
from agent.session_postgres import PostgresSessions
from agent.session_sqlite import DATABASE, SqliteSessions
from tests.servers import free_port
from tools.config import load_settings
from tools.errors import ConfigError, InputError, StoreError


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's sessions live: a folder (SQLite) or a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path)
    return str(request.getfixturevalue("postgres_database"))


def store_at(where: str) -> SessionStore:
    if where.startswith("postgresql://"):
        return SessionStore(backend=PostgresSessions(where))
    return SessionStore(Path(where))


def run_sql(where: str, *statements: str) -> None:
    """Statements run straight on the database, past the store."""
    if where.startswith("postgresql://"):
        with psycopg.connect(where, autocommit=True) as pg:
            for statement in statements:
                pg.execute(statement.encode())
        return
    with sqlite3.connect(Path(where) / DATABASE) as db:
        for statement in statements:
            db.execute(statement)


def _turn(convo: Conversation, n: int, who: str) -> None:
    convo.messages += [("user", f"{who} asks {n}"), ("assistant", f"answer {n}")]
    convo.recommended.append(f"{who}/item{n}")
    convo.requests.append(TurnMemory(message=f"{who} {n}"))
    convo.profile = convo.profile.model_copy(
        update={
            "likes": [*convo.profile.likes, f"{who} like {n}"],
            "turns": convo.profile.turns + 1,
        }
    )


def test_round_trip_and_bad_ids(where: str) -> None:
    sessions = store_at(where)
    convo = sessions.load("alice")
    assert convo.messages == [] and convo.profile.likes == []
    _turn(convo, 1, "a")
    convo.profile = convo.profile.model_copy(
        update={"standing": [Standing(kind="diet", value="vegan", words="vegan", turn=1)]}
    )
    sessions.save(convo)
    again = store_at(where).load("alice")
    assert again.messages == convo.messages and again.recommended == ["a/item1"]
    assert again.requests[0].message == "a 1" and again.profile.standing[0].value == "vegan"
    sessions.save(sessions.load("web~Bob"))
    assert sessions.users() == ["alice", "web~Bob"]
    sessions.check()
    for bad in ("../etc/passwd", "bob\n", "", "x" * 65):
        with pytest.raises(InputError, match="not allowed"):
            sessions.load(bad)


def test_sqlite_file_is_owner_only(tmp_path: Path) -> None:
    SessionStore(tmp_path).save(SessionStore(tmp_path).load("alice"))
    assert (tmp_path / DATABASE).stat().st_mode & 0o077 == 0


def _worker(where: str, who: str, turns: int) -> None:
    sessions = store_at(where)
    for n in range(turns):  # load, a turn, save: the load-modify-save race of a real server
        convo = sessions.load("shared")
        _turn(convo, n, who)
        sessions.save(convo)


def test_concurrent_writers_lose_no_update(where: str) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_worker, args=(where, who, 15)) for who in ("p", "q", "r")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    convo = store_at(where).load("shared")
    assert len(convo.recommended) == 45 and len(set(convo.recommended)) == 45
    assert convo.profile.turns == 45
    likes = convo.profile.likes  # a merge keeps the 20 most recent likes, a plain save all
    assert len(likes) == len(set(likes)) >= 20
    assert set(likes) <= {f"{who} like {n}" for who in "pqr" for n in range(15)}
    # one conversation object saved twice adds its second turn once
    sessions = store_at(where)
    mine = sessions.load("solo")
    _turn(mine, 1, "s")
    sessions.save(mine)
    _turn(mine, 2, "s")
    sessions.save(mine)
    assert sessions.load("solo").recommended == ["s/item1", "s/item2"]


def test_threads_of_one_store_lose_no_update(where: str) -> None:
    sessions = store_at(where)  # the service calls one store from many threads
    failed: list[BaseException] = []

    def turns(who: str) -> None:
        try:
            for n in range(5):
                convo = sessions.load("threads")
                _turn(convo, n, who)
                sessions.save(convo)
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=turns, args=(f"t{i}",)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert failed == []
    convo = sessions.load("threads")
    assert len(set(convo.recommended)) == 60 and convo.profile.turns == 60


def test_corrupt_row_is_named_and_reset_deletes_it(where: str) -> None:
    sessions = store_at(where)
    sessions.save(sessions.load("carol"))
    run_sql(
        where,
        "UPDATE sessions SET data = '{\"messages\": 7}' WHERE user_id = 'carol'",
        "UPDATE profiles SET data = 'not json' WHERE user_id = 'carol'",
    )
    with pytest.raises(StoreError, match=r"carol.*--reset"):
        sessions.load("carol")
    unloaded = Conversation("carol", UserProfile(user_id="carol"), messages=[("user", "hi")])
    with pytest.raises(StoreError, match=r"carol.*--reset"):
        sessions.save(unloaded)  # nothing is written over the corrupt row
    sessions.reset("carol")
    assert sessions.load("carol").messages == []
    sessions.save(unloaded)
    assert sessions.load("carol").messages == [("user", "hi")]


KILLED = """
import os, signal, sys
from pathlib import Path
from agent.session import SessionStore
from agent.session_postgres import PostgresSessions
import agent.session as s
where = sys.argv[1]
if where.startswith("postgresql://"):
    sessions = SessionStore(backend=PostgresSessions(where))
else:
    sessions = SessionStore(Path(where))
convo = sessions.load("dave")
convo.messages.append(("user", "second turn"))
def die(self, *a, **k):
    os.kill(os.getpid(), signal.SIGKILL)  # killed inside the write transaction
s.SessionRecord.model_dump_json = die
sessions.save(convo)
"""


def test_a_killed_writer_loses_only_its_own_turn(where: str) -> None:
    sessions = store_at(where)
    convo = sessions.load("dave")
    convo.messages.append(("user", "first turn"))
    sessions.save(convo)
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", KILLED, where], cwd=root, env={**os.environ}, check=False
    )
    assert done.returncode == -9
    assert store_at(where).load("dave").messages == [("user", "first turn")]
    convo = store_at(where).load("dave")  # and the database takes writes again
    convo.messages.append(("user", "third turn"))
    store_at(where).save(convo)
    assert len(store_at(where).load("dave").messages) == 2


def test_json_files_of_earlier_versions_are_imported_once(tmp_path: Path) -> None:
    (tmp_path / "sessions").mkdir()
    (tmp_path / "profiles").mkdir()
    (tmp_path / "sessions" / "erin.json").write_text(
        json.dumps({"messages": [["user", "hi"]], "recommended": ["a/b"], "requests": []})
    )
    (tmp_path / "profiles" / "erin.json").write_text(
        UserProfile(user_id="erin", likes=["owls"]).model_dump_json()
    )
    (tmp_path / "sessions" / "broken.json").write_text("{")
    convo = SessionStore(tmp_path).load("erin")
    assert convo.messages == [("user", "hi")] and convo.profile.likes == ["owls"]
    assert (tmp_path / "sessions" / "erin.json").exists()  # left alone
    (tmp_path / "sessions" / "erin.json").write_text(json.dumps({"messages": [["user", "new"]]}))
    assert SessionStore(tmp_path).load("erin").messages == [("user", "hi")]  # imported once


# -- choosing the backend, and PostgreSQL's own failures -------------------------------------


@pytest.mark.postgres
def test_settings_pick_the_backend(tmp_path: Path, postgres_database: str) -> None:
    default = open_sessions(load_settings(data_dir=tmp_path))
    assert isinstance(default.backend, SqliteSessions)
    default.save(default.load("erin"))
    assert (tmp_path / DATABASE).is_file()
    chosen = open_sessions(load_settings(data_dir=tmp_path, sessions={"url": postgres_database}))
    assert isinstance(chosen.backend, PostgresSessions)
    convo = chosen.load("erin")
    _turn(convo, 1, "e")
    chosen.save(convo)
    assert store_at(postgres_database).load("erin").recommended == ["e/item1"]
    assert store_at(str(tmp_path)).load("erin").recommended == []  # the SQLite file is apart


@pytest.mark.postgres
def test_a_url_that_is_not_postgresql_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"sessions\.url.*postgresql://") as caught:
        load_settings(sessions={"url": "mysql://user:hunter2secret@db/sessions"})
    assert "hunter2secret" not in str(caught.value)
    monkeypatch.setenv("RECAGENT_SESSIONS__URL", "sqlite:///sessions.db")
    with pytest.raises(ConfigError, match=r"sessions\.url"):
        load_settings()
    monkeypatch.setenv("RECAGENT_SESSIONS__URL", "postgres://user@db:5433/sessions")
    assert load_settings().sessions.url == "postgres://user@db:5433/sessions"
    with pytest.raises(StoreError, match="not a valid PostgreSQL URL") as bad:
        PostgresSessions("postgresql://user:se%zzcret@db/sessions")
    assert "se%zzcret" not in str(bad.value) and "zzcret" not in str(bad.value)
    assert "hunter2secret" not in repr(
        load_settings(sessions={"url": "postgresql://u:hunter2secret@db/s"})
    )


@pytest.mark.postgres
def test_an_unreachable_server_fails_check_without_the_password() -> None:
    port = free_port()  # nothing listens there
    sessions = SessionStore(
        backend=PostgresSessions(f"postgresql://recagent:hunter2secret@127.0.0.1:{port}/talks")
    )
    with pytest.raises(StoreError) as caught:
        sessions.check()
    message = str(caught.value)
    assert f"'talks' at 127.0.0.1:{port}" in message and "cannot be reached" in message
    assert "hunter2secret" not in message
    with pytest.raises(StoreError, match="cannot be reached"):
        sessions.load("alice")


@pytest.mark.postgres
def test_a_wrong_password_is_an_error_without_it(postgres_database: str) -> None:
    user_info, _, rest = postgres_database.partition("@")
    wrong = f"{user_info.rpartition(':')[0]}:hunter2secret@{rest}"
    with pytest.raises(StoreError, match=r"cannot be reached.*password authentication") as caught:
        SessionStore(backend=PostgresSessions(wrong)).check()
    assert "hunter2secret" not in str(caught.value)
    assert user_info.rpartition(":")[2] not in str(caught.value)  # nor the right one


@pytest.mark.postgres
def test_connections_the_server_dropped_are_replaced(postgres_database: str) -> None:
    sessions = store_at(postgres_database)
    sessions.save(sessions.load("fay"))  # leaves an idle connection for reuse
    name = postgres_database.rpartition("/")[2]
    admin = postgres_database.rpartition("/")[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as pg:
        ended = pg.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        ).fetchone()
    assert ended is not None and ended[0] >= 1
    assert sessions.users() == ["fay"]
