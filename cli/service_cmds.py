"""``recagent serve``: the recommender as an HTTP service with its web page."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.options import ConfigOpt, ServeOpt, StoreOpt, UrlOpt, settings
from cli.render import console


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind (default 127.0.0.1; any other needs a token)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).", min=1, max=65535)] = None,
    llm: ServeOpt = True,
    store: StoreOpt = None,
    chroma_url: UrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the recommender over HTTP: the JSON and streaming API (OpenAPI schema at
    /openapi.json) and the chat page at /. Answers only the loopback names, the bound address and
    service.allowed_hosts; refuses cross-site writes; see the README's Security section.
    Starts or reuses the local vLLM like `chat` when a step of the turn uses it. The token comes
    from service.token or RECAGENT_SERVICE__TOKEN (or per-client service.tokens), never from the
    command line."""
    import uvicorn

    from cli.agent_cmds import open_recommender
    from service.app import create_app
    from service.build import build_service, check_exposure
    from service.serving import uvicorn_config

    cfg = settings(
        ctx, config, store_dir=store, chroma_url=chroma_url, service={"host": host, "port": port}
    )
    check_exposure(cfg)  # before anything starts
    recommender = open_recommender(cfg, llm, console)
    app = create_app(build_service(cfg, recommender))
    where = f"http://{cfg.service.host}:{cfg.service.port}"
    console.print(
        f"serving on {where} (page: {where}/, OpenAPI schema: {where}/openapi.json)", markup=False
    )
    uvicorn.Server(uvicorn_config(app, cfg.service, log_level="info")).run()
