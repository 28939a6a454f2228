"""The operator's small IO layer over the Kubernetes API: get, server-side apply, create, delete, patches, list.

Objects are plain dicts (the API's JSON), not generated model classes: builders produce dicts, and decoding every
response into models would cost the operator CPU it needs when thousands of objects change at once. Transport,
authentication and TLS come from the official client (kubernetes.aio), used through its generic request API.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config
from kubernetes.aio.client.exceptions import ApiException
from kubernetes.aio.config.config_exception import ConfigException

from . import FIELD_MANAGER

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    """A resource type: what a manifest's apiVersion/kind maps to on the API's URL paths."""

    api_version: str
    kind: str
    plural: str

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        root = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        path = f"{root}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        if name:
            path += f"/{quote(name, safe='')}"
        if subresource:
            path += f"/{subresource}"
        return path

    def describe(self, namespace: str, name: str) -> str:
        return f"{self.kind} {namespace}/{name}"


SECRET = Kind("v1", "Secret", "secrets")
SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts")
SERVICE = Kind("v1", "Service", "services")
PVC = Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims")
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
DISRUPTION_BUDGET = Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
ROLE = Kind("rbac.authorization.k8s.io/v1", "Role", "roles")
ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings")
FUNCTION = Kind("openfaas.com/v1", "Function", "functions")
MLFUNCTION = Kind("mlfunctions.dev/v1alpha1", "MLFunction", "mlfunctions")
MODELSTORE = Kind("mlfunctions.dev/v1alpha1", "ModelStore", "modelstores")
_KINDS = {(k.api_version, k.kind): k for k in (SECRET, SERVICE_ACCOUNT, SERVICE, PVC, DEPLOYMENT,
                                               DISRUPTION_BUDGET, ROLE, ROLE_BINDING, FUNCTION, MLFUNCTION,
                                               MODELSTORE)}


def kind_of(manifest: dict) -> Kind:
    return _KINDS[(manifest["apiVersion"], manifest["kind"])]


class KubeError(Exception):
    """An API request failed; `status` is the HTTP status (0 when the API server could not be reached)."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"{status} {reason}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message

    @classmethod
    def from_api_exception(cls, error: ApiException) -> KubeError:
        try:
            body = json.loads(error.body or "{}")
        except ValueError:
            body = {}
        return cls(int(error.status or 0), body.get("reason") or str(error.reason or ""),
                   body.get("message") or str(error.body or error.reason or ""))

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


@dataclass(frozen=True)
class Applied:
    obj: dict
    created: bool


async def load_api_client(kubeconfig: str | None = None, pool_size: int = 64) -> aio_client.ApiClient:
    """An async API client from $KUBECONFIG (or ~/.kube/config), else the in-cluster ServiceAccount."""
    configuration = aio_client.Configuration()
    try:
        await aio_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except (ConfigException, FileNotFoundError):
        aio_config.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    # Not trusting the environment spares aiohttp a netrc and a proxy lookup on a thread for every request; the
    # API server's proxy, if any, comes from the kubeconfig (proxy-url) like every other client setting.
    configuration.client_session_kwargs = {"trust_env": False}
    return aio_client.ApiClient(configuration)


class Kube:
    """Requests as the operator's identity, with one field manager for every write."""

    def __init__(self, api: aio_client.ApiClient, field_manager: str = FIELD_MANAGER, timeout: float = 30.0):
        self.api = api
        self.field_manager = field_manager
        self.timeout = timeout

    async def request(self, method: str, path: str, *, body: Any = None, query: dict | None = None,
                      content_type: str = "application/json") -> tuple[int, Any]:
        if query:
            path = f"{path}?{urlencode(query)}"
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            serialized = await self.api.param_serialize(method, path, header_params=headers, body=body,
                                                        auth_settings=["BearerToken"])
            response = await self.api.call_api(*serialized, _request_timeout=self.timeout)
            data = await response.read()
        except ApiException as error:
            raise KubeError.from_api_exception(error) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise KubeError(0, "Unreachable", f"API server unreachable: {error!r}") from error
        if not 200 <= response.status <= 299:
            raise KubeError.from_api_exception(ApiException(status=response.status, reason=response.reason,
                                                            body=data.decode(errors="replace")))
        return response.status, json.loads(data) if data else None

    async def get(self, kind: Kind, namespace: str, name: str, cached: bool = False) -> dict | None:
        """The object, or None. `cached`: from the API server's watch cache (resourceVersion=0), which spares
        etcd a read and may lag by milliseconds; right for an existence or ownership check."""
        query = {"resourceVersion": "0"} if cached else None
        try:
            return (await self.request("GET", kind.path(namespace, name), query=query))[1]
        except KubeError as error:
            if error.not_found:
                return None
            raise

    async def list(self, kind: Kind, namespace: str, label_selector: str | None = None) -> list[dict]:
        query = {"labelSelector": label_selector} if label_selector else None
        return (await self.request("GET", kind.path(namespace), query=query))[1].get("items", [])

    async def apply(self, manifest: dict) -> Applied:
        """Server-side apply: the fields in `manifest` become ours; fields we stop sending are removed."""
        meta = manifest["metadata"]
        status, obj = await self.request(
            "PATCH", kind_of(manifest).path(meta["namespace"], meta["name"]), body=manifest,
            query={"fieldManager": self.field_manager, "force": "true"},
            content_type="application/apply-patch+yaml",
        )
        return Applied(obj, created=status == 201)

    async def create(self, manifest: dict) -> dict | None:
        """Create `manifest`; None if an object of that name already exists (it is left untouched)."""
        meta = manifest["metadata"]
        try:
            return (await self.request("POST", kind_of(manifest).path(meta["namespace"]), body=manifest,
                                       query={"fieldManager": self.field_manager}))[1]
        except KubeError as error:
            if error.conflict and error.reason == "AlreadyExists":
                return None
            raise

    async def delete(self, kind: Kind, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete (in the background); with `uid`, only that very object. False if it was already gone."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", kind.path(namespace, name), body=body)
            return True
        except KubeError as error:
            if error.not_found:
                return False
            raise

    async def json_patch(self, kind: Kind, namespace: str, name: str, operations: list[dict]) -> dict:
        """A JSON patch (RFC 6902): its `test` operations make it conditional."""
        return (await self.request("PATCH", kind.path(namespace, name), body=operations,
                                   query={"fieldManager": self.field_manager},
                                   content_type="application/json-patch+json"))[1]

    async def merge_patch(self, kind: Kind, namespace: str, name: str, patch: dict,
                          subresource: str | None = None) -> dict:
        return (await self.request("PATCH", kind.path(namespace, name, subresource), body=patch,
                                   query={"fieldManager": self.field_manager},
                                   content_type="application/merge-patch+json"))[1]
