"""The two prediction protocols: KServe v1 ({"instances": [...]}) and the Open Inference Protocol v2
({"inputs": [{"name", "shape", "datatype", "data"}]}, its tensors in JSON or, through oip_binary, as raw bytes).
Pure: request documents in, validated float arrays (or the pictures to decode) out, and predictions in, answer
documents out. Every refusal says what was wrong and what was expected."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import oip_binary
from input_errors import InvalidInput, TooLarge
from served_model import Prediction, ServedModel

_NUMBERS = frozenset({int, float})
V2_NUMERIC_TYPES = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)
V2_OUTPUTS = ("predictions", "probabilities")
PROBABILITY_DECIMALS = 6


@dataclass(frozen=True)
class PredictRequest:
    rows: np.ndarray | None  # None while `pictures` are still to be decoded into rows
    probabilities: bool
    request_id: str | None = None
    outputs: tuple[str, ...] = ("predictions",)
    binary: frozenset[str] = frozenset()  # outputs answered as raw bytes (the binary data extension)
    pictures: tuple[tuple[str, bytes], ...] = ()  # (where it came from, PNG bytes) for image models


# -- shared helpers ------------------------------------------------------------------------------------------


def decode_json(body: bytes, example: Callable[[], str], what: str = "the request body") -> dict[str, Any]:
    """The body as a JSON object; `example` (what a good body looks like) is built only for an error."""
    if not body.strip():
        raise InvalidInput(f"{what} is empty; expected a JSON object like {example()}")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput(
            f"{what} is not valid JSON ({error}); expected a JSON object like {example()}"
        ) from None
    if not isinstance(document, dict):
        raise InvalidInput(f"{what} is a JSON {_kind(document)}; expected a JSON object like {example()}")
    return document


def parse_flag(value: Any, where: str) -> bool:
    """A boolean option from JSON (true/false) or from the query string ("true"/"false"/"1"/"0")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise InvalidInput(f"{where} must be true or false, got {json.dumps(value)}")


def v1_example(model: ServedModel) -> str:
    n = model.features or 4
    return (
        '{"instances": [['
        + ", ".join(f"x{i}" for i in range(1, min(n, 4) + 1))
        + (", ..." if n > 4 else "")
        + "]]}"
    )


def v2_example(model: ServedModel) -> str:
    n = model.features or 4
    tensor = f'{{"name": "{model.input_name}", "shape": [1, {n}], "datatype": "FP32", "data": [...]}}'
    return f'{{"inputs": [{tensor}]}}'


def rows_array(rows: list[Any], model: ServedModel, where: str, max_rows: int) -> np.ndarray:
    """Validated rows -> a C-contiguous 2-D array of the model's input type. Every element must be a JSON
    number: strings, booleans and nulls are refused rather than coerced (numpy would turn "5.1" and true into
    numbers)."""
    if not isinstance(rows, list) or not rows:
        raise InvalidInput(f"{where} must be a non-empty list of rows, got {_describe(rows)}")
    if len(rows) > max_rows:
        raise TooLarge(
            f"{where} has {len(rows)} rows; at most {max_rows} are accepted per request, split the batch"
        )
    width = model.features
    for i, row in enumerate(rows):
        if type(row) is not list:
            if i == 0 and type(row) in _NUMBERS:
                raise InvalidInput(
                    f"{where} must be a list of rows, each a list of {_features(model)}; "
                    "got a flat list of numbers "
                    f"(wrap one row in another list: [[...]])"
                )
            raise InvalidInput(f"{where}[{i}] is {_describe(row)}; expected a list of {_features(model)}")
        if not set(map(type, row)) <= _NUMBERS:
            j, value = next((j, v) for j, v in enumerate(row) if type(v) not in _NUMBERS)
            raise InvalidInput(f"{where}[{i}][{j}] is {_describe(value)}; expected a number")
        if width is None:
            width = len(row)
        if len(row) != width:
            raise InvalidInput(f"{where}[{i}] has {len(row)} values; expected {_features(model, width)}")
    return _finite(np.array(rows, dtype=model.input_dtype), where)


def _finite(array: np.ndarray, where: str) -> np.ndarray:
    if not np.isfinite(array).all():
        i, j = np.argwhere(~np.isfinite(array))[0]
        raise InvalidInput(f"{where}[{i}][{j}] is not a finite number; NaN and infinities are not accepted")
    return array


# -- KServe v1 -----------------------------------------------------------------------------------------------


def parse_v1(
    document: dict[str, Any], model: ServedModel, query_probabilities: str | None, max_rows: int
) -> PredictRequest:
    instances = document.get("instances")
    if instances is None:
        hint = (
            " (an Open Inference Protocol v2 request goes to /v2/models/<model>/infer)"
            if "inputs" in document
            else ""
        )
        raise InvalidInput(f'the request has no "instances"{hint}; expected {v1_example(model)}')
    wants = _wants_probabilities(document.get("probabilities"), query_probabilities, model)
    if model.image and isinstance(instances, list) and instances and isinstance(instances[0], dict):
        return PredictRequest(None, wants, pictures=b64_pictures(instances, max_rows))
    return PredictRequest(rows_array(instances, model, "instances", max_rows), wants)


