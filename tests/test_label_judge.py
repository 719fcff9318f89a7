"""eval/label_judge.py (`recagent eval judge-labels`): the pairs sampled from the labelled
conversation set (a relevant item and a hard negative per user turn), the judge's request and
its parsed verdict, the agreement figures against the labels and the files a run writes.

Everything here is offline: hand-built catalogues, a fake text search and a fake chat client."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent.reasons import has_sound_effect
from eval.conversation_set import LabelledConversation, LabelledTurn, matches
from eval.label_judge import (
    Fit,
    Pair,
    agreement,
    judge,
    request,
    run,
    sample_pairs,
    verdict,
)
from indexing.records import StoredItem

# --- a hand-built catalogue ---------------------------------------------------------------


def stored(item_id: str, title: str, category: str | None, **facts: Any) -> StoredItem:
    """A stored item whose facts repeat its title and category, as the store's facts do."""
    return StoredItem(item_id, title, category, {"title": title, "category": category, **facts})


COW = stored(
    "animals/mammals/cow",
    "Holstein cow",
    "animals",
    description="A black and white milker.",
    attributes={"has_sound_effect": True},
)
DUCK = stored(  # a sound file, but no sound effect by the catalogue's attribute
    "animals/birds/duck",
    "Mallard duck",
    "animals",
    description="A bird on a pond.",
    attributes={"has_sound_effect": False},
    has_audio=True,
)
HORSE = stored(
    "animals/mammals/horse", "Shire horse", "animals", description="A brown runner.", attributes={}
)
APPLE = stored("food/fruit/apple", "Fuji apple", "food", description="A red fruit.")
PEAR = stored("food/fruit/pear", "Conference pear", "food", description="A green fruit.")
CAR = stored("vehicles/auto/car", "Roadster car", None)  # no category, no description

CATALOGUE = [COW, DUCK, HORSE, APPLE, PEAR, CAR]
BY_ID = {item.id: item for item in CATALOGUE}


def turn(
    user: str,
    relevant: list[str],
    slice: str = "plain",
    forbidden: list[str] | None = None,
    needs_sound: bool = False,
) -> LabelledTurn:
    return LabelledTurn.model_validate(
        {
            "user": user,
            "slice": slice,
            "relevant": relevant,
            "forbidden": forbidden or [],
            "needs_sound": needs_sound,
        }
    )


def conversation(conversation_id: str, *turns: LabelledTurn) -> LabelledConversation:
    return LabelledConversation(id=conversation_id, turns=list(turns))


class FakeSearch:
    """Plain text search from a table: message -> ids, best first; records its calls."""

    def __init__(self, hits: dict[str, list[str]]) -> None:
        self.hits = hits
        self.calls: list[tuple[str, int]] = []

    def __call__(self, query: str, k: int) -> list[str]:
        self.calls.append((query, k))
        return list(self.hits.get(query, []))[:k]


