"""Concurrent uploads and SIGKILL crashes of a real server process: nothing lost, nothing half-written."""

from __future__ import annotations

import hashlib
import random
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from iris_client import ModelStoreError, NotFound
from iris_samples import onnx_model
from mlfunctions_harness.processes import wait_for

pytestmark = pytest.mark.server


def _assert_consistent(server, model: str, acknowledged: dict[int, str]) -> None:
    """Acknowledged versions are listed and intact, listed ones download with their sha256, no stray files."""
    admin = server.client(retries=0)
    try:
        listed = {v.version: v for v in admin.list_versions(model)}
    except NotFound:  # killed before any upload committed: the model was never created
        listed = {}
    for number, sha256 in acknowledged.items():
        assert number in listed, f"acknowledged version {number} was lost"
        assert listed[number].sha256 == sha256
    for number, version in listed.items():
        artifact = admin.download(model, number)
        assert hashlib.sha256(artifact.data).hexdigest() == version.sha256 == artifact.version.sha256
    assert list((server.data_dir / "staging").iterdir()) == []
    # The filesystem is swept at start-up; a shared object store by the periodic sweep once an unreferenced
    # blob is older than the grace period (recovery.py), so give that a few sweeps.
    wait_for(
        lambda: len(server.blob_keys()) == len(listed), 30, "every blob no listed version owns to be swept"
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_twenty_concurrent_uploads_get_twenty_distinct_versions(iris_factory, workers):
    server = iris_factory(workers=workers).start()
    payloads = [onnx_model(seed=500 + i, floats=2000) for i in range(20)]
    barrier = threading.Barrier(20)

    def upload(data: bytes):
        client = server.client()
        barrier.wait()
        return client.upload("concurrent", data)

    with ThreadPoolExecutor(20) as pool:
        versions = list(pool.map(upload, payloads))
    assert sorted(v.version for v in versions) == list(range(1, 21))
    for version, data in zip(versions, payloads, strict=True):
        assert version.sha256 == hashlib.sha256(data).hexdigest()
    _assert_consistent(server, "concurrent", {v.version: v.sha256 for v in versions})


def test_sigkill_mid_upload_leaves_no_partial_version(iris_factory):
    server = iris_factory().start()
    acknowledged = {
        v.version: v.sha256 for v in (server.admin.upload("crash", onnx_model(seed=s)) for s in range(3))
    }
    body = onnx_model(seed=99, floats=250_000)  # ~1 MB
    with socket.create_connection(("127.0.0.1", server.port)) as half_upload:
        half_upload.sendall(
            (
                "POST /v1/models/crash/versions HTTP/1.1\r\nHost: iris\r\n"
                f"Authorization: Bearer {server.admin_token}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[: len(body) // 2]
        )
        # The server is writing the partial upload once it is in the staging area.
        staging = server.data_dir / "staging"
        wait_for(lambda: any(staging.iterdir()), 10, "the upload in the staging area", interval=0.01)
        server.kill()
    server.start()
    _assert_consistent(server, "crash", acknowledged)
    assert sorted(v.version for v in server.admin.list_versions("crash")) == [1, 2, 3]
    assert server.admin.upload("crash", body).version == 4


def test_sigkill_under_upload_load_loses_nothing_acknowledged(iris_factory):
    server = iris_factory().start()
    acknowledged: dict[int, str] = {}
    lock = threading.Lock()
    rng = random.Random(7)
    for round_number in range(3):
        stop = threading.Event()

        def keep_uploading(worker: int, round_number: int, stop: threading.Event) -> None:
            client = server.client(retries=0, timeout=60)
            seed = 0
            while not stop.is_set():
                seed += 1
                data = onnx_model(
                    seed=round_number * 100_000 + worker * 1000 + seed, floats=rng.choice([10, 60_000])
                )
                try:
                    version = client.upload("load", data)
                except ModelStoreError:
                    return  # the server died under us: this upload was never acknowledged
                with lock:
                    acknowledged[version.version] = version.sha256

        threads = [threading.Thread(target=keep_uploading, args=(w, round_number, stop)) for w in range(4)]
        before = len(acknowledged)
        for thread in threads:
            thread.start()
        # Kill after a random number of further acknowledgements (at least 2: uploads are flowing), with the
        # other workers' uploads somewhere in flight.
        more = rng.randint(2, 8)
        wait_for(lambda: len(acknowledged) >= before + more, 60, f"{more} acknowledged uploads", 0.005)
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(10)
        server.start()
        _assert_consistent(server, "load", acknowledged)
    assert len(acknowledged) >= 6, "the load generator barely uploaded anything; the test proves little"
