"""Two `recagent serve` replicas behind a real HAProxy, their sessions in a real PostgreSQL
database: the generated configuration passes `haproxy -c`, turns through the balancer land on
both replicas and are all stored, a streamed turn arrives event by event, and after one replica
is killed (SIGKILL) only its requests in flight fail and no session loses a saved turn."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from agent.session import SessionStore
from agent.session_postgres import PostgresSessions
from service.balancer import REPLICA_HEADER
from tests.conftest import recagent
from tests.servers import answers_http, free_port, wait_ready
from tests.small_store import build_small_store

RECAGENT = Path(sys.executable).parent / "recagent"
SERVE = [str(RECAGENT), "serve", "--no-serve"]  # no LLM: the retrieval-only turn
READY_WITHIN_S = 120.0
INSTALL_HINT = "the balancer tests need HAProxy (Debian: `apt-get install haproxy`, in setup.sh)"


def haproxy() -> str:
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).is_file()), None
    )
    if found is None:
        pytest.fail(INSTALL_HINT)
    return found


def balancer_config(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`recagent balancer config ARGS`, its output checked by `haproxy -c` when it succeeded."""
    made = recagent("balancer", "config", *args)
    if made.returncode == 0:
        (tmp / "haproxy.cfg").write_text(made.stdout)
    return made


