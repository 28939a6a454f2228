"""Files in .stack/ written so that a start killed at any moment leaves either the old content or the new one,
never half of it: written to a temporary file beside it, flushed, then renamed over it."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_secret(path: Path, value: str) -> None:
    write_atomically(path, value, mode=0o600)


def secret(path: Path) -> str:
    """The secret in `path`, made (random) when the file is missing or empty: an empty one is what a start
    killed between creating and writing it left, before writes were atomic."""
    value = path.read_text().strip() if path.exists() else ""
    if not value:
        value = secrets.token_urlsafe(32)
        write_secret(path, value)
    return value


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`; None when it is missing or not a JSON object (then it is of no use)."""
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def write_json(path: Path, value: dict) -> None:
    write_atomically(path, json.dumps(value, indent=2, sort_keys=True) + "\n")
