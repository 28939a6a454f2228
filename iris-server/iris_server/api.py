"""The HTTP API: thin handlers over the catalog, the artifact backend and the upload pipeline."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Annotated, Any
from collections.abc import Iterator

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import ClientDisconnect

from . import __version__, tokens
from .auth import authenticate, authorize, require_admin
from .catalog import Catalog, Conflict, Missing, TokenRecord, now
from .config import Settings
from .errors import ApiError, error_response, install_handlers
from .names import DNS_LABEL_PATTERN, VERSION_REF_PATTERN, is_alias, parse_version_ref
from .observability import DOWNLOAD_BYTES, NOT_MODIFIED, ObservabilityMiddleware
from .schemas import (
    AliasIn,
    AliasList,
    ErrorOut,
    IssuedTokenOut,
    ModelList,
    ModelOut,
    Status,
    TokenIn,
    TokenList,
    VersionList,
    VersionOut,
    WhoAmI,
)
from .storage import ArtifactBackend, FilesystemBackend
from .tokens import Principal, Right
from .uploads import UploadPipeline, UploadRequest, parse_metadata, preflight

log = logging.getLogger("iris_server")

VERSION_INFO_HEADER = "X-Model-Version-Info"
_READ_CHUNK = 1024 * 1024

ModelName = Annotated[
    str, Path(pattern=DNS_LABEL_PATTERN, max_length=63, description="model name: a DNS-1123 label")
]
VersionRefParam = Annotated[
    str,
    Path(pattern=VERSION_REF_PATTERN, max_length=63, description="a version number, 'latest' or an alias"),
]
AliasName = Annotated[
    str, Path(pattern=DNS_LABEL_PATTERN, max_length=63, description="alias name: a DNS label, not all digits")
]
Caller = Annotated[Principal, Depends(authenticate)]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorOut} for status in (401, 422, *statuses)}


@dataclass
class Store:
    settings: Settings
    catalog: Catalog
    backend: ArtifactBackend
    admin_sha256: str
    uploads: UploadPipeline


def _store(request: Request) -> Store:
    return request.app.state.store


def _missing(error: Missing) -> ApiError:
    return ApiError(404, str(error))


def _if_none_match(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in candidates or etag in candidates


def _chunks(stream, size: int) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(_READ_CHUNK):
            yield chunk
    DOWNLOAD_BYTES.inc(size)


# Reads are `async def` and query SQLite inline: an indexed read in WAL mode takes microseconds and never
# waits for writers, far less than a hop to the threadpool (measured: ~0.3 ms of CPU per request on this class
# of machine). Writes commit with fsync, so they are plain `def` (FastAPI runs them in its threadpool) or use
# to_thread.
models = APIRouter(prefix="/v1", tags=["models"])
admin = APIRouter(prefix="/v1", tags=["tokens"])
health = APIRouter(tags=["health"])


@models.get("/models", response_model=ModelList, responses=_errors())
async def list_models(request: Request, caller: Caller):
    """Models the caller may read, with their newest version and aliases."""
    summaries = _store(request).catalog.list_models()
    return {"models": [s.public() for s in summaries if caller.may(Right.READ, s.name)]}


@models.get("/models/{model}", response_model=ModelOut, responses=_errors(403, 404))
async def get_model(request: Request, model: ModelName, caller: Caller):
    authorize(caller, Right.READ, model)
    try:
        return _store(request).catalog.get_model(model).public()
    except Missing as error:
        raise _missing(error) from error


@models.get("/models/{model}/versions", response_model=VersionList, responses=_errors(403, 404))
async def list_versions(request: Request, model: ModelName, caller: Caller):
    authorize(caller, Right.READ, model)
    try:
        records = _store(request).catalog.list_versions(model)
    except Missing as error:
        raise _missing(error) from error
    return {"versions": [record.public() for record in records]}


@models.post(
    "/models/{model}/versions",
    status_code=201,
    response_model=VersionOut,
    responses={
        200: {
            "model": VersionOut,
            "description": "a retry whose Idempotency-Key already created this version",
        },
        **_errors(400, 403, 413, 415),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the artifact bytes (ONNX or skops); pickle/joblib is refused",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_version(
    request: Request,
    response: Response,
    model: ModelName,
    caller: Caller,
    format: Annotated[str, Query(max_length=32, description="onnx or skops")] = "onnx",
    x_content_sha256: Annotated[
        str | None, Header(pattern="^[0-9a-f]{64}$", description="sha256 of the body; checked before storing")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(min_length=1, max_length=128, description="retries with the same key create one version"),
    ] = None,
    x_model_metadata: Annotated[
        str | None, Header(description="JSON object: metrics, params, dataset, estimator, ...")
    ] = None,
):
    """Store a new version of `model`; the store assigns the next version number."""
    authorize(caller, Right.WRITE, model)
    store = _store(request)
    preflight(
        format,
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        store.settings.max_upload_bytes,
    )
    upload = UploadRequest(
        model=model,
        format=format,
        uploader=caller.uploader,
        metadata=parse_metadata(x_model_metadata),
        expected_sha256=x_content_sha256,
        idempotency_key=idempotency_key,
    )
    result = store.uploads.replay(upload)
    if result is None:
        try:
            result = await store.uploads.run(upload, request.stream())
        except ClientDisconnect as error:
            raise ApiError(400, "the client disconnected before the upload was complete") from error
    response.status_code = 201 if result.created else 200
    response.headers["Location"] = f"/v1/models/{model}/versions/{result.record.version}"
    return result.record.public()


@models.get("/models/{model}/versions/{ref}", response_model=VersionOut, responses=_errors(403, 404))
async def get_version(request: Request, model: ModelName, ref: VersionRefParam, caller: Caller):
    authorize(caller, Right.READ, model)
    try:
        return _store(request).catalog.resolve(model, parse_version_ref(ref)).public()
    except Missing as error:
        raise _missing(error) from error
    except ValueError as error:
        raise ApiError(422, str(error)) from error


@models.get(
    "/models/{model}/versions/{ref}/artifact",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        304: {"description": "If-None-Match matched: the caller already has this version"},
        **_errors(403, 404),
    },
)
async def download(
    request: Request,
    model: ModelName,
    ref: VersionRefParam,
    caller: Caller,
    if_none_match: Annotated[str | None, Header(description="an ETag from an earlier download")] = None,
):
    """The artifact's bytes. The ETag names version and content: "anything newer?" costs a 304."""
    authorize(caller, Right.READ, model)
    store = _store(request)
    try:
        record = store.catalog.resolve(model, parse_version_ref(ref))
    except Missing as error:
        raise _missing(error) from error
    except ValueError as error:
        raise ApiError(422, str(error)) from error
    headers = {"ETag": record.etag, "Cache-Control": "no-cache"}
    if _if_none_match(if_none_match, record.etag):
        NOT_MODIFIED.inc()
        return Response(status_code=304, headers=headers)
    try:
        stream = store.backend.open(record.blob_key)
    except FileNotFoundError as error:  # only if the version was deleted between resolve and open
        raise ApiError(404, f"model {model!r} version {record.version} was just deleted") from error
    headers.update(
        {
            "Content-Length": str(record.size),
            VERSION_INFO_HEADER: json.dumps(record.public(), ensure_ascii=True, separators=(",", ":")),
            "Content-Disposition": f'attachment; filename="{model}-{record.version}.{record.format}"',
        }
    )
    return StreamingResponse(
        _chunks(stream, record.size), media_type="application/octet-stream", headers=headers
    )


