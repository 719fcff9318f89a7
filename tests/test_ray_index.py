"""`recagent index --engine ray`: the same stages on Ray Data actors, on a real local Ray
instance, with the real shipped models and a real embedded Chroma. The Ray store is compared,
record by record, with the local indexer's store of the same catalogue."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexing.loaders import load_catalogue
from indexing.pipeline import Indexer, IndexReport
from indexing.ray_engine import (
    ATTEMPTS,
    Actors,
    Batch,
    RayIndexer,
    RayIndexingError,
    TextWorker,
    unpack,
)
from indexing.stages import Planned, StageTimes, Work, audio_stage, picture_stage, text_stage
from indexing.store import open_store
from tests import media
from tests.conftest import copy_slice, recagent
from tests.small_store import ROWS, write_small_catalogue
from tools.config import Settings

pytestmark = pytest.mark.ray

BATCH = 8  # several chunks over the slice, the same in both engines
CRASH_ITEM_INDEX = 12  # the text worker dies once on the batch holding this item


def _with_batch(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"index": settings.index.model_copy(update={"batch_size": BATCH})}
    )


def _catalogue(demo_slice: Path, folder: Path) -> Path:
    """The demo slice plus two bad items (a corrupt picture and a missing sound)."""
    catalogue = copy_slice(demo_slice, folder)
    rows = [json.loads(line) for line in catalogue.read_text().splitlines()]
    media.corrupt_png(folder / "broken.png")
    rows[3:3] = [
        {"id": "bad/picture", "title": "Broken picture", "image": "broken.png"},
        {"id": "bad/sound", "title": "Missing sound", "audio": "nowhere.ogg"},
    ]
    catalogue.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return catalogue


def _contents(settings: Settings) -> dict[str, dict[str, Any]]:
    """Everything in both collections: {collection: {id: (document, metadata, embedding)}}."""
    store, _ = open_store(settings)
    out: dict[str, dict[str, Any]] = {}
    for name, collection in (("text", store.text), ("image", store.images)):
        got = collection.get(include=["documents", "metadatas", "embeddings"])
        assert len(got["ids"]) == len(set(got["ids"]))
        out[name] = {
            i: (d, m, np.asarray(e, dtype=np.float64))
            for i, d, m, e in zip(
                got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
            )
        }
    return out


def _assert_same_store(got: dict[str, dict[str, Any]], want: dict[str, dict[str, Any]]) -> None:
    for name in ("text", "image"):
        assert sorted(got[name]) == sorted(want[name]), name
        for item_id, (document, metadata, vector) in want[name].items():
            g_document, g_metadata, g_vector = got[name][item_id]
            assert g_document == document, item_id
            assert g_metadata == metadata, item_id
            np.testing.assert_allclose(g_vector, vector, atol=1e-5, err_msg=item_id)


@pytest.fixture(scope="module")
def crash_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Written by :class:`CrashOnceTextWorker` before it kills its process."""
    return tmp_path_factory.mktemp("crash") / "crashed"


