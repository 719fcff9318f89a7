"""One typed configuration for every model role, path and limit.

Sources, highest priority first: explicit overrides (CLI flags), environment variables
(``RECAGENT_…``, nested with ``__``, e.g. ``RECAGENT_MODELS__CAPTIONER``), a TOML file
(``--config``, ``$RECAGENT_CONFIG`` or ``./recagent.toml``), then the defaults below.
Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tools.config_llm import LLMSettings
from tools.config_service import ServiceSettings, SessionSettings
from tools.errors import ConfigError

SMALL_LLM = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
LARGER_LLM = "Qwen/Qwen2.5-Coder-1.5B-Instruct"
DEFAULT_LLM = LARGER_LLM  # its reading of requests wins on dev; the 0.5B's does not (README)
DEFAULT_WHISPER = "Systran/faster-whisper-tiny.en"
DEFAULT_TEXT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_VISION = "efficientnet-lite0"
NO_MODEL = "none"  # a role switched off (TOML has no null)


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback) / "recagent"


class ModelSettings(BaseModel):
    """Which model plays each role: a Hugging Face id or a local folder/file path."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    llm: str = Field(DEFAULT_LLM, description="Chat LLM served by vLLM.")
    vision: str = Field(
        DEFAULT_VISION,
        description="ImageNet vision model that tags pictures and embeds them: "
        "efficientnet-lite0 (shipped), efficientnet-lite2 (shipped, larger), a Hugging Face "
        "image-classification model id or folder, or none (pixel statistics only).",
    )
    vision_min_confidence: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Labels of a catalogue picture below this probability are not stored.",
    )
    photo_min_confidence: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Labels of a photo searched by below this probability are not used "
        "(chosen on the dev photos: `recagent eval photos --sweep`).",
    )
    captioner: str | None = Field(
        None,
        description="Image-to-text model (e.g. Salesforce/blip-image-captioning-base). "
        "None: the vision model's labels (pixel statistics when vision is none).",
    )
    whisper: str = Field(DEFAULT_WHISPER, description="Speech-to-text checkpoint.")
    whisper_backend: Literal["faster-whisper", "openai-whisper"] = Field(
        "faster-whisper",
        description="faster-whisper takes CTranslate2 folders; openai-whisper takes a .pt "
        "checkpoint path or an official model name.",
    )
    text_embedder: str = Field(DEFAULT_TEXT_EMBEDDER, description="sentence-transformers model.")
    image_embedder: str | None = Field(
        None,
        description="CLIP model (transformers CLIPModel), or pixels for pixel statistics. "
        "None: the vision model's pooled features (pixel statistics when vision is none).",
    )
    device: str = Field("cpu", description="torch device for transformers models.")


class IndexSettings(BaseModel):
    """Limits and batching for `recagent index`."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    batch_size: int = Field(64, ge=1, le=4096, description="Items per model batch and store write.")
    max_image_bytes: int = Field(20_000_000, ge=1, description="Larger image files are rejected.")
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="Larger decoded images are rejected."
    )
    max_audio_bytes: int = Field(50_000_000, ge=1, description="Larger audio files are rejected.")
    max_audio_seconds: float = Field(600.0, gt=0, description="Longer audio is rejected.")
    no_speech_threshold: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Whisper segments above this no-speech probability are dropped.",
    )


class FusionWeights(BaseModel):
    """How retrieved candidates are fused: ``rrf * RRF + sum(kind weight * best similarity)``
    (the formula is in :mod:`agent.fusion`). The one weights type: configuration, the agent and
    ``eval rank``'s tuning all use it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    rrf: float = Field(1.0, ge=0, description="Weight of the RRF score.")
    text: float = Field(0.05, ge=0, description="Weight of text similarity.")
    image: float = Field(0.02, ge=0, description="Weight of image similarity.")
    labels: float = Field(
        0.04, ge=0, description="Weight of a photo's labels' similarity to an item's text."
    )
    profile: float = Field(0.03, ge=0, description="Weight of similarity to the profile's likes.")
    knowledge: float = Field(
        0.05, ge=0, description="Weight of similarity to an item's stored knowledge (best fact)."
    )
    collab: float = Field(
        0.0, ge=0, description="Weight of the RRF of collaborative retrievals (by rank)."
    )
    feedback: float = Field(
        0.05,
        ge=0,
        description="Weight of similarity to the session's liked items minus its disliked ones.",
    )

    def of(self, kind: str) -> float:
        return float(getattr(self, kind))


