"""Rendered pictures kept by content: an SVG is rendered once (at index time, or the first time it
is served) and the PNG is stored under the SHA-256 of the file it came from, so serving a picture
never renders it again unless the file changed."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image

from tools.media import WORKING_SIZE

LAYOUT = f"svg-{WORKING_SIZE}px-v1"  # what a render is: a change starts a fresh folder


class RenderCache:
    """PNG renders under ``folder`` (in a subfolder named by the render size and version), one
    file per source digest (``<sha256>.png``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / LAYOUT

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a SHA-256 digest: {digest[:80]!r}")
        return self.folder / f"{digest}.png"

    def get(self, digest: str) -> bytes | None:
        """The stored PNG for ``digest``, or None."""
        try:
            return self.path(digest).read_bytes()
        except OSError:
            return None

    def put(self, digest: str, image: Image.Image) -> bytes:
        """Store ``image`` as the PNG for ``digest`` (written whole, then renamed into place, so
        a reader never sees half a file) and return its bytes."""
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data = buffer.getvalue()
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, self.path(digest))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return data
