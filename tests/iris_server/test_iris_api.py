"""The model store over real HTTP: versions, ETag downloads, aliases, deletes, and all it refuses."""

from __future__ import annotations

import hashlib
import http.client
import json

import pytest
import requests

from iris_client import NotFound, Rejected, Unavailable
from iris_samples import (
    joblib_compressed,
    onnx_model,
    pickled_estimator,
    skops_model,
    skops_with_untrusted_function,
)

pytestmark = pytest.mark.server


def _raw(iris, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """A request with the path sent exactly as written (requests would normalise dot segments)."""
    connection = http.client.HTTPConnection("127.0.0.1", iris.port, timeout=10)
    connection.request(
        method, path, body=body, headers={"Authorization": f"Bearer {iris.admin_token}", **(headers or {})}
    )
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, payload


def test_upload_list_get_download_round_trip(iris):
    admin = iris.admin
    data = onnx_model(seed=1)
    metadata = {
        "metrics": {"accuracy": 0.97},
        "params": {"C": 1.0},
        "dataset": "iris",
        "estimator": "SVC",
        "task": "classification",
        "classes": ["setosa", "versicolor", "virginica"],
        "features": 4,
        "framework": {"scikit-learn": "1.9.1"},
    }
    first = admin.upload("roundtrip", data, metadata=metadata)
    second = admin.upload("roundtrip", onnx_model(seed=2))
    assert (first.version, second.version) == (1, 2)
    assert first.sha256 == hashlib.sha256(data).hexdigest() and first.size == len(data)
    assert first.format == "onnx" and first.uploader == "admin" and first.created_at.endswith("Z")
    assert {k: v for k, v in first.metadata.items() if k != "artifact"} == metadata
    assert first.metadata["artifact"]["inputs"] == ["X"]

    assert [v.version for v in admin.list_versions("roundtrip")] == [1, 2]
    assert admin.get_version("roundtrip", 1) == first
    assert admin.get_version("roundtrip") == second
    artifact = admin.download("roundtrip", 1)
    assert artifact.data == data and artifact.version == first
    listed = {m["name"]: m for m in admin.list_models()}["roundtrip"]
    assert (listed["latest_version"], listed["version_count"]) == (2, 2)


def test_etag_answers_304_until_a_newer_version_lands(iris):
    admin = iris.admin
    admin.upload("etag", onnx_model(seed=10))
    current = admin.download("etag")
    assert admin.download("etag", etag=current.etag) is None
    raw = requests.get(
        f"{iris.url}/v1/models/etag/versions/latest/artifact",
        headers={"Authorization": f"Bearer {iris.admin_token}", "If-None-Match": f'"x", {current.etag}'},
    )
    assert raw.status_code == 304 and raw.content == b"" and raw.headers["ETag"] == current.etag
    newer = admin.upload("etag", onnx_model(seed=10))  # same bytes, new version: still a change
    fresh = admin.download("etag", etag=current.etag)
    assert fresh is not None and fresh.version.version == newer.version and fresh.etag != current.etag
    assert admin.download("etag", 1, etag=current.etag) is None  # pinned: version 1 did not change


def test_aliases_pin_and_roll_back(iris):
    admin = iris.admin
    for seed in (20, 21, 22):
        admin.upload("aliased", onnx_model(seed=seed))
    admin.set_alias("aliased", "production", 3)
    assert admin.download("aliased", "production").version.version == 3
    admin.set_alias("aliased", "production", 2)  # rollback
    assert admin.get_version("aliased", "production").version == 2
    with pytest.raises(Rejected) as conflict:
        admin.delete_version("aliased", 2)
    assert conflict.value.status == 409 and "production" in conflict.value.message
    with pytest.raises(NotFound):
        admin.set_alias("aliased", "production", 99)
    for bad_alias in ("latest", "42"):
        with pytest.raises(Rejected):
            admin.set_alias("aliased", bad_alias, 1)
    admin.delete_alias("aliased", "production")
    with pytest.raises(NotFound):
        admin.get_version("aliased", "production")


def test_deleted_versions_are_gone_and_their_numbers_never_return(iris):
    admin = iris.admin
    for seed in (30, 31):
        admin.upload("deleting", onnx_model(seed=seed))
    admin.delete_version("deleting", 2)
    with pytest.raises(NotFound):
        admin.download("deleting", 2)
    with pytest.raises(NotFound):
        admin.delete_version("deleting", 2)
    assert admin.upload("deleting", onnx_model(seed=32)).version == 3
    assert [v.version for v in admin.list_versions("deleting")] == [1, 3]


def test_skops_is_accepted_and_untrusted_skops_refused(iris):
    admin = iris.admin
    version = admin.upload("skopsy", skops_model(), format="skops", metadata={"task": "classification"})
    assert version.format == "skops"
    assert admin.download("skopsy").data[:4] == b"PK\x03\x04"
    with pytest.raises(Rejected) as refused:
        admin.upload("skopsy", skops_with_untrusted_function(), format="skops")
    assert refused.value.status == 422 and "system" in refused.value.message


@pytest.mark.parametrize(
    "payload,fmt",
    [
        (pickled_estimator, "onnx"),
        (joblib_compressed, "onnx"),
        (pickled_estimator, "pickle"),
        (pickled_estimator, "joblib"),
        (pickled_estimator, "skops"),
    ],
)
def test_pickles_are_refused_with_a_hint_to_export(iris, payload, fmt):
    with pytest.raises(Rejected) as refused:
        iris.admin.upload("pickles", payload(), format=fmt)
    assert refused.value.status == 415
    assert "ONNX" in refused.value.message
    with pytest.raises(NotFound):
        iris.admin.list_versions("pickles")  # nothing was created, not even the model


def test_invalid_onnx_and_unknown_formats_are_refused(iris):
    with pytest.raises(Rejected) as invalid:
        iris.admin.upload("refusals", b"\x08\x07not really onnx")
    assert invalid.value.status == 422 and "not a valid ONNX model" in invalid.value.message
    with pytest.raises(Rejected) as unknown:
        iris.admin.upload("refusals", onnx_model(seed=40), format="savedmodel")
    assert unknown.value.status == 415 and "onnx, skops" in unknown.value.message


def test_oversized_uploads_get_413_and_leave_nothing(iris):
    too_big = onnx_model(seed=41, floats=600_000)  # 2.4 MB > the fixture's 2 MiB limit
    with pytest.raises(Rejected) as refused:
        iris.admin.upload("big", too_big)
    assert refused.value.status == 413 and "limit" in refused.value.message

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for start in range(0, len(too_big), 256 * 1024):
            yield too_big[start : start + 256 * 1024]

    streamed = requests.post(
        f"{iris.url}/v1/models/big/versions",
        data=chunks(),
        headers={"Authorization": f"Bearer {iris.admin_token}", "Content-Type": "application/octet-stream"},
    )
    assert streamed.status_code == 413 and streamed.json()["error"] == "too_large"
    assert list((iris.data_dir / "staging").iterdir()) == []
    assert "big" not in {m["name"] for m in iris.admin.list_models()}


def test_checksum_mismatch_is_refused(iris):
    data = onnx_model(seed=42)
    response = requests.post(
        f"{iris.url}/v1/models/checksum/versions",
        data=data,
        headers={
            "Authorization": f"Bearer {iris.admin_token}",
            "Content-Type": "application/octet-stream",
            "X-Content-SHA256": hashlib.sha256(b"other bytes").hexdigest(),
        },
    )
    assert response.status_code == 400 and "sha256 mismatch" in response.json()["message"]


def test_retried_upload_with_the_same_idempotency_key_creates_one_version(iris):
    data = onnx_model(seed=43)
    headers = {
        "Authorization": f"Bearer {iris.admin_token}",
        "Content-Type": "application/octet-stream",
        "Idempotency-Key": "retry-1",
        "X-Content-SHA256": hashlib.sha256(data).hexdigest(),
    }
    url = f"{iris.url}/v1/models/idempotent/versions"
    first, second = (
        requests.post(url, data=data, headers=headers),
        requests.post(url, data=data, headers=headers),
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    different = onnx_model(seed=44)
    reused = requests.post(
        url, data=different, headers={**headers, "X-Content-SHA256": hashlib.sha256(different).hexdigest()}
    )
    assert reused.status_code == 422 and "Idempotency-Key" in reused.json()["message"]
    assert len(iris.admin.list_versions("idempotent")) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/../etc/versions",
        "/v1/models/..%2F..%2Fetc%2Fpasswd/versions",
        "/v1/models/%2e%2e/versions",
        "/v1/models/iris/../../../etc/passwd",
        "/v1/models/Iris/versions",
        "/v1/models/iris_v2/versions",
        "/v1/models/-iris/versions",
        "/v1/models/" + "a" * 64 + "/versions",
        "/v1/models/iris%00/versions",
        "/v1/models/./versions",
    ],
)
def test_path_tricks_and_bad_names_get_422(iris, path):
    for method, body in (("GET", None), ("POST", onnx_model(seed=45))):
        status, payload = _raw(iris, method, path, body, {"Content-Type": "application/octet-stream"})
        assert status == 422, (method, path, payload)
        assert json.loads(payload)["error"] == "invalid"
    assert not any(key.startswith((".", "etc")) for key in iris.blob_keys())


