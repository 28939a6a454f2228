"""The pre-warmed pool with real processes: a zygote preloads libraries, becomes the function with exactly the
environment it is given, and reports the library modules the function imported (never the function's own)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request

import pytest
from local_support import ECHO_DIR
from local_openfaas.runtime.pool import LEARN_AT, WarmPools
from local_openfaas.runtime.ports import PortAllocator
from local_openfaas.runtime.programs import Program
from local_openfaas.runtime.replica import ReplicaLauncher
from local_openfaas.runtime.spec import FunctionSpec

pytestmark = pytest.mark.server

PROGRAM = Program(python=sys.executable, argv=(str(ECHO_DIR / "index.py"),), cwd=ECHO_DIR, preload=("aiohttp",),
                  env=(("ECHO_FROM_IMAGE", "image"),))
SPEC = FunctionSpec(name="echo", namespace="ns", image="echo", environment={"ECHO_FROM_FUNCTION": "function"})


async def _get(port: int, path: str = "/") -> dict:
    return json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                                                             timeout=10).read()))


async def _eventually(condition, what: str, timeout: float = 30.0):
    """What `condition()` returns once it is true, checked every 50 ms for at most `timeout` seconds (the harness's
    wait_for, but awaiting: the pool runs on this event loop, which a blocking wait would stall)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)
    return value


async def _ready_pool(pools: WarmPools, timeout: float = 60.0):
    pools.prepare(PROGRAM)
    pool = next(iter(pools._pools.values()))
    await _eventually(lambda: pool._ready, "a warm process", timeout)
    return pool


def test_a_zygote_becomes_the_function_and_learns_its_library_imports(tmp_path):
    async def scenario():
        pools = WarmPools(1, tmp_path / "pool", {"PATH": "/usr/bin:/bin", "RUNTIME_ONLY": "x"})
        launcher = ReplicaLauncher(PortAllocator(), pools, tmp_path / "logs", {"PATH": "/usr/bin:/bin"})
        try:
            pool = await _ready_pool(pools)
            replica = launcher.launch(SPEC, PROGRAM, {"model-store-token": b"s3cret"})
            assert replica.warm
            assert await replica.wait_ready(30)
            echoed = await _get(replica.port)
            # Exactly its environment: the image's, the Function's, PORT and the secrets folder; nothing of the
            # zygote's own (RUNTIME_ONLY) leaks in.
            assert echoed["env"] == {"ECHO_FROM_IMAGE": "image", "ECHO_FROM_FUNCTION": "function"}
            assert echoed["secrets"] == {"model-store-token": "s3cret"}
            assert "aiohttp" in echoed["modules"]  # preloaded before it knew which function it would be

            # The replica reports its library imports LEARN_AT[0] seconds after it started.
            [learned] = await _eventually(lambda: list(pool.learn_dir.glob("*.modules")), "the learned imports",
                                          timeout=LEARN_AT[0] + 10)
            names = learned.read_text().split()
            assert "http.server" in names and "aiohttp" in names
            assert not [n for n in names if n.startswith("__")]  # never the function's __main__
            await replica.stop(5)
            assert replica.exited.done() and not replica.secrets_dir.exists()

            # The next zygote preloads what was learned (the pool renews the waiting one).
            await _eventually(lambda: pool._ready and pool._ready[0].learned, "a zygote with the learned imports")
        finally:
            await pools.close()
        return pool

    pool = asyncio.run(scenario())
    assert not pool._ready


def test_without_a_ready_zygote_the_function_starts_cold(tmp_path):
    async def scenario():
        pools = WarmPools(0, tmp_path / "pool", {"PATH": "/usr/bin:/bin"})
        launcher = ReplicaLauncher(PortAllocator(), pools, tmp_path / "logs", {"PATH": "/usr/bin:/bin"})
        replica = launcher.launch(SPEC, PROGRAM, {})
        try:
            assert not replica.warm and await replica.wait_ready(30)
            echoed = await _get(replica.port)
            assert "aiohttp" not in echoed["modules"]
            assert echoed["env"] == {"ECHO_FROM_IMAGE": "image", "ECHO_FROM_FUNCTION": "function"}
        finally:
            await replica.stop(5)
        assert replica.secrets_dir is None and replica.exited.result() is not None

    asyncio.run(scenario())
