"""One turn over HTTP: reading its input (JSON, or a multipart form with uploads) and streaming
its events while the turn runs on a thread of its own; the JSON of its items and results."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from agent.conversation import TurnResult
from agent.recommender import Recommender
from agent.session import SessionStore
from agent.steps import LLMFailure
from indexing.records import Filters
from service.guard import is_form
from service.schemas import TurnRequest
from tools.config import describe_errors
from tools.errors import InputError, RecagentError

log = logging.getLogger(__name__)


def item_json(item_id: str, title: str, facts: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in facts.items() if k != "image"}  # no file system paths
    return {
        "id": item_id,
        "title": title,
        "facts": shown,
        "image_url": f"/v1/items/{item_id}/image" if facts.get("has_image") else None,
        "audio_url": f"/v1/items/{item_id}/audio" if facts.get("has_audio") else None,
    }


def result_json(result: TurnResult, public: Callable[[str], str]) -> dict[str, Any]:
    data = result.as_dict()
    data["notices"] = [public(str(n)) for n in data.get("notices", [])]
    facts = {r.item_id: r.facts for r in result.recommendations}
    for rec in data["recommendations"]:
        item = item_json(rec["id"], rec["title"], facts.get(rec["id"], {}))
        rec["image_url"], rec["audio_url"] = item["image_url"], item["audio_url"]
    return data


async def read_turn(request: Request, max_body: int) -> tuple[TurnRequest, dict[str, Any]]:
    """The message (JSON, or form fields) and the uploads of a turn request."""
    kind = request.headers.get("content-type", "")
    if is_form(kind):
        form = await request.form(max_files=2, max_fields=10, max_part_size=max_body)
        uploads = {name: form.get(name) for name in ("image", "audio") if form.get(name)}
        for name in ("image", "audio"):
            if name in uploads and not isinstance(uploads[name], UploadFile):
                raise InputError(f"invalid form: {name} must be a file")
        fields: dict[str, str] = {}
        for name in ("message", "k", "filters"):
            value = form.get(name)
            if isinstance(value, UploadFile):
                raise InputError(f"invalid form: {name} must be a text field, not a file")
            fields[name] = value or ""
        try:
            body = TurnRequest(
                message=fields["message"],
                k=int(fields["k"] or 3),
                filters=json.loads(fields["filters"] or "null"),
            )
        except RecursionError:
            raise InputError("invalid form: filters is nested too deeply") from None
        except (ValueError, ValidationError) as exc:
            detail = describe_errors(exc) if isinstance(exc, ValidationError) else str(exc)
            raise InputError(f"invalid form: {detail[:300]}") from None
        return body, uploads
    raw = await request.body()
    if len(raw) > max_body:
        raise InputError(f"the request body is over the limit of {max_body:,} bytes")
    try:
        return TurnRequest.model_validate_json(raw or b"{}"), {}
    except ValidationError as exc:
        raise InputError(f"invalid request: {describe_errors(exc)}") from None


async def stream_turn(
    sessions: SessionStore,
    recommender: Recommender,
    user: str,
    message: str,
    k: int,
    filters: Filters | None,
    attached: dict[str, Path],
    cleanup: Callable[[], None],
    pool: ThreadPoolExecutor,
    public: Callable[[str], str],
) -> AsyncIterator[dict[str, str]]:
    """The turn's events as they happen; a client that goes away cancels the turn's LLM use,
    and that turn is not saved."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    cancel = threading.Event()

    def put(event: str, data: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (event, data))

    def token(text: str) -> None:
        if cancel.is_set():  # closing the stream makes vLLM drop the request
            raise LLMFailure("the client went away", unreachable=True)
        put("token", {"text": text})

    def turn() -> None:
        try:
            convo = sessions.load(user)
            result = recommender.respond(
                convo,
                message,
                k,
                attachments=attached,
                on_token=token,
                on_ranked=lambda ranked: put(
                    "ranked", {"items": [{"id": i, "title": t} for i, t in ranked]}
                ),
                filters=filters,
                cancel=cancel,
                on_understood=lambda applied: put(
                    "understood", {"constraints": [a.model_dump() for a in applied]}
                ),
                on_first_look=lambda ranked: put(
                    "ranked",
                    {"items": [{"id": i, "title": t} for i, t in ranked], "provisional": True},
                ),
            )
            if cancel.is_set():
                put("end", None)
                return
            sessions.save(convo)
            data = result_json(result, public)
            put("intro", {"text": result.intro})
            for number, rec in enumerate(data["recommendations"], start=1):
                put("item", {"number": number, **rec})
            put(
                "done",
                {
                    "notices": data["notices"],
                    "constraints": data["constraints"],
                    "timings": data["timings"],
                },
            )
        except RecagentError as exc:
            put("error", {"error": public(exc.message)})
        except Exception as exc:  # never a traceback to the client
            log.exception("turn failed", exc_info=exc)
            put("error", {"error": "internal error (the server log has the details)"})
        finally:
            cleanup()  # the uploads live for this turn only
        put("end", None)

    worker = loop.run_in_executor(pool, turn)
    try:
        while True:
            event, data = await queue.get()
            if event == "end":
                break
            yield {"event": event, "data": json.dumps(data, ensure_ascii=False, default=str)}
    finally:
        if not worker.done():  # the client went away mid-turn: no more LLM calls, no save
            cancel.set()
