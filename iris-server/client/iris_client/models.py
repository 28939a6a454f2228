"""The values the client hands back. They mirror the server's JSON one to one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    format: str
    sha256: str
    size: int
    created_at: str
    uploader: str
    metadata: dict[str, Any] = field(default_factory=dict)
    written_by: dict[str, Any] = field(default_factory=dict)  # token_id, namespace, description, metadata

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ModelVersion:
        return cls(
            model=body["model"],
            version=int(body["version"]),
            format=body["format"],
            sha256=body["sha256"],
            size=int(body["size"]),
            created_at=body["created_at"],
            uploader=body["uploader"],
            metadata=dict(body.get("metadata") or {}),
            written_by=dict(body.get("written_by") or {}),
        )


@dataclass(frozen=True)
class Change:
    """One entry of the store's change feed: kind is version_added, version_deleted, alias_set or
    alias_deleted."""

    seq: int
    model: str
    kind: str
    version: int | None
    alias: str | None
    at: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Change:
        return cls(
            body["seq"], body["model"], body["kind"], body.get("version"), body.get("alias"), body["at"]
        )


@dataclass(frozen=True)
class ChangePage:
    changes: list[Change]
    cursor: int  # ask with after=cursor next
    more: bool  # the answer stopped at its limit: ask again at once


@dataclass(frozen=True)
class Artifact:
    data: bytes
    etag: str
    version: ModelVersion


@dataclass(frozen=True)
class IssuedToken:
    """A freshly minted scoped token. `token` is the secret: the store keeps only its hash."""

    id: str
    token: str
    models: list[str]
    rights: list[str]
    namespace: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return (
            f"IssuedToken(id={self.id!r}, token='***', namespace={self.namespace!r}, models={self.models!r}, "
            f"rights={self.rights!r})"
        )