class TurnSettings(BaseModel):
    """Which steps a conversation turn runs. Each LLM step costs seconds on a small model; the
    defaults are what `recagent eval conversations` measured to pay for itself with the default
    0.5B model (see README, "Conversations"). Strong models may turn more on."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error

    rules: bool = Field(
        True,
        description="The rules read each message (targets, negations, sound, price, "
        "references, standing preferences); off: only the LLM's reading does (an ablation: it "
        "needs reading_llm, and without a reachable LLM the message is plainly searched).",
    )
    reading_llm: bool = Field(
        True,
        description="The LLM reads each message into slots (what is wanted, fitting kinds, what "
        "to avoid, new topic or not, the pick referred to, sound) that refine the rules' request; "
        "without a reachable LLM the rules alone read it.",
    )
    profile_llm: bool = Field(False, description="The LLM updates the taste profile each turn.")
    tools_llm: bool = Field(False, description="The LLM plans extra retrievals as tool calls.")
    expansion_llm: bool = Field(
        False, description="The LLM proposes concrete kinds as extra search queries."
    )
    explain_llm: bool = Field(
        False, description="The LLM phrases the computed reasons (else a template does)."
    )
    intro_llm: bool = Field(False, description="The LLM writes the reply's first sentence.")
    knowledge_fields: list[str] = Field(
        default_factory=lambda: ["gloss"],
        description="Which stored knowledge fields (`recagent enrich`: WordNet's `kind` and "
        "`gloss`) the request's query, and the LLM's reading when it reads, also search, each "
        "as a ranking of its own; empty: none. Read only where the store has knowledge.",
    )
    exclusion_knowledge: list[str] = Field(
        default_factory=lambda: ["kind", "gloss"],
        description="Which stored knowledge fields (`recagent enrich`) an exclusion is also "
        'checked against: "no balls" leaves out the basketball, whose WordNet gloss says it '
        'is played with a ball; "nothing religious" the monastery, a religious residence. '
        "Empty: only the catalogue's own words.",
    )
    synonym_threshold: float = Field(
        0.75, ge=0, le=1, description="Cosine similarity at which a word names a catalogue node."
    )
    near_duplicate: float = Field(
        0.85,
        ge=0,
        le=1,
        description="Cosine similarity of two items' title embeddings at which the later one "
        "is a near-duplicate, moved behind the next different items (1: never).",
    )
    llm_deadline_s: float = Field(
        60.0,
        gt=0,
        description="Seconds all LLM calls of one turn may take together; past it the turn "
        "answers without the LLM (a hung endpoint cannot hold a turn longer).",
    )

    @model_validator(mode="after")
    def _reader(self) -> TurnSettings:
        if not self.rules and not self.reading_llm:
            raise ValueError("turn.rules = false needs turn.reading_llm = true (someone must read)")
        return self

    @property
    def uses_llm(self) -> bool:
        """Whether any step of the turn asks the LLM."""
        return (
            self.reading_llm
            or self.profile_llm
            or self.tools_llm
            or self.expansion_llm
            or self.explain_llm
            or self.intro_llm
        )

    @classmethod
    def sequential(cls) -> TurnSettings:
        """The LLM steps of the earlier sequential design, all on: the profile update, the tool
        phase, the explanations and the intro (a baseline for `bench chat`, and what the tests
        of those steps drive)."""
        return cls(
            reading_llm=False,  # it read requests by rule only
            profile_llm=True,
            tools_llm=True,
            expansion_llm=False,
            explain_llm=True,
            intro_llm=True,
            llm_deadline_s=900.0,  # it had no turn deadline
        )


class Settings(BaseSettings):
    """Everything recagent needs to know about where things live and which models to use."""

    model_config = SettingsConfigDict(
        env_prefix="RECAGENT_", env_nested_delimiter="__", extra="forbid"
    )

    cache_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache"),
        description="Prepared model weights.",
    )
    data_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share"),
        description="Installed catalogues and the default store.",
    )
    store_dir: Path | None = Field(
        None, description="Embedded Chroma folder; default: DATA_DIR/store."
    )
    chroma_url: str | None = Field(
        None, description="http://host:port of a `chroma run` server; overrides store_dir."
    )
    collection: str = Field("catalog", description="Prefix of the Chroma collections.")
    collab_dir: Path | None = Field(
        None,
        description="A collaborative model (from `recagent eval rank`) for the catalogue in "
        "the store. Default: the one under DATA_DIR/collab whose items cover the store's.",
    )
    models: ModelSettings = Field(default_factory=ModelSettings)  # type: ignore[arg-type]
    index: IndexSettings = Field(default_factory=IndexSettings)  # type: ignore[arg-type]
    llm: LLMSettings = Field(default_factory=LLMSettings)  # type: ignore[arg-type]
    fusion: FusionWeights = Field(default_factory=FusionWeights)  # type: ignore[arg-type]
    turn: TurnSettings = Field(default_factory=TurnSettings)  # type: ignore[arg-type]
    service: ServiceSettings = Field(default_factory=ServiceSettings)  # type: ignore[arg-type]
    sessions: SessionSettings = Field(default_factory=SessionSettings)  # type: ignore[arg-type]

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        if not value.replace("-", "").replace("_", "").isalnum() or not 3 <= len(value) <= 48:
            raise ValueError("collection must be 3-48 letters, digits, '-' or '_'")
        return value

    @property
    def resolved_store_dir(self) -> Path:
        return self.store_dir or self.data_dir / "store"

    @property
    def renders_dir(self) -> Path:
        """Where SVG pictures are kept rendered (PNG by the file's SHA-256), for serving."""
        return self.data_dir / "renders"

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def config_file_path(explicit: Path | None = None) -> Path | None:
    """The TOML file to read: explicit, else $RECAGENT_CONFIG, else ./recagent.toml if present."""
    if explicit is not None:
        if not explicit.is_file():
            raise FileNotFoundError(f"config file not found: {explicit}")
        return explicit
    env = os.environ.get("RECAGENT_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise FileNotFoundError(f"RECAGENT_CONFIG points to a missing file: {path}")
        return path
    local = Path("recagent.toml")
    return local if local.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from overrides > environment > TOML file > defaults.

    ``overrides`` may nest, e.g. ``models={"captioner": "/models/blip"}``; ``None`` values are
    ignored so CLI options left unset do not mask lower sources.
    """
    clean = _drop_none(overrides)
    path = config_file_path(config_file)
    where = f"configuration file {path}" if path is not None else "configuration"
    try:
        if path is None:
            return Settings(**clean)
        cls = type(
            "FileSettings",
            (Settings,),
            {"model_config": {**Settings.model_config, "toml_file": path}},
        )
        return cls(**clean)  # type: ignore[no-any-return]
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"invalid {where}: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """Each problem as ``section.key: message``, never echoing the value (it may be a secret)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            nested = _drop_none(value)
            if nested:
                out[key] = nested
        elif value is not None:
            out[key] = value
    return out