def haproxy_check(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [haproxy(), "-c", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )


def test_generated_configurations_pass_haproxy_check(tmp_path: Path) -> None:
    made = balancer_config(
        tmp_path, "--backend", "127.0.0.1:8001", "--backend", "127.0.0.1:8002", "--port", "8000"
    )
    assert made.returncode == 0, made.stderr
    text = made.stdout
    for line in (
        "bind 127.0.0.1:8000",
        "balance leastconn",
        "http-check send meth GET uri /readyz",
        "retry-on conn-failure",
        "option redispatch 1",
        "timeout tunnel 600s",
        "server replica1 127.0.0.1:8001",
        "server replica2 127.0.0.1:8002",
    ):
        assert line in text, line
    assert "http-buffer-request" not in text  # requests stream to the replica
    checked = haproxy_check(tmp_path / "haproxy.cfg")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # every option at once, an IPv6 replica and a token read from HAProxy's environment
    made = balancer_config(
        tmp_path,
        *("--backend", "[::1]:8001", "--backend", "localhost:8002"),
        *("--bind", "0.0.0.0", "--check-token", "--balance", "roundrobin"),
        *("--stream-timeout", "120"),
    )
    assert made.returncode == 0, made.stderr
    assert "ipv6@::1:8001" in made.stdout and "${RECAGENT_SERVICE__TOKEN}" in made.stdout
    checked = haproxy_check(tmp_path / "haproxy.cfg", RECAGENT_SERVICE__TOKEN="t" * 24)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "--backend"),
        (("--backend", "nope"), "HOST:PORT"),
        (("--backend", "127.0.0.1:99999"), "port"),
        (("--backend", "h:1", "--backend", "h:1"), "twice"),
        (("--backend", "h:1", "--balance", "random"), "leastconn"),
        (("--backend", "h:1", "--bind", "0.0.0.0"), "--check-token"),
    ],
)
def test_bad_balancer_options_are_clear_errors(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    made = balancer_config(tmp_path, *args)
    assert made.returncode == 2 and words in made.stderr, made.stderr
    assert not (tmp_path / "haproxy.cfg").exists()


# --- the cluster: PostgreSQL, two replicas, HAProxy ----------------------------------------------


@dataclass
class Process:
    name: str
    args: list[str]
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                self.args, stdout=sink, stderr=subprocess.STDOUT, env=self.env
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


@dataclass
class Cluster:
    url: str  # the balancer's
    sessions_url: str
    replicas: dict[str, Process]  # by the name the balancer gives them
    ports: dict[str, int]
    balancer: Process

    def stored_messages(self, user: str) -> int:
        store = SessionStore(backend=PostgresSessions(self.sessions_url, max_connections=1))
        return len(store.load(user).messages)


def _wait(url: str, what: Process, path: str = "/readyz") -> None:
    assert what.process is not None
    why = wait_ready(answers_http(f"{url}{path}"), what.process, READY_WITHIN_S)
    if why is not None:
        pytest.fail(f"{what.name}: {why}: {what.output()[-3000:]}")


@pytest.fixture(scope="module")
def cluster(
    postgres_server: str, prepared_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    name = f"balancer_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    sessions_url = postgres_server.rpartition("/")[0] + f"/{name}"
    folder = tmp_path_factory.mktemp("balancer")
    build_small_store(folder / "built", prepared_models)
    base = {k: v for k, v in os.environ.items() if not k.startswith("RECAGENT_")}
    replicas: dict[str, Process] = {}
    ports: dict[str, int] = {}
    for n in (1, 2):
        home = folder / f"replica{n}"
        shutil.copytree(folder / "built" / "store", home / "store")  # a store each
        (home / "data").mkdir()
        (home / "tmp").mkdir()
        ports[f"replica{n}"] = free_port()
        replicas[f"replica{n}"] = Process(
            f"replica{n}",
            [*SERVE, "--store", str(home / "store"), "--port", str(ports[f"replica{n}"])],
            home / "server.log",
            base
            | {
                "RECAGENT_DATA_DIR": str(home / "data"),
                "RECAGENT_CACHE_DIR": str(prepared_models),
                "RECAGENT_SESSIONS__URL": sessions_url,
                "TMPDIR": str(home / "tmp"),
            },
        )
    port = free_port()
    backends = [a for p in ports.values() for a in ("--backend", f"127.0.0.1:{p}")]
    made = balancer_config(folder, *backends, "--port", str(port))
    assert made.returncode == 0, made.stderr
    balancer = Process(
        "haproxy",
        [haproxy(), "-db", "-f", str(folder / "haproxy.cfg")],
        folder / "haproxy.log",
        base,
    )
    try:
        for replica in replicas.values():
            replica.start()  # both load their models at once
        for name, replica in replicas.items():
            _wait(f"http://127.0.0.1:{ports[name]}", replica)
        balancer.start()
        url = f"http://127.0.0.1:{port}"
        _wait(url, balancer)
        yield Cluster(url, sessions_url, replicas, ports, balancer)
    finally:
        balancer.stop()
        for replica in replicas.values():
            replica.stop()


def turn(client: httpx.Client, user: str, message: str) -> httpx.Response:
    return client.post("/v1/recommendations", json={"user": user, "message": message, "k": 2})


MESSAGES = ("a bird", "a farm animal", "something sweet", "a vehicle")
TURNS_PER_SESSION = 10  # a stored session keeps its last MAX_MESSAGES messages only


@pytest.mark.balancer
def test_turns_land_on_both_replicas_and_every_one_is_stored(cluster: Cluster) -> None:
    users = [f"spread-{n}" for n in range(6)]
    served: dict[str, list[str]] = {u: [] for u in users}

    def play(user: str) -> None:
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            for message in MESSAGES:
                answer = turn(client, user, message)
                assert answer.status_code == 200, answer.text
                assert answer.json()["recommendations"], answer.text
                served[user].append(answer.headers[REPLICA_HEADER])

    with ThreadPoolExecutor(len(users)) as pool:
        list(pool.map(play, users))
    # Six sessions at once may each stay on one replica (leastconn follows the load); one
    # session alone meets equal loads at every turn, where HAProxy takes turns (round-robin).
    users.append("spread-alone")
    served["spread-alone"] = []
    play("spread-alone")
    by_replica = {name: sum(s.count(name) for s in served.values()) for name in cluster.replicas}
    assert all(by_replica.values()), by_replica  # both replicas served turns
    assert any(len(set(s)) == 2 for s in served.values()), served  # a session crossed over
    for name, count in by_replica.items():  # each replica's own access log agrees
        logged = cluster.replicas[name].output().count('"POST /v1/recommendations HTTP/1.1" 200')
        assert logged == count, (name, logged, count)
    for user in users:  # every turn of every session, whichever replica saved it
        assert cluster.stored_messages(user) == 2 * len(MESSAGES), user


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, object]]]:
    name = None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and name is not None:
            yield name, json.loads(line.split(":", 1)[1])
            name = None


