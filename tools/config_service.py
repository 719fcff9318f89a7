"""The settings of the HTTP service and of the session store: bound addresses, tokens, request
limits, where conversations persist. Part of :class:`tools.config.Settings`."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

MIN_TOKEN_CHARS = 16
CLIENT_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")  # a per-client token's name (its session space)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def check_token(value: SecretStr, setting: str) -> SecretStr:
    """A bearer token: at least :data:`MIN_TOKEN_CHARS` characters, none of them blank (an empty
    token must never read as "no token")."""
    secret = value.get_secret_value()
    if not secret.strip():
        raise ValueError(f"{setting} is empty; set a real token or remove the setting")
    if len(secret) < MIN_TOKEN_CHARS or any(c.isspace() for c in secret):
        raise ValueError(f"{setting} must be at least {MIN_TOKEN_CHARS} characters without spaces")
    return value


class ServiceSettings(BaseModel):
    """The HTTP service (`recagent serve`)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    host: str = Field(
        "127.0.0.1", description="Address to bind; other than loopback needs a token."
    )
    port: int = Field(8000, ge=1, le=65535, description="Port to bind.")
    token: SecretStr | None = Field(
        None,
        description="Bearer token every route but /healthz requires (never printed); at least "
        f"{MIN_TOKEN_CHARS} characters. Its holder owns the sessions of the default space.",
    )
    tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Per-client bearer tokens, {client name: token}: each client sees only "
        "the sessions it made.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names (the Host header) answered besides the loopback names and the "
        'bound address; ["*"] answers any (only behind a proxy that checks it).',
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser."
    )
    max_body_bytes: int = Field(1_000_000, ge=1_000, description="Largest JSON request body.")
    max_upload_bytes: int = Field(
        20_000_000, ge=1_000, description="Largest uploaded picture or voice message."
    )
    max_svg_bytes: int = Field(
        1_000_000, ge=1_000, description="Largest uploaded SVG, after inflating .svgz."
    )
    max_k: int = Field(20, ge=1, le=100, description="Most items one turn may ask for.")
    read_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a client has to send a request's headers or "
        "its body before the connection is closed.",
    )
    max_connections: int = Field(
        256, ge=1, description="Connections served at once; more are answered 503."
    )

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else check_token(value, "service.token")

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        seen: set[str] = set()
        for name, token in value.items():
            if not CLIENT_NAME.fullmatch(name):
                raise ValueError(
                    f"service.tokens: client name {name[:40]!r} must be 1-32 letters, digits, "
                    "'-' or '_'"
                )
            check_token(token, f"service.tokens.{name}")
            if token.get_secret_value() in seen:
                raise ValueError(f"service.tokens.{name} is the same token as another client's")
            seen.add(token.get_secret_value())
        return value

    @property
    def secured(self) -> bool:
        """Whether requests must carry a token."""
        return self.token is not None or bool(self.tokens)


class SessionSettings(BaseModel):
    """Where conversations and profiles persist (:mod:`agent.session`)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    url: str | None = Field(
        None,
        repr=False,  # it may hold a password
        description="postgresql://user:password@host:port/database of a PostgreSQL server "
        "the sessions live in (for several service processes; the password is never "
        "printed). None: the SQLite file DATA_DIR/sessions.sqlite3.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "sessions.url must start with postgresql:// or postgres:// "
                "(leave it unset for the SQLite file under DATA_DIR)"
            )
        return value
