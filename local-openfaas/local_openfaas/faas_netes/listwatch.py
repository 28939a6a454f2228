"""List, then watch from the listing's resourceVersion: the one loop the reconciler's watches and the pods
backend's pod watch share. Lists again when the version is too old (410), retries with back-off while the API
server cannot be reached, and sets `synced` once the first listing has been handed over."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from kubernetes_asyncio.client.exceptions import ApiException

from local_openfaas.faas_netes.kube import UNREACHABLE

log = logging.getLogger("mlfunctions.faas_netes")
WATCH_SECONDS = 30                 # the server ends each watch after this long; it is then resumed
RETRY_SECONDS = (0.5, 1, 2, 5)     # a failing list or watch, then every 5 s


async def list_and_watch(kind: str, list_all: Callable[[], Awaitable[dict]],
                         watch: Callable[[str, int], AsyncIterator[tuple[str, dict]]],
                         on_object: Callable[[str, dict], None], synced: asyncio.Event,
                         on_listed: Callable[[list[dict]], None] = lambda items: None) -> None:
    """Forever: `on_object(event type, object)` for each object listed ("ADDED") and each event watched;
    `on_listed(items)` after each full listing (so a caller can drop what disappeared while it was not looking)."""
    version, failures = None, 0
    while True:
        try:
            if version is None:
                listing = await list_all()
                items = listing.get("items") or []
                for item in items:
                    on_object("ADDED", item)
                on_listed(items)
                version = listing["metadata"]["resourceVersion"]
                synced.set()
            async for event, obj in watch(version, WATCH_SECONDS):
                version = obj["metadata"]["resourceVersion"]
                if event != "BOOKMARK":
                    on_object(event, obj)
            failures = 0
        except ApiException as error:
            if error.status == 410:
                version = None  # too old: list again
                continue
            failures = await _pause(f"watching {kind}", f"{error.status} {error.reason}", failures)
        except UNREACHABLE as error:
            failures = await _pause(f"watching {kind}", repr(error), failures)


async def _pause(what: str, error: str, failures: int) -> int:
    delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
    log.warning("faas-netes: %s failed; retrying", what, extra={"error": error, "inSeconds": delay})
    await asyncio.sleep(delay)
    return failures + 1