@pytest.mark.balancer
def test_a_streamed_turn_passes_through_event_by_event(cluster: Cluster) -> None:
    with (
        httpx.Client(base_url=cluster.url, timeout=60) as client,
        client.stream(
            "POST", "/v1/sessions/streamer/messages", json={"message": "an animal", "k": 3}
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in response.headers  # not buffered into one body
        assert response.headers[REPLICA_HEADER] in cluster.replicas
        events = list(sse_events(response))
    names = [n for n, _ in events]
    assert names[:2] == ["understood", "ranked"] and names[-1] == "done", names
    assert names.count("item") == 3, names
    assert cluster.stored_messages("streamer") == 2


@pytest.mark.balancer
def test_bench_serve_plays_through_the_balancer(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "serve.json"
    made = recagent(
        *("bench", "serve", "--url", cluster.url, "--levels", "1,4", "--turns", "2"),
        *("--out", str(out)),
    )
    assert made.returncode == 0, made.stdout + made.stderr
    figures = json.loads(out.read_text())
    run = figures["runs"]["given service"]
    assert [run[n]["turns"] for n in ("1", "4")] == [2, 8], run
    assert all(run[n]["errors"] == 0 and run[n]["lost_sessions"] == 0 for n in run), run
    bad = recagent("bench", "serve", "--url", "127.0.0.1:1", "--out", str(out))
    assert bad.returncode == 2 and "http://" in bad.stderr, bad.stderr


@dataclass
class Outcome:
    user: str
    started: float
    ended: float
    replica: str | None = None
    error: str | None = None


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def play(self, cluster: Cluster, user: str, until: float) -> None:
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            n = 0
            while time.monotonic() < until:
                session = f"{user}-{n // TURNS_PER_SESSION}"  # below the stored bound
                outcome = Outcome(session, time.monotonic(), 0.0)
                try:
                    answer = turn(client, session, MESSAGES[n % len(MESSAGES)])
                    outcome.replica = answer.headers.get(REPLICA_HEADER)
                    if answer.status_code != 200:
                        outcome.error = f"HTTP {answer.status_code}"
                except httpx.HTTPError as exc:
                    outcome.error = type(exc).__name__
                outcome.ended = time.monotonic()
                with self.lock:
                    self.outcomes.append(outcome)
                n += 1


@pytest.mark.balancer
def test_a_killed_replica_fails_only_its_requests_in_flight(cluster: Cluster) -> None:
    users = [f"survivor-{n}" for n in range(6)]
    load = Load()
    started = time.monotonic()
    until = started + 12.0
    with ThreadPoolExecutor(len(users)) as pool:
        running = [pool.submit(load.play, cluster, u, until) for u in users]
        time.sleep(4.0)
        victim = cluster.replicas["replica1"].process
        assert victim is not None and victim.poll() is None
        killed_at = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        dead_at = time.monotonic()  # its sockets are closed from here on
        for future in running:
            future.result()
    before = [o for o in load.outcomes if o.ended < killed_at]
    after = [o for o in load.outcomes if o.started > dead_at]
    failed = [o for o in load.outcomes if o.error is not None]
    assert {o.replica for o in before} == {"replica1", "replica2"}, "load reached one replica"
    assert not [o for o in before if o.error], before  # all well before the kill
    assert len(after) >= 2 * len(users), len(after)  # turns went on, all of them answered
    assert not [o for o in after if o.error], [o for o in after if o.error]
    assert {o.replica for o in after} == {"replica2"}
    # the failures: requests in flight at the kill (at most one per client), on replica1 where
    # HAProxy answered for it
    assert len(failed) <= len(users), failed
    for outcome in failed:
        assert outcome.started <= dead_at and outcome.ended >= killed_at, outcome
        assert outcome.replica in (None, "replica1"), outcome
    for session in {o.user for o in load.outcomes}:  # no session lost a turn seen answered
        answered = sum(1 for o in load.outcomes if o.user == session and o.error is None)
        lost = sum(1 for o in failed if o.user == session)
        stored = cluster.stored_messages(session) // 2
        assert answered <= stored <= answered + lost, (session, answered, stored, lost)
    print(f"killed replica1 with {len(failed)} request(s) in flight; {len(after)} turns after")
