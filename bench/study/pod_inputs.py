"""The pod figures the study's model uses, read from results the node benchmark wrote (this benchmark never starts
a node): bench/results/pod_cold_start.json if the lead's in-cluster cold start run wrote one, else
bench/results/node.json (bench_node.py). Each figure says which file it came from and that file's date.
Re-read on every run, --model-only included: the study follows the lead's file once it exists."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


def file_date(path: Path) -> str:
    """The file's last commit date, or its modification time if it is not committed."""
    committed = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%cI", "--", str(path)],
                               capture_output=True, text=True, check=False).stdout.strip()
    return committed or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")


def _total(series) -> float | None:
    """A series' median total in bench_pod_cold_start.py's layout: {"median_seconds": {"total": ...}}."""
    if isinstance(series, dict) and isinstance(series.get("median_seconds"), dict):
        total = series["median_seconds"].get("total")
        return total if isinstance(total, (int, float)) else None
    return None


def pod_inputs(process_pool_cold_s: float, process_replica_mib: dict[str, float],
               zygote_mib: dict[str, float]) -> dict:
    """Pod cold start without and with a pool pod, and the RSS of a pod replica and a pool pod.

    Memory: neither result file measures pod RSS, so a pod's is taken as the process replica's measured here (the
    same program from the same image; the container's own overhead, a few MiB of pause and shim, is left out)."""
    inputs = {"rss_source": "no pod RSS in the node results: the process replica's and zygote's RSS measured in this "
                            "run (same program, same image; pause/shim overhead not counted)",
              "replica_mib": dict(process_replica_mib), "zygote_mib": dict(zygote_mib)}
    dedicated = RESULTS / "pod_cold_start.json"
    if dedicated.exists():
        document = json.loads(dedicated.read_text())
        without, with_pool = _total(document.get("without_pool")), _total(document.get("with_pool"))
        if without is not None:
            inputs.update(source=f"{dedicated.relative_to(ROOT)} ({file_date(dedicated)})", cold_s=without,
                          cold_key="without_pool.median_seconds.total (scaled to zero -> first answer through "
                                   "the gateway)")
            if with_pool is not None:
                inputs.update(pool_cold_s=with_pool, pool_cold_source="measured: with_pool.median_seconds.total")
    if "cold_s" not in inputs:
        node = RESULTS / "node.json"
        cold = json.loads(node.read_text())["cold_start"]
        parts = cold["median_parts_seconds"]
        inputs.update(source=f"{node.relative_to(ROOT)} ({file_date(node)})", cold_s=cold["median_total_seconds"],
                      cold_key="cold_start.median_total_seconds (scale 0 -> 1 -> Service endpoint ready, "
                               "faas-netes' readiness probe 2 s delay / every 2 s)",
                      parts_s=parts, first_answer_from_pod_s=cold["median_first_answer_from_pod_seconds"])
        fast = json.loads(node.read_text()).get("cold_start_fast_readiness_probe")
        if fast:
            inputs["cold_s_fast_probe"] = fast["median_total_seconds"]
    if "pool_cold_s" not in inputs:
        # Not measured yet: a pool pod is a running container whose process specialises as a pool process
        # does here, reached through a Service endpoint already there.
        inputs.update(pool_cold_s=round(process_pool_cold_s, 4),
                      pool_cold_source="modelled: the process pool's measured cold start (a pool pod's process "
                                       "specialises the same way; its container and endpoint exist already)")
    inputs["refill_s"] = round(float(inputs["cold_s"]), 3)  # a new pool pod takes a pod's start
    return inputs
