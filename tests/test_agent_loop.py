"""The agent's control flow with a scripted chat model over a small real store (the fast tier:
seconds, see tests/small_store.py): forced tool choice, tolerant parsing of calls written as
text, the step cap, fallbacks, constraints, seen items, concurrent turns."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from agent.conversation import Conversation
from agent.profile import UserProfile
from agent.recommender import Recommender
from agent.session import SessionStore
from agent.wording import intro
from indexing.store import Store
from tests.fake_chat import ScriptedChatModel
from tests.small_store import build_small_store
from tools.config import Settings, TurnSettings


@pytest.fixture(scope="module")
def indexed(
    prepared_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, Store, Any]:
    """The small store (the fast tier): built in seconds, real embedder, real Chroma. These
    tests drive the LLM steps, so those of the sequential design are on (profile, tools,
    explanations, intro; the request path is tested in test_turn.py)."""
    settings, store, models = build_small_store(
        tmp_path_factory.mktemp("agent-store"), prepared_models
    )
    return settings.model_copy(update={"turn": TurnSettings.sequential()}), store, models


def _call(name: str, **args: Any) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": args, "id": f"c-{name}", "type": "tool_call"}],
    )


def _explain_one(prompt: str) -> dict[str, Any]:
    item = json.loads(re.search(r"<<<ITEM\n(.*)\nITEM>>>", prompt, re.S).group(1))  # type: ignore[union-attr]
    return {"text": f"{item['title']} is in {item['category']}."}


def _recommender(
    indexed: tuple[Settings, Store, Any], model: ScriptedChatModel | None, **llm: Any
) -> Recommender:
    settings, store, models = indexed
    if llm:
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update=llm)})
    return Recommender.build(
        settings, store, models, (lambda *, streaming, max_tokens: model) if model else None
    )


def _script_explanations(model: ScriptedChatModel) -> None:
    original = model.with_structured_output

    def patched(schema: Any, **kwargs: Any) -> Any:
        if schema.__name__ == "ItemExplanation":  # one call per item, answered from its prompt
            from langchain_core.runnables import RunnableLambda

            def answer(prompt: Any) -> Any:
                model.prompts.append(str(prompt))
                return schema.model_validate(_explain_one(str(prompt)))

            return RunnableLambda(answer)
        return original(schema, **kwargs)

    object.__setattr__(model, "with_structured_output", patched)


def test_full_turn_with_forced_first_tool_call(indexed: tuple[Settings, Store, Any]) -> None:
    model = ScriptedChatModel()
    model.script_structured({"likes": ["birds"], "summary": "Likes birds."})
    model.script(
        _call("search_catalog", query="birds that sing"),
        AIMessage(content="Done."),
        AIMessage(content="Here are some feathered friends for you."),
    )
    _script_explanations(model)
    recommender = _recommender(indexed, model)
    convo = Conversation("u1", UserProfile(user_id="u1"))
    streamed: list[str] = []
    result = recommender.respond(convo, "I would like a bird", k=3, on_token=streamed.append)
    model.assert_all_used()
    assert model.tool_choices[:2] == ["required", None]  # forced first, free afterwards
    assert result.tool_calls == ["search_catalog('birds that sing', None)"]
    store = indexed[1]
    ids = [r.item_id for r in result.recommendations]
    assert len(ids) == 3 and len(store.items(ids)) == 3
    assert all(r.explanation_source == "llm" for r in result.recommendations)
    assert all(set(r.cited_fields) <= {"title", "category"} for r in result.recommendations)
    assert result.intro == "Here are some feathered friends for you." and streamed
    assert result.profile.likes == ["birds", "bird"] and convo.profile.turns == 1  # model, rule
    assert all(
        r.breakdown["total"] == pytest.approx(r.score, abs=1e-6) for r in result.recommendations
    )
    assert result.notices == []
    # The next turn repeats nothing already recommended while enough items fit (3 birds were
    # shown; the store has 6 animals).
    again = _recommender(indexed, None).respond(convo, "I would like an animal", k=3)
    assert not set(ids) & {r.item_id for r in again.recommendations}


def test_tool_call_written_as_json_text_is_recovered(indexed: tuple[Settings, Store, Any]) -> None:
    model = ScriptedChatModel()
    model.script_structured({"summary": "Wants vehicles."})
    text_call = '```json\n{"name": "search_catalog", "arguments": {"query": "fast cars"}}\n```'
    model.script(
        AIMessage(content=text_call),
        AIMessage(content=text_call),  # repeated: dropped
        AIMessage(content="Vroom."),
    )
    _script_explanations(model)
    result = _recommender(indexed, model).respond(
        Conversation("u2", UserProfile(user_id="u2")), "something with wheels"
    )
    model.assert_all_used()
    assert result.tool_calls == ["search_catalog('fast cars', None)"]


def test_malformed_tool_arguments_go_back_to_the_model(
    indexed: tuple[Settings, Store, Any],
) -> None:
    model = ScriptedChatModel()
    model.script_structured({})
    model.script(
        _call("similar_items", result_number=7),  # no search yet: an error message back
        _call("search_catalog", query="food"),
        _call("get_item", result_number=99),
        AIMessage(content="That is enough."),
        AIMessage(content="Enjoy."),
    )
    _script_explanations(model)
    result = _recommender(indexed, model, max_steps=4).respond(
        Conversation("u3", UserProfile(user_id="u3")), "something to eat"
    )
    model.assert_all_used()
    assert result.tool_calls == ["similar_items(7)", "search_catalog('food', None)", "get_item(99)"]
    tool_messages = " ".join(model.prompts)
    assert "call search_catalog first" in tool_messages and "There is no result 99" in tool_messages


def test_step_cap_ends_a_model_that_keeps_calling(indexed: tuple[Settings, Store, Any]) -> None:
    model = ScriptedChatModel()
    model.script_structured({})
    model.script(
        _call("search_catalog", query="a"),
        _call("search_catalog", query="b"),
        AIMessage(content="Intro."),
    )
    _script_explanations(model)
    result = _recommender(indexed, model, max_steps=2).respond(
        Conversation("u4", UserProfile(user_id="u4")), "anything"
    )
    model.assert_all_used()  # 2 tool-phase calls + the intro: a third tool call never happened
    assert len(result.tool_calls) == 2


def test_constraints_and_seen_items(indexed: tuple[Settings, Store, Any]) -> None:
    store = indexed[1]
    categories = set(store.taxonomy().categories)
    target = "animals" if "animals" in categories else sorted(categories)[0]
    model = ScriptedChatModel()
    model.script_structured({"likes": [target], "summary": "Likes noisy things."})
    model.script(
        _call("search_catalog", query="anything at all"),
        AIMessage(content="Ok."),
        AIMessage(content="Intro."),
    )
    _script_explanations(model)
    first = _recommender(indexed, None).respond(
        Conversation("x", UserProfile(user_id="x")), "anything at all", k=1
    )
    seen = first.recommendations[0].item_id
    convo = Conversation("u5", UserProfile(user_id="u5"), history_ids=[seen])
    # The request's constraints (the category and the sound, read by rule) hold whatever the
    # model's profile update says; seen items stay out.
    result = _recommender(indexed, model).respond(convo, f"{target} that make noises", k=5)
    fitting = [
        i
        for i in store.all_items()
        if i.category == target and i.facts.get("has_audio") and i.id != seen
    ]
    assert 0 < len(fitting) < len(result.recommendations) <= 5
    # Those that fit come first; only when they run out does the list go outside the target,
    # and never to an item without the sound asked for.
    for rec in result.recommendations[: len(fitting)]:
        assert rec.facts["category"] == target
    for rec in result.recommendations:
        assert rec.facts["has_audio"] and rec.item_id != seen


def test_llm_server_down_still_recommends(indexed: tuple[Settings, Store, Any]) -> None:
    from langchain_openai import ChatOpenAI

    settings, store, models = indexed
    dead = ChatOpenAI(
        base_url="http://127.0.0.1:9/v1",
        api_key="x",
        model="m",  # type: ignore[arg-type]
        max_retries=0,
        timeout=2,
    )
    recommender = Recommender.build(settings, store, models, lambda *, streaming, max_tokens: dead)
    result = recommender.respond(Conversation("u6", UserProfile(user_id="u6")), "a bird", k=3)
    assert len(result.recommendations) == 3
    assert all(r.explanation_source == "reasons" for r in result.recommendations)
    assert result.notices and "falling back" in result.notices[0]
    assert "ConnectionError" in result.notices[0]


def test_unusable_explanations_fall_back_to_the_reasons(
    indexed: tuple[Settings, Store, Any],
) -> None:
    model = ScriptedChatModel()
    # the profile update, then one answer per item that does not fit the schema
    model.script_structured({}, {"text": ["not", "a", "string"]}, {"text": None})
    model.script(AIMessage(content="no tools today"), AIMessage(content="Two picks."))
    result = _recommender(indexed, model).respond(
        Conversation("u7", UserProfile(user_id="u7")), "a vehicle", k=2
    )
    model.assert_all_used()
    assert len(result.recommendations) == 2
    assert all(r.explanation_source == "reasons" for r in result.recommendations)
    assert "ValidationError" in " ".join(result.notices)


def test_one_failed_explanation_costs_only_its_item(
    indexed: tuple[Settings, Store, Any],
) -> None:
    """The items are explained by separate calls: one that fails leaves that item to its
    reasons and keeps the model's sentence for the other."""
    model = ScriptedChatModel()
    model.script(AIMessage(content="no tools today"), AIMessage(content="Two picks."))
    model.script_structured({})  # the profile update
    original = model.with_structured_output
    calls: list[str] = []

    def patched(schema: Any, **kwargs: Any) -> Any:
        if schema.__name__ != "ItemExplanation":
            return original(schema, **kwargs)
        from langchain_core.runnables import RunnableLambda

        def answer(prompt: Any) -> Any:
            calls.append(str(prompt))
            item = _explain_one(str(prompt))
            if "Car" not in item["text"].split()[0]:
                raise ValueError("the answer was cut off")
            return schema.model_validate(item)

        return RunnableLambda(answer)

    object.__setattr__(model, "with_structured_output", patched)
    result = _recommender(indexed, model).respond(
        Conversation("u8", UserProfile(user_id="u8")), "a car or a bus", k=2
    )
    titles = [r.title for r in result.recommendations]
    assert len(calls) == 2 and "Car" in titles and len(titles) == 2, titles
    sources = {r.title: r.explanation_source for r in result.recommendations}
    assert sources["Car"] == "llm"
    assert all(source == "reasons" for title, source in sources.items() if title != "Car")


