"""Where artifact bytes live. The catalog says which versions exist; a backend only keeps blobs.

Every upload is first staged on local disk (hashed and size-checked while it streams in), validated there, and
only then committed to the backend under a fresh key. The catalog row is written after the commit, so a crash
at any point leaves at worst an unreferenced blob, which `recovery` sweeps: a listing never shows a version
whose bytes are missing or partial.

Two backends implement `ArtifactBackend`: the filesystem (the default, one node's volume) and an S3-compatible
object store (s3_storage.py), where several replicas share the blobs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

log = logging.getLogger("iris_server.storage")


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"artifact exceeds the limit of {limit} bytes")
        self.limit = limit


@dataclass
class StagedArtifact:
    """An upload fully received on local disk and fsynced, not yet part of the store."""

    path: Path
    size: int
    sha256: str

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class Stager:
    """Receives one upload chunk by chunk into the staging directory, enforcing the size limit as it goes."""

    def __init__(self, staging_dir: Path, max_bytes: int) -> None:
        self._path = staging_dir / f"{uuid.uuid4().hex}.part"
        self._file: BinaryIO = self._path.open("xb")
        self._hash = hashlib.sha256()
        self._size = 0
        self._max = max_bytes

    def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._max:
            self.abort()
            raise TooLarge(self._max)
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> StagedArtifact:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return StagedArtifact(self._path, self._size, self._hash.hexdigest())

    def abort(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class BackendUnavailable(Exception):
    """The artifact store cannot be reached or failed; the API answers 503 naming it, and /readyz fails."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"the artifact store ({backend}) is unavailable: {reason}")
        self.backend = backend
        self.reason = reason


class ArtifactBackend(Protocol):
    """Durable blob storage. Keys are opaque to callers; `commit` must be durable when it returns. Any method
    may raise BackendUnavailable."""

    name: str  # what error messages call it: "S3 at http://...", "filesystem at /var/lib/iris/artifacts"

    def commit(self, staged: StagedArtifact, model: str, fmt: str) -> str:
        """Move a staged artifact into the store; returns its key. The staged file is consumed."""

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the blob; raises FileNotFoundError if it is gone."""

    def delete(self, key: str) -> None:
        """Remove a blob; a missing blob is not an error."""

    def entries(self) -> Iterator[tuple[str, datetime]]:
        """Every key in the store with the time its blob was written, for recovery's orphan sweep."""

    def abort_incomplete(self, older_than: datetime) -> int:
        """Drop uploads that were started before `older_than` and never completed; returns how many."""

    def ping(self) -> None:
        """Raise BackendUnavailable unless the store can take writes now (readiness)."""


def delete_unreferenced(backend: ArtifactBackend, key: str) -> None:
    """Delete a blob the catalog no longer references (pruned, deleted, or never recorded). When the store is
    unavailable the blob stays, an orphan the sweep collects later (recovery.py): what the catalog decided is
    already the answer, and an outage must not turn it into an error."""
    try:
        backend.delete(key)
    except BackendUnavailable as error:
        log.warning("blob left for the orphan sweep", extra={"key": key, "reason": str(error)})


class FilesystemBackend:
    """Blobs as files `<root>/<model>/<uuid>.<format>`, each written by fsync, rename, directory fsync."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"filesystem at {root}"
        root.mkdir(parents=True, exist_ok=True)

    def commit(self, staged: StagedArtifact, model: str, fmt: str) -> str:
        directory = self.root / model
        if not directory.is_dir():
            directory.mkdir(exist_ok=True)
            _fsync_dir(self.root)  # the new directory entry must survive a crash, like the file in it
        key = f"{model}/{uuid.uuid4().hex}.{fmt}"
        # rename is atomic on one filesystem (staging and blobs share the data dir): the blob is whole or
        # absent.
        os.replace(staged.path, self.root / key)
        _fsync_dir(directory)
        return key

    def open(self, key: str) -> BinaryIO:
        return (self.root / key).open("rb")

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        return (key for key, _ in self.entries())

    def entries(self) -> Iterator[tuple[str, datetime]]:
        for path in self.root.glob("*/*"):
            if path.is_file():
                written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                yield f"{path.parent.name}/{path.name}", written

    def abort_incomplete(self, older_than: datetime) -> int:
        return 0  # an incomplete upload is a staged file, and the staging directory is swept at start-up

    def ping(self) -> None:
        if not (self.root.is_dir() and os.access(self.root, os.W_OK)):
            raise BackendUnavailable(self.name, "the directory is missing or not writable")


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
