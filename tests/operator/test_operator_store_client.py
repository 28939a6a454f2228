"""The operator's model-store client (store_client.py) over real sockets: against a real iris-server, and against a
port that plays a broken one. What the reconcilers rely on: typed errors, a missing version or token is not an
error, nothing is sent twice, and a store that hangs costs a timeout, not the event loop."""

from __future__ import annotations

import asyncio
import socket

import pytest
from faulty_store import FaultyStore
from iris_client import ModelStoreClient
from mlfunctions_harness.model_store import onnx_model, start_iris_server, stop_iris_server
from mlfunctions_operator.store_client import (
    Forbidden,
    StoreClient,
    Unauthorized,
    Unavailable,
    http_client,
)

pytestmark = pytest.mark.server

ADMIN = "store-client-tests-admin-token-0123456789"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    url, process = start_iris_server(tmp_path_factory.mktemp("store-client") / "data", admin_token=ADMIN)
    yield url
    stop_iris_server(process)


def run(action, timeout: float = 5.0):
    """`action(http)` on a fresh client, as the operator holds it, in an event loop of its own."""
    async def main():
        async with http_client(timeout=timeout, connections=4) as http:
            return await action(http)
    return asyncio.run(main())


def test_issue_use_and_revoke_a_scoped_token(store):
    with ModelStoreClient(store, ADMIN) as admin:
        uploaded = admin.upload("client-model", onnx_model(seed=1), format="onnx")

    async def scenario(http):
        admin = StoreClient(http, store, ADMIN)
        issued = await admin.create_token(("client-model",), ("read",), "store-client test")
        assert issued.token not in repr(issued)  # the secret stays out of logs
        reader = StoreClient(http, store, issued.token)
        found = await reader.get_version("client-model", "latest")
        missing = await reader.get_version("client-model", uploaded.version + 5)
        with pytest.raises(Forbidden):
            await reader.list_tokens()  # an admin-only call
        listed = {t["id"]: t for t in await admin.list_tokens()}
        await admin.revoke_token(issued.id)
        await admin.revoke_token(issued.id)  # idempotent: already revoked
        with pytest.raises(Unauthorized):
            await reader.get_version("client-model", "latest")
        return issued, found, missing, listed

    issued, found, missing, listed = run(scenario)
    assert (found.model, found.version) == ("client-model", uploaded.version)
    assert missing is None  # no such version: None, not an error
    assert listed[issued.id]["description"] == "store-client test"


def test_a_wrong_admin_token_is_unauthorized(store):
    with pytest.raises(Unauthorized) as error:
        run(lambda http: StoreClient(http, store, "not-the-admin-token-0123456789").list_tokens())
    assert error.value.status == 401


def test_a_refused_connection_is_unavailable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Unavailable) as error:
        run(lambda http: StoreClient(http, f"http://127.0.0.1:{port}", ADMIN).list_tokens())
    assert error.value.status is None and "unreachable" in str(error.value)


def test_a_token_request_that_reached_the_store_is_never_sent_again():
    with FaultyStore("drop") as faulty:  # takes the request in, then drops the connection: did it land?
        with pytest.raises(Unavailable):
            run(lambda http: StoreClient(http, faulty.url, ADMIN).create_token(("m",), ("read",), "once"))
        assert [(s.method, s.path) for s in faulty.seen()] == [("POST", "/v1/tokens")]
        assert faulty.connections == 1


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_unavailable_with_its_status(status):
    with FaultyStore(status) as faulty, pytest.raises(Unavailable) as error:
        run(lambda http: StoreClient(http, faulty.url, ADMIN).get_version("m", "latest"))
    assert error.value.status == status and "scripted failure" in str(error.value)
    assert len(faulty.seen()) == 1


def test_a_store_that_never_answers_costs_the_timeout_and_blocks_nothing():
    with FaultyStore("hang") as faulty:
        async def scenario(http):
            ticks = 0

            async def ticker():  # the event loop keeps running while the call waits
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            task = asyncio.create_task(ticker())
            try:
                with pytest.raises(Unavailable) as error:
                    await StoreClient(http, faulty.url, ADMIN).list_tokens()
            finally:
                task.cancel()
            return ticks, error.value

        ticks, error = run(scenario, timeout=0.5)
    assert "ReadTimeout" in str(error) and error.status is None
    assert ticks >= 10  # ~50 in the 0.5 s the call waited
    assert len(faulty.seen("GET", "/v1/tokens")) == 1
