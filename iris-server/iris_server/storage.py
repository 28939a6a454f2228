"""Where artifact bytes live. The catalog (SQLite) says which versions exist; a backend only keeps blobs.

Every upload is first staged on local disk (hashed and size-checked while it streams in), validated there, and
only then committed to the backend under a fresh key. The catalog row is written after the commit, so a crash
at any point leaves at worst an unreferenced blob, which `recovery` removes at the next start: a listing never
shows a version whose bytes are missing or partial.

`ArtifactBackend` is the seam for an object store (S3 API via boto3) where one node's disk is not enough; the
filesystem backend is the default.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from collections.abc import Iterator


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


class ArtifactBackend(Protocol):
    """Durable blob storage. Keys are opaque to callers; `commit` must be durable when it returns."""

    def commit(self, staged: StagedArtifact, model: str, fmt: str) -> str:
        """Move a staged artifact into the store; returns its key. The staged file is consumed."""

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the blob; raises FileNotFoundError if it is gone."""

    def delete(self, key: str) -> None:
        """Remove a blob; a missing blob is not an error."""

    def keys(self) -> Iterator[str]:
        """Every key in the store, for recovery's orphan sweep."""


class FilesystemBackend:
    """Blobs as files `<root>/<model>/<uuid>.<format>`, each written by fsync, rename, directory fsync."""

    def __init__(self, root: Path) -> None:
        self.root = root
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
        for path in self.root.glob("*/*"):
            if path.is_file():
                yield f"{path.parent.name}/{path.name}"


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
