"""Entry point of an mlfunctions function: serves the handler's ASGI app on $HOST:$PORT, itself fulfilling
OpenFaaS's workload contract (no watchdog in front of it):

- it listens on $PORT (the image sets 8080 and HOST=0.0.0.0) and the handler answers GET /_/health;
- GET /_/metrics answers the function's Prometheus metrics (function_metrics.py);
- $TMPDIR/.lock (/tmp/.lock in the image) exists while it serves, for exec probes and docker's HEALTHCHECK;
- it writes nothing outside the temporary directory;
- on SIGTERM it removes the lock, stops accepting, lets requests in flight finish, then exits;
- with $MLFUNCTIONS_POOL_TOKEN_FILE set it starts as a pool replica that becomes one function when told to
  (function_pool.py).

Tests and the local runtime start it as a plain process with PORT and FUNCTION_DIR (the folder holding
handler.py) set; HOST defaults to 127.0.0.1 there."""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
import tempfile
import time

STARTED = time.monotonic()  # the cold start counts from here: imports, handler set-up, model-free listening
from pathlib import Path
from types import FrameType

import uvicorn

import function_metrics
import function_pool
import function_support


class FunctionServer(uvicorn.Server):
    """uvicorn plus the lock file: created once the socket listens, removed as soon as a stop is asked for, so
    an exec probe fails before the process is gone."""

    def __init__(self, config: uvicorn.Config, lock_file: Path) -> None:
        super().__init__(config)
        self.lock_file = lock_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.lock_file.touch()
            function_metrics.serving_since(STARTED)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.lock_file.unlink(missing_ok=True)
        super().handle_exit(sig, frame)


def main() -> None:
    # Before numpy loads: OpenBLAS would otherwise start a spinning thread per core, which doubles the CPU a
    # cold start burns and competes with the request path. A replica computes on one core; replicas scale out.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    function_support.configure_logging()
    function_dir = Path(os.environ.get("FUNCTION_DIR") or Path(__file__).resolve().parent / "function")
    sys.path.insert(0, str(function_dir))
    pool_token = os.environ.get("MLFUNCTIONS_POOL_TOKEN_FILE")
    try:
        if pool_token:  # a pre-started replica waiting to become a function (function_pool.py)
            function_pool.preload()
            app = function_pool.PoolApp(Path(pool_token))
        else:
            app = function_metrics.MetricsMiddleware(importlib.import_module("handler").create_app())
    except function_support.ConfigError as error:
        # A misconfigured function must not limp along: say what is wrong and exit, so the pod shows it.
        logging.getLogger("function").critical("configuration error: %s", error)
        sys.exit(2)
    config = uvicorn.Config(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8080")),
        http="httptools",
        loop="uvloop",
        log_config=None,  # our JSON logging, configured above
        access_log=os.environ.get("ACCESS_LOG", "") == "1",  # one line per request costs latency; opt-in
        server_header=False,
        timeout_graceful_shutdown=float(os.environ.get("GRACEFUL_SHUTDOWN_SECONDS", "25")),
    )
    # The watchdog's place: $TMPDIR, i.e. /tmp in the image (the only writable path there).
    lock_file = Path(tempfile.gettempdir()) / ".lock"
    try:
        FunctionServer(config, lock_file).run()
    finally:
        lock_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
