"""train: POST / trains a model and stores it, as ONNX with its metrics and params, in the model store.

The body may override the configured training ({"dataset", "estimator", "params", "testSize", "randomState"}),
or be a CSV table (Content-Type: text/csv) with a `target` column, options then in the query string. The
answer is {"model": {"name", "version"}, "metrics": {...}, "durationSeconds": ...}."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from iris_client import ModelStoreError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import function_support
import json_http
import onnx_export
import training_job
import training_request
from training_errors import TrainingInputError

log = logging.getLogger("train")

CSV_TYPES = ("text/csv", "application/csv")


def create_app() -> Starlette:
    model_name = function_support.env_required("MODEL_NAME")
    try:
        configured = training_request.from_environment(os.environ)
    except TrainingInputError as error:
        raise function_support.ConfigError(str(error)) from None
    max_body = int(function_support.env_float("TRAIN_MAX_BODY_BYTES", 64 * 1024 * 1024, minimum=0))
    # Uploads are retried by the client with an idempotency key, so a retry never stores a second version.
    store = function_support.model_store_client(timeout=60.0, retries=3)
    one_at_a_time = asyncio.Lock()  # training is CPU-bound: a second request waits rather than halving both

    async def train(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            spec, csv_body = await _training_request(request, configured, max_body)
        except TrainingInputError as error:
            return json_http.json_error(400, str(error))
        except json_http.BodyTooLarge:
            return json_http.json_error(413, f"the request body is larger than {max_body} bytes")

        async with one_at_a_time:
            try:
                outcome = await asyncio.to_thread(training_job.run, spec, csv_body)
            except TrainingInputError as error:
                return json_http.json_error(400, str(error))
            except onnx_export.ConversionError as error:
                log.error("conversion check failed", extra={"estimator": spec.estimator, "error": str(error)})
                return json_http.json_error(500, str(error))
            try:
                stored = await asyncio.to_thread(
                    store.upload, model_name, outcome.onnx_model, "onnx", outcome.metadata
                )
            except ModelStoreError as error:
                status, message = function_support.store_problem(error, f"uploading model {model_name!r}")
                log.error("upload failed", extra={"model": model_name, "status": status, "error": str(error)})
                return json_http.json_error(status, message)

        duration = time.perf_counter() - started
        log.info(
            "trained",
            extra={
                "model": model_name,
                "version": stored.version,
                "estimator": spec.estimator,
                "dataset": outcome.metadata["dataset"],
                "metrics": outcome.metrics,
                "seconds": round(duration, 3),
            },
        )
        body: dict[str, Any] = {
            "model": {"name": model_name, "version": stored.version},
            "metrics": outcome.metrics,
            "durationSeconds": round(duration, 3),
            "estimator": spec.estimator,
            "dataset": outcome.metadata["dataset"],
        }
        if outcome.warnings:
            body["warnings"] = outcome.warnings
        return JSONResponse(body)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ready": True})

    return Starlette(
        routes=[Route("/", train, methods=["POST"]), Route("/_/health", health, methods=["GET"])],
        exception_handlers=json_http.EXCEPTION_HANDLERS,
    )


async def _training_request(
    request: Request, configured: training_request.TrainingSpec, max_body: int
) -> tuple[training_request.TrainingSpec, bytes | None]:
    body = await json_http.read_body(request, max_body)
    overrides = training_request.overrides_from_query(request.query_params)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in CSV_TYPES:
        return training_request.with_overrides(configured, overrides, csv_body=True), body
    if body.strip():
        try:
            fields = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TrainingInputError(
                f"the body is not valid JSON ({error}); expected an object like "
                '{"estimator": "RandomForestClassifier", "params": {"n_estimators": 50}}, or a CSV with '
                "Content-Type: text/csv"
            ) from None
        if not isinstance(fields, dict):
            raise TrainingInputError(f"the body must be a JSON object, got {type(fields).__name__}")
        overrides.update(fields)
    return training_request.with_overrides(configured, overrides, csv_body=False), None
