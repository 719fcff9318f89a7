"""The CLI as a user runs it: help, clear errors, index + search end to end, and a Chroma server."""

import json
from pathlib import Path

import pytest

from tests.conftest import recagent


def _env(settings_dir: Path, cache: Path) -> dict[str, str]:
    return {"RECAGENT_CACHE_DIR": str(cache), "RECAGENT_DATA_DIR": str(settings_dir)}


def test_help_explains_every_command() -> None:
    result = recagent("--help")
    assert result.returncode == 0
    for command in ("index", "search", "models", "catalogue", "bench", "demo"):
        assert command in result.stdout
    index_help = recagent("index", "--help").stdout
    assert "--prune" in index_help and "--chroma-url" in index_help


def test_clear_errors(tmp_path: Path, prepared_models: Path) -> None:
    env = _env(tmp_path, prepared_models)
    result = recagent("search", env=env)
    assert result.returncode == 2 and "either a text QUERY or --image" in result.stderr
    result = recagent("index", str(tmp_path / "nope.jsonl"), env=env)
    assert result.returncode == 2 and "error: catalogue file not found" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "title": "A"}\n{"id": "a", "title": "B"}\n')
    result = recagent("catalogue", "check", str(bad), env=env)
    assert result.returncode == 1 and "duplicate id" in result.stdout
    result = recagent("index", str(bad), "--chroma-url", "http://127.0.0.1:9", env=env)
    assert result.returncode == 2 and "does not answer" in result.stderr
    result = recagent("models", "list", env={"RECAGENT_CACHE_DIR": str(tmp_path / "empty")})
    assert result.returncode == 0 and "not prepared" in result.stdout
    result = recagent(
        "--image-embedder", "/no/such/clip", "models", "list", env={**env, "COLUMNS": "250"}
    )
    assert "model path does not exist: /no/such/clip" in result.stdout