def b64_pictures(instances: list[Any], max_rows: int) -> tuple[tuple[str, bytes], ...]:
    """KServe's binary convention for image models: {"instances": [{"b64": "<base64 PNG>"}, ...]}. Only
    unwrapped here: the handler checks the pixel budget and decodes off the event loop."""
    if len(instances) > max_rows:
        raise TooLarge(f"instances has {len(instances)} images; at most {max_rows} are accepted per request")
    pictures = []
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict) or not isinstance(instance.get("b64"), str):
            raise InvalidInput(f'instances[{i}] must be {{"b64": "<base64 PNG>"}}, got {_describe(instance)}')
        try:
            pictures.append((f"instances[{i}]", base64.b64decode(instance["b64"], validate=True)))
        except (binascii.Error, ValueError):
            raise InvalidInput(f"instances[{i}].b64 is not valid base64") from None
    return tuple(pictures)


def v1_answer(model: ServedModel, prediction: Prediction) -> dict[str, Any]:
    answer: dict[str, Any] = {"predictions": prediction.predictions, "model": model.describe()}
    if prediction.probabilities is not None:
        names = [str(c) for c in model.classes] if model.classes else None
        table = np.round(prediction.probabilities.astype(np.float64), PROBABILITY_DECIMALS).tolist()
        answer["probabilities"] = [dict(zip(names, row, strict=False)) for row in table] if names else table
    return answer


# -- Open Inference Protocol v2 ------------------------------------------------------------------------------


def parse_v2(
    document: dict[str, Any], model: ServedModel, query_probabilities: str | None, max_rows: int
) -> PredictRequest:
    example = v2_example(model)
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise InvalidInput(
            f'"inputs" must be a list with exactly one tensor, got {_describe(inputs)}; expected {example}'
        )
    tensor = inputs[0]
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if not isinstance(tensor.get("name"), str):
        raise InvalidInput(f"inputs[0].name must be a string; expected {example}")
    if datatype not in V2_NUMERIC_TYPES:
        raise InvalidInput(
            f"inputs[0].datatype {json.dumps(datatype)} is not supported; expected a numeric type "
            f"(FP32, FP64, INT32, INT64, ...)"
        )
    if not isinstance(shape, list) or len(shape) != 2 or not all(type(d) is int and d > 0 for d in shape):
        raise InvalidInput(f"inputs[0].shape must be [rows, {_width(model)}], got {json.dumps(shape)}")
    rows_count, width = shape
    if model.features is not None and width != model.features:
        raise InvalidInput(f"inputs[0].shape is {shape}; the model takes {model.features} features per row")
    if isinstance(data, np.ndarray):  # raw bytes (oip_binary), their size already checked against the shape
        if rows_count > max_rows:
            raise TooLarge(
                f"inputs[0] has {rows_count} rows; at most {max_rows} are accepted per request, split the batch"
            )
        array = _finite(np.ascontiguousarray(data.reshape(shape), dtype=model.input_dtype), "inputs[0].data")
    else:
        array = rows_array(_json_rows(data, shape), model, "inputs[0].data", max_rows)

    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f"parameters must be a JSON object, got {_describe(parameters)}")
    all_binary = parse_flag(parameters.get("binary_data_output", False), "parameters.binary_data_output")
    outputs, binary = _requested_outputs(document.get("outputs"), all_binary)
    wants = "probabilities" in outputs or _wants_probabilities(
        parameters.get("probabilities"), query_probabilities, model
    )
    if wants:
        _check_probabilities(model)
        if "probabilities" not in outputs:
            outputs += ("probabilities",)
            binary |= {"probabilities"} if all_binary else set()
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"id must be a string, got {_describe(request_id)}")
    return PredictRequest(array, wants, request_id, outputs, frozenset(binary))


def _json_rows(data: Any, shape: list[int]) -> list[Any]:
    rows_count, width = shape
    if not isinstance(data, list) or not data:
        raise InvalidInput(f"inputs[0].data must be a non-empty list of numbers, got {_describe(data)}")
    if type(data[0]) is list:  # row-major nested form
        rows = data
    else:
        if len(data) != rows_count * width:
            raise InvalidInput(
                f"inputs[0].data has {len(data)} values but shape {shape} needs {rows_count * width}"
            )
        rows = [data[i * width : (i + 1) * width] for i in range(rows_count)]
    if len(rows) != rows_count:
        raise InvalidInput(f"inputs[0].data has {len(rows)} rows but shape {shape} says {rows_count}")
    return rows


