"""Every error the API answers is JSON: {"error": <code>, "message": <what was expected>}, plus the fields
that name what was refused where a caller acts on them (a tenancy refusal names the model, its owner, the
namespace and the right)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .database import UNAVAILABLE

from .names import is_dns_label
from .records import VersionCapReached
from .storage import BackendUnavailable
from .tenancy import Denied

log = logging.getLogger("iris_server")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    431: "headers_too_large",
    503: "unavailable",
}
_MODELS_PREFIX = "/v1/models/"
_RETRY_SOON = {"Retry-After": "1"}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        fields: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.headers = headers
        self.fields = fields


def error_body(status: int, message: str, code: str | None = None, fields: dict[str, Any] | None = None):
    return {"error": code or _CODES.get(status, "error"), "message": message, **(fields or {})}


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    fields: dict[str, Any] | None = None,
):
    return JSONResponse(error_body(status, message, code, fields), status_code=status, headers=headers)


_NAME_RULE = (
    "must be a DNS-1123 label: lowercase letters, digits and '-', "
    "starting and ending alphanumeric, at most 63 characters"
)


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        where = ".".join(loc) or "request"
        if loc[-1:] in (["model"], ["alias"]) and error.get("type") in (
            "string_pattern_mismatch",
            "string_too_long",
        ):
            parts.append(f"{loc[-1]} name {_NAME_RULE}; got {error.get('input')!r}")
        else:
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _path_trick(path: str) -> str | None:
    """Why an unmatched /v1/models/... path is invalid (rather than merely unknown), or None."""
    if not path.startswith(_MODELS_PREFIX):
        return None
    segments = path[len(_MODELS_PREFIX) :].split("/")
    if any(segment in (".", "..") for segment in segments):
        return "path segments '.' and '..' are not allowed"
    if not is_dns_label(segments[0]):
        return f"model name {_NAME_RULE}; got {segments[0]!r}"
    return None


async def _catalog_unavailable(request: Request, error: Exception):
    catalog = request.app.state.store.catalog
    log.error("catalog failure", exc_info=error, extra={"path": request.url.path})
    return error_response(
        503, catalog.database.unavailable_message(error), code="catalog_unavailable", headers=_RETRY_SOON
    )


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError):
        return error_response(error.status, error.message, error.code, error.headers, error.fields)

    @app.exception_handler(Denied)
    async def _denied(request: Request, error: Denied):
        return error_response(403, error.denial.message, fields=error.denial.fields())

    @app.exception_handler(VersionCapReached)
    async def _cap(request: Request, error: VersionCapReached):
        return error_response(409, str(error), code="version_cap")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError):
        return error_response(422, _describe(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException):
        if error.status_code == 404 and "route" not in request.scope:
            reason = _path_trick(request.url.path)
            if reason:
                return error_response(422, reason)
            return error_response(404, f"no such endpoint: {request.method} {request.url.path}")
        return error_response(error.status_code, str(error.detail), headers=getattr(error, "headers", None))

    # The disk or the database failing (full, read-only, locked past the busy timeout) is the store being
    # unavailable, not a bug: 503 so that clients back off and retry, and the next request tries again.
    @app.exception_handler(OSError)
    async def _storage(request: Request, error: OSError):
        log.error("storage failure", exc_info=error, extra={"path": request.url.path})
        return error_response(503, f"storage unavailable: {error.strerror or error}", headers=_RETRY_SOON)

    # The object store down or refusing: 503 naming it (and readiness fails), recovered from on the next request.
    @app.exception_handler(BackendUnavailable)
    async def _artifact_store(request: Request, error: BackendUnavailable):
        log.error("artifact store failure", extra={"path": request.url.path, "reason": str(error)})
        return error_response(
            503,
            str(error),
            code="artifact_store_unavailable",
            headers=_RETRY_SOON,
            fields={"backend": error.backend},
        )

    # The catalog database down, unreachable, or busy past its lock timeout: 503 naming it; the pool reconnects
    # (pre-ping) on the next request, so the store recovers when the database does.
    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, _catalog_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception):
        log.exception("unhandled error", extra={"path": request.url.path})
        return error_response(500, "internal error; the store's log has the details", code="internal")
