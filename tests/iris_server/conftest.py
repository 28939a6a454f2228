"""Fixtures for iris-server tests: a real `python -m iris_server` on 127.0.0.1 with a temporary data dir, run
once per storage combination in iris_stores.STORE_BACKENDS (artifacts: the filesystem or a real SeaweedFS S3
server; catalog: SQLite or a real PostgreSQL). Every test that uses `iris` or `iris_factory` runs against each
combination. One SeaweedFS and one PostgreSQL (catalog_fixtures.py: a database per store) serve the whole
session, each started only when a combination needs it.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from catalog_fixtures import PostgresCatalogs, catalog_target, postgres  # noqa: F401 (fixtures)
from iris_stores import S3_BUCKET, STORE_BACKENDS, IrisServer, S3Bucket, StoreBackends
from mlfunctions_harness import seaweedfs


@pytest.fixture(scope="session")
def s3_bucket(tmp_path_factory) -> S3Bucket:
    """One real SeaweedFS for the session (built by hack/seaweedfs.sh on first use) and the tests' bucket."""
    server = seaweedfs.start(tmp_path_factory.mktemp("seaweedfs"))
    server.create_bucket(S3_BUCKET)
    yield S3Bucket(server, S3_BUCKET)
    server.stop()


@pytest.fixture(scope="module", params=STORE_BACKENDS, ids=lambda backends: backends.id)
def store_backends(request) -> tuple[StoreBackends, S3Bucket | None, PostgresCatalogs | None]:
    """The storage combination this module's stores run on; SeaweedFS and PostgreSQL are started only when one
    needs them."""
    backends: StoreBackends = request.param
    s3 = request.getfixturevalue("s3_bucket") if backends.artifacts == "s3" else None
    postgres = request.getfixturevalue("postgres") if backends.catalog == "postgresql" else None
    return backends, s3, postgres


def _server(root: Path, store_backends, **options) -> IrisServer:
    backends, s3, postgres = store_backends
    return IrisServer(
        data_dir=root / "store",
        admin_token=f"admin-{secrets.token_hex(16)}",
        backends=backends,
        s3=s3,
        postgres=postgres,
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
