"""What only the S3 artifact backend has, against a real SeaweedFS: multipart uploads, the digest checked by the
object store, a crash mid-upload swept up, an outage answered with 503s and recovered from without a restart,
path-style and virtual-host addressing, credentials from mounted Secret files."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests
from iris_client import ModelStoreError, NotFound, Unavailable
from iris_samples import onnx_model
from iris_server.artifact_config import ArtifactSettings
from iris_server.catalog import Catalog
from iris_server.recovery import sweep
from iris_server.storage import BackendUnavailable, StagedArtifact, Stager
from iris_stores import IrisServer, S3Bucket, StoreBackends
from mlfunctions_harness import seaweedfs
from mlfunctions_harness.processes import wait_for

pytestmark = pytest.mark.server

PART = 5 * 1024 * 1024  # S3's smallest part: a model of a few MB already goes up in several
MULTIPART_ENV = {
    "IRIS_S3_MULTIPART_THRESHOLD_BYTES": str(PART),
    "IRIS_S3_MULTIPART_PART_BYTES": str(PART),
}


@pytest.fixture
def s3_store(tmp_path, s3_bucket):
    """Build (not start) S3-backed stores on the session's SeaweedFS; stopped at the end."""
    servers: list[IrisServer] = []

    def make(s3: S3Bucket | None = None, **options) -> IrisServer:
        server = IrisServer(
            data_dir=tmp_path / f"s{len(servers)}" / "store",
            admin_token=f"admin-{secrets.token_hex(16)}",
            backends=StoreBackends("s3"),
            s3=s3 or s3_bucket,
            options=options,
        )
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def _backend(s3: S3Bucket, prefix: str, **settings):
    return ArtifactSettings(
        artifact_backend="s3",
        s3_endpoint_url=s3.server.endpoint,
        s3_bucket=s3.bucket,
        s3_prefix=prefix,
        s3_access_key_id=s3.server.access_key,
        s3_secret_access_key=s3.server.secret_key,
        **settings,
    ).open_backend(Path("/nonexistent"))


def _stage(tmp_path: Path, data: bytes) -> StagedArtifact:
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    stager = Stager(staging, 1 << 30)
    stager.write(data)
    return stager.finish()


def test_a_model_larger_than_a_part_goes_up_in_parts_and_comes_back_whole(s3_store, s3_bucket):
    server = s3_store(max_upload_bytes=64 * 1024 * 1024, extra_env=MULTIPART_ENV).start()
    data = onnx_model(seed=1600, floats=3_000_000)  # 12 MB: three parts
    version = server.admin.upload("large", data)
    artifact = server.admin.download("large")
    assert artifact.data == data and version.sha256 == hashlib.sha256(data).hexdigest()
    (key,) = server.blob_keys()
    stored = s3_bucket.server.client().head_object(
        Bucket=s3_bucket.bucket, Key=S3Bucket.prefix_for(server.data_dir) + key, ChecksumMode="ENABLED"
    )
    # A composite checksum of three parts: the store sent every part's SHA-256, and S3 checked each one.
    assert stored["ChecksumSHA256"].endswith("-3") and stored["ContentLength"] == len(data)
    assert stored["Metadata"]["sha256"] == version.sha256


def test_the_object_store_refuses_bytes_that_do_not_hash_to_the_digest(tmp_path, s3_bucket):
    backend = _backend(s3_bucket, f"digest-{uuid.uuid4().hex[:8]}")
    staged = _stage(tmp_path, b"the bytes that were staged")
    forged = StagedArtifact(staged.path, staged.size, hashlib.sha256(b"other bytes").hexdigest())
    with pytest.raises(BackendUnavailable, match="BadDigest"):
        backend.commit(forged, "digest", "onnx")
    assert list(backend.entries()) == []  # no object was created
    key = backend.commit(staged, "digest", "onnx")
    with backend.open(key) as stream:
        assert stream.read() == b"the bytes that were staged"