def test_index_and_search_through_a_chroma_server(
    chroma_server: str, demo_slice: Path, tmp_path: Path, prepared_models: Path
) -> None:
    env = _env(tmp_path, prepared_models)
    report = tmp_path / "report.json"
    result = recagent(
        "index",
        str(demo_slice),
        "--chroma-url",
        chroma_server,
        "--collection",
        "served",
        "--report",
        str(report),
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(report.read_text())
    lines = demo_slice.read_text().splitlines()
    assert figures["indexed"] == len(lines) and figures["failed"] == []
    assert "progress:" in result.stdout and "indexed" in result.stdout
    result = recagent(
        "search",
        "a bird",
        "--chroma-url",
        chroma_server,
        "--collection",
        "served",
        "--json",
        "-k",
        "3",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and all(h["score"] <= 1 for h in hits)
    ids = {json.loads(line)["id"] for line in lines}
    assert {h["id"] for h in hits} <= ids
    # The embedded store was never touched: the server holds the data.
    assert not (tmp_path / "store").exists()
    again = recagent(
        "index",
        str(demo_slice),
        "--chroma-url",
        chroma_server,
        "--collection",
        "served",
        "--report",
        str(report),
        env=env,
    )
    assert again.returncode == 0
    assert json.loads(report.read_text())["model_calls"] == 0


def test_chat_and_recommend_without_an_llm(
    demo_slice: Path, tmp_path: Path, prepared_models: Path
) -> None:
    """The CLI front ends answer (embedding ranking, template explanations) with no LLM."""
    env = {
        **_env(tmp_path, prepared_models),
        "COLUMNS": "200",
        "RECAGENT_LLM__PORT": "9",
    }  # nothing listens there
    store = str(tmp_path / "store")
    assert recagent("index", str(demo_slice), "--store", store, env=env).returncode == 0
    script = tmp_path / "lines.txt"
    script.write_text("I like birds\n/why 1\n/profile\n/quit\n")
    result = recagent(
        "chat", "--user", "cli", "--no-serve", "--store", store, "--script", str(script), env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # no step of the default turn uses the LLM: no server needed, no notice, reasons explained
    assert "without the LLM" not in result.stdout
    assert "found: " in result.stdout and "1. " in result.stdout and "reasons" in result.stdout
    assert "why " in result.stdout and '"user_id": "cli"' in result.stdout
    assert "constraints this turn" in result.stdout
    with_llm = {**env, "RECAGENT_TURN__EXPANSION_LLM": "true"}  # a step that needs the LLM
    result = recagent(
        "chat",
        "--user",
        "cli2",
        "--no-serve",
        "--store",
        store,
        "--script",
        str(script),
        env=with_llm,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "answering without the LLM" in result.stdout
    result = recagent(
        "recommend",
        "--user",
        "cli",
        "--no-serve",
        "--store",
        store,
        "--query",
        "a vehicle",
        "--json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    ids = {json.loads(line)["id"] for line in demo_slice.read_text().splitlines()}
    assert len(data["recommendations"]) == 3
    assert {r["id"] for r in data["recommendations"]} <= ids
    # The session persisted: items recommended in the chat are not recommended again.
    from agent.session import SessionStore

    session = SessionStore(tmp_path).load("cli")
    assert not set(session.recommended[:3]) & {r["id"] for r in data["recommendations"]}
    empty = recagent("recommend", "--no-serve", "--store", str(tmp_path / "none"), env=env)
    assert empty.returncode == 2 and "is empty" in empty.stderr
    # The conversation benchmark runs what needs no LLM, and says so.
    out = tmp_path / "conversations"
    args = ("eval", "conversations", "--half", "dev", "--limit", "1", "--store", store)
    result = recagent(*args, "--out", str(out), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "results.json").read_text())
    assert list(report["halves"]["dev"]["systems"]) == [
        "plain retrieval",
        "agent",
        "agent without knowledge",
    ]
    assert "only the systems without an LLM run" in result.stdout
    assert "chroma_searches_per_turn" not in report  # the systems shared the store's counter
    one = recagent(*args, "--system", "agent", "--out", str(tmp_path / "one"), env=env)
    assert one.returncode == 0, one.stdout + one.stderr
    counted = json.loads((tmp_path / "one" / "results.json").read_text())
    per_turn = counted["chroma_searches_per_turn"]["agent"]
    assert per_turn["all"] > 0 and 0 <= per_turn["filtered"] <= per_turn["all"]


def test_domain_errors_exit_with_their_code(tmp_path: Path) -> None:
    """Every RecagentError becomes `error: MESSAGE` on stderr and its exit code, no traceback."""
    env = {"RECAGENT_DATA_DIR": str(tmp_path)}
    cases = [
        (("models", "list", "--config", str(tmp_path / "none.toml")), "config file not found"),
        (("eval", "rank", "--dataset", "nope"), "unknown dataset 'nope': only ml-100k"),
        (("eval", "simulate", "--dataset", "nope"), "unknown dataset 'nope': use ml-100k or demo"),
        (("bench", "eval", "--dataset", "nope"), "unknown dataset 'nope': use ml-100k or demo"),
        (("catalogue", "install", "nope"), "unknown catalogue 'nope'"),
        (("catalogue", "check", str(tmp_path / "none.jsonl")), "catalogue file not found"),
    ]
    for args, message in cases:
        result = recagent(*args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert f"error: {message}" in result.stderr and "Traceback" not in result.stderr


def test_untrusted_text_prints_as_written() -> None:
    """Titles, captions and ids from the catalogue are not read as rich markup."""
    from rich.console import Console

    from cli.render import print_hits
    from indexing.records import Hit

    hit = Hit("[red]id", "[bold]Title[/bold]", 0.5, "[dim]", {"caption": "[link=x]c[/link]"})
    out = Console(record=True, width=200)
    print_hits([hit], out, title="[b]query")
    text = out.export_text()
    for written in ("[red]id", "[bold]Title[/bold]", "[dim]", "[link=x]c[/link]", "[b]query"):
        assert written in text


def test_history_must_name_stored_items(tmp_path: Path) -> None:
    from agent.conversation import Conversation
    from agent.history import load_history
    from agent.profile import UserProfile
    from indexing.records import StoredItem
    from tools.errors import InputError

    class Store:
        def items(self, ids: list[str]) -> dict[str, StoredItem]:
            return {i: StoredItem(i, f"title {i}", None) for i in ids if i != "x"}

    convo = Conversation("u", UserProfile(user_id="u"))
    history = tmp_path / "history.json"
    history.write_text('["a", "b"]')
    load_history(convo, history, Store())  # type: ignore[arg-type]
    assert convo.history_ids == ["a", "b"] and convo.history_titles == ["title a", "title b"]
    for text, message in (('["a", "x"]', "not in the store: x"), ("{", "not valid JSON")):
        history.write_text(text)
        try:
            load_history(convo, history, Store())  # type: ignore[arg-type]
        except InputError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{text!r} was accepted")


def test_bad_history_files_are_input_errors(tmp_path: Path) -> None:
    from agent.history import read_history
    from tools.errors import InputError

    number = tmp_path / "number.json"
    number.write_text("5")
    nested = tmp_path / "nested.json"
    nested.write_text('[["a"]]')
    cases = {
        tmp_path / "missing.json": "not found",
        tmp_path: "not a regular file",
        number: "JSON list",
        nested: "JSON list",
        Path("/dev/zero"): "not a regular file",
    }
    for path, message in cases.items():
        with pytest.raises(InputError, match=message):
            read_history(path)


def test_the_demo_enriches_what_it_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default turn searches the items' WordNet gloss, so the demo's index step must
    enrich (as `recagent index` does by default), or the demo answers without that knowledge."""
    from typer.testing import CliRunner

    import cli.catalogue_cmds
    import cli.setup_cmds
    from cli.app import app

    class Stop(Exception):
        pass

    asked: dict[str, object] = {}

    def index_catalogue(*args: object, **kwargs: object) -> None:
        asked.update(kwargs)
        raise Stop

    monkeypatch.setattr(cli.setup_cmds, "prepare_models", lambda *a, **k: None)
    monkeypatch.setattr(cli.setup_cmds, "install", lambda *a, **k: tmp_path / "items.jsonl")
    monkeypatch.setattr(cli.catalogue_cmds, "index_catalogue", index_catalogue)
    monkeypatch.setenv("RECAGENT_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["demo", "--skip-llm"])
    assert isinstance(result.exception, Stop), result.output
    assert asked.get("enrich") is True