def test_bad_version_references_and_metadata_get_422(iris):
    iris.admin.upload("refs", onnx_model(seed=46))
    for ref in ("0", "-1", "Prod", "1.5"):
        status, payload = _raw(iris, "GET", f"/v1/models/refs/versions/{ref}")
        assert status == 422, ref
    for metadata in ("not json", "[1, 2]", json.dumps({"artifact": {}})):
        status, payload = _raw(
            iris,
            "POST",
            "/v1/models/refs/versions",
            onnx_model(seed=47),
            {"Content-Type": "application/octet-stream", "X-Model-Metadata": metadata},
        )
        assert status == 422 and "X-Model-Metadata" in json.loads(payload)["message"]
    status, payload = _raw(
        iris, "POST", "/v1/models/refs/versions", b"", {"Content-Type": "application/octet-stream"}
    )
    assert status == 422 and "empty" in json.loads(payload)["message"]


def test_health_openapi_and_metrics(iris):
    assert requests.get(f"{iris.url}/healthz").json() == {"status": "ok"}
    assert requests.get(f"{iris.url}/readyz").json() == {"status": "ready"}
    assert iris.admin.health()
    spec = requests.get(f"{iris.url}/openapi.json").json()
    assert "/v1/models/{model}/versions/{ref}/artifact" in spec["paths"]
    metrics = requests.get(f"{iris.url}/metrics")
    assert metrics.status_code == 200
    assert (
        'iris_http_requests_total{method="GET",route="/v1/models/{model}/versions/{ref}/artifact"'
        in metrics.text
    )
    assert "roundtrip" not in metrics.text  # labels are route templates, never model names


def test_broken_storage_is_a_clear_503_and_heals_without_a_restart(iris_factory):
    server = iris_factory().start()
    staging = server.data_dir / "staging"
    staging.rmdir()
    staging.write_bytes(b"")  # a file where the staging directory should be: every upload now fails to stage
    client = server.client(retries=0)
    with pytest.raises(Unavailable) as unavailable:
        client.upload("healing", onnx_model(seed=800))
    assert unavailable.value.status == 503 and "storage unavailable" in unavailable.value.message
    not_ready = requests.get(f"{server.url}/readyz")
    assert not_ready.status_code == 503 and "not writable" in not_ready.json()["message"]

    staging.unlink()
    staging.mkdir()
    assert requests.get(f"{server.url}/readyz").status_code == 200
    assert client.upload("healing", onnx_model(seed=800)).version == 1