def test_one_unusable_answer_does_not_silence_the_rest(
    indexed: tuple[Settings, Store, Any],
) -> None:
    model = ScriptedChatModel()
    model.script_structured(ValueError("the profile JSON was cut off"))
    model.script(
        _call("search_catalog", query="birds"),
        AIMessage(content="Done."),
        AIMessage(content="Some birds."),
    )
    _script_explanations(model)
    result = _recommender(indexed, model).respond(
        Conversation("u8", UserProfile(user_id="u8")), "birds please", k=2
    )
    model.assert_all_used()
    assert result.tool_calls == ["search_catalog('birds', None)"]
    assert all(r.explanation_source == "llm" for r in result.recommendations)
    assert len(result.notices) == 1 and "profile update was unusable" in result.notices[0]


def test_intro_naming_other_items_is_withdrawn(indexed: tuple[Settings, Store, Any]) -> None:
    store = indexed[1]
    stored = store.all_items()
    titles = [item.title for item in stored]
    model = ScriptedChatModel()
    model.script_structured({})
    model.script(
        AIMessage(content="no tools"),
        AIMessage(content=f"Try the {titles[0]} and the {titles[1]}!"),
    )
    _script_explanations(model)
    convo = Conversation(
        "u9", UserProfile(user_id="u9"), history_ids=[item.id for item in stored[:2]]
    )
    result = _recommender(indexed, model).respond(convo, "anything", k=2)
    model.assert_all_used()
    chosen = {r.title for r in result.recommendations}
    assert not {titles[0], titles[1]} <= chosen
    # withdrawn: the wording file's intro names the actual picks instead
    assert result.intro == intro([r.title for r in result.recommendations])
    assert titles[0] not in result.intro and titles[1] not in result.intro


