"""kopf handlers: thin glue between kopf's events and the reconcilers.

Each MLFunction and ModelStore gets one reconcile loop (a kopf daemon): it reconciles at once, then again after a
back-off while something is pending, and at every resync period in any case. Spec changes and status changes of
the OpenFaaS Function wake the loop early. One loop per object means an object is never reconciled twice at the
same time, and the loop's body is kopf's live view of the object, so every pass sees the latest spec.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from dataclasses import dataclass, field

import kopf

from . import GROUP, VERSION
from .builders.status import FunctionObservation, Verdict, observe_function
from .config import OperatorConfig
from .controllers import Context, Result, backoff
from .controllers import mlfunction as mlfunction_controller
from .controllers import modelstore as modelstore_controller
from .kube import MLFUNCTION, MODELSTORE, Kind, Kube, KubeError, load_api_client
from .naming import LABEL_MANAGED_BY, LABEL_OWNER_KIND, LABEL_OWNER_UID, MANAGED_BY

log = logging.getLogger(__name__)
config = OperatorConfig()
FINALIZER = f"{GROUP}/finalizer"
# How long a deletion waits for an unreachable store before deleting the children anyway (warning Event).
REVOKE_ATTEMPTS = 6


@dataclass
class Loop:
    """One object's reconcile loop, as the other handlers see it."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    generation: int | None = None
    function: FunctionObservation | None = None  # the Function as the last reconcile saw it
    reported: FunctionObservation | None = None  # the Function as its latest watch event says
    spec_changed: bool = False

    def spec_event(self) -> None:
        self.spec_changed = True
        self.wake.set()

    def function_event(self, observation: FunctionObservation) -> None:
        self.reported = observation
        if observation != self.function:
            self.wake.set()

    def settle(self, function: FunctionObservation | None) -> None:
        """After a reconcile: drop a wake-up that only echoes what the reconcile itself just did and saw (the
        watch event of its own apply to the Function)."""
        self.function = function
        if self.wake.is_set() and not self.spec_changed and self.reported == function:
            self.wake.clear()


@dataclass
class Runtime:
    kube: Kube
    limit: asyncio.Semaphore
    loops: dict[str, Loop] = field(default_factory=dict)  # by object uid


def _runtime(memo: kopf.Memo) -> Runtime:
    return memo["runtime"]


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING  # our own Events say what happened; kopf's say what failed
    settings.posting.reporting_component = MANAGED_BY
    settings.peering.standalone = True  # one replica: no peering objects, no RBAC for them
    settings.scanning.disabled = True  # no cluster-wide CRD/namespace watch: the chart's ClusterRole stays small
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.label_selectors["openfaas.com", "v1", "functions"] = (
        f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_OWNER_KIND}=MLFunction")
    settings.networking.request_timeout = 60
    # kopf handles each object's events in a task of its own, kept for a while after its last event. Bounding
    # them, and letting idle ones go soon, bounds memory when thousands of objects change at once.
    settings.queueing.worker_limit = config.workers * 2
    settings.queueing.idle_timeout = 0.5
    api = await load_api_client(pool_size=config.api_connections)
    memo["runtime"] = Runtime(kube=Kube(api), limit=asyncio.Semaphore(config.workers))
    log.info("operator configured", extra={"config": config.model_dump()})


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_) -> None:
    runtime = memo.get("runtime")
    if runtime:
        await runtime.kube.api.close()


def _context(runtime: Runtime, body: kopf.Body, stores: kopf.Index) -> Context:
    def emit(type: str, reason: str, message: str) -> None:
        kopf.event(body, type=type, reason=reason, message=message)

    async def lookup_store(name: str, namespace: str) -> dict | None:
        found = stores.get((namespace, name))
        return next(iter(found), None) if found else None

    return Context(kube=runtime.kube, config=config, emit=emit, lookup_store=lookup_store)


@kopf.index(GROUP, VERSION, "modelstores")
async def modelstore_index(namespace: str, name: str, body: kopf.Body, **_) -> dict:
    """Every ModelStore, from kopf's watch: MLFunctions find their store without a request to the API server."""
    return {(namespace, name): {"metadata": {"name": name, "namespace": namespace},
                                "spec": copy.deepcopy(dict(body.get("spec") or {}))}}


async def _loop(runtime: Runtime, body: kopf.Body, stores: kopf.Index, kind: Kind, reconcile,
                logger: logging.Logger) -> None:
    uid = body["metadata"]["uid"]
    loop = runtime.loops[uid] = Loop()
    attempt = 0
    announced = None
    try:
        while True:
            loop.wake.clear()
            loop.spec_changed = False
            snapshot = dict(body)  # the live body keeps changing; reconcile one consistent view
            loop.generation = snapshot["metadata"].get("generation")
            try:
                result = await _pass(runtime, stores, kind, reconcile, body, snapshot)
            except KubeError as error:
                if error.not_found:
                    return  # deleted meanwhile: kopf ends this loop
                logger.warning("reconcile failed, retrying", extra={"error": str(error)})
                result = None
            except Exception:
                logger.exception("reconcile crashed, retrying")  # a bug must not end the loop
                result = None
            if result is not None:
                loop.settle(result.function)
                if (result.verdict.ready, result.verdict.reason) != announced:
                    _announce(body, result.verdict)
                    announced = (result.verdict.ready, result.verdict.reason)
            pending = result is None or result.retry
            delay = backoff(attempt, config.retry_max_seconds) if pending else \
                config.resync_seconds * random.uniform(0.9, 1.1)  # spread resyncs of objects created together
            attempt = attempt + 1 if pending else 0
            try:
                await asyncio.wait_for(loop.wake.wait(), timeout=delay)
                attempt = 0  # woken by a change: start the back-off afresh
            except TimeoutError:
                pass
    finally:
        runtime.loops.pop(uid, None)


