"""Helpers for tests and benchmarks elsewhere (functions, operator, local stack): a real iris-server in a
subprocess, and small valid ONNX artifacts to store in it.

    url, process = start_iris_server(tmp_path / "store", admin_token="a-long-enough-admin-token")
    ...
    stop_iris_server(process)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import processes
from .processes import free_port

STARTUP_TIMEOUT_SECONDS = 30.0


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
    processes.NotHealthy (a RuntimeError) with the log's tail if it exits or is not ready in time.
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
    process = processes.spawn([sys.executable, "-m", "iris_server"], log_path, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_healthy(f"{url}/readyz", process, "iris-server", log_path, STARTUP_TIMEOUT_SECONDS)
    except processes.NotHealthy:
        stop_iris_server(process)
        raise
    return url, process


def stop_iris_server(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM (uvicorn drains in-flight requests), then SIGKILL if it does not exit in time."""
    processes.stop(process, timeout)


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
