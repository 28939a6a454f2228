"""Typed errors of the model-store client: callers branch on the class, never on message text."""

from __future__ import annotations


class ModelStoreError(Exception):
    """Any failure talking to the model store. `status` is the HTTP status, or None if no answer came."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.status}: {self.message}"


class Unauthorized(ModelStoreError):
    """401: the token is missing, unknown or revoked."""


class Forbidden(ModelStoreError):
    """403: the token is valid but not allowed this model or right."""


class NotFound(ModelStoreError):
    """404: no such model, version, alias or token."""


class Rejected(ModelStoreError):
    """400/409/413/415/422: the request itself was refused (bad name, pickle, too large, conflict...)."""


class Unavailable(ModelStoreError):
    """The store could not be reached, timed out, or kept answering 5xx after the retries."""


_BY_STATUS: dict[int, type[ModelStoreError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    400: Rejected,
    409: Rejected,
    413: Rejected,
    415: Rejected,
    422: Rejected,
}


def error_for_status(status: int, message: str) -> ModelStoreError:
    if status >= 500:
        return Unavailable(message, status)
    return _BY_STATUS.get(status, ModelStoreError)(message, status)
