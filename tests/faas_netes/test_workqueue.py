"""The reconciler's work queue: duplicates collapse, failures come back after a growing back-off."""

from __future__ import annotations

import asyncio

from local_openfaas.faas_netes.workqueue import WorkQueue


async def next_key(queue: WorkQueue, timeout: float) -> str | None:
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except TimeoutError:
        return None


def test_a_key_queued_twice_is_handed_out_once():
    async def scenario():
        queue = WorkQueue()
        for key in ("a", "b", "a"):
            queue.add(key)
        return [await next_key(queue, 0.1) for _ in range(3)]

    assert asyncio.run(scenario()) == ["a", "b", None]


def test_a_retried_key_comes_back_once_after_a_doubling_back_off():
    async def scenario():
        queue = WorkQueue(first=0.05, maximum=0.2)
        delays = [queue.retry("a") for _ in range(4)]
        queue.forget("a")
        delays.append(queue.retry("a"))
        loop = asyncio.get_running_loop()
        began = loop.time()
        first = await next_key(queue, 2.0)
        waited = loop.time() - began
        return delays, first, waited, await next_key(queue, 0.4)

    delays, first, waited, second = asyncio.run(scenario())
    assert delays == [0.05, 0.1, 0.2, 0.2, 0.05]
    assert first == "a" and waited >= 0.04
    assert second is None  # five retries of one key come back as one


def test_a_key_added_while_it_waits_for_its_retry_is_handed_out_at_once():
    async def scenario():
        queue = WorkQueue(first=1.0)
        queue.retry("a")
        queue.add("a")
        return await next_key(queue, 0.3)

    assert asyncio.run(scenario()) == "a"
