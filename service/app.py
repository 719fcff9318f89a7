"""The recommender as an HTTP service: the same turn the command line runs, over FastAPI.

Routes (all but ``/healthz`` and the page's files need ``Authorization: Bearer TOKEN`` when a
token is configured; :mod:`service.auth` says whose sessions a token opens):

* ``POST /v1/recommendations``: one turn, JSON in, the JSON of ``recommend --json`` out;
* ``POST /v1/sessions/{user}/messages``: one turn as server-sent events (``understood``: the
  request's constraints, then ``ranked``, ``intro`` and one ``item`` per recommendation with
  its explanation, then ``done``); JSON, or a
  multipart form with an ``image`` to search by and/or an ``audio`` voice message;
* ``POST /v1/sessions/{user}/feedback``: like, dislike, click or a 1-5 rating on a shown item;
* ``GET`` / ``DELETE /v1/sessions/{user}``: the session (messages, profile, constraints) / forget;
* ``GET /v1/items/{id}``, ``/v1/items/{id}/image``, ``/v1/items/{id}/audio``;
* ``/`` the chat page (static HTML, CSS and JavaScript shipped with the package);
* ``/healthz`` (the process is up), ``/readyz`` (store and session database readable, LLM
  reachable or degraded); the OpenAPI schema at ``/openapi.json`` (no interactive docs page: it
  would load scripts from a CDN into the page's origin).

Every request passes :class:`service.guard.Guard` first (Host, Origin, body limits by route,
body deadline, security headers). Every error is JSON ``{"error": message}`` in the request's
terms: server paths and in-memory object names are taken out (the log keeps the details).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.conversation import Conversation
from agent.feedback import Feedback
from agent.recommender import Recommender
from agent.session import SessionStore, check_user, session_key
from service import media
from service.auth import Tokens, Unauthorised
from service.guard import SECURITY_HEADERS, SPACE, UNAUTHORISED, BodyTimeout, Guard, late
from service.schemas import Problem, RecommendRequest
from service.turns import item_json, read_turn, result_json, stream_turn
from service.uploads import save_uploads
from tools.config import Settings
from tools.errors import InputError, LLMUnavailable, RecagentError, StoreError
from tools.renders import RenderCache
from tools.text import shorten, without_object_names

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_ERROR_CHARS = 500
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

    def private_folders(self) -> list[str]:
        """Folders of this machine that answers must not name: temporary files, the data,
        store and model folders and the catalogues' folders."""
        folders = [
            tempfile.gettempdir(),
            self.settings.data_dir,
            self.settings.resolved_store_dir,
            self.settings.cache_dir,
            *self.media_roots(),
        ]
        named = {str(Path(f)) for f in folders} | {str(Path(f).resolve()) for f in folders}
        return sorted((f for f in named if len(f) > 1), key=len, reverse=True)


def public_text(text: str, folders: list[str]) -> str:
    """``text`` fit for a client: a path inside ``folders`` becomes its file name, an in-memory
    object's name goes, and the length is bounded."""
    text = without_object_names(text)
    for folder in folders:
        text = re.sub(
            re.escape(folder) + r"(?![^/\s'\":,)])(?:/[^\s'\"]*)?",
            lambda m: Path(m.group()).name,
            text,
        )
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _status(exc: RecagentError) -> int:
    return next((status for kind, status in STATUS.items() if isinstance(exc, kind)), 500)


