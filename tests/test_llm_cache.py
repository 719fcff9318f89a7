"""The evaluation's file-backed LLM answer cache (eval/llm_cache.py): a second run reuses the
first run's answers, structured answers survive the file, and a line cut short by a kill costs
that answer only."""

from __future__ import annotations

from pathlib import Path

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration
from pydantic import BaseModel

from eval.llm_cache import FileCache


class Slots(BaseModel):
    wanted: str
    kinds: list[str]


def test_a_second_run_reuses_the_answers_of_the_first(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    answers = ["a cow", "a goat"]
    first = FakeListChatModel(responses=answers, cache=FileCache(path))
    assert first.invoke("an animal that gives milk").content == "a cow"
    again = FileCache(path)  # a new run: a new process reads the file
    second = FakeListChatModel(responses=answers, cache=again)
    assert second.invoke("an animal that gives milk").content == "a cow"  # not asked …
    assert second.invoke("a vehicle").content == "a cow"  # … so this is its first answer
    assert (again.hits, again.misses) == (1, 1)


def test_structured_answers_survive_and_a_cut_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    cache = FileCache(path)
    parsed = Slots(wanted="a bird", kinds=["robin"])
    message = AIMessage(content=parsed.model_dump_json(), additional_kwargs={"parsed": parsed})
    cache.update("p1", "llm", [ChatGeneration(message=message)])
    cache.update("p2", "llm", [ChatGeneration(message=AIMessage(content="two"))])
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) - 20], encoding="utf-8")  # the last line cut by a kill
    reread = FileCache(path)
    found = reread.lookup("p1", "llm")
    assert found is not None
    generation = found[0]
    assert isinstance(generation, ChatGeneration)
    assert generation.message.additional_kwargs["parsed"] == parsed.model_dump()
    assert reread.lookup("p2", "llm") is None
    assert reread.lookup("p1", "another model") is None
