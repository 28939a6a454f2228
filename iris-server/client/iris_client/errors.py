"""Typed errors of the model-store client: callers branch on the class, never on message text."""

from __future__ import annotations


class ModelStoreError(Exception):
    """Any failure talking to the model store. `status` is the HTTP status, or None if no answer came.

    `code` is the store's machine-readable error code (e.g. forbidden, owned, version_cap) and `details` the
    other fields of its answer: a tenancy refusal names `model`, `owner`, `namespace` and `right`."""

    def __init__(
        self, message: str, status: int | None = None, code: str | None = None, details: dict | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or {}

    @property
    def owner(self) -> str | None:
        """The namespace owning the model the refused call was about, when the store named one."""
        return self.details.get("owner")

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.status}: {self.message}"


class Unauthorized(ModelStoreError):
    """401: the token is missing, unknown or revoked."""


class Forbidden(ModelStoreError):
    """403: the token is valid but not allowed this model or right."""


class NotFound(ModelStoreError):
    """404: no such model, version, alias or token."""


class Rejected(ModelStoreError):
    """400/408/409/413/415/422/431: the request itself was refused (bad name, pickle, too large, a model
    another namespace owns, the version cap...)."""


class CursorGone(ModelStoreError):
    """410 from the change feed: the cursor is older than the store's change log keeps (or from another store).
    List what you follow again, then continue from `cursor`."""

    @property
    def cursor(self) -> int:
        return int(self.details["cursor"])


class Unavailable(ModelStoreError):
    """The store could not be reached, timed out, or kept answering 5xx after the retries."""


_BY_STATUS: dict[int, type[ModelStoreError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    410: CursorGone,
    400: Rejected,
    408: Rejected,
    409: Rejected,
    413: Rejected,
    415: Rejected,
    422: Rejected,
    431: Rejected,
}


def error_for_status(
    status: int, message: str, code: str | None = None, details: dict | None = None
) -> ModelStoreError:
    if status >= 500:
        return Unavailable(message, status, code, details)
    return _BY_STATUS.get(status, ModelStoreError)(message, status, code, details)
