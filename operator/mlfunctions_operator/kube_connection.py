"""The connection to the API server: credentials read the way kopf's own login functions read them (the
kubeconfig's current context, else the pod's ServiceAccount), and one aiohttp session over them.

No Kubernetes client library: the operator sends and receives the API's JSON as dicts, and importing the official
client (its ~700 generated model classes, which kopf would also import to recognise them) would cost the operator
about 60 MB of memory for nothing. kopf logs in with the same credentials (handlers.login), so the operator has one
identity, not two.

A kubeconfig may name a server, a CA, client certificates, a token or basic auth, as kopf's login reads them; exec
plugins and auth providers that need a refresh are not run (inside the cluster, the ServiceAccount is used). The
ServiceAccount's token is projected and rotated by the kubelet: it is read again when the API server answers 401.
"""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import kopf
import yaml


class ConnectionError(Exception):
    """No credentials: neither a kubeconfig nor a ServiceAccount."""


def connection_info(kubeconfig: str | None = None) -> kopf.ConnectionInfo:
    """Credentials from `kubeconfig` (default: $KUBECONFIG, else ~/.kube/config), else the in-cluster
    ServiceAccount."""
    path = kubeconfig or _default_kubeconfig()
    if path:
        return _from_kubeconfig(Path(path).expanduser())
    settings = kopf.OperatorSettings()
    settings.networking.trust_env = False
    info = kopf.login_with_service_account(settings=settings)
    if info is None:
        raise ConnectionError("no kubeconfig ($KUBECONFIG, ~/.kube/config) and no ServiceAccount token: cannot "
                              "reach the API server")
    return info


def _default_kubeconfig() -> str | None:
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p.strip()]
    if paths:
        return paths[0].strip()  # the first file that names a current context wins, as kubectl reads them
    home = Path("~/.kube/config").expanduser()
    return str(home) if home.exists() else None


def _from_kubeconfig(path: Path) -> kopf.ConnectionInfo:
    config = yaml.safe_load(path.read_text()) or {}
    current = config.get("current-context")
    if not current:
        raise ConnectionError(f"{path}: no current-context")

    def named(section: str, name: str) -> dict:
        found = next((item for item in config.get(section) or [] if item.get("name") == name), None)
        if found is None:
            raise ConnectionError(f"{path}: current-context {current!r} names {section[:-1]} {name!r}, which is "
                                  "not in the file")
        return found.get(section[:-1]) or {}

    context = named("contexts", current)
    cluster, user = named("clusters", context.get("cluster", "")), named("users", context.get("user", ""))
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    return kopf.ConnectionInfo(
        server=cluster.get("server"),
        ca_path=_relative(path, cluster.get("certificate-authority")),
        ca_data=cluster.get("certificate-authority-data"),
        insecure=cluster.get("insecure-skip-tls-verify"),
        certificate_path=_relative(path, user.get("client-certificate")),
        certificate_data=user.get("client-certificate-data"),
        private_key_path=_relative(path, user.get("client-key")),
        private_key_data=user.get("client-key-data"),
        username=user.get("username"),
        password=user.get("password"),
        token=token,
        default_namespace=context.get("namespace"),
        proxy_url=cluster.get("proxy-url"),
        trust_env=False,
    )


def _relative(kubeconfig: Path, value: str | None) -> str | None:
    """Paths in a kubeconfig are relative to the file (as kubectl reads them)."""
    return str((kubeconfig.parent / value).resolve()) if value else None


class ApiConnection:
    """One aiohttp session to the API server, as the operator's identity, with at most `pool_size` connections
    (each TLS connection costs ~300 KB of buffers)."""

    def __init__(self, info: kopf.ConnectionInfo, pool_size: int, kubeconfig: str | None = None):
        self.server = (info.server or "").rstrip("/")
        self._kubeconfig = kubeconfig
        self._token = info.token
        # Not trusting the environment spares aiohttp a netrc and a proxy lookup on a thread for every request;
        # the API server's proxy, if any, comes from the kubeconfig (proxy-url).
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size, ssl=info.as_ssl_context()),
            headers=info.as_http_headers(), proxy=info.proxy_url, trust_env=False)

    def relogin(self) -> bool:
        """Read the credentials again (a rotated ServiceAccount token); True if the token changed."""
        try:
            info = connection_info(self._kubeconfig)
        except (ConnectionError, OSError):
            return False
        if not info.token or info.token == self._token:
            return False
        self._token = info.token
        self.session.headers.update(info.as_http_headers())
        return True

    async def close(self) -> None:
        await self.session.close()


async def load_api_client(kubeconfig: str | None = None, pool_size: int = 64) -> ApiConnection:
    """A connection from `kubeconfig` ($KUBECONFIG or ~/.kube/config by default), else the in-cluster
    ServiceAccount."""
    return ApiConnection(connection_info(kubeconfig), pool_size, kubeconfig)
