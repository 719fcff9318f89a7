"""Who a request is, from its bearer token, and whose sessions it may touch.

* No token configured (the loopback default): one user space, every client is its owner.
* ``service.token``: one token; its holder owns the default space (the sessions the command
  line's ``chat --user`` also sees).
* ``service.tokens = {name: token}``: each client's sessions live in a space of its own
  (:func:`agent.session.session_key`), so one client cannot read or delete another's,
  whatever user ids they pick.

Tokens are compared in constant time; the scheme word ``Bearer`` is case-insensitive.
"""

from __future__ import annotations

import hmac

from tools.config_service import ServiceSettings, check_token
from tools.errors import ConfigError

DEFAULT_SPACE = ""


class Unauthorised(Exception):
    """The request lacks a valid bearer token."""


class Tokens:
    """The configured tokens, each with the space it opens."""

    def __init__(self, cfg: ServiceSettings) -> None:
        pairs = [(DEFAULT_SPACE, cfg.token, "service.token")] if cfg.token is not None else []
        pairs += [(name, t, f"service.tokens.{name}") for name, t in cfg.tokens.items()]
        try:  # settings built in code (model_copy) skip validation: check again here
            self._tokens = [
                (space, check_token(token, setting).get_secret_value().encode())
                for space, token, setting in pairs
            ]
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def space(self, authorization: str) -> str:
        """The space the ``Authorization`` header's token opens; Unauthorised if none does."""
        if not self._tokens:
            return DEFAULT_SPACE
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Unauthorised
        offered = given.strip().encode()
        found = None
        for space, token in self._tokens:  # every token compared: no early exit to time
            if hmac.compare_digest(offered, token):
                found = space
        if found is None:
            raise Unauthorised
        return found
