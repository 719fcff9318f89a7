"""Agent building blocks on hand-worked cases: buffer, fusion, profile merging, tolerant
tool-call parsing (raw and malformed JSON), and the grounding checker."""

from typing import Any

import pytest

from agent.buffer import CandidateBuffer
from agent.fusion import fuse, rrf
from agent.grounding import Explanation, check
from agent.parsing import parse_tool_calls
from agent.profile import ProfileUpdate, UserProfile, merge
from agent.wording import from_facts
from indexing.records import Hit
from tools.config import FusionWeights


def _buffer() -> CandidateBuffer:
    buffer = CandidateBuffer()
    buffer.add(
        "text:q", "text", [Hit("a", "Apple", 0.9), Hit("b", "Bread", 0.8), Hit("c", "Cheese", 0.7)]
    )
    buffer.add(
        "image:x",
        "image",
        [Hit("b", "Bread", 0.6), Hit("c", "Cheese", 0.5), Hit("d", "Dates", 0.4)],
    )
    return buffer


def test_rrf_by_hand() -> None:
    scores = {c.id: rrf(c, 60) for c in _buffer().candidates()}
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 62)
    assert scores["d"] == pytest.approx(1 / 63)


def test_fusion_order_breakdown_exclusion_and_constraints() -> None:
    buffer = _buffer()
    only_rrf = fuse(buffer.candidates(), FusionWeights(text=0, image=0, profile=0))
    assert [s.candidate.id for s in only_rrf] == ["b", "c", "a", "d"]
    # With a strong text weight, a's 0.9 text similarity overtakes c: by hand
    # a = 1/61 + 1.0*0.9 = 0.9164; b = 1/62+1/61 + 0.8 + 0.1*0.6 = 0.8925; c = 0.7+0.05+0.0320.
    weighted = fuse(buffer.candidates(), FusionWeights(text=1.0, image=0.1, profile=0))
    assert [s.candidate.id for s in weighted] == ["a", "b", "c", "d"]
    top = weighted[0]
    assert top.breakdown["text"] == 0.9 and "image" not in top.breakdown
    assert top.total == pytest.approx(1 / 61 + 0.9)
    assert weighted[1].breakdown == {
        "rrf": round(1 / 62 + 1 / 61, 6),
        "text": 0.8,
        "image": 0.6,
        "total": round(1 / 62 + 1 / 61 + 0.86, 6),
    }
    seen_excluded = fuse(
        buffer.candidates(), FusionWeights(), exclude={"b"}, allowed=lambda c: c.id != "d"
    )
    assert [s.candidate.id for s in seen_excluded] == ["c", "a"]


def test_buffer_keeps_first_rank_per_source_and_summarises_without_ids() -> None:
    buffer = _buffer()
    buffer.add("text:q", "text", [Hit("a", "Apple", 0.1)])  # same source again: ignored
    apple = buffer.get("a")
    assert apple is not None and apple.ranks == {"text:q": 1} and apple.scores["text:q"] == 0.9
    summary = buffer.summary(buffer.candidates(), limit=2)
    assert summary.startswith("Found 4 items; the first 2:") and "Apple" in summary
    assert "a" not in summary.split()
    with pytest.raises(ValueError, match="unknown signal"):
        buffer.add("x", "vibes", [])


def test_profile_merge() -> None:
    """Likes and dislikes fold in (a new dislike drops the same like); a stored profile of an
    earlier version, with hard constraints in it, still loads (they live in the request now)."""
    old = UserProfile.model_validate_json('{"user_id": "u0", "constraints": {"max_price": 5}}')
    assert old.user_id == "u0" and "constraints" not in old.model_dump()
    profile = UserProfile(
        user_id="u1",
        likes=["birds", "Trains"],
        dislikes=["spiders"],
    )
    update = ProfileUpdate(
        likes=["trains", "spiders"],
        dislikes=["birds"],
        summary="Likes loud vehicles.",
    )
    merged = merge(profile, update)
    assert merged.likes == ["Trains", "spiders"]  # birds now disliked; duplicates folded
    assert merged.dislikes == ["birds"]  # spiders now liked
    assert merged.summary == "Likes loud vehicles." and merged.turns == 1
    assert merge(merged, ProfileUpdate()).summary == "Likes loud vehicles."


NAMES = {"search_catalog", "get_item"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '```json\n{"name": "search_catalog", "arguments": {"query": "red shoes"}}\n```',
            [("search_catalog", {"query": "red shoes"})],
        ),
        (
            '<tool_call>\n{"name": "get_item", "arguments": {"item": 2}}\n</tool_call>',
            [("get_item", {"item": 2})],
        ),
        (
            'Sure! {"function": {"name": "search_catalog", '
            '"arguments": "{\\"query\\": \\"tea\\"}"}}',
            [("search_catalog", {"query": "tea"})],
        ),
        (
            '{"name": "search_catalog", "arguments": {"query": "a"}} then '
            '{"tool": "get_item", "args": {"item": 1}}',
            [("search_catalog", {"query": "a"}), ("get_item", {"item": 1})],
        ),
        ('{"name": "delete_everything", "arguments": {}}', []),  # unknown tool: never guessed
        ('{"name": "search_catalog", "arguments": {"query": "unclosed"', []),  # malformed
        ('{"name": "search_catalog", "arguments": "not json"}', []),
        ("I recommend the red shoes.", []),
        ("", []),
    ],
)
def test_tolerant_tool_call_parsing(
    text: str, expected: list[tuple[str, dict[str, object]]]
) -> None:
    calls = parse_tool_calls(text, NAMES)
    assert [(c["name"], c["args"]) for c in calls] == expected
    assert all(c["id"].startswith("call_") for c in calls)


