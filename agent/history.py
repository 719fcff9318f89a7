"""A user's earlier interactions, given as a JSON list of item ids (``--history FILE``)."""

from __future__ import annotations

import json
from pathlib import Path

from agent.conversation import Conversation
from indexing.store import Store
from tools.errors import InputError


def read_history(path: Path) -> list[str]:
    """The item ids in ``path``, a JSON list; :class:`InputError` when it is not one."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"history file not found: {path}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"history file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise InputError(f"history file {path} must hold a JSON list of item ids")
    return [str(i) for i in data]


def load_history(convo: Conversation, history_path: Path | None, store: Store) -> None:
    """Seed ``convo``'s interaction history (ids and titles, oldest first) from
    ``history_path``; nothing happens without one. Every id must be in the store
    (:class:`InputError` names the first missing ones)."""
    if history_path is None:
        return
    ids = read_history(history_path)
    found = store.items(ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise InputError(f"history names items not in the store: {', '.join(missing[:5])}")
    convo.history_ids = ids
    convo.history_titles = [found[i].title for i in ids]
