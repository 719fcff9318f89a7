"""The session database: round trips, bad ids, no lost update between processes, a corrupt row
named and deletable, a killed writer losing at most its own turn, owner-only file, and the JSON
files of earlier versions imported once."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agent.conversation import Conversation
from agent.profile import UserProfile
from agent.request_types import Standing, TurnMemory
from agent.session import DATABASE, SessionStore
from tools.errors import InputError, StoreError


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


def test_round_trip_bad_ids_and_owner_only_file(tmp_path: Path) -> None:
    sessions = SessionStore(tmp_path)
    convo = sessions.load("alice")
    assert convo.messages == [] and convo.profile.likes == []
    _turn(convo, 1, "a")
    convo.profile = convo.profile.model_copy(
        update={"standing": [Standing(kind="diet", value="vegan", words="vegan", turn=1)]}
    )
    sessions.save(convo)
    again = SessionStore(tmp_path).load("alice")
    assert again.messages == convo.messages and again.recommended == ["a/item1"]
    assert again.requests[0].message == "a 1" and again.profile.standing[0].value == "vegan"
    assert (tmp_path / DATABASE).stat().st_mode & 0o077 == 0
    for bad in ("../etc/passwd", "bob\n", "", "x" * 65):
        with pytest.raises(InputError, match="not allowed"):
            sessions.load(bad)


def _worker(folder: str, who: str, turns: int) -> None:
    sessions = SessionStore(Path(folder))
    for n in range(turns):  # load, a turn, save: the load-modify-save race of a real server
        convo = sessions.load("shared")
        _turn(convo, n, who)
        sessions.save(convo)


def test_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_worker, args=(str(tmp_path), who, 15)) for who in ("p", "q", "r")
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    convo = SessionStore(tmp_path).load("shared")
    assert len(convo.recommended) == 45 and len(set(convo.recommended)) == 45
    assert convo.profile.turns == 45
    likes = convo.profile.likes  # a merge keeps the 20 most recent likes, a plain save all
    assert len(likes) == len(set(likes)) >= 20
    assert set(likes) <= {f"{who} like {n}" for who in "pqr" for n in range(15)}
    # one conversation object saved twice adds its second turn once
    sessions = SessionStore(tmp_path)
    mine = sessions.load("solo")
    _turn(mine, 1, "s")
    sessions.save(mine)
    _turn(mine, 2, "s")
    sessions.save(mine)
    assert sessions.load("solo").recommended == ["s/item1", "s/item2"]


def test_corrupt_row_is_named_and_reset_deletes_it(tmp_path: Path) -> None:
    sessions = SessionStore(tmp_path)
    sessions.save(sessions.load("carol"))
    with sqlite3.connect(tmp_path / DATABASE) as db:
        db.execute("UPDATE sessions SET data = '{\"messages\": 7}' WHERE user_id = 'carol'")
        db.execute("UPDATE profiles SET data = 'not json' WHERE user_id = 'carol'")
    with pytest.raises(StoreError, match=r"carol.*--reset"):
        sessions.load("carol")
    sessions.reset("carol")
    assert sessions.load("carol").messages == []


KILLED = """
import os, signal, sys
from pathlib import Path
from agent.session import SessionStore
import agent.session as s
sessions = SessionStore(Path(sys.argv[1]))
convo = sessions.load("dave")
convo.messages.append(("user", "second turn"))
original = s.SessionRecord.model_dump_json
def die(self, *a, **k):
    os.kill(os.getpid(), signal.SIGKILL)  # killed inside the write transaction
s.SessionRecord.model_dump_json = die
sessions.save(convo)
"""


def test_a_killed_writer_loses_only_its_own_turn(tmp_path: Path) -> None:
    sessions = SessionStore(tmp_path)
    convo = sessions.load("dave")
    convo.messages.append(("user", "first turn"))
    sessions.save(convo)
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", KILLED, str(tmp_path)], cwd=root, env={**os.environ}, check=False
    )
    assert done.returncode == -9
    assert SessionStore(tmp_path).load("dave").messages == [("user", "first turn")]
    convo = SessionStore(tmp_path).load("dave")  # and the database takes writes again
    convo.messages.append(("user", "third turn"))
    SessionStore(tmp_path).save(convo)
    assert len(SessionStore(tmp_path).load("dave").messages) == 2


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
