"""The study, redone (#11.3): when do functions that scale to zero beat a monolith? Trace-driven and
time-compressed, fed by costs measured on this machine in the same run, checked by real replays.

    .venv/bin/python bench/bench_study.py [--quick] [--model-only]

1. Calibration (measured, here, now; study/calibration.py): the monolith holding 1, 5 and 20 models (RSS, start,
   warm latency and CPU per request, called directly); the process backend behind the local gateway (cold start
   with and without the warm pool, warm latency, CPU per request, RSS of a predict replica, a train replica and a
   pool process). Pod cold start and memory from bench/results/pod_cold_start.json if present, else node.json
   (study/pod_inputs.py; this benchmark never starts a node).
2. The model (study/traces.py, simulator.py, sweep.py): synthetic traces (Zipf popularity, on/off bursts,
   one training per 100 predictions) over hours of simulated time, event by event, for six setups (monolith
   always on, monolith with a 1–5 replica HPA, functions on processes / pods, each without and with the shared
   pool), swept over 1/5/20 models, eight traffic patterns and idle timeouts of 1, 5 and 15 minutes.
3. Replays (measured vs modelled; study/replay.py): short real runs of compressed traces (idle timeout a few
   seconds) against the real monolith and the real functions through the local gateway, and the model on the
   same trace.

--model-only redoes 2 from the inputs and replays in bench/results/study.json (no servers started).
Writes bench/results/study.json, study_*.png and bench/results/study/*.csv (--quick: the same files in a new
temporary folder, printed last, so a smoke run never replaces the results); prints the JSON and a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from iris_client import ModelStoreClient
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server

from study import calibration, csvs, plots, pod_inputs, replay, simulator, sweep
from study.setups import on_cores
from study.traces import Pattern, generate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ADMIN_TOKEN = "bench-study-admin-token-0123456789"
POOL_SIZE = 1
ANCHORS = {"seed_container_start_s": 0.4, "openfaas_kubernetes_cold_start_s": [1.0, 2.0],
           "knative_cold_start_s": [2.0, 4.0], "fission_poolmgr_specialisation_s": 0.1}
# (name, models, pattern, idle timeout s, duration s, trainings): compressed so that gaps span the timeout
REPLAY_POINTS = (
    ("5 models bursty", 5, Pattern("replay bursty", 4.0, 0.2, 4.0), 2.0, 90.0, True),
    ("20 models rare", 20, Pattern("replay rare", 1 / 20, 1.0), 3.0, 90.0, False),
    ("1 model steady", 1, Pattern("replay steady", 5.0, 1.0), 2.0, 60.0, False),
)


def measure_inputs(work: Path, cleanup: ExitStack, quick: bool) -> tuple[dict, str, str]:
    store_url, store = start_iris_server(work / "store", ADMIN_TOKEN)
    cleanup.callback(stop_iris_server, store)
    token = ModelStoreClient(store_url, ADMIN_TOKEN).create_token(models=["*"], rights=["read", "write"]).token
    requests_each, trains, samples = (600, 4, 4) if quick else (2000, 8, 8)
    monoliths = {}
    for models in (20, 5, 1):  # the first trains every model into the store
        monoliths[str(models)] = calibration.monolith(models, store_url, token, work, cleanup, requests_each,
                                                      trains, train_models=models == 20)
    process = calibration.process_backend(store_url, token, work, cleanup, samples, requests_each, trains)
    return {"pool_size": POOL_SIZE, "monolith": monoliths, "process": process}, store_url, token


def add_pods(inputs: dict) -> None:
    proc = inputs["process"]
    inputs["pods"] = pod_inputs.pod_inputs(
        proc["with_pool"]["cold_start"]["median_ms"] / 1000,
        {"predict": proc["predict"]["peak_rss_mib"], "train": proc["train"]["peak_rss_mib"]}, proc["zygote_mib"])


def run_replays(inputs: dict, store_url: str, token: str, work: Path, cleanup: ExitStack, quick: bool,
                out: Path) -> list:
    results = []
    for name, models, pattern, timeout, duration, trainings in REPLAY_POINTS[:2] if quick else REPLAY_POINTS:
        duration = min(duration, 60.0) if quick else duration
        trace = generate(pattern, models, duration, seed=7, train_every=100 if trainings else 0)
        entry = {"point": name, "models": models, "idle_timeout_s": timeout, "duration_s": duration,
                 "requests": int(trace.times.size), "pattern": pattern.__dict__, "setups": {}}
        runs = {"monolith": lambda: replay.monolith(trace, models, store_url, token, work, cleanup),
                "processes+pool": lambda: replay.functions(trace, timeout, POOL_SIZE, store_url, token, work,
                                                           cleanup)}
        if not quick and name == "20 models rare":  # where the pool's size matters: without it as well
            runs["processes"] = lambda: replay.functions(trace, timeout, 0, store_url, token, work, cleanup)
        for setup, run in runs.items():
            measured = run()
            csvs.write_replay(csvs.replay_path(name, setup, out / "study"), measured, {})
            entry["setups"][setup] = {"measured": _comparable(measured)}
        results.append(entry)
    return results


def model_replays(inputs: dict, replays: list, cores: int, out: Path) -> None:
    """The model on each replay's trace (regenerated from its seed), as swept and with the starts sharing this
    machine's cores; the CSVs get the model rows beside the measured ones."""
    points = {name: (models, pattern, trainings) for name, models, pattern, _, _, trainings in REPLAY_POINTS}
    for entry in replays:
        models, pattern, trainings = points[entry["point"]]
        trace = generate(pattern, models, entry["duration_s"], seed=7, train_every=100 if trainings else 0)
        setups = sweep.build(inputs, models, entry["idle_timeout_s"])
        for setup, result in entry["setups"].items():
            modelled = {"model": simulator.simulate(setups[setup], trace, seed=7),
                        f"model-{cores}-cores": simulator.simulate(on_cores(setups[setup], cores), trace, seed=7)}
            csvs.write_replay(csvs.replay_path(entry["point"], setup, out / "study"), None, modelled)
            result["model"] = _comparable(modelled["model"])
            result["model_on_cores"] = _comparable(modelled[f"model-{cores}-cores"])


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def _comparable(result: dict) -> dict:
    predict = result["latency"]["predict"]
    starts = {}
    if "replica_start_s" in result:  # measured functions: the starts' own durations, fresh and from the pool
        starts = {"fresh_start_median_s": _median(result["replica_start_s"]),
                  "fresh_start_max_s": max(result["replica_start_s"], default=None),
                  "pool_start_median_s": _median(result["pool_replica_start_s"]),
                  "pool_start_max_s": max(result["pool_replica_start_s"], default=None)}
    return {**starts, "cold_starts": result["cold_starts"], "cold_starts_from_pool": result["cold_starts_from_pool"],
            "predict_p50_ms": round(predict["p50_ms"], 2), "predict_p99_ms": round(predict["p99_ms"], 2),
            "reserved_mib_s": round(result["reserved_mib_s"], 1), "used_mib_s": round(result["used_mib_s"], 1),
            "pool_mib_s": round(result["pool_mib_s"], 1), "failures": result.get("failures", 0)}


