"""A scripted chat model for the agent's control flow: queued turns, recorded tool choices, and
a check that every scripted turn was used."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, PrivateAttr


class ScriptedChatModel(BaseChatModel):
    _turns: deque[AIMessage | Exception] = PrivateAttr(default_factory=deque)
    _structured: deque[dict[str, Any] | Exception] = PrivateAttr(default_factory=deque)
    _tool_choices: list[Any] = PrivateAttr(default_factory=list)
    _prompts: list[str] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def script(self, *turns: AIMessage | Exception) -> ScriptedChatModel:
        self._turns.extend(turns)
        return self

    def script_structured(self, *values: dict[str, Any] | Exception) -> ScriptedChatModel:
        self._structured.extend(values)
        return self

    @property
    def tool_choices(self) -> list[Any]:
        return self._tool_choices

    @property
    def prompts(self) -> list[str]:
        return self._prompts

    def assert_all_used(self) -> None:
        assert not self._turns, f"{len(self._turns)} scripted turns were never used"
        assert not self._structured, f"{len(self._structured)} structured outputs never used"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._tool_choices.append(kwargs.get("tool_choice"))
        self._prompts.append("\n".join(str(m.content) for m in messages))
        if not self._turns:
            raise AssertionError("the model was called more often than scripted")
        turn = self._turns.popleft()
        if isinstance(turn, Exception):
            raise turn
        return ChatResult(generations=[ChatGeneration(message=turn)])

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[Any, BaseMessage]:
        return self.bind(tool_choice=tool_choice, **kwargs)

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Runnable[Any, Any]:  # type: ignore[override]
        def answer(prompt: Any) -> Any:
            self._prompts.append(str(prompt))
            if not self._structured:
                raise AssertionError("structured output requested more often than scripted")
            value = self._structured.popleft()
            if isinstance(value, Exception):
                raise value
            assert isinstance(schema, type) and issubclass(schema, BaseModel)
            return schema.model_validate(value)

        return RunnableLambda(answer)
