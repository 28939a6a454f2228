"""What the catalog stores and answers, as plain values: versions, tokens, model summaries, changes, owners,
and the ways a request can contradict the stored state (Missing: 404, Conflict: 409)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Any


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: int
    format: str
    sha256: str
    size: int
    created_at: str
    uploader: str
    metadata: dict[str, Any]
    blob_key: str
    written_by: dict[str, Any] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        # The version is part of the tag: "latest" moving to a new version with the same bytes is a change.
        return f'"{self.version}-{self.sha256}"'

    def public(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "format": self.format,
            "sha256": self.sha256,
            "size": self.size,
            "created_at": self.created_at,
            "uploader": self.uploader,
            "written_by": self.written_by,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class NewVersion:
    model: str
    format: str
    sha256: str
    size: int
    uploader: str
    metadata: dict[str, Any]
    blob_key: str
    idempotency_key: str | None = None
    written_by: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenRecord:
    id: str
    secret_sha256: str
    models: list[str]
    rights: list[str]
    description: str
    created_at: str
    revoked_at: str | None
    namespace: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "models": self.models,
            "rights": self.rights,
            "description": self.description,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "revoked": self.revoked_at is not None,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class AddResult:
    record: VersionRecord
    created: bool  # False: an earlier attempt with the same idempotency key had already created it
    pruned: tuple[VersionRecord, ...] = ()  # older versions the retention rule removed to make room


@dataclass(frozen=True)
class Change:
    """One row of the change log (change_log.py): what happened to which model, numbered store-wide."""

    seq: int
    model: str
    kind: str
    version: int | None
    alias: str | None
    at: str

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "model": self.model,
            "kind": self.kind,
            "version": self.version,
            "alias": self.alias,
            "at": self.at,
        }


@dataclass
class ModelSummary:
    name: str
    created_at: str
    latest_version: int | None
    version_count: int
    aliases: dict[str, int] = field(default_factory=dict)
    owner: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner,
            "created_at": self.created_at,
            "latest_version": self.latest_version,
            "version_count": self.version_count,
            "aliases": self.aliases,
        }


class Conflict(Exception):
    """The request contradicts the stored state (HTTP 409)."""


class VersionCapReached(Conflict):
    """A new version would exceed the model's cap and every older version is protected (HTTP 409)."""


class Owned(Conflict):
    """The model is claimed by another namespace (HTTP 409 to a claim)."""

    def __init__(self, model: str, owner: str) -> None:
        super().__init__(f"model {model!r} is already owned by namespace {owner!r}")
        self.model = model
        self.owner = owner


class Missing(Exception):
    """No such model, version, alias or token (HTTP 404)."""
