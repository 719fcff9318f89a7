from pathlib import Path

import pytest

from tools.config import load_settings
from tools.errors import ConfigError


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
    with pytest.raises(ConfigError, match="collection"):
        load_settings(collection="bad name!")
    with pytest.raises(ConfigError, match="batch_size"):
        load_settings(index={"batch_size": 0})


def test_file_errors_name_the_file_and_the_key_and_never_echo_values(tmp_path: Path) -> None:
    config = tmp_path / "recagent.toml"
    config.write_text("[index]\nmax_image_byte = 1\n")  # misspelt: was silently ignored
    with pytest.raises(ConfigError, match=r"recagent.toml.*index.max_image_byte"):
        load_settings(config)
    config.write_text("[turn]\nexpansion = true\n")
    with pytest.raises(ConfigError, match=r"turn\.expansion"):
        load_settings(config)
    config.write_text('api_key = "sk-very-secret"\n')  # misplaced: it belongs under [llm]
    with pytest.raises(ConfigError, match="api_key") as info:
        load_settings(config)
    assert "sk-very-secret" not in str(info.value)
    config.write_text('[llm]\nport = "sk-very-secret"\n')
    with pytest.raises(ConfigError, match=r"llm\.port") as info:
        load_settings(config)
    assert "sk-very-secret" not in str(info.value)
    config.write_text("[index\nbatch_size = 3\n")
    with pytest.raises(ConfigError, match=r"recagent.toml is not valid TOML"):
        load_settings(config)
    config.write_text('[llm]\napi_key = "sk-very-secret"\n')
    settings = load_settings(config)
    assert "sk-very-secret" not in repr(settings) and "sk-very-secret" not in str(settings.llm)
    assert settings.llm.api_key.get_secret_value() == "sk-very-secret"


def test_store_dir_defaults_under_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.resolved_store_dir == tmp_path / "store"
    assert settings.models_dir == settings.cache_dir / "models"
