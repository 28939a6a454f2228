"""Several iris-server processes on one real PostgreSQL, as replicas behind one Service: concurrent uploads spread
over them get distinct, gap-free versions; a catalog database that goes away is a 503 naming it and an unready
store, and the store recovers by itself when the database is back.

The replicas share one data dir, standing in for the artifact storage replicas share (S3 in a deployment): a
version uploaded through one is downloaded through another.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from iris_client import ModelStoreClient
from iris_samples import onnx_model
from iris_server.catalog import Catalog
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from mlfunctions_harness.postgres import PostgresServer
from mlfunctions_harness.processes import NotHealthy, free_port, wait_for

pytestmark = pytest.mark.server

ADMIN = "admin-replicas-0123456789abcdef"


@pytest.fixture
def replicas(tmp_path, postgres):
    """Three stores on one PostgreSQL database and one data dir; the third reads its password from a file."""
    url = postgres.fresh()
    password_file = tmp_path / "db-password"
    password_file.write_text(postgres.server.password + "\n")
    passwordless = url.replace(f":{postgres.server.password}@", "@")
    environments = [{"IRIS_DATABASE_URL": url}] * 2 + [
        {"IRIS_DATABASE_URL": passwordless, "IRIS_DATABASE_PASSWORD_FILE": str(password_file)}
    ]
    started = []
    try:
        for environment in environments:
            started.append(start_iris_server(tmp_path / "store", ADMIN, extra_env=environment))
        yield [address for address, _ in started], url
    finally:
        for _, process in started:
            stop_iris_server(process)


def test_twenty_concurrent_uploads_across_three_replicas_get_twenty_distinct_versions(replicas):
    addresses, url = replicas
    payloads = [onnx_model(seed=700 + i, floats=2000) for i in range(20)]
    barrier = threading.Barrier(20)

    def upload(i: int):
        client = ModelStoreClient(addresses[i % 3], ADMIN)
        barrier.wait()
        return client.upload("spread", payloads[i])

    with ThreadPoolExecutor(20) as pool:
        versions = list(pool.map(upload, range(20)))
    assert sorted(v.version for v in versions) == list(range(1, 21))
    for version, data in zip(versions, payloads, strict=True):
        assert version.sha256 == hashlib.sha256(data).hexdigest()
    for i, address in enumerate(addresses):  # every replica sees every version, and serves its bytes
        client = ModelStoreClient(address, ADMIN)
        assert [v.version for v in client.list_versions("spread")] == list(range(1, 21))
        for version in versions[i::3]:
            assert (
                hashlib.sha256(client.download("spread", version.version).data).hexdigest() == version.sha256
            )
    catalog = Catalog(url)
    changes = catalog.changes_after(0, 100).changes
    assert [c.seq for c in changes] == list(range(1, 21))  # one store-wide sequence, in commit order
    assert sorted(c.version for c in changes) == list(range(1, 21))
    catalog.close()


def test_a_store_whose_database_is_unreachable_at_start_exits_naming_it(tmp_path):
    """Before its schema is known to be current it may serve nothing: it exits (the kubelet restarts it)."""
    port = free_port()
    url = f"postgresql://iris:secret@127.0.0.1:{port}/catalog"
    with pytest.raises(NotHealthy) as refused:
        start_iris_server(tmp_path / "store", ADMIN, extra_env={"IRIS_DATABASE_URL": url})
    assert "exited with code 3" in str(refused.value)
    assert f"the catalog database (PostgreSQL at 127.0.0.1:{port}) is unavailable" in str(refused.value)
    assert "secret" not in str(refused.value)


def test_a_database_that_goes_away_is_a_503_naming_it_and_the_store_recovers(tmp_path):
    database = PostgresServer().start()  # its own: this test stops it
    try:
        url = database.create_database("catalog")
        address, process = start_iris_server(tmp_path / "store", ADMIN, extra_env={"IRIS_DATABASE_URL": url})
        try:
            client = ModelStoreClient(address, ADMIN, retries=0)
            assert client.upload("kept", onnx_model(seed=1)).version == 1
            headers = {"Authorization": f"Bearer {ADMIN}"}

            database.stop()
            named = f"the catalog database (PostgreSQL at 127.0.0.1:{database.port}) is unavailable"
            answer = requests.get(f"{address}/v1/models/kept/versions/1", headers=headers, timeout=30)
            assert answer.status_code == 503 and answer.headers["Retry-After"]
            assert answer.json()["error"] == "catalog_unavailable" and answer.json()["message"].startswith(
                named
            )
            ready = requests.get(f"{address}/readyz", timeout=30)
            assert ready.status_code == 503 and ready.json()["message"].startswith(named)
            assert (
                requests.get(f"{address}/healthz", timeout=5).status_code == 200
            )  # alive: no restart needed
            scraped = requests.get(
                f"{address}/metrics", timeout=30
            )  # the process's metrics, without the totals
            assert scraped.status_code == 200 and "iris_http_requests_total" in scraped.text
            assert "iris_stored_bytes" not in scraped.text

            database.start()  # same port, same data
            wait_for(
                lambda: requests.get(f"{address}/readyz", timeout=5).status_code == 200, 30, "readiness back"
            )
            assert client.get_version("kept", "1").version == 1
            assert client.upload("kept", onnx_model(seed=2)).version == 2
            assert process.poll() is None
        finally:
            stop_iris_server(process)
    finally:
        database.remove()
