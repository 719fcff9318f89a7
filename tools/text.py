"""Untrusted text made safe to store and print: control characters (terminal escapes, bells,
NULs) and the bidirectional overrides that make text read differently from what it is
(CVE-2021-42574 "Trojan Source") are removed; tabs and newlines stay."""

from __future__ import annotations

import re
from typing import Any

_OBJECT_NAME = re.compile(r"<[^<>]{0,200} object at 0x[0-9a-fA-F]+>")
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """``text`` without control and bidirectional-override characters."""
    return _UNSAFE.sub("", text)


def clean_all(value: Any) -> Any:
    """:func:`clean` applied to every string inside ``value`` (dicts, lists, keys too)."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean_all(k): clean_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_all(v) for v in value]
    return value


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters (with "…"), for quoting untrusted input in errors."""
    return text if len(text) <= limit else f"{text[:limit]}…"


def without_object_names(text: str, replacement: str = "the data") -> str:
    """``text`` without Python's ``<_io.BytesIO object at 0x...>`` names (library errors quote
    them; they mean nothing to a user and tell an attacker about the process)."""
    return _OBJECT_NAME.sub(replacement, text)
