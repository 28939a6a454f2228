"""predict: serves the configured model from the model store with onnxruntime.

KServe v1: POST / and POST /v1/models/<model>:predict with {"instances": [[...], ...]} (add
?probabilities=true or "probabilities": true for class probabilities; image models also take a PNG body). Open
Inference Protocol v2: POST /v2/models/<model>/infer (tensors in JSON or as raw bytes after the JSON header,
its binary data extension), GET /v2/models/<model>, GET /v2/health/ready. GET /_/health is the readiness the
watchdog reports: 200 once the first attempt to load the model has finished (loaded, or with a clear reason).
Pictures are decoded in worker threads (png_input), so /_/health answers while they are."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import function_metrics
import function_support
import inference_protocol as protocol
import oip_binary
from asgi_json import Answer, HTTPError, JsonApp, Raw, Request
from input_errors import InvalidInput, TooLarge
from model_source import ModelSource, ModelUnavailable
from png_input import PictureDecoder
from served_model import ServedModel

PNG_TYPES = ("image/png",)


def create_app() -> JsonApp:
    name = function_support.env_required("MODEL_NAME")
    version = _pinned_version(os.environ.get("MODEL_VERSION", ""))
    function_support.env_required("MODEL_STORE_URL")
    function_metrics.function_info("predict", name)
    refresh = function_support.env_float("MODEL_REFRESH_SECONDS", 30.0)
    max_body = int(function_support.env_float("MAX_REQUEST_BYTES", 32 * 1024 * 1024))
    max_rows = int(function_support.env_float("MAX_BATCH_ROWS", 10_000))
    pictures = PictureDecoder(
        budget=int(function_support.env_float("MAX_REQUEST_PIXELS", 4096 * 4096)),
        threads=max(1, int(function_support.env_float("IMAGE_DECODE_THREADS", 2))),
    )
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
        if parsed.pictures:
            rows = await pictures.rows(parsed.pictures, model.image)
            parsed = dataclasses.replace(parsed, rows=rows.astype(model.input_dtype), pictures=())
        return 200, protocol.v1_answer(model, model.predict(parsed.rows, parsed.probabilities))

    async def infer_v2(request: Request) -> Answer:
        model = await served(request)
        document = _v2_document(request, await request.body(), model, max_rows)
        parsed = protocol.parse_v2(document, model, request.query("probabilities"), max_rows)
        header, tensors = protocol.v2_answer(model, model.predict(parsed.rows, parsed.probabilities), parsed)
        if not tensors:
            return 200, header
        body, header_length = oip_binary.frame(header, tensors)
        return 200, Raw(body, oip_binary.MEDIA_TYPE), {oip_binary.HEADER_NAME: str(header_length)}

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
        on_shutdown=lambda: _stop(source, pictures),
        errors={InvalidInput: _invalid_input, ModelUnavailable: _unavailable},
    )


async def _stop(source: ModelSource, pictures: PictureDecoder) -> None:
    await source.stop()
    pictures.close()


def _v2_document(request: Request, body: bytes, model: ServedModel, max_rows: int) -> dict[str, Any]:
    """The inference request as a document: the JSON body, or (binary data extension) the JSON header with each
    binary input's bytes in place of its "data"."""
    declared = request.header(oip_binary.HEADER)

    def example() -> str:  # built only for an error message
        return protocol.v2_example(model)

    if not declared:
        try:
            return protocol.decode_json(body, example)
        except InvalidInput as error:
            if request.media_type != oip_binary.MEDIA_TYPE:
                raise
            raise InvalidInput(
                f"{error}; a binary request ({oip_binary.MEDIA_TYPE}) needs the {oip_binary.HEADER_NAME} header "
                "with the length of its JSON inference header"
            ) from None
    header, tensors = oip_binary.split_body(body, declared)
    what = f"the JSON inference header (the first {len(header)} bytes of the body)"
    document = protocol.decode_json(header, example, what)
    oip_binary.attach_inputs(document, tensors, max_elements=max_rows)
    return document


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
    wants = query_probabilities is not None and protocol.parse_flag(query_probabilities, "probabilities")
    if wants and not model.has_probabilities:
        raise InvalidInput(f"model {model.name} v{model.version} gives no class probabilities")
    return protocol.PredictRequest(None, wants, pictures=(("the body", body),))


def _pinned_version(raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise function_support.ConfigError(
            f"MODEL_VERSION={raw!r} must be an integer >= 1, or empty for the newest"
        )
    return int(raw)
