"""Untrusted SVG rendering: every check of the markup and the rendering run in a child process
with memory and time limits (:mod:`tools.svg_child`), never in the process that serves requests.

An SVG is a program for the renderer. What a catalogue's picture may do here:

* **references**: ``href`` values stay only when they point inside the document (``#id``) or
  are ``data:`` pictures in a raster format; a relative path to a raster file inside the SVG's
  own folder (no link, no ``..`` out of it, under the size limit) is inlined as ``data:``.
  Everything else (absolute paths, ``../``, ``file:``, ``http:``, ``/dev/zero``, nested SVG
  documents) is removed before the renderer sees it, and no resources folder is given to it.
* **the markup** is parsed by expat (through ``defusedxml``: linear in its input, no external
  entity or DTD is fetched; internal entities expand inside the child's limits) and written
  back without its DTD, so the renderer sees only what the checks saw.
* **size**: at most ``MAX_SVG_BYTES`` of markup (``.svgz`` is inflated only up to it); at most
  ``MAX_ELEMENTS`` elements once every ``<use>`` is expanded (nested ``<use>`` multiply), of
  which at most ``MAX_EFFECTS`` filtered or masked (each costs a pass over its region); the
  output size comes from the declared size (``width``/``height``/``viewBox``): the long side is
  the working size, and a shape thinner than 1:``MAX_ASPECT`` is refused before rendering.
* **the renderers**: ``POOL_SIZE`` long-lived child processes, each with an address-space limit
  (``MEMORY_LIMIT``) and a per-picture deadline (``DEADLINE_S``); at most ``QUEUE_LIMIT``
  pictures wait for one, further ones are refused at once (one user cannot starve the rest). A
  crash (SIGABRT on a huge allocation, a stack overflow on deep nesting), the limit or the
  deadline costs that picture (a :class:`MediaError`); that child is replaced.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from tools.errors import MediaError

MEMORY_LIMIT = 1 << 30  # bytes of address space for each renderer
DEADLINE_S = 10.0  # seconds for one picture
MAX_ASPECT = 256  # longest side / shortest side
MAX_SVG_BYTES = 4_000_000  # markup after inflating .svgz
MAX_ELEMENTS = 50_000  # elements after expanding <use> (the demo catalogue's largest: 1,809)
MAX_EFFECTS = 200  # of them filtered or masked (the demo catalogue's most: 29)
POOL_SIZE = 2  # renderers (child processes)
QUEUE_LIMIT = 8  # pictures that may wait for a renderer
CHILD = Path(__file__).with_name("svg_child.py")


def request_header(
    path: Path, size: int, max_bytes: int = MAX_SVG_BYTES, folder: Path | None = None
) -> dict[str, object]:
    """What the child needs besides the bytes: the limits, the output size and the folder whose
    raster files the picture may inline (default: the picture's own)."""
    return {
        "svgz": path.suffix.lower() == ".svgz",
        "max_bytes": max_bytes,
        "max_elements": MAX_ELEMENTS,
        "max_effects": MAX_EFFECTS,
        "max_ref_bytes": max_bytes,
        "max_aspect": MAX_ASPECT,
        "size": size,
        "folder": str(folder if folder is not None else path.parent),
    }


# -- the child processes ------------------------------------------------------------------------


class Renderer:
    """One child process that checks and renders SVGs; replaced after a crash or a deadline."""

    def __init__(self, memory: int = MEMORY_LIMIT, deadline: float = DEADLINE_S) -> None:
        self.memory = memory
        self.deadline = deadline
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _process(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            self._child = subprocess.Popen(
                [sys.executable, "-I", str(CHILD), str(self.memory)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        return self._child

    def _discard(self) -> None:
        child, self._child = self._child, None
        if child is not None and child.poll() is None:
            child.kill()
        if child is not None:
            child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()

    def _read(self, child: subprocess.Popen[bytes], count: int, until: float) -> bytes:
        assert child.stdout is not None
        fd = child.stdout.fileno()
        chunks, got = [], 0
        poller = select.poll()  # poll, not select: any descriptor number works
        poller.register(fd, select.POLLIN)
        while got < count:
            remaining = until - time.monotonic()
            if remaining <= 0 or not poller.poll(remaining * 1000):
                raise TimeoutError
            chunk = os.read(fd, count - got)
            if not chunk:
                raise BrokenPipeError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def render(self, data: bytes, path: Path, size: int, **limits: object) -> bytes:
        """The PNG of the SVG (or SVGZ) file ``data`` read from ``path``, ``size`` pixels on its
        long side; ``limits`` override :func:`request_header`'s. Any failure is a MediaError
        naming ``path``."""
        header = json.dumps({**request_header(path, size), **limits}).encode()
        frames = struct.pack(">I", len(header)) + header + struct.pack(">I", len(data)) + data
        with self._lock:  # one picture at a time: the limits are per child
            child = self._process()
            until = time.monotonic() + self.deadline
            try:
                assert child.stdin is not None
                child.stdin.write(frames)
                child.stdin.flush()
                status, length = struct.unpack(">BI", self._read(child, 5, until))
                answer = self._read(child, length, until)
            except TimeoutError as exc:
                self._discard()
                raise MediaError(
                    f"SVG took longer than {self.deadline:g} s to render, refused: {path}"
                ) from exc
            except (BrokenPipeError, ConnectionError, struct.error) as exc:
                self._discard()
                raise MediaError(
                    "SVG crashed the renderer or went over its memory limit "
                    f"({self.memory >> 20} MiB), refused: {path}"
                ) from exc
            except BaseException:  # anything else: its answer may be in the pipe, so the
                self._discard()  # next picture would read it; a fresh child instead
                raise
        if status != 0:
            raise MediaError(f"{answer.decode('utf-8', 'replace')}: {path}")
        return answer

    def close(self) -> None:
        with self._lock:
            self._discard()


class RendererPool:
    """``size`` renderers shared by every thread; at most ``queue_limit`` callers wait for one,
    and a caller beyond that is refused at once instead of queueing behind slow pictures."""

    def __init__(
        self,
        size: int = POOL_SIZE,
        queue_limit: int = QUEUE_LIMIT,
        memory: int = MEMORY_LIMIT,
        deadline: float = DEADLINE_S,
    ) -> None:
        self._idle: queue.Queue[Renderer] = queue.Queue()
        self._all = [Renderer(memory, deadline) for _ in range(size)]
        for one in self._all:
            self._idle.put(one)
        self._waiting = threading.BoundedSemaphore(size + queue_limit)
        self.deadline = deadline

    def render(self, data: bytes, path: Path, size: int, **limits: object) -> bytes:
        """:meth:`Renderer.render` on the first free renderer (see the class doc)."""
        if not self._waiting.acquire(blocking=False):
            raise MediaError(f"too many SVG pictures are being rendered; try again later: {path}")
        try:
            try:  # a waiting picture waits at most as long as the pictures ahead of it may take
                one = self._idle.get(timeout=self.deadline * 2)
            except queue.Empty:
                raise MediaError(
                    f"no SVG renderer became free in time; try again later: {path}"
                ) from None
            try:
                return one.render(data, path, size, **limits)
            finally:
                self._idle.put(one)
        finally:
            self._waiting.release()

    def close(self) -> None:
        for one in self._all:
            one.close()


_shared: RendererPool | None = None
_shared_lock = threading.Lock()


def renderer() -> RendererPool:
    """The process's renderers, started on first use (and stopped when the process exits)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RendererPool()
            atexit.register(_shared.close)
        return _shared
