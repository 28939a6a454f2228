"""Why the predict function has its own small ASGI layer (functions/predict/asgi_json.py): what the layer
costs per request and at start, against Starlette and FastAPI serving the same routes with the same handler.

All three apps get the predict function's route table (a dozen routes, some with path parameters) and the same
handler body on POST / (read the body, parse the JSON, answer a small JSON document), and are called
in-process with ASGI messages, so only the layer is measured: no socket, no server, no model. Reported: CPU
per request (median of rounds), and the time and memory that importing each layer adds to an interpreter that
has already imported uvicorn (as every function has). Runs in the project's venv, which has Starlette and
FastAPI (the predict function's does not).

    .venv/bin/python bench/bench_predict_asgi.py    # under a minute; JSON to bench/results/predict_asgi.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

REPO = Path(__file__).resolve().parents[1]
PREDICT_DIR = REPO / "functions" / "predict"
RESULTS = REPO / "bench" / "results" / "predict_asgi.json"
FUNCTIONS_RESULTS = REPO / "bench" / "results" / "functions.json"
BODY = json.dumps({"instances": [[6.3, 3.3, 6.0, 2.5]]}).encode()
ANSWER = {"predictions": ["virginica"], "model": {"name": "iris", "version": 1}}
# The predict function's routes (functions/predict/handler.py); only POST / is called.
ROUTES = [
    ("POST", "/"),
    ("POST", "/v1/models/{model}:predict"),
    ("GET", "/v1/models/{model}"),
    ("POST", "/v2/models/{model}/infer"),
    ("POST", "/v2/models/{model}/versions/{version}/infer"),
    ("GET", "/v2/models/{model}"),
    ("GET", "/v2/models/{model}/ready"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2/health/live"),
    ("GET", "/_/health"),
]
IMPORTS = {
    "asgi_json": f"import sys; sys.path.insert(0, {str(PREDICT_DIR)!r}); import asgi_json",
    "starlette": "import starlette.applications, starlette.routing, starlette.requests, starlette.responses",
    "fastapi": "import fastapi, fastapi.responses",
}


def asgi_json_app():
    sys.path.insert(0, str(PREDICT_DIR))
    from asgi_json import JsonApp

    async def handler(request):
        json.loads(await request.body())
        return 200, ANSWER

    return JsonApp([(method, path, handler) for method, path in ROUTES], max_body=32 * 1024 * 1024)


def starlette_app():
    async def handler(request):
        json.loads(await request.body())
        return JSONResponse(ANSWER)

    return Starlette(routes=[Route(path, handler, methods=[method]) for method, path in ROUTES])


def fastapi_app():
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    async def handler(request: Request):
        json.loads(await request.body())
        return JSONResponse(ANSWER)

    for method, path in ROUTES:
        app.add_api_route(path, handler, methods=[method])
    return app


APPS = {"asgi_json": asgi_json_app, "starlette": starlette_app, "fastapi": fastapi_app}


def cpu_per_request_us(app, requests: int, rounds: int) -> dict[str, float]:
    """CPU time of `requests` sequential POST / calls, per call; the median and the best of `rounds`."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def one_round() -> float:
        started = time.process_time_ns()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        return (time.process_time_ns() - started) / 1000 / requests

    async def measure() -> list[float]:
        await one_round()  # warm-up
        return [await one_round() for _ in range(rounds)]

    samples = asyncio.run(measure())
    if set(statuses) != {200}:
        raise RuntimeError(f"the app answered {sorted(set(statuses))}, not only 200")
    return {"median_us": round(statistics.median(samples), 1), "best_us": round(min(samples), 1)}


def import_cost(code: str, runs: int) -> dict[str, float]:
    """Wall time and RSS growth of the import, in a fresh interpreter (median of `runs`)."""
    # VmRSS, not ru_maxrss: the peak survives exec, so it would start at this (larger) process's. uvicorn and
    # what it loads are imported first: every function has them, so only what the layer adds is counted.
    probe = (
        "import asyncio, json, logging, re, time, uvicorn\n"
        "def rss_kb():\n"
        "    return int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "before, started = rss_kb(), time.perf_counter()\n"
        f"{code}\n"
        "print((time.perf_counter() - started) * 1000, rss_kb() - before)"
    )
    times, memory = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
        ms, kb = out.split()
        times.append(float(ms))
        memory.append(int(kb) / 1024)
    return {
        "import_ms": round(statistics.median(times), 1),
        "import_rss_mb": round(statistics.median(memory), 1),
    }


def run(requests: int, rounds: int, import_runs: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    layers = {}
    for name, make in APPS.items():
        cpu = cpu_per_request_us(make(), requests, rounds)
        layers[name] = {**cpu, **import_cost(IMPORTS[name], import_runs)}
    mine = layers["asgi_json"]["median_us"]
    for name, layer in layers.items():
        layer["extra_us_vs_asgi_json"] = round(layer["median_us"] - mine, 1)
    result: dict[str, Any] = {
        "benchmark": "predict_asgi",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {package: metadata.version(package) for package in ("starlette", "fastapi")},
        "requests_per_round": requests,
        "rounds": rounds,
        "layers": layers,
    }
    if FUNCTIONS_RESULTS.exists():
        # The whole request as the predict function serves it (bench_functions.py): the layer's share of it.
        served = json.loads(FUNCTIONS_RESULTS.read_text())["onnxruntime_function"]["throughput_1_row"]
        result["predict_function_cpu_per_request_us"] = served["server_cpu_per_request_us"]
    return result


def summary(result: dict[str, Any]) -> str:
    layers = result["layers"]
    parts = [
        f"{name} {layer['median_us']} us/request, "
        f"import {layer['import_ms']} ms / {layer['import_rss_mb']} MB"
        for name, layer in layers.items()
    ]
    whole = result.get("predict_function_cpu_per_request_us")
    context = f"; the predict function's whole request: {whole} us of CPU" if whole else ""
    return "ASGI layer (in-process, CPU): " + "; ".join(parts) + context


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests and runs (a smoke run)")
    args = parser.parse_args()
    result = run(2000, 3, 3) if args.quick else run(20000, 7, 7)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(summary(result))


if __name__ == "__main__":
    main()