FACTS = {
    "cow": {
        "title": "Cow",
        "description": "A black and white dairy cow.",
        "category": "animals",
        "transcript": "cow.",
        "attributes": {"subcategory": "mammals"},
    },
    "duck": {"title": "Duck", "description": "A duck.", "category": "animals"},
}


def test_grounding_accepts_supported_claims() -> None:
    result = check(
        Explanation(
            item_id="cow",
            text="A black and white cow. You can hear it.",
            cited_fields=["description", "transcript"],
        ),
        FACTS,
        ["Cow", "Duck"],
    )
    assert result.source == "llm" and result.problems == []
    assert result.text == "A black and white cow. You can hear it."


def test_grounding_repairs_or_replaces_unsupported_claims() -> None:
    repaired = check(
        Explanation(
            item_id="duck",
            text="A duck for the pond. It is bright red. It costs 12 dollars. Much like the Cow. "
            "Listen to it quack.",
            cited_fields=["description", "price"],
        ),
        FACTS,
        ["Cow", "Duck"],
    )
    assert repaired.source == "llm-repaired"
    assert repaired.text == "A duck for the pond."
    assert repaired.cited_fields == ["description"]
    problems = " | ".join(repaired.problems)
    for expected in (
        "missing field 'price'",
        "colour 'red'",
        "number 12",
        "another item: 'Cow'",
        "sound",
    ):
        assert expected in problems
    replaced = check(Explanation(item_id="duck", text="Blue duck.", cited_fields=[]), FACTS)
    assert replaced.source == "template" and replaced.text.startswith("Duck: A duck.")
    with pytest.raises(ValueError, match="not a candidate"):
        check(Explanation(item_id="unicorn", text="x", cited_fields=[]), FACTS)


def test_template_uses_only_item_fields() -> None:
    text, used = from_facts(FACTS["cow"])
    assert text == "Cow: A black and white dairy cow. Category: animals. Its audio says: “cow.”."
    assert used == ["title", "description", "category", "transcript"]


def test_a_cancelled_turn_makes_no_more_llm_calls() -> None:
    import threading

    from agent.steps import StepRunner

    cancel = threading.Event()
    runner = StepRunner(available=True, cancel=cancel)
    calls: list[str] = []
    assert runner.run("a step", lambda: calls.append("asked") or "answer", "fallback") == "answer"
    cancel.set()  # the client went away
    assert runner.run("the next step", lambda: calls.append("asked") or "x", "fallback") == (
        "fallback"
    )
    assert calls == ["asked"] and runner.available is False


def test_llm_steps_run_in_the_callers_context() -> None:
    """A step under a deadline runs in a thread of its own; context variables (a benchmark's
    usage counter) must follow it there."""
    from contextvars import ContextVar

    from agent.steps import StepRunner, background

    seen: ContextVar[str] = ContextVar("seen", default="lost")
    seen.set("kept")
    runner = StepRunner(available=True, deadline_s=30)
    assert runner.run("a step", seen.get, "fallback") == "kept"
    with background(1) as pool:
        assert pool.submit(seen.get).result() == "kept"


def test_item_explanations_cite_what_they_use_and_may_say_the_shoppers_words() -> None:
    """One call per item; the fields an explanation cites are the ones it shares words with,
    and a catalogue title the shopper said ("farm" for an item titled "Farm") is their word,
    not another item."""
    from langchain_core.runnables import RunnableLambda

    from agent.buffer import Candidate
    from agent.fusion import Scored
    from agent.llm_steps import LLMSteps
    from tools.config_llm import LLMSettings

    cow = Candidate(
        "animals/cow",
        "Cow",
        "animals",
        {"title": "Cow", "description": "A farm animal.", "category": "animals"},
    )
    pig = Candidate("animals/pig", "Pig", "animals", {"title": "Pig", "category": "animals"})
    answers = {
        "Cow": "The cow is a farm animal.",
        "Pig": "The pig is one of the animals on a farm.",
    }
    prompts: list[str] = []

    class Model:
        def with_structured_output(self, schema: Any, **kwargs: Any) -> Any:
            def answer(prompt: Any) -> Any:
                prompts.append(str(prompt))
                title = next(t for t in answers if f'"title":"{t}"' in str(prompt))
                return schema(text=answers[title])

            return RunnableLambda(answer)

    steps = LLMSteps(lambda **kw: Model(), LLMSettings(), ["Cow", "Pig", "Farm", "Tractor"])
    clock: dict[str, float] = {}
    out = steps.explain(
        [Scored(cow, 1.0), Scored(pig, 0.5)],
        UserProfile(user_id="u"),
        "an animal from a farm",
        clock,
    )
    assert len(prompts) == 2 and clock["llm"] > 0
    assert out["animals/cow"].source == "llm", out["animals/cow"].problems
    assert out["animals/cow"].cited_fields == ["title", "description", "category"]
    assert out["animals/pig"].source == "llm", out["animals/pig"].problems
    assert out["animals/pig"].cited_fields == ["title", "category"]
    unsaid = steps.explain([Scored(pig, 1.0)], UserProfile(user_id="u"), "an animal", clock)
    assert unsaid["animals/pig"].source == "template"  # "farm" names the item Farm: not said
