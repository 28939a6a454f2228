"""The operator's small IO layer over the Kubernetes API: get, server-side apply, create, delete, patches, list.

Objects are plain dicts (the API's JSON), not generated model classes: builders produce dicts, and decoding every
response into models would cost the operator CPU it needs when thousands of objects change at once. The session
and its credentials are kube_connection's; watches (for the caches of children) are streamed here too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from . import FIELD_MANAGER
from .kube_connection import ApiConnection, load_api_client  # noqa: F401 - the IO layer's one entry point

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
    def from_response(cls, status: int, reason: str, data: bytes) -> KubeError:
        try:
            body = json.loads(data or b"{}")
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return cls(status, body.get("reason") or reason, body.get("message") or data.decode(errors="replace")
                   or reason)

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


class Kube:
    """Requests as the operator's identity, with one field manager for every write."""

    def __init__(self, api: ApiConnection, field_manager: str = FIELD_MANAGER, timeout: float = 30.0):
        self.api = api
        self.field_manager = field_manager
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def request(self, method: str, path: str, *, body: Any = None, query: dict | None = None,
                      content_type: str = "application/json") -> tuple[int, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            try:
                async with self.api.session.request(method, self.api.server + path, params=query, data=data,
                                                    headers=headers, timeout=self.timeout) as response:
                    status, reason, payload = response.status, response.reason or "", await response.read()
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                raise KubeError(0, "Unreachable", f"API server unreachable: {error!r}") from error
            if status == 401 and attempt == 0 and self.api.relogin():
                continue  # a rotated ServiceAccount token: once more with the new one
            break
        if not 200 <= status <= 299:
            raise KubeError.from_response(status, reason, payload)
        return status, json.loads(payload) if payload else None

    async def watch(self, kind: Kind, namespace: str, label_selector: str,
                    resource_version: str) -> AsyncIterator[dict]:
        """The watch events ({"type", "object"}) of `kind` in `namespace` after `resource_version`, with
        bookmarks, until the API server ends the stream (it does after a few minutes)."""
        query = {"watch": "true", "labelSelector": label_selector, "resourceVersion": resource_version,
                 "allowWatchBookmarks": "true", "timeoutSeconds": "300"}
        try:
            async with self.api.session.get(self.api.server + kind.path(namespace), params=query,
                                            headers={"Accept": "application/json"},
                                            timeout=aiohttp.ClientTimeout(sock_read=330)) as response:
                if response.status != 200:
                    raise KubeError.from_response(response.status, response.reason or "", await response.read())
                async for line in response.content:
                    if line.strip():
                        yield json.loads(line)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise KubeError(0, "Unreachable", f"API server unreachable: {error!r}") from error

    async def list_with_version(self, kind: Kind, namespace: str, label_selector: str) -> tuple[list[dict], str]:
        """The objects and the list's resourceVersion (where a watch starts)."""
        listed = (await self.request("GET", kind.path(namespace), query={"labelSelector": label_selector}))[1]
        return listed.get("items", []), listed["metadata"]["resourceVersion"]

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
