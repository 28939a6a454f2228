"""kopf handlers: thin glue between kopf's events and the reconcile loops (scheduler.py) and reconcilers.

Each MLFunction and ModelStore gets one reconcile loop, run as a kopf daemon; the loop's body is kopf's live view
of the object, so every pass sees the latest spec. Watch events of the objects, and of their children in the
function namespace (child_cache: Functions and ServiceAccounts), only wake loops. Nothing registers at import:
`registry()` builds the handlers, and the configuration arrives in kopf's memo (see __main__).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass, field

import kopf

from . import GROUP, VERSION, metrics_server, model_feed, scheduler
from .builders.limits import Peer, peer_of
from .builders.status import observe_function
from .child_cache import ChildCache, ChildCaches
from .config import OperatorConfig
from .controllers import Context, Reconciler
from .controllers import mlfunction as mlfunction_controller
from .controllers import modelstore as modelstore_controller
from .controllers.passes import PassRunner
from .kube import FUNCTION, MLFUNCTION, MODELSTORE, SERVICE_ACCOUNT, Kind, Kube, load_api_client
from .kube_connection import connection_info
from .metrics import OperatorMetrics, metrics_address
from .naming import LABEL_MANAGED_BY, LABEL_OWNER_KIND, LABEL_OWNER_UID, MANAGED_BY
from .store_client import http_client
from .stores import ModelStores

log = logging.getLogger(__name__)
FINALIZER = f"{GROUP}/finalizer"
# How long a deletion waits for an unreachable store before deleting the children anyway (warning Event).
REVOKE_ATTEMPTS = 6
OWNED_FUNCTIONS = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_OWNER_KIND: "MLFunction"}


@dataclass
class Runtime:
    """What every handler shares: the configuration, the connections, and the wake-ups of every running loop."""

    config: OperatorConfig
    kube: Kube
    stores: ModelStores
    limit: asyncio.Semaphore
    metrics: OperatorMetrics
    children: ChildCaches
    wakeups: dict[str, scheduler.Wakeups] = field(default_factory=dict)  # by object uid
    feeds: model_feed.ModelFeeds | None = None  # None: MLFUNCTIONS_MODEL_FEED=false


def registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    kopf.index(GROUP, VERSION, "modelstores", registry=registry)(modelstore_index)
    kopf.index(GROUP, VERSION, "mlfunctions", registry=registry)(mlfunction_peers)
    kopf.daemon(GROUP, VERSION, "mlfunctions", cancellation_timeout=10.0, registry=registry)(mlfunction_loop)
    kopf.on.event(GROUP, VERSION, "mlfunctions", registry=registry)(object_event)
    kopf.on.delete(GROUP, VERSION, "mlfunctions", registry=registry)(mlfunction_deleted)
    kopf.daemon(GROUP, VERSION, "modelstores", cancellation_timeout=10.0, registry=registry,
                when=lambda namespace, memo, **_: namespace == memo["config"].operator_namespace)(modelstore_loop)
    kopf.on.event(GROUP, VERSION, "modelstores", registry=registry)(object_event)
    return registry


def login(**_) -> kopf.ConnectionInfo:
    """kopf's credentials: the same as the operator's own requests (kube_connection), so it has one identity."""
    return connection_info()


class NoDiffBase(kopf.DiffBaseStorage):
    """No last-handled spec: the operator has no create/update handlers (its loops read the live spec), and kopf
    would otherwise write one into an annotation of every new object (a PATCH, and one more watch event to
    process, per MLFunction). Without it every event is a "creation" with no handler to call: nothing is done."""

    def fetch(self, *, body: kopf.Body) -> None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def _runtime(memo: kopf.Memo) -> Runtime:
    return memo["runtime"]


async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_) -> None:
    config: OperatorConfig = memo["config"]
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.level = logging.WARNING  # our own Events say what happened; kopf's say what failed
    settings.posting.reporting_component = MANAGED_BY
    settings.peering.standalone = True  # one replica: no peering objects, no RBAC for them
    settings.scanning.disabled = True  # no cluster-wide CRD/namespace watch: the chart's ClusterRole stays small
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    # kopf handles each object's events in a task of its own, kept for a while after its last event. Bounding
    # them, and letting idle ones go soon, bounds memory when thousands of objects change at once.
    settings.queueing.worker_limit = config.workers * 2
    settings.queueing.idle_timeout = 0.5
    kube = Kube(await load_api_client(pool_size=config.api_connections))
    # One connection per concurrent reconcile: a pass never queues for a connection to a store.
    stores = ModelStores(kube, http_client(config.store_timeout_seconds, connections=config.workers))
    metrics = OperatorMetrics(config.workers)
    address = metrics_address(config.health_address)
    memo["metrics_server"] = await metrics_server.start(metrics.registry, address, address == config.health_address)
    wakeups: dict[str, scheduler.Wakeups] = {}
    children = _child_caches(config, kube, wakeups)
    children.start()
    memo["runtime"] = Runtime(config=config, kube=kube, stores=stores, limit=asyncio.Semaphore(config.workers),
                              metrics=metrics, children=children, wakeups=wakeups)
    log.info("operator configured", extra={"config": config.model_dump()})
    if config.model_feed:
        runtime = memo["runtime"]
        runtime.feeds = model_feed.ModelFeeds(stores.admin, wake=lambda uid: _model_changed(runtime, uid))


async def cleanup(memo: kopf.Memo, **_) -> None:
    runtime = memo.get("runtime")
    if runtime and runtime.feeds:
        await runtime.feeds.close()
    if runtime:
        await runtime.children.stop()
        await runtime.stores.close()
        await runtime.kube.api.close()
    if memo.get("metrics_server"):
        await memo["metrics_server"].cleanup()


def _context(runtime: Runtime, body: kopf.Body, stores: kopf.Index, peers: kopf.Index) -> Context:
    def emit(type: str, reason: str, message: str) -> None:
        kopf.event(body, type=type, reason=reason, message=message)

    async def lookup_store(name: str, namespace: str) -> dict | None:
        found = stores.get((namespace, name))
        return next(iter(found), None) if found else None

    async def lookup_peers(namespace: str) -> list[Peer]:
        return list(peers.get(namespace) or ())

    return Context(kube=runtime.kube, stores=runtime.stores, config=runtime.config, emit=emit,
                   lookup_store=lookup_store, lookup_peers=lookup_peers, cached_children=runtime.children.read)


async def modelstore_index(namespace: str, name: str, body: kopf.Body, **_) -> dict:
    """Every ModelStore, from kopf's watch: MLFunctions find their store without a request to the API server."""
    return {(namespace, name): {"metadata": {"name": name, "namespace": namespace},
                                "spec": copy.deepcopy(dict(body.get("spec") or {}))}}


