"""Invariants of the study's model (bench/study/simulator.py): cases whose answer is known without it."""

from __future__ import annotations

import numpy as np
import pytest

from study import setups, simulator, traces

WORK = {"predict": setups.Work((1.0, 2.0, 3.0), 0.002), "train": setups.Work((80.0,), 0.08)}
REPLICA = {"predict": setups.Replica(100.0, 80.0, 0.4, 0.5), "train": setups.Replica(150.0, 120.0, 0.6, 0.8)}


def functions(pool_size: int = 0, idle_timeout: float = 60.0) -> setups.Functions:
    return setups.Functions("functions", REPLICA, WORK, idle_timeout, pool_size=pool_size,
                            pool_cold_s={"predict": 0.04, "train": 0.05}, zygote_mib={"predict": 50.0, "train": 70.0},
                            refill_s={"predict": 1.5, "train": 1.5})


def test_a_constant_trace_without_idle_gaps_has_one_cold_start_and_one_replica_throughout():
    trace = traces.constant(rate=2.0, duration=600.0)
    result = simulator.simulate(functions(idle_timeout=5.0), trace)
    assert result["cold_starts"] == 1
    assert result["replica_seconds"] == pytest.approx(600.0)  # from the first request to the trace's end
    # only the first request waits, and for the whole cold start
    assert result["latency"]["predict"]["max_ms"] == pytest.approx(400.0 + 3.0, abs=3.0)
    assert result["latency"]["predict"]["p50_ms"] <= 3.0


def test_a_gap_longer_than_the_idle_timeout_is_a_cold_start_and_a_shorter_one_is_not():
    trace = traces.Trace(np.array([0.0, 4.0, 20.0, 30.0]), np.zeros(4, np.int32), ["predict-0"], 100.0)
    result = simulator.simulate(functions(idle_timeout=10.0), trace)
    assert result["cold_starts"] == 2  # at 0 and at 20 (16 s after 4); 30 is 10 s after 20: still warm
    assert result["replica_seconds"] == pytest.approx((4.0 + 10.0) + (30.0 - 20.0 + 10.0))


def test_always_on_memory_seconds_are_replicas_times_rss_times_duration():
    trace = traces.generate(traces.Pattern("bursty", 2.0, 0.2, 30.0), models=5, duration=3600.0, seed=3)
    monolith = setups.Monolith("monolith", reserved_mib=300.0, used_mib=250.0, work=WORK, min_replicas=2,
                               max_replicas=2)
    result = simulator.simulate(monolith, trace)
    assert result["reserved_mib_s"] == pytest.approx(2 * 300.0 * 3600.0)
    assert result["used_mib_s"] == pytest.approx(2 * 250.0 * 3600.0)
    assert result["cold_starts"] == 0


def test_no_requests_cost_only_the_pool():
    trace = traces.Trace(np.empty(0), np.empty(0, np.int32), traces.function_names(20), 7200.0)
    assert simulator.simulate(functions(pool_size=0), trace)["reserved_mib_s"] == 0.0
    pooled = simulator.simulate(functions(pool_size=2), trace)
    assert pooled["reserved_mib_s"] == pytest.approx(2 * (50.0 + 70.0) * 7200.0)
    assert pooled["cold_starts"] == 0 and pooled["cpu_s"] == 0.0
    predict_only = traces.Trace(np.empty(0), np.empty(0, np.int32), traces.function_names(20, False), 7200.0)
    assert simulator.simulate(functions(pool_size=2), predict_only)["reserved_mib_s"] == pytest.approx(
        2 * 50.0 * 7200.0)  # no train function deployed: no train interpreter's pool


def test_the_shared_pool_serves_one_cold_start_per_process_until_it_is_refilled():
    names = traces.function_names(3)
    # three predict functions cold-start within one second: a pool of one serves the first only
    trace = traces.Trace(np.array([0.0, 0.3, 0.6, 10.0]), np.array([0, 1, 2, 0], np.int32), names, 20.0)
    result = simulator.simulate(functions(pool_size=1, idle_timeout=60.0), trace)
    assert result["cold_starts"] == 3 and result["cold_starts_from_pool"] == 1
    later = traces.Trace(np.array([0.0, 3.0, 6.0]), np.array([0, 1, 2], np.int32), names, 20.0)
    assert simulator.simulate(functions(pool_size=1), later)["cold_starts_from_pool"] == 3  # refilled in 1.5 s


def test_the_hpa_follows_cpu_load_within_its_bounds_and_holds_scale_down():
    quiet, busy = np.arange(0.0, 600.0, 1.0), np.arange(600.0, 900.0, 1 / 900)  # 1 rps, then 900 rps
    trace = traces.Trace(np.concatenate((quiet, busy)), np.zeros(quiet.size + busy.size, np.int32),
                         ["predict-0"], 2000.0)
    hpa = setups.Monolith("hpa", 300.0, 250.0, WORK, min_replicas=1, max_replicas=5)
    replicas = simulator.hpa_replicas(hpa, trace)
    assert replicas[:40].max() == 1
    assert replicas[45] == 4  # 900 rps × 2 ms = 1.8 cores; / (1 core × 50 %) = 3.6
    assert replicas[int(900 / 15) + 5] == 4  # scale-down waits for the 300 s window
    assert replicas[-1] == 1


def test_traces_follow_the_pattern_mean_rate_and_zipf_popularity():
    pattern = traces.Pattern("bursty", rate_on=2.0, duty=0.25, burst_s=60.0)
    trace = traces.generate(pattern, models=5, duration=200_000.0, seed=1)
    assert trace.times.size / trace.duration / 5 == pytest.approx(pattern.mean_rate, rel=0.1)
    predictions = np.bincount(trace.functions[trace.functions < 5], minlength=5)
    assert predictions[0] / predictions[4] == pytest.approx(5.0, rel=0.25)  # Zipf 1: 1/1 vs 1/5
    trains = (trace.functions >= 5).sum()
    assert trains / trace.times.size == pytest.approx(1 / traces.TRAIN_EVERY, rel=0.2)
    assert np.all(np.diff(trace.times) >= 0)


def test_starts_sharing_cores_take_longer_only_when_they_overlap():
    names = traces.function_names(4)
    together = traces.Trace(np.array([0.0, 0.01, 0.02, 0.03]), np.arange(4, dtype=np.int32), names, 30.0)
    apart = traces.Trace(np.array([0.0, 5.0, 10.0, 15.0]), np.arange(4, dtype=np.int32), names, 30.0)
    alone = simulator.simulate(functions(), together)["latency"]["predict"]["max_ms"]
    shared = simulator.simulate(setups.on_cores(functions(), 2), together)["latency"]["predict"]["max_ms"]
    assert shared > 1.5 * alone  # the fourth of four starts on two cores
    spread = simulator.simulate(setups.on_cores(functions(), 2), apart)["latency"]["predict"]["max_ms"]
    assert spread == pytest.approx(simulator.simulate(functions(), apart)["latency"]["predict"]["max_ms"])
