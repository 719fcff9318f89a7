"""A user's earlier interactions, given as a JSON list of item ids (``--history FILE``)."""

from __future__ import annotations

import json
from pathlib import Path

from agent.conversation import Conversation
from indexing.store import Store
from tools.errors import InputError, MediaError
from tools.files import read_bounded

MAX_HISTORY_BYTES = 5_000_000
MAX_HISTORY_ITEMS = 10_000


def read_history(path: Path) -> list[str]:
    """The item ids in ``path``, a JSON list of strings (at most ``MAX_HISTORY_ITEMS``, the file
    at most ``MAX_HISTORY_BYTES``); :class:`InputError` when it is anything else."""
    try:
        data = json.loads(read_bounded(path, MAX_HISTORY_BYTES, "history").decode("utf-8"))
    except MediaError as exc:
        raise InputError(str(exc)) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"history file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(i, str | int) for i in data):
        raise InputError(f"history file {path} must hold a JSON list of item ids")
    if len(data) > MAX_HISTORY_ITEMS:
        raise InputError(
            f"history file {path} lists {len(data):,} items, over the limit of "
            f"{MAX_HISTORY_ITEMS:,}"
        )
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
