"""The recommender as an HTTP service: the same turn the command line runs, over FastAPI.

Routes (all but ``/healthz`` need ``Authorization: Bearer TOKEN`` when a token is configured):

* ``POST /v1/recommendations``: one turn, JSON in, the JSON of ``recommend --json`` out;
* ``POST /v1/sessions/{user}/messages``: one turn as server-sent events (``understood``: the
  request's constraints, then ``ranked``, ``intro`` and one ``item`` per recommendation with
  its explanation, then ``done``); JSON, or a
  multipart form with an ``image`` to search by and/or an ``audio`` voice message;
* ``POST /v1/sessions/{user}/feedback``: like, dislike, click or a 1-5 rating on a shown item;
* ``GET`` / ``DELETE /v1/sessions/{user}``: the session (messages, profile, constraints) / forget;
* ``GET /v1/items/{id}``, ``/v1/items/{id}/image``, ``/v1/items/{id}/audio``;
* ``/`` the chat page (static HTML, CSS and JavaScript shipped with the package);
* ``/healthz`` (the process is up), ``/readyz`` (store readable, LLM reachable or degraded);
  the OpenAPI schema at ``/docs``.

Every error is JSON ``{"error": message}``; a request body is bounded before it is parsed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.conversation import Conversation, TurnResult
from agent.feedback import Feedback
from agent.recommender import Recommender
from agent.session import SessionStore, check_user
from agent.steps import LLMFailure
from indexing.records import Filters
from service import media
from service.schemas import Problem, RecommendRequest, TurnRequest
from service.uploads import save_uploads
from tools.config import Settings, describe_errors
from tools.errors import InputError, LLMUnavailable, RecagentError, StoreError

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
TURN_THREADS = 64  # turns in flight at once; more wait for a thread
# most specific first: the first class an error is an instance of decides
STATUS = {media.NotServed: 404, InputError: 400, StoreError: 503, LLMUnavailable: 503}


@dataclass
class Service:
    """What the routes share: the configuration, the one Recommender and the session store."""

    settings: Settings
    recommender: Recommender
    sessions: SessionStore
    llm_ready: Callable[[], str | None]  # None when ready, else why not

    def media_roots(self) -> list[Any]:
        roots = self.recommender.store.catalogue_roots()
        return roots or [self.settings.data_dir / "catalogues"]


def _status(exc: RecagentError) -> int:
    return next((status for kind, status in STATUS.items() if isinstance(exc, kind)), 500)


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse(Problem(error=message).model_dump(), status_code=status)


def create_app(service: Service) -> FastAPI:
    """The FastAPI application for ``service``."""
    cfg = service.settings.service
    token = cfg.token.get_secret_value() if cfg.token else None
    app = FastAPI(
        title="recagent",
        description="Conversational multimodal recommendations with explanations.",
        version="1",
    )
    if cfg.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=cfg.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.middleware("http")
    async def bounded(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        multipart = request.headers.get("content-type", "").startswith("multipart/")
        limit = cfg.max_upload_bytes * 2 + 100_000 if multipart else cfg.max_body_bytes
        length = request.headers.get("content-length")
        if request.method in {"POST", "PUT", "PATCH"} and length is None:
            return _problem(411, "a Content-Length header is required")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _problem(413, f"the request body is over the limit of {limit:,} bytes")
        return await call_next(request)

    @app.exception_handler(RecagentError)
    async def domain_error(_: Request, exc: RecagentError) -> JSONResponse:
        return _problem(_status(exc), exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _problem(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return _problem(422, f"invalid request: {problems}")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return _problem(500, "internal error (the server log has the details)")

    app.state.token = token
    # Turns wait on the LLM most of the time: one thread each, not the event loop's small
    # default pool, so a new turn starts (and streams its first event) while others wait.
    turns = ThreadPoolExecutor(TURN_THREADS, thread_name_prefix="recagent-turn")
    app.state.turns = turns

    @app.exception_handler(Unauthorised)
    async def unauthorised(_: Request, __: Unauthorised) -> JSONResponse:
        response = _problem(401, "a valid `Authorization: Bearer TOKEN` header is required")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    # -- the page -----------------------------------------------------------------------------
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    # -- health -------------------------------------------------------------------------------
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(_: Auth) -> JSONResponse:
        try:
            items, pictures = await run_in_threadpool(service.recommender.store.count)
        except Exception as exc:  # the store itself: not ready at all
            return JSONResponse({"status": "unready", "reason": f"store: {exc}"}, 503)
        llm = await run_in_threadpool(service.llm_ready)
        body: dict[str, Any] = {"status": "ready", "items": items, "pictures": pictures}
        if llm is not None:
            body |= {"status": "degraded", "reason": llm}
        return JSONResponse(body)

    # -- turns --------------------------------------------------------------------------------
    @app.post("/v1/recommendations")
    async def recommend(body: RecommendRequest, _: Auth) -> dict[str, Any]:
        user = check_user(body.user)
        k = min(body.k, cfg.max_k)
        filters = body.filters.filters() if body.filters else None

        def turn() -> dict[str, Any]:
            convo = service.sessions.load(user)
            result = service.recommender.respond(convo, body.message, k, filters=filters)
            service.sessions.save(convo)
            return _result_json(result)

        return await run_in_threadpool(turn)

    @app.post("/v1/sessions/{user}/messages")
    async def message(user: str, request: Request, _: Auth) -> EventSourceResponse:
        check_user(user)
        body, uploads = await _turn_input(request, cfg.max_body_bytes)
        k = min(body.k, cfg.max_k)
        filters = body.filters.filters() if body.filters else None
        folder, attached = await run_in_threadpool(save_uploads, uploads, cfg.max_upload_bytes)
        events = _stream_turn(
            service, user, body.message, k, filters, attached, folder.cleanup, turns
        )
        return EventSourceResponse(events, ping=15)

    @app.post("/v1/sessions/{user}/feedback")
    async def feedback(user: str, body: Feedback, _: Auth) -> dict[str, Any]:
        check_user(user)

        def record() -> dict[str, Any]:
            convo = service.sessions.load(user)
            service.recommender.record_feedback(convo, body)
            service.sessions.save(convo)
            return {"recorded": body.model_dump(), "profile": convo.profile.model_dump()}

        return await run_in_threadpool(record)

    @app.get("/v1/sessions/{user}")
    async def session(user: str, _: Auth) -> dict[str, Any]:
        convo = await run_in_threadpool(service.sessions.load, check_user(user))
        return _session_json(convo)

    @app.delete("/v1/sessions/{user}", status_code=204)
    async def forget(user: str, _: Auth) -> Response:
        await run_in_threadpool(service.sessions.reset, check_user(user))
        return Response(status_code=204)

    # -- items --------------------------------------------------------------------------------
    @app.get("/v1/items/{item_id:path}/image")
    async def item_image(item_id: str, _: Auth) -> Response:
        def read() -> tuple[bytes, str]:
            image, _audio = service.recommender.store.media(item_id)
            if image is None:
                raise media.NotServed(f"item {item_id!r} has no picture")
            index = service.settings.index
            return media.picture(
                image, service.media_roots(), index.max_image_bytes, index.max_image_pixels
            )

        data, kind = await run_in_threadpool(read)
        return Response(data, media_type=kind, headers=_SAFE_HEADERS)

    @app.get("/v1/items/{item_id:path}/audio")
    async def item_audio(item_id: str, _: Auth, index: int = 0) -> Response:
        def read() -> tuple[bytes, str]:
            _image, audio = service.recommender.store.media(item_id)
            sounds = media.effect_first(audio)
            if not 0 <= index < len(sounds):
                raise media.NotServed(f"item {item_id!r} has no sound number {index}")
            limit = service.settings.index.max_audio_bytes
            return media.sound(sounds[index], service.media_roots(), limit)

        data, kind = await run_in_threadpool(read)
        return Response(data, media_type=kind, headers=_SAFE_HEADERS)

    @app.get("/v1/items/{item_id:path}")
    async def item(item_id: str, _: Auth) -> dict[str, Any]:
        found = await run_in_threadpool(service.recommender.store.items, [item_id])
        if item_id not in found:
            raise media.NotServed(f"no item {item_id!r} in the store")
        return _item_json(found[item_id].id, found[item_id].title, found[item_id].facts)

    return app


# -- helpers ------------------------------------------------------------------------------------
class Unauthorised(Exception):
    """The request lacks the configured bearer token."""


async def authorised(request: Request) -> None:
    """The dependency every route but /healthz has: the configured bearer token, if any."""
    token: str | None = request.app.state.token
    if token is None:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Unauthorised


Auth = Annotated[None, Depends(authorised)]

_SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}


def _item_json(item_id: str, title: str, facts: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in facts.items() if k != "image"}  # no file system paths
    return {
        "id": item_id,
        "title": title,
        "facts": shown,
        "image_url": f"/v1/items/{item_id}/image" if facts.get("has_image") else None,
        "audio_url": f"/v1/items/{item_id}/audio" if facts.get("has_audio") else None,
    }


def _result_json(result: TurnResult) -> dict[str, Any]:
    data = result.as_dict()
    facts = {r.item_id: r.facts for r in result.recommendations}
    for rec in data["recommendations"]:
        item = _item_json(rec["id"], rec["title"], facts.get(rec["id"], {}))
        rec["image_url"], rec["audio_url"] = item["image_url"], item["audio_url"]
    return data


def _session_json(convo: Conversation) -> dict[str, Any]:
    return {
        "user": convo.user_id,
        "messages": [{"role": r, "text": t} for r, t in convo.messages],
        "recommended": convo.recommended,
        "profile": convo.profile.model_dump(),
        "requests": [r.model_dump() for r in convo.requests],
        "feedback": [f.model_dump() for f in convo.feedback.values()],
    }


async def _turn_input(request: Request, max_body: int) -> tuple[TurnRequest, dict[str, Any]]:
    """The message (JSON, or form fields) and the uploads of a turn request."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form(max_files=2, max_fields=10, max_part_size=max_body)
        uploads = {name: form.get(name) for name in ("image", "audio") if form.get(name)}
        try:
            filters = json.loads(str(form.get("filters") or "null"))
            body = TurnRequest(
                message=str(form.get("message") or ""),
                k=int(str(form.get("k") or 3)),
                filters=filters,
            )
        except (ValueError, ValidationError) as exc:
            detail = describe_errors(exc) if isinstance(exc, ValidationError) else str(exc)
            raise InputError(f"invalid form: {detail}") from None
        return body, uploads
    raw = await request.body()
    if len(raw) > max_body:
        raise InputError(f"the request body is over the limit of {max_body:,} bytes")
    try:
        return TurnRequest.model_validate_json(raw or b"{}"), {}
    except ValidationError as exc:
        raise InputError(f"invalid request: {describe_errors(exc)}") from None


async def _stream_turn(
    service: Service,
    user: str,
    message: str,
    k: int,
    filters: Filters | None,
    attached: dict[str, Path],
    cleanup: Callable[[], None],
    pool: ThreadPoolExecutor,
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
            convo = service.sessions.load(user)
            result = service.recommender.respond(
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
            )
            if cancel.is_set():
                put("end", None)
                return
            service.sessions.save(convo)
            data = _result_json(result)
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
            put("error", {"error": exc.message})
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