def response(content: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


def text_of(req: dict[str, Any]) -> str:
    """All the text of a chat request's messages (string or content-part messages)."""
    parts: list[str] = []
    for message in req["messages"]:
        content = message["content"]
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(str(part.get("text", "")) for part in content)
    return "\n".join(parts)


class FakeClient:
    """A chat client whose `many` records the requests and answers each with `answer(request)`."""

    def __init__(self, answer: Callable[[dict[str, Any]], str]) -> None:
        self.answer = answer
        self.calls: list[list[dict[str, Any]]] = []
        self.descs: list[str] = []

    def many(
        self, requests: Sequence[dict[str, Any]], desc: str = "", progress: bool = True
    ) -> list[dict[str, Any]]:
        self.calls.append(list(requests))
        self.descs.append(desc)
        return [response(self.answer(r)) for r in requests]


def says_yes_to(*titles: str) -> Callable[[dict[str, Any]], str]:
    """An answer that fits when the request's text names one of ``titles`` (case-sensitive)."""

    def answer(req: dict[str, Any]) -> str:
        text = text_of(req)
        return json.dumps({"fits": any(title in text for title in titles)})

    return answer


def make_pair(
    labelled: bool,
    slice_: str = "plain",
    conversation_id: str = "c01",
    item: StoredItem = COW,
    earlier: tuple[str, ...] = (),
    message: str = "An animal, please.",
) -> Pair:
    return Pair(
        conversation=conversation_id,
        turn=len(earlier) + 1,
        slice=slice_,
        earlier=earlier,
        message=message,
        item_id=item.id,
        title=item.title,
        category=item.category or "",
        description=str(item.facts.get("description", "")),
        has_sound=has_sound_effect(item.facts, True),
        needs_sound=False,
        labelled=labelled,
    )


# --- sample_pairs -------------------------------------------------------------------------


def test_each_turn_gives_a_relevant_pair_then_its_first_non_relevant_search_hit() -> None:
    animals = "Show me a farm animal."
    fruit = "Now something to eat."
    convs = [
        conversation(
            "c01",
            turn(animals, ["animals/"], forbidden=["food/"]),
            turn(fruit, ["food/"], slice="topic_shift", forbidden=["animals/"]),
        )
    ]
    search = FakeSearch(
        {
            # a relevant hit, an id missing from the catalogue, then the first real negative
            animals: [DUCK.id, "plants/ghost", APPLE.id, CAR.id, HORSE.id],
            fruit: [PEAR.id, APPLE.id, "space/moon", CAR.id, COW.id],
        }
    )
    pairs = sample_pairs(convs, CATALOGUE, search)

    assert len(pairs) == 4
    first, first_negative, second, second_negative = pairs
    assert first.labelled is True and first_negative.labelled is False
    assert second.labelled is True and second_negative.labelled is False
    assert matches(first.item_id, ["animals/"])
    assert not matches(first_negative.item_id, ["animals/"])
    assert matches(second.item_id, ["food/"])
    assert not matches(second_negative.item_id, ["food/"])
    # the first hit that is neither relevant nor missing from the items, not a later one
    assert first_negative.item_id == APPLE.id
    assert second_negative.item_id == CAR.id
    assert (animals, 20) in search.calls
    assert (fruit, 20) in search.calls


def test_pair_fields_come_from_the_turn_and_the_item() -> None:
    message = "Something to eat, not a car."
    convs = [conversation("c07", turn(message, ["food/fruit/apple"], slice="negation"))]
    search = FakeSearch({message: [APPLE.id, CAR.id, PEAR.id]})
    relevant, negative = sample_pairs(convs, CATALOGUE, search)

    assert relevant == Pair(
        conversation="c07",
        turn=1,
        slice="negation",
        earlier=(),
        message=message,
        item_id=APPLE.id,
        title="Fuji apple",
        category="food",
        description="A red fruit.",
        has_sound=False,
        needs_sound=False,
        labelled=True,
    )
    assert negative.item_id == CAR.id
    assert negative.title == "Roadster car"
    assert negative.category == ""  # the item has no category
    assert negative.description == ""  # nor a description
    assert negative.labelled is False
    assert negative.conversation == "c07" and negative.turn == 1 and negative.slice == "negation"


def test_has_sound_is_the_item_sound_effect_on_a_turn_that_does_not_need_one() -> None:
    message = "A mammal."
    convs = [conversation("c01", turn(message, ["animals/mammals/cow"]))]
    search = FakeSearch({message: [DUCK.id]})
    relevant, negative = sample_pairs(convs, CATALOGUE, search)
    assert (relevant.item_id, relevant.has_sound, relevant.labelled) == (COW.id, True, True)
    assert (negative.item_id, negative.has_sound, negative.labelled) == (DUCK.id, False, False)
    assert relevant.needs_sound is False and negative.needs_sound is False


def test_every_label_matches_the_turns_own_rule() -> None:
    convs = [
        conversation(
            "c01",
            turn("An animal.", ["animals/"]),
            turn("A fruit.", ["food/fruit/"]),
            turn("A noisy animal.", ["animals/"], slice="modality", needs_sound=True),
        ),
        conversation("c02", turn("A vehicle.", ["vehicles/"])),
    ]
    search = FakeSearch(
        {
            "An animal.": [COW.id, CAR.id],
            "A fruit.": [PEAR.id, DUCK.id],
            "A noisy animal.": [HORSE.id, COW.id],
            "A vehicle.": [CAR.id, APPLE.id],
        }
    )
    for by_attribute in (True, False):
        pairs = sample_pairs(convs, CATALOGUE, search, sound_by_attribute=by_attribute)
        turns = {
            (c.id, k): t for c in convs for k, t in enumerate(c.turns, start=1)
        }  # (conversation, 1-based turn) -> turn
        for pair in pairs:
            labelled_turn = turns[(pair.conversation, pair.turn)]
            item = BY_ID[pair.item_id]
            sound = has_sound_effect(item.facts, by_attribute)
            assert pair.has_sound == sound
            assert pair.needs_sound == labelled_turn.needs_sound
            assert pair.labelled == labelled_turn.is_relevant(pair.item_id, sound)
            assert pair.message == labelled_turn.user
            assert pair.slice == labelled_turn.slice


def test_pairs_come_in_conversation_then_turn_order_relevant_first() -> None:
    convs = [
        conversation(
            "c03",
            turn("An animal.", ["animals/"]),
            turn("A fruit.", ["food/"]),
        ),
        conversation("c01", turn("A vehicle.", ["vehicles/"])),
    ]
    search = FakeSearch(
        {
            "An animal.": [APPLE.id],
            "A fruit.": [CAR.id],
            "A vehicle.": [COW.id],
        }
    )
    pairs = sample_pairs(convs, CATALOGUE, search)
    assert [(p.conversation, p.turn, p.labelled) for p in pairs] == [
        ("c03", 1, True),
        ("c03", 1, False),
        ("c03", 2, True),
        ("c03", 2, False),
        ("c01", 1, True),
        ("c01", 1, False),
    ]


def test_earlier_holds_the_earlier_user_messages_of_the_same_conversation_in_order() -> None:
    first, second, third = "An animal.", "Now a fruit.", "Back to a bird."
    other = "A vehicle."
    convs = [
        conversation(
            "c01",
            turn(first, ["animals/"]),
            turn(second, ["food/"], slice="topic_shift"),
            turn(third, ["animals/birds/"], slice="topic_shift"),
        ),
        conversation("c02", turn(other, ["vehicles/"])),
    ]
    search = FakeSearch({first: [CAR.id], second: [CAR.id], third: [COW.id], other: [PEAR.id]})
    pairs = sample_pairs(convs, CATALOGUE, search)
    seen = {(p.conversation, p.turn): (p.earlier, p.message) for p in pairs}
    assert seen == {
        ("c01", 1): ((), first),
        ("c01", 2): ((first,), second),
        ("c01", 3): ((first, second), third),
        ("c02", 1): ((), other),
    }
    assert all(isinstance(p.earlier, tuple) for p in pairs)


def test_a_turn_with_no_relevant_catalogue_item_is_skipped_but_still_counted() -> None:
    space = "Something from space."
    quiet_horse = "A horse I can hear."
    bird = "A bird, then."
    convs = [
        conversation(
            "c01",
            turn(space, ["space/"]),  # nothing under space/ in the catalogue
            # the only relevant-prefix item has no sound effect: nothing counts as relevant
            turn(quiet_horse, ["animals/mammals/horse"], slice="modality", needs_sound=True),
            turn(bird, ["animals/birds/"]),
        ),
        conversation("c02", turn(space, ["space/"])),
    ]
    search = FakeSearch({space: [CAR.id], quiet_horse: [HORSE.id, CAR.id], bird: [COW.id]})
    pairs = sample_pairs(convs, CATALOGUE, search)

    assert len(pairs) == 2
    assert {p.conversation for p in pairs} == {"c01"}
    assert [p.turn for p in pairs] == [3, 3]  # the turn's place in its conversation
    assert pairs[0].item_id == DUCK.id and pairs[0].labelled is True
    assert pairs[1].item_id == COW.id and pairs[1].labelled is False
    assert pairs[0].earlier == (space, quiet_horse)  # skipped turns are still earlier messages


def test_no_pairs_at_all_when_no_turn_has_a_relevant_item() -> None:
    convs = [conversation("c01", turn("Something from space.", ["space/"]))]
    assert sample_pairs(convs, CATALOGUE, FakeSearch({})) == []


def test_the_negative_falls_back_to_a_random_non_relevant_item() -> None:
    message = "An animal."
    convs = [conversation("c01", turn(message, ["animals/"]))]
    # every hit is relevant or missing from the catalogue
    search = FakeSearch({message: [COW.id, "plants/ghost", DUCK.id, HORSE.id]})
    non_relevant = {APPLE.id, PEAR.id, CAR.id}
    chosen: set[str] = set()
    for seed in range(30):
        relevant, negative = sample_pairs(convs, CATALOGUE, search, seed=seed)
        assert relevant.labelled is True
        assert negative.labelled is False
        assert negative.item_id in non_relevant
        assert negative.title == BY_ID[negative.item_id].title
        chosen.add(negative.item_id)
    assert len(chosen) > 1  # a random choice, not always the same one


def test_the_negative_falls_back_when_search_finds_nothing() -> None:
    message = "A fruit."
    convs = [conversation("c01", turn(message, ["food/"]))]
    relevant, negative = sample_pairs(convs, CATALOGUE, FakeSearch({}))
    assert relevant.item_id in {APPLE.id, PEAR.id}
    assert negative.item_id in {COW.id, DUCK.id, HORSE.id, CAR.id}
    assert negative.labelled is False


def test_a_turn_that_needs_sound_follows_the_sound_rule() -> None:
    message = "An animal I can hear."
    convs = [conversation("c03", turn(message, ["animals/"], slice="modality", needs_sound=True))]
    search = FakeSearch({message: [DUCK.id, HORSE.id, COW.id, APPLE.id]})

    # by the catalogue's attribute, only the cow has a sound effect
    relevant, negative = sample_pairs(convs, CATALOGUE, search, sound_by_attribute=True)
    assert (relevant.item_id, relevant.has_sound, relevant.labelled) == (COW.id, True, True)
    # the duck is an animal, but silent by the attribute: the first non-relevant hit
    assert (negative.item_id, negative.has_sound, negative.labelled) == (DUCK.id, False, False)
    assert relevant.needs_sound is True and negative.needs_sound is True

    # by audio, only the duck has one; the horse (an animal without sound) is the negative
    relevant, negative = sample_pairs(convs, CATALOGUE, search, sound_by_attribute=False)
    assert (relevant.item_id, relevant.has_sound, relevant.labelled) == (DUCK.id, True, True)
    assert (negative.item_id, negative.has_sound, negative.labelled) == (HORSE.id, False, False)


def test_the_relevant_choice_is_seeded() -> None:
    animals = [stored(f"animals/mammals/m{k:02d}", f"Mammal {k}", "animals") for k in range(12)]
    items = [*animals, APPLE, CAR]
    message = "A mammal."
    convs = [conversation("c01", turn(message, ["animals/"]), turn("Another one.", ["animals/"]))]
    search = FakeSearch({message: [APPLE.id], "Another one.": [CAR.id]})

    random.seed(1)
    once = sample_pairs(convs, items, search, seed=5)
    random.seed(2)  # the global random state plays no part
    again = sample_pairs(convs, items, search, seed=5)
    assert once == again
    assert sample_pairs(convs, items, search) == sample_pairs(convs, items, search)

    picks = {sample_pairs(convs, items, search, seed=seed)[0].item_id for seed in range(20)}
    assert len(picks) > 1  # some seed picks another relevant item
    assert picks <= {a.id for a in animals}


def test_the_default_seed_is_2026() -> None:
    animals = [stored(f"animals/mammals/m{k:02d}", f"Mammal {k}", "animals") for k in range(12)]
    convs = [conversation("c01", turn("A mammal.", ["animals/"]))]
    search = FakeSearch({"A mammal.": [CAR.id]})
    items = [*animals, CAR]
    assert sample_pairs(convs, items, search) == sample_pairs(convs, items, search, seed=2026)


# --- request, Fit, verdict ----------------------------------------------------------------


def test_the_request_names_the_conversation_and_the_item() -> None:
    pair = make_pair(
        labelled=True,
        item=COW,
        earlier=("I want an animal for my drawing.", "Make it a big one, thanks."),
        message="Something that lives on a farm.",
    )
    req = request(pair)
    assert "model" not in req
    assert req["temperature"] == 0.0
    assert isinstance(req["max_tokens"], int) and 0 < req["max_tokens"] <= 1024
    assert isinstance(req["messages"], list) and req["messages"]
    for message in req["messages"]:
        assert {"role", "content"} <= set(message)
        assert message["role"] in {"system", "user", "assistant", "developer"}
    text = text_of(req)
    assert "Something that lives on a farm." in text
    assert "I want an animal for my drawing." in text
    assert "Make it a big one, thanks." in text
    assert "Holstein cow" in text
    assert "animals" in text
    json.dumps(req)  # a JSON request body


def test_the_request_asks_for_the_fit_schema() -> None:
    req = request(make_pair(labelled=False, item=APPLE))
    fmt = req["response_format"]
    assert fmt["type"] == "json_schema"
    assert isinstance(fmt["json_schema"]["name"], str) and fmt["json_schema"]["name"]
    schema = fmt["json_schema"]["schema"]
    assert "fits" in schema["required"]
    assert schema["properties"]["fits"]["type"] == "boolean"
    assert schema == Fit.model_json_schema()


def test_the_request_depends_on_the_item() -> None:
    apple = request(make_pair(labelled=False, item=APPLE))
    car = request(make_pair(labelled=False, item=CAR))
    assert "Fuji apple" in text_of(apple) and "Fuji apple" not in text_of(car)
    assert "food" in text_of(apple)


def test_fit_forbids_extra_fields() -> None:
    assert Fit(fits=True).fits is True
    with pytest.raises(ValidationError):
        Fit.model_validate({"fits": True, "why": "it moos"})
    with pytest.raises(ValidationError):
        Fit.model_validate({})


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"fits": true}', True),
        ('{"fits": false}', False),
        ('{ "fits" : true }', True),
    ],
)
def test_verdict_reads_the_fits_of_good_json(content: str, expected: bool) -> None:
    assert verdict(response(content)) is expected


