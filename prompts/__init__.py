"""Prompt files (package data), loaded with importlib.resources and rendered with Jinja2.

``render`` uses StrictUndefined and checks that the caller passed exactly the variables the
prompt declares in its first line (``{# vars: a, b #}``), so a renamed variable fails loudly.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

_VARS = re.compile(r"^\{#\s*vars:\s*(.*?)\s*#\}\s*\n")


@cache
def load(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8")


@cache
def load_text(filename: str) -> str:
    """A data file of the prompts package (worked examples and the like), as text."""
    return resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")


def declared(name: str) -> set[str]:
    match = _VARS.match(load(name))
    return {v.strip() for v in match.group(1).split(",") if v.strip()} if match else set()


def render(name: str, **values: Any) -> str:
    import jinja2

    expected = declared(name)
    if set(values) != expected:
        raise KeyError(f"prompt {name!r} expects {sorted(expected)}, got {sorted(values)}")
    template = jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    ).from_string(_VARS.sub("", load(name)))
    return template.render(**values).strip()
