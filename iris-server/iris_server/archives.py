"""Zip archives (skops files) judged from their central directory alone, before any member is inflated.

A zip's directory declares each member's compressed and inflated size. Python's zipfile never inflates a
member past its declared size (it cuts the output there, then fails the CRC), so bounding the declared sizes
bounds what reading the archive can cost: the store's own scan (skops' schema), and every function that loads
the model later. Refused: more members than allowed, a declared total beyond the budget, and members that
inflate more than `max_ratio` times (the signature of a zip bomb; small members are exempt, their total is
bounded anyway).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

# Members smaller than this may compress as well as they like (a schema.json of repeated keys does).
RATIO_FLOOR_BYTES = 64 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int
    max_bytes: int
    max_ratio: float


class ArchiveRefused(Exception):
    pass


class NotAnArchive(Exception):
    pass


def check_zip(path: Path, limits: ArchiveLimits) -> int:
    """Raise ArchiveRefused if the zip at `path` is over `limits`; returns its declared inflated total."""
    try:
        with zipfile.ZipFile(path) as archive:  # reads the central directory only
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as error:
        raise NotAnArchive(f"not a readable zip archive: {error}") from error
    if len(members) > limits.max_members:
        raise ArchiveRefused(
            f"the archive has {len(members)} members; at most {limits.max_members} are accepted"
        )
    total = 0
    for member in members:
        total += member.file_size
        if total > limits.max_bytes:
            raise ArchiveRefused(
                f"the archive's members inflate to more than the limit of {limits.max_bytes} bytes "
                "(as its directory declares them)"
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_ratio:
            raise ArchiveRefused(
                f"archive member {member.filename[:100]!r} inflates {ratio:.0f} times "
                f"({member.compress_size} -> {member.file_size} bytes); "
                f"at most {limits.max_ratio:g} is accepted"
            )
    return total
