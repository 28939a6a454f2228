"""Access to ModelStores: where a store is, its admin token, and the model-store calls the operator makes.

iris_client is synchronous (requests); its calls run on a small thread pool so the event loop never blocks on a
slow or unreachable store.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from iris_client import IssuedToken, ModelStoreClient, ModelStoreError, ModelVersion, NotFound
from pydantic import ValidationError

from .api import ModelStoreSpec
from .builders.modelstore import ADMIN_TOKEN_KEY
from .kube import SECRET, Kube
from .naming import StoreNames, store_url

_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="model-store")
T = TypeVar("T")


class StoreProblem(Exception):
    """The store cannot be used right now. `stalled` means the user must change something; otherwise retry."""

    def __init__(self, reason: str, message: str, stalled: bool):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.stalled = stalled


@dataclass(frozen=True)
class StoreRef:
    """A ModelStore as its users see it."""

    name: str
    namespace: str
    url: str
    admin_secret: str
    admin_secret_key: str
    external: bool

    def describe(self) -> str:
        return f"ModelStore {self.namespace}/{self.name}"


def store_ref(name: str, namespace: str, spec: ModelStoreSpec) -> StoreRef:
    if spec.external:
        ref = spec.external.admin_token_secret_ref
        return StoreRef(name, namespace, spec.external.url.rstrip("/"), ref.name, ref.key, external=True)
    return StoreRef(name, namespace, store_url(name, namespace), StoreNames.for_store(name).admin_secret,
                    ADMIN_TOKEN_KEY, external=False)


def parse_store(obj: dict) -> StoreRef:
    """A ModelStore object as a StoreRef. Raises StoreProblem if its spec is invalid."""
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    try:
        spec = ModelStoreSpec.model_validate(obj.get("spec") or {})
    except ValidationError as error:
        raise StoreProblem("ModelStoreInvalid", f"ModelStore {namespace}/{name} has an invalid spec: {error}",
                           stalled=True) from None
    return store_ref(name, namespace, spec)


# Admin tokens read recently: issuing credentials for many new MLFunctions at once reads the Secret once. A changed
# admin token is picked up within ADMIN_TOKEN_TTL seconds (until then the store answers 401 and the operator retries).
ADMIN_TOKEN_TTL = 30.0
_admin_tokens: dict[tuple[str, str, str], tuple[float, str]] = {}


async def admin_token(kube: Kube, store: StoreRef) -> str:
    key = (store.namespace, store.admin_secret, store.admin_secret_key)
    cached = _admin_tokens.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    token = await _read_admin_token(kube, store)
    _admin_tokens[key] = (time.monotonic() + ADMIN_TOKEN_TTL, token)
    return token


async def _read_admin_token(kube: Kube, store: StoreRef) -> str:
    secret = await kube.get(SECRET, store.namespace, store.admin_secret, cached=True)
    where = f"Secret {store.namespace}/{store.admin_secret}"
    if secret is None:
        # An external store's Secret is the user's to create; our own store's is created by the operator.
        raise StoreProblem("AdminTokenMissing", f"{where} with the admin token of {store.describe()} not found",
                           stalled=store.external)
    encoded = (secret.get("data") or {}).get(store.admin_secret_key)
    if not encoded:
        raise StoreProblem("AdminTokenMissing", f"{where} has no key {store.admin_secret_key!r}",
                           stalled=store.external)
    return base64.b64decode(encoded).decode().strip()


_local = threading.local()
_KEPT_PER_THREAD = 8


def _kept_client(url: str, token: str, timeout: float) -> ModelStoreClient:
    """A client kept by this pool thread for (url, token): admin calls reuse its keep-alive connections."""
    clients: dict = getattr(_local, "clients", None) or {}
    _local.clients = clients
    key = (url, token, timeout)
    if key not in clients:
        if len(clients) >= _KEPT_PER_THREAD:  # stores come and go rarely: starting over is fine
            for stale in clients.values():
                stale.close()
            clients.clear()
        clients[key] = ModelStoreClient(url, token, timeout=timeout, retries=0)
    return clients[key]


class StoreClient:
    """The model-store calls the operator makes, awaitable. Errors are iris_client's typed ModelStoreErrors.

    `keep=True` (the admin token: few of them, many calls) reuses connections; a function's own token is used
    once per reconcile, so its client is not kept.
    """

    def __init__(self, url: str, token: str, timeout: float, keep: bool = False):
        self.url, self._token, self.timeout, self.keep = url, token, timeout, keep

    async def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # One attempt per call (retries=0): the reconcile loop's back-off spaces out the next one.
        def run() -> T:
            if self.keep:
                return method(_kept_client(self.url, self._token, self.timeout), *args, **kwargs)
            with ModelStoreClient(self.url, self._token, timeout=self.timeout, retries=0) as store:
                return method(store, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(_pool, run)

    async def create_token(self, models: tuple[str, ...], rights: tuple[str, ...], description: str) -> IssuedToken:
        return await self._call(partial(ModelStoreClient.create_token, models=list(models), rights=list(rights),
                                        description=description))

    async def revoke_token(self, token_id: str) -> None:
        try:
            await self._call(ModelStoreClient.revoke_token, token_id)
        except NotFound:
            pass  # already gone: revoking is idempotent

    async def list_tokens(self) -> list[dict]:
        return await self._call(ModelStoreClient.list_tokens)

    async def get_version(self, model: str, version: int | str) -> ModelVersion | None:
        try:
            return await self._call(ModelStoreClient.get_version, model, version)
        except NotFound:
            return None


__all__ = ["ModelStoreError", "StoreClient", "StoreProblem", "StoreRef", "admin_token", "parse_store", "store_ref"]
