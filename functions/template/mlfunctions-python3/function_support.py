"""What every mlfunctions function shares: configuration from the environment, the model-store credential and
how store failures are worded, JSON logs. It ships in the template, so each function's image carries one copy.
No web framework here: each function picks its own (the predict function's hot path avoids one)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

TOKEN_FILE_NAME = "model-store-token"
DEFAULT_SECRETS_DIR = "/var/openfaas/secrets"


class ConfigError(Exception):
    """The function's environment is wrong, so it cannot start (the message names the variable)."""


# -- configuration -------------------------------------------------------------------------------------------


def env_required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required and empty")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not value > minimum:
        raise ConfigError(f"{name}={raw!r} must be greater than {minimum:g}")
    return value


def secrets_dir() -> Path:
    return Path(os.environ.get("OPENFAAS_SECRETS_DIR") or DEFAULT_SECRETS_DIR)


def model_store_token() -> str | None:
    """The scoped model-store token: $MODEL_STORE_TOKEN if set, else the file OpenFaaS mounts from the
    Secret."""
    token = os.environ.get("MODEL_STORE_TOKEN", "").strip()
    if token:
        return token
    try:
        return (secrets_dir() / TOKEN_FILE_NAME).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def credential_hint() -> str:
    """Where the token comes from, for messages that tell an operator what to fix."""
    if os.environ.get("MODEL_STORE_TOKEN", "").strip():
        return "the token in $MODEL_STORE_TOKEN"
    path = secrets_dir() / TOKEN_FILE_NAME
    if path.is_file():
        return f"the token in {path} (Secret key {TOKEN_FILE_NAME})"
    return f"no token: neither $MODEL_STORE_TOKEN nor {path} is set"


def model_store_client(*, timeout: float, retries: int):
    # Imported here: requests is not needed until the first call to the store, so startup stays short.
    from iris_client import ModelStoreClient

    return ModelStoreClient(
        env_required("MODEL_STORE_URL"), model_store_token(), timeout=timeout, retries=retries
    )


def store_problem(error: Exception, doing: str) -> tuple[int, str]:
    """(HTTP status, message) for a failed call to the model store, worded for the function's caller."""
    from iris_client import Forbidden, NotFound, Rejected, Unauthorized, Unavailable

    url = os.environ.get("MODEL_STORE_URL", "")
    if isinstance(error, Unauthorized):
        return (
            502,
            (f"the model store at {url} refused the function's credential while {doing} "
             f"({credential_hint()}): {error}"),
        )
    if isinstance(error, Forbidden):
        return (
            502,
            (f"the function's credential is not allowed to do this while {doing} "
             f"({credential_hint()}): {error}"),
        )
    if isinstance(error, NotFound):
        return 404, f"not found in the model store while {doing}: {error}"
    if isinstance(error, Rejected):
        return 502, f"the model store rejected the request while {doing}: {error}"
    if isinstance(error, Unavailable):
        return 503, f"the model store at {url} is unavailable while {doing}; retry later: {error}"
    return 502, f"unexpected answer from the model store while {doing}: {error}"


# -- logs ----------------------------------------------------------------------------------------------------

# uvicorn adds a "color_message" copy of its messages for terminals; it has no place in JSON.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and whatever was passed in `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
