"""Entry point of an mlfunctions function: serves the handler's ASGI app on 127.0.0.1:$PORT.

In the image, of-watchdog (http mode) starts this process and proxies to upstream_url (PORT=5000 there). Tests
and the local runtime start it as a plain process with PORT and FUNCTION_DIR (the folder holding handler.py)
set."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path

import uvicorn

import function_support


def main() -> None:
    # Before numpy loads: OpenBLAS would otherwise start a spinning thread per core, which doubles the CPU a
    # cold start burns and competes with the request path. A replica computes on one core; replicas scale out.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    function_support.configure_logging()
    function_dir = Path(os.environ.get("FUNCTION_DIR") or Path(__file__).resolve().parent / "function")
    sys.path.insert(0, str(function_dir))
    try:
        app = importlib.import_module("handler").create_app()
    except function_support.ConfigError as error:
        # A misconfigured function must not limp along: say what is wrong and exit, so the pod shows it.
        logging.getLogger("function").critical("configuration error: %s", error)
        sys.exit(2)
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8080")),
        http="httptools",
        loop="uvloop",
        log_config=None,  # our JSON logging, configured above
        access_log=os.environ.get("ACCESS_LOG", "") == "1",  # one line per request costs latency; opt-in
        server_header=False,
        timeout_graceful_shutdown=float(os.environ.get("GRACEFUL_SHUTDOWN_SECONDS", "30")),
    )


if __name__ == "__main__":
    main()
