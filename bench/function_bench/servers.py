"""The processes the benchmark measures: the functions in their own venvs, and the scikit-learn baseline
(bench_functions.py again, in the train function's venv); stopping them; their memory and CPU from /proc."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .config import ENTRY


def free_port() -> int:
    from mlfunctions_harness.processes import free_port as harness_free_port

    return harness_free_port()


def start_function(name: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    from local_openfaas import funcenv

    folder = funcenv.FUNCTIONS_DIR / name
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            funcenv.function_command(folder),
            env=funcenv.function_environment(folder, port, env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, port


def start_baseline(model_path: Path, log: Path) -> tuple[subprocess.Popen, int]:
    """bench_functions.py again, as the baseline server, in the train function's venv (which has
    scikit-learn)."""
    from local_openfaas import funcenv

    folder = funcenv.FUNCTIONS_DIR / "train"
    port = free_port()
    env = funcenv.function_environment(folder, port)
    python = str(funcenv.function_python(folder))
    command = [python, str(ENTRY), "--baseline-server", str(model_path), str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, port


def in_train_venv(*args: str) -> None:
    from local_openfaas import funcenv

    folder = funcenv.FUNCTIONS_DIR / "train"
    subprocess.run(
        [str(funcenv.function_python(folder)), str(ENTRY), *args],
        env=funcenv.function_environment(folder, 0),
        check=True,
    )


def wait_healthy(port: int, process: subprocess.Popen, log: Path) -> None:
    from mlfunctions_harness.processes import wait_healthy as harness_wait_healthy

    harness_wait_healthy(f"http://127.0.0.1:{port}/_/health", process, "the function", log, timeout=120)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def memory_mb(pid: int) -> dict[str, float]:
    """RSS (what the target is about), its peak, and the private part (USS: what another replica would not
    share)."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {key: int(value) for key, value in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE)}
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    private = sum(int(v) for v in re.findall(r"^Private_(?:Clean|Dirty):\s+(\d+) kB", rollup, re.MULTILINE))
    return {
        "rss_mb": round(kb["VmRSS"] / 1024, 1),
        "peak_rss_mb": round(kb["VmHWM"] / 1024, 1),
        "private_mb": round(private / 1024, 1),
    }


def cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