def test_collaborative_model_is_discovered_and_fused(
    indexed: tuple[Settings, Store, Any], tmp_path: Path
) -> None:
    """A model trained on this catalogue's ids is found under DATA_DIR/collab with its tuned
    weights; the history drives a collaborative retrieval that fusion ranks by."""
    from tools.collaborative import CollabModel
    from tools.sasrec import SASRecConfig

    settings, store, models = indexed
    settings = settings.model_copy(update={"data_dir": tmp_path})
    ids = sorted(store.ids())
    histories = [[0, 1]] * 10 + [[2, 3]] * 10 + [[n, n + 1] for n in range(4, len(ids) - 1)]
    small = SASRecConfig(hidden=16, blocks=1, heads=1, max_len=4, epochs=5)
    folder = tmp_path / "collab" / "demo"
    CollabModel.fit(histories, ids, small, alpha=0.0).save(folder)  # alpha 0: EASE only
    (folder / "fusion.json").write_text(json.dumps({"rrf": 0.2, "collab": 20.0}))

    recommender = Recommender.build(settings, store, models, None)
    assert recommender.collab is not None and recommender.weights.collab == 20.0
    convo = Conversation("collab-user", UserProfile(user_id="collab-user"))
    convo.history_ids, convo.history_titles = [ids[0]], ["first"]
    result = recommender.respond(convo, "something nice", k=3, explain=False)
    top = result.recommendations[0]
    assert top.item_id == ids[1], [(r.item_id, r.breakdown) for r in result.recommendations]
    assert top.breakdown["collab"] > 0
    assert ids[0] not in [r.item_id for r in result.recommendations]  # seen stays out

    from agent.toolkit import TurnContext, _stored_hits, retrieve_similar

    ctx = TurnContext(store, models, settings.index, collab=recommender.collab)
    picked = ctx.buffer.add("pick", "text", _stored_hits(ctx, [(ids[2], 1.0)]))[0]
    similar = retrieve_similar(ctx, picked)  # similar_items: text, image and collaborative
    assert f"similar-collab:{ids[2]}" in ctx.buffer.sources
    assert ids[3] in [c.id for c in similar]  # its co-occurring item, from the collab model

    chosen = settings.model_copy(update={"fusion": settings.fusion.model_copy()})
    chosen.model_fields_set.add("fusion")  # weights the user set win over the tuned ones
    assert Recommender.build(chosen, store, models, None).weights.collab == settings.fusion.collab


