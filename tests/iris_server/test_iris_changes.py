"""GET /v1/changes over real sockets: the long-poll wakes on a write (of this process or of another), answers
at its timeout, bounds its parameters, says 410 for a cursor it cannot serve, shows each caller only the models
it may read, and does not hold a stopping server up."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from iris_client import CursorGone, Unauthorized, Unavailable
from iris_samples import onnx_model
from iris_server.catalog import Catalog
from mlfunctions_harness.processes import wait_for

pytestmark = pytest.mark.server


def _kinds(page) -> list[tuple]:
    return [(c.model, c.kind, c.version, c.alias) for c in page.changes]


def _timed_poll(client, cursor: int, wait: float):
    """client.changes(cursor, wait) and the monotonic time its answer arrived."""
    page = client.changes(cursor, wait=wait)
    return page, time.monotonic()


def test_a_follower_gets_each_change_once_in_order(iris):
    admin = iris.admin
    start = admin.changes()
    assert start.changes == [] and start.cursor >= 0
    admin.upload("feed-order", onnx_model(seed=1))
    admin.upload("feed-order", onnx_model(seed=2))
    admin.set_alias("feed-order", "production", 1)
    admin.set_alias("feed-order", "production", 1)  # no move, no change
    admin.delete_alias("feed-order", "production")
    admin.delete_version("feed-order", 1)
    page = admin.changes(start.cursor, wait=5)
    assert _kinds(page) == [
        ("feed-order", "version_added", 1, None),
        ("feed-order", "version_added", 2, None),
        ("feed-order", "alias_set", 1, "production"),
        ("feed-order", "alias_deleted", 1, "production"),
        ("feed-order", "version_deleted", 1, None),
    ]
    assert page.cursor == page.changes[-1].seq and not page.more
    assert [c.seq for c in page.changes] == sorted(c.seq for c in page.changes)
    assert admin.changes(start.cursor + 2, wait=0).changes == page.changes[2:]


def test_a_waiting_poll_answers_as_soon_as_a_version_is_uploaded(iris):
    admin = iris.admin
    cursor = admin.changes().cursor
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_timed_poll, admin, cursor, 30)
        admin.upload("feed-wake", onnx_model(seed=3))
        uploaded = time.monotonic()
        page, answered = waiting.result(timeout=10)
    assert _kinds(page) == [("feed-wake", "version_added", 1, None)]
    assert answered - uploaded < 0.5, f"the poll answered {answered - uploaded:.2f}s after the upload"


def test_nothing_new_answers_empty_at_the_timeout_with_the_same_cursor(iris):
    admin = iris.admin
    cursor = admin.changes().cursor
    started = time.monotonic()
    page = admin.changes(cursor, wait=0.6)
    elapsed = time.monotonic() - started
    assert page.changes == [] and page.cursor == cursor
    assert 0.6 <= elapsed < 3.0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=-1", "after"),
        ("after=0&timeout=61", "timeout"),
        ("after=0&timeout=-1", "timeout"),
        ("after=0&limit=0", "limit"),
        ("after=0&limit=1001", "limit"),
    ],
)
def test_parameters_out_of_range_are_400_naming_the_field(iris, query, field):
    answer = requests.get(
        f"{iris.url}/v1/changes?{query}", headers={"Authorization": f"Bearer {iris.admin_token}"}, timeout=10
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "bad_request" and body["field"] == field and field in body["message"]


def test_a_cursor_from_another_store_is_410_with_where_to_continue(iris):
    latest = iris.admin.changes().cursor
    with pytest.raises(CursorGone) as gone:
        iris.admin.changes(latest + 1000, wait=5)
    assert gone.value.status == 410 and gone.value.cursor == latest


def test_a_cursor_older_than_the_log_keeps_is_410(iris_factory):
    store = iris_factory(extra_env={"IRIS_CHANGE_LOG_KEEP": "100"}).start()
    admin = store.admin
    admin.upload("feed-trim", onnx_model(seed=4))
    admin.upload("feed-trim", onnx_model(seed=5))
    for n in range(200):  # alias moves: the cheapest changes
        admin.set_alias("feed-trim", "a", 1 + n % 2)
    with pytest.raises(CursorGone) as gone:
        admin.changes(0, wait=5)
    assert gone.value.cursor == 202
    assert admin.changes(150).changes[-1].seq == 202  # what is kept is still served


def test_another_process_writing_the_catalog_wakes_a_waiting_poll(iris):
    """No in-process signal reaches this waiter: it notices the write by re-reading the log."""
    admin = iris.admin
    admin.upload("feed-other", onnx_model(seed=6))
    cursor = admin.changes().cursor
    catalog = Catalog(iris.catalog_target)  # in this test's process
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_timed_poll, admin, cursor, 30)
        catalog.set_alias("feed-other", "canary", 1)
        committed = time.monotonic()
        page, answered = waiting.result(timeout=10)
    assert _kinds(page) == [("feed-other", "alias_set", 1, "canary")]
    assert answered - committed < 1.0, f"noticed {answered - committed:.2f}s after the other process's commit"


def test_a_replica_on_the_same_catalog_sees_the_other_replicas_uploads(iris_factory):
    first = iris_factory().start()
    second = iris_factory()
    second.data_dir.parent.mkdir(parents=True)
    second.data_dir.symlink_to(first.data_dir)  # its own log file, the same catalog
    second.admin_token = first.admin_token
    second.start()
    cursor = first.admin.changes().cursor
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_timed_poll, first.admin, cursor, 30)
        second.admin.upload("feed-replica", onnx_model(seed=7))
        uploaded = time.monotonic()
        page, answered = waiting.result(timeout=10)
    assert _kinds(page) == [("feed-replica", "version_added", 1, None)]
    assert answered - uploaded < 1.0, f"noticed {answered - uploaded:.2f}s after the other replica's upload"


def _tenant(iris, namespace: str, models=("*",), rights=("read",)):
    issued = iris.admin.create_token(list(models), list(rights), f"feed {namespace}", namespace=namespace)
    return issued, iris.client(issued.token)


def test_a_namespace_sees_only_changes_of_models_it_may_read(iris):
    admin = iris.admin
    admin.claim("feed-alpha", "alpha")
    admin.claim("feed-beta", "beta")
    _, alpha = _tenant(iris, "alpha")
    _, beta = _tenant(iris, "beta")
    store_wide = iris.client(admin.create_token(["feed-beta*"], ["read"], "glob").token)
    writer_only = iris.client(admin.create_token(["*"], ["write"], "writer").token)
    cursor = admin.changes().cursor

    with ThreadPoolExecutor(1) as pool:
        beta_waiting = pool.submit(beta.changes, cursor, 1.5)
        admin.upload("feed-alpha", onnx_model(seed=8))
        admin.set_alias("feed-alpha", "production", 1)
        beta_page = beta_waiting.result(timeout=10)
    # beta waited its whole timeout: alpha's changes neither woke nor reached it
    assert beta_page.changes == [] and beta_page.cursor == cursor + 2
    assert _kinds(alpha.changes(cursor, wait=5)) == [
        ("feed-alpha", "version_added", 1, None),
        ("feed-alpha", "alias_set", 1, "production"),
    ]
    assert store_wide.changes(cursor).changes == [] and writer_only.changes(cursor).changes == []
    admin.upload("feed-beta", onnx_model(seed=9))
    assert [c.model for c in beta.changes(cursor, wait=5).changes] == ["feed-beta"]
    assert [c.model for c in store_wide.changes(cursor, wait=5).changes] == ["feed-beta"]
    assert [c.model for c in admin.changes(cursor).changes] == ["feed-alpha", "feed-alpha", "feed-beta"]

    admin.grant(
        "feed-alpha", "beta", ["read"]
    )  # a grant shows the model's changes, its withdrawal hides them
    assert [c.model for c in beta.changes(cursor).changes] == ["feed-alpha", "feed-alpha", "feed-beta"]
    admin.revoke_grant("feed-alpha", "beta")
    assert [c.model for c in beta.changes(cursor).changes] == ["feed-beta"]


def test_a_token_revoked_while_it_waits_sees_nothing_more(iris):
    admin = iris.admin
    admin.claim("feed-revoked", "gamma")
    issued, gamma = _tenant(iris, "gamma")
    cursor = admin.changes().cursor
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(gamma.changes, cursor, 30)
        wait_for(lambda: _waiting(iris), 5, "the poll to wait")  # then revoke, then write
        admin.revoke_token(issued.id)
        admin.upload("feed-revoked", onnx_model(seed=10))
        with pytest.raises(Unauthorized):
            waiting.result(timeout=10)


def _waiting(iris) -> bool:
    """The store's own gauge says a poll is waiting."""
    text = requests.get(f"{iris.url}/metrics", timeout=5).text
    return any(
        line.startswith("iris_change_waiters ") and float(line.split()[1]) >= 1 for line in text.splitlines()
    )


