"""Attacks on the HTTP service, played against real `recagent serve` processes on the small store.

Each numbered test is one attack from the service's hardening specification: decompression and
markup bombs in uploaded SVGs, weak tokens, lying WAV headers, `<use>` bombs, missing security
headers, DNS rebinding and cross-site requests, sessions shared between clients, body limits that
follow the declared content type, the interactive docs, deeply nested filters, error texts that
leak server paths, a file part where a text field belongs, hard-linked catalogue media, slow
clients and the case of the `Bearer` scheme. Two server processes are started once per module:
the *main* server (one shared token) and the *owners* server (per-client tokens, a short read
timeout and an extra allowed host, on a store of its own that test 13 damages).
"""

from __future__ import annotations

import gzip
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.media import corrupt_png, noise_wav, png
from tests.servers import answers_http, free_port, wait_ready
from tests.small_store import build_small_store

RECAGENT = Path(sys.executable).parent / "recagent"
MAIN_TOKEN = "main-server-token-0123456789"
ANN_TOKEN = "ann-token-0123456789abcdef"
BOB_TOKEN = "bob-token-0123456789abcdef"
READY_WITHIN_S = 90.0
UPLOAD_TIMEOUT_S = 15.0


# --- server processes --------------------------------------------------------------------------


@dataclass
class Server:
    """One `recagent serve` process and the folders it was given."""

    name: str
    folder: Path
    port: int
    tmpdir: Path
    data_dir: Path
    catalogue: Path
    log: Path
    token: str
    process: subprocess.Popen[bytes] | None = None
    failure: str | None = None
    _checked: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, token: str | None = None, timeout: float = UPLOAD_TIMEOUT_S) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def require(self) -> Server:
        """Wait (once) until /healthz answers; a server that never does fails the test."""
        if not self._checked:
            self._checked = True
            self.failure = _wait_ready(self)
        if self.failure is not None:
            pytest.fail(f"the {self.name} server did not start: {self.failure}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECAGENT_")}
    env.update(extra)
    return env


def _prepare(name: str, folder: Path, cache: Path, config: str, token: str) -> Server:
    """Build a small store under ``folder`` and describe a server for it (not started yet)."""
    build_small_store(folder, cache)  # the store and models it returns are not kept
    for sub in ("tmp", "data"):
        (folder / sub).mkdir()
    # no LLM runs beside these servers (--no-serve): their turns read by rule alone
    (folder / "service.toml").write_text(config + "\n[turn]\nreading_llm = false\n")
    return Server(
        name=name,
        folder=folder,
        port=free_port(),
        tmpdir=folder / "tmp",
        data_dir=folder / "data",
        catalogue=folder / "catalogue",
        log=folder / "server.log",
        token=token,
    )


def _launch(server: Server, cache: Path) -> None:
    args = [
        str(RECAGENT),
        "serve",
        "--store",
        str(server.folder / "store"),
        "--port",
        str(server.port),
        "--no-serve",
        "--config",
        str(server.folder / "service.toml"),
    ]
    env = _clean_env(
        RECAGENT_DATA_DIR=str(server.data_dir),
        RECAGENT_CACHE_DIR=str(cache),
        TMPDIR=str(server.tmpdir),
    )
    with server.log.open("wb") as log:
        server.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=server.folder
        )


def _wait_ready(server: Server) -> str | None:
    assert server.process is not None
    ready = answers_http(f"{server.url}/healthz")
    why = wait_ready(ready, server.process, READY_WITHIN_S)
    return None if why is None else f"{why} on /healthz: {server.output()[-3000:]}"