def conclusions(points: list[dict]) -> dict:
    """Where functions win (each win with its numbers), by setup, under both criteria."""
    wins = [p for p in points if p["winner"] in sweep.FUNCTIONS]
    by_setup = {setup: sum(p["winner"] == setup for p in points) for setup in sweep.SETUPS}
    strict = {setup: sum(p["strict_winner"] == setup for p in points) for setup in sweep.SETUPS}
    return {"points": len(points), "functions_win": len(wins), "wins_by_setup": by_setup,
            "functions_win_strict": sum(p["strict_winner"] in sweep.FUNCTIONS for p in points),
            "wins_by_setup_strict": strict,
            "function_wins": [f"{p['models']} models, {p['pattern']}, idle {p['idle_timeout_s'] / 60:g} min: "
                              f"{p['winner']} ×{p['reserved_vs_monolith'][p['winner']]:.2g} of the monolith's "
                              f"reserved MiB·s, p99 {p['setups'][p['winner']]['predict_p99_ms']:.0f} ms "
                              f"(monolith {p['setups']['monolith']['predict_p99_ms']:.1f} ms)" for p in wins],
            "monolith_wins": [f"{p['models']} models, {p['pattern']}, idle {p['idle_timeout_s'] / 60:g} min"
                              for p in points if p["winner"] not in sweep.FUNCTIONS]}


