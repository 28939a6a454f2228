"""Reading the Kubernetes API: GET and LIST only, over one httpx client.

The console never writes to the cluster, so it needs no client library: its ServiceAccount's token (re-read
from its file, which the kubelet rotates) or a kubeconfig's token or client certificate, the cluster's CA, and
JSON."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

IN_CLUSTER = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MLFUNCTIONS = ("mlfunctions.dev", "v1alpha1", "mlfunctions")
MODELSTORES = ("mlfunctions.dev", "v1alpha1", "modelstores")
FUNCTIONS = ("openfaas.com", "v1", "functions")


class KubeError(Exception):
    """The API server refused (status) or could not be reached (status None); the message says which."""

    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Credentials:
    server: str
    ssl: ssl.SSLContext | bool
    token: str = ""
    token_file: Path | None = None

    def bearer(self) -> str:
        if self.token_file is not None:
            return self.token_file.read_text().strip()  # projected tokens are rotated in place
        return self.token


def in_cluster() -> Credentials:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not (IN_CLUSTER / "token").exists():
        raise KubeError(
            None, "not in a pod with a ServiceAccount token and no kubeconfig given: set CONSOLE_KUBECONFIG"
        )
    host = f"[{host}]" if ":" in host else host
    context = ssl.create_default_context(cafile=str(IN_CLUSTER / "ca.crt"))
    return Credentials(server=f"https://{host}:{port}", ssl=context, token_file=IN_CLUSTER / "token")


def from_kubeconfig(path: Path) -> Credentials:
    """The current context of a kubeconfig: server, CA, and a token or a client certificate."""
    try:
        document = yaml.safe_load(path.read_text())
        context_name = document["current-context"]
        context = next(c["context"] for c in document["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in document["clusters"] if c["name"] == context["cluster"])
        user = next((u["user"] for u in document.get("users") or [] if u["name"] == context.get("user")), {})
    except (OSError, yaml.YAMLError, KeyError, StopIteration, TypeError) as error:
        raise KubeError(None, f"kubeconfig {path} cannot be used: {error}") from None
    server = cluster["server"].rstrip("/")
    verify: ssl.SSLContext | bool = True
    if server.startswith("https://"):
        if cluster.get("insecure-skip-tls-verify"):
            verify = False
        else:
            verify = _ca_context(cluster)
            _load_client_cert(verify, user)
    token_file = Path(user["tokenFile"]) if user.get("tokenFile") else None
    return Credentials(server=server, ssl=verify, token=user.get("token", ""), token_file=token_file)


def _ca_context(cluster: dict) -> ssl.SSLContext:
    if cluster.get("certificate-authority-data"):
        return ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    if cluster.get("certificate-authority"):
        return ssl.create_default_context(cafile=cluster["certificate-authority"])
    return ssl.create_default_context()


def _load_client_cert(context: ssl.SSLContext, user: dict) -> None:
    if user.get("client-certificate") and user.get("client-key"):
        context.load_cert_chain(user["client-certificate"], user["client-key"])
    elif user.get("client-certificate-data") and user.get("client-key-data"):
        # ssl loads certificates from files only: a private temporary folder, removed at once.
        with tempfile.TemporaryDirectory(prefix="console-cert-") as folder:
            cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
            cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            context.load_cert_chain(str(cert), str(key))


class Kube:
    """GET and LIST of the three kinds the console shows, as plain dicts."""

    def __init__(self, credentials: Credentials, timeout: float = 10.0):
        self.credentials = credentials
        self._http = httpx.AsyncClient(base_url=credentials.server, verify=credentials.ssl, timeout=timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def list(self, kind: tuple[str, str, str], namespace: str | None = None) -> list[dict[str, Any]]:
        group, version, plural = kind
        where = f"/namespaces/{namespace}" if namespace else ""
        return (await self._get(f"/apis/{group}/{version}{where}/{plural}", plural))["items"]

    async def get(self, kind: tuple[str, str, str], namespace: str, name: str) -> dict[str, Any] | None:
        group, version, plural = kind
        try:
            return await self._get(f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}", plural)
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret, decoded (None: no such Secret or key). The console's Role allows this only for
        the Secrets it names (resourceNames): the train functions' invoke credentials."""
        try:
            secret = await self._get(f"/api/v1/namespaces/{namespace}/secrets/{name}", "secrets")
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        encoded = (secret.get("data") or {}).get(key)
        try:
            return base64.b64decode(encoded).decode().strip() if encoded else None
        except (ValueError, UnicodeDecodeError):
            return None

    async def _get(self, path: str, what: str) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        token = self.credentials.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        try:
            answer = await self._http.get(path, headers=headers)
        except httpx.HTTPError as error:
            raise KubeError(
                None,
                f"the Kubernetes API server at {self.credentials.server} did not answer "
                f"({type(error).__name__} after {time.monotonic() - started:.1f}s)",
            ) from None
        if answer.status_code == 200:
            return answer.json()
        try:
            message = answer.json().get("message", "")
        except ValueError:
            message = answer.text[:300]
        raise KubeError(answer.status_code, f"reading {what}: {answer.status_code} {message}".strip())
