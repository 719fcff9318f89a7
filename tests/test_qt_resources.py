"""Reading photos out of Qt resource bundles (``eval/qt_resources.py``) and the photo set's
``deb:`` sources: real bundles from Debian's gcompris-qt-data, and broken ones."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from eval import photos as photo_eval
from eval.qt_resources import read_resource
from tools.errors import InputError


def _bundle(files: dict[str, bytes], compress: bool = True) -> bytes:
    """A version-3 bundle with one folder level: ``dir/name`` for each file."""
    names, payload = bytearray(), bytearray()
    name_offsets: dict[str, int] = {}

    def name(text: str) -> int:
        if text not in name_offsets:
            name_offsets[text] = len(names)
            encoded = text.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(text), 0) + encoded)
        return name_offsets[text]

    folder = next(iter(files)).split("/")[0]
    nodes = [struct.pack(">IHII", 0, 2, 1, 1) + b"\0" * 8]  # root: one child, node 1
    nodes.append(struct.pack(">IHII", name(folder), 2, len(files), 2) + b"\0" * 8)
    for path, data in files.items():
        stored = struct.pack(">I", len(data)) + zlib.compress(data) if compress else data
        nodes.append(
            struct.pack(
                ">IHHHI", name(path.split("/")[1]), 1 if compress else 0, 0, 0, len(payload)
            )
            + b"\0" * 8
        )
        payload.extend(struct.pack(">I", len(stored)) + stored)
    tree = b"".join(nodes)
    header = 24
    return (
        b"qres"
        + struct.pack(">IIIII", 3, header, header + len(tree) + len(names), header + len(tree), 0)
        + tree
        + bytes(names)
        + bytes(payload)
    )


def test_a_compressed_file_cut_short_is_an_error(tmp_path: Path) -> None:
    data = bytes(range(256)) * 64
    good = _bundle({"pics/a.bin": data})
    stored = zlib.compress(data)
    cut = good.replace(
        stored, stored[: len(stored) // 2] + b"\0" * (len(stored) - len(stored) // 2)
    )
    bundle = tmp_path / "cut.rcc"
    bundle.write_bytes(cut)
    with pytest.raises(InputError, match=r"cut short|does not inflate"):
        read_resource(bundle, "pics/a.bin")


def test_a_file_reads_back_from_a_bundle_compressed_or_not(tmp_path: Path) -> None:
    for compress in (True, False):
        bundle = tmp_path / f"b{compress}.rcc"
        bundle.write_bytes(_bundle({"pics/a.txt": b"alpha" * 100, "pics/b.txt": b"beta"}, compress))
        assert read_resource(bundle, "pics/a.txt") == b"alpha" * 100
        assert read_resource(bundle, "pics/b.txt") == b"beta"


@pytest.mark.parametrize(
    ("content", "inside", "problem"),
    [
        (b"not a bundle at all", "pics/a.txt", "not a Qt resource bundle"),
        (None, "pics/missing.txt", "no 'pics/missing.txt'"),
        (None, "pics", "is a folder"),
        (None, "pics/a.txt/deeper", "is not a folder"),
        ("truncated", "pics/a.txt", "bundle"),
    ],
)
def test_a_bad_bundle_or_path_is_a_clear_error(
    tmp_path: Path, content: bytes | str | None, inside: str, problem: str
) -> None:
    good = _bundle({"pics/a.txt": b"alpha"})
    data = good if content is None else good[:40] if content == "truncated" else content
    assert isinstance(data, bytes)
    bundle = tmp_path / "x.rcc"
    bundle.write_bytes(data)
    with pytest.raises(InputError, match=problem):
        read_resource(bundle, inside)


def test_the_photo_sets_bundled_photos_are_real_images(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in photo_eval.PHOTO_SET.read_text().splitlines()]
    bundled = [r for r in rows if r["source"].startswith("deb:")]
    bundle = Path(bundled[0]["source"].split(":", 2)[2].partition("#")[0])
    if not bundle.is_file():
        pytest.skip("gcompris-qt-data is not installed (scripts/setup.sh installs it)")
    photos = photo_eval.load_photos(cache=tmp_path)
    assert len(photos) == len(rows) >= 50
    assert {p.split for p in photos} == set(photo_eval.SPLITS)
    for photo in photos:
        if photo.path.parent == tmp_path:
            with Image.open(photo.path) as image:
                assert min(image.size) >= 64, photo.id
    assert len(list(tmp_path.iterdir())) == len(bundled)
    again = photo_eval.load_photos(cache=tmp_path)  # extracted once, then read from the cache
    assert [p.path for p in again] == [p.path for p in photos]


def test_a_missing_bundle_names_the_package(tmp_path: Path) -> None:
    rows = tmp_path / "p.jsonl"
    source = "deb:some-package:/nonexistent/x.rcc#a/b.webp"
    rows.write_text(json.dumps({"id": "x", "source": source, "relevant": ["a/"]}) + "\n")
    with pytest.raises(InputError, match="apt-get install some-package"):
        photo_eval.load_photos(rows, cache=tmp_path / "c")