def summary_line(inputs: dict, points: list[dict], replays: list, tolerance_s: float) -> str:
    proc, pods = inputs["process"], inputs["pods"]
    mono = inputs["monolith"]
    found = conclusions(points)
    rarest = [p for p in points if p["models"] == 20 and p["pattern"] == "every hour" and p["idle_timeout_s"] == 300]
    check = "; ".join(f"{r['point']} {s}: cold {v['model']['cold_starts']}/{v['measured']['cold_starts']}, p99 "
                      f"{v['model']['predict_p99_ms']:.0f} (2-core starts {v['model_on_cores']['predict_p99_ms']:.0f})"
                      f"/{v['measured']['predict_p99_ms']:.0f} ms, reserved "
                      f"{v['model']['reserved_mib_s']:.0f}/{v['measured']['reserved_mib_s']:.0f} MiB·s"
                      for r in replays for s, v in r["setups"].items())
    rare = rarest[0] if rarest else None
    return (f"study: MEASURED here: process cold start {proc['without_pool']['cold_start']['median_ms']} ms without "
            f"pool (seed container start ~400 ms), {proc['with_pool']['cold_start']['median_ms']} ms with it (Fission "
            f"~100 ms); RSS predict {proc['predict']['rss_mib']} / train {proc['train']['rss_mib']} / zygote "
            f"{proc['zygote_mib']} MiB; monolith 1/5/20 models {mono['1']['rss_mib']}/{mono['5']['rss_mib']}/"
            f"{mono['20']['rss_mib']} MiB. FROM FILE: pod cold start {pods['cold_s']} s ({pods['source']}; OpenFaaS "
            f"1-2 s, Knative 2-4 s), pool pod {pods['pool_cold_s']} s ({pods['pool_cold_source'].split(':')[0]}). "
            f"MODELLED: functions win {found['functions_win']}/{found['points']} points (one cold start = "
            f"{tolerance_s * 1000:.0f} ms, the seed's; {found['functions_win_strict']} with this run's "
            f"{inputs['process']['without_pool']['cold_start']['median_ms']:.0f} ms)" + (f"; 20 models called hourly, idle 5 min: winner {rare['winner']} at "
                                              f"×{rare['reserved_vs_monolith'][rare['winner']]:.2g} of the monolith's "
                                              f"reserved MiB·s" if rare else "")
            + f". CHECKED (model/measured): {check}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples, two shorter replays")
    parser.add_argument("--model-only", action="store_true", help="reuse study.json's measured inputs and replays")
    options = parser.parse_args()
    load_before, began = os.getloadavg()[0], time.monotonic()
    # a smoke run (--quick) keeps the committed results: its files go to a folder of their own
    out = Path(tempfile.mkdtemp(prefix="bench-study-quick-")) if options.quick else RESULTS
    if options.model_only:
        previous = json.loads((RESULTS / "study.json").read_text())
        inputs, replays, measured_at = previous["inputs"], previous["replays"], previous["measured_at"]
        machine = previous["machine"]  # where and under what load the measurements were taken
    else:
        measured_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        machine = None
        with tempfile.TemporaryDirectory(prefix="bench-study-") as tmp, ExitStack() as cleanup:
            work = Path(tmp)
            inputs, store_url, token = measure_inputs(work, cleanup, options.quick)
            add_pods(inputs)
            replays = run_replays(inputs, store_url, token, work, cleanup, options.quick, out)
    add_pods(inputs)  # again with --model-only: the pod results may be newer than the measurements
    model_replays(inputs, replays, os.cpu_count(), out)
    tolerance_s = ANCHORS["seed_container_start_s"]
    strict_s = inputs["process"]["without_pool"]["cold_start"]["median_ms"] / 1000
    points, full = sweep.run(inputs, tolerance_s, strict_s)
    result = {
        "benchmark": "study",
        "measured_at": measured_at, "quick": options.quick,
        "machine": machine or {"cpus": os.cpu_count(), "python": platform.python_version(),
                               "load": f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"},
        "anchors": ANCHORS,
        "what_is_measured": "inputs.monolith and inputs.process (this machine, this run), replays[*].measured",
        "what_is_read": f"inputs.pods from {inputs['pods']['source']}",
        "what_is_modelled": "points (the sweep) and replays[*].model",
        "criterion": f"winner = fewest reserved MiB·s among setups whose predict p99 <= the always-on monolith's "
                     f"+ one cold start ({tolerance_s * 1000:.0f} ms: the seed study's container start); "
                     f"strict_winner: the same with {strict_s * 1000:.0f} ms (this run's process cold start without "
                     f"pool, which a p99 made of cold starts exceeds by the gateway's few ms)",
        "inputs": inputs, "replays": replays, "conclusions": conclusions(points), "points": points,
        "seconds": round(time.monotonic() - began, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps(result, indent=1) + "\n")
    csvs.write_sweep(full, out / "study")
    plots.memory_and_latency(points, tolerance_s, out / "study_memory_latency.png")
    plots.crossover(points, (tolerance_s * 1000, strict_s * 1000), out / "study_crossover.png")
    plots.replays(replays, out / "study_replays.png")
    print(json.dumps({k: v for k, v in result.items() if k != "points"}, indent=1))
    print(summary_line(inputs, points, replays, tolerance_s))
    if options.quick:
        print(f"study (quick): files in {out}")


if __name__ == "__main__":
    main()