def test_waiters_beyond_the_bound_are_503_and_others_are_still_served(iris_factory):
    store = iris_factory(extra_env={"IRIS_MAX_CHANGE_WAITERS": "1"}).start()
    admin = store.client(retries=0)
    cursor = admin.changes().cursor
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(admin.changes, cursor, 30)
        wait_for(lambda: _waiting(store), 5, "the first poll to wait")
        with pytest.raises(Unavailable) as refused:
            admin.changes(cursor, wait=30)
        assert refused.value.status == 503
        assert admin.changes(cursor).cursor == cursor  # a poll that does not wait is no waiter
        admin.upload("feed-bound", onnx_model(seed=11))
        assert [c.model for c in waiting.result(timeout=10).changes] == ["feed-bound"]


def test_a_stopping_server_answers_its_waiting_polls_at_once(iris_factory):
    store = iris_factory().start()
    admin = store.client(retries=0)
    cursor = admin.changes().cursor
    answered = threading.Event()

    def follow():
        admin.changes(cursor, wait=60)
        answered.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    wait_for(lambda: _waiting(store), 5, "the poll to wait")
    started = time.monotonic()
    store.stop()
    stopped = time.monotonic() - started
    assert answered.wait(5)
    assert store.process.returncode is not None and stopped < 5.0, f"the stop took {stopped:.1f}s"
