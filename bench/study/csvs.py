"""Locust-style CSVs of the study: one file per setup and pattern (<setup>-<pattern>_stats.csv), one row per
trace point (models, idle timeout) and request name, with Locust's columns (times in ms) and the study's own
measures after them. Replays get one file per point and setup, measured and modelled rows side by side."""

from __future__ import annotations

import csv
from pathlib import Path

from study.simulator import PERCENTILES
from study.sweep import slug

LOCUST = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
          "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s"] + [
          f"{p:g}%" for p in PERCENTILES]
STUDY = ["Cold Starts", "Cold Starts From Pool", "Replica Starts", "Reserved MiB·s", "Used MiB·s", "Pool MiB·s",
         "CPU s", "Simulated s"]
NAMES = {"predict": "predict", "train": "train", "all": "Aggregated"}


def _rows(result: dict, failures: int = 0) -> list[dict]:
    rows = []
    for key, name in NAMES.items():
        stats = result["latency"][key]
        row = {"Type": "POST" if key != "all" else "", "Name": name, "Request Count": stats["requests"],
               "Failure Count": failures if key == "all" else "", "Median Response Time": round(stats["p50_ms"], 2),
               "Average Response Time": round(stats["mean_ms"], 3), "Min Response Time": round(stats["min_ms"], 3),
               "Max Response Time": round(stats["max_ms"], 2), "Average Content Size": "",
               "Requests/s": round(stats["rps"], 4), "Failures/s": 0.0}
        row.update({f"{p:g}%": round(stats[f"p{p:g}_ms"], 2) for p in PERCENTILES})
        row.update({"Cold Starts": result.get("cold_starts", 0),
                    "Cold Starts From Pool": result.get("cold_starts_from_pool", 0),
                    "Replica Starts": result.get("replica_starts", ""),
                    "Reserved MiB·s": round(result["reserved_mib_s"], 1), "Used MiB·s": round(result["used_mib_s"], 1),
                    "Pool MiB·s": round(result.get("pool_mib_s", 0.0), 1), "CPU s": round(result.get("cpu_s", 0), 3)
                    if "cpu_s" in result else "", "Simulated s": result["duration_s"]})
        rows.append(row)
    return rows


def write_sweep(full: dict, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for (setup, pattern), entries in full.items():
        path = directory / f"{setup}-{slug(pattern)}_stats.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, ["Models", "Idle Timeout s"] + LOCUST + STUDY)
            writer.writeheader()
            seen = set()
            for models, timeout, result in entries:
                always_on = setup.startswith("monolith")
                if always_on and models in seen:  # no idle timeout: one row set per model count
                    continue
                seen.add(models)
                for row in _rows(result):
                    writer.writerow({"Models": models, "Idle Timeout s": "" if always_on else timeout, **row})
        written.append(path)
    return written


def replay_path(point: str, setup: str, directory: Path) -> Path:
    return directory / f"replay-{slug(point)}-{setup}_stats.csv"


def write_replay(path: Path, measured: dict | None, modelled: dict[str, dict]) -> Path:
    """Measured rows (from `measured`, or kept from the file when it is None: --model-only) and the model's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = []
    if measured is None:
        with open(path, newline="") as handle:
            kept = [row for row in csv.DictReader(handle) if row["Source"] == "measured"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["Source"] + LOCUST + STUDY)
        writer.writeheader()
        writer.writerows(kept)
        sources = ([("measured", measured)] if measured is not None else []) + list(modelled.items())
        for source, result in sources:
            for row in _rows(result, result.get("failures", 0)):
                writer.writerow({"Source": source, **row})
    return path
