"""Benchmark of iris-server's backends (issue #16): filesystem + SQLite against S3 (SeaweedFS) + PostgreSQL,
with 1 and with 3 replicas sharing the bucket and the database, in one run.

Configurations, all started at once and measured in alternating rounds (so load from elsewhere on a shared
machine falls on all of them alike):
  fs_sqlite      filesystem artifacts + SQLite catalog, 1 iris-server process (the baseline)
  s3_pg          S3 (SeaweedFS) + PostgreSQL, 1 process
  s3_pg_3        S3 + PostgreSQL, 3 processes on the same bucket prefix and database; clients spread their
                 requests round-robin over the 3, as a Service would
Measured for each: upload and download throughput of 1 MB and 50 MB ONNX models (median MB/s, with iris_client,
which hashes what it sends and receives), 304 freshness checks (GET artifact with If-None-Match, as predict
functions do) and metadata GETs (describe `latest`, list versions) per second from RATE_CLIENTS concurrent
client processes, and 20 concurrent uploads to one model across the replicas, asserted to give 20 distinct,
gap-free versions whose digests match the bytes sent. Anchor in the same run: the same bytes PUT to and GET
from SeaweedFS directly with boto3 (what the S3 backend can at best reach through one object store).

    .venv/bin/python bench/bench_store_backends.py      # ~4 minutes; JSON to stdout and bench/results/
"""

from __future__ import annotations

import hashlib
import http.client
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_iris_server import ADMIN_TOKEN, _server_cpu_seconds
from iris_client import ModelStoreClient
from mlfunctions_harness import seaweedfs
from mlfunctions_harness.model_store import onnx_model, start_iris_server, stop_iris_server
from mlfunctions_harness.postgres import PostgresServer

RESULTS = Path(__file__).resolve().parent / "results" / "store_backends.json"
BUCKET = "bench-models"
SIZES = {"1mb": 250_000, "50mb": 12_500_000}  # float32 constants in the ONNX model: ~4 bytes each
TRANSFER_ROUNDS = {"1mb": 7, "50mb": 3}
RATE_CLIENTS = 3
RATE_SECONDS = 2.0
RATE_ROUNDS = 3
CONCURRENT_UPLOADS = 20
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


# --- closed-loop rate clients: long-lived processes, so no round pays for spawning and importing ---------------


def _client_process(index: int, jobs, results) -> None:
    connections: dict[int, http.client.HTTPConnection] = {}

    def get(port: int, path: str, headers: dict[str, str], status: int) -> None:
        for attempt in (1, 2):
            connection = connections.setdefault(port, http.client.HTTPConnection("127.0.0.1", port, timeout=30))
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                # The server closes keep-alive connections idle for 5 s (between rounds): reconnect.
                connection.close()
                del connections[port]
                if attempt == 2:
                    raise
        response.read()
        assert response.status == status, (port, path, response.status)

    while (job := jobs.get()) is not None:
        ports, path, headers, status, start_at, seconds = job
        for k in range(20 * len(ports)):  # warm every connection
            get(ports[k % len(ports)], path, headers, status)
        time.sleep(max(0.0, start_at - time.time()))
        done, deadline = index, time.time() + seconds  # start each client on a different replica
        while time.time() < deadline:
            get(ports[done % len(ports)], path, headers, status)
            done += 1
        results.put(done - index)


class RateClients:
    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.results = context.Queue()
        self.jobs = [context.Queue() for _ in range(count)]
        self.processes = [
            context.Process(target=_client_process, args=(i, queue, self.results), daemon=True)
            for i, queue in enumerate(self.jobs)
        ]
        for process in self.processes:
            process.start()

    def rate(self, ports: list[int], pids: list[int], path: str, headers: dict[str, str], status: int
             ) -> tuple[float, float]:
        """(requests per second, server CPU ms per request summed over the replicas) of one round."""
        start_at = time.time() + 1.5  # time for the clients to warm their connections
        for queue in self.jobs:
            queue.put((ports, path, headers, status, start_at, RATE_SECONDS))
        time.sleep(max(0.0, start_at - time.time()))
        cpu_before = sum(_server_cpu_seconds(pid) for pid in pids)
        total = sum(self.results.get(timeout=120) for _ in self.jobs)
        cpu = sum(_server_cpu_seconds(pid) for pid in pids) - cpu_before
        return total / RATE_SECONDS, cpu / total * 1e3

    def close(self) -> None:
        for queue in self.jobs:
            queue.put(None)
        for process in self.processes:
            process.join(timeout=10)


# --- the three stores ------------------------------------------------------------------------------------------


