"""Writing kubeconfig files: the admin one (client certificate) and ones that act as a ServiceAccount (token)."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def cluster_entry(server: str, ca_cert: Path) -> dict:
    """The `cluster` part of a kubeconfig for an API server whose CA is in `ca_cert`."""
    return {"server": server, "certificate-authority-data": _b64(ca_cert)}


def current_cluster_entry(kubeconfig: Path) -> dict:
    """The `cluster` part of the current context of an existing kubeconfig."""
    document = yaml.safe_load(kubeconfig.read_text())
    context_name = document["current-context"]
    context = next(c["context"] for c in document["contexts"] if c["name"] == context_name)
    return next(c["cluster"] for c in document["clusters"] if c["name"] == context["cluster"])


def _write(path: Path, cluster: dict, user: dict, name: str) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mlfunctions-dev", "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": "mlfunctions-dev", "user": name}}],
        "current-context": name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


def write_admin(path: Path, cluster: dict, client_cert: Path, client_key: Path) -> Path:
    user = {"client-certificate-data": _b64(client_cert), "client-key-data": _b64(client_key)}
    return _write(path, cluster, user, "admin")


def write_token(path: Path, cluster: dict, token: str, name: str) -> Path:
    return _write(path, cluster, {"token": token}, name)
