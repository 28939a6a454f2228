"""The shared client against a real server, through a misbehaving proxy and with the server down."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from iris_client import ModelStoreClient, Unavailable
from iris_samples import onnx_model
from mlfunctions_harness.processes import free_port

pytestmark = pytest.mark.server

PROXY = Path(__file__).with_name("iris_flaky_proxy.py")


@pytest.fixture
def flaky_proxy(iris):
    """flaky_proxy(**faults) -> base URL of a proxy to the module's server that injects the given faults."""
    processes = []

    def start(drop_post_responses: int = 0, answer_503: int = 0, cut_downloads: int = 0) -> str:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                str(PROXY),
                str(port),
                str(iris.port),
                "--drop-post-responses",
                str(drop_post_responses),
                "--answer-503",
                str(answer_503),
                "--cut-downloads",
                str(cut_downloads),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        assert process.stdout.readline().strip() == "ready"
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        process.kill()
        process.wait()


def test_upload_whose_answer_was_lost_is_retried_without_a_duplicate(iris, flaky_proxy):
    url = flaky_proxy(drop_post_responses=2)
    client = ModelStoreClient(url, iris.admin_token, retries=3, backoff=0.05)
    version = client.upload("lost-answer", onnx_model(seed=600))
    assert version.version == 1
    assert [v.version for v in iris.admin.list_versions("lost-answer")] == [1]


def test_5xx_is_retried_then_reported_as_unavailable(iris, flaky_proxy):
    iris.admin.upload("flaky", onnx_model(seed=601))
    patient = ModelStoreClient(flaky_proxy(answer_503=2), iris.admin_token, retries=3, backoff=0.01)
    assert patient.get_version("flaky").version == 1
    impatient = ModelStoreClient(flaky_proxy(answer_503=5), iris.admin_token, retries=1, backoff=0.01)
    with pytest.raises(Unavailable) as unavailable:
        impatient.download("flaky")
    assert unavailable.value.status == 503 and "injected by proxy" in unavailable.value.message


def test_token_creation_is_not_blindly_retried(iris, flaky_proxy):
    client = ModelStoreClient(flaky_proxy(answer_503=1), iris.admin_token, retries=3, backoff=0.01)
    with pytest.raises(Unavailable):
        client.create_token(["x"], ["read"])  # a second attempt would have succeeded: there was none


def test_store_down_then_up_needs_no_client_restart(iris_factory):
    server = iris_factory()
    server.url = f"http://127.0.0.1:{free_port()}"  # reserve the address the server will come up on
    client = ModelStoreClient(server.url, server.admin_token, timeout=2, retries=2, backoff=0.01)
    assert client.health() is False
    started = time.monotonic()
    with pytest.raises(Unavailable) as down:
        client.list_models()
    assert down.value.status is None and "unreachable" in down.value.message
    assert time.monotonic() - started < 5
    server.start()
    assert client.health() is True
    assert client.list_models() == []


def test_download_is_etag_aware_and_checks_integrity(iris):
    first = iris.admin.upload("client-etag", onnx_model(seed=602))
    artifact = iris.admin.download("client-etag")
    assert artifact.version == first
    assert iris.admin.download("client-etag", etag=artifact.etag) is None
    assert iris.admin.download("client-etag", first.version, etag='"stale"').data == artifact.data


def test_secrets_stay_out_of_reprs(iris):
    issued = iris.admin.create_token(["x"], ["read"])
    assert issued.token not in repr(issued)
    assert iris.admin_token not in repr(iris.admin)


def test_download_cut_off_mid_body_is_fetched_again(iris, flaky_proxy):
    data = onnx_model(seed=603, floats=250_000)  # 1 MB: the proxy cuts it after 64 KiB
    iris.admin.upload("cut-off", data)
    patient = ModelStoreClient(flaky_proxy(cut_downloads=2), iris.admin_token, retries=3, backoff=0.01)
    assert patient.download("cut-off").data == data
    impatient = ModelStoreClient(flaky_proxy(cut_downloads=5), iris.admin_token, retries=1, backoff=0.01)
    with pytest.raises(Unavailable, match="interrupted"):
        impatient.download("cut-off")
