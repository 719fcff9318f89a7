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


balancer_app = typer.Typer(
    help="Several `recagent serve` replicas behind one address (HAProxy).", no_args_is_help=True
)


@balancer_app.command("config")
def balancer_config(
    backend: Annotated[
        list[str],
        typer.Option(
            help="A replica's HOST:PORT ([IPv6]:PORT); repeat for each replica.",
            show_default=False,
        ),
    ],
    port: Annotated[
        int, typer.Option(help="Port the balancer listens on.", min=1, max=65535)
    ] = 8000,
    bind: Annotated[
        str, typer.Option(help="Address the balancer binds (other than loopback: --check-token).")
    ] = "127.0.0.1",
    balance: Annotated[
        str, typer.Option(help="leastconn (fewest open requests) or roundrobin.")
    ] = "leastconn",
    check_token: Annotated[
        bool,
        typer.Option(
            help="Health checks send the token from HAProxy's RECAGENT_SERVICE__TOKEN "
            "(for replicas with service.token; it is not written into the file)."
        ),
    ] = False,
    stream_timeout: Annotated[
        int, typer.Option(help="Seconds a streamed turn may stay open.", min=30)
    ] = 600,
) -> None:
    """Print an haproxy.cfg for these replicas: health checks on /readyz, streamed turns passed
    through unbuffered, retries only when no replica was reached. The replicas must share their
    sessions (sessions.url, PostgreSQL). Run it with `haproxy -f haproxy.cfg`."""
    import sys

    from service.balancer import haproxy_config, parse_backend

    text = haproxy_config(
        [parse_backend(b) for b in backend],
        port=port,
        bind=bind,
        balance=balance,
        check_token=check_token,
        stream_timeout_s=stream_timeout,
    )
    sys.stdout.write(text)
