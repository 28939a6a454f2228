"""The study's discrete-event model: a trace (traces.py) replayed against a setup (setups.py) in simulated time.

Functions: a function's requests split into runs wherever the gap between two requests exceeds the idle timeout
(its replica has scaled to zero by then). Each run begins with a cold start, processed in time order across all
functions because they compete for the shared pool: a cold start takes a ready pool process if there is one
(pool_cold_s) and the pool refills it refill_s later; otherwise it starts a fresh replica (cold_s). Requests that
arrive while the replica starts wait for it. A replica lives from its cold start to its run's last request plus
the idle timeout (cut at the trace's end); extra replicas are added while the rps per replica exceeds the
target (OpenFaaS Pro's rps autoscaling, evaluated every autoscale_s), without holding requests.

Monolith: always on with min replicas; with an HPA the replicas follow the CPU load (requests × CPU-seconds per
request) every sync_s, scale-down held for the stabilisation window.

Latencies are the measured warm samples (drawn with the trace's seed) plus any wait for a cold start; queueing
behind other requests is not modelled (the real replays check what that leaves out)."""

from __future__ import annotations

import math

import numpy as np

from study.setups import Functions, Monolith
from study.traces import Trace

PERCENTILES = (50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100)


def simulate(setup, trace: Trace, seed: int = 0) -> dict:
    if isinstance(setup, Monolith):
        return _monolith(setup, trace, seed)
    return _functions(setup, trace, seed)


def kind_of(name: str) -> str:
    return name.split("-", 1)[0]


def _latency_stats(latencies_ms: np.ndarray, duration: float) -> dict:
    if latencies_ms.size == 0:
        return {"requests": 0, "rps": 0.0, "mean_ms": 0.0, "min_ms": 0.0, "max_ms": 0.0,
                **{f"p{p:g}_ms": 0.0 for p in PERCENTILES}}
    values = np.percentile(latencies_ms, PERCENTILES)
    return {"requests": int(latencies_ms.size), "rps": latencies_ms.size / duration,
            "mean_ms": float(latencies_ms.mean()), "min_ms": float(latencies_ms.min()),
            "max_ms": float(latencies_ms.max()), **{f"p{p:g}_ms": float(v) for p, v in zip(PERCENTILES, values)}}


