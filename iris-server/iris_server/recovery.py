"""Recovery: bring storage back to exactly what the catalog says, after any crash.

At start-up (before uvicorn forks workers, so no upload of this process is in flight) the local staging
directory is emptied and the backend swept. An upload interrupted before its catalog row was committed was never
acknowledged: its staged file, its committed blob, or its unfinished multipart upload is deleted.

With a shared object store, other replicas upload while this one sweeps: a blob another replica has just
committed is unreferenced until its catalog row lands a moment later. So a blob is an orphan only when the
catalog does not reference it *and* it was written more than `grace` ago (IRIS_S3_ORPHAN_GRACE_SECONDS; the
filesystem backend, one process tree on its own volume, sweeps with no grace at start-up). The listing is read
before the catalog, so a version recorded while the sweep runs is always seen as referenced. The same sweep
runs periodically (`sweep_periodically`), so an orphan left by a replica that crashed and never came back is
collected too.

A blob the catalog references but that is missing cannot come from a crash (the blob is durable before the row
is written), only from outside tampering; it is reported loudly, never silently dropped from the catalog.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from anyio import to_thread

from .catalog import Catalog
from .storage import ArtifactBackend, BackendUnavailable

log = logging.getLogger("iris_server.recovery")


@dataclass(frozen=True)
class SweepReport:
    orphans_removed: int
    incomplete_aborted: int
    missing_blobs: list[str]


@dataclass(frozen=True)
class RecoveryReport:
    staged_removed: int
    orphans_removed: int
    missing_blobs: list[str]
    incomplete_aborted: int = 0


def sweep(catalog: Catalog, backend: ArtifactBackend, grace_seconds: float = 0.0) -> SweepReport:
    """Delete blobs older than the grace period that no version references, and abandoned multipart uploads."""
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_seconds)
    recorded = catalog.all_versions()  # before the listing: each of these blobs was written before its row
    listed = dict(backend.entries())
    referenced = catalog.blob_keys()  # after the listing: a row recorded meanwhile protects its blob
    orphans = [key for key, written in listed.items() if key not in referenced and written <= cutoff]
    for key in orphans:
        backend.delete(key)
    aborted = backend.abort_incomplete(cutoff)
    missing = sorted(f"{r.model} v{r.version}" for r in recorded if r.blob_key not in listed)
    if missing:
        log.error("catalog references artifacts that are missing from storage", extra={"versions": missing})
    if orphans or aborted:
        log.info("orphans swept", extra={"orphans_removed": len(orphans), "incomplete_aborted": aborted})
    return SweepReport(len(orphans), aborted, missing)


def recover(
    catalog: Catalog, backend: ArtifactBackend, staging_dir: Path, grace_seconds: float = 0.0
) -> RecoveryReport:
    staged = list(staging_dir.glob("*")) if staging_dir.exists() else []
    shutil.rmtree(staging_dir, ignore_errors=True)
    staging_dir.mkdir(parents=True, exist_ok=True)
    swept = sweep(catalog, backend, grace_seconds)
    report = RecoveryReport(
        staged_removed=len(staged),
        orphans_removed=swept.orphans_removed,
        missing_blobs=swept.missing_blobs,
        incomplete_aborted=swept.incomplete_aborted,
    )
    log.info(
        "recovery done",
        extra={
            "staged_removed": report.staged_removed,
            "orphans_removed": report.orphans_removed,
            "incomplete_aborted": report.incomplete_aborted,
            "backend": backend.name,
        },
    )
    return report


async def sweep_periodically(
    catalog: Catalog, backend: ArtifactBackend, grace_seconds: float, interval_seconds: float
) -> None:
    """Sweep every `interval_seconds` for the life of the app; an unavailable store just waits for the next."""
    while True:
        await anyio.sleep(interval_seconds)
        try:
            await to_thread.run_sync(sweep, catalog, backend, grace_seconds)
        except BackendUnavailable as error:
            log.warning("orphan sweep skipped", extra={"reason": str(error)})
        except Exception:  # a catalog hiccup must not end the loop: the next sweep tries again
            log.exception("orphan sweep failed")


def sweeping(
    catalog: Catalog, backend: ArtifactBackend, grace_seconds: float, interval_seconds: float
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A FastAPI lifespan that runs sweep_periodically while the app serves (in each worker: sweeps are
    idempotent, and the grace period keeps them off uploads in flight)."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            group.start_soon(sweep_periodically, catalog, backend, grace_seconds, interval_seconds)
            yield
            group.cancel_scope.cancel()

    return lifespan
