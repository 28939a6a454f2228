"""The functions' pods in one namespace, as the API server last said: one list + watch (label faas_function),
kept per function, with a callback per function whenever its pods change."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping

from local_openfaas.faas_netes.kube import NamespaceClient
from local_openfaas.faas_netes.objects import FUNCTION_LABEL
from local_openfaas.faas_netes.listwatch import list_and_watch
from local_openfaas.pods.pod_state import PodView, function_key, pod_view


class PodWatch:
    """`selector` and `key` pick the pods and file them (by default: the functions' pods, by function)."""

    def __init__(self, kube: NamespaceClient, selector: str = FUNCTION_LABEL,
                 key: Callable[[Mapping[str, str]], str | None] = function_key):
        self._kube, self._selector, self._key = kube, selector, key
        self._pods: dict[str, dict[str, PodView]] = defaultdict(dict)   # function -> pod name -> view
        self._listeners: dict[str, set[Callable[[], None]]] = defaultdict(set)
        self._synced = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self, synced_timeout: float = 30.0) -> None:
        self._task = asyncio.create_task(
            list_and_watch(f"pods ({self._selector})", lambda: self._kube.list_pods(self._selector),
                           lambda version, seconds: self._kube.watch_pods(version, seconds, self._selector),
                           self._on_pod, self._synced, self._on_listed),
            name=f"pods of {self._kube.namespace} ({self._selector})")
        try:
            await asyncio.wait_for(self._synced.wait(), synced_timeout)
        except TimeoutError:
            raise TimeoutError(f"listing the pods of {self._kube.namespace} did not finish in "
                               f"{synced_timeout:.0f}s") from None

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def pods(self, function: str) -> list[PodView]:
        return list(self._pods.get(function, {}).values())

    def all(self) -> list[PodView]:
        return [view for pods in self._pods.values() for view in pods.values()]

    def listen(self, function: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` whenever `function`'s pods change; returns what stops it."""
        self._listeners[function].add(callback)
        return lambda: self._listeners[function].discard(callback)

    def _on_pod(self, event: str, pod: dict) -> None:
        view = pod_view(pod, self._key)
        if view is None:
            return
        pods = self._pods[view.function]
        if event == "DELETED":
            pods.pop(view.name, None)
        elif pods.get(view.name) == view:
            return
        else:
            pods[view.name] = view
        self._announce(view.function)

    def _on_listed(self, items: list[dict]) -> None:
        """After a new listing, pods deleted while the watch was down are gone from it: forget them."""
        listed = {(v.function, v.name) for v in (pod_view(item, self._key) for item in items) if v is not None}
        for function, pods in self._pods.items():
            gone = [name for name in pods if (function, name) not in listed]
            for name in gone:
                del pods[name]
            if gone:
                self._announce(function)

    def _announce(self, function: str) -> None:
        for callback in list(self._listeners.get(function, ())):
            callback()
