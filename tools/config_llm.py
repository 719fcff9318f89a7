"""The chat LLM's settings: the managed local vLLM server, or one or several OpenAI-compatible
endpoints, with timeouts and retries. Part of :class:`tools.config.Settings`."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class LLMSettings(BaseModel):
    """The chat LLM endpoint: a managed local vLLM server by default, or any OpenAI-compatible
    ``base_url`` (a remote vLLM deployment, another provider)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    base_url: str | None = Field(
        None,
        description="OpenAI-compatible endpoint, e.g. http://gpu-box:8000/v1. "
        "None: the local vLLM that `recagent llm serve` manages.",
    )
    base_urls: list[str] = Field(
        default_factory=list,
        description="Several OpenAI-compatible endpoints serving the same model (vLLM "
        "replicas), instead of base_url: each request goes to the next healthy one in turn "
        "(agent/llm_endpoints.py).",
    )
    endpoint_cooldown_s: float = Field(
        30.0,
        gt=0,
        description="Seconds an endpoint of base_urls that refused a connection or timed out "
        "is left out before it is tried again.",
    )
    api_key: SecretStr = Field(
        SecretStr("EMPTY"), description="Bearer token for base_url or base_urls (never printed)."
    )
    model_name: str | None = Field(
        None, description="Model name to request; default: the served name of the local server."
    )
    served_name: str = Field("recagent-llm", description="Name the local server serves under.")
    host: str = Field("127.0.0.1", description="Local server bind address.")
    port: int = Field(8011, ge=1, le=65535, description="Local server port.")
    python: str | None = Field(
        None, description="Interpreter with vLLM installed; default: .venv-vllm/bin/python."
    )
    kv_cache_gb: int = Field(2, ge=1, description="VLLM_CPU_KVCACHE_SPACE on CPU machines.")
    draft_model: str = Field(
        "auto",
        description="Speculative decoding on the local server: a small model of the same "
        "family (same tokenizer) proposes tokens that the served model checks, so greedy "
        "answers are the same, sooner. auto: the shipped 0.5B drafts for the shipped 1.5B "
        "(when prepared), nothing else gets a draft; none: off; or a Hugging Face id or folder.",
    )
    draft_tokens: int = Field(
        3, ge=1, le=16, description="Tokens the draft model proposes per step (3 measured best)."
    )
    max_model_len: int = Field(4096, ge=512, description="Context length the server allows.")
    startup_timeout: float = Field(900.0, gt=0, description="Seconds to wait for readiness.")
    request_timeout: float = Field(120.0, gt=0, description="Seconds per request.")
    max_retries: int = Field(2, ge=0, description="Retries with backoff per request.")
    tool_choice: Literal["forced", "auto"] = Field(
        "forced",
        description="forced: tool steps use tool_choice=required (small models); "
        "auto: the model chooses (strong models).",
    )
    max_steps: int = Field(3, ge=1, le=12, description="Cap on model calls in the tool phase.")
    temperature: float = Field(0.0, ge=0, le=2)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value and not _http_url(value):  # empty: unset, as it always was
            raise ValueError(f"must be {_HTTP_URL}")
        return value

    @field_validator("draft_model")
    @classmethod
    def _draft_model(cls, value: str) -> str:
        """The keywords in one spelling (``auto``, ``none``; empty is ``none``); a model id or
        path stays as written."""
        value = value.strip()
        if value.lower() in {"auto", "none", ""}:
            return value.lower() or "none"
        return value

    @field_validator("base_urls")
    @classmethod
    def _base_urls(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for number, url in enumerate(value, 1):  # never echo a URL: it may hold a password
            if not _http_url(url):
                raise ValueError(f"entry {number} must be {_HTTP_URL}")
            if url.rstrip("/") in seen:
                raise ValueError(f"entry {number} repeats an earlier one")
            seen.add(url.rstrip("/"))
        return value

    @model_validator(mode="after")
    def _one_kind_of_endpoint(self) -> LLMSettings:
        if self.base_url and self.base_urls:
            raise ValueError(
                "llm.base_url and llm.base_urls are both set: use base_url for one endpoint "
                "or base_urls for several, not both"
            )
        return self

    @property
    def remote_urls(self) -> list[str]:
        """The configured endpoints (base_urls, or base_url alone) without a trailing slash;
        empty: the local server that `recagent llm serve` manages."""
        urls = self.base_urls or ([self.base_url] if self.base_url else [])
        return [url.rstrip("/") for url in urls]


_HTTP_URL = "an http:// or https:// URL with a host, e.g. http://gpu-box:8000/v1"


def _http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        port_ok = parts.port != 0  # .port raises on a port that is not a number in range
    except ValueError:
        return False
    return port_ok and parts.scheme.lower() in {"http", "https"} and bool(parts.hostname)