@models.delete("/models/{model}/versions/{version}", status_code=204, responses=_errors(403, 404, 409))
def delete_version(
    request: Request, model: ModelName, version: Annotated[int, Path(ge=1, le=2**62)], caller: Caller
):
    """Delete one version. Refused (409) while an alias points at it; its number is never reused."""
    authorize(caller, Right.WRITE, model)
    store = _store(request)
    try:
        record = store.catalog.delete_version(model, version)
    except Missing as error:
        raise _missing(error) from error
    except Conflict as error:
        raise ApiError(409, str(error)) from error
    store.backend.delete(record.blob_key)
    log.info("version deleted", extra={"model": model, "version": version, "by": caller.id})
    return Response(status_code=204)


@models.get("/models/{model}/aliases", response_model=AliasList, responses=_errors(403, 404))
async def list_aliases(request: Request, model: ModelName, caller: Caller):
    authorize(caller, Right.READ, model)
    try:
        return {"aliases": _store(request).catalog.aliases(model)}
    except Missing as error:
        raise _missing(error) from error


@models.put("/models/{model}/aliases/{alias}", response_model=AliasList, responses=_errors(403, 404))
def set_alias(request: Request, model: ModelName, alias: AliasName, body: AliasIn, caller: Caller):
    """Point `alias` at a version (creating or moving it): pinning and rollback."""
    authorize(caller, Right.WRITE, model)
    if not is_alias(alias):
        raise ApiError(
            422, f"alias must be a DNS label that is neither all digits nor 'latest'; got {alias!r}"
        )
    catalog = _store(request).catalog
    try:
        catalog.set_alias(model, alias, body.version)
        return {"aliases": catalog.aliases(model)}
    except Missing as error:
        raise _missing(error) from error