async def mlfunction_peers(namespace: str, body: kopf.Body, memo: kopf.Memo, **_) -> dict:
    """Every MLFunction by namespace, as the per-namespace caps count it (nothing when no such cap is set)."""
    config: OperatorConfig = memo["config"]
    if not config.limits_namespaces:
        return {}
    peer = peer_of(dict(body), config)
    return {namespace: peer} if peer is not None else {}


async def _loop(memo: kopf.Memo, body: kopf.Body, stores: kopf.Index, peers: kopf.Index, kind: Kind,
                reconcile: Reconciler, logger: logging.Logger) -> None:
    runtime = _runtime(memo)
    uid = body["metadata"]["uid"]
    wakeups = runtime.wakeups[uid] = scheduler.Wakeups()
    one_pass = PassRunner(_context(runtime, body, stores, peers), kind, reconcile, runtime.limit, logger,
                          runtime.metrics, uid)
    if kind is MLFUNCTION and runtime.feeds is not None:
        one_pass = _following_the_model(runtime, uid, stores, one_pass)
    schedule = scheduler.Schedule(runtime.config.resync_seconds, runtime.config.retry_max_seconds)
    try:
        await scheduler.run(wakeups, schedule, lambda: dict(body), one_pass)
    finally:
        runtime.wakeups.pop(uid, None)
        if runtime.feeds is not None:
            runtime.feeds.forget(uid)
        runtime.metrics.forget(kind.kind.lower(), uid)


