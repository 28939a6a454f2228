"""The operator's children in the function namespace (Functions, ServiceAccounts), as the API server's watch says
they are now: a reconcile reads them here instead of asking for each, so a resync of an unchanged MLFunction
sends no request for them, and a change someone else makes (OpenFaaS reporting on a Function, a hand edit, a
deletion) wakes the owner's loop at once.

One list-then-watch per kind, in the function namespace only, of the objects with the operator's labels (the
chart grants list/watch there, on these kinds, and not on Secrets: a list of Secrets would return every Secret's
data, so credential Secrets are still read by name). Objects are kept as compact JSON without managedFields (a
tenth of the memory of the decoded dicts; children.ensure reads the object again before an apply, which needs
them), decoded when a reconcile reads one. Until the first list has
arrived, while the watch is broken, and for a name it does not hold (absent, or someone else's), the cache answers
"not known" and the reconcile asks the API server: so only an unchanged child costs no request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from .children import UNREAD, ChildRef
from .kube import Kind, Kube, KubeError

log = logging.getLogger(__name__)

# An object (or, after a deletion, its last state) someone changed: who to wake is the caller's business.
OnChange = Callable[[dict], None]
RETRY_SECONDS = 2.0


def _compact(obj: dict) -> bytes:
    """The object without its managedFields, as compact JSON."""
    meta = {key: value for key, value in obj["metadata"].items() if key != "managedFields"}
    return json.dumps({**obj, "metadata": meta}, separators=(",", ":")).encode()


class ChildCache:
    """The objects of one kind in one namespace that match a label selector, by name."""

    def __init__(self, kube: Kube, kind: Kind, namespace: str, label_selector: str, on_change: OnChange):
        self.kube, self.kind, self.namespace = kube, kind, namespace
        self.label_selector = label_selector
        self.on_change = on_change
        self.objects: dict[str, bytes] = {}  # by name: the object as compact JSON
        self.current = False  # the first list has arrived and the watch since is unbroken

    def read(self, name: str) -> dict | object:
        """The object, or UNREAD when the cache cannot say (ask the API server). Its absence from the cache
        proves nothing: an object of that name without the operator's labels (someone else's) is not watched,
        and must be found and refused before anything is created."""
        if not self.current:
            return UNREAD
        stored = self.objects.get(name)
        return json.loads(stored) if stored is not None else UNREAD

    async def run(self) -> None:
        """List, then watch from the list's version; list again when the watch's version is too old (410) or
        the stream fails. Runs until cancelled."""
        while True:
            try:
                version = await self._relist()
                while True:
                    version = await self._follow(version)
            except asyncio.CancelledError:
                raise
            except KubeError as error:
                self.current = False
                if error.status != 410:
                    log.warning("watch of children failed; listing again", extra={
                        "kind": self.kind.kind, "namespace": self.namespace, "error": str(error)})
                    await asyncio.sleep(RETRY_SECONDS)
            except Exception:
                self.current = False
                log.exception("watch of children crashed; listing again", extra={"kind": self.kind.kind})
                await asyncio.sleep(RETRY_SECONDS)

    async def _relist(self) -> str:
        items, version = await self.kube.list_with_version(self.kind, self.namespace, self.label_selector)
        previous, self.objects = self.objects, {item["metadata"]["name"]: _compact(item) for item in items}
        self.current = True
        # What changed while the watch was broken (none of it on the first list: nothing was known before).
        for item in items:
            known = previous.get(item["metadata"]["name"])
            if known is not None and known != self.objects[item["metadata"]["name"]]:
                self.on_change(item)
        for name in previous.keys() - self.objects.keys():
            self.on_change(json.loads(previous[name]))
        return version

    async def _follow(self, version: str) -> str:
        """One watch stream; returns the version to resume from when the API server ends it."""
        async for event in self.kube.watch(self.kind, self.namespace, self.label_selector, version):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise KubeError(int(obj.get("code") or 0), obj.get("reason") or "", obj.get("message") or "")
            version = obj.get("metadata", {}).get("resourceVersion") or version
            if kind == "BOOKMARK":
                continue
            name = obj["metadata"]["name"]
            if kind == "DELETED":
                self.objects.pop(name, None)
            else:
                self.objects[name] = _compact(obj)
            self.on_change(obj)
        return version


class ChildCaches:
    """The caches of the function namespace, by kind; `read` for check_owned."""

    def __init__(self, caches: list[ChildCache]):
        self.caches = {(cache.kind, cache.namespace): cache for cache in caches}
        self._tasks: list[asyncio.Task] = []

    def read(self, ref: ChildRef) -> dict | object:
        cache = self.caches.get((ref.kind, ref.namespace))
        return cache.read(ref.name) if cache is not None else UNREAD

    def start(self) -> None:
        self._tasks = [asyncio.create_task(cache.run(), name=f"watch {cache.kind.plural}")
                       for cache in self.caches.values()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
