"""Option types the commands share (declared once) and the settings every command starts from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from tools.config import Settings, describe_errors, load_settings
from tools.errors import ConfigError

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML configuration file.")]
StoreOpt = Annotated[Path | None, typer.Option("--store", help="Embedded Chroma folder.")]
UrlOpt = Annotated[
    str | None,
    typer.Option("--chroma-url", help="Use a `chroma run` server, e.g. http://127.0.0.1:8000."),
]
UserOpt = Annotated[str, typer.Option("--user", help="User id (profiles and sessions persist).")]
HistoryOpt = Annotated[
    Path | None, typer.Option(help="JSON list of item ids the user interacted with before.")
]
ServeOpt = Annotated[
    bool, typer.Option("--serve/--no-serve", help="Start the local vLLM if it is not running.")
]
FiguresOpt = Annotated[Path, typer.Option(help="Where to write the JSON figures.")]
ResultsOpt = Annotated[Path, typer.Option(help="Results folder.")]
ConcurrencyOpt = Annotated[int, typer.Option(help="LLM requests in flight.", min=1)]
JudgeUrlOpt = Annotated[
    str | None,
    typer.Option(help="OpenAI-compatible URL of the judge (default: the recommender's LLM)."),
]
JudgeModelOpt = Annotated[str | None, typer.Option(help="The judge's model name.")]
JudgeKeyOpt = Annotated[str | None, typer.Option(help="The judge's API key.")]


def settings(ctx: typer.Context, config: Path | None, **overrides: Any) -> Settings:
    """The configuration: these overrides, then the global options, the environment and the
    TOML file. A missing file or an invalid value is a :class:`ConfigError` (exit 2)."""
    merged = {**(ctx.obj or {}), **overrides}
    try:
        return load_settings(config, **merged)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    except ValidationError as exc:  # an override that no file or section check saw
        raise ConfigError(f"invalid configuration: {describe_errors(exc)}") from None
