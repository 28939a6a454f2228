"""The study's sweep: the setups built from the measured inputs, every (models, pattern, idle timeout) point
simulated for each, and the crossover: which setup wins each point (fewest reserved MiB·s among those whose
predict p99 is within one cold start of the always-on monolith's)."""

from __future__ import annotations

from study import simulator
from study.setups import Functions, Monolith, Replica, Work, with_timeout
from study.traces import Pattern, generate

MODELS = (1, 5, 20)
IDLE_TIMEOUTS = (60.0, 300.0, 900.0)
PATTERNS = (
    Pattern("busy 10/s", 10.0, 1.0),
    Pattern("steady 1/s", 1.0, 1.0),
    Pattern("bursts 2/s 25%", 2.0, 0.25, 120.0),
    Pattern("bursts 2/s 5%", 2.0, 0.05, 60.0),
    Pattern("1-min burst hourly", 1.0, 1 / 60, 60.0),
    Pattern("every 10 min", 1 / 600, 1.0),
    Pattern("every hour", 1 / 3600, 1.0),
    Pattern("every 4 h", 1 / 14400, 1.0),
)
MONOLITHS = ("monolith", "monolith-hpa")
# "+predict-pool": a pool for the predict interpreter only (training is rare and not latency-bound; its zygote
# holds scikit-learn). A model-only variant: the gateway's --pool-size applies to every interpreter.
FUNCTIONS = ("processes", "processes+pool", "processes+predict-pool", "pods", "pods+pool", "pods+predict-pool")
SETUPS = MONOLITHS + FUNCTIONS


def duration_for(pattern: Pattern) -> float:
    """Simulated seconds: long enough that a rare model is called several times, short enough to stay fast."""
    if pattern.mean_rate >= 1.0:
        return 3600.0
    return 6 * 3600.0 if pattern.mean_rate >= 0.01 else 48 * 3600.0


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").replace("--", "-")


def build(inputs: dict, models: int, idle_timeout: float = 300.0) -> dict:
    """The six setups for `models` models, from the calibration (inputs['monolith'][models], inputs['process'])
    and the pod figures (inputs['pods'])."""
    mono, proc, pods = inputs["monolith"][str(models)], inputs["process"], inputs["pods"]
    mono_work = {"predict": Work(tuple(mono["predict_samples_ms"]), mono["predict"]["cpu_s"]),
                 "train": Work(tuple(mono["train_samples_ms"]), mono["train"]["cpu_s"])}
    predict, train = proc["predict"], proc["train"]
    function_work = {
        "predict": Work(tuple(predict["samples_ms"]), predict["cpu_s"] + predict["gateway_cpu_s"]),
        "train": Work(tuple(train["samples_ms"]), train["cpu_s"] + train["gateway_cpu_s"])}
    cold = proc["without_pool"]["cold_start"]
    fresh_train = proc["without_pool"]["train_start"]
    gateway_part = (cold["median_ms"] - cold["replica_start_median_ms"]) / 1000  # routing the held request
    replicas = {
        "predict": Replica(predict["peak_rss_mib"], predict["rss_mib"], cold["median_ms"] / 1000, cold["start_cpu_s"]),
        "train": Replica(train["peak_rss_mib"], train["rss_mib"], fresh_train["replica_start_s"] + gateway_part,
                         fresh_train["start_cpu_s"]),
    }
    pooled_s = proc["with_pool"]["cold_start"]["median_ms"] / 1000
    zygotes = {kind: proc["zygote_mib"].get(kind, proc["zygote_mib"]["predict"]) for kind in replicas}
    pool = dict(pool_size=inputs["pool_size"], zygote_mib=zygotes)
    # a pod's start is the predict pod's measured one plus what this kind's process takes longer to start
    # (the train image imports scikit-learn)
    pod_replicas = {kind: Replica(r.reserved_mib, r.used_mib, pods["cold_s"] + r.cold_s - replicas["predict"].cold_s,
                                  r.start_cpu_s) for kind, r in replicas.items()}
    setups = {
        "monolith": Monolith("monolith", mono["peak_rss_mib"], mono["rss_mib"], mono_work,
                             start_cpu_s=mono["start_cpu_s"]),
        "monolith-hpa": Monolith("monolith-hpa", mono["peak_rss_mib"], mono["rss_mib"], mono_work, 1, 5,
                                 start_cpu_s=mono["start_cpu_s"]),
        "processes": Functions("processes", replicas, function_work, idle_timeout),
        "processes+pool": Functions("processes+pool", replicas, function_work, idle_timeout,
                                    pool_cold_s={k: pooled_s for k in replicas},
                                    refill_s={k: proc["refill_s"] for k in replicas}, **pool),
        "pods": Functions("pods", pod_replicas, function_work, idle_timeout),
        "pods+pool": Functions("pods+pool", pod_replicas, function_work, idle_timeout,
                               pool_cold_s={k: pods["pool_cold_s"] for k in replicas},
                               refill_s={k: pods["refill_s"] for k in replicas}, **pool),
    }
    for backend in ("processes", "pods"):
        setups[f"{backend}+predict-pool"] = Functions(**{**setups[f"{backend}+pool"].__dict__,
                                                         "name": f"{backend}+predict-pool", "pool_kinds": ("predict",)})
    return setups