async def _pass(runtime: Runtime, stores: kopf.Index, kind: Kind, reconcile, body: kopf.Body,
                snapshot: dict) -> Result:
    """One reconcile of one object, its status written; at most `workers` of these run at once."""
    async with runtime.limit:
        began = time.monotonic()
        result: Result = await reconcile(_context(runtime, body, stores), snapshot)
        await _write_status(runtime.kube, kind, snapshot, result.status)
    meta = snapshot["metadata"]
    log.debug("reconcile pass", extra={"object": f"{kind.kind} {meta.get('namespace')}/{meta.get('name')}",
                                       "reason": result.verdict.reason,
                                       "duration_ms": round((time.monotonic() - began) * 1000, 1)})
    return result


def _announce(body: kopf.Body, verdict: Verdict) -> None:
    """A changed verdict: logged, and an Event when it is news for the user (stalled, or ready)."""
    meta = body["metadata"]
    log.info("reconciled", extra={"object": f"{body.get('kind')} {meta.get('namespace')}/{meta.get('name')}",
                                  "ready": verdict.ready, "reason": verdict.reason, "detail": verdict.message})
    if verdict.stalled:
        kopf.event(body, type="Warning", reason=verdict.reason, message=verdict.message)
    elif verdict.ready:
        kopf.event(body, type="Normal", reason=verdict.reason, message=verdict.message)


async def _write_status(kube: Kube, kind: Kind, body: dict, status: dict) -> None:
    if (body.get("status") or {}) == {k: v for k, v in status.items() if v is not None}:
        return  # nothing new: skip the write (and the watch event it would cause)
    meta = body["metadata"]
    await kube.merge_patch(kind, meta["namespace"], meta["name"], {"status": status}, subresource="status")


def _wake_on_change(memo: kopf.Memo, body: kopf.Body) -> None:
    loop = _runtime(memo).loops.get(body["metadata"]["uid"])
    if loop and loop.generation != body["metadata"].get("generation"):
        loop.spec_event()


# -- MLFunction ----------------------------------------------------------------------------------------------

@kopf.daemon(GROUP, VERSION, "mlfunctions", cancellation_timeout=10.0)
async def mlfunction_loop(body: kopf.Body, memo: kopf.Memo, modelstore_index: kopf.Index, logger: logging.Logger,
                          **_) -> None:
    await _loop(_runtime(memo), body, modelstore_index, MLFUNCTION, mlfunction_controller.reconcile, logger)


@kopf.on.event(GROUP, VERSION, "mlfunctions")
async def mlfunction_event(body: kopf.Body, memo: kopf.Memo, **_) -> None:
    _wake_on_change(memo, body)


@kopf.on.delete(GROUP, VERSION, "mlfunctions")
async def mlfunction_deleted(body: kopf.Body, memo: kopf.Memo, modelstore_index: kopf.Index, retry: int,
                             **_) -> None:
    runtime = _runtime(memo)
    cleanup = await mlfunction_controller.finalize(_context(runtime, body, modelstore_index), dict(body),
                                                   give_up_revoking=retry >= REVOKE_ATTEMPTS)
    if cleanup.pending:
        raise kopf.TemporaryError(f"cleanup pending: {cleanup.pending}",
                                  delay=backoff(retry, config.retry_max_seconds))
    kopf.event(body, type="Normal", reason="Deleted",
               message="Revoked the model-store credential and deleted the Function and its RBAC")


@kopf.on.event("openfaas.com", "v1", "functions",
               labels={LABEL_MANAGED_BY: MANAGED_BY, LABEL_OWNER_KIND: "MLFunction"})
async def function_event(body: kopf.Body, memo: kopf.Memo, **_) -> None:
    """OpenFaaS reported something about a Function: wake its MLFunction's loop if the observation changed."""
    owner_uid = (body["metadata"].get("labels") or {}).get(LABEL_OWNER_UID)
    loop = _runtime(memo).loops.get(owner_uid or "")
    if loop is None:
        return
    loop.function_event(observe_function(dict(body)))


# -- ModelStore ----------------------------------------------------------------------------------------------

@kopf.daemon(GROUP, VERSION, "modelstores", cancellation_timeout=10.0,
             when=lambda namespace, **_: namespace == config.operator_namespace)
async def modelstore_loop(body: kopf.Body, memo: kopf.Memo, modelstore_index: kopf.Index, logger: logging.Logger,
                          **_) -> None:
    await _loop(_runtime(memo), body, modelstore_index, MODELSTORE, modelstore_controller.reconcile, logger)


@kopf.on.event(GROUP, VERSION, "modelstores")
async def modelstore_event(body: kopf.Body, memo: kopf.Memo, **_) -> None:
    _wake_on_change(memo, body)
