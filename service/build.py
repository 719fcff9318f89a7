"""Putting the service together from the configuration (the same pieces every command uses)."""

from __future__ import annotations

import ipaddress

from agent import llm_server
from agent.llm import endpoint
from agent.recommender import Recommender
from agent.session import open_sessions
from service.app import Service
from service.auth import Tokens
from tools.config import Settings
from tools.errors import ConfigError, RecagentError


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond this machine without a token, and any token too short."""
    cfg = settings.service
    Tokens(cfg)  # raises ConfigError naming the setting of an empty or short token
    if not loopback(cfg.host) and not cfg.secured:
        raise ConfigError(
            f"refusing to serve on {cfg.host} without a token: set service.token (or "
            "RECAGENT_SERVICE__TOKEN, at least 16 characters) or service.tokens, or bind to "
            "127.0.0.1"
        )


def build_service(settings: Settings, recommender: Recommender) -> Service:
    """The service around ``recommender`` (built by the front end, which may start the LLM)."""

    def llm_ready() -> str | None:
        if not settings.turn.uses_llm:
            return None
        if recommender.chat is None:
            return "no LLM: turns answer with embedding ranking and template explanations"
        try:
            target = endpoint(settings)
        except RecagentError as exc:
            return f"LLM unavailable: {exc.message}"
        if not llm_server.ready(target.base_url, api_key=target.api_key):
            return f"LLM at {target.base_url} does not answer"
        return None

    return Service(settings, recommender, open_sessions(settings), llm_ready)
