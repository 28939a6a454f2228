"""Readiness follows the model: the operator follows each model store's change feed and wakes exactly the
reconcile loops of the MLFunctions whose model changed.

A predict MLFunction whose model is not in the store yet waits (ModelNotFound) for its next resync; a new version
or a moved alias changes its status.model and ModelAvailable only when it looks again. Instead, one follower per
ModelStore in use long-polls the store's GET /v1/changes as the store's admin (who sees every model) and, for each
change, wakes the loops of the MLFunctions serving that model in that store (scheduler.Wakeups.model_changed): they
look the model up at once. One open request per store, whatever the number of MLFunctions and models.

Nothing is missed: a loop says what it serves before each pass looks the model up (follow()), and a follower
that starts, or resumes after its cursor was lost (410: the store's log was trimmed, or it is a new store), first
takes the store's cursor and then wakes every loop on that store, covering whatever changed before it was
listening. A follower that loses its connection resumes from its cursor after a back-off (0.5 s, doubling, up to
RETRY_MAX_SECONDS); the loops' own resync stays the fallback while a store cannot be followed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .scheduler import backoff
from .store_client import CursorGone, ModelStoreError, StoreClient
from .stores import StoreProblem, StoreRef, parse_store

log = logging.getLogger(__name__)

FEED_WAIT_SECONDS = 30.0  # each long-poll; the store answers sooner when something changes
RETRY_MAX_SECONDS = 30.0
RETRY_BASE_SECONDS = 0.5

StoreKey = tuple[str, str]  # (namespace, name) of the ModelStore


@dataclass(frozen=True)
class Interest:
    """The model an MLFunction serves, and the store holding it."""

    store: StoreRef
    model: str

    @property
    def key(self) -> StoreKey:
        return (self.store.namespace, self.store.name)


def interest_of(body: dict, default_store: str, store_namespace: str,
                store_object: Callable[[str, str], dict | None]) -> Interest | None:
    """What an MLFunction serves, from its spec and its ModelStore object; None when either is not usable yet (the
    pass says why in the status; nothing to follow until then)."""
    spec = body.get("spec") or {}
    model = (spec.get("model") or {}).get("name")
    obj = store_object(spec.get("modelStore") or default_store, store_namespace)
    if not isinstance(model, str) or not model or obj is None:
        return None
    try:
        return Interest(parse_store(obj), model)
    except StoreProblem:
        return None


class Interests:
    """Which loops (by object uid) serve which model of which store. Pure bookkeeping, no IO."""

    def __init__(self) -> None:
        self._of: dict[str, tuple[StoreKey, str]] = {}
        self._serving: dict[StoreKey, dict[str, set[str]]] = {}

    def set(self, uid: str, key: StoreKey, model: str) -> None:
        self.drop(uid)
        self._of[uid] = (key, model)
        self._serving.setdefault(key, {}).setdefault(model, set()).add(uid)

    def drop(self, uid: str) -> None:
        if (found := self._of.pop(uid, None)) is None:
            return
        key, model = found
        models = self._serving[key]
        models[model].discard(uid)
        if not models[model]:
            del models[model]
        if not models:
            del self._serving[key]

    def serving(self, key: StoreKey, model: str) -> set[str]:
        return set(self._serving.get(key, {}).get(model, ()))

    def on_store(self, key: StoreKey) -> set[str]:
        return {uid for uids in self._serving.get(key, {}).values() for uid in uids}

    def stores(self) -> set[StoreKey]:
        return set(self._serving)


class StoreFollower:
    """Follows one store's change feed until cancelled; `store` may be replaced (a ModelStore's spec changed)."""

    def __init__(self, store: StoreRef, client: Callable[[StoreRef], Awaitable[StoreClient]],
                 changed: Callable[[str], None], lost_track: Callable[[], None],
                 wait: float = FEED_WAIT_SECONDS) -> None:
        self.store = store
        self._client = client
        self._changed = changed        # a model of this store changed
        self._lost_track = lost_track  # changes may have gone unseen: every loop on this store looks again
        self._wait = wait

    async def run(self) -> None:
        cursor: int | None = None
        failures = 0
        while True:
            try:
                client = await self._client(self.store)
                if cursor is None:
                    cursor = (await client.changes(None)).cursor
                    self._lost_track()
                page = await client.changes(cursor, self._wait)
            except CursorGone as gone:
                log.info("model feed: cursor gone, every MLFunction on the store looks again",
                         extra={"store": self.store.describe(), "cursor": cursor})
                cursor = gone.cursor
                self._lost_track()
                continue
            except (ModelStoreError, StoreProblem) as error:
                delay = backoff(failures, RETRY_MAX_SECONDS, RETRY_BASE_SECONDS)
                failures += 1
                log.warning("model feed: cannot follow the store, retrying",
                            extra={"store": self.store.describe(), "error": str(error), "delay": delay})
                await asyncio.sleep(delay)
                continue
            failures = 0
            cursor = page.cursor
            for model in dict.fromkeys(page.models):
                self._changed(model)


class ModelFeeds:
    """The followers of every store in use, and the loops they wake (`wake(uid)`)."""

    def __init__(self, client: Callable[[StoreRef], Awaitable[StoreClient]], wake: Callable[[str], None],
                 wait: float = FEED_WAIT_SECONDS) -> None:
        self._client = client
        self._wake = wake
        self._wait = wait
        self.interests = Interests()
        self._followers: dict[StoreKey, tuple[StoreFollower, asyncio.Task]] = {}

    def follow(self, uid: str, interest: Interest | None) -> None:
        """Before a pass of MLFunction `uid` looks its model up: what it serves now (None: nothing)."""
        if interest is None:
            self.forget(uid)
            return
        self.interests.set(uid, interest.key, interest.model)
        self._prune()
        if (running := self._followers.get(interest.key)) is not None:
            running[0].store = interest.store
            return
        key = interest.key
        follower = StoreFollower(interest.store, self._client,
                                 changed=lambda model: self._wake_all(self.interests.serving(key, model)),
                                 lost_track=lambda: self._wake_all(self.interests.on_store(key)), wait=self._wait)
        task = asyncio.create_task(follower.run(), name=f"model-feed {interest.store.describe()}")
        self._followers[key] = (follower, task)

    def forget(self, uid: str) -> None:
        """The loop ended (the MLFunction is gone)."""
        self.interests.drop(uid)
        self._prune()

    async def close(self) -> None:
        tasks = [task for _, task in self._followers.values()]
        self._followers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _prune(self) -> None:
        """Stop following stores no MLFunction uses any more."""
        for key in set(self._followers) - self.interests.stores():
            self._followers.pop(key)[1].cancel()

    def _wake_all(self, uids: set[str]) -> None:
        for uid in uids:
            self._wake(uid)
