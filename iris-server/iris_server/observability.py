"""Structured JSON logs and Prometheus metrics, plus the ASGI middleware that feeds both for every request.

Logs never contain the Authorization header or any token secret: the access log records the caller's token id
only.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from pythonjsonlogger.json import JsonFormatter

from .database import UNAVAILABLE

disable_created_metrics()  # the *_created series double the output and nobody graphs them

REQUESTS = Counter("iris_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "iris_http_request_duration_seconds",
    "Time to answer an HTTP request (until the last body byte was handed to the server)",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPLOADS = Counter("iris_uploads_total", "Upload attempts by outcome", ["outcome"])
UPLOAD_BYTES = Counter("iris_upload_bytes_total", "Artifact bytes stored")
DOWNLOAD_BYTES = Counter("iris_download_bytes_total", "Artifact bytes served")
NOT_MODIFIED = Counter("iris_not_modified_total", "Downloads answered 304 Not Modified")
PRUNED = Counter("iris_versions_pruned_total", "Versions removed by the per-model retention cap")
REFUSED = Counter("iris_requests_refused_total", "Requests refused before any work, by limit", ["limit"])
CHANGE_WAITERS = Gauge("iris_change_waiters", "Requests of this process waiting in GET /v1/changes now")



class StoredCollector:
    """iris_models and iris_stored_bytes, read from the catalog when Prometheus scrapes: one indexed SQL pass,
    and always what is stored — counts kept up to date on upload and delete would drift through retention
    pruning, crash recovery and restarts, and would have to be rebuilt at start anyway."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog

    def collect(self):
        try:
            models, size = self.catalog.stored_totals()
        except UNAVAILABLE:  # the catalog database is down: scrape the process's metrics without the totals
            return
        yield GaugeMetricFamily("iris_models", "Models with at least one stored version", value=models)
        yield GaugeMetricFamily("iris_stored_bytes", "Bytes of the stored artifacts (every version)", value=size)


def render(catalog: Any) -> bytes:
    """The process's metrics plus the store's totals. The totals get a registry of their own per scrape: the
    default one is process-wide, and tests run several stores (catalogs) in one process."""
    stored = CollectorRegistry(auto_describe=False)
    stored.register(StoredCollector(catalog))
    return generate_latest() + generate_latest(stored)


_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
access_log = logging.getLogger("iris_server.access")


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter("{asctime}{levelname}{name}{message}", style="{", rename_fields={"levelname": "level"})
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class ObservabilityMiddleware:
    """Counts, times and logs each request by route template (not raw path: no model names in labels)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_capture(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_capture)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(elapsed)
            principal = scope.get("state", {}).get("principal")
            access_log.log(
                logging.DEBUG if route in _QUIET_ROUTES else logging.INFO,
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "token_id": principal.id if principal else None,
                },
            )