@pytest.mark.parametrize(
    "content",
    [
        "yes",
        "The cow fits the request.",
        "",
        "{not json",
        "{}",
        '{"fit": true}',
        '{"fits": "yes"}',
        '{"fits": "true"}',
        '{"fits": 1}',
        '{"fits": null}',
        '{"fits": true, "why": "it moos"}',
        "[true]",
        "true",
    ],
)
def test_verdict_is_none_for_anything_else(content: str) -> None:
    assert verdict(response(content)) is None


def test_verdict_is_none_when_the_content_is_null() -> None:
    assert verdict(response(None)) is None


# --- judge --------------------------------------------------------------------------------


def test_judge_sends_one_request_per_pair_in_one_batch_and_keeps_the_order() -> None:
    pairs = [
        make_pair(labelled=True, item=COW),
        make_pair(labelled=False, item=APPLE),
        make_pair(labelled=False, item=CAR),
        make_pair(labelled=True, item=HORSE),
    ]
    client = FakeClient(says_yes_to("Holstein", "Roadster"))
    verdicts = judge(pairs, client)
    assert verdicts == [True, False, True, False]
    assert len(client.calls) == 1
    assert client.calls[0] == [request(p) for p in pairs]


def test_judge_gives_none_for_an_unreadable_answer() -> None:
    pairs = [make_pair(labelled=True, item=COW), make_pair(labelled=False, item=APPLE)]

    def answer(req: dict[str, Any]) -> str:
        return '{"fits": true}' if "Holstein" in text_of(req) else "I cannot say."

    assert judge(pairs, FakeClient(answer)) == [True, None]


