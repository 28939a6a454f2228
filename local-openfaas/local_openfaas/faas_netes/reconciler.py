"""faas-netes for one namespace: a Deployment and a Service for each Function there, and the Function's status
from the Deployment's.

Three threads of the synchronous kubernetes client: one watches Functions, one watches the Deployments made here
(so their status flows back into their Function's), and one worker reconciles one Function at a time from a work
queue. Reconciling is level-based (read the Function, apply both objects, write the status if it changed), so a
missed or repeated event costs nothing. Deleting a Function needs no work: its objects name it as their controller
owner, so the garbage collector removes them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import urllib3
from kubernetes.client.rest import ApiException

from local_openfaas.faas_netes import objects
from local_openfaas.faas_netes.kube import Expired, NamespaceClient, api_client
from local_openfaas.faas_netes.objects import DeploymentConfig
from local_openfaas.faas_netes.status import function_status
from local_openfaas.faas_netes.workqueue import WorkQueue
from local_openfaas.runtime.spec import GROUP, KIND, InvalidFunction, from_custom_object

log = logging.getLogger("mlfunctions.faas_netes")
WATCH_SECONDS = 30                 # the server ends each watch after this long; it is then reopened
RETRY_SECONDS = (0.5, 1, 2, 5)     # a failing list or watch, then every 5 s
_TRANSIENT = (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError)


class Reconciler:
    """Start with start() (or the module's start()), stop with stop(); scale() is for an autoscaler."""

    def __init__(self, kubeconfig: Path | None, namespace: str, config: DeploymentConfig | None = None):
        self.namespace, self.config = namespace, config or DeploymentConfig()
        self._api = api_client(kubeconfig)
        self._kube = NamespaceClient(self._api, namespace)
        self._queue = WorkQueue()
        self._stopping = threading.Event()
        self._synced = {"functions": threading.Event(), "deployments": threading.Event()}
        self._threads: list[threading.Thread] = []

    # -- lifecycle --

    def start(self) -> Reconciler:
        kube = self._kube
        self._threads = [
            threading.Thread(target=self._watch, name="faas-netes functions", daemon=True,
                             args=("functions", kube.list_functions, kube.watch_functions, self._on_function)),
            threading.Thread(target=self._watch, name="faas-netes deployments", daemon=True,
                             args=("deployments", kube.list_deployments, kube.watch_deployments,
                                   self._on_deployment)),
            threading.Thread(target=self._work, name="faas-netes worker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("faas-netes reconciler started", extra={"namespace": self.namespace})
        return self

    def wait_synced(self, timeout: float = 30.0) -> None:
        """Block until both watches have listed what exists (so every Function is queued at least once)."""
        for kind, synced in self._synced.items():
            if not synced.wait(timeout):
                raise TimeoutError(f"faas-netes: listing {kind} in {self.namespace} did not finish in {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._kube.close()
        for thread in self._threads:
            thread.join(timeout)
        self._api.close()
        log.info("faas-netes reconciler stopped", extra={"namespace": self.namespace})

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- for the autoscaler --

    def scale(self, name: str, replicas: int) -> None:
        """Set function `name` to `replicas` (0 scales it to zero). Later reconciles keep the count, unless it is
        below com.openfaas.scale.min and not zero (faas-netes' getReplicas)."""
        if replicas < 0:
            raise ValueError(f"replicas must be at least 0, not {replicas}")
        try:
            self._kube.scale(name, replicas)
        except ApiException as error:
            if error.status == 404:
                raise LookupError(f"function {name!r} has no Deployment in {self.namespace}") from None
            raise

    # -- watches --

    def _watch(self, kind: str, list_all: Callable[[], dict], watch, on_object: Callable[[dict], None]) -> None:
        version, failures = None, 0
        while not self._stopping.is_set():
            try:
                if version is None:
                    listing = list_all()
                    for item in listing.get("items", []):
                        on_object(item)
                    version = listing["metadata"]["resourceVersion"]
                    self._synced[kind].set()
                for event, obj in watch(version, WATCH_SECONDS):
                    version = obj["metadata"]["resourceVersion"]
                    if event != "BOOKMARK":
                        on_object(obj)
                failures = 0
            except Expired:
                version = None
            except _TRANSIENT as error:
                if self._stopping.is_set():
                    return
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("faas-netes: watching %s failed; retrying", kind,
                            extra={"error": str(error), "inSeconds": delay})
                self._stopping.wait(delay)

    def _on_function(self, function: dict) -> None:
        self._queue.add(function["metadata"]["name"])

    def _on_deployment(self, deployment: dict) -> None:
        owner = _controller_owner(deployment)
        if owner:
            self._queue.add(owner)

    # -- reconciling --

    def _work(self) -> None:
        while not self._stopping.is_set():
            name = self._queue.get(timeout=0.5)
            if name is None:
                continue
            try:
                stalled = self._reconcile(name)
            except _TRANSIENT as error:  # unreachable, 5xx, throttled: the same Function again, later
                if self._stopping.is_set():
                    return
                delay = self._queue.retry(name)
                log.warning("faas-netes: reconciling Function %s failed; retrying", name,
                            extra={"error": str(error), "inSeconds": delay})
                continue
            if stalled:  # a Secret may yet appear, a quota be raised: faas-netes retries with back-off too
                self._queue.retry(name)
            else:
                self._queue.forget(name)

    def _reconcile(self, name: str) -> bool:
        """Bring Function `name`'s objects and status up to date; True when it is stalled."""
        function = self._kube.function(name)
        if function is None or function["metadata"].get("deletionTimestamp"):
            return False
        deployment, error = self._apply(function)
        status = function_status(function, deployment, error, _now())
        if status != function.get("status"):
            self._kube.write_status(name, status)
        if error:
            log.warning("faas-netes: Function %s stalled", name, extra={"error": error})
        return bool(error)

    def _apply(self, function: dict) -> tuple[dict | None, str]:
        """(the Deployment as it now is, why the Function could not be reconciled, or "")."""
        current = None
        try:
            spec = from_custom_object(function)
            current = self._kube.deployment(spec.name)
            for existing in (current, self._kube.service(spec.name)):
                if existing is not None and _controller_owner(existing, function) is None:
                    return None, f'Resource "{spec.name}" already exists and is not managed by OpenFaaS'
            secrets = {n: s for n in spec.secrets if (s := self._kube.secret(n)) is not None}
            replicas = (current or {}).get("spec", {}).get("replicas")
            deployment = self._kube.apply(objects.deployment(function, secrets, self.config, replicas))
            self._kube.apply(objects.service(function))
            return deployment, ""
        except InvalidFunction as error:
            return current, str(error)
        except ApiException as error:
            if error.status is not None and 400 <= error.status < 500 and error.status not in (408, 409, 429):
                return current, _api_message(error)  # refused (invalid, forbidden): retrying as is will not help
            raise


def start(kubeconfig: Path | None, namespace: str, config: DeploymentConfig | None = None,
          synced_timeout: float = 30.0) -> Reconciler:
    """A running reconciler for `namespace` that has listed what exists; stop() it when done."""
    reconciler = Reconciler(kubeconfig, namespace, config).start()
    try:
        reconciler.wait_synced(synced_timeout)
    except BaseException:
        reconciler.stop()
        raise
    return reconciler


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
