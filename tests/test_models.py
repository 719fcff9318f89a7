"""Model provisioning: joining and verifying the GGUF parts, preparing and resolving models."""

import hashlib
import json
from pathlib import Path

import pytest

from tools import provisioning as models
from tools.config import DEFAULT_TEXT_EMBEDDER, DEFAULT_WHISPER, SMALL_LLM


def _parts(tmp_path: Path) -> tuple[list[Path], str, int]:
    chunks = [b"alpha" * 1000, b"beta" * 2000, b"gamma"]
    paths = []
    for index, chunk in enumerate(chunks):
        path = tmp_path / f"part{index:02d}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    joined = b"".join(chunks)
    return paths, hashlib.sha256(joined).hexdigest(), len(joined)


def test_join_parts_in_order_and_verified(tmp_path: Path) -> None:
    parts, digest, size = _parts(tmp_path)
    seen: list[int] = []
    out = tmp_path / "model.gguf"
    models.join_parts(parts, out, digest, size, lambda _label, done, _total: seen.append(done))
    assert out.read_bytes() == b"".join(p.read_bytes() for p in parts)
    assert seen[-1] == size


def test_join_parts_rejects_wrong_hash_and_size(tmp_path: Path) -> None:
    parts, digest, size = _parts(tmp_path)
    out = tmp_path / "model.gguf"
    with pytest.raises(models.ModelError, match="sha256"):
        models.join_parts(parts, out, "0" * 64, size)
    assert not out.exists() and not out.with_suffix(".gguf.partial").exists()
    with pytest.raises(models.ModelError, match="bytes"):
        models.join_parts(parts, out, digest, size + 1)


def test_resolve(tmp_path: Path) -> None:
    assert models.resolve(str(tmp_path), tmp_path) == str(tmp_path)
    assert models.resolve("org/some-model", tmp_path) == "org/some-model"  # a hub id
    with pytest.raises(models.ModelError, match="recagent models prepare"):
        models.resolve(DEFAULT_TEXT_EMBEDDER, tmp_path / "empty")
    with pytest.raises(models.ModelError, match="does not exist"):
        models.resolve("./no/such/folder", tmp_path)


def test_prepare_folder_models_is_idempotent_and_verifiable(tmp_path: Path) -> None:
    shipped = models.SHIPPED[DEFAULT_WHISPER]
    path = models.prepare(shipped, tmp_path)
    assert (Path(path) / "model.bin").is_file()
    assert models.resolve(DEFAULT_WHISPER, tmp_path) == str(path)
    marker = Path(path) / models.READY_MARKER
    stamp = marker.stat().st_mtime_ns
    assert models.prepare(shipped, tmp_path) == path
    assert marker.stat().st_mtime_ns == stamp  # second call did nothing
    assert models.verify(shipped, tmp_path) == []
    (Path(path) / "config.json").write_text("{}")
    assert models.verify(shipped, tmp_path) == ["changed config.json"]
    manifest = json.loads(marker.read_text())
    assert manifest["hub_id"] == DEFAULT_WHISPER


@pytest.mark.slow
def test_llm_prepared_from_wheels_loads_and_chats(prepared_models: Path) -> None:
    """The real small chat LLM: six wheels joined, sha256-checked, converted once into the cache."""
    shipped = models.SHIPPED[SMALL_LLM]
    path = Path(models.prepare(shipped, prepared_models / "models"))
    manifest = json.loads((path.parent / models.READY_MARKER).read_text())
    assert manifest["gguf_sha256"] == models.LLM_GGUF_SHA256
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    template = tokenizer.chat_template or ""
    assert "tools" in template  # Qwen's template with tool support survived the conversion
    model = AutoModelForCausalLM.from_pretrained(path)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France? One word."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(output[0][prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "paris" in answer.lower()
