"""Tolerant tool-call parsing for small models that write calls as text.

Qwen2.5-0.5B, asked with free tool choice, often writes ``{"name": ..., "arguments": {...}}``
in a ```json block, or in ``<tool_call>`` tags the server did not parse. These helpers recover
such calls; names not among the agent's tools are ignored, never guessed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection
from typing import Any

_FENCE = re.compile(r"```(?:json|tool_call)?\s*(.*?)```", re.DOTALL)
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def _objects(text: str) -> list[Any]:
    """JSON values found in fences, tags, or as bare ``{...}`` spans in ``text``."""
    chunks = [m.group(1) for m in _FENCE.finditer(text)] + [
        m.group(1) for m in _TAGGED.finditer(text)
    ]
    if not chunks:
        chunks = [text]
    found: list[Any] = []
    decoder = json.JSONDecoder()
    for chunk in chunks:
        index = 0
        while (start := chunk.find("{", index)) != -1:
            try:
                value, end = decoder.raw_decode(chunk, start)
            except json.JSONDecodeError:
                index = start + 1
                continue
            found.append(value)
            index = end
    return found


def _as_call(value: Any, names: Collection[str]) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    if "function" in value and isinstance(value["function"], dict):
        value = value["function"]
    name = value.get("name") or value.get("tool") or value.get("tool_name")
    args = value.get("arguments", value.get("args", value.get("parameters", {})))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None
    if not isinstance(name, str) or name not in names or not isinstance(args, dict):
        return None
    return {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}


def parse_tool_calls(text: str, names: Collection[str]) -> list[dict[str, Any]]:
    """Tool calls written as JSON text; empty when none is recognisable."""
    calls: list[dict[str, Any]] = []
    for value in _objects(text or ""):
        call = _as_call(value, names)
        if call is not None:
            calls.append(call)
    return calls
