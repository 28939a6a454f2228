"""One reconcile pass of one object, as its loop runs it: reconcile, write the status if that changes it, and tell
the user when the verdict changed. What the reconcile could not turn into a verdict (the API server failing the
status write, a bug) is logged and retried with back-off; an object deleted meanwhile ends its loop."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from ..api import K8sModel
from ..builders.status import Verdict, merge_patched, status_patch
from ..kube import Kind, Kube, KubeError
from ..metrics import OperatorMetrics, kstatus, result_of
from ..scheduler import Pass
from . import Context, Reconciler

log = logging.getLogger(__name__)


@dataclass
class PassRunner:
    """Runs the passes of one object; at most `limit` passes of all objects run at once."""

    ctx: Context
    kind: Kind
    reconcile: Reconciler
    limit: asyncio.Semaphore
    logger: logging.Logger  # the object's own (kopf's per-object logger)
    metrics: OperatorMetrics
    uid: str
    announced: tuple[bool, str] | None = None
    retrying: bool = False  # the last pass asked for a back-off: this one is a retry

    async def __call__(self, body: dict) -> Pass:
        """The loop is due (scheduler.run calls at once): the object is queued until a worker is free."""
        controller = self.kind.kind.lower()
        self.metrics.queued(controller, self.uid, retry=self.retrying)
        outcome, result = await self._pass(body, controller)
        self.retrying = outcome.retry
        if not outcome.gone:
            self.metrics.reconciled(controller, result)
        return outcome

    async def _pass(self, body: dict, controller: str) -> tuple[Pass, str]:
        """One pass, and its result as controller-runtime counts it (metrics.result_of)."""
        began = time.monotonic()
        try:
            async with self.limit:
                with self.metrics.working(controller, self.uid):
                    result = await self.reconcile(self.ctx, body)
                    await write_status(self.ctx.kube, self.kind, body, result.status)
        except KubeError as error:
            if error.not_found:
                return Pass(retry=False, finished=False, gone=True), "error"  # deleted meanwhile: kopf ends the loop
            self.logger.warning("reconcile failed, retrying", extra={"error": str(error)})
            return Pass(retry=True, finished=False), "error"
        except Exception:
            self.logger.exception("reconcile crashed, retrying")  # a bug must not end the loop
            return Pass(retry=True, finished=False), "error"
        log.debug("reconcile pass", extra={"object": _describe(body), "reason": result.verdict.reason,
                                           "duration_ms": round((time.monotonic() - began) * 1000, 1)})
        self._announce(body, result.verdict)
        verdict = result.verdict
        self.metrics.status(controller, self.uid, kstatus(verdict.ready, verdict.stalled))
        return Pass(retry=verdict.retry, observed=result.function), result_of(verdict.retry)

    def _announce(self, body: dict, verdict: Verdict) -> None:
        """A changed verdict: logged, and an Event when it is news for the user (stalled, or ready)."""
        if (verdict.ready, verdict.reason) == self.announced:
            return
        self.announced = (verdict.ready, verdict.reason)
        log.info("reconciled", extra={"object": _describe(body), "ready": verdict.ready, "reason": verdict.reason,
                                      "detail": verdict.message})
        if verdict.stalled:
            self.ctx.emit("Warning", verdict.reason, verdict.message)
        elif verdict.ready:
            self.ctx.emit("Normal", verdict.reason, verdict.message)


async def write_status(kube: Kube, kind: Kind, body: dict, status: K8sModel) -> None:
    patch = status_patch(status)
    current = body.get("status") or {}
    if merge_patched(current, patch) == current:
        return  # nothing new: skip the write (and the watch event it would cause)
    meta = body["metadata"]
    await kube.merge_patch(kind, meta["namespace"], meta["name"], {"status": patch}, subresource="status")


def _describe(body: dict) -> str:
    meta = body["metadata"]
    return f"{body.get('kind')} {meta.get('namespace')}/{meta.get('name')}"
