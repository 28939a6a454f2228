"""The /system/secrets API on a cluster, as faas-netes has it: each secret is a Kubernetes Secret in the function
namespace, named after the secret, with one key of the same name (so it is mounted as
/var/openfaas/secrets/<name>), labelled app.kubernetes.io/managed-by=openfaas. Only Secrets with that label are
listed, updated or deleted: the API cannot touch the namespace's other Secrets."""

from __future__ import annotations

import base64

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from local_openfaas.runtime.kube import REQUEST_SECONDS, UNREACHABLE
from local_openfaas.runtime.provider import ProviderUnavailable
from local_openfaas.runtime.secret_store import SecretExists, SecretNotFound, check_names

MANAGED_BY = ("app.kubernetes.io/managed-by", "openfaas")


class KubeSecrets:
    def __init__(self, core: client.CoreV1Api):
        self._core = core

    async def names(self, namespace: str) -> list[str]:
        try:
            found = await self._call(self._core.list_namespaced_secret(
                namespace, label_selector="=".join(MANAGED_BY), _request_timeout=REQUEST_SECONDS), "listing",
                namespace)
        except ApiException as error:
            raise ProviderUnavailable(f"listing secrets in {namespace}: {error.status} {error.reason}") from None
        return sorted(item.metadata.name for item in found.items)

    async def create(self, namespace: str, name: str, value: bytes) -> None:
        check_names(namespace, name)
        try:
            await self._call(self._core.create_namespaced_secret(
                namespace, self._body(name, value), _request_timeout=REQUEST_SECONDS), "creating", namespace, name)
        except ApiException as error:
            if error.status == 409:
                raise SecretExists(f"secret {name} already exists in namespace {namespace}") from None
            raise ProviderUnavailable(f"creating secret {namespace}/{name}: {error.status} {error.reason}") from None

    async def update(self, namespace: str, name: str, value: bytes) -> None:
        current = await self._managed(namespace, name)
        body = self._body(name, value)
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        try:
            await self._call(self._core.replace_namespaced_secret(
                name, namespace, body, _request_timeout=REQUEST_SECONDS), "updating", namespace, name)
        except ApiException as error:
            raise ProviderUnavailable(f"updating secret {namespace}/{name}: {error.status} {error.reason}") from None

    async def delete(self, namespace: str, name: str) -> None:
        await self._managed(namespace, name)
        try:
            await self._call(self._core.delete_namespaced_secret(
                name, namespace, _request_timeout=REQUEST_SECONDS), "deleting", namespace, name)
        except ApiException as error:
            if error.status == 404:
                raise SecretNotFound(f"secret {name} not found in namespace {namespace}") from None
            raise ProviderUnavailable(f"deleting secret {namespace}/{name}: {error.status} {error.reason}") from None

    async def _managed(self, namespace: str, name: str):
        check_names(namespace, name)
        try:
            secret = await self._call(self._core.read_namespaced_secret(
                name, namespace, _request_timeout=REQUEST_SECONDS), "reading", namespace, name)
        except ApiException as error:
            if error.status == 404:
                raise SecretNotFound(f"secret {name} not found in namespace {namespace}") from None
            raise ProviderUnavailable(f"reading secret {namespace}/{name}: {error.status} {error.reason}") from None
        if (secret.metadata.labels or {}).get(MANAGED_BY[0]) != MANAGED_BY[1]:
            raise SecretNotFound(f"secret {name} in namespace {namespace} is not managed by the secrets API "
                                 f"(no label {'='.join(MANAGED_BY)})")
        return secret

    @staticmethod
    def _body(name: str, value: bytes) -> dict:
        return {"metadata": {"name": name, "labels": dict([MANAGED_BY])},
                "type": "Opaque", "data": {name: base64.b64encode(value).decode()}}

    @staticmethod
    async def _call(awaitable, action: str, namespace: str, name: str = ""):
        """ApiException passes through (the caller names what it means); an unreachable server is a 503."""
        try:
            return await awaitable
        except UNREACHABLE as error:
            raise ProviderUnavailable(f"{action} secret {namespace}/{name}: the control plane cannot be reached: "
                                      f"{error!r}") from None
