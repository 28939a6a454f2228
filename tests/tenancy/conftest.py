"""Fixtures for the attacker tests: a real `python -m iris_server` on 127.0.0.1, and tenants holding the
tokens the operator would mint for them (namespaced, with the MLFunction in their metadata)."""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from iris_client import IssuedToken, ModelStoreClient
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server


@dataclass
class Store:
    data_dir: Path
    admin_token: str
    url: str
    process: subprocess.Popen

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def client(self, token: str | None = None, **options) -> ModelStoreClient:
        return ModelStoreClient(self.url, self.admin_token if token is None else token, **options)

    @property
    def admin(self) -> ModelStoreClient:
        return self.client()

    def rss_bytes(self) -> int:
        """The server process's resident memory, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/<pid>/status")

    def blobs(self, model: str) -> list[Path]:
        """The artifact files the store keeps for `model` on its volume."""
        directory = self.data_dir / "artifacts" / model
        return sorted(directory.iterdir()) if directory.is_dir() else []

    def staged(self) -> list[Path]:
        return sorted((self.data_dir / "staging").iterdir())

    def stop(self) -> None:
        stop_iris_server(self.process)


@dataclass
class Tenant:
    """A namespace and the tokens minted for its MLFunctions, as the operator mints them."""

    store: Store
    namespace: str
    tokens: dict[str, IssuedToken] = field(default_factory=dict)

    def mint(self, name: str, models: list[str], rights: list[str]) -> ModelStoreClient:
        issued = self.store.admin.create_token(
            models,
            rights,
            f"mlfunctions-operator: MLFunction {self.namespace}/{name}",
            namespace=self.namespace,
            metadata={"mlfunction": f"{self.namespace}/{name}"},
        )
        self.tokens[name] = issued
        return self.client(name)

    def client(self, name: str, **options) -> ModelStoreClient:
        return self.store.client(self.tokens[name].token, retries=0, **options)


def start_store(root: Path, **settings: str | float) -> Store:
    """A store with IRIS_<NAME> settings, e.g. start_store(path, max_versions_per_model=3)."""
    data_dir = root / "store"
    admin_token = f"admin-{secrets.token_hex(16)}"
    env = {f"IRIS_{name.upper()}": str(value) for name, value in settings.items()}
    url, process = start_iris_server(data_dir, admin_token, extra_env=env)
    return Store(data_dir=data_dir, admin_token=admin_token, url=url, process=process)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """One store shared by a module's tests (they use distinct model names)."""
    server = start_store(tmp_path_factory.mktemp("tenancy"))
    yield server
    server.stop()


@pytest.fixture
def store_with(tmp_path):
    """Start stores with settings of one's own; stopped at the end of the test."""
    started: list[Store] = []

    def start(**settings) -> Store:
        server = start_store(tmp_path / f"s{len(started)}", **settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def tenants(store):
    """tenants("data-science") -> a Tenant of the module's store."""
    return lambda namespace: Tenant(store, namespace)
