"""The HTTP service on the small store (real MiniLM, real Chroma, no LLM), through FastAPI's test
client: the routes, streamed turns, feedback that changes the next turn, media served only from
the catalogue, uploads, and the security rules (token, limits, ids, traversal, JSON errors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from agent.recommender import Recommender
from agent.session import SessionStore
from service.app import Service, create_app
from service.build import check_exposure
from tests.media import png
from tests.small_store import build_small_store
from tools.config import Settings
from tools.errors import ConfigError


@pytest.fixture(scope="module")
def small(prepared_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_small_store(tmp_path_factory.mktemp("service-store"), prepared_models)


def _client(small: Any, tmp_path: Path, **service: Any) -> TestClient:
    settings, store, models = small
    settings = settings.model_copy(
        update={"service": settings.service.model_copy(update=service), "data_dir": tmp_path}
    )
    recommender = Recommender.build(settings, store, models, None)
    app = create_app(Service(settings, recommender, SessionStore(tmp_path), lambda: None))
    return TestClient(app, base_url="http://127.0.0.1")


def _events(response: Any) -> list[tuple[str, Any]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and name is not None:
            events.append((name, json.loads(line.split(":", 1)[1])))
            name = None
    return events


def test_health_and_one_turn_as_json(small: Any, tmp_path: Path) -> None:
    client = _client(small, tmp_path)
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["items"] == 16
    answer = client.post("/v1/recommendations", json={"user": "ann", "message": "a bird", "k": 2})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [r["id"].split("/")[1] for r in data["recommendations"]] == ["birds", "birds"]
    assert {"explanation", "breakdown", "reasons", "image_url"} <= set(data["recommendations"][0])
    filtered = client.post(
        "/v1/recommendations",
        json={"user": "ann", "message": "something", "k": 3, "filters": {"category": "food"}},
    ).json()
    assert all(r["id"].startswith("food/") for r in filtered["recommendations"])
    schema = client.get("/openapi.json")
    assert schema.status_code == 200 and "/v1/recommendations" in schema.json()["paths"]
    assert client.get("/docs").status_code == 404  # the CDN-loading pages are off


def test_a_streamed_turn_and_feedback_that_changes_the_next(small: Any, tmp_path: Path) -> None:
    client = _client(small, tmp_path)
    with client.stream(
        "POST", "/v1/sessions/bob/messages", json={"message": "an animal", "k": 3}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
    names = [e for e, _ in events]
    assert names[:3] == ["understood", "ranked", "intro"] and names[-1] == "done"
    assert any(c["kind"] == "target" for c in events[0][1]["constraints"])
    items = [d for e, d in events if e == "item"]
    assert len(items) == 3 and all(i["explanation"] for i in items)
    assert [i["id"] for i in items] == [i["id"] for i in events[1][1]["items"]]
    liked, disliked = items[0]["id"], items[1]["id"]
    for item_id, kind in ((liked, "like"), (disliked, "dislike")):
        given = client.post("/v1/sessions/bob/feedback", json={"item_id": item_id, "kind": kind})
        assert given.status_code == 200, given.text
    wrong = client.post("/v1/sessions/bob/feedback", json={"item_id": "food/bread", "kind": "like"})
    assert wrong.status_code == 400 and "not recommended" in wrong.json()["error"]
    bad = client.post("/v1/sessions/bob/feedback", json={"item_id": liked, "kind": "rating"})
    assert bad.status_code == 422
    again = client.post(
        "/v1/recommendations", json={"user": "bob", "message": "another animal", "k": 4}
    ).json()
    ids = [r["id"] for r in again["recommendations"]]
    assert disliked not in ids and len(ids) == 4
    assert all("feedback" in r["breakdown"] for r in again["recommendations"])
    session = client.get("/v1/sessions/bob").json()
    assert [f["item_id"] for f in session["feedback"]] == [liked, disliked]
    assert len(session["messages"]) == 4 and session["requests"]
    assert client.delete("/v1/sessions/bob").status_code == 204
    assert client.get("/v1/sessions/bob").json()["messages"] == []


def test_items_and_media_only_from_the_catalogue(small: Any, tmp_path: Path) -> None:
    client = _client(small, tmp_path)
    item = client.get("/v1/items/animals/birds/robin").json()
    assert item["title"] == "Robin" and "image" not in item["facts"]
    picture = client.get(item["image_url"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content.startswith(b"\x89PNG")
    owl = client.get("/v1/items/animals/birds/owl").json()
    sound = client.get(owl["audio_url"])
    assert sound.status_code == 200 and sound.headers["content-type"] == "audio/wav"
    for path in (
        "/v1/items/nothing/here",
        "/v1/items/../../etc/passwd/image",
        "/v1/items/%2e%2e/%2e%2e/etc/passwd",
        "/v1/items/animals/birds/owl/image",  # the owl has no picture
        "/v1/items/animals/birds/robin/audio?index=3",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert set(response.json()) == {"error"}
    # a store whose recorded catalogue folder is elsewhere serves nothing
    settings, store, models = small
    elsewhere = settings.model_copy(update={"data_dir": tmp_path})
    service = Service(
        elsewhere,
        Recommender.build(elsewhere, store, models, None),
        SessionStore(tmp_path),
        lambda: None,
    )
    service.media_roots = lambda: [tmp_path]  # type: ignore[method-assign]
    outside = TestClient(create_app(service), base_url="http://127.0.0.1").get(
        "/v1/items/animals/birds/robin/image"
    )
    assert outside.status_code == 404 and "outside the catalogue" in outside.json()["error"]


def test_uploads_search_by_picture_and_are_bounded(small: Any, tmp_path: Path) -> None:
    client = _client(small, tmp_path, max_upload_bytes=50_000)
    green = png(tmp_path / "g.png", (30, 180, 40, 255)).read_bytes()
    with client.stream(
        "POST",
        "/v1/sessions/cat/messages",
        data={"message": "", "k": "3"},
        files={"image": ("../../evil.png", green, "image/png")},
    ) as response:
        events = _events(response)
    items = {d["id"]: d for e, d in events if e == "item"}
    parrot = items.get("animals/birds/parrot")  # its picture is this very green square
    assert parrot is not None and parrot["breakdown"]["image"] > 0.99, items
    big = client.post(
        "/v1/sessions/cat/messages",
        data={"message": "x"},
        files={"image": ("a.png", b"\x89PNG" + b"0" * 60_000, "image/png")},
    )
    assert big.status_code == 400 and "over the limit" in big.json()["error"]
    script = client.post(
        "/v1/sessions/cat/messages", files={"image": ("a.html", b"<script>", "text/html")}
    )
    assert script.status_code == 400 and "must be one of" in script.json()["error"]


def test_security_token_limits_ids_and_errors(small: Any, tmp_path: Path) -> None:
    client = _client(
        small, tmp_path, token=SecretStr("s3cret-token-0123456789"), max_body_bytes=2_000
    )
    assert client.get("/healthz").status_code == 200  # open
    for method, path in (
        ("get", "/readyz"),
        ("get", "/v1/sessions/ann"),
        ("get", "/v1/items/animals/birds/robin"),
    ):
        denied = getattr(client, method)(path)
        assert denied.status_code == 401 and denied.json() == {
            "error": "a valid `Authorization: Bearer TOKEN` header is required"
        }
    wrong = client.get("/v1/sessions/ann", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    auth = {"Authorization": "Bearer s3cret-token-0123456789"}
    assert client.get("/v1/sessions/ann", headers=auth).status_code == 200
    huge = client.post(
        "/v1/recommendations", headers=auth, json={"user": "ann", "message": "x" * 5_000}
    )
    assert huge.status_code == 413
    for user in ("../etc", "a b", "x" * 65):
        bad = client.get(f"/v1/sessions/{user}", headers=auth)
        assert bad.status_code in {400, 404} and "error" in bad.json()
    invalid = client.post(
        "/v1/recommendations",
        headers=auth,
        content=b"{not json",
    )
    assert invalid.status_code == 422 and "Traceback" not in invalid.text
    unknown = client.post("/v1/recommendations", headers=auth, json={"user": "ann", "evil": 1})
    assert unknown.status_code == 422


def test_exposure_needs_a_token(small: Any) -> None:
    settings: Settings = small[0]
    public = settings.model_copy(
        update={"service": settings.service.model_copy(update={"host": "0.0.0.0"})}
    )
    with pytest.raises(ConfigError, match="without a token"):
        check_exposure(public)
    check_exposure(settings)  # loopback: fine
    for weak in ("", "   ", "t" * 15):
        token = public.service.model_copy(update={"token": SecretStr(weak)})
        with pytest.raises(ConfigError, match=r"service\.token"):
            check_exposure(public.model_copy(update={"service": token}))
    token = public.service.model_copy(update={"token": SecretStr("t" * 16)})
    check_exposure(public.model_copy(update={"service": token}))


def test_the_page_and_its_files_ship_with_the_package(small: Any, tmp_path: Path) -> None:
    client = _client(small, tmp_path, token=SecretStr("t-0123456789abcdef"))
    page = client.get("/")  # the page itself needs no token; its API calls do
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/app.js"' in page.text and "cdn" not in page.text.lower()
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "textContent" in script.text
    assert "innerHTML" not in script.text  # catalogue and model text never parsed as HTML
    assert client.get("/static/style.css").status_code == 200
    outside = client.get("/static/../app.py")  # the client makes it /app.py: not the page's
    assert outside.status_code in {401, 404} and "import" not in outside.text


def test_a_short_load_benchmark(small: Any, tmp_path: Path) -> None:
    """`recagent bench serve --no-llm` against its own `recagent serve` process on the small
    store: every level answers every turn and loses no session."""
    from tests.conftest import recagent

    settings: Settings = small[0]
    env = {
        "RECAGENT_CACHE_DIR": str(settings.cache_dir),
        "RECAGENT_DATA_DIR": str(tmp_path),
        "RECAGENT_STORE_DIR": str(settings.resolved_store_dir),
    }
    out = tmp_path / "serve.json"
    args = ("bench", "serve", "--no-llm", "--levels", "1,4", "--turns", "2", "--out", str(out))
    result = recagent(*args, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(out.read_text())
    for level in ("1", "4"):
        run = figures["runs"]["retrieval only"][level]
        assert run["turns"] == int(level) * 2 and run["errors"] == 0 and run["lost_sessions"] == 0
        assert run["first_event_p95_s"] is not None and run["turns_per_s"] > 0
    assert figures["bars"]["no_errors_at_most_sessions"] is True


def test_svg_pictures_are_served_as_their_index_time_render(
    prepared_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SVG is rendered once, at index time, and served as that PNG without rendering it
    again; once the file changes it is not served until the catalogue is indexed again."""
    from indexing.loaders import load_catalogue, write_jsonl
    from indexing.pipeline import Indexer
    from indexing.schema import Item
    from indexing.store import open_store
    from tools.config import load_settings
    from tools.renders import RenderCache
    from tools.svg import RendererPool

    folder = tmp_path / "catalogue"
    folder.mkdir()
    picture = folder / "kite.svg"
    picture.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10">'
        '<rect width="20" height="10" fill="#ff0000"/></svg>'
    )
    rows = folder / "items.jsonl"
    write_jsonl([Item(id="toys/kite", title="Kite", description="A kite.", image=picture)], rows)
    settings = load_settings(
        cache_dir=prepared_models, data_dir=tmp_path / "data", store_dir=tmp_path / "store"
    )
    store, models = open_store(settings)
    renders = RenderCache(settings.renders_dir)
    assert not Indexer(store, models, settings.index, renders).run(load_catalogue(rows)).failed
    kept = list(renders.folder.glob("*.png"))
    assert len(kept) == 1

    def no_rendering(*_: Any, **__: Any) -> bytes:
        raise AssertionError("the served SVG was rendered again")

    monkeypatch.setattr(RendererPool, "render", no_rendering)
    service = Service(
        settings,
        Recommender.build(settings, store, models, None),
        SessionStore(tmp_path),
        lambda: None,
    )
    client = TestClient(create_app(service), base_url="http://127.0.0.1")
    served = client.get("/v1/items/toys/kite/image")
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == kept[0].read_bytes()
    picture.write_text(picture.read_text().replace("#ff0000", "#0000ff"))
    changed = client.get("/v1/items/toys/kite/image")
    assert changed.status_code == 404 and "changed since" in changed.json()["error"]
