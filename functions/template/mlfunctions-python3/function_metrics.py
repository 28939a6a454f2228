"""GET /_/metrics: the function's own Prometheus metrics, on its own port next to /_/health.

Request metrics carry of-watchdog's names (http_requests_total{code,method}, http_request_duration_seconds,
http_requests_in_flight), so OpenFaaS dashboards read them unchanged; /_/metrics and /_/health themselves are not
counted (probes and scrapes would drown the traffic). The mlfunctions_* metrics are what handlers report
through the functions below.

The registry is created when this module is imported, in the replica process itself: the local runtime's
pre-warmed processes preload libraries (prometheus_client among them) but never the function's own modules, so
no replica inherits another's counts."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

disable_created_metrics()  # the *_created series double the output; of-watchdog has none
METRICS_PATH = "/_/metrics"
_NOT_COUNTED = frozenset((METRICS_PATH, "/_/health"))

registry = CollectorRegistry(auto_describe=False)
_requests = Counter("http_requests", "Requests the function answered.", ["code", "method"], registry=registry)
_duration = Histogram("http_request_duration_seconds", "Time to answer a request.", ["code", "method"],
                      registry=registry)
_in_flight = Gauge("http_requests_in_flight", "Requests being answered now.", registry=registry)
_info = Gauge("mlfunctions_function_info", "What this function does (always 1).", ["task", "model"],
              registry=registry)
_version = Gauge("mlfunctions_model_version_info", "The model version being served (always 1; absent before "
                 "one is loaded).", ["model", "version"], registry=registry)
_loads = Counter("mlfunctions_model_loads", "Attempts to load or refresh the served model, by result "
                 "(success, not_modified, error).", ["result"], registry=registry)
_cold_start = Gauge("mlfunctions_cold_start_seconds", "From the entry point starting to serving requests.",
                    registry=registry)
_trainings = Counter("mlfunctions_trainings", "Training requests, by result (success, rejected: the request was "
                     "refused or invalid, error: training or storing failed).", ["result"], registry=registry)
_training_seconds = Histogram("mlfunctions_training_seconds", "Time to train, check and store a model.",
                              buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
                              registry=registry)


def function_info(task: str, model: str) -> None:
    _info.labels(task, model).set(1)


def model_served(model: str, version: int | str) -> None:
    """The version now served replaces the previous one: one series, never two at 1."""
    _version.clear()
    _version.labels(model, str(version)).set(1)


def model_load(result: str) -> None:
    _loads.labels(result).inc()


def training(result: str, seconds: float | None = None) -> None:
    _trainings.labels(result).inc()
    if seconds is not None:
        _training_seconds.observe(seconds)


def serving_since(started: float) -> None:
    """Called once the socket listens; `started` is time.monotonic() when the entry point began."""
    _cold_start.set(time.monotonic() - started)


class MetricsMiddleware:
    """ASGI middleware around the handler's app: answers GET /_/metrics and counts every other request."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in _NOT_COUNTED:
            if scope["type"] == "http" and scope["path"] == METRICS_PATH:
                await _serve_metrics(scope, send)
                return
            await self.app(scope, receive, send)
            return
        status = 500  # what the caller gets if the app fails before it answers
        started = time.perf_counter()

        async def recording_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        _in_flight.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            _in_flight.dec()
            method = scope["method"]
            _requests.labels(str(status), method).inc()
            _duration.labels(str(status), method).observe(time.perf_counter() - started)


async def _serve_metrics(scope, send) -> None:
    if scope["method"] not in ("GET", "HEAD"):
        body, status, content_type = b"GET /_/metrics only\n", 405, "text/plain; charset=utf-8"
    else:
        body, status, content_type = generate_latest(registry), 200, CONTENT_TYPE_LATEST
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
