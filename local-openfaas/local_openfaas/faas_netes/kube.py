"""The few API calls the reconciler makes, on plain dicts, with kubernetes_asyncio on the caller's event loop.
Objects live in one namespace: the one the reconciler serves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from local_openfaas.faas_netes.objects import FUNCTION_LABEL
from local_openfaas.runtime.spec import GROUP, PLURAL, VERSION

FIELD_MANAGER = "mlfunctions-faas-netes"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"  # the client would pick json-patch, which takes a list, not a dict
REQUEST_SECONDS = 30.0  # a call without an answer by then counts as unreachable
# What a call to an API server that is down or cut off raises (refused, reset, or no answer in time).
UNREACHABLE = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


async def connect(kubeconfig: Path | None) -> client.ApiClient:
    """A client from `kubeconfig`, or from the pod's ServiceAccount when there is none (running in a cluster)."""
    if kubeconfig is not None:
        return await config.new_client_from_config(config_file=str(kubeconfig))
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration)


class NamespaceClient:
    def __init__(self, api: client.ApiClient, namespace: str):
        self.namespace = namespace
        self._api = api
        self._objects = client.CustomObjectsApi(api)
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)

    def _dict(self, model) -> dict:
        """A client model as the API server's JSON (camelCase keys)."""
        return self._api.sanitize_for_serialization(model)

    async def _or_none(self, call: Awaitable) -> dict | None:
        try:
            return self._dict(await call)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    # -- reads --

    async def function(self, name: str) -> dict | None:
        return await self._or_none(self._objects.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=REQUEST_SECONDS))

    async def deployment(self, name: str) -> dict | None:
        return await self._or_none(self._apps.read_namespaced_deployment(
            name, self.namespace, _request_timeout=REQUEST_SECONDS))

    async def service(self, name: str) -> dict | None:
        return await self._or_none(self._core.read_namespaced_service(
            name, self.namespace, _request_timeout=REQUEST_SECONDS))

    async def secret(self, name: str) -> dict | None:
        return await self._or_none(self._core.read_namespaced_secret(
            name, self.namespace, _request_timeout=REQUEST_SECONDS))

    # -- writes --

    async def apply(self, manifest: dict) -> dict:
        """Server-side apply as FIELD_MANAGER: fields we stop sending are removed; others' fields stay."""
        patch = {"Deployment": self._apps.patch_namespaced_deployment, "Service": self._core.patch_namespaced_service,
                 "Secret": self._core.patch_namespaced_secret}[manifest["kind"]]
        return self._dict(await patch(manifest["metadata"]["name"], self.namespace, manifest,
                                      field_manager=FIELD_MANAGER, force=True, _content_type=APPLY_PATCH,
                                      _request_timeout=REQUEST_SECONDS))

    async def patch_pod(self, name: str, patch: dict) -> dict:
        return self._dict(await self._core.patch_namespaced_pod(name, self.namespace, patch,
                                                                _content_type=MERGE_PATCH,
                                                                _request_timeout=REQUEST_SECONDS))

    async def delete_pod(self, name: str) -> None:
        try:
            await self._core.delete_namespaced_pod(name, self.namespace, _request_timeout=REQUEST_SECONDS)
        except ApiException as error:
            if error.status != 404:
                raise

    async def write_status(self, name: str, status: dict) -> None:
        """Replace the Function's status (a merge patch replaces the conditions list as a whole)."""
        try:
            await self._objects.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, name, {"status": status}, _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_SECONDS)
        except ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing to report on
                raise

    async def scale(self, name: str, replicas: int) -> None:
        """Set the Deployment's replicas through its scale subresource, as an autoscaler (or HPA) does."""
        await self._apps.patch_namespaced_deployment_scale(name, self.namespace, {"spec": {"replicas": replicas}},
                                                           _content_type=MERGE_PATCH,
                                                           _request_timeout=REQUEST_SECONDS)

    # -- list + watch --

    async def list_functions(self) -> dict:
        return await self._objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL,
                                                                 _request_timeout=REQUEST_SECONDS)

    async def list_deployments(self) -> dict:
        """The Deployments faas-netes made (they all carry the faas_function label)."""
        return self._dict(await self._apps.list_namespaced_deployment(
            self.namespace, label_selector=FUNCTION_LABEL, _request_timeout=REQUEST_SECONDS))

    async def list_pods(self, selector: str = FUNCTION_LABEL) -> dict:
        """The functions' pods (the pods backend routes to them), or those `selector` picks (the pod pool's)."""
        return self._dict(await self._core.list_namespaced_pod(
            self.namespace, label_selector=selector, _request_timeout=REQUEST_SECONDS))

    def watch_pods(self, version: str, seconds: int, selector: str = FUNCTION_LABEL) -> AsyncIterator[tuple[str, dict]]:
        return self._watch(self._core.list_namespaced_pod, (self.namespace,), {"label_selector": selector},
                           version, seconds)

    def watch_functions(self, version: str, seconds: int) -> AsyncIterator[tuple[str, dict]]:
        return self._watch(self._objects.list_namespaced_custom_object, (GROUP, VERSION, self.namespace, PLURAL),
                           {}, version, seconds)

    def watch_deployments(self, version: str, seconds: int) -> AsyncIterator[tuple[str, dict]]:
        return self._watch(self._apps.list_namespaced_deployment, (self.namespace,),
                           {"label_selector": FUNCTION_LABEL}, version, seconds)

    async def _watch(self, call: Callable, args: tuple, kwargs: dict, version: str,
                     seconds: int) -> AsyncIterator[tuple[str, dict]]:
        """(type, object) for each event, BOOKMARKs included, until the server ends the watch after `seconds`.
        Raises ApiException 410 when `version` is too old."""
        async with watch.Watch() as stream:
            async for event in stream.stream(call, *args, **kwargs, resource_version=version,
                                             timeout_seconds=seconds, allow_watch_bookmarks=True,
                                             _request_timeout=seconds + REQUEST_SECONDS):
                yield event["type"], event["raw_object"]
