"""Judge and simulator logic on hand-worked cases: pairwise outcomes over both orders, grounding
metrics, leak detection, first hits, rates and hit-by-turn curves."""

import pytest

from eval import judge, simulate
from eval.cases import Case

FACTS = {
    "title": "Usual Suspects, The",
    "description": "Usual Suspects, The (1995), Crime, Thriller. Directed by Bryan Singer.",
    "category": None,
    "attributes": {"genres": ["Crime", "Thriller"], "year": 1995, "director": "Bryan Singer"},
}
CASE = Case("7", ["Heat (1995)"], ["6"], "Watches mostly Crime.", "12", FACTS)
TITLES = ["Usual Suspects, The", "Heat", "Casino"]


@pytest.mark.parametrize(
    ("first", "second", "outcome"),
    [
        ("A", "B", "win"),  # recagent is A in the first order and B in the second
        ("B", "A", "loss"),
        ("A", "A", "tie"),  # the judge always picks position A: position bias, a tie
        ("tie", "B", "tie"),
        (None, "B", "tie"),  # an unparsable verdict counts for nobody
    ],
)
def test_pairwise_outcome_needs_both_orders(first, second, outcome) -> None:  # type: ignore[no-untyped-def]
    assert judge.pairwise_outcome(first, second) == outcome


def test_grounding_metrics_by_hand() -> None:
    texts = [
        "A crime thriller directed by Bryan Singer. It won 7 Oscars.",  # 1 of 2 supported
        "Like Casino, it is a masterpiece of the genre.",  # names another item; 0 of 1
        "A crime film, like Heat.",  # Heat is in the user's own history: allowed
    ]
    m = judge.grounding_metrics(texts, [CASE, CASE, CASE], TITLES)
    assert m["sentences"] == 4
    assert m["supported_claim_share"] == pytest.approx(2 / 4)
    assert m["invented_item_rate"] == pytest.approx(1 / 3)


def test_judge_parsing_and_summary() -> None:
    def response(text: str) -> dict:  # type: ignore[type-arg]
        return {"choices": [{"message": {"content": text}}]}

    good = '{"faithfulness": 5, "relevance": 4, "informativeness": 3, "persuasiveness": 2}'
    assert judge.parse_scores(response(good)) == {
        "faithfulness": 5,
        "relevance": 4,
        "informativeness": 3,
        "persuasiveness": 2,
    }
    assert judge.parse_scores(response('{"faithfulness": 9}')) is None
    assert judge.parse_verdict(response('{"better": "B"}')) == "B"
    scores = {"faithfulness": 4, "relevance": 2, "informativeness": 3, "persuasiveness": 3}
    rows = [
        {
            "recagent": {"text": "A crime film.", "source": "llm", "scores": scores},
            "baseline": {"text": "Great.", "scores": None},
            "pairwise": {"recagent_first": "A", "baseline_first": "B", "outcome": "win"},
        },
        {
            "recagent": {"text": "A thriller.", "source": "template", "scores": scores},
            "baseline": {"text": "Good.", "scores": scores},
            "pairwise": {"recagent_first": "A", "baseline_first": "A", "outcome": "tie"},
        },
    ]
    out = judge.summarise(rows, [CASE, CASE], TITLES)
    assert out["explainers"]["recagent"]["judge_means"]["relevance"] == 2
    assert out["explainers"]["baseline"]["judge_unparsed"] == 1
    assert out["explainers"]["recagent"]["sources"] == {"llm": 1, "template": 1}
    assert out["pairwise"]["win"] == 0.5 and out["pairwise"]["tie"] == 0.5
    assert out["pairwise"]["position_A_rate"] == 0.75


def test_leak_detection_and_redaction() -> None:
    assert simulate.leaks("I want to see The Usual Suspects again!", "Usual Suspects, The")
    assert not simulate.leaks("Usual crime suspects, nothing fancy", "Usual Suspects, The")
    assert simulate.leaks("something like heat", "Heat")
    assert not simulate.leaks("a heated drama", "Heat")
    shown = simulate.describe_target(FACTS)
    assert "Usual Suspects" not in shown and "Bryan Singer" in shown and "[hidden]" in shown


def test_simulator_message_cleanup() -> None:
    wrapped = "Sure, here's a first message to the recommender:\n\n\"Hi! A 90s crime film, please."
    assert simulate.clean_message(wrapped) == "Hi! A 90s crime film, please."
    assert simulate.clean_message("A comedy: light and short.") == "A comedy: light and short."


def test_first_hits_rates_and_curves() -> None:
    turns = [["a", "b", "c", "d", "e", "t"], ["t", "x"]]
    assert simulate.first_hits(turns, "t") == {"@1": 2, "@5": 2, "@10": 1}
    rates = simulate.episode_rates(turns, catalogue={"a", "b", "c", "d", "e", "t"}, seen={"a"})
    assert rates == {"recommended": 8, "not_in_catalogue": 1, "duplicates": 1, "already_seen": 1}

    def row(first10: int | None, leaked: bool = False) -> dict:  # type: ignore[type-arg]
        hit = {"@1": None, "@5": first10, "@10": first10}
        counts = {"recommended": 10, "not_in_catalogue": 0, "duplicates": 1, "already_seen": 0}
        return {"leaked": leaked, "first_hit": hit, **counts}

    out = simulate.summarise([row(1), row(3), row(None), row(1, leaked=True)], max_turns=3)
    assert out["voided_by_leak"] == 1 and out["scored_episodes"] == 3
    assert out["hit_by_turn"]["Hit@10"] == pytest.approx([1 / 3, 1 / 3, 2 / 3])
    assert out["hit_by_turn"]["Hit@1"] == [0, 0, 0]
    assert out["average_turns_to_hit@10"] == 2
    assert out["duplicates_rate"] == pytest.approx(0.1)


def test_simulated_feedback_opinions_and_the_comparison() -> None:
    movie = {"attributes": {"genres": ["Comedy", "Romance"]}}
    assert simulate.opinion(movie, {"attributes": {"genres": ["Romance"]}}) == "like"
    assert simulate.opinion(movie, {"attributes": {"genres": ["Horror"]}}) == "dislike"
    stamp = {"category": "animals", "attributes": {"subcategory": "birds"}}
    assert simulate.opinion(stamp, {"category": "animals", "attributes": {"subcategory": "birds"}})
    assert (
        simulate.opinion(stamp, {"category": "animals", "attributes": {"subcategory": "fish"}})
        == "dislike"
    )
    report = {
        "config": {"dataset": "demo"},
        "hit_by_turn": {"Hit@5": [0.1, 0.2], "Hit@10": [0.2, 0.4]},
        "average_turns_to_hit@10": 1.5,
        "scored_episodes": 10,
    }
    better = {**report, "hit_by_turn": {"Hit@5": [0.1, 0.5], "Hit@10": [0.2, 0.6]}}
    text = simulate.comparison(report, better)
    assert "| with feedback | Hit@10 | 0.20 | 0.60 |" in text
    assert "without feedback: 10 scored episodes" in text