@pytest.fixture(scope="module")
def servers(
    prepared_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    """Both server processes, started together (they load their models in parallel)."""
    main = _prepare(
        "main",
        tmp_path_factory.mktemp("attacks-main"),
        prepared_models,
        f'[service]\ntoken = "{MAIN_TOKEN}"\n',
        MAIN_TOKEN,
    )
    owners = _prepare(
        "owners",
        tmp_path_factory.mktemp("attacks-owners"),
        prepared_models,
        '[service]\nread_timeout_s = 2\nallowed_hosts = ["shop.example"]\n\n'
        f'[service.tokens]\nann = "{ANN_TOKEN}"\nbob = "{BOB_TOKEN}"\n',
        ANN_TOKEN,
    )
    started = {"main": main, "owners": owners}
    try:
        for server in started.values():
            _launch(server, prepared_models)
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def main(servers: dict[str, Server]) -> Server:
    return servers["main"].require()


@pytest.fixture
def owners(servers: dict[str, Server]) -> Server:
    return servers["owners"].require()


# --- turns and their outcome -------------------------------------------------------------------


def parse_events(text: str) -> list[tuple[str, Any]]:
    """Server-sent events as (name, decoded data) pairs."""
    events: list[tuple[str, Any]] = []
    name: str | None = None
    data: list[str] = []

    def flush() -> None:
        nonlocal name, data
        if name is not None and data:
            raw = "\n".join(data)
            try:
                events.append((name, json.loads(raw)))
            except json.JSONDecodeError:
                events.append((name, raw))
        name, data = None, []

    for line in text.splitlines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].strip())
        elif not line.strip():
            flush()
    flush()
    return events


@dataclass
class Outcome:
    """A finished request: its status, body, duration and (for streamed turns) events."""

    status: int
    text: str
    seconds: float
    events: list[tuple[str, Any]]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    @property
    def complaints(self) -> str:
        """The error or notice texts, lower-cased: the JSON error of a refused request, or the
        `error` events and the `done` event's notices of a streamed one."""
        if self.status >= 400:
            return self.text.lower()
        parts = [json.dumps(data) for name, data in self.events if name == "error"]
        for name, data in self.events:
            if name == "done" and isinstance(data, dict) and data.get("notices"):
                parts.append(json.dumps(data["notices"]))
        return "\n".join(parts).lower()


def request(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Outcome:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)
    seconds = time.monotonic() - started
    streamed = response.headers.get("content-type", "").startswith("text/event-stream")
    events = parse_events(response.text) if streamed else []
    return Outcome(response.status_code, response.text, seconds, events)


def upload(server: Server, user: str, message: str = "a bird", **files: Any) -> Outcome:
    """A streamed turn as a multipart form with these file parts."""
    with server.client() as client:
        return request(
            client,
            "POST",
            f"/v1/sessions/{user}/messages",
            data={"message": message, "k": "2"},
            files=files,
        )


def assert_no_crash(outcome: Outcome) -> None:
    assert outcome.status != 500 and outcome.status < 500, (outcome.status, outcome.text[:500])
    assert "internal error" not in outcome.text.lower(), outcome.text[:500]


def assert_refused(outcome: Outcome, within: float, *words: str) -> None:
    """Refused without a crash, in time: 400/413 before streaming, or a streamed turn whose
    `error` event or `done` notices say why (mentioning one of ``words`` when given)."""
    assert_no_crash(outcome)
    assert outcome.seconds < within, f"took {outcome.seconds:.1f} s (limit {within} s)"
    assert outcome.status in {200, 400, 413}, (outcome.status, outcome.text[:500])
    if outcome.status == 200:
        assert "done" in outcome.names or "error" in outcome.names, outcome.names
    complaints = outcome.complaints
    assert complaints, f"accepted without a notice: {outcome.text[:800]}"
    if words:
        assert any(word in complaints for word in words), (words, complaints[:800])


def assert_normal_turn(outcome: Outcome) -> None:
    assert outcome.status == 200, (outcome.status, outcome.text[:500])
    assert outcome.names and outcome.names[-1] == "done", outcome.text[:800]
    assert "item" in outcome.names, outcome.names


def during(
    server: Server, action: Callable[[], Outcome], probe: str, wait_s: float
) -> tuple[Outcome | BaseException | None, list[float]]:
    """Run ``action`` in a thread and time GET ``probe`` repeatedly until it finishes (or
    ``wait_s`` passes): the action's outcome (None if unfinished) and the probe latencies."""
    result: list[Outcome | BaseException] = []

    def run() -> None:
        try:
            result.append(action())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    latencies: list[float] = []
    started = time.monotonic()
    thread.start()
    with server.client(timeout=3.0) as client:
        time.sleep(0.1)
        while True:
            t0 = time.monotonic()
            try:
                answer = client.get(probe)
                latencies.append(time.monotonic() - t0 if answer.status_code == 200 else 99.0)
            except httpx.HTTPError:
                latencies.append(time.monotonic() - t0 + 90.0)
            if not thread.is_alive() or time.monotonic() - started > wait_s:
                break
            time.sleep(0.05)
    thread.join(timeout=max(0.0, wait_s - (time.monotonic() - started)))
    return (result[0] if result else None), latencies


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            figures[key] = int(value.split()[0])
    return figures


