"""Artifact validation on real files: ONNX and skops accepted, pickles and lookalikes refused."""

from __future__ import annotations

import pytest

from iris_samples import (
    joblib_compressed,
    onnx_model,
    pickled_estimator,
    skops_model,
    skops_with_untrusted_function,
)
from iris_server.archives import ArchiveLimits
from iris_server.artifacts import ArtifactRefused, Refusal, check_format_name, inspect

LIMITS = ArchiveLimits(max_members=10_000, max_bytes=1 << 30, max_ratio=100.0)


def _inspect(tmp_path, data: bytes, fmt: str):
    path = tmp_path / "artifact"
    path.write_bytes(data)
    return inspect(path, fmt, LIMITS)


def test_onnx_is_accepted_and_described(tmp_path):
    details = _inspect(tmp_path, onnx_model(seed=1), "onnx").details
    assert details["inputs"] == ["X"] and details["outputs"] == ["Y"]
    assert details["opset"] == {"ai.onnx": 17}
    assert details["producer"] == "iris-tests"


def test_skops_estimator_is_accepted(tmp_path):
    data = skops_model()
    details = _inspect(tmp_path, data, "skops").details
    assert isinstance(details["skops_types_beyond_defaults"], list)
    assert 0 < details["inflated_bytes"] <= len(data)  # skops stores its members uncompressed


def test_skops_with_a_function_outside_sklearn_is_refused(tmp_path):
    with pytest.raises(ArtifactRefused) as refused:
        _inspect(tmp_path, skops_with_untrusted_function(), "skops")
    assert refused.value.reason is Refusal.INVALID
    assert "system" in refused.value.message


@pytest.mark.parametrize("fmt", ["onnx", "skops"])
@pytest.mark.parametrize("payload", [pickled_estimator, joblib_compressed], ids=["pickle", "joblib"])
def test_pickles_are_refused_whatever_format_they_claim(tmp_path, fmt, payload):
    with pytest.raises(ArtifactRefused) as refused:
        _inspect(tmp_path, payload(), fmt)
    assert refused.value.reason is Refusal.UNSAFE_FORMAT
    assert "ONNX" in refused.value.message


@pytest.mark.parametrize("fmt", ["pickle", "joblib", "PKL"])
def test_pickle_formats_are_refused_by_name(fmt):
    with pytest.raises(ArtifactRefused) as refused:
        check_format_name(fmt)
    assert refused.value.reason is Refusal.UNSAFE_FORMAT


def test_unknown_formats_are_unsupported():
    with pytest.raises(ArtifactRefused) as refused:
        check_format_name("tensorflow")
    assert refused.value.reason is Refusal.UNSUPPORTED_FORMAT


@pytest.mark.parametrize(
    "data,fmt",
    [
        (b"definitely not protobuf \xff\xff\xff", "onnx"),
        (onnx_model(seed=2)[:-10], "onnx"),  # truncated
        (onnx_model(seed=3), "skops"),  # right bytes, wrong claim
        (b"PK\x03\x04 not really a zip", "skops"),
    ],
    ids=["garbage", "truncated-onnx", "onnx-as-skops", "broken-zip"],
)
def test_invalid_artifacts_are_refused_as_invalid(tmp_path, data, fmt):
    with pytest.raises(ArtifactRefused) as refused:
        _inspect(tmp_path, data, fmt)
    assert refused.value.reason is Refusal.INVALID


@pytest.mark.parametrize("location", ["weights.bin", "../../../etc/passwd"])
def test_onnx_with_external_data_is_refused(tmp_path, location):
    import onnx
    from onnx.external_data_helper import set_external_data

    model = onnx.load_model_from_string(onnx_model(seed=4))
    tensor = model.graph.initializer[0]
    set_external_data(tensor, location=location)
    tensor.ClearField("raw_data")
    with pytest.raises(ArtifactRefused) as refused:
        _inspect(tmp_path, model.SerializeToString(), "onnx")
    assert refused.value.reason is Refusal.INVALID
    assert "external data" in refused.value.message


def test_archive_limits_are_read_from_the_directory(tmp_path):
    import io
    import zipfile

    from iris_server.archives import RATIO_FLOOR_BYTES, ArchiveRefused, check_zip

    def archive(members: dict[str, bytes]) -> object:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
            for name, data in members.items():
                zipped.writestr(name, data)
        path = tmp_path / f"{len(members)}-{sum(map(len, members.values()))}.zip"
        path.write_bytes(buffer.getvalue())
        return path

    small = archive({"schema.json": b" " * (RATIO_FLOOR_BYTES - 1)})  # compresses 100s of times: exempt
    assert check_zip(small, LIMITS) == RATIO_FLOOR_BYTES - 1
    with pytest.raises(ArchiveRefused, match="inflates"):
        check_zip(archive({"big.npy": b"\0" * (RATIO_FLOOR_BYTES * 4)}), LIMITS)
    with pytest.raises(ArchiveRefused, match="3 members"):
        check_zip(archive({"a": b"", "b": b"", "c": b""}), ArchiveLimits(2, 1 << 30, 100.0))
    with pytest.raises(ArchiveRefused, match="limit of 10 bytes"):
        check_zip(archive({"a": b"x" * 6, "b": b"y" * 6}), ArchiveLimits(10, 10, 100.0))
