"""What the catalog stores and answers, as plain values: versions, tokens, model summaries, and the two ways a
request can contradict the stored state (Missing: 404, Conflict: 409)."""

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


@dataclass(frozen=True)
class TokenRecord:
    id: str
    secret_sha256: str
    models: list[str]
    rights: list[str]
    description: str
    created_at: str
    revoked_at: str | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "models": self.models,
            "rights": self.rights,
            "description": self.description,
            "created_at": self.created_at,
            "revoked": self.revoked_at is not None,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class AddResult:
    record: VersionRecord
    created: bool  # False: an earlier attempt with the same idempotency key had already created it


@dataclass
class ModelSummary:
    name: str
    created_at: str
    latest_version: int | None
    version_count: int
    aliases: dict[str, int] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created_at": self.created_at,
            "latest_version": self.latest_version,
            "version_count": self.version_count,
            "aliases": self.aliases,
        }


class Conflict(Exception):
    """The request contradicts the stored state (HTTP 409)."""


class Missing(Exception):
    """No such model, version, alias or token (HTTP 404)."""
