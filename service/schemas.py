"""The JSON bodies of the HTTP API (validated by pydantic; unknown fields are errors)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from indexing.records import Filters


class FilterSpec(BaseModel):
    """Hard bounds on the items a turn may return."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = Field(None, max_length=200)
    min_price: float | None = Field(None, ge=0, allow_inf_nan=False)
    max_price: float | None = Field(None, ge=0, allow_inf_nan=False)
    has_image: bool | None = None
    has_audio: bool | None = None

    def filters(self) -> Filters:
        return Filters(**self.model_dump())


class TurnRequest(BaseModel):
    """One message of a conversation."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field("", max_length=2_000)
    k: int = Field(3, ge=1, le=100)
    filters: FilterSpec | None = None


class RecommendRequest(TurnRequest):
    """One turn for a user, answered as one JSON document."""

    user: str = Field(min_length=1, max_length=64)


class Problem(BaseModel):
    """Every error the API answers: a message, never a traceback."""

    error: str