@pytest.fixture(scope="module")
def ray_instance(catalogue: Path, crash_marker: Path) -> Iterator[None]:
    """One local Ray instance for the module (the engine uses it instead of starting one); its
    workers see which item :class:`CrashOnceTextWorker` dies on, and where it notes that it did."""
    import ray

    rows = [json.loads(line) for line in catalogue.read_text().splitlines()]
    env = {
        "RECAGENT_TEST_CRASH": str(rows[CRASH_ITEM_INDEX]["id"]),
        "RECAGENT_TEST_CRASH_MARKER": str(crash_marker),
    }
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def catalogue(demo_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _catalogue(demo_slice, tmp_path_factory.mktemp("ray-catalogue"))


def _settings(prepared_models: Path, folder: Path) -> Settings:
    from tools.config import load_settings

    return _with_batch(
        load_settings(cache_dir=prepared_models, data_dir=folder / "data", store_dir=folder)
    )


@pytest.fixture(scope="module")
def local_store(
    catalogue: Path, prepared_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, IndexReport]:
    settings = _settings(prepared_models, tmp_path_factory.mktemp("local-store"))
    store, models = open_store(settings)
    report = Indexer(store, models, settings.index).run(load_catalogue(catalogue))
    return settings, report


@pytest.fixture(scope="module")
def ray_store(
    catalogue: Path,
    prepared_models: Path,
    tmp_path_factory: pytest.TempPathFactory,
    ray_instance: None,
) -> tuple[Settings, IndexReport]:
    settings = _settings(prepared_models, tmp_path_factory.mktemp("ray-store"))
    store, models = open_store(settings)
    report = RayIndexer(store, models, settings, workers=1).run(load_catalogue(catalogue))
    return settings, report


def test_ray_store_matches_the_local_store(
    ray_store: tuple[Settings, IndexReport], local_store: tuple[Settings, IndexReport]
) -> None:
    (ray_settings, ray_report), (local_settings, local_report) = ray_store, local_store
    assert ray_report.times.model_calls > 0
    assert ray_report.times.calls["transcribe"] > 0 and ray_report.times.calls["caption"] > 0
    assert sorted(ray_report.indexed) == sorted(local_report.indexed)
    contents = _contents(ray_settings)
    assert len(contents["text"]) == len(local_report.indexed) > 20
    _assert_same_store(contents, _contents(local_settings))


def test_a_bad_item_is_reported_and_skipped(ray_store: tuple[Settings, IndexReport]) -> None:
    settings, report = ray_store
    reasons = {e.item_id: e.problem for e in report.failed}
    assert set(reasons) == {"bad/picture", "bad/sound"}
    assert "corrupt" in reasons["bad/picture"] or "not a readable" in reasons["bad/picture"]
    assert "not found" in reasons["bad/sound"]
    stored = _contents(settings)["text"]
    assert "bad/picture" not in stored and "bad/sound" not in stored
    assert len(stored) == len(report.indexed)


def test_a_rerun_makes_no_model_calls(
    ray_store: tuple[Settings, IndexReport], catalogue: Path, prepared_models: Path, tmp_path: Path
) -> None:
    settings, first = ray_store
    report = tmp_path / "report.json"
    env = {"RECAGENT_CACHE_DIR": str(prepared_models), "RECAGENT_DATA_DIR": str(tmp_path)}
    done = recagent(
        "index", str(catalogue), "--store", str(settings.resolved_store_dir), "--engine", "ray",
        "--workers", "2", "--batch-size", str(BATCH), "--no-enrich", "--report", str(report),
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "engine: ray" in done.stdout and "model calls 0" in done.stdout
    figures = json.loads(report.read_text())
    assert figures["model_calls"] == 0 and figures["indexed"] == 0
    assert figures["unchanged"] == len(first.indexed)
    assert {f["item"] for f in figures["failed"]} == {"bad/picture", "bad/sound"}


class CrashOnceTextWorker(TextWorker):
    """Kills its own process on the batch holding one chosen item, the first time only."""

    def __call__(self, batch: Batch) -> Batch:
        works = unpack(batch)
        chosen = [w for w in works if w.id == os.environ["RECAGENT_TEST_CRASH"]]
        if chosen:
            marker = Path(os.environ["RECAGENT_TEST_CRASH_MARKER"])
            if not marker.exists():
                marker.write_text("crashed")
                os._exit(1)
        return super().__call__(batch)


def test_a_killed_worker_loses_nothing(
    catalogue: Path,
    local_store: tuple[Settings, IndexReport],
    prepared_models: Path,
    tmp_path: Path,
    crash_marker: Path,
    ray_instance: None,
) -> None:
    settings = _settings(prepared_models, tmp_path / "store")
    store, models = open_store(settings)
    indexer = RayIndexer(
        store, models, settings, workers=1, actors=Actors(text=CrashOnceTextWorker)
    )
    report = indexer.run(load_catalogue(catalogue))
    assert crash_marker.exists(), "the worker never crashed"
    local_settings, local_report = local_store
    assert sorted(report.indexed) == sorted(local_report.indexed)
    assert len(report.indexed) == len(set(report.indexed))
    _assert_same_store(_contents(settings), _contents(local_settings))


def test_the_bench_catalogue_is_deterministic(tmp_path: Path) -> None:
    from indexing.bench_ray import synthetic_catalogue

    first = synthetic_catalogue(tmp_path / "a", 200, 0.1, 0.05, seed=7)
    second = synthetic_catalogue(tmp_path / "b", 200, 0.1, 0.05, seed=7)
    assert first.read_text() == second.read_text()
    pictures = sorted((tmp_path / "a" / "media").glob("*.png"))
    sounds = sorted((tmp_path / "a" / "media").glob("*.wav"))
    assert 5 < len(pictures) < 40 and 2 < len(sounds) < 25
    assert [p.read_bytes() for p in pictures] == [
        (tmp_path / "b" / "media" / p.name).read_bytes() for p in pictures
    ]
    loaded = load_catalogue(first)
    assert len(loaded.items) == 200 and not loaded.errors


def test_ray_options_need_the_ray_engine(tmp_path: Path, catalogue: Path) -> None:
    done = recagent(
        "index", str(catalogue), "--workers", "2", env={"RECAGENT_DATA_DIR": str(tmp_path)}
    )
    assert done.returncode == 2 and "--address and --workers need --engine ray" in done.stderr


class LosingIndexer(RayIndexer):
    """The driver's loop with the stages run here (no Ray): the first ``failures`` runs fail
    as a dataset that lost a batch would, the first one after its first chunk."""

    failures = 1
    runs = 0

    @contextmanager
    def _connected(self) -> Iterator[Any]:
        yield None

    def _stages(self, ray: Any, planned: Sequence[Planned]) -> Iterator[list[Work]]:
        size, m = self.settings.batch_size, self.models
        self.runs += 1
        for start in range(0, len(planned), size):
            if self.runs <= self.failures and (start or self.runs > 1):
                raise RuntimeError("a batch was lost")
            works = [Work(p) for p in planned[start : start + size]]
            times = StageTimes()
            picture_stage(works, m.captioner, m.image_embedder, self.settings, None, times)
            audio_stage(works, m.transcriber, self.settings, times)
            text_stage(works, m.text_embedder, times)
            yield works


def test_the_driver_runs_lost_items_again(prepared_models: Path, tmp_path: Path) -> None:
    catalogue = write_small_catalogue(tmp_path / "catalogue")
    settings = _settings(prepared_models, tmp_path / "store")
    store, models = open_store(settings)
    report = LosingIndexer(store, models, settings).run(load_catalogue(catalogue))
    assert sorted(report.indexed) == sorted(row[0] for row in ROWS) and not report.failed
    assert store.count()[0] == len(ROWS)

    again = tmp_path / "again"
    store, models = open_store(_settings(prepared_models, again))
    losing = LosingIndexer(store, models, _settings(prepared_models, again))
    losing.failures = ATTEMPTS
    with pytest.raises(RayIndexingError, match=rf"{len(ROWS) - BATCH} items were not indexed"):
        losing.run(load_catalogue(catalogue))
    assert store.count()[0] == BATCH  # the first chunk was written and stays
