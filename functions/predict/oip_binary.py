"""The Open Inference Protocol's binary tensor data extension, as KServe and Triton speak it over REST.

A request with the header `Inference-Header-Content-Length: N` is N bytes of JSON (the inference header) followed
by the tensors' raw bytes: little-endian, row-major, no padding, one input after another in the order of
"inputs", each input's `parameters.binary_data_size` saying how many bytes are its own. BYTES tensors are a
4-byte little-endian length before each element. An answer is framed the same way when the client asks for
binary outputs (`parameters.binary_data_output` on the request, `parameters.binary_data` on an output).

Pure framing and layout: bodies in, JSON header plus flat numpy arrays (or lists of bytes) out, and tensors in,
bytes out. Everything about a request's layout is checked before any tensor is built: header length within the
body, sizes adding up exactly to what follows the header, each size matching shape x element size, every BYTES
length prefix within its tensor. What the model accepts is inference_protocol's job."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from input_errors import InvalidInput, TooLarge

HEADER = "inference-header-content-length"  # as ASGI servers give header names: lower case
HEADER_NAME = "Inference-Header-Content-Length"
MEDIA_TYPE = "application/octet-stream"
# Fixed-size datatypes -> little-endian numpy dtype. BYTES is variable-sized, handled apart.
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in {
        "BOOL": "|b1",
        "UINT8": "|u1",
        "UINT16": "<u2",
        "UINT32": "<u4",
        "UINT64": "<u8",
        "INT8": "|i1",
        "INT16": "<i2",
        "INT32": "<i4",
        "INT64": "<i8",
        "FP16": "<f2",
        "FP32": "<f4",
        "FP64": "<f8",
    }.items()
}
DATATYPES = (*DTYPES, "BYTES")
_PREFIX = struct.Struct("<I")
# The header written before binary answers, encoded as asgi_json encodes JSON answers.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


# -- requests ------------------------------------------------------------------------------------------------


def split_body(body: bytes, declared: str) -> tuple[bytes, memoryview]:
    """The inference header's bytes, and the tensor bytes after it (a view: no copy of large tensors)."""
    if not declared.isdigit():
        raise InvalidInput(
            f"the {HEADER_NAME} header must be the length of the JSON inference header in bytes, "
            f"got {declared!r}"
        )
    length = int(declared)
    if length > len(body):
        raise InvalidInput(
            f"{HEADER_NAME} says the JSON inference header is {length} bytes, but the whole body is "
            f"{len(body)} bytes; expected the header followed by the tensors' bytes"
        )
    view = memoryview(body)
    return bytes(view[:length]), view[length:]


def attach_inputs(document: dict[str, Any], tensors: memoryview, max_elements: int) -> None:
    """Replaces each binary input's data with what its bytes hold: a flat little-endian numpy array, or a list
    of bytes for BYTES. Inputs without `binary_data_size` keep their JSON "data" (the protocol allows mixing).
    A BYTES input has at most `max_elements` elements (one per row), so reading its prefixes is bounded work."""
    inputs = document.get("inputs")
    binary: list[tuple[str, dict[str, Any], int]] = []
    for i, tensor in enumerate(inputs if isinstance(inputs, list) else []):
        if not isinstance(tensor, dict):
            continue  # inference_protocol says what an input must be
        size = _declared_size(tensor, _where(i, tensor), max_elements)
        if size is not None:
            binary.append((_where(i, tensor), tensor, size))
    total = sum(size for _, _, size in binary)
    if total != len(tensors):
        sizes = ", ".join(f"{where} {size}" for where, _, size in binary) or "no input has binary_data_size"
        raise InvalidInput(
            f"the body has {len(tensors)} bytes after the {HEADER_NAME} header, but the inputs' "
            f"parameters.binary_data_size add up to {total} ({sizes}); expected exactly the tensors' bytes"
        )
    offset = 0
    for where, tensor, size in binary:
        tensor["data"] = _decode(tensors[offset : offset + size], tensor, where)
        offset += size


