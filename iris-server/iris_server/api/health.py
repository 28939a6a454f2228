"""/healthz, /readyz and /metrics: unauthenticated, for the kubelet and a Prometheus scraper."""

from __future__ import annotations

import os

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from .. import observability
from ..errors import error_response
from ..schemas import ErrorOut, Status
from ..storage import BackendUnavailable
from .params import store_of

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Status)
async def healthz():
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Status, responses={503: {"model": ErrorOut}})
async def readyz(request: Request):
    """Readiness: the catalog answers, the data dir (staging) is writable and the artifact store answers."""
    store = store_of(request)
    try:
        await to_thread.run_sync(store.catalog.ping)  # a network round trip on PostgreSQL
    except Exception as error:  # any database failure means "not ready", with the reason
        return error_response(503, store.catalog.database.unavailable_message(error), code="catalog_unavailable")
    staging = store.settings.staging_dir
    if not (staging.is_dir() and os.access(staging, os.W_OK)):
        return error_response(503, f"data dir {store.settings.data_dir} is not writable")
    try:
        await to_thread.run_sync(store.backend.ping)  # an object store is a network round trip
    except BackendUnavailable as error:
        return error_response(
            503, str(error), code="artifact_store_unavailable", fields={"backend": error.backend}
        )
    return {"status": "ready"}


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request):
    """Prometheus metrics, unauthenticated: labels carry route templates only, never model names or tokens."""
    return Response(observability.render(store_of(request).catalog), media_type=CONTENT_TYPE_LATEST)