def create_app(service: Service) -> FastAPI:
    """The FastAPI application for ``service``."""
    cfg = service.settings.service
    tokens = Tokens(cfg)
    private = service.private_folders()
    renders = RenderCache(service.settings.renders_dir)
    index = service.settings.index
    limits = media.Limits(index.max_image_bytes, index.max_image_pixels, index.max_audio_bytes)

    def public(text: str) -> str:
        return public_text(text, private)

    def problem(status: int, message: str) -> JSONResponse:
        if status >= 500:
            log.warning("answered %d: %s", status, message)
        return JSONResponse(  # security headers too: a 500 is answered outside the Guard
            Problem(error=public(message)).model_dump(), status, headers=SECURITY_HEADERS
        )

    app = FastAPI(
        title="recagent",
        description="Conversational multimodal recommendations with explanations.",
        version="1",
        docs_url=None,  # the interactive pages load scripts from a CDN: not in our origin
        redoc_url=None,
        openapi_url=None,  # served below, behind the token
    )
    if cfg.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=cfg.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    app.add_middleware(Guard, cfg=cfg, tokens=tokens)  # added last: the outermost layer

    @app.exception_handler(RecagentError)
    async def domain_error(_: Request, exc: RecagentError) -> JSONResponse:
        return problem(_status(exc), exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return problem(422, f"invalid request: {problems}")

    @app.exception_handler(BodyTimeout)
    async def slow_body(_: Request, __: BodyTimeout) -> JSONResponse:
        return problem(408, late(cfg.read_timeout_s))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem(500, "internal error (the server log has the details)")

    # Turns wait on the LLM most of the time: one thread each, not the event loop's small
    # default pool, so a new turn starts (and streams its first event) while others wait.
    turns = ThreadPoolExecutor(TURN_THREADS, thread_name_prefix="recagent-turn")
    app.state.turns = turns

    @app.exception_handler(Unauthorised)
    async def unauthorised(_: Request, __: Unauthorised) -> JSONResponse:
        response = problem(401, UNAUTHORISED)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    # -- the page (its security headers come from the Guard, like every answer's) -------------
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Space) -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
        return app.openapi_schema

    # -- health -------------------------------------------------------------------------------
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(_: Space) -> JSONResponse:
        try:
            items, pictures = await run_in_threadpool(service.recommender.store.count)
        except Exception as exc:  # the store itself: not ready at all
            log.warning("not ready: the store: %s", exc)
            return JSONResponse({"status": "unready", "reason": "the store cannot be read"}, 503)
        try:  # what a turn needs besides the store: its session database
            await run_in_threadpool(service.sessions.check)
        except Exception as exc:
            log.warning("not ready: the session database: %s", exc)
            reason = "the session database cannot be read (the server log has the details)"
            return JSONResponse({"status": "unready", "reason": reason}, 503)
        llm = await run_in_threadpool(service.llm_ready)
        body: dict[str, Any] = {"status": "ready", "items": items, "pictures": pictures}
        if llm is not None:
            body |= {"status": "degraded", "reason": llm}
        return JSONResponse(body)

    # -- turns --------------------------------------------------------------------------------
    @app.post("/v1/recommendations")
    async def recommend(body: RecommendRequest, space: Space) -> dict[str, Any]:
        key = session_key(space, check_user(body.user))
        k = min(body.k, cfg.max_k)
        filters = body.filters.filters() if body.filters else None

        def turn() -> dict[str, Any]:
            convo = service.sessions.load(key)
            result = service.recommender.respond(convo, body.message, k, filters=filters)
            service.sessions.save(convo)
            return result_json(result, public)

        return await run_in_threadpool(turn)

    @app.post("/v1/sessions/{user}/messages")
    async def message(user: str, request: Request, space: Space) -> EventSourceResponse:
        key = session_key(space, check_user(user))
        body, uploads = await read_turn(request, cfg.max_body_bytes)
        k = min(body.k, cfg.max_k)
        filters = body.filters.filters() if body.filters else None
        folder, attached = await run_in_threadpool(
            save_uploads, uploads, cfg.max_upload_bytes, cfg.max_svg_bytes
        )
        events = stream_turn(
            service.sessions,
            service.recommender,
            key,
            body.message,
            k,
            filters,
            attached,
            folder.cleanup,
            turns,
            public,
        )
        return EventSourceResponse(events, ping=15)

    @app.post("/v1/sessions/{user}/feedback")
    async def feedback(user: str, body: Feedback, space: Space) -> dict[str, Any]:
        key = session_key(space, check_user(user))

        def record() -> dict[str, Any]:
            convo = service.sessions.load(key)
            service.recommender.record_feedback(convo, body)
            service.sessions.save(convo)
            return {"recorded": body.model_dump(), "profile": convo.profile.model_dump()}

        return await run_in_threadpool(record)

    @app.get("/v1/sessions/{user}")
    async def session(user: str, space: Space) -> dict[str, Any]:
        key = session_key(space, check_user(user))
        convo = await run_in_threadpool(service.sessions.load, key)
        return _session_json(convo, user)

    @app.delete("/v1/sessions/{user}", status_code=204)
    async def forget(user: str, space: Space) -> Response:
        await run_in_threadpool(service.sessions.reset, session_key(space, check_user(user)))
        return Response(status_code=204)

    # -- items --------------------------------------------------------------------------------
    @app.get("/v1/items/{item_id:path}/image")
    async def item_image(item_id: str, _: Space) -> Response:
        def read() -> tuple[bytes, str]:
            image, _audio, digests = service.recommender.store.media_files(item_id)
            if image is None:
                raise media.NotServed(f"item {_shown(item_id)} has no picture")
            return media.picture(image, service.media_roots(), digests, renders, limits)

        data, kind = await run_in_threadpool(read)
        return Response(data, media_type=kind, headers=_SAFE_HEADERS)

    @app.get("/v1/items/{item_id:path}/audio")
    async def item_audio(item_id: str, _: Space, index: int = 0) -> Response:
        def read() -> tuple[bytes, str]:
            _image, audio, digests = service.recommender.store.media_files(item_id)
            sounds = media.effect_first(audio)
            if not 0 <= index < len(sounds):
                raise media.NotServed(f"item {_shown(item_id)} has no sound number {index}")
            chosen = sounds[index]
            return media.sound(chosen, service.media_roots(), digests, limits)

        data, kind = await run_in_threadpool(read)
        return Response(data, media_type=kind, headers=_SAFE_HEADERS)

    @app.get("/v1/items/{item_id:path}")
    async def item(item_id: str, _: Space) -> dict[str, Any]:
        found = await run_in_threadpool(service.recommender.store.items, [item_id])
        if item_id not in found:
            raise media.NotServed(f"no item {_shown(item_id)} in the store")
        return item_json(found[item_id].id, found[item_id].title, found[item_id].facts)

    return app


# -- helpers ------------------------------------------------------------------------------------
async def authorised(request: Request) -> str:
    """The dependency every route but /healthz and the page has: the session space the
    request's token opens (see :mod:`service.auth`), as the Guard found it; no space, no
    entry."""
    space = getattr(request.state, SPACE, None)
    if space is None:
        raise Unauthorised
    return str(space)


Space = Annotated[str, Depends(authorised)]


def _shown(item_id: str) -> str:
    """An item id as an error may quote it: bounded."""
    return repr(shorten(item_id))


_SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}


def _session_json(convo: Conversation, user: str) -> dict[str, Any]:
    return {
        "user": user,
        "messages": [{"role": r, "text": t} for r, t in convo.messages],
        "recommended": convo.recommended,
        "profile": convo.profile.model_dump(),
        "requests": [r.model_dump() for r in convo.requests],
        "feedback": [f.model_dump() for f in convo.feedback.values()],
    }
