from pathlib import Path

import pytest
from pydantic import ValidationError

from tools.config import load_settings


def test_priority_flags_over_env_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "recagent.toml"
    config.write_text(
        'collection = "fromfile"\n[models]\ncaptioner = "file/captioner"\n'
        'image_embedder = "file/clip"\n[index]\nbatch_size = 7\n'
    )
    monkeypatch.setenv("RECAGENT_MODELS__CAPTIONER", "env/captioner")
    settings = load_settings(config, models={"image_embedder": "flag/clip"})
    assert settings.collection == "fromfile"
    assert settings.index.batch_size == 7
    assert settings.models.captioner == "env/captioner"  # env beats file
    assert settings.models.image_embedder == "flag/clip"  # flag beats file
    assert settings.models.whisper == "Systran/faster-whisper-tiny.en"  # default kept


def test_unset_flags_do_not_mask_lower_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECAGENT_COLLECTION", "envname")
    assert load_settings(collection=None).collection == "envname"


def test_config_env_var_and_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_settings(tmp_path / "missing.toml")
    monkeypatch.setenv("RECAGENT_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match="RECAGENT_CONFIG"):
        load_settings()


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ValidationError, match="collection"):
        load_settings(collection="bad name!")
    with pytest.raises(ValidationError, match="batch_size"):
        load_settings(index={"batch_size": 0})


def test_store_dir_defaults_under_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.resolved_store_dir == tmp_path / "store"
    assert settings.models_dir == settings.cache_dir / "models"