@models.delete("/models/{model}/aliases/{alias}", status_code=204, responses=_errors(403, 404))
def delete_alias(request: Request, model: ModelName, alias: AliasName, caller: Caller):
    authorize(caller, Right.WRITE, model)
    try:
        _store(request).catalog.delete_alias(model, alias)
    except Missing as error:
        raise _missing(error) from error
    return Response(status_code=204)


@models.get("/whoami", response_model=WhoAmI, responses=_errors())
async def whoami(caller: Caller):
    """The calling token's id and scope: lets a deployer check a credential without touching any model."""
    return {
        "id": caller.id,
        "admin": caller.admin,
        "models": list(caller.models),
        "rights": sorted(caller.rights),
    }


@admin.post("/tokens", status_code=201, response_model=IssuedTokenOut, responses=_errors(403))
def create_token(request: Request, body: TokenIn, caller: Caller):
    """Mint a scoped token (admin only). The secret is in this answer and nowhere else, ever."""
    require_admin(caller)
    minted = tokens.mint()
    record = TokenRecord(
        id=minted.id,
        secret_sha256=minted.secret_sha256,
        models=list(dict.fromkeys(body.models)),
        rights=sorted(set(body.rights)),
        description=body.description,
        created_at=now(),
        revoked_at=None,
    )
    _store(request).catalog.add_token(record)
    log.info("token created", extra={"token_id": record.id, "models": record.models, "rights": record.rights})
    return {**record.public(), "token": minted.token}


@admin.get("/tokens", response_model=TokenList, responses=_errors(403))
async def list_tokens(request: Request, caller: Caller):
    require_admin(caller)
    return {"tokens": [record.public() for record in _store(request).catalog.list_tokens()]}


@admin.delete("/tokens/{token_id}", status_code=204, responses=_errors(403, 404))
def revoke_token(request: Request, token_id: Annotated[str, Path(pattern="^[0-9a-f]{16}$")], caller: Caller):
    """Revoke a token: effective for the very next request. Revoking twice is not an error."""
    require_admin(caller)
    try:
        _store(request).catalog.revoke_token(token_id)
    except Missing as error:
        raise _missing(error) from error
    log.info("token revoked", extra={"token_id": token_id})
    return Response(status_code=204)


@health.get("/healthz", response_model=Status)
async def healthz():
    """Liveness: the process answers."""
    return {"status": "ok"}


@health.get("/readyz", response_model=Status, responses={503: {"model": ErrorOut}})
async def readyz(request: Request):
    """Readiness: the catalog answers and the data dir is writable."""
    store = _store(request)
    try:
        store.catalog.ping()
    except Exception as error:  # any database failure means "not ready", with the reason
        return error_response(503, f"catalog unavailable: {error}")
    staging = store.settings.staging_dir
    if not (staging.is_dir() and os.access(staging, os.W_OK)):
        return error_response(503, f"data dir {store.settings.data_dir} is not writable")
    return {"status": "ready"}


@health.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics():
    """Prometheus metrics, unauthenticated: labels carry route templates only, never model names or tokens."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(settings.catalog_path)
    backend = FilesystemBackend(settings.blobs_dir)
    app = FastAPI(
        title="iris-server",
        version=__version__,
        description="The mlfunctions model store: versioned models behind scoped bearer tokens.",
    )
    app.state.store = Store(
        settings=settings,
        catalog=catalog,
        backend=backend,
        admin_sha256=settings.admin_token_sha256(),
        uploads=UploadPipeline(catalog, backend, settings.staging_dir, settings.max_upload_bytes),
    )
    install_handlers(app)
    app.include_router(health)
    app.include_router(models)
    app.include_router(admin)
    app.add_middleware(ObservabilityMiddleware)
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory: each worker process builds its app from the same IRIS_* environment."""
    return create_app(Settings())
