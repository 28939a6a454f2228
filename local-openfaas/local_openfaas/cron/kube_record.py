"""On a cluster, a function's run record is an annotation on its Function (record.py says its shape), written by the
runtime's identity (it may patch Functions, as OpenFaaS's controller may). An annotation, not the status: the
Function's status is OpenFaaS's schema, and whoever owns the Function's spec (the mlfunctions operator, with
server-side apply) leaves an annotation it does not set alone. Metadata changes do not bump the generation, so the
runtime does not redeploy the function for it."""

from __future__ import annotations

import asyncio
import logging

from kubernetes_asyncio.client.exceptions import ApiException

from local_openfaas.cron.connector import Recorder
from local_openfaas.cron.record import RECORD_ANNOTATION, RunRecord
from local_openfaas.cron.schedule import CronFunction
from local_openfaas.runtime.kube import MERGE_PATCH, REQUEST_SECONDS, UNREACHABLE, KubeBinding
from local_openfaas.runtime.spec import GROUP, PLURAL, VERSION

log = logging.getLogger("mlfunctions.cron")


class FunctionAnnotations(Recorder):
    def __init__(self, binding: KubeBinding):
        self._objects = binding.objects
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def record(self, function: CronFunction, record: RunRecord) -> None:
        await self._patch(function, record.to_annotation())

    async def forget(self, function: CronFunction) -> None:
        await self._patch(function, None)

    async def _patch(self, function: CronFunction, value: str | None) -> None:
        # One write at a time per function, in the order they were asked for: the last record wins.
        lock = self._locks.setdefault(function.key, asyncio.Lock())
        async with lock:
            try:
                await self._objects.patch_namespaced_custom_object(
                    GROUP, VERSION, function.namespace, PLURAL, function.name,
                    {"metadata": {"annotations": {RECORD_ANNOTATION: value}}}, _content_type=MERGE_PATCH,
                    _request_timeout=REQUEST_SECONDS)
            except ApiException as error:
                if error.status != 404:  # 404: the Function is gone, and its record with it
                    log.warning("writing the run record failed", extra={
                        "function": function.qualified, "error": f"{error.status} {error.reason}"})
            except UNREACHABLE as error:
                log.warning("writing the run record failed", extra={"function": function.qualified,
                                                                    "error": repr(error)})
