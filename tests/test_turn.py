"""The turn with request understanding (the default) on the small store: scoped targets,
negations, sound, references, standing preferences that persist, the ranked list before the
explanations, explanations from computed reasons, and the LLM steps only when switched on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.conversation import Conversation
from agent.grounding import supported
from agent.item_text import sentences, tautology
from agent.profile import UserProfile
from agent.recommender import Recommender
from agent.session import SessionStore
from indexing.store import Store
from tests.fake_chat import ScriptedChatModel
from tests.small_store import build_small_store
from tools.config import Settings, TurnSettings


@pytest.fixture(scope="module")
def small(prepared_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_small_store(tmp_path_factory.mktemp("turn-store"), prepared_models)


def _recommender(
    small: tuple[Settings, Store, Any], model: ScriptedChatModel | None = None, **turn: Any
) -> Recommender:
    settings, store, models = small
    chosen = TurnSettings(**{"reading_llm": False, **turn})  # the reading: tests/test_reading.py
    settings = settings.model_copy(update={"turn": chosen})
    chat = (lambda *, streaming, max_tokens: model) if model is not None else None
    return Recommender.build(settings, store, models, chat)


def _convo(user: str = "u") -> Conversation:
    return Conversation(user, UserProfile(user_id=user))


def test_a_new_topic_replaces_the_old_target(small: Any) -> None:
    recommender = _recommender(small)
    convo = _convo()
    first = recommender.respond(convo, "I love farm animals that make a noise", k=3)
    assert {r.item_id for r in first.recommendations} <= {
        "animals/farm/cow",
        "animals/farm/pig",
        "animals/birds/owl",
    }
    second = recommender.respond(convo, "Now something sweet to eat: fruit would be nice", k=2)
    assert {r.item_id for r in second.recommendations} == {"food/fruit/apple", "food/fruit/banana"}
    assert not any("earlier" in a.source for a in second.applied)


def test_negations_and_sound(small: Any) -> None:
    recommender = _recommender(small)
    anything = recommender.respond(_convo(), "anything but vehicles or food", k=6)
    assert not any(r.item_id.startswith(("vehicles/", "food/")) for r in anything.recommendations)
    heard = recommender.respond(_convo(), "an animal I can hear, but not a bird", k=3)
    assert [r.item_id for r in heard.recommendations] in (
        ["animals/farm/cow", "animals/farm/pig"],
        ["animals/farm/pig", "animals/farm/cow"],
    )


def test_follow_up_inherits_and_more_like_that_uses_the_last_picks(small: Any) -> None:
    recommender = _recommender(small)
    convo = _convo()
    first = recommender.respond(convo, "Show me a bird", k=1)
    more = recommender.respond(convo, "More like that", k=2)
    ids = [r.item_id for r in more.recommendations]
    assert all(i.startswith("animals/birds/") for i in ids)
    assert first.recommendations[0].item_id not in ids
    assert any(a.kind == "reference" for a in more.applied)
    assert any(a.kind == "target" and a.source == "earlier turn 1" for a in more.applied)


def test_standing_preferences_persist_across_sessions(small: Any, tmp_path: Path) -> None:
    recommender = _recommender(small)
    sessions = SessionStore(tmp_path)
    convo = sessions.load("standing")
    recommender.respond(convo, "Never show me birds, ever. An animal please.", k=1)
    sessions.save(convo)
    again = sessions.load("standing")
    assert [s.value for s in again.profile.standing if s.kind == "exclude_path"] == [
        "animals/birds"
    ]
    later = recommender.respond(again, "Show me some animals", k=5)
    assert later.recommendations
    assert not any(r.item_id.startswith("animals/birds/") for r in later.recommendations)
    assert any(a.source == "standing (turn 1)" for a in later.applied)


def test_ranked_list_first_and_explanations_from_reasons_without_the_llm(small: Any) -> None:
    model = ScriptedChatModel()  # nothing scripted: any call to it fails the test
    recommender = _recommender(small, model)
    events: list[str] = []

    def on_ranked(ranked: list[tuple[str, str]]) -> None:
        events.append("ranked:" + ",".join(i for i, _ in ranked))

    result = recommender.respond(_convo(), "a farm animal I can hear", k=2, on_ranked=on_ranked)
    model.assert_all_used()
    assert events == ["ranked:" + ",".join(r.item_id for r in result.recommendations)]
    assert result.intro.startswith("Here are 2 picks for you: ")
    assert result.timings["ranked"] <= result.timings["total"]
    for rec in result.recommendations:
        assert rec.explanation_source == "reasons" and rec.reasons
        assert "sound effect" in rec.explanation
        for sentence in sentences(rec.explanation):
            assert supported(sentence, rec.facts, " ".join(rec.reasons)) is None, sentence
            assert not tautology(sentence, rec.facts)


def test_expansion_step_adds_queries_and_falls_back_alone(small: Any) -> None:
    model = ScriptedChatModel()
    model.script_structured({"kinds": ["robin"]}, ValueError("cut off"))
    recommender = _recommender(small, model, expansion_llm=True)
    used = recommender.respond(_convo(), "a bird that sings in spring", k=2)
    assert [a.value for a in used.applied if a.kind == "expansion"] == ["robin"]
    assert used.recommendations[0].item_id == "animals/birds/robin"
    assert used.notices == []
    failed = recommender.respond(_convo(), "a vehicle for a long journey", k=2)
    model.assert_all_used()
    assert len(failed.recommendations) == 2
    assert len(failed.notices) == 1 and "expansion" in failed.notices[0]


def test_the_target_beats_novelty_unless_something_different_is_asked(small: Any) -> None:
    recommender = _recommender(small)
    convo = _convo()
    first = recommender.respond(convo, "Show me a bird", k=2)
    # one bird is left unseen: the fourth pick is a bird shown before, not a cow
    again = recommender.respond(convo, "Another bird please", k=2)
    shown = {r.item_id for r in first.recommendations}
    ids = [r.item_id for r in again.recommendations]
    assert all(i.startswith("animals/birds/") for i in ids)
    assert ids[0] not in shown and ids[1] in shown
    fresh = _convo("f")
    recommender.respond(fresh, "Show me a bird", k=2)
    other = recommender.respond(fresh, "Something different", k=3)
    assert not {r.item_id for r in other.recommendations} & set(fresh.recommended[:2])


def test_likes_and_dislikes_reorder_as_a_soft_signal(small: Any) -> None:
    recommender = _recommender(small)
    plain = recommender.respond(_convo("p"), "something for the house", k=2)
    assert "profile" not in plain.recommendations[0].breakdown  # no likes: no term
    convo = _convo("d")
    convo.profile = convo.profile.model_copy(update={"dislikes": ["lamp, light"]})
    disliked = recommender.respond(convo, "something for the house", k=2)
    scores = {r.item_id: r.breakdown for r in disliked.recommendations}
    assert all("profile" in b for b in scores.values())
    if "household/lamp" in scores and "household/chair" in scores:
        assert scores["household/lamp"]["profile"] < scores["household/chair"]["profile"]
    assert disliked.recommendations[0].item_id != "household/lamp"


def test_attachments_are_used_without_the_llm(small: Any, tmp_path: Path) -> None:
    """A picture becomes an image search, a voice message becomes the request's words, a bad
    file costs itself only, all with no LLM at all."""
    from tests.media import png, speech_wav

    recommender = _recommender(small)
    green = png(tmp_path / "green.png", (30, 180, 40, 255))
    seen = recommender.respond(_convo("pic"), "", k=3, attachments={"green.png": green})
    found = {r.item_id: r for r in seen.recommendations}
    parrot = found.get("animals/birds/parrot")  # its picture is this very green square
    assert parrot is not None and parrot.breakdown["image"] > 0.99, found
    voice = speech_wav(tmp_path / "voice.wav", "Show me some fruit")
    heard = recommender.respond(_convo("voice"), "", k=2, attachments={"voice.wav": voice})
    assert any("Heard in voice.wav" in n and "fruit" in n.lower() for n in heard.notices), (
        heard.notices
    )
    assert {r.item_id for r in heard.recommendations} == {"food/fruit/apple", "food/fruit/banana"}
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    result = recommender.respond(
        _convo("bad"), "a bird", k=2, attachments={"broken.png": broken, "notes.txt": odd}
    )
    assert all(r.item_id.startswith("animals/birds/") for r in result.recommendations)
    assert any("broken.png cannot be used" in n for n in result.notices)
    assert any("notes.txt is neither" in n for n in result.notices)


def test_feedback_changes_the_next_ranking_and_persists(small: Any, tmp_path: Path) -> None:
    from agent.feedback import Feedback
    from tools.errors import InputError

    recommender = _recommender(small)
    sessions = SessionStore(tmp_path)
    convo = sessions.load("fb")
    first = recommender.respond(convo, "an animal", k=3)
    shown = [r.item_id for r in first.recommendations]
    with pytest.raises(InputError, match="was not recommended"):
        recommender.record_feedback(convo, Feedback(item_id="food/fruit/apple", kind="like"))
    liked, disliked = shown[0], shown[1]
    recommender.record_feedback(convo, Feedback(item_id=liked, kind="like"))
    recommender.record_feedback(convo, Feedback(item_id=disliked, kind="rating", rating=1))
    titles = {r.item_id: r.title for r in first.recommendations}
    assert titles[liked] in convo.profile.likes and titles[disliked] in convo.profile.dislikes
    sessions.save(convo)
    again = sessions.load("fb")
    assert [f.item_id for f in again.feedback.values()] == [liked, disliked]
    # six animals, three shown: the fourth pick comes back from the shown ones, never the
    # disliked one
    after = recommender.respond(again, "another animal", k=4)
    assert len(after.recommendations) == 4
    assert disliked not in {r.item_id for r in after.recommendations}
    terms = {r.item_id: r.breakdown.get("feedback") for r in after.recommendations}
    assert all(t is not None for t in terms.values())  # /why shows the feedback term
    # without the feedback the same request ranks differently
    plain = recommender.respond(_convo("fb2"), "an animal", k=3)
    plain_next = recommender.respond(
        Conversation("fb3", UserProfile(user_id="fb3"), recommended=list(shown)),
        "another animal",
        k=3,
    )
    assert "feedback" not in plain_next.recommendations[0].breakdown
    assert plain.recommendations  # the baseline answers too
    with pytest.raises(ValueError, match="rating"):
        Feedback(item_id="x", kind="rating")
