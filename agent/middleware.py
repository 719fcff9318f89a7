"""LangChain agent middleware that makes a small model usable for tool orchestration.

* :class:`ToolChoicePolicy` forces a tool call (``tool_choice="required"``) on the first model
  call of a run when the policy is "forced", and lets the model choose afterwards; with "auto"
  (strong models) it never forces.
* :class:`TolerantToolCalls` turns calls written as JSON text into real tool calls, and drops a
  call identical to one already made in the run (small models repeat themselves); with nothing
  left the run ends. At most ``max_parallel`` calls of one message run.

The step cap is LangChain's ``ModelCallLimitMiddleware``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, HumanMessage

from agent.parsing import parse_tool_calls


def _calls_this_run(messages: list[Any]) -> list[AIMessage]:
    last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    return [m for m in messages[last_human + 1 :] if isinstance(m, AIMessage)]


def _key(call: dict[str, Any]) -> str:
    return json.dumps([call["name"], call.get("args", {})], sort_keys=True, default=str)


class ToolChoicePolicy(AgentMiddleware):  # type: ignore[type-arg]
    def __init__(self, mode: str = "forced") -> None:
        super().__init__()
        self.mode = mode

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:  # type: ignore[type-arg]
        if self.mode == "forced" and not _calls_this_run(request.messages) and request.tools:
            request = request.override(tool_choice="required")
        return handler(request)


class TolerantToolCalls(AgentMiddleware):  # type: ignore[type-arg]
    def __init__(self, max_parallel: int = 2) -> None:
        super().__init__()
        self.max_parallel = max_parallel  # small models fire every tool at once

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:  # type: ignore[type-arg]
        response = handler(request)
        result = response.result if isinstance(response, ModelResponse) else [response]
        message = next((m for m in result if isinstance(m, AIMessage)), None)
        if message is None:
            return response
        names = {str(getattr(t, "name", "")) for t in request.tools}
        calls = list(message.tool_calls) or parse_tool_calls(str(message.content), names)
        done = {_key(dict(c)) for m in _calls_this_run(request.messages) for c in m.tool_calls}
        fresh = [c for c in calls if _key(dict(c)) not in done][: self.max_parallel]
        if fresh == list(message.tool_calls):
            return response
        replacement = AIMessage(
            content="" if fresh else str(message.content), tool_calls=fresh, id=message.id
        )
        return ModelResponse(result=[replacement])
