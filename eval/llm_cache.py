"""A file-backed cache of the chat model's answers for evaluation runs (LangChain's own cache
interface, ``set_llm_cache``): a re-run of a dev evaluation after a change below the LLM
(resolution, ranking) asks the model only the prompts it has not answered before. With the
temperature at 0 an answer depends on its prompt alone, so the figures are those of a fresh
run up to vLLM's own batching noise. Never used by the product: a chat turn always asks."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core._api import LangChainBetaWarning
from langchain_core.caches import BaseCache
from langchain_core.load import dumps, loads
from langchain_core.outputs import ChatGeneration, Generation
from pydantic import BaseModel

from tools.errors import InputError


class FileCache(BaseCache):
    """Answers kept in a JSON-lines file (one answer a line, appended as it comes: a killed run
    keeps what it asked). Thread-safe; a line that cannot be read is skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str], Sequence[Generation]] = {}
        self.hits = 0
        self.misses = 0
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    key = (str(row["prompt"]), str(row["llm"]))
                    self._answers[key] = _load(row["answer"])
                except (ValueError, KeyError, TypeError, NotImplementedError):
                    continue  # a line cut short by a kill
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            except OSError as exc:
                raise InputError(f"cannot write the LLM cache {path}: {exc}") from exc

    def lookup(self, prompt: str, llm_string: str) -> Sequence[Generation] | None:
        with self._lock:
            found = self._answers.get((prompt, llm_string))
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def update(self, prompt: str, llm_string: str, return_val: Sequence[Generation]) -> None:
        row = {"prompt": prompt, "llm": llm_string, "answer": dumps(_plain(return_val))}
        with self._lock:
            self._answers[prompt, llm_string] = return_val
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")

    def clear(self, **kwargs: Any) -> None:
        with self._lock:
            self._answers.clear()
            self.path.write_text("", encoding="utf-8")


def _load(text: str) -> Sequence[Generation]:
    with warnings.catch_warnings():  # ``loads`` is marked beta; the format is LangChain's own
        warnings.simplefilter("ignore", LangChainBetaWarning)
        answers: Sequence[Generation] = loads(
            text, allowed_objects="core", ignore_unserializable_fields=True
        )
    return answers


def _plain(answers: Sequence[Generation]) -> list[Generation]:
    """The answers with a structured output's parsed object as a plain dict (what LangChain's
    OpenAI parser also accepts), so that they serialise."""
    out: list[Generation] = []
    for answer in answers:
        if isinstance(answer, ChatGeneration):
            kwargs = answer.message.additional_kwargs
            parsed = kwargs.get("parsed")
            if isinstance(parsed, BaseModel):
                plain = {**kwargs, "parsed": parsed.model_dump()}
                message = answer.message.model_copy(update={"additional_kwargs": plain})
                answer = answer.model_copy(update={"message": message})
        out.append(answer)
    return out
