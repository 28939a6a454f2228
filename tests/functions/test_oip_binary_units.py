"""The binary data extension's framing (functions/predict/oip_binary.py) against KServe's own encoder and decoder:
requests KServe's SDK builds are read back exactly, for every datatype, and answers framed here are what the
SDK's InferResponse.from_bytes reads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kserve import InferInput, InferRequest
from kserve.protocol.infer_type import InferResponse, serialize_byte_tensor

import function_harness  # noqa: F401  (puts the function folders on sys.path)
import oip_binary
from input_errors import InvalidInput

VALUES = {
    "BOOL": np.array([[True, False], [False, True]]),
    "UINT8": np.array([[0, 255], [7, 9]], np.uint8),
    "UINT16": np.array([[0, 65535], [7, 9]], np.uint16),
    "UINT32": np.array([[0, 2**32 - 1], [7, 9]], np.uint32),
    "UINT64": np.array([[0, 2**64 - 1], [7, 9]], np.uint64),
    "INT8": np.array([[-128, 127], [7, 9]], np.int8),
    "INT16": np.array([[-(2**15), 2**15 - 1], [7, 9]], np.int16),
    "INT32": np.array([[-(2**31), 2**31 - 1], [7, 9]], np.int32),
    "INT64": np.array([[-(2**63), 2**63 - 1], [7, 9]], np.int64),
    "FP16": np.array([[0.5, -2.25], [65504, 1e-3]], np.float16),
    "FP32": np.array([[5.1, 3.5], [1.4, 0.2]], np.float32),
    "FP64": np.array([[5.1, 3.5], [1.4, 1e300]], np.float64),
    "BYTES": np.array([[b"setosa", b""], ["versicolor".encode(), "ü".encode()]], dtype=object),
}


def _read(body: bytes, header_length: int) -> dict:
    header, tensors = oip_binary.split_body(body, str(header_length))
    document = json.loads(header)
    oip_binary.attach_inputs(document, tensors, max_elements=100)
    return document


def test_every_datatype_kserve_sends_is_read_back_exactly():
    inputs = []
    for datatype, values in VALUES.items():
        tensor = InferInput(name=datatype.lower(), shape=list(values.shape), datatype=datatype)
        tensor.set_data_from_numpy(values)  # binary, the SDK's default
        inputs.append(tensor)
    body, header_length = InferRequest(model_name="m", infer_inputs=inputs).to_rest()
    assert header_length is not None
    document = _read(body, header_length)
    for tensor, (datatype, values) in zip(document["inputs"], VALUES.items(), strict=True):
        if datatype == "BYTES":
            assert tensor["data"] == list(values.ravel())
        else:
            assert tensor["data"].dtype == oip_binary.DTYPES[datatype]
            assert np.array_equal(tensor["data"], values.ravel()), datatype


def test_json_and_binary_inputs_mix_in_one_request():
    binary = InferInput(name="b", shape=[2], datatype="FP32")
    binary.set_data_from_numpy(np.array([1.5, 2.5], np.float32))
    as_json = InferInput(name="j", shape=[2], datatype="INT64")
    as_json.set_data_from_numpy(np.array([3, 4]), binary_data=False)
    body, header_length = InferRequest(model_name="m", infer_inputs=[as_json, binary]).to_rest()
    document = _read(body, header_length)
    assert document["inputs"][0]["data"] == [3, 4]
    assert document["inputs"][1]["data"].tolist() == [1.5, 2.5]


def test_answers_framed_here_are_what_the_sdk_reads():
    outputs, tensors = [], []
    for datatype, values in VALUES.items():
        raw = oip_binary.tensor_bytes(datatype, values.ravel().tolist())
        outputs.append(
            {
                "name": datatype.lower(),
                "shape": list(values.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        tensors.append(raw)
    outputs.append({"name": "json", "shape": [1], "datatype": "INT64", "data": [42]})
    body, header_length = oip_binary.frame({"model_name": "m", "outputs": outputs}, tensors)
    assert json.loads(body[:header_length])["model_name"] == "m"
    response = InferResponse.from_bytes(body, header_length)
    for output, (datatype, values) in zip(response.outputs, VALUES.items(), strict=False):
        if datatype == "BYTES":
            assert output.data == [v.decode() for v in values.ravel()]  # the SDK hands BYTES back as text
        else:
            assert np.array_equal(output.as_numpy(), values), datatype
    assert response.outputs[-1].data == [42]


def test_bytes_layout_is_kserves():
    labels = ["setosa", "versicolor", "", "ü"]
    expected = serialize_byte_tensor(np.array(labels, dtype=object)).item()
    assert oip_binary.tensor_bytes("BYTES", labels) == expected


@pytest.mark.parametrize(
    ("declared", "body", "expected"),
    [
        ("", b"{}", "must be the length of the JSON inference header in bytes, got ''"),
        ("1e3", b"{}", "got '1e3'"),
        ("3", b"{}", "says the JSON inference header is 3 bytes, but the whole body is 2 bytes"),
    ],
)
def test_header_length_is_checked_against_the_body(declared, body, expected):
    with pytest.raises(InvalidInput) as caught:
        oip_binary.split_body(body, declared)
    assert expected in str(caught.value)


def test_header_of_zero_bytes_leaves_all_as_tensors():
    header, tensors = oip_binary.split_body(b"abc", "0")
    assert header == b"" and bytes(tensors) == b"abc"


def test_inputs_are_checked_before_any_is_decoded():
    # The first input is fine, the second's size is wrong: nothing is attached.
    document = {
        "inputs": [
            {"name": "a", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}},
            {"name": "b", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 4}},
        ]
    }
    with pytest.raises(InvalidInput, match=r'inputs\[1\] \("b"\): parameters.binary_data_size is 4 bytes'):
        oip_binary.attach_inputs(document, memoryview(b"\0" * 8), max_elements=10)
    assert "data" not in document["inputs"][0]


def test_a_huge_shape_is_a_size_mismatch_not_an_allocation():
    document = {
        "inputs": [
            {"name": "x", "shape": [2**40, 2**40], "datatype": "FP64", "parameters": {"binary_data_size": 8}}
        ]
    }
    with pytest.raises(InvalidInput, match="takes 9671406556917033397649408"):
        oip_binary.attach_inputs(document, memoryview(b"\0" * 8), max_elements=10)
