"""Untrusted SVG rendering: the markup is made safe to render, then rendered in a child process
with memory and CPU limits.

An SVG is a program for the renderer. What a catalogue's picture may do here:

* **references**: ``href`` values stay only when they point inside the document (``#id``) or
  are ``data:`` pictures in a raster format; a relative path to a raster file inside the SVG's
  own folder (no link, no ``..`` out of it, under the size limit) is inlined as ``data:``.
  Everything else (absolute paths, ``../``, ``file:``, ``http:``, ``/dev/zero``, nested SVG
  documents) is removed before the renderer sees it, and no resources folder is given to it.
* **the DTD**: entity declarations that would build markup (``<`` or character references in
  an entity) and ``<!ATTLIST`` defaults are refused, since they could assemble a reference the
  scan above cannot see.
* **size**: the output size comes from the declared size (``width``/``height``/``viewBox``):
  the long side is the working size, and a shape thinner than 1:``MAX_ASPECT`` is refused
  before rendering; ``.svgz`` is inflated only up to the byte limit.
* **the renderer** runs in one long-lived child process with an address-space limit
  (``MEMORY_LIMIT``) and a per-picture deadline (``DEADLINE_S``). A crash (SIGABRT on a huge
  allocation, a stack overflow on deep nesting), the limit or the deadline costs that picture
  (a :class:`MediaError`); the next picture gets a fresh child.
"""

from __future__ import annotations

import atexit
import base64
import gzip
import io
import os
import re
import select
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

from tools.errors import MediaError
from tools.files import read_bounded

MEMORY_LIMIT = 1 << 30  # bytes of address space for the renderer
DEADLINE_S = 20.0  # seconds for one picture
MAX_ASPECT = 256  # longest side / shortest side
RASTER_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
}

