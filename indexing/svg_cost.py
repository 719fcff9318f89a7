"""What rendering SVGs in the sandbox costs: the same pictures rendered by resvg in this process
(the raw component) and through :mod:`tools.svg`'s child process, in one run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from tools import svg_child
from tools.errors import MediaError
from tools.files import read_bounded
from tools.media import SVG_SUFFIXES, WORKING_SIZE
from tools.svg import renderer, request_header


def svg_sandbox_cost(paths: Sequence[Path], max_bytes: int) -> dict[str, float | int | bool]:
    """Seconds to render ``paths`` in process and in the sandbox, and the sandbox's share."""
    jobs = []
    for path in paths:
        if path.suffix.lower() not in SVG_SUFFIXES:
            continue
        try:
            jobs.append((path, read_bounded(path, max_bytes, "image")))
        except MediaError:
            continue
    sandbox = renderer()
    if jobs:  # the child's start is paid once per process: not part of the per-picture cost
        sandbox.render(jobs[0][1], jobs[0][0], WORKING_SIZE)
    started = time.perf_counter()
    for path, data in jobs:
        try:
            svg_child.render(request_header(path, WORKING_SIZE), data)
        except svg_child.Refused:
            continue
    direct = time.perf_counter() - started
    started = time.perf_counter()
    for path, data in jobs:
        try:
            sandbox.render(data, path, WORKING_SIZE)
        except MediaError:
            continue
    sandboxed = time.perf_counter() - started
    share = (sandboxed - direct) / direct if direct else 0.0
    return {
        "pictures": len(jobs),
        "in_process_seconds": round(direct, 3),
        "sandboxed_seconds": round(sandboxed, 3),
        "sandbox_overhead_share": round(share, 4),
        "overhead_ok (<= 0.10)": share <= 0.10,
    }
