"""Request and response bodies of the HTTP API (they make /openapi.json precise enough to fuzz)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from .names import SCOPE_PATTERN


class ErrorOut(BaseModel):
    error: str = Field(description="machine-readable code, e.g. forbidden, too_large, unsupported_media_type")
    message: str = Field(description="what went wrong and what was expected")


class VersionOut(BaseModel):
    model: str
    version: int
    format: str
    sha256: str
    size: int
    created_at: str
    uploader: str = Field(description="id (and description) of the token that uploaded it; never a secret")
    metadata: dict[str, Any]


class VersionList(BaseModel):
    versions: list[VersionOut]


class ModelOut(BaseModel):
    name: str
    created_at: str
    latest_version: int | None
    version_count: int
    aliases: dict[str, int]


class ModelList(BaseModel):
    models: list[ModelOut]


class AliasIn(BaseModel):
    version: int = Field(ge=1, le=2**62)


class AliasList(BaseModel):
    aliases: dict[str, int]


ModelScope = Annotated[str, StringConstraints(pattern=SCOPE_PATTERN, max_length=63)]


class TokenIn(BaseModel):
    models: list[ModelScope] = Field(
        min_length=1, max_length=100, description="model names or globs (* and ?) the token is valid for"
    )
    rights: list[Literal["read", "write"]] = Field(min_length=1, max_length=2)
    description: str = Field(default="", max_length=200)

    model_config = {
        "json_schema_extra": {"examples": [{"models": ["iris"], "rights": ["read"], "description": ""}]}
    }


class TokenOut(BaseModel):
    id: str
    models: list[str]
    rights: list[str]
    description: str
    created_at: str
    revoked: bool
    revoked_at: str | None


class IssuedTokenOut(TokenOut):
    token: str = Field(description="the secret; shown only in this answer")


class TokenList(BaseModel):
    tokens: list[TokenOut]


class WhoAmI(BaseModel):
    id: str
    admin: bool
    models: list[str]
    rights: list[str]


class Status(BaseModel):
    status: str
