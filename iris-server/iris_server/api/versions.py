"""/v1/models/{model}/versions: list, upload (the store numbers it), describe, download (ETag-aware)
and delete a model's versions."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from ..auth import authorize, write_guard
from ..errors import ApiError
from ..names import parse_version_ref
from ..observability import DOWNLOAD_BYTES, NOT_MODIFIED
from ..records import Conflict, Missing
from ..schemas import VersionList, VersionOut
from ..storage import delete_unreferenced
from ..tokens import Right
from ..uploads import UploadRequest, parse_metadata, preflight
from .params import Caller, ModelName, VersionRefParam, errors, not_found, store_of

log = logging.getLogger("iris_server")

VERSION_INFO_HEADER = "X-Model-Version-Info"
_READ_CHUNK = 1024 * 1024

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models/{model}/versions", response_model=VersionList, responses=errors(403, 404))
async def list_versions(request: Request, model: ModelName, caller: Caller):
    authorize(caller, Right.READ, model, store_of(request).ownership)
    try:
        records = store_of(request).catalog.list_versions(model)
    except Missing as error:
        raise not_found(error) from error
    return {"versions": [record.public() for record in records]}


@router.post(
    "/models/{model}/versions",
    status_code=201,
    response_model=VersionOut,
    responses={
        200: {
            "model": VersionOut,
            "description": "a retry whose Idempotency-Key already created this version",
        },
        **errors(400, 403, 409, 413, 415),
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
    """Store a new version of `model`; the store assigns the next version number. The oldest unaliased
    versions beyond the store's cap are pruned; 409 when only protected ones are left to prune."""
    store = store_of(request)
    authorize(caller, Right.WRITE, model, store.ownership)
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
        metadata=parse_metadata(x_model_metadata, store.settings.max_json_depth),
        expected_sha256=x_content_sha256,
        idempotency_key=idempotency_key,
        written_by=caller.attribution(),
        guard=write_guard(caller, model, store.ownership),
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


@router.get("/models/{model}/versions/{ref}", response_model=VersionOut, responses=errors(403, 404))
async def get_version(request: Request, model: ModelName, ref: VersionRefParam, caller: Caller):
    authorize(caller, Right.READ, model, store_of(request).ownership)
    try:
        return store_of(request).catalog.resolve(model, parse_version_ref(ref)).public()
    except Missing as error:
        raise not_found(error) from error
    except ValueError as error:
        raise ApiError(422, str(error)) from error


@router.get(
    "/models/{model}/versions/{ref}/artifact",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        304: {"description": "If-None-Match matched: the caller already has this version"},
        **errors(403, 404),
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
    authorize(caller, Right.READ, model, store_of(request).ownership)
    store = store_of(request)
    try:
        record = store.catalog.resolve(model, parse_version_ref(ref))
    except Missing as error:
        raise not_found(error) from error
    except ValueError as error:
        raise ApiError(422, str(error)) from error
    headers = {"ETag": record.etag, "Cache-Control": "no-cache"}
    if _if_none_match(if_none_match, record.etag):
        NOT_MODIFIED.inc()
        return Response(status_code=304, headers=headers)
    try:
        # In a worker thread: for an object store this waits for the first bytes over the network.
        stream = await to_thread.run_sync(store.backend.open, record.blob_key)
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


@router.delete("/models/{model}/versions/{version}", status_code=204, responses=errors(403, 404, 409))
def delete_version(
    request: Request, model: ModelName, version: Annotated[int, Path(ge=1, le=2**62)], caller: Caller
):
    """Delete one version (the delete right). Refused (409) while an alias points at it; its number is never
    reused."""
    store = store_of(request)
    authorize(caller, Right.DELETE, model, store.ownership)
    try:
        record = store.catalog.delete_version(model, version)
    except Missing as error:
        raise not_found(error) from error
    except Conflict as error:
        raise ApiError(409, str(error)) from error
    delete_unreferenced(store.backend, record.blob_key)  # the version is gone from the catalog either way
    log.info("version deleted", extra={"model": model, "version": version, "by": caller.id})
    return Response(status_code=204)


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
