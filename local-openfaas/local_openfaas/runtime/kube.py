"""The runtime's link to Kubernetes, as OpenFaaS Pro's operator has it: Function resources (openfaas.com/v1) say
what runs, their status subresource says how it is going, and a function's `secrets` are Secrets in its namespace.

The kubernetes client is synchronous: the watch runs in a thread that feeds an asyncio queue (one consumer, so
events for a function are applied in order); other calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from local_openfaas.gateway.app import FunctionExists, ProviderUnavailable
from local_openfaas.runtime.runtime import Deployed, FunctionNotFound, FunctionRuntime
from local_openfaas.runtime.spec import (GROUP, PLURAL, VERSION, FunctionSpec, InvalidFunction, from_custom_object,
                                          to_custom_object)
from local_openfaas.runtime.status import function_status

log = logging.getLogger("mlfunctions.runtime.kube")
_UNREACHABLE = (urllib3.exceptions.HTTPError, OSError)
WATCH_SECONDS = 30          # the server ends each watch after this long; the thread then checks for shutdown
RETRY_SECONDS = (0.5, 1, 2, 5)


class KubeBinding:
    def __init__(self, kubeconfig: Path, namespace: str | None = None):
        self.kubeconfig, self.namespace = kubeconfig, namespace
        self._api = config.new_client_from_config(config_file=str(kubeconfig))
        self._watch_api = config.new_client_from_config(config_file=str(kubeconfig))
        self._objects = client.CustomObjectsApi(self._api)
        self._core = client.CoreV1Api(self._api)
        self._synced = False
        self._stopping = threading.Event()
        self._events: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []
        self._pending_status: dict[tuple[str, str], Deployed] = {}
        self._status_wake: asyncio.Event | None = None
        self._written: dict[tuple[str, str], dict] = {}

    # ---- wiring ----

    def runtime_hooks(self) -> dict:
        return {"secrets": self.read_secrets, "on_change": self.status_changed}

    def provider(self, runtime: FunctionRuntime) -> KubeProvider:
        return KubeProvider(self._objects, runtime)

    def synced(self) -> bool:
        return self._synced

    async def start(self, runtime: FunctionRuntime) -> None:
        loop = asyncio.get_running_loop()
        self._events = asyncio.Queue()
        self._status_wake = asyncio.Event()
        self._tasks = [asyncio.create_task(self._apply_events(runtime), name="function events"),
                       asyncio.create_task(self._write_statuses(), name="function status")]
        threading.Thread(target=self._watch_forever, args=(loop,), name="function watch", daemon=True).start()

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- Function resources → runtime ----

    def _list(self, **kwargs) -> dict:
        if self.namespace:
            return self._objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, **kwargs)
        return self._objects.list_cluster_custom_object(GROUP, VERSION, PLURAL, **kwargs)

    def _watch_forever(self, loop: asyncio.AbstractEventLoop) -> None:
        objects = client.CustomObjectsApi(self._watch_api)
        list_call = (objects.list_namespaced_custom_object if self.namespace else objects.list_cluster_custom_object)
        args = (GROUP, VERSION, self.namespace, PLURAL) if self.namespace else (GROUP, VERSION, PLURAL)
        failures = 0
        while not self._stopping.is_set():
            try:
                listing = self._list()
                version = listing["metadata"]["resourceVersion"]
                loop.call_soon_threadsafe(self._events.put_nowait, ("SYNC", listing["items"]))
                failures = 0
                while not self._stopping.is_set():
                    stream = watch.Watch().stream(list_call, *args, resource_version=version,
                                                  timeout_seconds=WATCH_SECONDS, allow_watch_bookmarks=True)
                    for event in stream:
                        kind, obj = event["type"], event["object"]
                        if kind == "ERROR":
                            raise _Expired() if obj.get("code") == 410 else ApiException(status=obj.get("code"))
                        version = obj["metadata"]["resourceVersion"]
                        if kind != "BOOKMARK":
                            loop.call_soon_threadsafe(self._events.put_nowait, (kind, obj))
            except _Expired:
                continue  # our resourceVersion is too old: list again
            except (ApiException, *_UNREACHABLE) as error:
                if self._stopping.is_set():
                    return
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("watching Functions failed; retrying", extra={"error": str(error), "inSeconds": delay})
                time.sleep(delay)

    async def _apply_events(self, runtime: FunctionRuntime) -> None:
        while True:
            kind, payload = await self._events.get()
            try:
                if kind == "SYNC":
                    await self._sync(runtime, payload)
                elif kind == "DELETED":
                    meta = payload["metadata"]
                    await runtime.remove(meta["namespace"], (payload.get("spec") or {}).get("name") or meta["name"])
                    self._written.pop((meta["namespace"], meta["name"]), None)
                else:
                    await self._apply(runtime, payload)
            except Exception:
                log.exception("applying a Function event failed", extra={"event": kind})

    async def _sync(self, runtime: FunctionRuntime, items: list[dict]) -> None:
        """A full listing: apply every Function, remove the ones deleted while we were not watching."""
        present = set()
        for obj in items:
            present.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))
            await self._apply(runtime, obj)
        for key in [k for k in runtime.functions if k not in present]:
            await runtime.remove(*key)
        self._synced = True

    async def _apply(self, runtime: FunctionRuntime, obj: dict) -> None:
        meta = obj["metadata"]
        try:
            spec = from_custom_object(obj)
        except InvalidFunction as error:
            self._write_invalid(meta, str(error))
            return
        current = runtime.functions.get(spec.key)
        if current is not None and current.spec == spec:
            return  # a status write or a no-op update
        await runtime.apply(spec)

    # ---- runtime → Function status ----

    def status_changed(self, deployed: Deployed) -> None:
        self._pending_status[deployed.spec.key] = deployed
        if self._status_wake is not None:
            self._status_wake.set()

    async def _write_statuses(self) -> None:
        while True:
            await self._status_wake.wait()
            self._status_wake.clear()
            pending, self._pending_status = self._pending_status, {}
            for key, deployed in pending.items():
                snapshot = deployed.supervisor.snapshot() if deployed.supervisor else None
                previous = self._written.get(key)
                status = function_status(deployed.spec, snapshot, deployed.error, previous, _now(),
                                         preparing=deployed.preparing)
                if status == previous:
                    continue
                try:
                    await asyncio.to_thread(self._patch_status, deployed.spec, status)
                    self._written[key] = status
                except ApiException as error:
                    if error.status != 404:  # 404: the Function was deleted meanwhile
                        log.warning("writing Function status failed", extra={"function": key, "error": str(error)})
                        self.status_changed(deployed)
                        await asyncio.sleep(1.0)
                except _UNREACHABLE as error:
                    log.warning("writing Function status failed", extra={"function": key, "error": str(error)})
                    self.status_changed(deployed)  # keep it pending: written once the API server is back
                    await asyncio.sleep(1.0)

    def _patch_status(self, spec: FunctionSpec, status: dict) -> None:
        self._objects.patch_namespaced_custom_object_status(GROUP, VERSION, spec.namespace, PLURAL, spec.name,
                                                             {"status": status})

    def _write_invalid(self, meta: dict, message: str) -> None:
        status = {"observedGeneration": meta.get("generation", 0), "replicas": 0, "availableReplicas": 0,
                  "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": message,
                                  "lastTransitionTime": _now()},
                                 {"type": "Stalled", "status": "True", "reason": "InvalidSpec", "message": message,
                                  "lastTransitionTime": _now()}]}
        try:
            self._objects.patch_namespaced_custom_object_status(GROUP, VERSION, meta["namespace"], PLURAL,
                                                                 meta["name"], {"status": status})
        except (ApiException, *_UNREACHABLE) as error:
            log.warning("writing Function status failed", extra={"function": meta["name"], "error": str(error)})

    # ---- secrets ----

    async def read_secrets(self, spec: FunctionSpec) -> dict[str, bytes]:
        """Every key of every Secret the function lists, as OpenFaaS projects them into /var/openfaas/secrets."""
        return await asyncio.to_thread(self._read_secrets, spec)

    def _read_secrets(self, spec: FunctionSpec) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for name in spec.secrets:
            try:
                secret = self._core.read_namespaced_secret(name, spec.namespace)
            except ApiException as error:
                if error.status == 404:
                    raise LookupError(f"secret {name} not found in namespace {spec.namespace}") from None
                raise
            for key, value in (secret.data or {}).items():
                files[key] = base64.b64decode(value)
        return files


class KubeProvider:
    """The /system deploy API on a cluster: it writes Function resources; the watch then runs them."""

    def __init__(self, objects: client.CustomObjectsApi, runtime: FunctionRuntime):
        self._objects, self._runtime = objects, runtime

    async def deploy(self, spec: FunctionSpec) -> None:
        try:
            created = await asyncio.to_thread(self._objects.create_namespaced_custom_object, GROUP, VERSION,
                                              spec.namespace, PLURAL, to_custom_object(spec))
        except ApiException as error:
            if error.status == 409:
                raise FunctionExists(f"function {spec.name} already exists in namespace {spec.namespace}") from None
            _raise_for(error, "creating", spec)
        except _UNREACHABLE as error:
            raise ProviderUnavailable(f"the control plane cannot be reached: {error}") from None
        await self._seen(spec, created["metadata"].get("generation", 0))

    async def update(self, spec: FunctionSpec) -> None:
        def replace() -> dict:
            current = self._objects.get_namespaced_custom_object(GROUP, VERSION, spec.namespace, PLURAL, spec.name)
            body = to_custom_object(spec)
            body["metadata"] = current["metadata"]  # resourceVersion: an optimistic-concurrency update
            return self._objects.replace_namespaced_custom_object(GROUP, VERSION, spec.namespace, PLURAL,
                                                                  spec.name, body)

        try:
            updated = await asyncio.to_thread(replace)
        except ApiException as error:
            if error.status == 404:
                raise FunctionNotFound(f"function {spec.name} not found in namespace {spec.namespace}") from None
            _raise_for(error, "updating", spec)
        except _UNREACHABLE as error:
            raise ProviderUnavailable(f"the control plane cannot be reached: {error}") from None
        await self._seen(spec, updated["metadata"].get("generation", 0))

    async def delete(self, namespace: str, name: str) -> None:
        try:
            await asyncio.to_thread(self._objects.delete_namespaced_custom_object, GROUP, VERSION, namespace,
                                    PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                raise FunctionNotFound(f"function {name} not found in namespace {namespace}") from None
            raise ProviderUnavailable(f"deleting function {name}: {error.status} {error.reason}") from None
        except _UNREACHABLE as error:
            raise ProviderUnavailable(f"the control plane cannot be reached: {error}") from None
        for _ in range(100):  # until the watch has removed it, so a list right after the call agrees
            if (namespace, name) not in self._runtime.functions:
                return
            await asyncio.sleep(0.05)

    async def _seen(self, spec: FunctionSpec, generation: int) -> None:
        """Wait (briefly) until the watch has applied this generation, so a describe right after agrees."""
        for _ in range(100):
            deployed = self._runtime.functions.get(spec.key)
            if deployed is not None and deployed.spec.generation >= generation:
                return
            await asyncio.sleep(0.05)


class _Expired(Exception):
    pass


def _raise_for(error: ApiException, action: str, spec: FunctionSpec):
    """The API server's refusal as the gateway's answer: its 4xx are the caller's to fix, the rest are ours."""
    message = f"{action} Function {spec.namespace}/{spec.name}: {error.status} {error.reason}: {error.body}"
    if error.status is not None and 400 <= error.status < 500:
        raise InvalidFunction(message) from None
    raise ProviderUnavailable(message) from None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