def test_sigkill_mid_multipart_upload_leaves_no_version_and_the_sweep_collects_the_rest(s3_store, s3_bucket):
    server = s3_store(max_upload_bytes=128 * 1024 * 1024, extra_env=MULTIPART_ENV).start()
    kept = server.admin.upload("crash-s3", onnx_model(seed=1700))
    client = s3_bucket.server.client()
    prefix = S3Bucket.prefix_for(server.data_dir)
    # What a crash between a blob's upload and its catalog row leaves, and what is not the store's at all.
    orphan = f"{prefix}crash-s3/{uuid.uuid4().hex}.onnx"
    foreign = f"{prefix}notes/readme.txt"
    for key in (orphan, foreign):
        client.put_object(Bucket=s3_bucket.bucket, Key=key, Body=b"not a version")

    body = onnx_model(seed=1701, floats=12_000_000)  # 48 MB: ten parts, a second or more on the wire
    outcome: list[object] = []

    def upload() -> None:
        try:
            outcome.append(server.client(retries=0, timeout=120).upload("crash-s3", body))
        except ModelStoreError as error:  # the server died under it: never acknowledged
            outcome.append(error)

    uploader = threading.Thread(target=upload)
    uploader.start()

    def in_progress() -> list:
        return client.list_multipart_uploads(Bucket=s3_bucket.bucket, Prefix=prefix).get("Uploads", [])

    wait_for(in_progress, 60, "the multipart upload to start", interval=0.01)
    server.kill()
    uploader.join(30)
    assert isinstance(outcome[0], ModelStoreError), "the upload was acknowledged although the server died"
    assert in_progress(), "the killed upload left no multipart upload behind: the test proves nothing"

    server.start()
    assert [v.version for v in server.admin.list_versions("crash-s3")] == [kept.version]
    # Older than the grace period, the abandoned upload and the orphan go; the foreign object stays.
    wait_for(lambda: not in_progress(), 30, "the abandoned multipart upload to be aborted")
    wait_for(lambda: len(server.blob_keys()) == 2, 30, "the orphan to be swept")
    listed = {
        item["Key"] for item in client.list_objects_v2(Bucket=s3_bucket.bucket, Prefix=prefix)["Contents"]
    }
    assert foreign in listed and orphan not in listed
    assert server.admin.download("crash-s3").version.version == kept.version
    assert server.admin.upload("crash-s3", body).version == kept.version + 1


def test_an_outage_is_a_503_naming_the_store_and_readiness_recovers_without_a_restart(s3_store, tmp_path):
    own = seaweedfs.start(tmp_path / "own-seaweedfs")  # this test stops it: not the session's
    try:
        own.create_bucket("outage")
        server = s3_store(S3Bucket(own, "outage")).start()
        client = server.client(retries=0)
        first = client.upload("outage", onnx_model(seed=1800))
        warm = client.download("outage")  # what a predict function holds
        doomed = client.upload("outage-doomed", onnx_model(seed=1802))
        own.stop()

        named = f"the artifact store (S3 at {own.endpoint}, bucket outage) is unavailable"
        not_ready = requests.get(f"{server.url}/readyz", timeout=10)
        assert not_ready.status_code == 503
        assert not_ready.json()["error"] == "artifact_store_unavailable"
        assert not_ready.json()["message"].startswith(named)
        for attempt in (lambda: client.download("outage"), lambda: client.upload("outage", onnx_model(1801))):
            with pytest.raises(Unavailable) as unavailable:
                attempt()
            assert unavailable.value.status == 503 and named in unavailable.value.message
            assert unavailable.value.code == "artifact_store_unavailable"
        # What needs only the catalog still works: metadata, and the 304 a warm function asks for.
        assert [v.version for v in client.list_versions("outage")] == [first.version]
        assert client.download("outage", etag=warm.etag) is None
        assert list((server.data_dir / "staging").iterdir()) == []  # the failed upload left nothing
        # A delete is the catalog's decision: done (204), its blob left for the sweep to collect later.
        client.delete_version("outage-doomed", doomed.version)
        with pytest.raises(NotFound):
            client.get_version("outage-doomed", doomed.version)

        own.start()  # same ports, same data
        wait_for(lambda: requests.get(f"{server.url}/readyz", timeout=10).status_code == 200, 60, "readiness")
        assert client.download("outage").data == onnx_model(seed=1800)
        assert client.upload("outage", onnx_model(seed=1801)).version == first.version + 1
        wait_for(lambda: len(server.blob_keys()) == 2, 30, "the deleted version's blob to be swept")
    finally:
        own.stop()


