"""model_feed.py: which loops a change wakes (exactly those serving the model), a wake-up during a pass is never
dropped as an echo, and a follower against a real iris-server over real sockets wakes the right loop, resumes
after the store restarts, and wakes every loop on the store when its cursor is gone (a store started afresh)."""

from __future__ import annotations

import asyncio
import time

import pytest
from iris_client import ModelStoreClient
from mlfunctions_harness.model_store import onnx_model, start_iris_server, stop_iris_server
from mlfunctions_operator.model_feed import Interest, Interests, ModelFeeds
from mlfunctions_operator.scheduler import Wakeups
from mlfunctions_operator.store_client import StoreClient, http_client
from mlfunctions_operator.stores import StoreRef

ADMIN_TOKEN = "model-feed-tests-admin-token-0123456789"


def test_a_change_wakes_exactly_the_loops_serving_that_model_of_that_store():
    interests = Interests()
    interests.set("a", ("ns", "s1"), "iris")
    interests.set("b", ("ns", "s1"), "iris")
    interests.set("c", ("ns", "s1"), "wine")
    interests.set("d", ("ns", "s2"), "iris")
    assert interests.serving(("ns", "s1"), "iris") == {"a", "b"}
    assert interests.on_store(("ns", "s1")) == {"a", "b", "c"}
    interests.set("b", ("ns", "s2"), "iris")  # its spec moved it to another store
    assert interests.serving(("ns", "s1"), "iris") == {"a"} and interests.serving(("ns", "s2"), "iris") == {"b", "d"}
    for uid in ("b", "d"):
        interests.drop(uid)
    assert interests.stores() == {("ns", "s1")}
    interests.drop("nobody")  # a loop that never said what it serves


def test_a_model_change_during_a_pass_is_not_dropped_as_its_echo():
    wakeups = Wakeups()
    wakeups.begin_pass(1)
    wakeups.child_reported("deployed")  # the echo of the pass's own apply...
    wakeups.model_changed()             # ...and the model appearing while the pass ran
    wakeups.settle("deployed")
    assert wakeups.event.is_set()
    wakeups.begin_pass(1)
    wakeups.child_reported("deployed")
    wakeups.settle("deployed")
    assert not wakeups.event.is_set()  # an echo alone still is dropped


def _store(url: str) -> StoreRef:
    return StoreRef("iris", "mlfunctions-system", url, "iris-admin", "admin-token", external=True)


async def _woken(woken: list[str], expected: set[str], timeout: float = 5.0) -> float:
    started = time.monotonic()
    while not expected <= set(woken):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"woken {woken}, expected {expected}")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_a_follower_wakes_the_right_loops_and_survives_restarts_of_its_store(tmp_path):
    url, process = start_iris_server(tmp_path / "store", ADMIN_TOKEN)
    port = int(url.rsplit(":", 1)[1])
    admin = ModelStoreClient(url, ADMIN_TOKEN)

    async def scenario() -> None:
        nonlocal process
        http = http_client(timeout=5.0, connections=4)
        woken: list[str] = []

        async def client(store: StoreRef) -> StoreClient:
            return StoreClient(http, store.url, ADMIN_TOKEN)

        feeds = ModelFeeds(client, woken.append, wait=5.0)
        feeds.follow("a", Interest(_store(url), "m1"))
        feeds.follow("b", Interest(_store(url), "m2"))
        await _woken(woken, {"a", "b"})  # started: whatever changed before it listened is looked at again
        woken.clear()

        await asyncio.to_thread(admin.upload, "m1", onnx_model(1))
        assert await _woken(woken, {"a"}) < 1.0
        woken.clear()
        await asyncio.to_thread(admin.upload, "m3", onnx_model(3))  # nobody serves it
        await asyncio.to_thread(admin.upload, "m1", onnx_model(4))
        await _woken(woken, {"a"})
        assert set(woken) == {"a"}
        woken.clear()

        stop_iris_server(process)  # a restart: the follower resumes from its cursor
        _, process = start_iris_server(tmp_path / "store", ADMIN_TOKEN, port=port)
        await asyncio.to_thread(admin.upload, "m2", onnx_model(2))
        await _woken(woken, {"b"}, timeout=10.0)
        assert "a" not in woken
        woken.clear()

        stop_iris_server(process)  # a new store at the same address: its log starts again
        _, process = start_iris_server(tmp_path / "fresh", ADMIN_TOKEN, port=port)
        await _woken(woken, {"a", "b"}, timeout=10.0)

        feeds.forget("a")
        feeds.forget("b")
        assert feeds.interests.stores() == set()
        await feeds.close()
        await http.aclose()

    try:
        asyncio.run(scenario())
    finally:
        admin.close()
        stop_iris_server(process)


@pytest.mark.parametrize("spec", [{}, {"model": {}}, {"model": {"name": "m"}, "modelStore": "missing"}])
def test_nothing_is_followed_for_a_spec_or_store_that_is_not_usable(spec):
    from mlfunctions_operator.model_feed import interest_of

    stores = {("ops", "default"): {"metadata": {"name": "default", "namespace": "ops"}, "spec": {}}}
    assert interest_of({"spec": spec}, "default", "ops", lambda name, ns: stores.get((ns, name))) is None
    found = interest_of({"spec": {"model": {"name": "m"}}}, "default", "ops", lambda name, ns: stores.get((ns, name)))
    assert found is not None and found.model == "m" and found.key == ("ops", "default")
