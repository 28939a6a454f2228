"""Unit tests of the checks made before an upload's body is read, and of its metadata header."""

from __future__ import annotations

import json

import pytest

from iris_server.errors import ApiError
from iris_server.uploads import MAX_METADATA_BYTES, parse_metadata, preflight


def _status(call) -> int:
    with pytest.raises(ApiError) as refused:
        call()
    return refused.value.status


def test_preflight_accepts_raw_bodies_of_safe_formats_within_the_limit():
    preflight("onnx", "application/octet-stream", "100", 100)
    preflight("skops", None, None, 100)  # chunked, no declared type: checked while streaming instead
    preflight("onnx", "Application/Octet-Stream; charset=binary", "", 100)


def test_preflight_refusals_and_their_statuses():
    assert _status(lambda: preflight("pickle", None, None, 100)) == 415
    assert _status(lambda: preflight("h5", None, None, 100)) == 415
    assert _status(lambda: preflight("onnx", "multipart/form-data; boundary=x", None, 100)) == 415
    assert _status(lambda: preflight("onnx", "application/octet-stream", "101", 100)) == 413


def test_metadata_must_be_a_small_json_object_without_reserved_keys():
    assert parse_metadata(None) == {} and parse_metadata("") == {}
    assert parse_metadata('{"metrics": {"accuracy": 0.9}}') == {"metrics": {"accuracy": 0.9}}
    for bad in ("nope", "[]", "3", '{"artifact": 1}', json.dumps({"x": "y" * MAX_METADATA_BYTES})):
        assert _status(lambda bad=bad: parse_metadata(bad)) == 422