def wav_header(rate: int, channels: int, samples: bytes) -> bytes:
    """A PCM WAV whose header claims this rate and channel count (nothing checks they fit)."""
    block = channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block, 16)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(samples))
        + samples
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def use_bomb(levels: int = 5, fan_out: int = 10, blurred: bool = False) -> bytes:
    """An SVG whose nested `<use>` references expand to ``fan_out ** levels`` shapes (each
    blurred over the whole picture when ``blurred``: a thousand of them took resvg 36 s)."""
    leaf = (
        '<filter id="f"><feGaussianBlur stdDeviation="20"/></filter>'
        '<rect id="l0" width="100" height="100" filter="url(#f)"/>'
        if blurred
        else '<g id="l0"><rect width="1" height="1" fill="red"/></g>'
    )
    groups = [leaf]
    for level in range(1, levels + 1):
        uses = "".join(f'<use xlink:href="#l{level - 1}"/>' for _ in range(fan_out))
        groups.append(f'<g id="l{level}">{uses}</g>')
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'width="64" height="64"><defs>'
        + "".join(groups)
        + f'</defs><use xlink:href="#l{levels}"/></svg>'
    ).encode()


def raw_exchange(port: int, payload: bytes, wait_s: float) -> tuple[bytes, bool, float]:
    """Send ``payload`` on a fresh connection and read until the server closes it or
    ``wait_s`` passes: (what came back, whether it was closed, seconds)."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(payload)
        while time.monotonic() - started < wait_s:
            ready, _, _ = select.select([sock], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                return received, True, time.monotonic() - started
            if not chunk:
                return received, True, time.monotonic() - started
            received += chunk
    return received, False, time.monotonic() - started


def form_fields(**fields: str) -> tuple[bytes, str]:
    """A multipart/form-data body of text fields only, and its content type."""
    boundary = "attack-boundary-7d1f"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    body = "".join(parts) + f"--{boundary}--\r\n"
    return body.encode(), f"multipart/form-data; boundary={boundary}"


def first_status(raw: bytes) -> int | None:
    line = raw.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else None


# --- positive controls -------------------------------------------------------------------------


def test_00_main_server_answers_normal_turns(main: Server, tmp_path: Path) -> None:
    """Control: on the main server a JSON turn, a streamed turn and a PNG upload work."""
    with main.client() as client:
        answer = client.post(
            "/v1/recommendations", json={"user": "ctl", "message": "a bird", "k": 2}
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["recommendations"]) == 2
        assert_normal_turn(
            request(client, "POST", "/v1/sessions/ctl/messages", json={"message": "a bird"})
        )
    green = png(tmp_path / "green.png", (30, 180, 40, 255)).read_bytes()
    outcome = upload(main, "ctl", "", image=("green.png", green, "image/png"))
    assert_normal_turn(outcome)


def test_00_owners_server_answers_normal_turns(owners: Server, tmp_path: Path) -> None:
    """Control: on the per-client-token server a JSON turn and a PNG upload work."""
    with owners.client() as client:
        answer = client.post(
            "/v1/recommendations", json={"user": "ctl", "message": "a bird", "k": 2}
        )
        assert answer.status_code == 200, answer.text
    red = png(tmp_path / "red.png", (200, 40, 30, 255)).read_bytes()
    assert_normal_turn(upload(owners, "ctl", "", image=("red.png", red, "image/png")))


# --- attacks on the main server ----------------------------------------------------------------


def test_05_security_headers_on_the_page_and_its_files(main: Server) -> None:
    """Clickjacking and MIME sniffing: the page and its files forbid framing and sniffing."""
    with main.client() as client:
        for path in ("/", "/static/index.html", "/static/app.js", "/static/style.css"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            policy = response.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in policy, (path, policy)
            assert response.headers.get("x-content-type-options", "").lower() == "nosniff", path


def test_06_foreign_host_and_cross_site_origin_are_refused(
    main: Server, servers: dict[str, Server]
) -> None:
    """DNS rebinding (a foreign Host) and cross-site requests (a foreign Origin on a POST or
    DELETE) are refused; loopback hosts, the page's own origin and no Origin work, and
    `service.allowed_hosts` lets a named host in."""
    port = main.port
    with main.client() as client:
        for path in ("/v1/sessions/demo", "/"):
            rebound = client.get(path, headers={"Host": "rebind.evil.example"})
            assert rebound.status_code == 400, (path, rebound.status_code, rebound.text[:300])
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            assert client.get("/v1/sessions/demo", headers={"Host": host}).status_code == 200

        evil = {"Origin": "http://evil.example"}
        forged = client.post("/v1/sessions/csrf/messages", json={"message": "a cow"}, headers=evil)
        assert forged.status_code == 403, (forged.status_code, forged.text[:300])
        assert client.get("/v1/sessions/csrf").json()["messages"] == []

        own = {"Origin": f"http://127.0.0.1:{port}"}
        assert_normal_turn(
            request(client, "POST", "/v1/sessions/csrf/messages", json={"message": "a cow"})
        )
        assert_normal_turn(
            request(
                client, "POST", "/v1/sessions/csrf/messages", json={"message": "a pig"}, headers=own
            )
        )
        kept = client.get("/v1/sessions/csrf").json()["messages"]
        assert len(kept) == 4, kept
        deleted = client.delete("/v1/sessions/csrf", headers=evil)
        assert deleted.status_code == 403, deleted.status_code
        assert client.get("/v1/sessions/csrf").json()["messages"] == kept
        mine = client.delete("/v1/sessions/csrf", headers=own)  # no body, no Content-Length
        assert mine.status_code in {200, 204}, (mine.status_code, mine.text[:300])
        assert client.get("/v1/sessions/csrf").json()["messages"] == []

    owners = servers["owners"].require()
    with owners.client() as client:
        shop = client.get("/v1/sessions/demo", headers={"Host": "shop.example"})
        assert shop.status_code == 200, (shop.status_code, shop.text[:300])
        other = client.get("/v1/sessions/demo", headers={"Host": "rebind.evil.example"})
        assert other.status_code == 400, other.status_code


@pytest.mark.parametrize("declared", [40_000_000, 5_000_000])
def test_08_json_route_body_limit_ignores_a_multipart_content_type(
    main: Server, declared: int
) -> None:
    """Body-limit confusion: a JSON route declaring a multipart body of 40 MB (or 5 MB: over the
    JSON limit, under the upload limit) is answered 413 before any body is sent."""
    head = (
        "POST /v1/recommendations HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{main.port}\r\n"
        f"Authorization: Bearer {main.token}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    received, _, seconds = raw_exchange(main.port, head.encode(), wait_s=2.0)
    assert first_status(received) == 413, (received[:300], f"{seconds:.1f} s")


def test_09_interactive_docs_are_off_and_the_schema_needs_the_token(main: Server) -> None:
    """CDN scripts and an open schema: with a token set /docs and /redoc are gone (404 with
    the token; 401 without it, like any route but the page), /openapi.json needs the token,
    and no response references cdn.jsdelivr.net."""
    bodies: list[str] = []
    with main.client() as client, httpx.Client(base_url=main.url, timeout=10) as anonymous:
        for path in ("/docs", "/redoc"):
            for who in (client, anonymous):
                response = who.get(path)
                bodies.append(response.text)
                expected = 404 if who is client else 401
                assert response.status_code == expected, (path, response.status_code)
        closed = anonymous.get("/openapi.json")
        assert closed.status_code == 401, closed.status_code
        schema = client.get("/openapi.json")
        assert schema.status_code == 200 and "paths" in schema.json()
        bodies += [closed.text, schema.text]
        for path in ("/", "/static/index.html", "/static/app.js", "/docs/oauth2-redirect"):
            bodies.append(client.get(path).text)
    assert not [body[:200] for body in bodies if "cdn.jsdelivr.net" in body]


def test_10_deeply_nested_filters_answer_400(main: Server) -> None:
    """Recursion bomb: a multipart `filters` field of 100,000 `[` answers 400, not 500."""
    body, content_type = form_fields(message="a bird", k="2", filters="[" * 100_000)
    with main.client() as client:
        outcome = request(
            client,
            "POST",
            "/v1/sessions/nest/messages",
            content=body,
            headers={"Content-Type": content_type},
        )
    assert_no_crash(outcome)
    assert outcome.status == 400, (outcome.status, outcome.text[:300])
    assert "error" in json.loads(outcome.text)


def test_12_message_sent_as_a_file_part_answers_400(main: Server) -> None:
    """Type confusion: `message` sent as a file part (with a filename) answers 400."""
    with main.client() as client:
        outcome = request(
            client,
            "POST",
            "/v1/sessions/filemsg/messages",
            data={"k": "2"},
            files={"message": ("message.txt", b"a bird", "text/plain")},
        )
    assert_no_crash(outcome)
    assert outcome.status == 400, (outcome.status, outcome.text[:300])


def test_15_the_bearer_scheme_is_case_insensitive(main: Server) -> None:
    """Scheme spelling: `bearer TOKEN` and `BEARER TOKEN` are accepted like `Bearer TOKEN`."""
    with httpx.Client(base_url=main.url, timeout=10) as client:
        for scheme in ("Bearer", "bearer", "BEARER"):
            answer = client.get(
                "/v1/sessions/demo", headers={"Authorization": f"{scheme} {main.token}"}
            )
            assert answer.status_code == 200, (scheme, answer.status_code)


def test_02_weak_tokens_stop_an_exposed_server(
    servers: dict[str, Server], prepared_models: Path, tmp_path: Path
) -> None:
    """Weak credentials: `serve --host 0.0.0.0` with an empty, blank or 15-character token (from
    the environment or TOML), or a short per-client token, exits non-zero without serving and
    names the setting."""
    store = servers["main"].folder / "store"
    cases: list[tuple[str, dict[str, str], str | None, str]] = [
        ("env empty", {"RECAGENT_SERVICE__TOKEN": ""}, None, "service.token"),
        ("env blank", {"RECAGENT_SERVICE__TOKEN": "   "}, None, "service.token"),
        ("env 15 chars", {"RECAGENT_SERVICE__TOKEN": "a" * 15}, None, "service.token"),
        ("toml empty", {}, '[service]\ntoken = ""\n', "service.token"),
        ("client 15 chars", {}, f'[service.tokens]\nann = "{"b" * 15}"\n', "service.tokens"),
    ]
    running: list[tuple[str, str, subprocess.Popen[str], Path]] = []
    try:
        for index, (name, extra, config, setting) in enumerate(cases):
            folder = tmp_path / f"case{index}"
            folder.mkdir()
            args = [str(RECAGENT), "serve", "--host", "0.0.0.0", "--port", str(free_port())]
            args += ["--no-serve", "--store", str(store)]
            if config is not None:
                (folder / "c.toml").write_text(config)
                args += ["--config", str(folder / "c.toml")]
            env = _clean_env(
                RECAGENT_DATA_DIR=str(folder), RECAGENT_CACHE_DIR=str(prepared_models), **extra
            )
            log = folder / "out.log"
            with log.open("w") as out:
                process = subprocess.Popen(
                    args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder, text=True
                )
            running.append((name, setting, process, log))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name, _, process, log in running:
                if process.poll() is None and "Uvicorn running" in log.read_text():
                    pytest.fail(f"{name}: serves: {log.read_text()[-500:]}")
            if all(process.poll() is not None for _, _, process, _ in running):
                break
            time.sleep(0.2)
        for name, setting, process, log in running:
            output = log.read_text()
            assert process.poll() is not None, f"{name}: still running after 60 s: {output[-500:]}"
            assert process.returncode != 0, (name, output[-500:])
            assert setting in output, (name, output[-500:])
            assert "Uvicorn running" not in output, name
    finally:
        for _, _, process, _ in running:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


# --- attacks on the owners server --------------------------------------------------------------


def test_07_a_session_belongs_to_the_client_that_made_it(owners: Server) -> None:
    """Session hijack: with per-client tokens, bob cannot read or delete ann's session `demo`;
    each sees their own, and no token or an unknown one gets 401."""
    with owners.client(ANN_TOKEN) as ann, owners.client(BOB_TOKEN) as bob:
        assert_normal_turn(
            request(ann, "POST", "/v1/sessions/demo/messages", json={"message": "a bird", "k": 2})
        )
        mine = ann.get("/v1/sessions/demo").json()["messages"]
        assert len(mine) == 2, mine

        seen = bob.get("/v1/sessions/demo")
        assert seen.status_code in {200, 404}, seen.status_code
        if seen.status_code == 200:
            assert seen.json()["messages"] == [], "bob reads ann's session"
        forgotten = bob.delete("/v1/sessions/demo")  # a DELETE carries no body or length
        assert forgotten.status_code in {200, 204, 403, 404}, forgotten.status_code
        assert ann.get("/v1/sessions/demo").json()["messages"] == mine, "bob deleted ann's"

        assert_normal_turn(
            request(bob, "POST", "/v1/sessions/demo/messages", json={"message": "a car", "k": 2})
        )
        bobs = bob.get("/v1/sessions/demo").json()["messages"]
        assert len(bobs) == 2 and bobs != mine, bobs
        assert ann.get("/v1/sessions/demo").json()["messages"] == mine
        assert ann.delete("/v1/sessions/demo").status_code in {200, 204}
        assert ann.get("/v1/sessions/demo").json()["messages"] == []
        assert bob.get("/v1/sessions/demo").json()["messages"] == bobs

    with httpx.Client(base_url=owners.url, timeout=10) as anonymous:
        assert anonymous.get("/v1/sessions/demo").status_code == 401
        unknown = {"Authorization": "Bearer not-a-known-token-0123456789"}
        assert anonymous.get("/v1/sessions/demo", headers=unknown).status_code == 401
        assert (
            anonymous.post(
                "/v1/sessions/demo/messages", json={"message": "x"}, headers=unknown
            ).status_code
            == 401
        )


def test_13_a_hard_linked_catalogue_picture_is_not_served(owners: Server, tmp_path: Path) -> None:
    """Hard-link swap: a catalogue picture replaced by a hard link to a file outside the
    catalogue is not served (an error status, never the file's content)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET credentials that live outside the catalogue\n")
    picture = owners.catalogue / "media" / "animals_birds_robin.png"
    assert picture.is_file(), sorted(p.name for p in picture.parent.iterdir())
    os.unlink(picture)
    os.link(secret, picture)
    with owners.client() as client:
        response = client.get("/v1/items/animals/birds/robin/image")
    assert b"SECRET" not in response.content
    assert response.status_code in {404, 409, 410}, response.status_code


def test_14_slow_clients_are_cut_off(owners: Server) -> None:
    """Slowloris: a connection stuck in its headers, and one that sends 10 of 1,000 promised
    body bytes, are closed (or answered 408) within 8 s when `read_timeout_s = 2`."""
    host = f"Host: 127.0.0.1:{owners.port}\r\n"
    partial_headers = f"POST /v1/recommendations HTTP/1.1\r\n{host}".encode()
    partial_body = (
        f"POST /v1/recommendations HTTP/1.1\r\n{host}"
        f"Authorization: Bearer {owners.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        '{"user": "a'
    ).encode()
    results: dict[str, tuple[bytes, bool, float]] = {}

    def play(name: str, payload: bytes) -> None:
        results[name] = raw_exchange(owners.port, payload, wait_s=8.0)

    threads = [
        threading.Thread(target=play, args=("headers", partial_headers)),
        threading.Thread(target=play, args=("body", partial_body)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    for name, (received, closed, seconds) in results.items():
        assert closed or first_status(received) == 408, (name, received[:200], f"{seconds:.1f} s")
        assert seconds < 8.0, (name, seconds)
    assert len(results) == 2


def test_14_a_trickled_body_and_an_anonymous_body_are_cut_off(owners: Server) -> None:
    """Slowloris on the body (found by review): one byte every 0.5 s restarted a per-chunk
    deadline for ever; the whole body now has `read_timeout_s` (2 s). And a client without a
    token is answered 401 before a byte of its body is read."""
    head = (
        f"POST /v1/recommendations HTTP/1.1\r\nHost: 127.0.0.1:{owners.port}\r\n"
        f"Authorization: Bearer {owners.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", owners.port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for _ in range(30):  # 15 s of trickling unless the server stops it
                sock.sendall(b" ")
                ready, _, _ = select.select([sock], [], [], 0.5)
                if ready:
                    received = sock.recv(65536)
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
    seconds = time.monotonic() - started
    assert seconds < 5.0, (seconds, received[:200])
    assert not received or first_status(received) == 408, received[:200]
    anonymous = (
        f"POST /v1/recommendations HTTP/1.1\r\nHost: 127.0.0.1:{owners.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 900000\r\n\r\n"
    ).encode()
    received, _closed, seconds = raw_exchange(owners.port, anonymous, wait_s=3.0)
    assert first_status(received) == 401, (received[:200], seconds)  # at once, body unread


def test_11_errors_do_not_leak_server_paths_or_objects(
    main: Server, servers: dict[str, Server], tmp_path: Path
) -> None:
    """Information leaks: error texts never carry the server's temporary folder, its data dir or
    a Python object repr; a 20,000-character item id is not echoed whole; /readyz reports a
    corrupt session database (503)."""
    corrupt = corrupt_png(tmp_path / "broken.png").read_bytes()
    outcomes = [
        upload(main, "leak", image=("broken.png", corrupt, "image/png")),
        upload(main, "leak", image=("broken.jpg", b"\xff\xd8\xff\xe0garbage", "image/jpeg")),
        upload(main, "leak", image=("broken.svg", b"<svg><g></svg>", "image/svg+xml")),
        upload(main, "leak", audio=("voice.wav", b"RIFF\x10\x00\x00\x00WAVEjunk", "audio/wav")),
        upload(main, "leak", audio=("voice.wav", b"not a sound at all" * 50, "audio/wav")),
    ]
    with main.client() as client:
        outcomes.append(
            request(
                client,
                "POST",
                "/v1/recommendations",
                json={"user": "leak", "message": "x", "filters": {"min_price": "cheap"}},
            )
        )
        long_id = request(client, "GET", f"/v1/items/{'a' * 20_000}")
    forbidden = {
        str(main.tmpdir),
        str(main.tmpdir.resolve()),
        str(main.data_dir),
        str(main.data_dir.resolve()),
        "recagent-upload-",
        "object at 0x",
    }
    for outcome in [*outcomes, long_id]:
        assert_no_crash(outcome)
        leaked = [word for word in forbidden if word in outcome.text]
        assert not leaked, (leaked, outcome.text[:800])
    assert long_id.status >= 400, long_id.status
    assert len(long_id.text.encode()) < 1_000, long_id.text[:300]

    owners = servers["owners"].require()
    database = owners.data_dir / "sessions.sqlite3"
    with owners.client() as client:
        assert_normal_turn(
            request(client, "POST", "/v1/sessions/ready/messages", json={"message": "a cow"})
        )
        assert database.is_file(), sorted(p.name for p in owners.data_dir.iterdir())
        assert client.get("/readyz").json()["status"] == "ready"
        database.write_bytes(b"this is not a database " * 4096)
        ready = client.get("/readyz")
    assert ready.status_code == 503, (ready.status_code, ready.text[:300])
    assert ready.json().get("status") != "ready", ready.text[:300]


# --- resource attacks on the main server (last: today they may wedge it) -----------------------


def test_03_lying_wav_headers_are_refused_before_decoding(main: Server, tmp_path: Path) -> None:
    """Resampling bomb: WAV headers claiming 1,000,003 Hz, 2^31-1 Hz or 16 channels (and the rates
    just outside 4,000-192,000 Hz (the demo catalogue has a 5 kHz sound), 0 Hz, 9 channels)
    are refused quickly, with a notice naming the problem, and the server's memory barely
    grows."""
    assert main.process is not None
    voice = noise_wav(tmp_path / "voice.wav", seconds=1.0).read_bytes()
    assert_normal_turn(upload(main, "wav", audio=("voice.wav", voice, "audio/wav")))
    samples = bytes(range(256)) * 80  # 20 KB
    rate = ("sample rate", "hz", "rate")
    cases = [
        (wav_header(1_000_003, 1, samples), rate),
        (wav_header(2**31 - 1, 1, samples), rate),
        (wav_header(16_000, 16, samples), ("channel",)),
        # the bounds themselves, and a rate of 0 (which the decoder reports as "internal error")
        (wav_header(192_001, 1, samples), rate),
        (wav_header(3_999, 1, samples), rate),
        (wav_header(0, 1, samples), rate),
        (wav_header(16_000, 9, samples), ("channel",)),
    ]
    before = rss_kb(main.process.pid)
    growth = {"VmRSS": 0, "VmHWM": 0}
    for data, words in cases:
        outcome = upload(main, "wav", audio=("voice.wav", data, "audio/wav"))
        after = rss_kb(main.process.pid)
        for key in growth:
            growth[key] = max(growth[key], after[key] - before[key])
        assert_refused(outcome, 3.0, *words)
    assert growth["VmRSS"] < 200_000 and growth["VmHWM"] < 200_000, growth


def test_04_svg_use_bombs_are_refused_and_do_not_starve_the_catalogue(main: Server) -> None:
    """`<use>` bomb: an SVG of nested references (5 levels of 10) is refused within 3 s, and
    while two such uploads run the catalogue's pictures still answer within 1.5 s."""
    bomb = use_bomb()
    assert 1_000 < len(bomb) < 2_500, len(bomb)
    blurred = use_bomb(3, 10, blurred=True)  # 1,000 blurred copies: few elements, slow to draw
    with main.client() as client:
        picture = client.get("/v1/items/animals/birds/robin/image")
        assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    assert_refused(upload(main, "use1", image=("bomb.svg", bomb, "image/svg+xml")), 3.0)

    outcomes: list[Outcome | BaseException] = []

    def two_uploads() -> Outcome:
        def one(user: str) -> None:
            try:
                outcomes.append(upload(main, user, image=("blur.svg", blurred, "image/svg+xml")))
            except BaseException as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=one, args=(f"use{i}",), daemon=True) for i in (2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=UPLOAD_TIMEOUT_S + 1)
        return Outcome(200, "", 0.0, [])

    _, latencies = during(main, two_uploads, "/v1/items/animals/birds/robin/image", 8.0)
    assert max(latencies) < 1.5, latencies
    assert len(outcomes) == 2, outcomes
    for outcome in outcomes:
        assert isinstance(outcome, Outcome), outcome
        assert_refused(outcome, 6.0)


def test_01_svg_bombs_are_bounded_and_shutdown_is_clean(main: Server) -> None:
    """Decompression and markup bombs: a 1,000,000+ byte `.svgz` (and a well-formed SVG just over
    1,000,000 bytes, gzipped or not) is refused and a 160 KB pathological SVG finishes, within 5 s
    each, while /healthz answers under 1 s; after SIGTERM the server exits within
    5 s and leaves no `recagent-upload-*` folder in its TMPDIR."""
    assert main.process is not None
    inflated = b"<svg " * 200_001
    svgz = gzip.compress(inflated, compresslevel=9)
    assert len(inflated) > 1_000_000 and len(svgz) < 4_000, len(svgz)
    markup = b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<svg " * 32_000
    assert 150_000 < len(markup) < 170_000
    # well-formed, harmless to draw, and just over the limit: refused for its size alone
    padded = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><!--'
        + b" " * 1_000_000
        + b'--><rect width="8" height="8" fill="red"/></svg>'
    )
    padded_svgz = gzip.compress(padded, compresslevel=9)
    assert len(padded_svgz) < 4_000

    bomb, latencies = during(
        main,
        lambda: upload(main, "svgz", image=("bomb.svgz", svgz, "image/svg+xml")),
        "/healthz",
        8,
    )
    assert isinstance(bomb, Outcome), f"the .svgz upload did not finish: {bomb!r}"
    assert_refused(bomb, 5.0)
    assert max(latencies) < 1.0, latencies

    for part in (("padded.svgz", padded_svgz), ("padded.svg", padded)):
        refused = upload(main, "svgz", image=(*part, "image/svg+xml"))
        assert_refused(refused, 5.0)

    heavy, latencies = during(
        main,
        lambda: upload(main, "svg", image=("many.svg", markup, "image/svg+xml")),
        "/healthz",
        8,
    )
    assert isinstance(heavy, Outcome), f"the SVG upload did not finish: {heavy!r}"
    assert_no_crash(heavy)
    assert heavy.seconds < 5.0 and heavy.status in {200, 400, 413}, (heavy.status, heavy.seconds)
    assert max(latencies) < 1.0, latencies

    main.process.send_signal(signal.SIGTERM)
    try:
        main.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("the server was still running 5 s after SIGTERM")
    left = sorted(p.name for p in main.tmpdir.glob("recagent-upload-*"))
    assert not left, left
