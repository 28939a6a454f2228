"""Renewing the warm pool never leaves it empty: when a replica has reported imports the waiting zygotes lack,
each stays takeable until its replacement (which preloads them) is ready, and then exits. Real zygote processes;
the learned list is the file a replica writes (zygote.py's _learn), written here with a module the echo
function does not import."""

from __future__ import annotations

import asyncio
import sys

import pytest
from local_support import ECHO_DIR
from local_openfaas.runtime.pool import WarmPools
from local_openfaas.runtime.programs import Program
from test_runtime_pool import _eventually

pytestmark = pytest.mark.server

PROGRAM = Program(python=sys.executable, argv=(str(ECHO_DIR / "index.py"),), cwd=ECHO_DIR, preload=("aiohttp",))


async def _renewing_pool(tmp_path):
    pools = WarmPools(1, tmp_path / "pool", {"PATH": "/usr/bin:/bin"})
    pools.prepare(PROGRAM)
    pool = next(iter(pools._pools.values()))
    [old] = await _eventually(lambda: pool._ready, "a warm process", 60)
    (pool.learn_dir / "echo.modules").write_text("yaml\n")  # what a replica reported it imported
    pool._renew_outdated()
    return pools, pool, old


def test_an_outdated_zygote_is_taken_rather_than_none_while_its_replacement_starts(tmp_path):
    async def scenario():
        pools, pool, old = await _renewing_pool(tmp_path)
        taken = None
        try:
            assert not pool._ready and pool._starting == 1  # the replacement is on its way
            taken = pools.take(PROGRAM)  # a cold start now still gets a pre-started process
            assert taken is old and not taken.exited.done()
            new = (await _eventually(lambda: pool._ready, "the replacement", 60))[0]
            assert new.learned == pool._learned() and new.learned != old.learned
            assert pool.pids() == [new.process.pid]  # the taken one is its replica now, not the pool's
        finally:
            if taken is not None:
                taken.process.stdin.close()
            await pools.close()
        assert old.process.wait(10) is not None

    asyncio.run(scenario())


def test_an_outdated_zygote_exits_once_its_replacement_is_ready(tmp_path):
    async def scenario():
        pools, pool, old = await _renewing_pool(tmp_path)
        try:
            assert pool.pids() and old.process.pid in pool.pids()  # still waiting, still counted
            new = (await _eventually(lambda: pool._ready, "the replacement", 60))[0]
            await asyncio.wait_for(old.exited, 10)  # retired: it got EOF instead of a function
            assert pool.pids() == [new.process.pid] and new.learned == pool._learned()
            assert pools.take(PROGRAM) is new
        finally:
            await pools.close()

    asyncio.run(scenario())
