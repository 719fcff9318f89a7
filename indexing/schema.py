"""The catalogue item schema.

One item per JSONL line or CSV row. Media paths are relative to the catalogue file's folder (or
absolute inside it); a path that leaves that folder is rejected. ``audio`` takes one path or a
list (e.g. a spoken description and a sound effect).

| field       | type                   | required | meaning                                      |
|-------------|------------------------|----------|----------------------------------------------|
| id          | str                    | yes      | unique; letters, digits and ``._:/-``        |
| title       | str                    | yes      | short name                                   |
| description | str                    | no       | free text                                    |
| category    | str                    | no       | used for filters                             |
| price       | float >= 0             | no       | used for filters                             |
| attributes  | dict[str, scalar/list] | no       | facts explanations may cite                  |
| image       | path                   | no       | PNG, JPEG, WebP, GIF, BMP or SVG             |
| audio       | path or list of paths  | no       | anything libsndfile or ffmpeg reads          |
| metadata    | dict                   | no       | extra data carried along, never embedded     |
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")  # used with fullmatch
Scalar = str | int | float | bool
MAX_METADATA_CHARS = 65_536  # an item's metadata, as JSON


def _listify(value: Any) -> Any:
    if value is None or value == "":
        return []
    if isinstance(value, str | Path):
        return [value]
    return value


class Item(BaseModel):
    """One catalogue item, as loaded; media paths are already resolved and confined."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str
    title: str = Field(min_length=1, max_length=500)
    description: str = Field("", max_length=20_000)
    category: str | None = None
    price: float | None = Field(None, ge=0, allow_inf_nan=False)
    attributes: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    image: Path | None = None
    audio: Annotated[list[Path], BeforeValidator(_listify)] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _check_id(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError("id must be a string")
        if not ID_PATTERN.fullmatch(value) or ".." in value.split("/") or "//" in value:
            raise ValueError(
                f"id {value!r} is not allowed: use 1-200 letters, digits and ._:/- "
                "without '..' segments"
            )
        return value

    @field_validator("metadata")
    @classmethod
    def _bounded_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, default=str))
        if size > MAX_METADATA_CHARS:
            raise ValueError(
                f"metadata is {size:,} characters as JSON, over the limit of {MAX_METADATA_CHARS:,}"
            )
        return value

    @field_validator("category", mode="before")
    @classmethod
    def _empty_category(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("image", mode="before")
    @classmethod
    def _empty_image(cls, value: Any) -> Any:
        return None if value == "" else value

    def text_for_embedding(self, caption: str = "", transcript: str = "", pixels: str = "") -> str:
        """The document stored in the text collection: title, category, subcategory path,
        description, caption, transcript, then the pixel facts (last: the weakest signal)."""
        parts = [self.title]
        if self.category:
            parts.append(f"Category: {self.category}.")
        subcategory = self.attributes.get("subcategory")
        if isinstance(subcategory, str) and subcategory and subcategory != self.category:
            # the catalogue's richest signal: "mammals/bovines" reads "Kind: mammals, bovines."
            kinds = [k for k in re.split(r"[/_-]+", subcategory) if k and k != "cartoon"]
            if kinds:
                parts.append(f"Kind: {', '.join(kinds)}.")
        if self.description:
            parts.append(self.description)
        if caption:
            parts.append(f"Image: {caption}")
        if transcript:
            parts.append(f"Audio: {transcript}")
        if pixels and pixels != caption:
            parts.append(f"Pixels: {pixels}")
        return "\n".join(parts)