def test_the_learned_ranker_orders_the_collaborative_list_and_why_shows_its_features(
    indexed: tuple[Settings, Store, Any], tmp_path: Path
) -> None:
    """With a ranker saved beside the collaborative model, the collaborative retrieval follows
    it, and each item's breakdown carries the ranker's strongest feature contributions."""
    from tools import candidate_pool
    from tools.collaborative import CollabModel
    from tools.ranker import LearnedRanker
    from tools.sasrec import SASRecConfig

    settings, store, models = indexed
    settings = settings.model_copy(update={"data_dir": tmp_path})
    ids = sorted(store.ids())
    pairs = [[0, 1]] * 30 + [[2, 3]] * 30 + [[n, n + 1] for n in range(4, len(ids) - 1)] * 3
    small = SASRecConfig(hidden=16, blocks=1, heads=1, max_len=4, epochs=5)
    model = CollabModel.fit(pairs, ids, small, alpha=0.0)
    pool = candidate_pool.build(model.pool_parts(), [p[:1] for p in pairs], depth=5)
    labels = pool.labels([p[1] for p in pairs])
    model.ranker = LearnedRanker.fit(pool.features, labels, pool.rows, candidate_pool.FEATURES)
    folder = tmp_path / "collab" / "demo"
    model.save(folder)
    (folder / "fusion.json").write_text(json.dumps({"rrf": 0.2, "collab": 20.0}))

    recommender = Recommender.build(settings, store, models, None)
    assert recommender.collab is not None and recommender.collab.ranker is not None
    convo = Conversation("ranked-user", UserProfile(user_id="ranked-user"))
    convo.history_ids, convo.history_titles = [ids[0]], ["first"]
    result = recommender.respond(convo, "something nice", k=3, explain=False)
    top = result.recommendations[0]
    assert top.item_id == ids[1], [(r.item_id, r.breakdown) for r in result.recommendations]
    explained = {k: v for k, v in top.breakdown.items() if k.startswith("ranker.")}
    assert 1 <= len(explained) <= 5 and {k[7:] for k in explained} <= set(candidate_pool.FEATURES)
    assert top.breakdown["collab"] > 0


def test_step_runner_falls_back_per_step_or_for_the_rest_of_the_turn() -> None:
    from agent.steps import LLMFailure, StepRunner

    runner = StepRunner(available=True)

    def unusable() -> str:
        raise LLMFailure("bad JSON", unreachable=False)

    def down() -> str:
        raise LLMFailure("connection refused", unreachable=True)

    assert runner.run("the profile update", unusable, "kept") == "kept"
    assert runner.available and runner.run("tool calling", lambda: "used", "x") == "used"
    assert runner.run("the reply", down, "template") == "template"
    assert not runner.available
    assert runner.run("the explanations", lambda: "never called", "fallback") == "fallback"
    assert [(f.step, f.unreachable) for f in runner.failures] == [
        ("the profile update", False),
        ("the reply", True),
    ]
    assert len(runner.notices) == 2 and "falling back" in runner.notices[1]


def test_a_bug_in_a_step_is_not_swallowed() -> None:
    from agent.steps import StepRunner

    def buggy() -> str:
        raise KeyError("a bug, not the LLM's fault")

    with pytest.raises(KeyError):
        StepRunner(available=True).run("the reply", buggy, "fallback")


