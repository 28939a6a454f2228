"""Real, time-compressed replays: a trace (traces.py) sent open-loop, each request at its time, to the real
monolith or to real functions behind the local gateway; latency per request, cold starts from the gateway's
events, memory-seconds from /proc. The same trace then goes through the model, so prediction and measurement
meet on identical traffic (replay_points in bench_study.py)."""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import numpy as np
from mlfunctions_harness import processes
from mlfunctions_harness.processes import free_port, wait_for
from local_openfaas import funcenv
from local_openfaas.gateway import process as gateway_process

import bench_stack as stack
from stack_measures import MemorySampler, is_zygote
from study import calibration
from study.simulator import _latency_stats, kind_of
from study.traces import Trace

ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


async def _send(trace: Trace, url_of) -> tuple[np.ndarray, int]:
    """Every request at its trace time; latencies in ms (NaN for a failure) and the failure count."""
    latencies = np.full(trace.times.size, np.nan)
    connector = aiohttp.TCPConnector(limit=128)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def one(position: int, url: str, body: dict):
            started = time.perf_counter()
            try:
                async with session.post(url, json=body) as response:
                    await response.read()
                    if response.status == 200:
                        latencies[position] = (time.perf_counter() - started) * 1000
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass

        began, tasks = time.perf_counter(), []
        for position, (at, function) in enumerate(zip(trace.times, trace.functions)):
            delay = began + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            name = trace.names[function]
            tasks.append(asyncio.create_task(one(position, url_of(name), ROW if kind_of(name) == "predict" else {})))
        await asyncio.gather(*tasks)
        remaining = began + trace.duration - time.perf_counter()
        if remaining > 0:  # memory is compared over the trace's whole length, quiet end included
            await asyncio.sleep(remaining)
    return latencies, int(np.isnan(latencies).sum())


def _measured(trace: Trace, latencies: np.ndarray, failures: int, **measures) -> dict:
    kinds = np.array([kind_of(n) for n in trace.names])[trace.functions]
    ok = ~np.isnan(latencies)
    stats = {kind: _latency_stats(latencies[ok & (kinds == kind)], trace.duration) for kind in ("predict", "train")}
    stats["all"] = _latency_stats(latencies[ok], trace.duration)
    return {"duration_s": trace.duration, "failures": failures, **measures, "latency": stats}


def monolith(trace: Trace, models: int, store_url: str, token: str, work: Path, cleanup: ExitStack) -> dict:
    train_dir = funcenv.FUNCTIONS_DIR / "train"
    port = free_port()
    env = funcenv.function_environment(train_dir, port=port, extra={
        **stack.train_env(store_url, token), "MODEL_NAME": calibration.MODEL_BASE, "MONOLITH_MODELS": str(models)})
    process = processes.spawn([str(funcenv.function_python(train_dir)), str(calibration.MONOLITH_PROGRAM)],
                              work / f"replay-monolith-{models}.log", env=env)
    cleanup.callback(processes.stop, process)
    processes.wait_healthy(f"http://127.0.0.1:{port}/_/health", process, "the monolith",
                           work / f"replay-monolith-{models}.log", 180)
    for index in range(models):  # loaded, as a long-running monolith's models are
        stack.timed_requests(port, f"/predict-{index}/", 5)
    with MemorySampler(lambda: [process.pid]) as memory:
        latencies, failures = asyncio.run(_send(trace, lambda name: f"http://127.0.0.1:{port}/{name}/"))
    processes.stop(process)
    return _measured(trace, latencies, failures, reserved_mib_s=memory.reserved_mib_s,
                     used_mib_s=memory.memory_mib_s, pool_mib_s=0.0, cold_starts=0, cold_starts_from_pool=0)


def functions(trace: Trace, idle_timeout: float, pool_size: int, store_url: str, token: str, work: Path,
              cleanup: ExitStack) -> dict:
    """One function per trace name (predict-<i>/train-<i> serve model iris-<i>), scaled to zero after
    idle_timeout; every one at zero and the pool ready before the trace starts."""
    gateway = gateway_process.start(free_port(), work / f"gw-replay-{pool_size}-{time.monotonic_ns()}",
                                    stack_files=[funcenv.STACK_FILE], pool_size=pool_size, autoscale_interval=0.5)
    cleanup.callback(gateway.stop)
    labels = {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": f"{idle_timeout:g}s"}
    used = sorted(set(trace.functions.tolist()))
    for index in used:
        name = trace.names[index]
        model = f"{calibration.MODEL_BASE}-{name.split('-', 1)[1]}"
        if kind_of(name) == "predict":
            env, image = {**stack.predict_env(store_url, token), "MODEL_NAME": model}, stack.PREDICT_IMAGE
        else:
            env, image = {**stack.train_env(store_url, token), "MODEL_NAME": model}, stack.TRAIN_IMAGE
        stack.deploy(gateway, f"study-{name}", image, env, labels)
        stack.scale(gateway, f"study-{name}", 0)  # one at a time: 40 replicas starting at once would be the test
    for index in used:
        name = f"study-{trace.names[index]}"
        wait_for(lambda n=name: stack.describe(gateway, n)["availableReplicas"] == 0, 120, f"{name} at zero")
    kinds = {kind_of(trace.names[i]) for i in used}
    if pool_size:
        wait_for(lambda: all(stack._pool_ready(gateway, kind, False) for kind in kinds), 120, "the warm pools")
    time.sleep(1.0)  # the stopped replicas are gone
    cold_before = len(stack.gateway_events(gateway, "scaling from zero"))
    ready_before = len(stack.gateway_events(gateway, "replica ready"))
    descendants = lambda: processes.descendants(gateway.process.pid)
    with MemorySampler(lambda: [p for p in descendants() if not is_zygote(p)]) as memory, \
            MemorySampler(lambda: [p for p in descendants() if is_zygote(p)]) as pool_memory:
        latencies, failures = asyncio.run(_send(trace, lambda name: f"{gateway.url}/function/study-{name}"))
    started = stack.gateway_events(gateway, "replica ready")[ready_before:]
    gateway.stop()
    return _measured(trace, latencies, failures,
                     reserved_mib_s=memory.reserved_mib_s + pool_memory.reserved_mib_s,
                     used_mib_s=memory.memory_mib_s + pool_memory.memory_mib_s,
                     pool_mib_s=pool_memory.memory_mib_s,
                     cold_starts=len(stack.gateway_events(gateway, "scaling from zero")) - cold_before,
                     replica_starts=len(started), cold_starts_from_pool=sum(e["warm"] for e in started),
                     # how long starts took under this traffic (the calibration timed them one at a time)
                     replica_start_s=sorted(e["startSeconds"] for e in started if not e["warm"]),
                     pool_replica_start_s=sorted(e["startSeconds"] for e in started if e["warm"]))