def compact(result: dict) -> dict:
    """What the JSON keeps of a simulation (the CSVs keep every percentile)."""
    predict, train = result["latency"]["predict"], result["latency"]["train"]
    return {key: round(result[key], 1) if isinstance(result[key], float) else result[key]
            for key in ("duration_s", "reserved_mib_s", "used_mib_s", "pool_mib_s", "cpu_s", "cold_starts",
                        "cold_starts_from_pool", "replica_starts")} | {
        "requests": predict["requests"] + train["requests"],
        "predict_p50_ms": round(predict["p50_ms"], 2), "predict_p99_ms": round(predict["p99_ms"], 2),
        "train_p99_ms": round(train["p99_ms"], 2)}


def run(inputs: dict, tolerance_s: float, strict_tolerance_s: float, models_list=MODELS, patterns=PATTERNS,
        timeouts=IDLE_TIMEOUTS, seed: int = 1) -> tuple[list[dict], dict]:
    """Every point; returns (points, full results for the CSVs keyed by (setup, pattern name))."""
    points, full = [], {}
    for models in models_list:
        setups = build(inputs, models)
        for pattern in patterns:
            trace = generate(pattern, models, duration_for(pattern), seed=seed)
            always_on = {name: simulator.simulate(setups[name], trace, seed) for name in MONOLITHS}
            for timeout in timeouts:
                results = dict(always_on)
                for name in FUNCTIONS:
                    results[name] = simulator.simulate(with_timeout(setups[name], timeout), trace, seed)
                for name, result in results.items():
                    full.setdefault((name, pattern.name), []).append((models, timeout, result))
                points.append(point(models, pattern, timeout, results, tolerance_s, strict_tolerance_s))
    return points, full


def _winner(results: dict, limit_ms: float) -> tuple[str, list[str]]:
    eligible = [name for name, r in results.items() if r["latency"]["predict"]["p99_ms"] <= limit_ms]
    return min(eligible, key=lambda name: results[name]["reserved_mib_s"]), eligible


def point(models: int, pattern: Pattern, timeout: float, results: dict, tolerance_s: float,
          strict_tolerance_s: float) -> dict:
    """The winner with one cold start = tolerance_s (the seed's container start), and with the stricter
    strict_tolerance_s (this run's process cold start)."""
    limit = results["monolith"]["latency"]["predict"]["p99_ms"] + tolerance_s * 1000
    strict_limit = results["monolith"]["latency"]["predict"]["p99_ms"] + strict_tolerance_s * 1000
    winner, eligible = _winner(results, limit)
    strict_winner, _ = _winner(results, strict_limit)
    base = results["monolith"]["reserved_mib_s"]
    return {"models": models, "pattern": pattern.name, "mean_rate_per_model": pattern.mean_rate,
            "duty": pattern.duty, "rate_on": pattern.rate_on, "idle_timeout_s": timeout,
            "p99_limit_ms": round(limit, 1), "winner": winner, "eligible": eligible,
            "strict_p99_limit_ms": round(strict_limit, 1), "strict_winner": strict_winner,
            "reserved_vs_monolith": {name: round(r["reserved_mib_s"] / base, 4) for name, r in results.items()},
            "setups": {name: compact(r) for name, r in results.items()}}