def _declared_size(tensor: dict[str, Any], where: str, max_elements: int) -> int | None:
    parameters = tensor.get("parameters")
    if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if type(size) is not int or size < 0:
        raise InvalidInput(
            f"{where}: parameters.binary_data_size must be a number of bytes, got {json.dumps(size)}"
        )
    if "data" in tensor:
        raise InvalidInput(f'{where} has both "data" and parameters.binary_data_size; expected one of them')
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    if datatype not in DATATYPES:
        raise InvalidInput(
            f"{where}: datatype {json.dumps(datatype)} is not an Open Inference Protocol type; "
            f"expected one of {', '.join(DATATYPES)}"
        )
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInput(
            f"{where}: shape must be a list of sizes like [rows, features], got {json.dumps(shape)}"
        )
    elements = _product(shape)
    if datatype == "BYTES":
        if elements > max_elements:
            raise TooLarge(
                f"{where}: shape {shape} has {elements} BYTES elements; at most {max_elements} are accepted "
                "per request, split the batch"
            )
        if elements * _PREFIX.size > size:
            raise InvalidInput(
                f"{where}: shape {shape} has {elements} BYTES elements, each at least a 4-byte length, "
                f"but parameters.binary_data_size is only {size} bytes"
            )
    else:
        itemsize = DTYPES[datatype].itemsize
        if elements * itemsize != size:
            raise InvalidInput(
                f"{where}: parameters.binary_data_size is {size} bytes, but shape {shape} of {datatype} "
                f"takes {elements * itemsize} ({elements} elements of {itemsize} bytes)"
            )
    return size


def _decode(raw: memoryview, tensor: dict[str, Any], where: str) -> np.ndarray | list[bytes]:
    datatype = tensor["datatype"]
    if datatype != "BYTES":
        if datatype == "BOOL" and raw.nbytes and np.frombuffer(raw, dtype=np.uint8).max() > 1:
            raise InvalidInput(f"{where}: a BOOL element is a byte 0 or 1")
        return np.frombuffer(raw, dtype=DTYPES[datatype])
    elements, offset, end = _product(tensor["shape"]), 0, raw.nbytes
    values: list[bytes] = []
    for k in range(elements):
        if offset + _PREFIX.size > end:
            raise InvalidInput(
                f"{where}: BYTES element {k} has no room for its 4-byte length: {end - offset} bytes of "
                f"{end} are left; expected {elements} length-prefixed elements"
            )
        (length,) = _PREFIX.unpack_from(raw, offset)
        offset += _PREFIX.size
        if length > end - offset:
            raise InvalidInput(
                f"{where}: BYTES element {k} says it is {length} bytes, but only {end - offset} of the "
                f"input's {end} bytes are left"
            )
        values.append(bytes(raw[offset : offset + length]))
        offset += length
    if offset != end:
        raise InvalidInput(
            f"{where}: {end - offset} bytes are left after the {elements} BYTES elements of shape "
            f"{tensor['shape']}; expected parameters.binary_data_size to end with the last element"
        )
    return values


def _where(i: int, tensor: dict[str, Any]) -> str:
    name = tensor.get("name")
    return f"inputs[{i}] ({json.dumps(name)})" if isinstance(name, str) else f"inputs[{i}]"


def _product(shape: list[int]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


# -- answers -------------------------------------------------------------------------------------------------


def tensor_bytes(datatype: str, values: Any) -> bytes:
    """One output's bytes: numbers as little-endian `datatype`, BYTES as length-prefixed UTF-8 of each value."""
    if datatype == "BYTES":
        encoded = [v if isinstance(v, bytes) else str(v).encode() for v in values]
        return b"".join(_PREFIX.pack(len(e)) + e for e in encoded)
    return np.ascontiguousarray(values, dtype=DTYPES[datatype]).tobytes()


def frame(header: dict[str, Any], tensors: list[bytes]) -> tuple[bytes, int]:
    """The answer's body (JSON header, then the tensors) and the header's length for HEADER_NAME."""
    encoded = _ENCODER.encode(header).encode()
    return b"".join([encoded, *tensors]), len(encoded)
