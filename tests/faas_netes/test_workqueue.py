"""The reconciler's work queue: duplicates collapse, failures come back after a growing back-off."""

from __future__ import annotations

import time

from local_openfaas.faas_netes.workqueue import WorkQueue


def test_a_key_queued_twice_is_handed_out_once():
    queue = WorkQueue()
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert [queue.get(0.1), queue.get(0.1), queue.get(0.05)] == ["a", "b", None]


def test_a_retried_key_comes_back_after_a_doubling_back_off():
    queue = WorkQueue(first=0.05, maximum=0.2)
    assert [queue.retry("a") for _ in range(4)] == [0.05, 0.1, 0.2, 0.2]
    queue.forget("a")
    assert queue.retry("a") == 0.05
    began = time.monotonic()
    assert queue.get(2.0) == "a"   # the five retries collapse into one key
    assert time.monotonic() - began >= 0.04
    assert queue.get(0.3) is None


def test_get_waits_for_a_key_added_meanwhile():
    queue = WorkQueue()
    queue.retry("late")  # 0.5 s
    began = time.monotonic()
    assert queue.get(2.0) == "late"
    assert 0.4 <= time.monotonic() - began < 1.5
