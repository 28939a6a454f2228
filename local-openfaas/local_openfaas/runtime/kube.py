"""The runtime's link to Kubernetes, as OpenFaaS Pro's operator has it: Function resources (openfaas.com/v1) say
what runs, their status subresource says how it is going, and a function's `secrets` are Secrets in its namespace.

Everything here runs on the runtime's event loop through the asynchronous Kubernetes client: one task watches
Functions and queues the events, one applies them in order (so events for a function are applied in the order
they happened, and a slow apply, a first virtualenv build say, does not stall the watch), one writes statuses.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from local_openfaas.runtime.runtime import Deployed, FunctionRuntime
from local_openfaas.runtime.spec import (
    GROUP,
    PLURAL,
    VERSION,
    FunctionSpec,
    InvalidFunction,
    from_custom_object,
)
from local_openfaas.runtime.status import function_status

log = logging.getLogger("mlfunctions.runtime.kube")
# What a call to an API server that is down or cut off raises (refused, reset, or no answer in time).
UNREACHABLE = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
REQUEST_SECONDS = 30.0      # a call without an answer by then counts as unreachable
WATCH_SECONDS = 30          # the server ends each watch after this long; it is then resumed from where it was
RETRY_SECONDS = (0.5, 1, 2, 5)
STATUS_RETRY_SECONDS = 1.0
MERGE_PATCH = "application/merge-patch+json"  # the client would pick json-patch, which takes a list, not a dict


class KubeBinding:
    """`writes_status=False` when another controller writes the Functions' status (the pods backend's
    reconciler, from their Deployments)."""

    def __init__(self, api: client.ApiClient, namespace: str | None = None, writes_status: bool = True):
        self.namespace = namespace
        self.writes_status = writes_status
        self._api = api
        self.objects = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._synced = False
        self._events: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._pending_status: dict[tuple[str, str], Deployed] = {}
        self._status_wake = asyncio.Event()
        self._written: dict[tuple[str, str], dict] = {}
        self._changed = asyncio.Event()  # set (and replaced) whenever the runtime's functions may have changed

    @classmethod
    async def connect(cls, kubeconfig: Path, namespace: str | None = None, writes_status: bool = True) -> KubeBinding:
        return cls(await config.new_client_from_config(config_file=str(kubeconfig)), namespace, writes_status)

    # ---- wiring ----

    def runtime_hooks(self) -> dict:
        return {"secrets": self.read_secrets, "on_change": self.status_changed}

    @property
    def core(self) -> client.CoreV1Api:
        """The core API client (Secrets), shared with kube_secrets."""
        return self._core

    def synced(self) -> bool:
        return self._synced

    async def start(self, runtime: FunctionRuntime) -> None:
        self._tasks = [asyncio.create_task(self._watch_forever(), name="function watch"),
                       asyncio.create_task(self._apply_events(runtime), name="function events"),
                       asyncio.create_task(self._write_statuses(), name="function status")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._api.close()

    async def until_applied(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until `done()` holds for the runtime's functions (checked after each change), at most `timeout`
        seconds; whether it does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), deadline - loop.time())
            except TimeoutError:
                return done()
        return True

    def _announce_change(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- Function resources → runtime ----

    def _list_call(self) -> tuple[Callable, tuple]:
        if self.namespace:
            return self.objects.list_namespaced_custom_object, (GROUP, VERSION, self.namespace, PLURAL)
        return self.objects.list_cluster_custom_object, (GROUP, VERSION, PLURAL)

    async def _watch_forever(self) -> None:
        """List, then watch from the listing's resourceVersion; list again when it is too old (410), and retry
        with back-off while the API server cannot be reached."""
        list_call, args = self._list_call()
        failures = 0
        while True:
            try:
                listing = await list_call(*args, _request_timeout=REQUEST_SECONDS)
                self._events.put_nowait(("SYNC", listing["items"]))
                version = listing["metadata"]["resourceVersion"]
                failures = 0
                while True:
                    version = await self._watch_once(list_call, args, version)
            except ApiException as error:
                if error.status == 410:
                    continue  # our resourceVersion is too old: list again
                delay, failures = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)], failures + 1
                log.warning("watching Functions failed; retrying",
                            extra={"error": f"{error.status} {error.reason}", "inSeconds": delay})
                await asyncio.sleep(delay)
            except UNREACHABLE as error:
                delay, failures = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)], failures + 1
                log.warning("watching Functions failed; retrying", extra={"error": repr(error), "inSeconds": delay})
                await asyncio.sleep(delay)

    async def _watch_once(self, list_call: Callable, args: tuple, version: str) -> str:
        """One watch request, until the server ends it; returns the resourceVersion to resume from."""
        async with watch.Watch() as stream:
            async for event in stream.stream(list_call, *args, resource_version=version,
                                             timeout_seconds=WATCH_SECONDS, allow_watch_bookmarks=True,
                                             _request_timeout=WATCH_SECONDS + REQUEST_SECONDS):
                if event["type"] != "BOOKMARK":
                    self._events.put_nowait((event["type"], event["object"]))
            return stream.resource_version or version

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
            self._announce_change()

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
            if self.writes_status:
                await self._write_invalid(meta, str(error))
            return
        current = runtime.functions.get(spec.key)
        if current is not None and current.spec == spec:
            return  # a status write or a no-op update
        await runtime.apply(spec)

    # ---- runtime → Function status ----

    def status_changed(self, deployed: Deployed) -> None:
        if self.writes_status:
            self._pending_status[deployed.spec.key] = deployed
            self._status_wake.set()
        self._announce_change()

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
                    await self._patch_status(deployed.spec.namespace, deployed.spec.name, status)
                    self._written[key] = status
                except ApiException as error:
                    if error.status == 404:
                        continue  # the Function was deleted meanwhile
                    log.warning("writing Function status failed",
                                extra={"function": key, "error": f"{error.status} {error.reason}"})
                    self.status_changed(deployed)
                    await asyncio.sleep(STATUS_RETRY_SECONDS)
                except UNREACHABLE as error:
                    log.warning("writing Function status failed", extra={"function": key, "error": repr(error)})
                    self.status_changed(deployed)  # keep it pending: written once the API server is back
                    await asyncio.sleep(STATUS_RETRY_SECONDS)

    async def _patch_status(self, namespace: str, name: str, status: dict) -> None:
        await self.objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type=MERGE_PATCH,
            _request_timeout=REQUEST_SECONDS)

    async def _write_invalid(self, meta: dict, message: str) -> None:
        now = _now()
        status = {"observedGeneration": meta.get("generation", 0), "replicas": 0, "availableReplicas": 0,
                  "conditions": [{"type": "Ready", "status": "False", "reason": "InvalidSpec", "message": message,
                                  "lastTransitionTime": now},
                                 {"type": "Stalled", "status": "True", "reason": "InvalidSpec", "message": message,
                                  "lastTransitionTime": now}]}
        try:
            await self._patch_status(meta["namespace"], meta["name"], status)
        except (ApiException, *UNREACHABLE) as error:
            log.warning("writing Function status failed", extra={"function": meta["name"], "error": repr(error)})

    # ---- secrets ----

    async def read_secrets(self, spec: FunctionSpec) -> dict[str, bytes]:
        """Every key of every Secret the function lists, as OpenFaaS projects them into /var/openfaas/secrets."""
        files: dict[str, bytes] = {}
        for name in spec.secrets:
            try:
                secret = await self._core.read_namespaced_secret(name, spec.namespace,
                                                                 _request_timeout=REQUEST_SECONDS)
            except ApiException as error:
                if error.status == 404:
                    raise LookupError(f"secret {name} not found in namespace {spec.namespace}") from None
                raise
            for key, value in (secret.data or {}).items():
                files[key] = base64.b64decode(value)
        return files


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