def test_without_explanations_no_llm_writes_text(indexed: tuple[Settings, Store, Any]) -> None:
    model = ScriptedChatModel()
    model.script_structured({})
    model.script(AIMessage(content="no tools"))  # the tool phase only: no intro, no explanations
    result = _recommender(indexed, model).respond(
        Conversation("u10", UserProfile(user_id="u10")), "a fruit", k=2, explain=False
    )
    model.assert_all_used()
    assert [r.explanation_source for r in result.recommendations] == ["reasons", "reasons"]
    assert result.intro == "Here are 2 picks for you: Banana and Apple."


def test_one_recommender_serves_concurrent_conversations(
    indexed: tuple[Settings, Store, Any],
) -> None:
    """No per-turn state on the Recommender: turns of different users at once stay apart."""
    from concurrent.futures import ThreadPoolExecutor

    recommender = _recommender(indexed, None)
    requests = {"a": "a bird that sings", "b": "a vehicle with wheels", "c": "sweet fruit"}
    convos = {user: Conversation(user, UserProfile(user_id=user)) for user in requests}
    alone = {
        user: [
            r.item_id
            for r in _recommender(indexed, None)
            .respond(Conversation(user, UserProfile(user_id=user)), text, k=3)
            .recommendations
        ]
        for user, text in requests.items()
    }
    with ThreadPoolExecutor(3) as pool:
        results = dict(
            zip(
                requests,
                pool.map(
                    lambda user: recommender.respond(convos[user], requests[user], k=3),
                    requests,
                ),
                strict=True,
            )
        )
    for user, result in results.items():
        assert [r.item_id for r in result.recommendations] == alone[user]
        assert convos[user].recommended == alone[user]
        assert [m[1] for m in convos[user].messages if m[0] == "user"] == [requests[user]]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        (b'{"choices": null}', "application/json"),
        (b'{"choices": []}', "application/json"),
        (b'{"choices": [{"message": null}]}', "application/json"),
        (b"not json at all", "application/json"),
    ],
)
def test_garbage_from_the_llm_costs_steps_not_the_turn(
    indexed: tuple[Settings, Store, Any], tmp_path: Path, body: bytes, content_type: str
) -> None:
    """An HTTP 200 with a body that is not a chat completion: every LLM step falls back with a
    notice, the turn answers, and the session is saved."""
    import httpx
    from langchain_openai import ChatOpenAI

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    def chat(*, streaming: bool, max_tokens: int) -> Any:
        return ChatOpenAI(
            base_url="http://llm.invalid/v1",
            api_key="x",  # type: ignore[arg-type]
            model="m",
            max_retries=0,
            streaming=streaming,
            max_tokens=max_tokens,  # type: ignore[call-arg]
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        )

    settings, store, models = indexed
    recommender = Recommender.build(settings, store, models, chat)
    convo = Conversation("g", UserProfile(user_id="g"))
    result = recommender.respond(convo, "a bird", k=2)
    assert len(result.recommendations) == 2
    assert all(r.explanation_source in {"template", "reasons"} for r in result.recommendations)
    assert result.notices
    sessions = SessionStore(tmp_path)
    sessions.save(convo)
    assert sessions.load("g").recommended == convo.recommended


def test_a_hung_endpoint_holds_a_turn_no_longer_than_its_deadline(
    indexed: tuple[Settings, Store, Any],
) -> None:
    """An endpoint that accepts connections and never answers: with the default request
    timeout (120 s, 2 retries) a turn used to wait minutes; the turn's LLM deadline bounds it."""
    import socket
    import time

    from agent.llm import EndpointChat, request_budget

    settings, store, models = indexed
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # never accepted, never answered
        port = hung.getsockname()[1]
        cfg = settings.model_copy(
            update={
                "llm": settings.llm.model_copy(update={"base_url": f"http://127.0.0.1:{port}/v1"}),
                "turn": settings.turn.model_copy(update={"llm_deadline_s": 3.0}),
            }
        )
        assert request_budget(cfg) == (3.0, 0)
        recommender = Recommender.build(cfg, store, models, EndpointChat(cfg))
        started = time.monotonic()
        result = recommender.respond(Conversation("h", UserProfile(user_id="h")), "a bird", k=2)
        took = time.monotonic() - started
    assert len(result.recommendations) == 2
    assert any("longer than the turn allows" in n for n in result.notices)
    assert took < 3.0 + 5.0  # the deadline, plus the turn's own work
