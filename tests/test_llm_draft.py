"""Speculative decoding on the local vLLM server: a small draft model of the same family
proposes tokens that the served model checks, so greedy answers stay the same and come sooner.
Which draft the server gets, and when it gets none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent import llm_server
from tools import provisioning
from tools.config import LARGER_LLM, SMALL_LLM, Settings, load_settings
from tools.errors import ConfigError, ModelError


def _settings(tmp_path: Path, **llm: object) -> Settings:
    return load_settings(
        cache_dir=tmp_path / "cache",
        data_dir=tmp_path / "data",
        models={"llm": str(llm.pop("model", LARGER_LLM))},
        llm=llm,
    )


def _prepare_small(settings: Settings) -> Path:
    """The small model as `models prepare` leaves it: its folder with the ready marker."""
    shipped = provisioning.SHIPPED[SMALL_LLM]
    folder = provisioning.prepared_dir(shipped, settings.models_dir)
    (folder / "hf").mkdir(parents=True)
    (folder / provisioning.READY_MARKER).write_text("{}")
    return folder / "hf"


def _speculative(command: list[str]) -> dict[str, object] | None:
    if "--speculative-config" not in command:
        return None
    parsed = json.loads(command[command.index("--speculative-config") + 1])
    assert isinstance(parsed, dict)
    return parsed


def test_the_larger_model_is_drafted_by_the_prepared_small_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    small = _prepare_small(settings)
    draft = llm_server.draft_model(settings)
    assert draft == str(small)
    config = _speculative(llm_server.build_command(settings, "/models/big", draft))
    assert config == {
        "method": "draft_model",
        "model": str(small),
        "num_speculative_tokens": settings.llm.draft_tokens,
    }


def test_how_many_tokens_the_draft_proposes_is_a_setting(tmp_path: Path) -> None:
    settings = _settings(tmp_path, draft_tokens=5)
    draft = str(_prepare_small(settings))
    config = _speculative(llm_server.build_command(settings, "/models/big", draft))
    assert config is not None and config["num_speculative_tokens"] == 5


def test_no_draft_when_the_small_model_is_not_prepared(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert llm_server.draft_model(settings) is None
    assert _speculative(llm_server.build_command(settings, "/models/big", None)) is None


def test_the_small_model_gets_no_draft_by_default(tmp_path: Path) -> None:
    settings = _settings(tmp_path, model=SMALL_LLM)
    _prepare_small(settings)
    assert llm_server.draft_model(settings) is None


def test_a_draft_can_be_switched_off(tmp_path: Path) -> None:
    settings = _settings(tmp_path, draft_model="none")
    _prepare_small(settings)
    assert llm_server.draft_model(settings) is None


def test_an_explicit_draft_is_used_for_any_model(tmp_path: Path) -> None:
    folder = tmp_path / "my-draft"
    folder.mkdir()
    settings = _settings(tmp_path, model="/models/other", draft_model=str(folder))
    assert llm_server.draft_model(settings) == str(folder)


def test_an_explicit_draft_that_is_missing_is_a_clear_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path, draft_model=str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="nowhere"):
        llm_server.draft_model(settings)


def test_an_explicit_shipped_draft_that_is_not_prepared_names_the_fix(tmp_path: Path) -> None:
    settings = _settings(tmp_path, draft_model=SMALL_LLM)
    with pytest.raises(ModelError, match="models prepare"):
        llm_server.draft_model(settings)


@pytest.mark.parametrize("tokens", [0, 17])
def test_draft_tokens_out_of_range_are_refused(tmp_path: Path, tokens: int) -> None:
    with pytest.raises(ConfigError, match="draft_tokens"):
        _settings(tmp_path, draft_tokens=tokens)


def test_models_prepare_takes_the_draft_with_the_larger_model(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert provisioning.llms_to_prepare(settings) == {LARGER_LLM, SMALL_LLM}
    off = _settings(tmp_path, draft_model="none")
    assert provisioning.llms_to_prepare(off) == {LARGER_LLM}
    small = _settings(tmp_path, model=SMALL_LLM)
    assert provisioning.llms_to_prepare(small) == {SMALL_LLM}