class Store:
    def __init__(self, name: str, root: Path, replicas: int, env: dict[str, str]) -> None:
        self.name, self.urls, self.processes = name, [], []
        for replica in range(replicas):
            url, process = start_iris_server(root / name / f"replica-{replica}", ADMIN_TOKEN,
                                             log_level="warning", extra_env=env)
            self.urls.append(url)
            self.processes.append(process)
        self.clients = [ModelStoreClient(url, ADMIN_TOKEN, timeout=120) for url in self.urls]
        self.ports = [int(url.rsplit(":", 1)[1]) for url in self.urls]
        self.pids = [process.pid for process in self.processes]
        self._next = 0

    def client(self) -> ModelStoreClient:
        """The next replica's client, round-robin."""
        self._next += 1
        return self.clients[self._next % len(self.clients)]

    def stop(self) -> None:
        for process in self.processes:
            stop_iris_server(process)


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _transfer_round(store: Store, size: str, data: bytes) -> tuple[float, float]:
    """(upload seconds, download seconds) of one model version, the download from another replica when
    there are several (what a Service's next connection may give)."""
    model = f"transfer-{size}"
    holder: dict[str, int] = {}
    upload = _timed(lambda: holder.update(version=store.client().upload(model, data).version))
    download = _timed(lambda: store.client().download(model, holder["version"]))
    return upload, download


