"""The Open Inference Protocol's binary tensor data extension on a real predict function serving a trained iris
model, over a real socket: KServe's own Python SDK client (InferenceRESTClient, protocol v2, in its default
mode, which sends tensors as raw bytes), then raw bodies for every way a binary request can be malformed, and
binary answers parsed byte by byte."""

from __future__ import annotations

import asyncio
import json
import struct

import numpy as np
import pytest
import requests
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput

from function_harness import IRIS_SAMPLES

pytestmark = pytest.mark.server

SPECIES = [species for species, samples in IRIS_SAMPLES.items() for _ in samples]
ROWS = np.array([row for samples in IRIS_SAMPLES.values() for row in samples])
HEADER = "Inference-Header-Content-Length"


def _sdk_infer(url: str, request: InferRequest, response_headers: dict | None = None):
    async def infer():
        async with InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30)) as client:
            assert await client.is_server_ready(url) is True
            return await client.infer(url, request, model_name="iris", response_headers=response_headers)

    return asyncio.run(infer())


def _sdk_request(datatype: str, dtype, **options) -> InferRequest:
    tensor = InferInput(name="input", shape=list(ROWS.shape), datatype=datatype)
    tensor.set_data_from_numpy(ROWS.astype(dtype))  # binary_data=True: the SDK's default
    return InferRequest(model_name="iris", infer_inputs=[tensor], **options)


@pytest.mark.parametrize(
    ("datatype", "dtype"), [("FP32", np.float32), ("FP64", np.float64), ("FP16", np.float16)]
)
def test_kserve_sdk_default_client_gets_the_species(iris, datatype, dtype):
    request = _sdk_request(datatype, dtype, request_id="sdk-1")
    _, header_length = request.to_rest()
    assert header_length is not None, "the SDK did not send binary tensors: this test would prove nothing"
    response = _sdk_infer(iris.predict.url, request)
    assert response.model_name == "iris" and response.id == "sdk-1"
    [predictions] = response.outputs
    assert predictions.name == "predictions" and predictions.datatype == "BYTES"
    assert predictions.data == SPECIES


def test_kserve_sdk_binary_outputs(iris):
    request = _sdk_request(
        "FP32",
        np.float32,
        parameters={"binary_data_output": True},
        request_outputs=[RequestedOutput("predictions"), RequestedOutput("probabilities")],
    )
    headers: dict = {}
    response = _sdk_infer(iris.predict.url, request, response_headers=headers)
    assert headers["content-type"] == "application/octet-stream" and int(headers[HEADER.lower()]) > 0
    predictions, probabilities = response.outputs
    assert predictions.data == SPECIES
    table = probabilities.as_numpy()
    assert table.shape == (9, 3) and table.dtype == np.float32
    assert np.allclose(table.sum(axis=1), 1, atol=1e-5)
    classes = probabilities.parameters["classes"]
    assert [classes[i] for i in table.argmax(axis=1)] == SPECIES


# -- raw bodies ----------------------------------------------------------------------------------------------


def _tensor(shape, datatype="FP32", size=None, **extra):
    return {
        "name": "input",
        "shape": shape,
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
        **extra,
    }


def _binary(document: dict, tensors: bytes, header_length: int | None = None) -> tuple[bytes, dict[str, str]]:
    header = json.dumps(document).encode()
    length = len(header) if header_length is None else header_length
    return header + tensors, {HEADER: str(length), "Content-Type": "application/octet-stream"}


