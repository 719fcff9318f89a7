"""``recagent index --engine ray``: the indexing stages as Ray Data ``map_batches`` stages.

The driver does what the local :class:`~indexing.pipeline.Indexer` does before and after the
model work: it loads and validates the catalogue, hashes every item and compares the hashes with
the store (so only changed items go to Ray, and a re-run over a finished store starts no Ray work
at all), and it writes the results into the store in chunks as they arrive (ids upserted, so a
killed run, re-run, finishes the rest). In between, the planned items go through up to three
stages, each an actor pool whose actors build their models once (each model loads on first use):

* :class:`PictureWorker`: decode, caption/tag and embed the pictures (the vision model's one
  forward pass serves both);
* :class:`AudioWorker`: decode and transcribe the audio;
* :class:`TextWorker`: the document and its text embedding.

Each stage calls the same functions as the local loop (:mod:`indexing.stages`), so both engines
store the same records. A stage whose items need nothing of it is left out (no model loads).

A worker that dies mid-run is restarted by Ray and its batch retried; should a batch still be
lost, the driver runs the items it did not get back again (:data:`ATTEMPTS` runs in all).

``ray`` is imported only when the engine runs, so the package does not need it at import time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexing.pipeline import Indexer, IndexReport, Progress
from indexing.stages import (
    Planned,
    StageTimes,
    Work,
    account,
    audio_stage,
    build_records,
    picture_stage,
    text_stage,
    write_records,
)
from indexing.store import Store
from tools.config import Settings
from tools.errors import ModelError, RecagentError
from tools.factory import Models, build_models
from tools.renders import RenderCache

log = logging.getLogger(__name__)


def _own_addresses() -> set[str]:
    """This machine's names and IPv4 addresses (the outward one as Ray finds its node IP: the
    source address of a UDP socket "connected" to an outside address; nothing is sent)."""
    own = {"127.0.0.1", "localhost", "::1", socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError):
        own.add(socket.gethostbyname(socket.gethostname()))
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("10.255.255.255", 1))
        own.add(udp.getsockname()[0])
    return own


def _on_this_machine(address: str) -> bool:
    return address.rsplit(":", 1)[0].strip("[]") in _own_addresses()


def token_auth_if_available(address: str) -> None:
    """Ray 2.59+ starts clusters (``ray start``) with token authentication on, and refuses a
    client that connects by address without the token, even on the same machine. For a
    cluster on this machine, when ``RAY_AUTH_MODE`` is unset and ``ray start`` left its token
    here (``~/.ray/auth_token``, or ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH``), send it, as
    Ray's own CLI does for a cluster it finds by itself; a cluster without authentication
    accepts such a client too (checked with ray 2.60). The token is never sent to another
    machine unasked: there, set ``RAY_AUTH_MODE=token`` (README, "Indexing on Ray"). Ray
    caches its configuration when imported, so its own helper sets the mode."""
    if os.environ.get("RAY_AUTH_MODE") or not _on_this_machine(address):
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )

        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    except (ImportError, TypeError):  # another Ray: RAY_AUTH_MODE=token still works
        return


def connect(address: str) -> None:
    """Connect this process to the Ray cluster at ``address`` (``HOST:PORT``)."""
    import ray
    import ray.exceptions

    token_auth_if_available(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
        raise RayIndexingError(
            f"cannot reach the Ray cluster at {address}: {exc} (a cluster with token "
            "authentication needs RAY_AUTH_MODE=token and its token on this machine: "
            "RAY_AUTH_TOKEN, or the head's ~/.ray/auth_token copied here)"
        ) from exc


def start_local(cpus: int) -> None:
    """Start a Ray instance of ``cpus`` CPUs for this process alone (``address="local"``: not
    the cluster a ``ray start`` on this machine may be running)."""
    import ray

    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )


ATTEMPTS = 3  # runs of the Ray stages over the items not yet written, before giving up
Batch = dict[str, np.ndarray]


class RayIndexingError(RecagentError):
    """The Ray stages failed for some items ``ATTEMPTS`` times; what was written stays."""


def pack(works: Sequence[Work]) -> Batch:
    """A Ray batch of works (one pickled :class:`Work` per row, without decoded pictures)."""
    column = np.empty(len(works), dtype=object)
    column[:] = [pickle.dumps(w, protocol=pickle.HIGHEST_PROTOCOL) for w in works]
    return {"work": column}


def unpack(batch: Batch) -> list[Work]:
    return [pickle.loads(row) for row in batch["work"]]


def _limit_threads(threads: int) -> None:
    """Torch's threads in this worker process, so that the workers share the cores."""
    import torch

    torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1)))


class StageWorker:
    """An actor of one stage: builds the models once, then runs its stage on each batch."""

    def __init__(self, settings: Settings, threads: int, renders: RenderCache | None) -> None:
        _limit_threads(threads)
        self.settings = settings
        self.models: Models = build_models(settings)  # nothing loads until first use
        self.renders = renders

    def run(self, works: list[Work], times: StageTimes) -> None:
        raise NotImplementedError

    def __call__(self, batch: Batch) -> Batch:
        works = unpack(batch)
        times = StageTimes()
        self.run(works, times)
        if works:  # the batch's times ride on its first item back to the driver
            first = works[0]
            if first.times is None:
                first.times = times
            else:
                first.times.add(times)
        return pack(works)


