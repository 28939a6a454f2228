"""The HTTP clients of the benchmark: first correct answer, sequential latency on one kept-alive connection,
closed-loop throughput (with the server's CPU per request), and a JSON POST for training."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import statistics
import subprocess
import time
from typing import Any

from . import servers
from .config import ROW


def predict_body(rows: int) -> bytes:
    return json.dumps({"instances": [ROW] * rows}).encode()


def first_correct_prediction(port: int, process: subprocess.Popen, deadline: float) -> None:
    body = predict_body(1)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before answering")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("POST", "/", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status == 200 and json.loads(answer)["predictions"] == ["virginica"]:
                return
            time.sleep(0.002)
        except ConnectionRefusedError:
            time.sleep(0.002)
        finally:
            connection.close()
    raise RuntimeError("no correct prediction before the deadline")


def latencies(port: int, rows: int, requests: int, seconds: float, warmup: int = 300) -> dict[str, float]:
    """Sequential requests on one keep-alive connection: what one client waits per request. Stops after
    `requests` or `seconds`, whichever comes first (a slow baseline gets fewer samples, not a longer run)."""
    body, headers = predict_body(rows), {"Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples: list[float] = []
    warm_until = time.monotonic() + seconds / 5
    for _ in range(warmup):
        roundtrip(connection, body, headers)
        if time.monotonic() > warm_until:
            break
    deadline = time.monotonic() + seconds
    while len(samples) < requests and time.monotonic() < deadline:
        started = time.perf_counter_ns()
        roundtrip(connection, body, headers)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    connection.close()
    return percentiles(samples)


def roundtrip(connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> None:
    connection.request("POST", "/", body, headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        raise RuntimeError(f"{response.status}: {answer[:200]!r}")


def throughput(port: int, pid: int, rows: int, connections: int, seconds: float) -> dict[str, Any]:
    """Closed loop: `connections` keep-alive clients send the next request as soon as the answer is in.

    The load generator shares this machine's cores with the server (and with whatever else runs), so the
    server's own CPU time per request is measured too: 1 / that is what one process serves with a core to
    itself."""
    import uvloop

    body = predict_body(rows)
    request = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    samples: list[float] = []
    failures = 0

    async def client(end: float) -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < end:
            started = time.perf_counter_ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            samples.append((time.perf_counter_ns() - started) / 1e6)
            failures += not head.startswith(b"HTTP/1.1 200")
        writer.close()

    async def run() -> tuple[float, float]:
        await asyncio.gather(*(client(time.perf_counter() + 0.5) for _ in range(connections)))  # warm-up
        samples.clear()
        cpu_before, started = servers.cpu_ms(pid), time.perf_counter()
        await asyncio.gather(*(client(started + seconds) for _ in range(connections)))
        return time.perf_counter() - started, servers.cpu_ms(pid) - cpu_before

    elapsed, server_cpu_ms = uvloop.run(run())
    if failures:
        raise RuntimeError(f"{failures} requests failed under load")
    cpu_per_request_us = server_cpu_ms * 1000 / len(samples)
    return {
        "requests_per_second": round(len(samples) / elapsed),
        "connections": connections,
        "latency_under_load_ms": percentiles(samples),
        "server_cpu_share": round(server_cpu_ms / 1000 / elapsed, 2),
        "server_cpu_per_request_us": round(cpu_per_request_us, 1),
        "requests_per_second_per_core": round(1e6 / cpu_per_request_us),
    }


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)], 3),
        "n": len(ordered),
    }


def post_json(port: int, document: dict[str, Any]) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("POST", "/", json.dumps(document).encode(), {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"{response.status}: {answer}")
    return answer
