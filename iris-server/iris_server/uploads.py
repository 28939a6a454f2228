"""The upload pipeline: stream to staging, verify, validate, commit the blob, then record the version
(checking the writer's right again and applying the retention rule in that transaction), then delete what was
pruned.

Kept apart from the HTTP layer so the order of the durable steps is visible in one place (see storage.py for
why this order makes crashes harmless: a pruned blob whose deletion a crash interrupted is an orphan that
recovery removes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from anyio import to_thread

from . import artifacts
from .archives import ArchiveLimits
from .catalog import Catalog, WriteGuard
from .errors import ApiError
from .json_limits import too_deep
from .observability import PRUNED, UPLOAD_BYTES, UPLOADS
from .records import AddResult, NewVersion
from .storage import ArtifactBackend, StagedArtifact, Stager, TooLarge, delete_unreferenced

log = logging.getLogger("iris_server.uploads")

MAX_METADATA_BYTES = 16 * 1024
RESERVED_METADATA_KEYS = (
    "artifact",
)  # the store's own findings about the artifact are recorded under this key
_WRITE_BUFFER = 1024 * 1024
_STATUS_FOR_REFUSAL = {
    artifacts.Refusal.UNSAFE_FORMAT: 415,
    artifacts.Refusal.UNSUPPORTED_FORMAT: 415,
    artifacts.Refusal.INVALID: 422,
    artifacts.Refusal.UNSAFE_ARCHIVE: 422,
}


@dataclass(frozen=True)
class UploadRequest:
    model: str
    format: str
    uploader: str
    metadata: dict[str, Any]
    expected_sha256: str | None
    idempotency_key: str | None
    written_by: dict[str, Any] = field(default_factory=dict)
    guard: WriteGuard | None = (
        None  # re-checks the writer's right in the transaction that records the version
    )


def parse_metadata(header: str | None, max_depth: int = 32) -> dict[str, Any]:
    if not header:
        return {}
    if len(header) > MAX_METADATA_BYTES:
        raise ApiError(422, f"X-Model-Metadata is larger than {MAX_METADATA_BYTES} bytes")
    deep = too_deep(header, max_depth)
    if deep:
        raise ApiError(400, f"X-Model-Metadata: {deep}")
    try:
        metadata = json.loads(header)
    except ValueError as error:
        raise ApiError(422, f"X-Model-Metadata must be a JSON object: {error}") from error
    if not isinstance(metadata, dict):
        raise ApiError(422, "X-Model-Metadata must be a JSON object")
    reserved = [key for key in RESERVED_METADATA_KEYS if key in metadata]
    if reserved:
        raise ApiError(422, f"X-Model-Metadata keys {reserved} are reserved for the store")
    return metadata


def preflight(fmt: str, content_type: str | None, content_length: str | None, max_bytes: int) -> None:
    """What can be refused before reading a byte of the body: the format, the media type, a declared size."""
    try:
        artifacts.check_format_name(fmt)
    except artifacts.ArtifactRefused as error:
        raise refuse(error) from error
    media_type = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if media_type != "application/octet-stream":
        raise ApiError(
            415,
            f"send the artifact as the raw body with Content-Type application/octet-stream, not {media_type}",
        )
    if content_length and content_length.isdigit() and int(content_length) > max_bytes:
        UPLOADS.labels("too_large").inc()
        raise ApiError(413, f"the artifact is larger than the limit of {max_bytes} bytes")


def refuse(error: artifacts.ArtifactRefused) -> ApiError:
    UPLOADS.labels("refused").inc()
    return ApiError(_STATUS_FOR_REFUSAL[error.reason], error.message, code=error.reason.value)


class UploadPipeline:
    def __init__(
        self,
        catalog: Catalog,
        backend: ArtifactBackend,
        staging_dir,
        max_bytes: int,
        *,
        max_versions: int,
        archive_limits: ArchiveLimits,
    ) -> None:
        self.catalog = catalog
        self.backend = backend
        self.staging_dir = staging_dir
        self.max_bytes = max_bytes
        self.max_versions = max_versions
        self.archive_limits = archive_limits

    def replay(self, request: UploadRequest) -> AddResult | None:
        """The version an earlier attempt with this Idempotency-Key created, if any (its answer got lost)."""
        if request.idempotency_key is None:
            return None
        existing = self.catalog.find_idempotent(request.model, request.idempotency_key)
        if existing is None:
            return None
        if request.expected_sha256 and request.expected_sha256 != existing.sha256:
            raise ApiError(422, "Idempotency-Key was already used for an upload with different content")
        return AddResult(existing, created=False)

    async def run(self, request: UploadRequest, body: AsyncIterator[bytes]) -> AddResult:
        staged = await self._stage(body)
        try:
            if staged.size == 0:
                raise ApiError(422, "the request body is empty: send the artifact bytes")
            if request.expected_sha256 and request.expected_sha256 != staged.sha256:
                raise ApiError(
                    400,
                    f"sha256 mismatch: X-Content-SHA256 says {request.expected_sha256}, "
                    f"received {staged.sha256}",
                )
            try:
                inspection = await to_thread.run_sync(
                    artifacts.inspect, staged.path, request.format, self.archive_limits
                )
            except artifacts.ArtifactRefused as error:
                raise refuse(error) from error
            key = await to_thread.run_sync(self.backend.commit, staged, request.model, request.format)
        finally:
            staged.discard()  # no-op once committed (the file was renamed away)
        new = NewVersion(
            model=request.model,
            format=request.format,
            sha256=staged.sha256,
            size=staged.size,
            uploader=request.uploader,
            metadata={**request.metadata, "artifact": inspection.details},
            blob_key=key,
            idempotency_key=request.idempotency_key,
            written_by=request.written_by,
        )
        add = partial(self.catalog.add_version, new, guard=request.guard, max_versions=self.max_versions)
        try:
            result = await to_thread.run_sync(add)
        except (
            BaseException
        ):  # refused in the transaction (no longer allowed, at the cap) or failed: no trace
            await to_thread.run_sync(delete_unreferenced, self.backend, key)
            raise
        for old in result.pruned:
            await to_thread.run_sync(delete_unreferenced, self.backend, old.blob_key)
        if result.pruned:
            PRUNED.inc(len(result.pruned))
            log.info(
                "versions pruned",
                extra={"model": request.model, "versions": [old.version for old in result.pruned]},
            )
        if result.created:
            UPLOADS.labels("created").inc()
            UPLOAD_BYTES.inc(staged.size)
            log.info(
                "version created",
                extra={
                    "model": request.model,
                    "version": result.record.version,
                    "size": staged.size,
                    "uploader": request.uploader,
                },
            )
        else:  # a concurrent retry of the same upload won the race: keep its version, drop our copy
            UPLOADS.labels("replayed").inc()
            await to_thread.run_sync(delete_unreferenced, self.backend, key)
        return result

    async def _stage(self, body: AsyncIterator[bytes]) -> StagedArtifact:
        stager = await to_thread.run_sync(Stager, self.staging_dir, self.max_bytes)
        buffer = bytearray()
        try:
            async for chunk in body:
                buffer += chunk
                if len(buffer) >= _WRITE_BUFFER:
                    await to_thread.run_sync(stager.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await to_thread.run_sync(stager.write, bytes(buffer))
            return await to_thread.run_sync(stager.finish)
        except TooLarge as error:
            UPLOADS.labels("too_large").inc()
            raise ApiError(413, f"the artifact is larger than the limit of {error.limit} bytes") from error
        except BaseException:
            stager.abort()  # client went away mid-upload (or any other failure): leave nothing behind
            raise