def v2_answer(
    model: ServedModel, prediction: Prediction, request: PredictRequest
) -> tuple[dict[str, Any], list[bytes]]:
    """The answer document and, for the outputs asked for as binary, their bytes in order (oip_binary frames
    them after the document; with none, the document is the whole answer). Binary probabilities are the model's
    float32 values as they are; JSON ones are rounded to PROBABILITY_DECIMALS."""
    tensors: list[dict[str, Any]] = []
    raw: list[bytes] = []

    def add(tensor: dict[str, Any], values: Any) -> None:
        if tensor["name"] in request.binary:
            raw.append(oip_binary.tensor_bytes(tensor["datatype"], values))
            tensor["parameters"] = {**tensor.get("parameters", {}), "binary_data_size": len(raw[-1])}
        else:
            tensor["data"] = values
        tensors.append(tensor)

    predictions = prediction.predictions
    if "predictions" in request.outputs:
        add(
            {"name": "predictions", "shape": [len(predictions)], "datatype": _datatype(predictions)},
            predictions,
        )
    probabilities = prediction.probabilities
    if "probabilities" in request.outputs and probabilities is not None:
        if "probabilities" not in request.binary:
            probabilities = np.round(probabilities.astype(np.float64), PROBABILITY_DECIMALS).ravel().tolist()
        tensor = {
            "name": "probabilities",
            "shape": list(prediction.probabilities.shape),
            "datatype": "FP32",
            "parameters": {"classes": model.classes},
        }
        add(tensor, probabilities)
    answer: dict[str, Any] = {
        "model_name": model.name,
        "model_version": str(model.version),
        "outputs": tensors,
    }
    if request.request_id is not None:
        answer["id"] = request.request_id
    return answer, raw


def v2_metadata(model: ServedModel) -> dict[str, Any]:
    outputs = [
        {
            "name": "predictions",
            "datatype": "BYTES"
            if model.classes and any(isinstance(c, str) for c in model.classes)
            else ("INT64" if model.task == "classification" else "FP32"),
            "shape": [-1],
        }
    ]
    if model.has_probabilities:
        outputs.append(
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [-1, len(model.classes) if model.classes else -1],
            }
        )
    return {
        "name": model.name,
        "versions": [str(model.version)],
        "platform": "onnxruntime_onnx",
        "inputs": [
            {
                "name": model.input_name,
                "datatype": "FP32" if model.input_dtype == np.float32 else "FP64",
                "shape": [-1, model.features if model.features is not None else -1],
            }
        ],
        "outputs": outputs,
        "parameters": {"task": model.task, "classes": model.classes, "image": model.image},
    }


# -- details -------------------------------------------------------------------------------------------------


def _wants_probabilities(body_value: Any, query_value: str | None, model: ServedModel) -> bool:
    wants = False
    if query_value is not None:
        wants = parse_flag(query_value, "the probabilities query parameter")
    if body_value is not None:
        wants = parse_flag(body_value, '"probabilities"')
    if wants:
        _check_probabilities(model)
    return wants


def _check_probabilities(model: ServedModel) -> None:
    if not model.has_probabilities:
        kind = "a regressor" if model.task != "classification" else "a classifier without predict_proba"
        raise InvalidInput(f"model {model.name} v{model.version} is {kind}: it gives no class probabilities")


def _requested_outputs(outputs: Any, all_binary: bool) -> tuple[tuple[str, ...], set[str]]:
    """The outputs asked for, and those of them to answer as raw bytes: `binary_data` on an output, else the
    request's `binary_data_output`."""
    if outputs is None or outputs == []:
        return ("predictions",), {"predictions"} if all_binary else set()
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise InvalidInput(
            f'outputs must be a list like [{{"name": "predictions"}}], got {_describe(outputs)}'
        )
    binary = set()
    for i, output in enumerate(outputs):
        if output["name"] not in V2_OUTPUTS:
            raise InvalidInput(
                f"unknown output {json.dumps(output['name'])}; this model has: {', '.join(V2_OUTPUTS)}"
            )
        parameters = output.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise InvalidInput(f"outputs[{i}].parameters must be a JSON object, got {_describe(parameters)}")
        flag = parameters.get("binary_data")
        if parse_flag(flag, f"outputs[{i}].parameters.binary_data") if flag is not None else all_binary:
            binary.add(output["name"])
    return tuple(dict.fromkeys(o["name"] for o in outputs)), binary


def _datatype(values: list[Any]) -> str:
    sample = values[0] if values else None
    if isinstance(sample, str):
        return "BYTES"
    return "INT64" if isinstance(sample, int) else "FP32"


def _features(model: ServedModel, width: int | None = None) -> str:
    n = model.features or width
    return f"{n} numbers" if n else "numbers"


def _width(model: ServedModel) -> str:
    return str(model.features) if model.features is not None else "features"


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _describe(value: Any) -> str:
    text = json.dumps(value)
    return f"{_kind(value)} {text if len(text) <= 40 else text[:37] + '...'}"
