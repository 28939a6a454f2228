"""predict: serves the configured model from the model store with onnxruntime.

KServe v1: POST / and POST /v1/models/<model>:predict with {"instances": [[...], ...]} (add
?probabilities=true or "probabilities": true for class probabilities; image models also take a PNG body). Open
Inference Protocol v2: POST /v2/models/<model>/infer, GET /v2/models/<model>, GET /v2/health/ready. GET
/_/health is the readiness the watchdog reports: 200 once the first attempt to load the model has finished
(loaded, or with a clear reason)."""

from __future__ import annotations

import os
from typing import Any

import function_support
import inference_protocol as protocol
from asgi_json import Answer, HTTPError, JsonApp, Request
from input_errors import InvalidInput, TooLarge
from model_source import ModelSource, ModelUnavailable
from served_model import ServedModel

PNG_TYPES = ("image/png",)


def create_app() -> JsonApp:
    name = function_support.env_required("MODEL_NAME")
    version = _pinned_version(os.environ.get("MODEL_VERSION", ""))
    function_support.env_required("MODEL_STORE_URL")
    refresh = function_support.env_float("MODEL_REFRESH_SECONDS", 30.0)
    max_body = int(function_support.env_float("MAX_REQUEST_BYTES", 32 * 1024 * 1024))
    max_rows = int(function_support.env_float("MAX_BATCH_ROWS", 10_000))
    source = ModelSource(
        name, version, refresh, lambda: function_support.model_store_client(timeout=10.0, retries=1)
    )

    async def served(request: Request) -> ServedModel:
        model = source.current or await source.model()
        wanted = request.params.get("model")
        if wanted is not None and wanted != model.name:
            raise HTTPError(404, f"this function serves model {model.name!r}, not {wanted!r}")
        wanted_version = request.params.get("version")
        if wanted_version is not None and wanted_version != str(model.version):
            raise HTTPError(
                404,
                f"this function serves {model.name} version {model.version}, not version {wanted_version}",
            )
        return model

    async def predict_v1(request: Request) -> Answer:
        model = await served(request)
        body = await request.body()
        query_probabilities = request.query("probabilities")
        if request.media_type in PNG_TYPES:
            parsed = _png_request(body, model, query_probabilities)
        else:
            document = protocol.decode_json(body, lambda: protocol.v1_example(model))
            parsed = protocol.parse_v1(document, model, query_probabilities, max_rows)
        return 200, protocol.v1_answer(model, model.predict(parsed.rows, parsed.probabilities))

    async def infer_v2(request: Request) -> Answer:
        model = await served(request)
        document = protocol.decode_json(await request.body(), lambda: protocol.v2_example(model))
        parsed = protocol.parse_v2(document, model, request.query("probabilities"), max_rows)
        return 200, protocol.v2_answer(model, model.predict(parsed.rows, parsed.probabilities), parsed)

    async def model_metadata(request: Request) -> Answer:
        return 200, protocol.v2_metadata(await served(request))

    async def model_ready(request: Request) -> Answer:
        model = await served(request)
        return 200, {"name": model.name, "ready": True}

    async def server_ready(request: Request) -> Answer:
        # Open Inference Protocol readiness: a model is loaded and answering.
        if source.current is None:
            problem = source.problem
            return 503, {"ready": False, "error": problem.message if problem else "not loaded"}
        return 200, {"ready": True}

    async def live(request: Request) -> Answer:
        return 200, {"live": True}

    async def health(request: Request) -> Answer:
        # The watchdog's readiness: the first load attempt is over, so a request gets a model or a clear
        # reason.
        model = source.current
        body: dict[str, Any] = {"ready": source.started, "model": model.describe() if model else None}
        if model is None and source.problem is not None:
            body["error"] = source.problem.message
        return (200 if source.started else 503), body

    return JsonApp(
        [
            ("POST", "/", predict_v1),
            ("POST", "/v1/models/{model}:predict", predict_v1),
            ("GET", "/v1/models/{model}", model_ready),
            ("POST", "/v2/models/{model}/infer", infer_v2),
            ("POST", "/v2/models/{model}/versions/{version}/infer", infer_v2),
            ("GET", "/v2/models/{model}", model_metadata),
            ("GET", "/v2/models/{model}/ready", model_ready),
            ("GET", "/v2/health/ready", server_ready),
            ("GET", "/v2/health/live", live),
            ("GET", "/_/health", health),
        ],
        max_body=max_body,
        # Load now rather than on the first request: fetching and loading the model is most of a cold start.
        on_startup=source.start,
        on_shutdown=source.stop,
        errors={InvalidInput: _invalid_input, ModelUnavailable: _unavailable},
    )


def _invalid_input(error: Exception) -> HTTPError:
    return HTTPError(413 if isinstance(error, TooLarge) else 400, str(error))


def _unavailable(error: Exception) -> HTTPError:
    assert isinstance(error, ModelUnavailable)
    return HTTPError(error.status, error.message, {"Retry-After": "1"} if error.status == 503 else None)


def _png_request(body: bytes, model: ServedModel, query_probabilities: str | None) -> protocol.PredictRequest:
    if not model.image:
        raise InvalidInput(
            f"model {model.name} v{model.version} takes rows of {model.features} numbers, not images; "
            f"send JSON like {protocol.v1_example(model)}"
        )
    from png_input import png_row  # Pillow is loaded only by image models

    wants = query_probabilities is not None and protocol.parse_flag(query_probabilities, "probabilities")
    if wants and not model.has_probabilities:
        raise InvalidInput(f"model {model.name} v{model.version} gives no class probabilities")
    return protocol.PredictRequest(png_row(body, model.image).astype(model.input_dtype), wants)


def _pinned_version(raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise function_support.ConfigError(
            f"MODEL_VERSION={raw!r} must be an integer >= 1, or empty for the newest"
        )
    return int(raw)
