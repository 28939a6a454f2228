"""Fixtures for iris-server tests: a real `python -m iris_server` on 127.0.0.1 with a temporary data dir."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from iris_client import ModelStoreClient
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server

from catalog_fixtures import catalog_target, postgres  # noqa: F401 (fixtures: the catalog databases)


@dataclass
class IrisServer:
    data_dir: Path
    admin_token: str
    url: str = ""
    process: subprocess.Popen | None = None
    options: dict = field(default_factory=dict)

    def start(self) -> IrisServer:
        self.url, self.process = start_iris_server(
            self.data_dir, self.admin_token, port=self.port, **self.options
        )
        return self

    @property
    def port(self) -> int | None:
        return int(self.url.rsplit(":", 1)[1]) if self.url else None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

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


def _server(root: Path, **options) -> IrisServer:
    return IrisServer(data_dir=root / "store", admin_token=f"admin-{secrets.token_hex(16)}", options=options)


@pytest.fixture(scope="module")
def iris(tmp_path_factory) -> IrisServer:
    """One running store shared by the tests of a module (they use distinct model names)."""
    server = _server(tmp_path_factory.mktemp("iris"), max_upload_bytes=2 * 1024 * 1024).start()
    yield server
    server.stop()


@pytest.fixture
def iris_factory(tmp_path):
    """Build (not start) stores of one's own, e.g. to kill and restart on one data dir; stopped at the end."""
    servers: list[IrisServer] = []

    def make(**options) -> IrisServer:
        server = _server(tmp_path / f"s{len(servers)}", **options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
