"""Conversation memory that persists: one JSON file per user with messages, recommended ids and
interaction history; the profile lives beside it (:class:`agent.profile.ProfileStore`)."""

from __future__ import annotations

import json
from pathlib import Path

from agent.conversation import Conversation
from agent.profile import ProfileStore
from agent.request_types import TurnMemory


class SessionStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.profiles = ProfileStore(folder / "profiles")

    def _path(self, user_id: str) -> Path:
        self.profiles.load(user_id)  # validates the id
        return self.folder / "sessions" / f"{user_id}.json"

    def load(self, user_id: str) -> Conversation:
        convo = Conversation(user_id, self.profiles.load(user_id))
        path = self._path(user_id)
        if path.is_file():
            data = json.loads(path.read_text())
            convo.messages = [tuple(m) for m in data.get("messages", [])]  # type: ignore[misc]
            convo.recommended = list(data.get("recommended", []))
            convo.history_ids = list(data.get("history_ids", []))
            convo.history_titles = list(data.get("history_titles", []))
            convo.requests = [TurnMemory.model_validate(r) for r in data.get("requests", [])]
        return convo

    def save(self, convo: Conversation) -> None:
        self.profiles.save(convo.profile)
        path = self._path(convo.user_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "messages": convo.messages[-100:],
                    "recommended": convo.recommended[-500:],
                    "history_ids": convo.history_ids,
                    "history_titles": convo.history_titles,
                    "requests": [r.model_dump() for r in convo.requests[-20:]],
                },
                indent=1,
            )
        )
        tmp.replace(path)

    def reset(self, user_id: str) -> None:
        self._path(user_id).unlink(missing_ok=True)
        (self.profiles.folder / f"{user_id}.json").unlink(missing_ok=True)
