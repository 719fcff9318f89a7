"""The ``recagent`` command line: the root command, its global options and the entry point.

Subcommands: ``models`` (prepare, list), ``catalogue`` (install, check), ``index``, ``search``,
``bench``, ``demo``, ``llm``, ``recommend``, ``chat``, ``serve``, ``balancer``, ``eval``. Run
``recagent COMMAND --help`` for each one's options. :func:`main` is the one place a
:class:`RecagentError` becomes ``error: MESSAGE`` on stderr and its exit code; any other
exception is a bug and shows a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cli import (
    agent_cmds,
    bench_cmds,
    catalogue_cmds,
    enrich_cmds,
    eval_cmds,
    service_cmds,
    setup_cmds,
)
from cli.render import err
from tools.errors import RecagentError

app = typer.Typer(
    help="recagent: a multimodal recommender driven by an LLM agent.\n\n"
    "Set-up and the demo: see README.md. Configuration: a TOML file (--config, $RECAGENT_CONFIG "
    "or ./recagent.toml), RECAGENT_* environment variables, then these flags.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Commands first, in the order --help lists them, then the groups.
app.command("index")(catalogue_cmds.index)
app.command("search")(catalogue_cmds.search)
app.command("enrich")(enrich_cmds.enrich_cmd)
app.command("demo")(setup_cmds.demo)
app.command("recommend")(agent_cmds.recommend)
app.command("chat")(agent_cmds.chat)
app.command("serve")(service_cmds.serve)
app.add_typer(service_cmds.balancer_app, name="balancer")
app.add_typer(setup_cmds.models_app, name="models")
app.add_typer(setup_cmds.catalogue_app, name="catalogue")
app.add_typer(bench_cmds.bench_app, name="bench")
app.add_typer(agent_cmds.llm_app, name="llm")
app.add_typer(eval_cmds.eval_app, name="eval")


@app.callback()
def root(
    ctx: typer.Context,
    llm: Annotated[str | None, typer.Option(help="Chat LLM: Hugging Face id or path.")] = None,
    captioner: Annotated[
        str | None, typer.Option(help="Image-to-text model (id or path); default: pixel facts.")
    ] = None,
    whisper: Annotated[str | None, typer.Option(help="Whisper checkpoint (id or path).")] = None,
    whisper_backend: Annotated[
        str | None, typer.Option(help="faster-whisper (default) or openai-whisper.")
    ] = None,
    text_embedder: Annotated[
        str | None, typer.Option(help="sentence-transformers model (id or path).")
    ] = None,
    image_embedder: Annotated[
        str | None, typer.Option(help="CLIP model (id or path); default: pixel statistics.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="torch device, e.g. cpu or cuda.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Model cache folder.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Catalogues and default store.")] = None,
) -> None:
    """Global options set model roles and folders for every subcommand."""
    ctx.obj = {
        "cache_dir": cache_dir,
        "data_dir": data_dir,
        "models": {
            "llm": llm,
            "captioner": captioner,
            "whisper": whisper,
            "whisper_backend": whisper_backend,
            "text_embedder": text_embedder,
            "image_embedder": image_embedder,
            "device": device,
        },
    }


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "chromadb", "faster_whisper", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def main() -> None:
    """The ``recagent`` entry point."""
    _quiet_libraries()
    try:
        app()
    except RecagentError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
