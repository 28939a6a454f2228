"""Where the served model comes from: the model store, fetched at start and refreshed in the background.

Requests read `ModelSource.current`, one attribute holding an immutable ServedModel: no lock on the request
path. A refresh downloads with If-None-Match (the store answers 304 while nothing changed), builds the new
session off the event loop, then swaps the attribute, so requests in flight finish on the old model and none
is dropped. While no model could be loaded the source remembers why, and requests get that reason (503 store
down, 404 no such model, 502 credential refused) instead of hanging; the store is asked again at most once a
second.

A refresh also happens as soon as the store says the model changed: a follower long-polls the store's change
feed (GET /v1/changes, which shows this token only its own model) and wakes the refresh loop, so a new version
or a moved alias is served within a moment; the refresh every `refresh_seconds` stays as the fallback (a store
without the feed, a feed that cannot be reached)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any
from collections.abc import Callable

from iris_client import CursorGone, ModelStoreError, NotFound

import function_metrics
import function_support
from served_model import ServedModel, UnservableModel

log = logging.getLogger("predict.model")

RETRY_SECONDS = 1.0  # how often a function without a model asks the store again
FEED_WAIT_SECONDS = 30.0  # each long-poll of the change feed; it answers sooner when something changes


class ModelUnavailable(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ModelSource:
    def __init__(
        self, name: str, version: int | None, refresh_seconds: float, client_factory: Callable[[], Any]
    ):
        self.name = name
        self.pinned_version = version
        self.refresh_seconds = refresh_seconds
        self.current: ServedModel | None = None
        self.started = False  # the first load attempt has finished, whatever its outcome
        self.problem: ModelUnavailable | None = ModelUnavailable(503, f"model {name} is still loading")
        self._client_factory = client_factory
        self._client: Any = None
        self._etag: str | None = None
        self._inflight: asyncio.Task | None = None
        self._last_attempt = float("-inf")
        self._refresher: asyncio.Task | None = None
        self._stopping = threading.Event()
        self._changed = asyncio.Event()  # the feed said the model changed: refresh now

    @property
    def wanted(self) -> str:
        return f"model {self.name!r} " + (
            f"version {self.pinned_version}" if self.pinned_version else "(newest)"
        )

    async def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_forever(), name="model-refresh")
        if self.pinned_version is None:  # a pinned version never changes
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._follow_feed, args=(loop,), name="model-feed", daemon=True).start()

    async def stop(self) -> None:
        self._stopping.set()
        if self._refresher:
            self._refresher.cancel()

    async def model(self) -> ServedModel:
        """The model to answer with; raises ModelUnavailable (with the reason) when there is none."""
        current = self.current
        if current is not None:
            return current
        if self._inflight is not None or time.monotonic() - self._last_attempt >= RETRY_SECONDS:
            await self._fetch()
        if self.current is None:
            raise self.problem or ModelUnavailable(503, f"{self.wanted} is not loaded")
        return self.current

    async def _refresh_forever(self) -> None:
        await self._fetch()
        self.started = True
        while True:
            if self.current is not None and self.pinned_version is not None:
                return  # a pinned version never changes: nothing left to watch
            try:
                wait = self.refresh_seconds if self.current is not None else RETRY_SECONDS
                await asyncio.wait_for(self._changed.wait(), timeout=wait)
            except TimeoutError:
                pass
            self._changed.clear()
            await self._fetch()

    def _follow_feed(self, loop: asyncio.AbstractEventLoop) -> None:
        """In a daemon thread of its own (a long-poll must not hold the process's exit, nor a worker thread of
        the loop's): wake the refresh loop whenever the store logs a change of this model. Failures back off up
        to the refresh interval, which covers them meanwhile."""
        client = self._client_factory()  # its own: a long-poll holds its connection
        cursor: int | None = None
        failures = 0
        while not self._stopping.is_set():
            try:
                if cursor is None:
                    cursor = client.changes().cursor
                    self._wake(loop)  # whatever changed before the feed was followed
                page = client.changes(cursor, FEED_WAIT_SECONDS)
            except CursorGone as gone:
                cursor = gone.cursor
                self._wake(loop)
                continue
            except NotFound:
                log.info("the model store has no change feed; refreshing every %ss", self.refresh_seconds)
                return
            except ModelStoreError as error:
                failures += 1
                delay = min(self.refresh_seconds, RETRY_SECONDS * 2**failures)
                log.warning("model feed unavailable", extra={"error": str(error), "retry_seconds": delay})
                self._stopping.wait(delay)
                continue
            failures = 0
            cursor = page.cursor
            if any(change.model == self.name for change in page.changes):
                self._wake(loop)

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._changed.set)
        except RuntimeError:  # the loop is closed: the function is stopping
            self._stopping.set()

    async def _fetch(self) -> None:
        # Concurrent callers share one download: a burst of requests while the store is down makes one call.
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._fetch_once())
        await asyncio.shield(self._inflight)

    async def _fetch_once(self) -> None:
        self._last_attempt = time.monotonic()
        started = time.perf_counter()
        try:
            loaded = await asyncio.to_thread(self._download_and_load)
        except UnservableModel as error:
            function_metrics.model_load("error")
            self._failed(500, str(error))
        except ModelStoreError as error:
            function_metrics.model_load("error")
            self._failed(*function_support.store_problem(error, f"fetching {self.wanted}"))
        except Exception as error:
            log.exception("model fetch failed")
            function_metrics.model_load("error")
            self._failed(500, f"fetching {self.wanted} failed: {type(error).__name__}: {error}")
        else:
            function_metrics.model_load("success" if loaded is not None else "not_modified")
            if loaded is not None:
                model, self._etag = loaded
                function_metrics.model_served(model.name, model.version)
                previous, self.current = self.current, model
                self.problem = None
                log.info(
                    "model loaded",
                    extra={
                        "model": self.name,
                        "version": model.version,
                        "previous": previous.version if previous else None,
                        "seconds": round(time.perf_counter() - started, 4),
                    },
                )
        finally:
            self._inflight = None

    def _download_and_load(self) -> tuple[ServedModel, str] | None:
        """Runs in a worker thread: network and session building stay off the event loop."""
        if self._client is None:
            self._client = self._client_factory()
        etag = self._etag if self.current is not None else None
        artifact = self._client.download(self.name, self.pinned_version or "latest", etag=etag)
        if artifact is None:
            return None  # 304: the served model is still the right one
        info = artifact.version
        return ServedModel(artifact.data, self.name, info.version, info.metadata), artifact.etag

    def _failed(self, status: int, message: str) -> None:
        if self.current is not None:
            # Keep answering with the model we have; a refresh that fails is retried at the next interval.
            log.warning(
                "model refresh failed; still serving the loaded model",
                extra={"model": self.name, "version": self.current.version, "error": message},
            )
            return
        self.problem = ModelUnavailable(status, message)
        log.warning("model not loaded", extra={"model": self.name, "status": status, "error": message})
