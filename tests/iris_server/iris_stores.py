"""The stores iris-server tests run: a real `python -m iris_server` process, and the storage combinations
(STORE_BACKENDS) it runs on. conftest.py turns these into fixtures; tests that build stores of their own import
them from here (not from conftest, which another folder's conftest can shadow in a full run).

A combination is (artifacts, catalog); each dimension maps to the IRIS_* environment that selects it, built per
store from its data dir (`StoreBackends.env`), so adding a catalog means a new entry in STORE_BACKENDS and a
branch in `env`. S3-backed stores share one bucket, each under its own key prefix derived from its data dir, so
a restart (or a second replica on the same data dir) finds its artifacts and stores never see each other's.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from iris_client import ModelStoreClient
from mlfunctions_harness import seaweedfs
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server

from catalog_fixtures import PostgresCatalogs

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

    def env(self, data_dir: Path, s3: S3Bucket | None, postgres: PostgresCatalogs | None = None) -> dict[str, str]:
        """The IRIS_* variables that put a store with this data dir on these backends."""
        env: dict[str, str] = {}
        if self.artifacts == "s3":
            assert s3 is not None
            env.update(s3.env(data_dir))
        if self.catalog == "postgresql":  # the data dir's own database: a restart finds its catalog
            assert postgres is not None
            env["IRIS_DATABASE_URL"] = postgres.url_for(data_dir)
        return env


STORE_BACKENDS = [
    StoreBackends("filesystem"),
    StoreBackends("s3"),
    StoreBackends("filesystem", "postgresql"),
    StoreBackends("s3", "postgresql"),
]


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
    postgres: PostgresCatalogs | None = None  # the session's PostgreSQL, for the "postgresql" catalog
    url: str = ""
    process: subprocess.Popen | None = None
    options: dict = field(default_factory=dict)

    def start(self) -> IrisServer:
        options = dict(self.options)
        extra_env = {
            **self.backends.env(self.data_dir, self.s3, self.postgres),
            **options.pop("extra_env", {}),
        }
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

    @property
    def catalog_target(self) -> str | Path:
        """What Catalog() takes to open this store's catalog from the test process: its PostgreSQL database's
        URL, or its SQLite file."""
        if self.backends.catalog == "postgresql":
            assert self.postgres is not None
            return self.postgres.url_for(self.data_dir)
        return self.data_dir / "catalog.sqlite3"

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
