"""Read one file out of a Qt resource bundle (``.rcc``), for photos shipped that way.

Debian's ``gcompris-qt-data`` ships GCompris's real photographs (animals, tools, fish,
monuments, planets) inside ``.rcc`` bundles; the photo set names them as
``deb:PACKAGE:/path/to/bundle.rcc#path/inside``. The format is Qt's binary resource format
(versions 1 to 3): a header, a tree of fixed-size nodes, a name table and a data table, each
file optionally zlib-compressed. Everything read is bounded: the bundle's size, the walk's
depth and node count, and a file's inflated size.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from tools.errors import InputError

MAGIC = b"qres"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 200_000
DIRECTORY, COMPRESSED, COMPRESSED_ZSTD = 0x02, 0x01, 0x04


class _Bundle:
    def __init__(self, data: bytes, where: str) -> None:
        if len(data) < 20 or data[:4] != MAGIC:
            raise InputError(f"{where}: not a Qt resource bundle")
        self.data, self.where = data, where
        version, self.tree, self.payload, self.names = struct.unpack(">IIII", data[4:20])
        if version not in (1, 2, 3):
            raise InputError(f"{where}: unsupported Qt resource version {version}")
        self.node_size = 14 if version == 1 else 22  # v2+ adds a modification time

    def _unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        end = offset + struct.calcsize(fmt)
        if offset < 0 or end > len(self.data):
            raise InputError(f"{self.where}: truncated or corrupt bundle")
        return struct.unpack(fmt, self.data[offset:end])

    def _name(self, node: int) -> str:
        (offset,) = self._unpack(">I", self.tree + node * self.node_size)
        (length,) = self._unpack(">H", self.names + offset)
        start = self.names + offset + 6  # length, then a 4-byte hash, then UTF-16BE
        return self.data[start : start + 2 * length].decode("utf-16-be", errors="replace")

    def find(self, inside: str) -> bytes:
        node = 0
        parts = [p for p in inside.split("/") if p]
        if not parts or len(parts) > MAX_DEPTH:
            raise InputError(f"{self.where}: bad path inside the bundle: {inside!r}")
        for depth, part in enumerate(parts):
            (flags,) = self._unpack(">H", self.tree + node * self.node_size + 4)
            if not flags & DIRECTORY:
                raise InputError(f"{self.where}: {'/'.join(parts[:depth])} is not a folder")
            count, first = self._unpack(">II", self.tree + node * self.node_size + 6)
            if first + count > MAX_NODES:
                raise InputError(f"{self.where}: corrupt bundle (node count)")
            for child in range(first, first + count):
                if self._name(child) == part:
                    node = child
                    break
            else:
                raise InputError(f"{self.where}: no {inside!r} inside the bundle")
        return self._file(node, inside)

    def _file(self, node: int, inside: str) -> bytes:
        base = self.tree + node * self.node_size
        (flags,) = self._unpack(">H", base + 4)
        if flags & DIRECTORY:
            raise InputError(f"{self.where}: {inside!r} is a folder, not a file")
        (offset,) = self._unpack(">I", base + 10)
        (size,) = self._unpack(">I", self.payload + offset)
        start = self.payload + offset + 4
        raw = self.data[start : start + size]
        if len(raw) != size:
            raise InputError(f"{self.where}: {inside!r} is truncated")
        if flags & COMPRESSED_ZSTD:
            raise InputError(f"{self.where}: {inside!r} is zstd-compressed (not supported)")
        if not flags & COMPRESSED:
            return raw
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(raw[4:], MAX_FILE_BYTES + 1)  # 4 bytes: inflated size
        except zlib.error as exc:
            raise InputError(f"{self.where}: {inside!r} does not inflate ({exc})") from None
        if len(out) > MAX_FILE_BYTES:
            raise InputError(f"{self.where}: {inside!r} inflates past {MAX_FILE_BYTES:,} bytes")
        if not inflater.eof:
            raise InputError(f"{self.where}: {inside!r} is cut short (the stream does not end)")
        return out


def read_resource(bundle: Path, inside: str) -> bytes:
    """The bytes of file ``inside`` (a ``/`` path) in the Qt resource bundle ``bundle``."""
    try:
        with bundle.open("rb") as handle:  # read bounded, whatever the file claims to be
            data = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the resource bundle {bundle}: {exc.strerror}") from None
    if len(data) > MAX_BUNDLE_BYTES:
        raise InputError(f"{bundle}: over {MAX_BUNDLE_BYTES:,} bytes")
    return _Bundle(data, str(bundle)).find(inside)
