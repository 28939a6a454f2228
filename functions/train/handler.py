"""train: POST / trains a model and stores it, as ONNX with its metrics and params, in the model store.

The body may override the configured training ({"dataset", "estimator", "params", "testSize", "randomState"}),
or be a CSV table (Content-Type: text/csv) with a `target` column, options then in the query string. The
answer is {"model": {"name", "version"}, "metrics": {...}, "durationSeconds": ...}.

Deployed by the operator, a call must carry the MLFunction's invoke token and may change only what its spec
allows (call_policy.py); that is checked before the body is read."""

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

import call_policy
import function_metrics
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
    function_metrics.function_info("train", model_name)
    try:
        configured = training_request.from_environment(os.environ)
    except TrainingInputError as error:
        raise function_support.ConfigError(str(error)) from None
    max_body = int(function_support.env_float("TRAIN_MAX_BODY_BYTES", 64 * 1024 * 1024, minimum=0))
    try:
        policy = call_policy.from_environment(os.environ.get("TRAIN_CALL_POLICY"), function_support.secrets_dir(),
                                              max_body)
    except call_policy.PolicyError as error:
        raise function_support.ConfigError(str(error)) from None
    if policy.credential_file is None:
        log.warning("TRAIN_CALL_POLICY is not set: anyone who reaches this function may train and store models")
    # Uploads are retried by the client with an idempotency key, so a retry never stores a second version.
    store = function_support.model_store_client(timeout=60.0, retries=3)
    one_at_a_time = asyncio.Lock()  # training is CPU-bound: a second request waits rather than halving both
    scheduled = call_policy.ScheduledRuns()

    async def train(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            authenticated = call_policy.authenticate(policy, request.headers.get("authorization"))
            spec, csv_body = await _training_request(request, configured, policy,
                                                     None if authenticated else scheduled)
        except call_policy.CallRefused as error:
            function_metrics.training("rejected")
            return json_http.json_error(error.status, str(error), error.headers)
        except TrainingInputError as error:
            function_metrics.training("rejected")
            return json_http.json_error(400, str(error))
        except json_http.BodyTooLarge as error:
            function_metrics.training("rejected")
            return json_http.json_error(413, str(error))

        async with one_at_a_time:
            try:
                outcome = await asyncio.to_thread(training_job.run, spec, csv_body)
            except TrainingInputError as error:
                function_metrics.training("rejected")
                return json_http.json_error(400, str(error))
            except onnx_export.ConversionError as error:
                log.error("conversion check failed", extra={"estimator": spec.estimator, "error": str(error)})
                function_metrics.training("error", time.perf_counter() - started)
                return json_http.json_error(500, str(error))
            try:
                stored = await asyncio.to_thread(
                    store.upload, model_name, outcome.onnx_model, "onnx", outcome.metadata
                )
            except ModelStoreError as error:
                status, message = function_support.store_problem(error, f"uploading model {model_name!r}")
                log.error("upload failed", extra={"model": model_name, "status": status, "error": str(error)})
                function_metrics.training("error", time.perf_counter() - started)
                return json_http.json_error(status, message)

        duration = time.perf_counter() - started
        function_metrics.training("success", duration)
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
    request: Request,
    configured: training_request.TrainingSpec,
    policy: call_policy.CallPolicy,
    anonymous: call_policy.ScheduledRuns | None,
) -> tuple[training_request.TrainingSpec, bytes | None]:
    """What to train. `anonymous`: the call carries no credential and may only run the configured training."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    csv_body = media_type in CSV_TYPES
    if csv_body and anonymous is None:  # before the body is read: who may not send data does not upload it
        call_policy.check_overrides(policy, {}, csv_body=True)
    limit = call_policy.MAX_OPTIONS_BYTES if anonymous is not None else policy.body_limit(csv_body)
    body = await json_http.read_body(request, limit)
    overrides = training_request.overrides_from_query(request.query_params)
    if anonymous is not None:
        anonymous.admit(overrides, body, csv_body=csv_body)
        return configured, None
    if csv_body:
        call_policy.check_overrides(policy, overrides, csv_body=True)
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
    call_policy.check_overrides(policy, overrides, csv_body=False)
    return training_request.with_overrides(configured, overrides, csv_body=False), None
