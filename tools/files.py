"""Reading an untrusted file: one handle, opened without following a symbolic link, with the
type and size checked on that same handle, so a file swapped after a check is never read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tools.errors import MediaError


def read_bounded(path: Path, max_bytes: int, kind: str) -> bytes:
    """The file's bytes, read from one handle opened without following a symbolic link, with
    its type and size checked on that same handle (a file swapped after a check is not read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise MediaError(f"{kind} file not found: {path}") from exc
    except OSError as exc:
        if path.is_symlink():
            raise MediaError(
                f"{kind} file is a symbolic link, which is not followed: {path}"
            ) from exc
        raise MediaError(f"{kind} file could not be opened ({exc.strerror}): {path}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise MediaError(f"{kind} path is not a regular file: {path}")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size == 0:
            raise MediaError(f"{kind} file is empty (0 bytes): {path}")
        if info.st_size > max_bytes:
            raise MediaError(
                f"{kind} file is {info.st_size / 1e6:.1f} MB, over the limit of "
                f"{max_bytes / 1e6:.1f} MB: {path}"
            )
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise MediaError(f"{kind} file grew past the limit while read: {path}")
    return data