def _anchor_round(s3: seaweedfs.SeaweedFS, size: str, data: bytes) -> tuple[float, float]:
    client = s3.client()
    key = f"anchor/{size}"
    upload = _timed(lambda: client.put_object(Bucket=BUCKET, Key=key, Body=data))
    download = _timed(lambda: hashlib.sha256(client.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    return upload, download


def _concurrent_uploads(store: Store) -> dict[str, object]:
    """CONCURRENT_UPLOADS distinct ~1 MB models uploaded at once to one fresh model, spread over the replicas;
    asserts distinct gap-free versions and digests matching the bytes, in the answers and in the listing."""
    blobs = [onnx_model(seed=1000 + i, floats=250_000) for i in range(CONCURRENT_UPLOADS)]
    digests = [hashlib.sha256(blob).hexdigest() for blob in blobs]
    model = "concurrent"
    clients = [ModelStoreClient(store.urls[i % len(store.urls)], ADMIN_TOKEN, timeout=120)
               for i in range(CONCURRENT_UPLOADS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENT_UPLOADS) as pool:
        answers = list(pool.map(lambda i: clients[i].upload(model, blobs[i]), range(CONCURRENT_UPLOADS)))
    seconds = time.perf_counter() - started
    versions = sorted(answer.version for answer in answers)
    assert versions == list(range(1, CONCURRENT_UPLOADS + 1)), versions
    assert [answer.sha256 for answer in answers] == digests
    listed = {v.version: v.sha256 for v in store.clients[-1].list_versions(model)}
    assert listed == {answer.version: answer.sha256 for answer in answers}, listed
    sample = answers[len(answers) // 2]  # and the bytes behind one of them, from another replica
    assert hashlib.sha256(store.clients[0].download(model, sample.version).data).hexdigest() == sample.sha256
    return {"uploads": CONCURRENT_UPLOADS, "distinct_versions": len(set(versions)), "gap_free": True,
            "digests_match": True, "seconds": round(seconds, 3),
            "uploads_per_second": round(CONCURRENT_UPLOADS / seconds, 1)}


def _mb_per_second(size_bytes: int, seconds: list[float]) -> dict[str, float]:
    median = statistics.median(seconds)
    return {"median_mb_per_second": round(size_bytes / median / 1e6, 1), "median_seconds": round(median, 4),
            "rounds": len(seconds)}


def measure(stores: list[Store], s3: seaweedfs.SeaweedFS, rate_clients: RateClients) -> dict[str, dict]:
    blobs = {size: onnx_model(seed=7, floats=floats) for size, floats in SIZES.items()}
    results: dict[str, dict] = {store.name: {"replicas": len(store.urls)} for store in stores}

    for size, blob in blobs.items():
        timings = {name: ([], []) for name in [*results, "anchor_seaweedfs_direct"]}
        for store in stores:  # warm-up: first connections, the bucket's first volumes, page cache
            _transfer_round(store, size, blob)
        _anchor_round(s3, size, blob)
        for _ in range(TRANSFER_ROUNDS[size]):
            for store in stores:
                for series, seconds in zip(timings[store.name], _transfer_round(store, size, blob)):
                    series.append(seconds)
            for series, seconds in zip(timings["anchor_seaweedfs_direct"], _anchor_round(s3, size, blob)):
                series.append(seconds)
        for name, (uploads, downloads) in timings.items():
            results.setdefault(name, {})[f"upload_{size}"] = _mb_per_second(len(blob), uploads)
            results[name][f"download_{size}"] = _mb_per_second(len(blob), downloads)

    probes = {}
    for store in stores:
        store.clients[0].upload("probe", onnx_model(seed=3, floats=64), metadata={"dataset": "iris"})
        probes[store.name] = store.clients[0].download("probe").etag
    targets = {
        "not_modified_304": ("/v1/models/probe/versions/latest/artifact", 304, True),
        "describe_latest": ("/v1/models/probe/versions/latest", 200, False),
        "list_versions": ("/v1/models/transfer-1mb/versions", 200, False),
    }
    rounds = {(store.name, target): [] for store in stores for target in targets}
    for _ in range(RATE_ROUNDS):
        for target, (path, status, conditional) in targets.items():
            for store in stores:
                headers = {**AUTH, **({"If-None-Match": probes[store.name]} if conditional else {})}
                rounds[(store.name, target)].append(
                    rate_clients.rate(store.ports, store.pids, path, headers, status))
    for (name, target), measured in rounds.items():
        results[name][target] = {
            "requests_per_second": round(statistics.median(rps for rps, _ in measured), 1),
            "requests_per_second_by_round": [round(rps, 1) for rps, _ in measured],
            "server_cpu_ms_per_request": round(statistics.median(cpu for _, cpu in measured), 3),
            "client_processes": RATE_CLIENTS,
            "seconds_per_round": RATE_SECONDS,
        }

    for store in stores:
        results[store.name]["concurrent_uploads"] = _concurrent_uploads(store)
    return results


def main() -> int:
    load_before = os.getloadavg()
    started = time.monotonic()
    stores: list[Store] = []
    with tempfile.TemporaryDirectory(prefix="iris-backends-bench-") as tmp:
        root = Path(tmp)
        s3 = seaweedfs.start(root / "seaweedfs")
        postgres = PostgresServer().start()
        rate_clients = RateClients(RATE_CLIENTS)
        try:
            s3.create_bucket(BUCKET)

            def s3_env(prefix: str, database: str) -> dict[str, str]:
                return {
                    "IRIS_ARTIFACT_BACKEND": "s3", "IRIS_S3_ENDPOINT_URL": s3.endpoint, "IRIS_S3_BUCKET": BUCKET,
                    "IRIS_S3_PREFIX": prefix, "IRIS_S3_REGION": seaweedfs.REGION,
                    "IRIS_S3_ACCESS_KEY_ID": s3.access_key, "IRIS_S3_SECRET_ACCESS_KEY": s3.secret_key,
                    "IRIS_DATABASE_URL": postgres.create_database(database),
                }

            stores.append(Store("fs_sqlite", root, 1, {}))
            stores.append(Store("s3_pg", root, 1, s3_env("s3-pg/", "s3_pg")))
            stores.append(Store("s3_pg_3", root, 3, s3_env("s3-pg-3/", "s3_pg_3")))
            results = measure(stores, s3, rate_clients)
        finally:
            rate_clients.close()
            for store in stores:
                store.stop()
            s3.stop()
            postgres.remove()
    load_after = os.getloadavg()
    document = {
        "machine": {
            "python": platform.python_version(),
            "cpus": multiprocessing.cpu_count(),
            "server_workers_per_replica": 1,
            "shared": "other helpers' processes were running on this machine during the run",
            "load_average_1m_5m_15m": {"before": [round(x, 2) for x in load_before],
                                       "after": [round(x, 2) for x in load_after]},
            "run_seconds": round(time.monotonic() - started, 1),
        },
        "method": {
            "baseline": "fs_sqlite (filesystem + SQLite, 1 process)",
            "anchor": "anchor_seaweedfs_direct: the same bytes PUT/GET straight to SeaweedFS with boto3",
            "transfer": "iris_client upload/download (both hash the bytes), median over rounds alternating between"
                        " configurations; with 3 replicas each call goes to the next replica",
            "rates": f"{RATE_CLIENTS} closed-loop client processes, keep-alive http.client, each request to the"
                     f" next replica; median of {RATE_ROUNDS} rounds of {RATE_SECONDS} s, alternating",
            "list_versions": f"a model with {1 + TRANSFER_ROUNDS['1mb']} versions",
        },
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))
    print(summary(results, load_before[0]))
    return 0


def summary(results: dict[str, dict], load: float) -> str:
    def one(name: str) -> str:
        r = results[name]
        return (f"{name}: up/down 1MB {r['upload_1mb']['median_mb_per_second']}/"
                f"{r['download_1mb']['median_mb_per_second']} MB/s, 50MB {r['upload_50mb']['median_mb_per_second']}/"
                f"{r['download_50mb']['median_mb_per_second']} MB/s, 304 {r['not_modified_304']['requests_per_second']:.0f}/s,"
                f" describe {r['describe_latest']['requests_per_second']:.0f}/s,"
                f" list {r['list_versions']['requests_per_second']:.0f}/s,"
                f" 20 concurrent uploads -> {r['concurrent_uploads']['distinct_versions']} versions ok")
    anchor = results["anchor_seaweedfs_direct"]
    return ("store backends | " + " | ".join(one(name) for name in ("fs_sqlite", "s3_pg", "s3_pg_3"))
            + f" | anchor SeaweedFS direct 50MB put/get {anchor['upload_50mb']['median_mb_per_second']}/"
            f"{anchor['download_50mb']['median_mb_per_second']} MB/s | load {load:.1f}")


if __name__ == "__main__":
    sys.exit(main())
