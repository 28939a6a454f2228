"""Start-up recovery: bring the data dir back to exactly what the catalog says, after any crash.

Runs once, before the server accepts requests (and before uvicorn forks workers, so no upload is in flight).
An upload interrupted before its catalog row was committed was never acknowledged: its staged file or
committed blob is deleted. A blob the catalog references but that is missing cannot come from a crash (the
blob is fsynced before the row is written), only from outside tampering; it is reported loudly, never silently
dropped from the catalog.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from .catalog import Catalog
from .storage import ArtifactBackend

log = logging.getLogger("iris_server.recovery")


@dataclass(frozen=True)
class RecoveryReport:
    staged_removed: int
    orphans_removed: int
    missing_blobs: list[str]


def recover(catalog: Catalog, backend: ArtifactBackend, staging_dir: Path) -> RecoveryReport:
    staged = list(staging_dir.glob("*")) if staging_dir.exists() else []
    shutil.rmtree(staging_dir, ignore_errors=True)
    staging_dir.mkdir(parents=True, exist_ok=True)

    referenced = catalog.blob_keys()
    stored = set(backend.keys())
    orphans = stored - referenced
    for key in orphans:
        backend.delete(key)
    missing = sorted(
        f"{record.model} v{record.version}"
        for record in catalog.all_versions()
        if record.blob_key not in stored
    )
    report = RecoveryReport(staged_removed=len(staged), orphans_removed=len(orphans), missing_blobs=missing)
    if missing:
        log.error("catalog references artifacts that are missing from storage", extra={"versions": missing})
    log.info(
        "recovery done",
        extra={"staged_removed": report.staged_removed, "orphans_removed": report.orphans_removed},
    )
    return report