def _warm(work, names, functions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A warm latency for every request, drawn from its kind's measured samples."""
    latencies = np.empty(functions.size)
    kinds = np.array([kind_of(n) for n in names])[functions] if functions.size else np.empty(0, str)
    for kind, costs in work.items():
        chosen = kinds == kind
        latencies[chosen] = rng.choice(np.asarray(costs.warm_ms), int(chosen.sum()))
    return latencies


def _summary(trace: Trace, latencies: np.ndarray, **measures) -> dict:
    kinds = np.array([kind_of(n) for n in trace.names])[trace.functions] if trace.functions.size else np.empty(0)
    stats = {kind: _latency_stats(latencies[kinds == kind], trace.duration) for kind in ("predict", "train")}
    stats["all"] = _latency_stats(latencies, trace.duration)
    return {"duration_s": trace.duration, **measures, "latency": stats}


# ---- the monolith ----

def hpa_replicas(setup: Monolith, trace: Trace) -> np.ndarray:
    """Replicas in each sync_s step: ceil(CPU cores used / (request × target)), within [min, max], scale-down
    only once the stabilisation window's highest recommendation allows it."""
    steps = max(1, math.ceil(trace.duration / setup.sync_s))
    cpu = np.zeros(steps)
    for index, name in enumerate(trace.names):
        times = trace.of(index)
        np.add.at(cpu, np.minimum((times / setup.sync_s).astype(int), steps - 1), setup.work[kind_of(name)].cpu_s)
    cores = cpu / setup.sync_s
    wanted = np.clip(np.ceil(cores / (setup.cpu_request * setup.cpu_target)), setup.min_replicas,
                     setup.max_replicas)
    window = max(1, int(setup.stabilisation_s / setup.sync_s))
    # the recommendation acted on is the highest of the window (the first step sees only its own)
    held = np.array([wanted[max(0, i - window + 1):i + 1].max() for i in range(steps)])
    return held.astype(int)


def _monolith(setup: Monolith, trace: Trace, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    latencies = _warm(setup.work, trace.names, trace.functions, rng)
    if setup.max_replicas == setup.min_replicas:
        replica_seconds = setup.min_replicas * trace.duration
        starts = setup.min_replicas
    else:
        replicas = hpa_replicas(setup, trace)
        widths = np.full(replicas.size, setup.sync_s)
        widths[-1] = trace.duration - setup.sync_s * (replicas.size - 1)
        replica_seconds = float((replicas * widths).sum())
        starts = int(replicas[0] + np.clip(np.diff(replicas), 0, None).sum())
    cpu = sum(setup.work[kind_of(name)].cpu_s * int((trace.functions == i).sum())
              for i, name in enumerate(trace.names))
    return _summary(trace, latencies, reserved_mib_s=replica_seconds * setup.reserved_mib,
                    used_mib_s=replica_seconds * setup.used_mib, pool_mib_s=0.0,
                    cpu_s=cpu + starts * setup.start_cpu_s, cold_starts=0, cold_starts_from_pool=0,
                    replica_starts=starts, replica_seconds=replica_seconds)


# ---- functions ----

def runs(times: np.ndarray, idle_timeout: float) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first and the last request of each run (a run ends when the next request comes more than
    idle_timeout after the previous one)."""
    if times.size == 0:
        return np.empty(0, int), np.empty(0, int)
    breaks = np.flatnonzero(np.diff(times) > idle_timeout) + 1
    firsts = np.concatenate(([0], breaks))
    lasts = np.concatenate((breaks - 1, [times.size - 1]))
    return firsts, lasts


def _cold_start_costs(setup: Functions, starts: list[tuple[float, str]]) -> tuple[list[float], list[bool]]:
    """The cost of each cold start (in time order) and whether the shared pool served it."""
    # when each pool slot is (again) ready
    ready = {kind: [0.0] * (setup.pool_size if setup.pooled(kind) else 0) for kind in setup.replica}
    costs, pooled, starting = [], [], []  # starting: (begin, end) of starts and pool refills, for start_cores
    for at, kind in starts:
        slots = ready[kind]
        free = next((i for i, when in enumerate(slots) if when <= at), None)
        cost = setup.replica[kind].cold_s if free is None else setup.pool_cold_s[kind]
        if setup.start_cores:  # starts and refills in progress share the cores
            starting = [(begin, end) for begin, end in starting if end > at]
            busy = sum(begin <= at for begin, _ in starting)
            cost *= max(1.0, (busy + 1) / setup.start_cores)
            starting.append((at, at + cost))
        if free is not None:
            slots[free] = at + setup.refill_s[kind]
            if setup.start_cores:  # the refill is a fresh start after the pool's delay
                starting.append((slots[free] - setup.replica[kind].cold_s, slots[free]))
        costs.append(cost)
        pooled.append(free is not None)
    return costs, pooled


def _extra_replica_seconds(setup: Functions, times: np.ndarray, alive: list[tuple[float, float]],
                           duration: float) -> tuple[float, int]:
    """Replica-seconds and starts beyond the first replica, from the rps in each autoscale step."""
    if times.size == 0:
        return 0.0, 0
    steps = max(1, math.ceil(duration / setup.autoscale_s))
    counts = np.bincount(np.minimum((times / setup.autoscale_s).astype(int), steps - 1), minlength=steps)
    wanted = np.clip(np.ceil(counts / setup.autoscale_s / setup.rps_per_replica), 1, setup.max_replicas) - 1
    if not wanted.any():
        return 0.0, 0
    live = np.zeros(steps, bool)
    for begin, end in alive:
        live[int(begin / setup.autoscale_s):int(math.ceil(end / setup.autoscale_s))] = True
    extra = np.where(live, wanted, 0)
    return float(extra.sum() * setup.autoscale_s), int(np.clip(np.diff(np.concatenate(([0], extra))), 0, None).sum())


def _functions(setup: Functions, trace: Trace, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    latencies = _warm(setup.work, trace.names, trace.functions, rng)
    per_function = []
    starts: list[tuple[float, str]] = []
    for index, name in enumerate(trace.names):
        positions = np.flatnonzero(trace.functions == index)
        firsts, lasts = runs(trace.times[positions], setup.idle_timeout)
        per_function.append((index, name, positions, firsts, lasts))
        starts += [(float(trace.times[positions[f]]), kind_of(name), index, k) for k, f in enumerate(firsts)]
    starts.sort(key=lambda start: start[0])
    costs, pooled = _cold_start_costs(setup, [(at, kind) for at, kind, _, _ in starts])
    cost_of = {(index, k): cost for (_, _, index, k), cost in zip(starts, costs)}

    reserved = used = cpu = replica_seconds = 0.0
    replica_starts = 0
    for index, name, positions, firsts, lasts in per_function:
        kind = kind_of(name)
        replica = setup.replica[kind]
        times = trace.times[positions]
        alive = []
        for k, (first, last) in enumerate(zip(firsts, lasts)):
            begin, ready_at = times[first], times[first] + cost_of[(index, k)]
            members = slice(first, last + 1)
            latencies[positions[members]] += np.maximum(0.0, ready_at - times[members]) * 1000.0
            alive.append((begin, min(trace.duration, max(times[last], ready_at) + setup.idle_timeout)))
        seconds = sum(end - begin for begin, end in alive)
        extra_seconds, extra_starts = _extra_replica_seconds(setup, times, alive, trace.duration)
        replica_seconds += seconds + extra_seconds
        reserved += (seconds + extra_seconds) * replica.reserved_mib
        used += (seconds + extra_seconds) * replica.used_mib
        replica_starts += len(firsts) + extra_starts
        cpu += times.size * setup.work[kind].cpu_s + (len(firsts) + extra_starts) * replica.start_cpu_s
    deployed = {kind_of(name) for name in trace.names}  # a pool per interpreter of a deployed function
    pool_mib_s = setup.pool_size * sum(setup.zygote_mib.get(kind, 0.0) for kind in deployed
                                       if setup.pooled(kind)) * trace.duration
    return _summary(trace, latencies, reserved_mib_s=reserved + pool_mib_s, used_mib_s=used + pool_mib_s,
                    pool_mib_s=pool_mib_s, cpu_s=cpu, cold_starts=len(starts), cold_starts_from_pool=sum(pooled),
                    replica_starts=replica_starts, replica_seconds=replica_seconds)