_HREF = re.compile(r"""(?P<name>(?:[\w.-]+:)?href)\s*=\s*(?P<q>["'])(?P<value>.*?)(?P=q)""", re.S)
_DATA_RASTER = re.compile(r"data:image/(?:png|jpeg|jpg|gif|webp)[;,]", re.I)
_ENTITY = re.compile(r"<!ENTITY\s[^>]*>", re.S)
_UNIT_PX = {"px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
_SIZE_ATTR = re.compile(
    r'(?<![\w-])(width|height)\s*=\s*"\s*([0-9.]+)\s*(px|pt|pc|mm|cm|in|%)?\s*"'
)
_VIEWBOX = re.compile(
    r'(?<![\w-])viewBox\s*=\s*"\s*([-0-9.eE+]+)[\s,]+([-0-9.eE+]+)[\s,]+'
    r'([-0-9.eE+]+)[\s,]+([-0-9.eE+]+)\s*"'
)


def inflate(raw: bytes, max_bytes: int, path: Path) -> bytes:
    """A ``.svgz`` body, inflated up to ``max_bytes``."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise MediaError(f"SVGZ could not be inflated ({exc}): {path}") from exc
    if len(data) > max_bytes:
        raise MediaError(
            f"SVGZ inflates to more than {max_bytes / 1e6:.1f} MB, over the limit: {path}"
        )
    return data


def sanitize(text: str, folder: Path, max_bytes: int, path: Path) -> str:
    """``text`` with every reference outside the document removed or inlined (see above)."""
    for declaration in _ENTITY.findall(text):
        if "<" in declaration[2:] or "&#" in declaration:
            raise MediaError(f"SVG declares an entity that builds markup, refused: {path}")
    if "<!ATTLIST" in text:
        raise MediaError(f"SVG declares attribute defaults (<!ATTLIST), refused: {path}")

    def replace(match: re.Match[str]) -> str:
        value = match.group("value").strip()
        if value.startswith("#") or _DATA_RASTER.match(value):
            return match.group(0)
        inlined = _inline(value, folder, max_bytes)
        quote = match.group("q")
        return f"{match.group('name')}={quote}{inlined}{quote}"

    return _HREF.sub(replace, text)


def _inline(reference: str, folder: Path, max_bytes: int) -> str:
    """A relative reference to a raster file inside ``folder`` as a ``data:`` URL, else ""."""
    if not reference or ":" in reference or reference.startswith(("/", "\\")) or "&" in reference:
        return ""
    kind = RASTER_TYPES.get(Path(reference).suffix.lower())
    target = folder / reference
    try:
        resolved = target.resolve(strict=True)
        if kind is None or not resolved.is_relative_to(folder.resolve()):
            return ""
        data = read_bounded(target, max_bytes, "image")
    except (OSError, MediaError):
        return ""
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def output_size(text: str, size: int, path: Path) -> tuple[int, int]:
    """(width, height) to render at: the declared shape with its long side at ``size``."""
    root = re.search(r"<svg\b[^>]*>", text)
    if root is None:
        raise MediaError(f"SVG could not be rendered (no <svg> element): {path}")
    tag = root.group(0)
    box = _VIEWBOX.search(tag)
    sizes = {
        m.group(1): float(m.group(2)) * _UNIT_PX.get(m.group(3) or "px", 1.0)
        for m in _SIZE_ATTR.finditer(tag)
        if m.group(3) != "%"
    }
    width, height = sizes.get("width"), sizes.get("height")
    if box is not None and (width is None or height is None):
        try:
            box_w, box_h = float(box.group(3)), float(box.group(4))
        except ValueError:
            box_w = box_h = 0.0
        if width is None and height is None:
            width, height = box_w, box_h
        elif width is None and box_h > 0:
            width = height * box_w / box_h if height is not None else None
        elif height is None and box_w > 0:
            height = width * box_h / box_w if width is not None else None
    if not width or not height:
        width = height = 100.0  # the renderer's default size
    if width <= 0 or height <= 0:
        raise MediaError(f"SVG declares a size of zero or below: {path}")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise MediaError(
            f"SVG's declared shape is {width:g}x{height:g}, thinner than 1:{MAX_ASPECT}, "
            f"refused: {path}"
        )
    if width >= height:
        return size, max(1, round(size * height / width))
    return max(1, round(size * width / height)), size


def to_px_units(text: str) -> str:
    """The root element's width/height in absolute units rewritten to pixels (the renderer
    rejects some unit forms); percentages are dropped so the viewBox decides."""
    match = re.search(r"<svg\b[^>]*>", text)
    if not match:
        return text

    def fix(attr: re.Match[str]) -> str:
        unit = attr.group(3) or "px"
        if unit == "%":
            return ""
        return f'{attr.group(1)}="{float(attr.group(2)) * _UNIT_PX[unit]:.2f}"'

    tag = _SIZE_ATTR.sub(fix, match.group(0))
    return text[: match.start()] + tag + text[match.end() :]


def prepare(data: bytes, path: Path, max_bytes: int, size: int) -> tuple[str, int, int]:
    """(safe markup, width, height) to render the file's ``data`` at ``size`` on its long
    side: inflated if ``.svgz``, references sanitised, units in pixels, shape checked."""
    if path.suffix.lower() == ".svgz":
        data = inflate(data, max_bytes, path)
    text = to_px_units(
        sanitize(data.decode("utf-8", errors="replace"), path.parent, max_bytes, path)
    )
    return (text, *output_size(text, size, path))


# -- the child process --------------------------------------------------------------------------

# The child is a bare interpreter running this program: it imports only resvg, sets its own
# limits, then answers requests on stdin (an 8-byte header: width, height as uint16, body length
# as uint32, then the SVG as UTF-8) with a status byte (0 ok, 1 error), a uint32 length and the
# PNG or the error text.
_CHILD = """
import resource, struct, sys
memory = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
import resvg_py
read, write = sys.stdin.buffer.read, sys.stdout.buffer.write
while True:
    header = read(8)
    if len(header) < 8:
        break
    width, height, size = struct.unpack(">HHI", header)
    text = read(size).decode("utf-8", "replace")
    try:
        body, status = bytes(resvg_py.svg_to_bytes(svg_string=text, width=width, height=height)), 0
    except (ValueError, MemoryError) as exc:
        body, status = str(exc).encode("utf-8", "replace")[:2000], 1
    write(struct.pack(">BI", status, len(body)) + body)
    sys.stdout.buffer.flush()
"""


class Renderer:
    """The one child process that renders SVGs; restarted after a crash or a deadline."""

    def __init__(self, memory: int = MEMORY_LIMIT, deadline: float = DEADLINE_S) -> None:
        self.memory = memory
        self.deadline = deadline
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _process(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            self._child = subprocess.Popen(
                [sys.executable, "-I", "-c", _CHILD, str(self.memory)],
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
        while got < count:
            remaining = until - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(fd, count - got)
            if not chunk:
                raise BrokenPipeError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def render(self, text: str, width: int, height: int, path: Path) -> bytes:
        """The PNG of ``text`` at ``width`` x ``height``; any failure is a MediaError."""
        body = text.encode("utf-8")
        with self._lock:  # one picture at a time: the limits are per child
            child = self._process()
            until = time.monotonic() + self.deadline
            try:
                assert child.stdin is not None
                child.stdin.write(struct.pack(">HHI", width, height, len(body)) + body)
                child.stdin.flush()
                status, size = struct.unpack(">BI", self._read(child, 5, until))
                answer = self._read(child, size, until)
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
        if status != 0:
            raise MediaError(
                f"SVG could not be rendered ({answer.decode('utf-8', 'replace')}): {path}"
            )
        return answer

    def close(self) -> None:
        with self._lock:
            self._discard()


_shared: Renderer | None = None
_shared_lock = threading.Lock()


def renderer() -> Renderer:
    """The process's renderer, started on first use (and stopped when the process exits)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Renderer()
            atexit.register(_shared.close)
        return _shared