def _following_the_model(runtime: Runtime, uid: str, stores: kopf.Index, one_pass):
    """Before each pass looks the model up, tell the store's follower which model this loop serves."""
    config = runtime.config

    def store_object(name: str, namespace: str) -> dict | None:
        found = stores.get((namespace, name))
        return next(iter(found), None) if found else None

    async def follow_then_reconcile(view: dict) -> scheduler.Pass:
        interest = model_feed.interest_of(view, config.default_model_store, config.operator_namespace, store_object)
        runtime.feeds.follow(uid, interest)
        return await one_pass(view)

    return follow_then_reconcile


def _model_changed(runtime: Runtime, uid: str) -> None:
    if (wakeups := runtime.wakeups.get(uid)) is not None:
        wakeups.model_changed()


async def mlfunction_loop(body: kopf.Body, memo: kopf.Memo, modelstore_index: kopf.Index,
                          mlfunction_peers: kopf.Index, logger: logging.Logger, **_) -> None:
    await _loop(memo, body, modelstore_index, mlfunction_peers, MLFUNCTION, mlfunction_controller.reconcile, logger)


async def modelstore_loop(body: kopf.Body, memo: kopf.Memo, modelstore_index: kopf.Index,
                          mlfunction_peers: kopf.Index, logger: logging.Logger, **_) -> None:
    await _loop(memo, body, modelstore_index, mlfunction_peers, MODELSTORE, modelstore_controller.reconcile, logger)


async def object_event(body: kopf.Body, memo: kopf.Memo, **_) -> None:
    """An MLFunction or ModelStore changed: its loop decides whether that is news (a new generation)."""
    wakeups = _runtime(memo).wakeups.get(body["metadata"]["uid"])
    if wakeups:
        wakeups.object_changed(body["metadata"].get("generation"))


def _child_caches(config: OperatorConfig, kube: Kube, wakeups: dict[str, scheduler.Wakeups]) -> ChildCaches:
    """Watches of the MLFunctions' children in the function namespace: the Functions (gatewayAPI mode has none)
    and the ServiceAccounts. Credential Secrets are read by name (the chart grants no list/watch on Secrets)."""
    selector = ",".join(f"{key}={value}" for key, value in OWNED_FUNCTIONS.items())

    def owner_loop(obj: dict) -> scheduler.Wakeups | None:
        return wakeups.get((obj["metadata"].get("labels") or {}).get(LABEL_OWNER_UID) or "")

    def function_changed(obj: dict) -> None:
        """What OpenFaaS says of a Function: its MLFunction's loop decides whether that is news."""
        if (loop := owner_loop(obj)) is not None:
            if obj["metadata"]["name"] in functions.objects:
                loop.child_reported(observe_function(obj))
            else:
                loop.child_changed()  # deleted: the next pass creates it again

    def account_changed(obj: dict) -> None:
        if (loop := owner_loop(obj)) is not None:
            loop.child_changed()

    namespace = config.function_namespace
    functions = ChildCache(kube, FUNCTION, namespace, selector, function_changed)
    accounts = ChildCache(kube, SERVICE_ACCOUNT, namespace, selector, account_changed)
    return ChildCaches([accounts] if config.gateway_mode else [functions, accounts])


async def mlfunction_deleted(body: kopf.Body, memo: kopf.Memo, modelstore_index: kopf.Index,
                             mlfunction_peers: kopf.Index, retry: int, **_) -> None:
    runtime = _runtime(memo)
    cleanup = await mlfunction_controller.finalize(_context(runtime, body, modelstore_index, mlfunction_peers),
                                                   dict(body),
                                                   give_up_revoking=retry >= REVOKE_ATTEMPTS)
    if cleanup.pending:
        raise kopf.TemporaryError(f"cleanup pending: {cleanup.pending}",
                                  delay=scheduler.backoff(retry, runtime.config.retry_max_seconds))
    kopf.event(body, type="Normal", reason="Deleted",
               message="Revoked the model-store credential and deleted the Function and its RBAC")
