"""iris-predict: serves the configured model from the model store with onnxruntime.

KServe v1: POST / and POST /v1/models/<model>:predict with {"instances": [[...], ...]} (add ?probabilities=true or
"probabilities": true for class probabilities; image models also take a PNG body). Open Inference Protocol v2:
POST /v2/models/<model>/infer, GET /v2/models/<model>, GET /v2/health/ready. GET /_/health is the readiness the
watchdog reports: 200 once the first attempt to load the model has finished (loaded, or with a clear reason)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import function_support
import inference_protocol as protocol
from model_source import ModelSource, ModelUnavailable
from served_model import ServedModel

PNG_TYPES = ("image/png",)


def create_app() -> Starlette:
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
        wanted = request.path_params.get("model")
        if wanted is not None and wanted != model.name:
            raise ModelUnavailable(404, f"this function serves model {model.name!r}, not {wanted!r}")
        wanted_version = request.path_params.get("version")
        if wanted_version is not None and wanted_version != str(model.version):
            raise ModelUnavailable(404, f"this function serves {model.name} version {model.version}, "
                                        f"not version {wanted_version}")
        return model

    async def predict_v1(request: Request) -> JSONResponse:
        model = await served(request)
        body = await function_support.read_body(request, max_body)
        query_probabilities = request.query_params.get("probabilities")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() in PNG_TYPES:
            parsed = _png_request(body, model, query_probabilities)
        else:
            document = protocol.decode_json(body, protocol.v1_example(model))
            parsed = protocol.parse_v1(document, model, query_probabilities, max_rows)
        prediction = model.predict(parsed.rows, parsed.probabilities)
        return JSONResponse(protocol.v1_answer(model, prediction))

    async def infer_v2(request: Request) -> JSONResponse:
        model = await served(request)
        body = await function_support.read_body(request, max_body)
        document = protocol.decode_json(body, protocol.v2_example(model))
        parsed = protocol.parse_v2(document, model, request.query_params.get("probabilities"), max_rows)
        prediction = model.predict(parsed.rows, parsed.probabilities)
        return JSONResponse(protocol.v2_answer(model, prediction, parsed))

    async def model_metadata(request: Request) -> JSONResponse:
        return JSONResponse(protocol.v2_metadata(await served(request)))

    async def model_ready(request: Request) -> JSONResponse:
        model = await served(request)
        return JSONResponse({"name": model.name, "ready": True})

    async def server_ready(request: Request) -> JSONResponse:
        # Open Inference Protocol readiness: a model is loaded and answering.
        if source.current is None:
            problem = source.problem
            return JSONResponse({"ready": False, "error": problem.message if problem else "not loaded"},
                                status_code=503)
        return JSONResponse({"ready": True})

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"live": True})

    async def health(request: Request) -> JSONResponse:
        # The watchdog's readiness: the first load attempt is over, so a request gets a model or a clear reason.
        model = source.current
        body: dict[str, Any] = {"ready": source.started, "model": model.describe() if model else None}
        if model is None and source.problem is not None:
            body["error"] = source.problem.message
        return JSONResponse(body, status_code=200 if source.started else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await source.start()  # load now rather than on the first request: that is most of a cold start
        yield
        await source.stop()

    async def invalid_input(request: Request, error: Exception) -> JSONResponse:
        status = 413 if isinstance(error, protocol.TooLarge) else 400
        return function_support.json_error(status, str(error))

    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ModelUnavailable)
        headers = {"Retry-After": "1"} if error.status == 503 else None
        return function_support.json_error(error.status, error.message, headers=headers)

    async def too_large(request: Request, error: Exception) -> JSONResponse:
        return function_support.json_error(413, f"the request body is larger than {max_body} bytes")

    return Starlette(
        routes=[
            Route("/", predict_v1, methods=["POST"]),
            Route("/v1/models/{model}:predict", predict_v1, methods=["POST"]),
            Route("/v1/models/{model}", model_ready, methods=["GET"]),
            Route("/v2/models/{model}/infer", infer_v2, methods=["POST"]),
            Route("/v2/models/{model}/versions/{version}/infer", infer_v2, methods=["POST"]),
            Route("/v2/models/{model}", model_metadata, methods=["GET"]),
            Route("/v2/models/{model}/ready", model_ready, methods=["GET"]),
            Route("/v2/health/ready", server_ready, methods=["GET"]),
            Route("/v2/health/live", live, methods=["GET"]),
            Route("/_/health", health, methods=["GET"]),
        ],
        exception_handlers={
            protocol.InvalidInput: invalid_input,
            ModelUnavailable: unavailable,
            function_support.BodyTooLarge: too_large,
            **function_support.EXCEPTION_HANDLERS,
        },
        lifespan=lifespan,
    )


def _png_request(body: bytes, model: ServedModel, query_probabilities: str | None) -> protocol.PredictRequest:
    if not model.image:
        raise protocol.InvalidInput(
            f"model {model.name} v{model.version} takes rows of {model.features} numbers, not images; "
            f"send JSON like {protocol.v1_example(model)}"
        )
    from png_input import png_row  # Pillow is loaded only by image models

    wants = query_probabilities is not None and protocol.parse_flag(query_probabilities, "probabilities")
    if wants and not model.has_probabilities:
        raise protocol.InvalidInput(f"model {model.name} v{model.version} gives no class probabilities")
    return protocol.PredictRequest(png_row(body, model.image).astype(model.input_dtype), wants)


def _pinned_version(raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise function_support.ConfigError(f"MODEL_VERSION={raw!r} must be an integer >= 1, or empty for the newest")
    return int(raw)
