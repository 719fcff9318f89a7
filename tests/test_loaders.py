"""Catalogue loading: JSONL and CSV, path confinement, and a clear error per bad row."""

import json
from pathlib import Path

import pytest

from indexing.loaders import CatalogueError, load_catalogue, write_jsonl
from tests import media


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_items_with_relative_media(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    media.png(tmp_path / "img" / "a.png", (255, 0, 0, 255))
    catalogue = _jsonl(
        tmp_path / "items.jsonl",
        [
            {
                "id": "a",
                "title": "Apple",
                "price": 1.5,
                "image": "img/a.png",
                "audio": "a.ogg",
                "attributes": {"colour": "red", "sizes": [1, 2]},
            },
            {"id": 7, "title": "Seven"},
        ],
    )
    result = load_catalogue(catalogue)
    assert result.errors == []
    apple, seven = result.items
    assert apple.image == (tmp_path / "img" / "a.png").resolve()
    assert apple.audio == [(tmp_path / "a.ogg").resolve()]
    assert apple.attributes == {"colour": "red", "sizes": [1, 2]}
    assert seven.id == "7"


def test_bad_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    outside = tmp_path.parent / "outside.png"
    catalogue = _jsonl(
        tmp_path / "items.jsonl",
        [
            {"id": "ok", "title": "Fine"},
            {"id": "ok", "title": "Duplicate"},
            {"id": "p", "title": "Priced", "price": "cheap"},
            {"id": "n", "title": ""},
            {"id": "../../etc/passwd", "title": "Escaping id"},
            {"id": "e", "title": "Escaping path", "image": "../outside.png"},
            {"id": "abs", "title": "Absolute path", "image": str(outside)},
            {"id": "x", "title": "Unknown field", "colour": "red"},
            "{not json",
            "[1, 2]",
        ],
    )
    with catalogue.open("ab") as handle:
        handle.write(b'{"id": "latin", "title": "caf\xe9"}\n')
    result = load_catalogue(catalogue)
    assert [i.id for i in result.items] == ["ok"]
    problems = {e.where: (e.item_id, e.problem) for e in result.errors}
    assert problems["line 2"] == ("ok", "duplicate id (first defined at line 1)")
    assert "price" in problems["line 3"][1]
    assert "title" in problems["line 4"][1]
    assert "not allowed" in problems["line 5"][1]
    assert "leaves the catalogue folder" in problems["line 6"][1]
    assert "leaves the catalogue folder" in problems["line 7"][1]
    assert "colour" in problems["line 8"][1]
    assert "malformed JSON" in problems["line 9"][1]
    assert "JSON object" in problems["line 10"][1]
    assert "UTF-8" in problems["line 11"][1]
    assert all(str(e) for e in result.errors)


def test_symlink_out_of_the_catalogue_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    media.png(secret / "s.png", (0, 0, 0, 255))
    root = tmp_path / "cat"
    root.mkdir()
    (root / "link.png").symlink_to(secret / "s.png")
    result = load_catalogue(
        _jsonl(root / "items.jsonl", [{"id": "s", "title": "Sneaky", "image": "link.png"}])
    )
    assert result.items == []
    assert "leaves the catalogue folder" in result.errors[0].problem


def test_csv_with_attribute_columns_and_audio_lists(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        "id,title,description,category,price,image,audio,attr.colour,attributes\n"
        'a,Apple,"Crisp, sweet",food,2.5,a.png,a.ogg;b.ogg,red,"{""origin"": ""NZ""}"\n'
        "b,Bread,,food,,,,,\n"
        "c,Cheese,,food,notanumber,,,,\n"
        "d,Too,few\n"
    )
    result = load_catalogue(path)
    assert [i.id for i in result.items] == ["a", "b"]
    apple = result.items[0]
    assert apple.description == "Crisp, sweet"
    assert apple.price == 2.5
    assert apple.attributes == {"colour": "red", "origin": "NZ"}
    assert [p.name for p in apple.audio] == ["a.ogg", "b.ogg"]
    assert result.items[1].price is None and result.items[1].image is None
    assert {e.item_id for e in result.errors} == {"c", None}


def test_whole_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not found"):
        load_catalogue(tmp_path / "missing.jsonl")
    (tmp_path / "items.xml").write_text("<x/>")
    with pytest.raises(CatalogueError, match="unknown catalogue format"):
        load_catalogue(tmp_path / "items.xml")
    (tmp_path / "bad.csv").write_text("name,price\nx,1\n")
    with pytest.raises(CatalogueError, match="'id' and 'title'"):
        load_catalogue(tmp_path / "bad.csv")


def test_write_jsonl_round_trip(tmp_path: Path) -> None:
    media.png(tmp_path / "a.png", (1, 2, 3, 255))
    source = _jsonl(tmp_path / "in.jsonl", [{"id": "a", "title": "A", "image": "a.png"}])
    items = load_catalogue(source).items
    out = tmp_path / "out.jsonl"
    write_jsonl(items, out)
    assert json.loads(out.read_text())["image"] == "a.png"
    assert load_catalogue(out).items == items


def test_rows_over_the_limits_cost_that_row(tmp_path: Path) -> None:
    from indexing.loaders import MAX_LINE_BYTES

    deep = '{"id": "deep", "title": "x", "metadata": ' + "[" * 1000 + "]" * 1000 + "}"
    nested = '{"id": "nested", "title": "x", "metadata": {"a": ' + "[" * 40 + "]" * 40 + "}}"
    long = json.dumps({"id": "long", "title": "x", "description": "y" * (MAX_LINE_BYTES + 10)})
    rows = [
        deep,
        nested,
        long,
        json.dumps({"id": "inf", "title": "x", "price": float("inf")}),
        json.dumps({"id": "meta", "title": "x", "metadata": {"blob": "z" * 70_000}}),
        json.dumps({"id": "ok\n", "title": "trailing newline in the id"}),
        json.dumps({"id": "good", "title": "still loads"}),
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(rows) + "\n")
    result = load_catalogue(path)
    assert [i.id for i in result.items] == ["good"]
    problems = {e.where: e.problem for e in result.errors}
    assert "nested too deeply" in problems["line 1"]
    assert "deeper than" in problems["line 2"]
    assert "over the limit" in problems["line 3"]
    assert "finite" in problems["line 4"]
    assert "metadata is" in problems["line 5"]
    assert "not allowed" in problems["line 6"]


def test_control_and_bidi_characters_are_removed_at_load(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    row = {
        "id": "a",
        "title": "Evil\x1b]0;pwned\x07 \u202etitle\x1b[2J",
        "description": "line one\nline two\ttab",
        "attributes": {"colour\x1b[31m": "red\x9b"},
    }
    path.write_text(json.dumps(row) + "\n")
    item = load_catalogue(path).items[0]
    assert item.title == "Evil]0;pwned title[2J"
    assert item.description == "line one\nline two\ttab"
    assert item.attributes == {"colour[31m": "red"}
