"""Fixtures for iris-server tests: a real `python -m iris_server` on 127.0.0.1 with a temporary data dir, run
once per storage combination in STORE_BACKENDS.

Every test that uses `iris` or `iris_factory` runs against each combination (artifacts: the filesystem or a real
SeaweedFS S3 server; catalog: SQLite). A combination is (artifacts, catalog); each dimension maps to the IRIS_*
environment that selects it, built per store from its data dir (see `StoreBackends.env`), so adding a catalog
(PostgreSQL) means a new entry in STORE_BACKENDS and a branch in `env`. One SeaweedFS serves the whole session;
each store gets its own key prefix in one bucket, derived from its data dir, so a restart (or a second replica on
the same data dir) finds its artifacts and stores never see each other's.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from iris_client import ModelStoreClient
from mlfunctions_harness import seaweedfs
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server

from catalog_fixtures import catalog_target, postgres  # noqa: F401 (fixtures: the catalog databases)

S3_BUCKET = "iris-tests"
# Short enough for a test to watch the periodic sweep collect an orphan, long enough that no upload between its
# blob and its catalog row is mistaken for one (README: IRIS_ORPHAN_GRACE_SECONDS).
S3_TEST_GRACE_SECONDS = 5.0
S3_TEST_SWEEP_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class StoreBackends:
    """One storage combination a store runs on."""

    artifacts: str  # "filesystem" | "s3"
    catalog: str = "sqlite"

    @property
    def id(self) -> str:
        return f"{self.artifacts}-{self.catalog}"

    def env(self, data_dir: Path, s3: S3Bucket | None) -> dict[str, str]:
        """The IRIS_* variables that put a store with this data dir on these backends."""
        env: dict[str, str] = {}
        if self.artifacts == "s3":
            assert s3 is not None
            env.update(s3.env(data_dir))
        return env


STORE_BACKENDS = [StoreBackends("filesystem"), StoreBackends("s3")]


@dataclass
class S3Bucket:
    """The session's SeaweedFS and the bucket every S3-backed store of the session keeps its prefix in."""

    server: seaweedfs.SeaweedFS
    bucket: str

    @staticmethod
    def prefix_for(data_dir: Path) -> str:
        return "store-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16] + "/"

    def env(self, data_dir: Path) -> dict[str, str]:
        return {
            "IRIS_ARTIFACT_BACKEND": "s3",
            "IRIS_S3_ENDPOINT_URL": self.server.endpoint,
            "IRIS_S3_BUCKET": self.bucket,
            "IRIS_S3_PREFIX": self.prefix_for(data_dir),
            "IRIS_S3_REGION": seaweedfs.REGION,
            "IRIS_S3_ACCESS_KEY_ID": self.server.access_key,
            "IRIS_S3_SECRET_ACCESS_KEY": self.server.secret_key,
            "IRIS_ORPHAN_GRACE_SECONDS": str(S3_TEST_GRACE_SECONDS),
            "IRIS_SWEEP_INTERVAL_SECONDS": str(S3_TEST_SWEEP_INTERVAL_SECONDS),
        }

    def keys(self, data_dir: Path) -> list[str]:
        prefix = self.prefix_for(data_dir)
        pages = (
            self.server.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return sorted(item["Key"][len(prefix) :] for page in pages for item in page.get("Contents", []))


@dataclass
class IrisServer:
    data_dir: Path
    admin_token: str
    backends: StoreBackends = StoreBackends("filesystem")
    s3: S3Bucket | None = None
    url: str = ""
    process: subprocess.Popen | None = None
    options: dict = field(default_factory=dict)

    def start(self) -> IrisServer:
        options = dict(self.options)
        extra_env = {**self.backends.env(self.data_dir, self.s3), **options.pop("extra_env", {})}
        self.url, self.process = start_iris_server(
            self.data_dir, self.admin_token, port=self.port, extra_env=extra_env, **options
        )
        return self

    @property
    def port(self) -> int | None:
        return int(self.url.rsplit(":", 1)[1]) if self.url else None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def blob_keys(self) -> list[str]:
        """Every artifact blob the store keeps, in whichever backend it runs on."""
        if self.backends.artifacts == "s3":
            assert self.s3 is not None
            return self.s3.keys(self.data_dir)
        root = self.data_dir / "artifacts"
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def stop(self) -> None:
        if self.process is not None:
            stop_iris_server(self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush; what a crash or an OOM kill does."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def client(self, token: str | None = None, **options) -> ModelStoreClient:
        return ModelStoreClient(self.url, self.admin_token if token is None else token, **options)

    @property
    def admin(self) -> ModelStoreClient:
        return self.client()


@pytest.fixture(scope="session")
def s3_bucket(tmp_path_factory) -> S3Bucket:
    """One real SeaweedFS for the session (built by hack/seaweedfs.sh on first use) and the tests' bucket."""
    server = seaweedfs.start(tmp_path_factory.mktemp("seaweedfs"))
    server.create_bucket(S3_BUCKET)
    yield S3Bucket(server, S3_BUCKET)
    server.stop()


@pytest.fixture(scope="module", params=STORE_BACKENDS, ids=lambda backends: backends.id)
def store_backends(request) -> tuple[StoreBackends, S3Bucket | None]:
    """The storage combination this module's stores run on; SeaweedFS is started only when one needs it."""
    backends: StoreBackends = request.param
    s3 = request.getfixturevalue("s3_bucket") if backends.artifacts == "s3" else None
    return backends, s3


def _server(root: Path, store_backends, **options) -> IrisServer:
    backends, s3 = store_backends
    return IrisServer(
        data_dir=root / "store",
        admin_token=f"admin-{secrets.token_hex(16)}",
        backends=backends,
        s3=s3,
        options=options,
    )


@pytest.fixture(scope="module")
def iris(tmp_path_factory, store_backends) -> IrisServer:
    """One running store shared by the tests of a module (they use distinct model names)."""
    server = _server(
        tmp_path_factory.mktemp("iris"), store_backends, max_upload_bytes=2 * 1024 * 1024
    ).start()
    yield server
    server.stop()


@pytest.fixture
def iris_factory(tmp_path, store_backends):
    """Build (not start) stores of one's own, e.g. to kill and restart on one data dir; stopped at the end."""
    servers: list[IrisServer] = []

    def make(**options) -> IrisServer:
        server = _server(tmp_path / f"s{len(servers)}", store_backends, **options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