class PictureWorker(StageWorker):
    def run(self, works: list[Work], times: StageTimes) -> None:
        m = self.models
        picture_stage(
            works, m.captioner, m.image_embedder, self.settings.index, self.renders, times
        )


class AudioWorker(StageWorker):
    def run(self, works: list[Work], times: StageTimes) -> None:
        audio_stage(works, self.models.transcriber, self.settings.index, times)


class TextWorker(StageWorker):
    def run(self, works: list[Work], times: StageTimes) -> None:
        text_stage(works, self.models.text_embedder, times)


@dataclass(frozen=True)
class Actors:
    """The actor class of each stage (tests put in one that fails on purpose)."""

    picture: type[StageWorker] = PictureWorker
    audio: type[StageWorker] = AudioWorker
    text: type[StageWorker] = TextWorker


class RayIndexer(Indexer):
    """The :class:`Indexer` with its model work on Ray: ``address`` is a running cluster's
    (``ray start --head``); without it a local Ray instance is started for the run (unless this
    process is connected already). ``workers``: actors per stage."""

    def __init__(
        self,
        store: Store,
        models: Models,
        settings: Settings,
        renders: RenderCache | None = None,
        address: str | None = None,
        workers: int = 1,
        actors: Actors | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        super().__init__(store, models, settings.index, renders)
        self.full_settings = settings
        self.address = address
        self.workers = workers
        self.actors = actors or Actors()

    @contextmanager
    def _connected(self) -> Iterator[Any]:
        import ray

        started = False
        if not ray.is_initialized():
            if self.address:
                connect(self.address)
            else:
                start_local(max(self.workers, os.cpu_count() or 1))
            started = True
        import ray.data  # configures its logger, which is quietened here

        logging.getLogger("ray.data").setLevel(logging.ERROR)  # not lines per dataset
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the caller's bar shows the written items
        context.print_on_execution_start = False
        try:
            yield ray
        finally:
            if started:
                ray.shutdown()

    def _stages(self, ray: Any, planned: Sequence[Planned]) -> Iterator[list[Work]]:
        """The works of ``planned`` as they come back from the stages, a chunk at a time."""
        import pyarrow

        size = self.settings.batch_size
        stages: list[type[StageWorker]] = []
        if any(p.item.image is not None for p in planned):
            stages.append(self.actors.picture)
        if any(p.needs_text and p.item.audio for p in planned):
            stages.append(self.actors.audio)
        if any(p.needs_text for p in planned):
            stages.append(self.actors.text)
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        share = min(1.0, cpus / (self.workers * max(1, len(stages))))
        threads = max(1, int(cpus // self.workers))
        # one block per chunk, so each stage's batches are the local loop's chunks
        blocks = [
            pyarrow.table({"work": pack([Work(p) for p in planned[i : i + size]])["work"]})
            for i in range(0, len(planned), size)
        ]
        data = ray.data.from_arrow(blocks)
        for stage in stages:
            data = data.map_batches(
                stage,
                batch_size=size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=self.workers),
                fn_constructor_kwargs={
                    "settings": self.full_settings,
                    "threads": threads,
                    "renders": self.renders,
                },
                num_cpus=share,
            )
        for batch in data.iter_batches(batch_size=size, batch_format="numpy"):
            yield unpack(batch)

    def _process(self, todo: list[Planned], report: IndexReport, progress: Progress | None) -> None:
        total = len(todo)
        if progress:
            progress(0, total)
        if not todo:  # nothing changed: Ray is not even started
            return
        written: set[str] = set()
        with self._connected() as ray:
            for attempt in range(1, ATTEMPTS + 1):
                remaining = [p for p in todo if p.item.id not in written]
                if not remaining:
                    break
                results = self._stages(ray, remaining)
                while True:
                    try:
                        works = next(results)
                    except StopIteration:
                        break
                    except ModelError:
                        raise
                    except Exception as exc:  # a lost worker or batch: Ray's errors vary
                        if attempt == ATTEMPTS:
                            raise RayIndexingError(
                                f"{total - len(written)} items were not indexed after "
                                f"{ATTEMPTS} attempts (what was written is kept; run again "
                                f"to finish): {exc}"
                            ) from exc
                        log.warning("Ray run %d lost items (%s); running them again", attempt, exc)
                        break
                    works = [w for w in works if w.id not in written]
                    for work in works:
                        if work.times is not None:
                            report.times.add(work.times)
                    records = build_records(works, self.models.transcriber.model_id)
                    write_records(self.store, records, report.times)
                    account(works, report)
                    written.update(w.id for w in works)
                    if progress:
                        progress(len(written), total)
        lost = [p.item.id for p in todo if p.item.id not in written]
        if lost:
            raise RayIndexingError(
                f"{len(lost)} items did not come back from the Ray stages after {ATTEMPTS} "
                f"attempts (what was written is kept; run again to finish), e.g. {lost[0]}"
            )