# --- agreement ----------------------------------------------------------------------------


def test_agreement_on_a_hand_computed_example() -> None:
    # (slice, labelled, verdict)
    rows: list[tuple[str, bool, bool | None]] = [
        ("plain", True, True),  # TP
        ("plain", True, True),  # TP
        ("plain", False, True),  # FP
        ("plain", False, False),  # TN
        ("plain", True, None),  # unanswered: counts in "pairs" only
        ("negation", True, True),  # TP
        ("negation", True, False),  # FN
        ("negation", True, False),  # FN
        ("negation", False, False),  # TN
    ]
    pairs = [make_pair(labelled=lab, slice_=s) for s, lab, _ in rows]
    verdicts = [v for _, _, v in rows]
    result = agreement(pairs, verdicts)

    tp, fp, fn, tn = 3, 1, 2, 2
    n = tp + fp + fn + tn
    po = (tp + tn) / n  # 5/8
    judge_yes = (tp + fp) / n  # 4/8
    labelled_yes = (tp + fn) / n  # 5/8
    pe = judge_yes * labelled_yes + (1 - judge_yes) * (1 - labelled_yes)  # 0.5
    kappa = (po - pe) / (1 - pe)  # 0.25

    assert result["pairs"] == 9
    assert result["answered"] == 8
    assert result["agreement"] == pytest.approx(po, abs=1e-3)
    assert result["kappa"] == pytest.approx(kappa, abs=1e-3)
    assert result["kappa"] == pytest.approx(0.25, abs=1e-3)
    assert result["judge_yes"] == pytest.approx(judge_yes, abs=1e-3)
    assert result["labelled_yes"] == pytest.approx(labelled_yes, abs=1e-3)
    assert result["precision"] == pytest.approx(tp / (tp + fp), abs=1e-3)  # 0.75
    assert result["recall"] == pytest.approx(tp / (tp + fn), abs=1e-3)  # 0.6
    assert set(result["by_slice"]) == {"plain", "negation"}
    assert result["by_slice"]["plain"]["pairs"] == 4
    assert result["by_slice"]["plain"]["agreement"] == pytest.approx(0.75, abs=1e-3)
    assert result["by_slice"]["negation"]["pairs"] == 4
    assert result["by_slice"]["negation"]["agreement"] == pytest.approx(0.5, abs=1e-3)
    json.dumps(result)  # plain JSON values


