"""The reconciler on an event loop of its own, in a thread, for synchronous callers (tests, tools):
`running = start(kubeconfig, namespace)`, then `running.scale(name, n)` and `running.stop()`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path

from local_openfaas.faas_netes.objects import DeploymentConfig
from local_openfaas.faas_netes.reconciler import Reconciler

CALL_SECONDS = 60.0


class Running:
    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread):
        self._loop, self._thread = loop, thread
        self.reconciler: Reconciler | None = None

    def call(self, coroutine: Coroutine, timeout: float = CALL_SECONDS):
        """Run `coroutine` on the reconciler's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def scale(self, name: str, replicas: int) -> None:
        self.call(self.reconciler.scale(name, replicas))

    def stop(self) -> None:
        try:
            if self.reconciler is not None:
                self.call(self.reconciler.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_SECONDS)
            self._loop.close()


def start(kubeconfig: Path | None, namespace: str, config: DeploymentConfig | None = None,
          synced_timeout: float = 30.0) -> Running:
    """A reconciler for `namespace` running in a thread, returned once it has listed what exists."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"faas-netes {namespace}", daemon=True)
    thread.start()
    running = Running(loop, thread)
    try:
        running.reconciler = running.call(Reconciler.connect(kubeconfig, namespace, config))
        running.call(running.reconciler.start())
        running.call(running.reconciler.wait_synced(synced_timeout), synced_timeout + 5)
    except BaseException:
        running.stop()
        raise
    return running
