"""faas-netes for one namespace: a Deployment and a Service for each Function there, and the Function's status
from the Deployment's.

Three tasks on the caller's event loop (kubernetes_asyncio): one watches Functions, one watches the Deployments
made here (so their status flows back into their Function's), and one worker reconciles one Function at a time
from a work queue. Reconciling is level-based (read the Function, apply both objects, write the status if it
changed), so a missed or repeated event costs nothing. Deleting a Function needs no work: its objects name it as
their controller owner, so the garbage collector removes them. Synchronous callers: background.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from local_openfaas.faas_netes import objects
from local_openfaas.faas_netes.kube import UNREACHABLE, NamespaceClient, connect
from local_openfaas.faas_netes.listwatch import list_and_watch
from local_openfaas.faas_netes.objects import DeploymentConfig
from local_openfaas.faas_netes.status import function_status
from local_openfaas.faas_netes.workqueue import WorkQueue
from local_openfaas.runtime.spec import GROUP, KIND, InvalidFunction, from_custom_object

log = logging.getLogger("mlfunctions.faas_netes")
_TRANSIENT = (ApiException, *UNREACHABLE)


class Reconciler:
    """`await Reconciler.connect(...)`, then start(), wait_synced(), stop(); scale() is for an autoscaler."""

    def __init__(self, api: client.ApiClient, namespace: str, config: DeploymentConfig | None = None):
        self.namespace, self.config = namespace, config or DeploymentConfig()
        self._api = api
        self._kube = NamespaceClient(api, namespace)
        self._queue = WorkQueue()
        self._synced = {"functions": asyncio.Event(), "deployments": asyncio.Event()}
        self._tasks: list[asyncio.Task] = []

    @classmethod
    async def connect(cls, kubeconfig: Path | None, namespace: str,
                      config: DeploymentConfig | None = None) -> Reconciler:
        """A reconciler with credentials from `kubeconfig` (None: the pod's ServiceAccount)."""
        return cls(await connect(kubeconfig), namespace, config)

    # -- lifecycle --

    async def start(self) -> None:
        kube = self._kube
        self._tasks = [
            asyncio.create_task(list_and_watch("functions", kube.list_functions, kube.watch_functions,
                                               self._on_function, self._synced["functions"]),
                                name="faas-netes functions"),
            asyncio.create_task(list_and_watch("deployments", kube.list_deployments, kube.watch_deployments,
                                               self._on_deployment, self._synced["deployments"]),
                                name="faas-netes deployments"),
            asyncio.create_task(self._work(), name="faas-netes worker"),
        ]
        log.info("faas-netes reconciler started", extra={"namespace": self.namespace})

    async def wait_synced(self, timeout: float = 30.0) -> None:
        """Until both watches have listed what exists (so every Function is queued at least once)."""
        for kind, synced in self._synced.items():
            try:
                await asyncio.wait_for(synced.wait(), timeout)
            except TimeoutError:
                raise TimeoutError(f"faas-netes: listing {kind} in {self.namespace} did not finish in "
                                   f"{timeout:.0f}s") from None

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._api.close()
        log.info("faas-netes reconciler stopped", extra={"namespace": self.namespace})

    @property
    def kube(self) -> NamespaceClient:
        """The namespace's API client (the pods backend watches pods through it)."""
        return self._kube

    # -- for the autoscaler --

    async def replicas(self, name: str) -> int | None:
        """The count function `name`'s Deployment has (None: no Deployment yet)."""
        deployment = await self._kube.deployment(name)
        return None if deployment is None else (deployment.get("spec") or {}).get("replicas", 1)

    async def scale(self, name: str, replicas: int) -> None:
        """Set function `name` to `replicas` (0 scales it to zero). Later reconciles keep the count, unless it is
        above 0 and below com.openfaas.scale.min (faas-netes' getReplicas)."""
        if replicas < 0:
            raise ValueError(f"replicas must be at least 0, not {replicas}")
        try:
            await self._kube.scale(name, replicas)
        except ApiException as error:
            if error.status == 404:
                raise LookupError(f"function {name!r} has no Deployment in {self.namespace}") from None
            raise

    # -- watches --

    def _on_function(self, event: str, function: dict) -> None:
        self._queue.add(function["metadata"]["name"])

    def _on_deployment(self, event: str, deployment: dict) -> None:
        owner = _controller_owner(deployment)
        if owner:
            self._queue.add(owner)

    # -- reconciling --

    async def _work(self) -> None:
        while True:
            name = await self._queue.get()
            try:
                stalled = await self._reconcile(name)
            except _TRANSIENT as error:  # unreachable, 5xx, throttled: the same Function again, later
                delay = self._queue.retry(name)
                log.warning("faas-netes: reconciling Function %s failed; retrying", name,
                            extra={"error": repr(error), "inSeconds": delay})
                continue
            if stalled:  # a Secret may yet appear, a quota be raised: faas-netes retries with back-off too
                self._queue.retry(name)
            else:
                self._queue.forget(name)

    async def _reconcile(self, name: str) -> bool:
        """Bring Function `name`'s objects and status up to date; True when it is stalled."""
        function = await self._kube.function(name)
        if function is None or function["metadata"].get("deletionTimestamp"):
            return False
        deployment, error = await self._apply(function)
        status = function_status(function, deployment, error, _now())
        if status != function.get("status"):
            await self._kube.write_status(name, status)
        if error:
            log.warning("faas-netes: Function %s stalled", name, extra={"error": error})
        return bool(error)

    async def _apply(self, function: dict) -> tuple[dict | None, str]:
        """(the Deployment as it now is, why the Function could not be reconciled, or "")."""
        current = None
        try:
            spec = from_custom_object(function)
            current = await self._kube.deployment(spec.name)
            for existing in (current, await self._kube.service(spec.name)):
                if existing is not None and _controller_owner(existing, function) is None:
                    return None, f'Resource "{spec.name}" already exists and is not managed by OpenFaaS'
            secrets = {n: s for n in spec.secrets if (s := await self._kube.secret(n)) is not None}
            replicas = (current or {}).get("spec", {}).get("replicas")
            manifest = objects.deployment(function, secrets, self.config, replicas)
            if current is not None:
                # The count came from `current`: an autoscaler's scale since then makes this apply a 409 (retried)
                # rather than undoing that scale.
                manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            deployment = await self._kube.apply(manifest)
            await self._kube.apply(objects.service(function))
            return deployment, ""
        except InvalidFunction as error:
            return current, str(error)
        except ApiException as error:
            if error.status is not None and 400 <= error.status < 500 and error.status not in (408, 409, 429):
                return current, _api_message(error)  # refused (invalid, forbidden): retrying as is will not help
            raise


def _controller_owner(obj: dict, function: dict | None = None) -> str | None:
    """The name of the Function that controls `obj` (only `function`, by uid, when given), else None."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        ours = ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(f"{GROUP}/")
        if ours and ref.get("controller") and (function is None or ref.get("uid") == function["metadata"]["uid"]):
            return ref["name"]
    return None


def _api_message(error: ApiException) -> str:
    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return f"{error.status} {error.reason}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
