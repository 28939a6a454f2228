"""Access to ModelStores: where a store is, its admin token, and clients for the model-store calls the operator
makes (store_client.py), all over the operator's one HTTP client."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from .api import ModelStoreSpec
from .builders.modelstore import ADMIN_TOKEN_KEY
from .kube import SECRET, Kube
from .naming import StoreNames, store_url
from .store_client import StoreClient

# Admin tokens read recently are kept: issuing credentials for many new MLFunctions at once reads the Secret once.
# A changed admin token is picked up within this many seconds (until then the store answers 401 and the operator
# retries).
ADMIN_TOKEN_TTL = 30.0


class StoreProblem(Exception):
    """The store cannot be used right now. `stalled` means the user must change something; otherwise retry."""

    def __init__(self, reason: str, message: str, stalled: bool):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.stalled = stalled


@dataclass(frozen=True)
class Grant:
    """One namespace's rights on one model it does not own (from the ModelStore's spec.access)."""

    model: str
    namespace: str
    rights: tuple[str, ...]


@dataclass(frozen=True)
class StoreRef:
    """A ModelStore as its users see it."""

    name: str
    namespace: str
    url: str
    admin_secret: str
    admin_secret_key: str
    external: bool
    namespaces: tuple[str, ...] | None = None  # spec.namespaces; None: left out
    grants: tuple[Grant, ...] = ()

    def describe(self) -> str:
        return f"ModelStore {self.namespace}/{self.name}"

    def admits(self, namespace: str, default: bool) -> bool:
        """Whether MLFunctions of `namespace` may use this store: the default store admits every namespace unless
        its spec.namespaces says otherwise; any other store only those its spec.namespaces or spec.access name."""
        if self.namespaces is None and default:
            return True
        named = set(self.namespaces or ()) | {grant.namespace for grant in self.grants}
        return "*" in named or namespace in named


def store_ref(name: str, namespace: str, spec: ModelStoreSpec) -> StoreRef:
    namespaces = tuple(spec.namespaces) if spec.namespaces is not None else None
    # One grant per (model, namespace): entries naming the same pair add up their rights.
    rights: dict[tuple[str, str], set[str]] = {}
    for entry in spec.access:
        for model in entry.models:
            # write is given with read: a train function reads the model it writes.
            rights.setdefault((model, entry.namespace), set()).update({*entry.rights, "read"})
    grants = tuple(Grant(model, ns, tuple(sorted(r))) for (model, ns), r in sorted(rights.items()))
    if spec.external:
        ref = spec.external.admin_token_secret_ref
        return StoreRef(name, namespace, spec.external.url.rstrip("/"), ref.name, ref.key, external=True,
                        namespaces=namespaces, grants=grants)
    return StoreRef(name, namespace, store_url(name, namespace), StoreNames.for_store(name).admin_secret,
                    ADMIN_TOKEN_KEY, external=False, namespaces=namespaces, grants=grants)


def parse_store(obj: dict) -> StoreRef:
    """A ModelStore object as a StoreRef. Raises StoreProblem if its spec is invalid."""
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    try:
        spec = ModelStoreSpec.model_validate(obj.get("spec") or {})
    except ValidationError as error:
        raise StoreProblem("ModelStoreInvalid", f"ModelStore {namespace}/{name} has an invalid spec: {error}",
                           stalled=True) from None
    return store_ref(name, namespace, spec)


class ModelStores:
    """The way to every model store: one HTTP client (one connection pool), admin tokens read from their Secrets."""

    def __init__(self, kube: Kube, http: httpx.AsyncClient, clock: Callable[[], float] = time.monotonic):
        self.kube = kube
        self.http = http
        self._clock = clock
        self._admin_tokens: dict[tuple[str, str, str], tuple[float, str]] = {}  # -> (expiry, token)

    async def admin(self, store: StoreRef) -> StoreClient:
        """The store's API as its admin: issues, lists and revokes tokens."""
        return StoreClient(self.http, store.url, await self._admin_token(store))

    def with_token(self, store: StoreRef, token: str) -> StoreClient:
        """The store's API as a function's own token sees it."""
        return StoreClient(self.http, store.url, token)

    async def close(self) -> None:
        await self.http.aclose()

    async def _admin_token(self, store: StoreRef) -> str:
        key = (store.namespace, store.admin_secret, store.admin_secret_key)
        cached = self._admin_tokens.get(key)
        if cached and cached[0] > self._clock():
            return cached[1]
        token = await self._read_admin_token(store)
        self._admin_tokens[key] = (self._clock() + ADMIN_TOKEN_TTL, token)
        return token

    async def _read_admin_token(self, store: StoreRef) -> str:
        secret = await self.kube.get(SECRET, store.namespace, store.admin_secret, cached=True)
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