def test_agreement_is_perfect_when_the_judge_says_what_the_labels_say() -> None:
    labels = [True, False, True, False, False]
    pairs = [make_pair(labelled=lab) for lab in labels]
    result = agreement(pairs, list(labels))
    assert result["agreement"] == pytest.approx(1.0, abs=1e-3)
    assert result["kappa"] == pytest.approx(1.0, abs=1e-3)
    assert result["precision"] == pytest.approx(1.0, abs=1e-3)
    assert result["recall"] == pytest.approx(1.0, abs=1e-3)


def test_agreement_kappa_is_zero_when_undefined() -> None:
    pairs = [make_pair(labelled=True) for _ in range(4)]
    result = agreement(pairs, [True, True, True, True])
    assert result["agreement"] == pytest.approx(1.0, abs=1e-3)
    assert result["kappa"] == 0.0
    assert result["judge_yes"] == pytest.approx(1.0, abs=1e-3)
    assert result["labelled_yes"] == pytest.approx(1.0, abs=1e-3)


def test_agreement_precision_and_recall_are_zero_without_a_yes() -> None:
    pairs = [make_pair(labelled=False), make_pair(labelled=False), make_pair(labelled=True)]
    result = agreement(pairs, [False, False, False])
    assert result["precision"] == 0.0  # the judge never says yes
    assert result["recall"] == pytest.approx(0.0, abs=1e-3)
    assert result["agreement"] == pytest.approx(2 / 3, abs=1e-3)

    pairs = [make_pair(labelled=False), make_pair(labelled=False)]
    result = agreement(pairs, [True, False])
    assert result["recall"] == 0.0  # nothing is labelled relevant
    assert result["precision"] == pytest.approx(0.0, abs=1e-3)
    assert result["judge_yes"] == pytest.approx(0.5, abs=1e-3)


