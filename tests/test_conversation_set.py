"""The labelled conversation set (eval/conversations): it loads, its halves are big enough and
disjoint, and every label names real stamps of the Tux Paint demo catalogue."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from eval import conversation_set
from eval.conversation_set import (
    HALVES,
    SLICES,
    LabelledConversation,
    LabelledTurn,
    load_set,
    matches,
    number,
)
from tools.errors import InputError

STAMPS = Path("/usr/share/tuxpaint/stamps")
EXCEPTION_MARK = "EXCEPTION"  # a turn with fewer than 5 relevant items says why in its note


@pytest.fixture(scope="module")
def halves() -> dict[str, list[LabelledConversation]]:
    return {half: load_set(half) for half in HALVES}


@pytest.fixture(scope="module")
def catalogue() -> dict[str, bool]:
    """Item id -> has a sound effect, computed exactly as the demo catalogue does."""
    if not STAMPS.is_dir():
        pytest.skip(f"{STAMPS} is not installed (apt-get install tuxpaint-stamps-default)")
    from indexing.tuxpaint import scan

    return {item.id: bool(item.attributes["has_sound_effect"]) for item, _ in scan(STAMPS)}


def _turns(halves: dict[str, list[LabelledConversation]]) -> list[tuple[str, int, LabelledTurn]]:
    return [
        (conv.id, k, turn)
        for convs in halves.values()
        for conv in convs
        for k, turn in enumerate(conv.turns)
    ]


def test_both_halves_load_and_are_big_enough(
    halves: dict[str, list[LabelledConversation]],
) -> None:
    for half, convs in halves.items():
        assert len(convs) >= 20, half
        assert sum(len(c.turns) for c in convs) >= 60, half


def test_every_slice_is_covered_in_each_half(
    halves: dict[str, list[LabelledConversation]],
) -> None:
    for half, convs in halves.items():
        counts = Counter(turn.slice for conv in convs for turn in conv.turns)
        assert set(counts) == set(SLICES), (half, counts)


def test_no_conversation_is_in_both_halves(halves: dict[str, list[LabelledConversation]]) -> None:
    dev, test = ({c.id for c in halves[h]} for h in HALVES)
    assert not dev & test
    titles = {(c.group or c.id): c.title for convs in halves.values() for c in convs}
    assert len(set(titles.values())) == len(titles)  # a paraphrase group shares one title


def test_the_half_follows_the_number(halves: dict[str, list[LabelledConversation]]) -> None:
    """Odd-numbered conversations (a paraphrase group's number) are dev, even ones test."""
    for half, convs in halves.items():
        assert {number(c) % 2 for c in convs} == {1 if half == "dev" else 0}, half


def test_the_set_is_big_enough_for_its_slices(
    halves: dict[str, list[LabelledConversation]],
) -> None:
    convs = [c for half in halves.values() for c in half]
    assert len(convs) >= 120
    assert sum(len(c.turns) for c in convs) >= 350
    counts = Counter(turn.slice for conv in convs for turn in conv.turns)
    assert counts["paraphrase"] >= 120 and counts["knowledge"] >= 40


def test_a_paraphrase_group_is_one_request_in_three_phrasings(
    halves: dict[str, list[LabelledConversation]],
) -> None:
    groups: dict[str, list[LabelledConversation]] = {}
    for convs in halves.values():
        for conv in convs:
            if any(turn.slice == "paraphrase" for turn in conv.turns):
                assert conv.group and len(conv.turns) == 1, conv.id
                groups.setdefault(conv.group, []).append(conv)
    assert len(groups) >= 40
    for group, convs in groups.items():
        assert len(convs) == 3, group
        labels = {
            (tuple(t.relevant), tuple(t.forbidden), t.needs_sound)
            for t in (c.turns[0] for c in convs)
        }
        assert len(labels) == 1, group  # the same labels
        assert len({c.turns[0].user for c in convs}) == 3, group  # three different phrasings


def test_matches_is_a_prefix_test() -> None:
    assert matches("food/fruit/banana", ["animals/", "food/fruit/"])
    assert matches("food/fruit/banana", ["food/fruit/banana"])
    assert not matches("food/fruit/banana", ["food/vegetables/"])
    assert not matches("food/fruit/banana", [])


def test_turn_validation() -> None:
    good = {"user": "a hat", "slice": "plain", "relevant": ["clothes/hats/"]}
    assert LabelledTurn.model_validate(good).forbidden == []
    for bad in (
        {**good, "user": "   "},
        {**good, "slice": "sarcasm"},
        {**good, "relevant": [""]},
        {**good, "relevant": []},
        {**good, "forbidden": ["food/ fruit"]},
        {**good, "extra": 1},
    ):
        with pytest.raises(ValidationError):
            LabelledTurn.model_validate(bad)


def test_needs_sound_only_counts_items_with_a_sound_effect() -> None:
    turn = LabelledTurn(user="a cow I can hear", slice="modality", relevant=["animals/"])
    noisy = turn.model_copy(update={"needs_sound": True})
    assert turn.is_relevant("animals/mammals/bovines/cow")
    assert not noisy.is_relevant("animals/mammals/bovines/cow")
    assert noisy.is_relevant("animals/mammals/bovines/cow", has_sound_effect=True)


def test_bad_rows_name_the_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conversations").mkdir()
    good = '{"id": "x1", "turns": [{"user": "a hat", "slice": "plain", "relevant": ["c/"]}]}'
    monkeypatch.setattr(conversation_set, "files", lambda _package: tmp_path)
    for name, row in (
        ("dev", "{not json"),
        ("dev", good.replace('"plain"', '"sarcasm"')),
        ("dev", good),  # the same id twice
    ):
        (tmp_path / "conversations" / f"{name}.jsonl").write_text(f"{good}\n\n{row}\n")
        with pytest.raises(InputError) as info:
            load_set(name)
        assert "dev.jsonl, line 3" in str(info.value)
    with pytest.raises(InputError):
        load_set("train")


def test_every_prefix_names_real_items(
    halves: dict[str, list[LabelledConversation]], catalogue: dict[str, bool]
) -> None:
    dead = [
        (conv_id, k, prefix)
        for conv_id, k, turn in _turns(halves)
        for prefix in [*turn.relevant, *turn.forbidden]
        if not any(item_id.startswith(prefix) for item_id in catalogue)
    ]
    assert not dead


def test_no_item_is_both_relevant_and_forbidden(
    halves: dict[str, list[LabelledConversation]], catalogue: dict[str, bool]
) -> None:
    clashes = []
    for conv_id, k, turn in _turns(halves):
        clashes += [
            (conv_id, k, prefix)
            for prefix in turn.relevant
            if any(prefix.startswith(f) for f in turn.forbidden)
        ]
        clashes += [
            (conv_id, k, item_id)
            for item_id in catalogue
            if matches(item_id, turn.relevant) and matches(item_id, turn.forbidden)
        ]
    assert not clashes


def test_each_turn_has_five_relevant_items(
    halves: dict[str, list[LabelledConversation]], catalogue: dict[str, bool]
) -> None:
    short, exceptions = [], []
    for conv_id, k, turn in _turns(halves):
        count = sum(turn.is_relevant(item_id, sound) for item_id, sound in catalogue.items())
        assert count >= 1, (conv_id, k)
        if count < 5:
            (exceptions if EXCEPTION_MARK in turn.note else short).append((conv_id, k, count))
    assert not short
    assert len(exceptions) <= 5  # exceptions stay rare


def test_sound_turns_list_items_with_a_sound_effect(
    halves: dict[str, list[LabelledConversation]], catalogue: dict[str, bool]
) -> None:
    """A ``needs_sound`` turn's labels must each match an item that has a sound effect."""
    wrong = [
        (conv_id, k, prefix)
        for conv_id, k, turn in _turns(halves)
        if turn.needs_sound
        for prefix in turn.relevant
        if not any(sound for item_id, sound in catalogue.items() if item_id.startswith(prefix))
    ]
    assert not wrong