def _post(iris, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{iris.predict.url}/v2/models/iris/infer", data=body, headers=headers, timeout=30)


def _iris_request(**extra) -> tuple[bytes, dict[str, str]]:
    data = ROWS.astype("<f4").tobytes()
    return _binary({"inputs": [_tensor([9, 4], size=len(data))], **extra}, data)


def _bytes_elements(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


_case = _binary


FOUR_FP32 = np.array([[5.1, 3.5, 1.4, 0.2]], "<f4").tobytes()
GOOD_HEADER = {"inputs": [_tensor([1, 4], size=16)]}
BAD_BINARY_REQUESTS = [
    # (id, (body, headers), status, words the message must contain)
    (
        "truncated",
        _case(GOOD_HEADER, FOUR_FP32[:12]),
        400,
        ["has 12 bytes after", "add up to 16", "inputs[0]"],
    ),
    (
        "trailing bytes",
        _case(GOOD_HEADER, FOUR_FP32 + b"\0" * 4),
        400,
        ["has 20 bytes after", "add up to 16"],
    ),
    (
        "header longer than body",
        _case(GOOD_HEADER, FOUR_FP32, header_length=10_000),
        400,
        ["says the JSON inference header is 10000 bytes", "expected the header followed by"],
    ),
    (
        "header length not a number",
        _case(GOOD_HEADER, FOUR_FP32, header_length=-3),
        400,
        ["must be the length"],
    ),
    (
        "header cut short",
        _case(GOOD_HEADER, FOUR_FP32, header_length=20),
        400,
        ["the first 20 bytes", "not valid JSON"],
    ),
    ("header not an object", (b"[1, 2]", {HEADER: "6"}), 400, ["inference header", "is a JSON array"]),
    (
        "size does not match the shape (FP64 bytes labelled FP32)",
        _case({"inputs": [_tensor([1, 4], size=32)]}, np.zeros((1, 4), "<f8").tobytes()),
        400,
        ['inputs[0] ("input")', "binary_data_size is 32 bytes", "shape [1, 4] of FP32 takes 16"],
    ),
    (
        "unknown datatype",
        _case({"inputs": [_tensor([1, 4], "FLOAT32", 16)]}, FOUR_FP32),
        400,
        ['inputs[0] ("input")', 'datatype "FLOAT32" is not an Open Inference Protocol type', "FP32", "BYTES"],
    ),
    (
        "BYTES for a model that takes numbers",
        _case({"inputs": [_tensor([1, 4], "BYTES", 28)]}, _bytes_elements(b"5.1", b"3.5", b"1.4", b"0.2")),
        400,
        ['inputs[0].datatype "BYTES" is not supported', "numeric type"],
    ),
    (
        "BYTES length prefix beyond the tensor",
        _case({"inputs": [_tensor([1], "BYTES", 8)]}, struct.pack("<I", 1000) + b"abcd"),
        400,
        ['inputs[0] ("input")', "BYTES element 0 says it is 1000 bytes", "only 4 of the input's 8 bytes"],
    ),
    (
        "BYTES length prefix of 4 GiB",
        _case({"inputs": [_tensor([1], "BYTES", 6)]}, b"\xff\xff\xff\xff" + b"ab"),
        400,
        ["says it is 4294967295 bytes"],
    ),
    (
        "BYTES element without room for its length",
        _case({"inputs": [_tensor([2], "BYTES", 8)]}, _bytes_elements(b"x") + b"abc"),
        400,
        ["BYTES element 1 has no room for its 4-byte length: 3 bytes of 8 are left"],
    ),
    (
        "BYTES second prefix beyond the tensor",
        _case({"inputs": [_tensor([2], "BYTES", 9)]}, _bytes_elements(b"x") + b"abcd"),
        400,
        ["BYTES element 1 says it is", "only 0 of the input's 9 bytes"],
    ),
    (
        "BYTES with bytes left over",
        _case({"inputs": [_tensor([1], "BYTES", 9)]}, _bytes_elements(b"x") + b"abcd"),
        400,
        ["4 bytes are left after the 1 BYTES elements"],
    ),
    (
        "BYTES shape needing more than the size",
        _case({"inputs": [_tensor([3], "BYTES", 8)]}, b"\0" * 8),
        400,
        ["3 BYTES elements, each at least a 4-byte length", "only 8 bytes"],
    ),
    (
        "BOOL byte that is not 0 or 1",
        _case({"inputs": [_tensor([1, 4], "BOOL", 4)]}, b"\x00\x01\x02\x01"),
        400,
        ["a BOOL element is a byte 0 or 1"],
    ),
    (
        "negative size",
        _case({"inputs": [_tensor([1, 4], size=-16)]}, b""),
        400,
        ['inputs[0] ("input"): parameters.binary_data_size must be a number of bytes, got -16'],
    ),
    (
        "size as a string",
        _case({"inputs": [_tensor([1, 4], size="16")]}, FOUR_FP32),
        400,
        ['binary_data_size must be a number of bytes, got "16"'],
    ),
    (
        "negative shape",
        _case({"inputs": [_tensor([-1, 4], size=16)]}, FOUR_FP32),
        400,
        ["shape must be a list of sizes", "[-1, 4]"],
    ),
    (
        "both data and binary_data_size",
        _case({"inputs": [_tensor([1, 4], size=16, data=[1, 2, 3, 4])]}, FOUR_FP32),
        400,
        ['both "data" and parameters.binary_data_size'],
    ),
    (
        "NaN in the tensor",
        _case(GOOD_HEADER, np.array([[5.1, np.nan, 1.4, 0.2]], "<f4").tobytes()),
        400,
        ["inputs[0].data[0][1] is not a finite number"],
    ),
    (
        "width the model does not take",
        _case({"inputs": [_tensor([1, 3], size=12)]}, FOUR_FP32[:12]),
        400,
        ["the model takes 4 features per row"],
    ),
    (
        "unknown output",
        _case(
            {**GOOD_HEADER, "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}, FOUR_FP32
        ),
        400,
        ['unknown output "logits"', "predictions, probabilities"],
    ),
    (
        "binary_data_output not a boolean",
        _case({**GOOD_HEADER, "parameters": {"binary_data_output": "sometimes"}}, FOUR_FP32),
        400,
        ["parameters.binary_data_output must be true or false"],
    ),
    (
        "binary_data of an output not a boolean",
        _case(
            {**GOOD_HEADER, "outputs": [{"name": "predictions", "parameters": {"binary_data": 2}}]}, FOUR_FP32
        ),
        400,
        ["outputs[0].parameters.binary_data must be true or false"],
    ),
    (
        "octet-stream without the header",
        (json.dumps(GOOD_HEADER).encode() + FOUR_FP32, {"Content-Type": "application/octet-stream"}),
        400,
        ["not valid JSON", "needs the Inference-Header-Content-Length header"],
    ),
    (
        "more rows than allowed",
        _case({"inputs": [_tensor([51, 4], size=51 * 16)]}, np.ones((51, 4), "<f4").tobytes()),
        413,
        ["inputs[0] has 51 rows; at most 50"],
    ),
    (
        "more BYTES elements than rows allowed",
        _case({"inputs": [_tensor([51], "BYTES", 51 * 4)]}, b"\0" * 51 * 4),
        413,
        ["51 BYTES elements; at most 50"],
    ),
    ("body over the limit", _case(GOOD_HEADER, b"\0" * 100_001), 413, ["larger than 100000 bytes"]),
]


@pytest.mark.parametrize(
    ("request_", "status", "words"),
    [case[1:] for case in BAD_BINARY_REQUESTS],
    ids=[case[0] for case in BAD_BINARY_REQUESTS],
)
def test_malformed_binary_request_says_what_was_expected(iris, request_, status, words):
    body, headers = request_
    response = _post(iris, body, headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    for word in words:
        assert word in message, message


def _parse_binary_answer(response: requests.Response) -> tuple[dict, dict[str, bytes]]:
    """The JSON header and each binary output's bytes, checked against the framing the protocol defines."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers[HEADER])
    header = json.loads(response.content[:length])
    tensors, offset = {}, length
    for output in header["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            assert "data" not in output
            tensors[output["name"]] = response.content[offset : offset + size]
            offset += size
    assert offset == len(response.content), "the body is not exactly the header and the outputs' bytes"
    return header, tensors


def _strings(raw: bytes) -> list[str]:
    values, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        values.append(raw[offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    return values


def test_binary_answer_parsed_byte_by_byte(iris):
    outputs = [{"name": "predictions"}, {"name": "probabilities"}]
    body, headers = _iris_request(id="raw-1", outputs=outputs, parameters={"binary_data_output": True})
    header, tensors = _parse_binary_answer(_post(iris, body, headers))
    assert header["id"] == "raw-1" and header["model_name"] == "iris" and header["model_version"] == "1"
    predictions, probabilities = header["outputs"]
    assert predictions["datatype"] == "BYTES" and predictions["shape"] == [9]
    assert _strings(tensors["predictions"]) == SPECIES
    assert probabilities["datatype"] == "FP32" and probabilities["shape"] == [9, 3]
    table = np.frombuffer(tensors["probabilities"], "<f4").reshape(9, 3)
    assert probabilities["parameters"]["binary_data_size"] == 9 * 3 * 4
    assert probabilities["parameters"]["classes"] == ["setosa", "versicolor", "virginica"]
    # The same request in JSON answers the same numbers (rounded to 6 decimals there).
    as_json = requests.post(
        f"{iris.predict.url}/v2/models/iris/infer",
        json={
            "inputs": [{"name": "input", "shape": [9, 4], "datatype": "FP32", "data": ROWS.ravel().tolist()}],
            "outputs": outputs,
        },
        timeout=30,
    ).json()
    assert np.allclose(table, np.array(as_json["outputs"][1]["data"]).reshape(9, 3), atol=1e-6)


def test_binary_per_output_and_json_when_not_asked(iris):
    # Only probabilities as bytes: predictions stay in the JSON header.
    outputs = [{"name": "predictions"}, {"name": "probabilities", "parameters": {"binary_data": True}}]
    header, tensors = _parse_binary_answer(_post(iris, *_iris_request(outputs=outputs)))
    assert header["outputs"][0]["data"] == SPECIES and list(tensors) == ["probabilities"]
    # An output's binary_data: false wins over binary_data_output: true; nothing binary left, so plain JSON.
    outputs = [{"name": "predictions", "parameters": {"binary_data": False}}]
    response = _post(iris, *_iris_request(outputs=outputs, parameters={"binary_data_output": True}))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert HEADER not in response.headers and response.json()["outputs"][0]["data"] == SPECIES
    # A JSON request may ask for binary outputs too.
    request = {
        "inputs": [{"name": "input", "shape": [9, 4], "datatype": "FP64", "data": ROWS.ravel().tolist()}],
        "parameters": {"binary_data_output": True, "probabilities": True},
    }
    answer = requests.post(f"{iris.predict.url}/v2/models/iris/infer", json=request, timeout=30)
    header, tensors = _parse_binary_answer(answer)
    assert [o["name"] for o in header["outputs"]] == ["predictions", "probabilities"]
    assert _strings(tensors["predictions"]) == SPECIES and len(tensors["probabilities"]) == 9 * 3 * 4


def test_binary_inputs_of_every_numeric_type(iris):
    whole = np.round(ROWS).astype(np.int64)  # whole centimetres still tell setosa from the others
    answers = {}
    for datatype, dtype in [("INT64", "<i8"), ("INT32", "<i4"), ("UINT8", "|u1"), ("FP64", "<f8")]:
        data = whole.astype(dtype).tobytes()
        tensor = {
            "name": "input",
            "shape": [9, 4],
            "datatype": datatype,
            "parameters": {"binary_data_size": len(data)},
        }
        response = _post(iris, *_binary({"inputs": [tensor]}, data))
        assert response.status_code == 200, response.text
        answers[datatype] = response.json()["outputs"][0]["data"]
    assert all(answer == answers["FP64"] for answer in answers.values()), answers
    assert answers["FP64"][:3] == ["setosa"] * 3