def test_agreement_kappa_below_zero_when_the_judge_contradicts_the_labels() -> None:
    labels = [True, False, True, False]
    pairs = [make_pair(labelled=lab) for lab in labels]
    result = agreement(pairs, [not lab for lab in labels])
    assert result["agreement"] == pytest.approx(0.0, abs=1e-3)
    assert result["kappa"] == pytest.approx(-1.0, abs=1e-3)


def test_agreement_refuses_lengths_that_differ() -> None:
    pairs = [make_pair(labelled=True), make_pair(labelled=False)]
    with pytest.raises(ValueError):
        agreement(pairs, [True])
    with pytest.raises(ValueError):
        agreement(pairs, [True, False, None])


# --- run ----------------------------------------------------------------------------------


def test_run_writes_pairs_results_and_a_report(tmp_path: Path) -> None:
    animal, food = "A farm animal, please.", "Something to eat."
    convs = [
        conversation(
            "c01",
            turn(animal, ["animals/mammals/cow"]),
            turn(food, ["food/fruit/apple"], slice="topic_shift"),
        )
    ]
    search = FakeSearch({animal: [COW.id, DUCK.id], food: [CAR.id, PEAR.id]})
    # cow: yes (agrees), duck: no (agrees), apple: no (disagrees), car: yes (disagrees)
    client = FakeClient(says_yes_to("Holstein", "Roadster"))
    out = tmp_path / "results" / "labels"  # does not exist yet

    result = run(convs, CATALOGUE, search, client, out, seed=7)

    assert len(client.calls) == 1 and len(client.calls[0]) == 4
    lines = (out / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    assert len(rows) == 4
    names = {f.name for f in dataclasses.fields(Pair)}
    for row in rows:
        assert names | {"verdict"} <= set(row)
    assert [(r["item_id"], r["labelled"], r["verdict"]) for r in rows] == [
        (COW.id, True, True),
        (DUCK.id, False, False),
        (APPLE.id, True, False),
        (CAR.id, False, True),
    ]
    assert rows[2]["earlier"] == [animal]
    assert rows[2]["turn"] == 2 and rows[2]["slice"] == "topic_shift"
    assert [r["item_id"] for r in rows] == [
        p.item_id for p in sample_pairs(convs, CATALOGUE, search, seed=7)
    ]

    written = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert written["seed"] == 7
    assert written["pairs"] == 4 and written["answered"] == 4
    assert written["agreement"] == pytest.approx(0.5, abs=1e-3)
    assert written["kappa"] == pytest.approx(0.0, abs=1e-3)
    assert written["by_slice"]["plain"]["agreement"] == pytest.approx(1.0, abs=1e-3)
    assert written["by_slice"]["topic_shift"]["agreement"] == pytest.approx(0.0, abs=1e-3)
    assert json.loads(json.dumps(result)) == written

    report = (out / "results.md").read_text(encoding="utf-8")
    assert "|" in report  # a table
    assert "agreement" in report.lower()
    assert any(figure in report for figure in ("0.5", "50%", "50.0%", "50 %"))


def test_run_records_unanswered_verdicts_as_null(tmp_path: Path) -> None:
    message = "An animal."
    convs = [conversation("c01", turn(message, ["animals/mammals/cow"]))]
    search = FakeSearch({message: [APPLE.id]})

    def answer(req: dict[str, Any]) -> str:
        return '{"fits": true}' if "Holstein" in text_of(req) else "no idea"

    out = tmp_path / "out"
    result = run(convs, CATALOGUE, search, FakeClient(answer), out)
    rows = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines() if line]
    assert [r["verdict"] for r in rows] == [True, None]
    assert result["pairs"] == 2 and result["answered"] == 1
    assert result["seed"] == 2026
    assert result["agreement"] == pytest.approx(1.0, abs=1e-3)
