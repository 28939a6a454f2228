"""Where the /system/secrets API keeps secrets (faas-provider's secrets endpoints, `faas-cli secret`). Standalone,
LocalSecrets keeps them under the state dir, one private file per secret; on a cluster, kube_secrets.KubeSecrets
keeps them as Kubernetes Secrets in the function namespace, as faas-netes does. Values are written and handed to
replicas, never listed back."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Protocol

from local_openfaas.runtime.spec import FunctionSpec

# Kubernetes' DNS-1123 rules: a Secret's name is a subdomain, a namespace a label. Checked in both modes, so a
# name that works standalone works on a cluster, and no name can climb out of the state dir.
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class InvalidSecret(ValueError):
    pass


class SecretExists(Exception):
    pass


class SecretNotFound(LookupError):
    pass


def check_namespace(namespace: str) -> None:
    if not (0 < len(namespace) <= 63 and _LABEL.match(namespace)):
        raise InvalidSecret(f"invalid namespace {namespace!r}: lower-case letters, digits and '-', "
                            "at most 63 characters")


def check_names(namespace: str, name: str) -> None:
    if not (0 < len(name) <= 253 and _SUBDOMAIN.match(name)):
        raise InvalidSecret(f"invalid secret name {name!r}: lower-case letters, digits, '-' and '.', "
                            "starting and ending with a letter or digit, at most 253 characters")
    check_namespace(namespace)


class SecretStore(Protocol):
    """Each call may raise InvalidSecret; create raises SecretExists, update and delete SecretNotFound; a store
    behind a control plane may raise provider.ProviderUnavailable."""

    async def names(self, namespace: str) -> list[str]: ...
    async def create(self, namespace: str, name: str, value: bytes) -> None: ...
    async def update(self, namespace: str, name: str, value: bytes) -> None: ...
    async def delete(self, namespace: str, name: str) -> None: ...


class LocalSecrets:
    """Standalone: `<root>/<namespace>/<name>`, folders 0700 and files 0600. Also the runtime's secret loader, so
    a function that names these secrets reads them from OPENFAAS_SECRETS_DIR as it would on OpenFaaS."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, namespace: str, name: str) -> Path:
        check_names(namespace, name)
        return self.root / namespace / name

    async def names(self, namespace: str) -> list[str]:
        check_namespace(namespace)
        folder = self.root / namespace
        return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []

    async def create(self, namespace: str, name: str, value: bytes) -> None:
        path = self._path(namespace, name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise SecretExists(f"secret {name} already exists in namespace {namespace}") from None
        with os.fdopen(fd, "wb") as file:
            file.write(value)

    async def update(self, namespace: str, name: str, value: bytes) -> None:
        path = self._path(namespace, name)
        if not path.is_file():
            raise SecretNotFound(f"secret {name} not found in namespace {namespace}")
        staged = path.with_name(f".{name}.new")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(value)
        os.replace(staged, path)  # a replica starting meanwhile reads the old value or the new, never half

    async def delete(self, namespace: str, name: str) -> None:
        try:
            self._path(namespace, name).unlink()
        except FileNotFoundError:
            raise SecretNotFound(f"secret {name} not found in namespace {namespace}") from None

    async def read_for(self, spec: FunctionSpec) -> dict[str, bytes]:
        """The function's secrets, one file per secret named after it (as faas-netes stores them: key = name)."""
        files = {}
        for name in spec.secrets:
            path = self._path(spec.namespace, name)
            try:
                files[name] = await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:
                raise LookupError(f"secret {name} not found in namespace {spec.namespace}; "
                                  "create it with faas-cli secret create") from None
        return files