@pytest.mark.parametrize("style", ["path", "virtual"])
def test_path_style_and_virtual_host_addressing(tmp_path, s3_bucket, monkeypatch, style):
    """Virtual-host style names the bucket in the host name (<bucket>.s3.mlfunctions.test); no resolver here
    knows that name, so the request goes through an HTTP proxy, which is SeaweedFS itself: it reads the bucket
    from the Host header (-s3.domainName). Path style asks 127.0.0.1 for /<bucket>/<key>."""
    endpoint = s3_bucket.server.endpoint
    if style == "virtual":
        endpoint = f"http://{seaweedfs.VIRTUAL_HOST_DOMAIN}:{s3_bucket.server.ports.s3}"
        monkeypatch.setenv("HTTP_PROXY", s3_bucket.server.endpoint)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
    prefix = f"style-{style}-{uuid.uuid4().hex[:8]}"
    backend = ArtifactSettings(
        artifact_backend="s3",
        s3_endpoint_url=endpoint,
        s3_bucket=s3_bucket.bucket,
        s3_prefix=prefix,
        s3_addressing_style=style,
        s3_access_key_id=s3_bucket.server.access_key,
        s3_secret_access_key=s3_bucket.server.secret_key,
    ).open_backend(Path("/nonexistent"))
    urls: list[str] = []
    backend._client.meta.events.register("before-send.s3", lambda request, **_: urls.append(request.url))

    key = backend.commit(_stage(tmp_path, b"addressed"), "style", "onnx")
    with backend.open(key) as stream:
        assert stream.read() == b"addressed"
    expected = (
        f"http://{s3_bucket.bucket}.{seaweedfs.VIRTUAL_HOST_DOMAIN}:{s3_bucket.server.ports.s3}/{prefix}/{key}"
        if style == "virtual"
        else f"{s3_bucket.server.endpoint}/{s3_bucket.bucket}/{prefix}/{key}"
    )
    assert expected in urls, urls
    # The object is where a path-style client of the same bucket finds it.
    stored = s3_bucket.server.client().get_object(Bucket=s3_bucket.bucket, Key=f"{prefix}/{key}")
    assert stored["Body"].read() == b"addressed"


def test_credentials_from_mounted_secret_files(s3_store, s3_bucket, tmp_path):
    key_file, secret_file = tmp_path / "access-key-id", tmp_path / "secret-access-key"
    key_file.write_text(s3_bucket.server.access_key + "\n")  # Secrets often end with a newline
    secret_file.write_text(s3_bucket.server.secret_key + "\n")
    server = s3_store(
        extra_env={
            "IRIS_S3_ACCESS_KEY_ID": "wrong-key",  # the files win
            "IRIS_S3_SECRET_ACCESS_KEY": "wrong-secret",
            "IRIS_S3_ACCESS_KEY_ID_FILE": str(key_file),
            "IRIS_S3_SECRET_ACCESS_KEY_FILE": str(secret_file),
        }
    ).start()
    assert server.admin.upload("secret-files", onnx_model(seed=1900)).version == 1


def _run_without_serving(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("IRIS_")}
    return subprocess.run(
        [sys.executable, "-m", "iris_server"],
        env={
            **base,
            "IRIS_DATA_DIR": str(tmp_path / "store"),
            "IRIS_PORT": "0",
            "IRIS_ADMIN_TOKEN": "a-long-enough-admin-token",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"IRIS_ARTIFACT_BACKEND": "s3"}, "IRIS_S3_BUCKET"),
        (
            {"IRIS_ARTIFACT_BACKEND": "s3", "IRIS_S3_BUCKET": "b", "IRIS_S3_ENDPOINT_URL": "s3.local"},
            "http://",
        ),
        (
            {
                "IRIS_ARTIFACT_BACKEND": "s3",
                "IRIS_S3_BUCKET": "b",
                "IRIS_S3_ACCESS_KEY_ID_FILE": "/nonexistent",
            },
            "IRIS_S3_ACCESS_KEY_ID_FILE",
        ),
        (
            {"IRIS_ARTIFACT_BACKEND": "s3", "IRIS_S3_BUCKET": "b", "IRIS_S3_ACCESS_KEY_ID": "only-half"},
            "both",
        ),
        ({"IRIS_ARTIFACT_BACKEND": "tape"}, "artifact_backend"),
    ],
)
def test_refuses_an_incomplete_s3_configuration(env, says, tmp_path):
    result = _run_without_serving(env, tmp_path)
    assert result.returncode == 2 and says in result.stderr, result.stderr


def test_sweep_spares_young_orphans_and_other_stores_keys(tmp_path, s3_bucket):
    """The grace period: a blob another replica has just written, not yet in the catalog, is left alone."""
    backend = _backend(s3_bucket, f"grace-{uuid.uuid4().hex[:8]}")
    neighbour = _backend(s3_bucket, f"grace-{uuid.uuid4().hex[:8]}")
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    young = backend.commit(_stage(tmp_path, b"just uploaded elsewhere"), "grace", "onnx")
    theirs = neighbour.commit(_stage(tmp_path, b"another store's"), "grace", "onnx")
    assert sweep(catalog, backend, grace_seconds=3600).orphans_removed == 0
    assert [key for key, _ in backend.entries()] == [young]
    assert sweep(catalog, backend, grace_seconds=0).orphans_removed == 1
    assert list(backend.entries()) == [] and [key for key, _ in neighbour.entries()] == [theirs]
