"""Request and response bodies of the HTTP API (they make /openapi.json precise enough to fuzz)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from .names import DNS_LABEL_PATTERN, SCOPE_PATTERN
from .tokens import RIGHTS

Namespace = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)]
RightName = Literal[RIGHTS]
# What a minter may say about a token's holder (e.g. {"mlfunction": "team-a/train-iris"}); versions it writes
# carry it in `written_by`.
MetadataKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_./]{0,61}[A-Za-z0-9])?$")]
MetadataValue = Annotated[str, StringConstraints(max_length=253)]


class ErrorOut(BaseModel):
    error: str = Field(description="machine-readable code, e.g. forbidden, too_large, unsupported_media_type")
    message: str = Field(description="what went wrong and what was expected")
    model: str | None = Field(default=None, description="tenancy refusals and claim conflicts: the model")
    owner: str | None = Field(default=None, description="...and the namespace that owns it (null: nobody)")
    namespace: str | None = Field(
        default=None, description="tenancy refusals: the namespace the token acts for"
    )
    right: str | None = Field(default=None, description="tenancy refusals: the right it lacks")
    field: str | None = Field(default=None, description="a parameter out of its range: which one")
    cursor: int | None = Field(default=None, description="410 from /v1/changes: the cursor to continue from")


class ChangeOut(BaseModel):
    seq: int = Field(description="store-wide, increasing in commit order")
    model: str
    kind: Literal["version_added", "version_deleted", "alias_set", "alias_deleted"]
    version: int | None = Field(description="the version added or deleted, or the one the alias points (pointed) at")
    alias: str | None = Field(description="alias changes: the alias")
    at: str


class ChangeList(BaseModel):
    changes: list[ChangeOut] = Field(description="oldest first; only models the caller may read")
    cursor: int = Field(description="ask with after=<cursor> next")
    more: bool = Field(description="the answer stopped at its limit: ask again at once for the rest")


class VersionOut(BaseModel):
    model: str
    version: int
    format: str
    sha256: str
    size: int
    created_at: str
    uploader: str = Field(description="id (and description) of the token that uploaded it; never a secret")
    written_by: dict[str, Any] = Field(
        description="who wrote it, as the store knows it: token_id, namespace, description, metadata"
    )
    metadata: dict[str, Any]


class VersionList(BaseModel):
    versions: list[VersionOut]


class ModelOut(BaseModel):
    name: str
    owner: str | None = Field(description="the namespace that owns the model; null: nobody yet")
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
    namespace: Namespace | None = Field(
        default=None,
        description="the namespace (tenant) the token acts for: ownership and grants then apply; "
        "omitted: a store-wide token, limited by its models and rights only",
    )
    models: list[ModelScope] = Field(
        min_length=1, max_length=100, description="model names or globs (* and ?) the token is valid for"
    )
    rights: list[RightName] = Field(
        min_length=1,
        max_length=len(RIGHTS),
        description="read; write (upload versions); delete (delete versions); alias (create, move, delete)",
    )
    # No NUL: PostgreSQL text cannot hold it (a catalog there would fail the insert; SQLite's would not).
    description: str = Field(default="", max_length=200, pattern=r"^[^\x00]*$")
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=16, description="recorded in written_by of the versions it uploads"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "namespace": "team-a",
                    "models": ["iris"],
                    "rights": ["read", "write"],
                    "description": "",
                    "metadata": {"mlfunction": "team-a/train-iris"},
                }
            ]
        }
    }


class TokenOut(BaseModel):
    id: str
    namespace: str | None
    models: list[str]
    rights: list[str]
    description: str
    metadata: dict[str, str]
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
    namespace: str | None
    models: list[str]
    rights: list[str]
    metadata: dict[str, str]


class OwnerIn(BaseModel):
    namespace: Namespace = Field(description="the namespace to own the model")


class OwnerOut(BaseModel):
    model: str
    owner: str | None = Field(description="the owning namespace; null: nobody")
    claimed_at: str | None
    claimed_by: str | None = Field(description="admin, or the id of the token whose first upload claimed it")


class GrantIn(BaseModel):
    rights: list[RightName] = Field(min_length=1, max_length=len(RIGHTS))


class GrantList(BaseModel):
    model: str
    grants: dict[str, list[str]] = Field(description="namespace -> the rights granted to it on the model")


class OwnershipOut(OwnerOut):
    exists: bool = Field(description="the model has (or had) versions")
    grants: dict[str, list[str]]


class OwnershipList(BaseModel):
    models: list[OwnershipOut]


class Status(BaseModel):
    status: str
