"""Helpers for tests and benchmarks elsewhere (functions, operator, local stack): a real iris-server in a
subprocess, and small valid ONNX artifacts to store in it.

    url, process = start_iris_server(tmp_path / "store", admin_token="a-long-enough-admin-token")
    ...
    stop_iris_server(process)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

STARTUP_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_iris_server(
    data_dir: Path,
    admin_token: str,
    port: int | None = None,
    *,
    max_upload_bytes: int | None = None,
    workers: int = 1,
    log_level: str = "info",
    extra_env: dict[str, str] | None = None,
) -> tuple[str, subprocess.Popen]:
    """Run `python -m iris_server` on 127.0.0.1 and return (base URL, process) once /readyz answers 200.

    The server's log goes to `<data_dir>/../<data_dir name>.log` (outside the data dir, which it owns). Raises
    RuntimeError with the log's tail if it exits or is not ready in time.
    """
    data_dir = Path(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    # An inherited token file would win over admin_token (see config.py): drop it unless asked for.
    inherited = {key: value for key, value in os.environ.items() if key != "IRIS_ADMIN_TOKEN_FILE"}
    env = {
        **inherited,
        "IRIS_DATA_DIR": str(data_dir),
        "IRIS_ADMIN_TOKEN": admin_token,
        "IRIS_HOST": "127.0.0.1",
        "IRIS_PORT": str(port),
        "IRIS_WORKERS": str(workers),
        "IRIS_LOG_LEVEL": log_level,
        **({"IRIS_MAX_UPLOAD_BYTES": str(max_upload_bytes)} if max_upload_bytes else {}),
        **(extra_env or {}),
    }
    log_path = data_dir.parent / f"{data_dir.name}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "iris_server"], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"iris-server exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return url, process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    stop_iris_server(process)
    raise RuntimeError(f"iris-server not ready after {STARTUP_TIMEOUT_SECONDS}s:\n{_tail(log_path)}")


def stop_iris_server(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM (uvicorn drains in-flight requests), then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def onnx_model(seed: int = 0, floats: int = 4) -> bytes:
    """A valid ONNX model Y = X + C, about 4 * `floats` bytes; its constant C (`floats` values drawn from
    `seed`) makes its bytes unique."""
    import numpy as np
    from onnx import TensorProto, checker, helper, numpy_helper

    values = np.random.default_rng(seed).random(floats, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "C"], ["Y"])],
        f"sample-{seed}",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, floats])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, floats])],
        initializer=[numpy_helper.from_array(values, name="C")],
    )
    model = helper.make_model(graph, producer_name="iris-tests", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    checker.check_model(model)
    return model.SerializeToString()
