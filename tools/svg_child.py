"""The SVG renderer's child process: every check of untrusted markup and the rendering itself run
here, under an address-space limit, while the parent waits with a deadline.

This file runs as a script (``python -I tools/svg_child.py MEMORY``) in a process of its own,
so nothing of the server's state is within reach of a picture; besides ``defusedxml`` and
``resvg_py`` it uses only the project's bounded file reader (:func:`tools.files.read_bounded`).
:func:`inflate` is also what the service checks an uploaded ``.svgz`` with. The parent writes
requests on stdin (a 4-byte big-endian length and a JSON header, then a 4-byte length and the
file's bytes) and reads a status byte (0 ok, 1 refused), a 4-byte length and the PNG or the
reason.

What a picture may do (the module doc of :mod:`tools.svg` has the policy): the markup is parsed
by expat through ``defusedxml`` (linear in its input; no DTD fetched, no external entity; internal
entities expand within expat's amplification limit and the memory limit), every ``href`` is kept
only when it points inside the document (``#id``) or is a ``data:`` raster, a relative raster file
beside the SVG is inlined, and the rest is removed; the element count after expanding every
``<use>`` is bounded; the tree is written back without its DTD and rendered by resvg.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import resource
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
RASTER_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
}
DATA_RASTER = re.compile(r"data:image/(png|jpeg|jpg|gif|webp)(;base64)?,", re.I)
RASTER_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF")  # png, jpeg, gif, webp
EFFECTS = ("filter", "mask", "clip-path", "opacity", "mix-blend-mode", "isolation")
MARKERS = ("marker-start", "marker-mid", "marker-end", "marker")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_URL_ID = re.compile(r"url\(\s*['\"]?#([^'\")\s]+)")
UNIT_PX = {"px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}


class Refused(Exception):
    """The picture is refused; the message says why (the parent adds the file's name)."""


def inflate(data: bytes, limit: int) -> bytes:
    """A ``.svgz`` body inflated, at most ``limit`` bytes of it (more is refused)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise Refused(f"SVGZ could not be inflated ({exc})") from None
    if len(out) > limit:
        raise Refused(f"SVGZ inflates to more than {limit / 1e6:.1f} MB, over the limit")
    return out


def parse(data: bytes) -> Any:
    """The document's root element (expat through defusedxml: no external entity, no DTD fetch)."""
    from xml.etree.ElementTree import ParseError

    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException

    try:
        return DET.fromstring(data, forbid_dtd=False, forbid_entities=False, forbid_external=True)
    except DefusedXmlException as exc:
        raise Refused(
            f"SVG refers to an external entity or resource ({type(exc).__name__})"
        ) from None
    except ParseError as exc:
        raise Refused(f"SVG is not well-formed XML ({exc})") from None


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _href_names(element: Any) -> list[str]:
    return [name for name in element.attrib if _local(name) == "href"]


def _target(element: Any) -> str:
    """The id a ``<use>`` refers to, as resvg reads it: a plain ``href`` wins over
    ``xlink:href`` and surrounding spaces are ignored; "" when it is not ``#id``."""
    names = sorted(_href_names(element), key=lambda n: n.startswith("{"))  # href first
    value = str(element.get(names[0]) or "").strip() if names else ""
    return value[1:].strip() if value.startswith("#") else ""


def _data_raster(value: str) -> bool:
    """A ``data:`` URL of a raster picture whose bytes really are one (an SVG under a raster
    type, or under a malformed type, would be rendered unchecked)."""
    match = DATA_RASTER.match(value)
    if match is None:
        return False
    payload = value[match.end() : match.end() + 64]
    if match.group(2):
        try:
            head = base64.b64decode(payload[: len(payload) // 4 * 4])
        except ValueError:
            return False
    else:
        from urllib.parse import unquote_to_bytes

        head = unquote_to_bytes(payload)
    return head.startswith(RASTER_MAGIC)


def _properties(element: Any) -> dict[str, str]:
    """The element's attributes and ``style`` declarations, by local name."""
    found = {_local(k): str(v).strip() for k, v in element.attrib.items()}
    for declaration in str(element.get("style") or "").split(";"):
        name, _, value = declaration.partition(":")
        if value.strip():
            found[name.strip()] = value.strip()
    return found


def _vertices(element: Any) -> int:
    """At most how many vertices a shape has (two numbers of its geometry each, and ends)."""
    geometry = str(element.get("d") or element.get("points") or "")
    return len(_NUMBER.findall(geometry)) // 2 + 2


def _has_effect(properties: dict[str, str], styled: bool) -> bool:
    """Whether the renderer draws the element in a layer of its own (a filter, a mask, a clip,
    group opacity, blending: each a pass over its region; a thousand blurred copies took 36 s,
    two thousand half-transparent groups 16 s); ``styled`` when a ``<style>`` sheet mentions
    any of them, which may apply them to any element."""
    if styled:
        return True
    for name in EFFECTS:
        value = properties.get(name)
        if value is not None and value not in ("none", "1", "auto", "normal"):
            return True
    return False


def expanded_size(root: Any, max_elements: int, max_effects: int) -> tuple[int, int]:
    """(elements, layered elements) the renderer would build once every ``<use>`` and every
    marker is expanded; more than ``max_elements`` or ``max_effects`` (or a reference cycle)
    is refused. Each element is costed once (memoised), so this is linear in the document."""
    by_id: dict[str, Any] = {}
    styled = False
    for element in root.iter():
        ident = str(element.get("id") or "").strip()
        if ident:
            by_id.setdefault(ident, element)
        if _local(element.tag) == "style":
            sheet = "".join(element.itertext())
            styled = styled or any(name in sheet for name in (*EFFECTS, "marker"))
    cost: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def check(elements: int, effects: int) -> None:
        if elements > max_elements:
            raise Refused(
                f"SVG expands to more than {max_elements:,} elements (nested <use> or "
                "markers), refused"
            )
        if effects > max_effects:
            raise Refused(
                f"SVG draws more than {max_effects:,} elements with filters, masks, clips, "
                "opacity or blending, refused"
            )

    def size(element: Any) -> tuple[int, int]:
        key = id(element)
        if key in cost:
            return cost[key]
        if key in active:
            raise Refused("SVG has a reference that leads back to itself, refused")
        active.add(key)
        properties = _properties(element)
        elements, effects = 1, int(_has_effect(properties, styled))
        children = [(child, 1) for child in element]
        if _local(element.tag) == "use" and _target(element) in by_id:
            children.append((by_id[_target(element)], 1))
        for name in MARKERS:  # a marker is drawn at every vertex
            found = _URL_ID.search(properties.get(name, ""))
            if found is not None and found.group(1) in by_id:
                children.append((by_id[found.group(1)], _vertices(element)))
        for child, times in children:
            more, costly = size(child)
            elements, effects = elements + times * more, effects + times * costly
            check(elements, effects)
        active.discard(key)
        cost[key] = (elements, effects)
        return cost[key]

    sys.setrecursionlimit(10_000)
    try:
        return size(root)
    except RecursionError:
        raise Refused("SVG is nested too deeply, refused") from None


def _inline(reference: str, folder: Path | None, limit: int) -> str:
    """A relative reference to a raster file inside ``folder`` as a ``data:`` URL, else ""."""
    if folder is None or not reference or ":" in reference or "&" in reference:
        return ""
    if reference.startswith(("/", "\\")):
        return ""
    from tools.errors import MediaError
    from tools.files import read_bounded

    kind = RASTER_TYPES.get(Path(reference).suffix.lower())
    target = folder / reference
    try:
        if kind is None or not target.resolve(strict=True).is_relative_to(folder.resolve()):
            return ""
        data = read_bounded(target, limit, "image")
    except (OSError, MediaError):
        return ""
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def sanitize(root: Any, folder: Path | None, limit: int) -> None:
    """Every ``href`` (any namespace) kept only inside the document or as a ``data:`` raster;
    a raster file beside the SVG is inlined, anything else removed."""
    budget = limit
    for element in root.iter():
        for name in _href_names(element):
            value = str(element.get(name) or "").strip()
            if value.startswith("#") or _data_raster(value):
                continue
            inlined = _inline(value, folder, budget)
            budget -= len(inlined)
            if inlined:
                element.set(name, inlined)
            else:
                del element.attrib[name]


def _length(value: str | None) -> float | None:
    if not value:
        return None
    text = value.strip()
    if text.endswith("%"):
        return None
    unit = next((u for u in UNIT_PX if text.endswith(u)), "")
    try:
        number = float(text[: len(text) - len(unit)] if unit else text)
    except ValueError:
        return None
    return number * UNIT_PX.get(unit, 1.0)


def output_size(root: Any, size: int, max_aspect: float) -> tuple[int, int]:
    """(width, height) to render at: the declared shape with its long side at ``size``; the
    root's width and height are rewritten in pixels (the renderer rejects some unit forms)."""
    if _local(root.tag) != "svg":
        raise Refused("SVG could not be rendered (its root element is not <svg>)")
    width, height = _length(root.get("width")), _length(root.get("height"))
    for name, value in (("width", width), ("height", height)):
        if name in root.attrib:
            if value is None:
                del root.attrib[name]
            else:
                root.set(name, f"{value:.2f}")
    box_w = box_h = 0.0
    parts = (root.get("viewBox") or "").replace(",", " ").split()
    if len(parts) == 4:
        try:
            box_w, box_h = float(parts[2]), float(parts[3])
        except ValueError:
            box_w = box_h = 0.0
    if width is None and height is None:
        width, height = box_w, box_h
    elif width is None and box_h > 0 and height is not None:
        width = height * box_w / box_h
    elif height is None and box_w > 0 and width is not None:
        height = width * box_h / box_w
    if not width or not height:
        width = height = 100.0  # the renderer's default size
    if width <= 0 or height <= 0:
        raise Refused("SVG declares a size of zero or below")
    if max(width, height) / min(width, height) > max_aspect:
        raise Refused(
            f"SVG's declared shape is {width:g}x{height:g}, thinner than 1:{max_aspect:g}, refused"
        )
    if width >= height:
        return size, max(1, round(size * height / width))
    return max(1, round(size * width / height)), size


def render(header: dict[str, Any], data: bytes) -> bytes:
    """The PNG of one request (see the module doc), or :class:`Refused`."""
    from xml.etree import ElementTree as ET

    import resvg_py

    limit = int(header["max_bytes"])
    if header.get("svgz"):
        data = inflate(data, limit)
    elif len(data) > limit:
        raise Refused(f"SVG is {len(data) / 1e6:.1f} MB, over the limit of {limit / 1e6:.1f} MB")
    root = parse(data)
    expanded_size(root, int(header["max_elements"]), int(header["max_effects"]))
    folder = Path(header["folder"]) if header.get("folder") else None
    sanitize(root, folder, int(header["max_ref_bytes"]))
    width, height = output_size(root, int(header["size"]), float(header["max_aspect"]))
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    text = ET.tostring(root, encoding="unicode")
    try:
        return bytes(resvg_py.svg_to_bytes(svg_string=text, width=width, height=height))
    except ValueError as exc:
        raise Refused(f"SVG could not be rendered ({str(exc)[:300]})") from None


def _frame(stream: Any) -> bytes | None:
    """One length-prefixed frame from ``stream``; None at the end of input."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    count = struct.unpack(">I", head)[0]
    data = stream.read(count)
    return data if len(data) == count else None


def main() -> None:
    memory = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    read, write = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = _frame(read)
        body = _frame(read) if header is not None else None
        if header is None or body is None:
            break
        try:
            answer, status = render(json.loads(header), body), 0
        except Refused as exc:
            answer, status = str(exc).encode("utf-8", "replace")[:2000], 1
        except MemoryError:
            answer, status = b"SVG went over the renderer's memory limit, refused", 1
        write.write(struct.pack(">BI", status, len(answer)) + answer)
        write.flush()


if __name__ == "__main__":
    main()
