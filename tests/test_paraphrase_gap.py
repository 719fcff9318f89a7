"""The paraphrase bar's figure: the first phrasing of each group against the others."""

from __future__ import annotations

from eval.paraphrase import paraphrase_gap


def _turn(conversation: str, group: str, precision: float, slice_: str = "paraphrase") -> dict:
    return {"conversation": conversation, "group": group, "slice": slice_, "precision": precision}


def test_the_first_phrasing_of_each_group_is_compared_with_the_others() -> None:
    records = [
        _turn("p01a", "p01", 1.0),
        _turn("p01b", "p01", 0.6),
        _turn("p01c", "p01", 0.4),
        _turn("p03a", "p03", 0.8),
        _turn("p03b", "p03", 0.8),
        _turn("c01", "", 0.0, "plain"),  # not a paraphrase: not counted
    ]
    gap = paraphrase_gap(records)
    assert gap == {"groups": 2, "first": 0.9, "others": 0.6, "gap": 0.3}


def test_no_paraphrases_no_figure() -> None:
    assert paraphrase_gap([_turn("c01", "", 1.0, "plain")]) == {}
    assert paraphrase_gap([_turn("p01a", "p01", 1.0)]) == {}  # no other phrasing yet
