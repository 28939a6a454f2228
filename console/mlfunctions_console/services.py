"""What the pages read, gathered concurrently: MLFunctions, their OpenFaaS Functions (the resources, or in
gatewayAPI mode the gateway's own reports), the gateway's metrics and the model store. Every failure becomes a
Problem the page shows beside whatever else could be read."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import advice, kube, overview, train_credential
from .activity import Activity
from .advice import Problem
from .gateway import FunctionMetrics, Gateway, GatewayError
from .gateway_functions import GatewayFunctions, GatewayFunctionsError
from .kube import Kube, KubeError
from .settings import Settings
from .store import Store, StoreError


@dataclass
class Functions:
    views: list[overview.FunctionView] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    metrics_ok: bool = True


class Services:
    def __init__(self, settings: Settings, kube_client: Kube, http: httpx.AsyncClient):
        self.settings = settings
        self.kube = kube_client
        self.http = http
        self.gateway = Gateway(
            settings.gateway_url, settings.gateway_metrics_url, http, settings.invoke_timeout
        )
        self.activity = Activity()
        # gatewayAPI mode: no Function resources; the gateway's API says what runs.
        self.gateway_functions = (
            GatewayFunctions(settings.gateway_url, settings.gateway_credentials, http) if settings.gateway_mode else None
        )

    async def close(self) -> None:
        await self.http.aclose()
        await self.kube.close()

    # ---- functions ----

    async def metrics(self) -> tuple[dict[str, FunctionMetrics], Problem | None]:
        try:
            found = await self.gateway.metrics()
        except GatewayError as error:
            return {}, Problem(
                "The gateway's metrics cannot be read",
                str(error),
                [
                    (
                        "Replicas and invocations below come from the MLFunctions' status instead. Set "
                        "CONSOLE_GATEWAY_METRICS_URL (chart: console.gateway.metricsURL) to the "
                        "gateway's /metrics."
                    )
                ],
            )
        self.activity.observe({name: m.invocations for name, m in found.items()})
        return found, None

    async def functions(self, namespace: str | None = None, name: str | None = None) -> Functions:
        """Every MLFunction the console may list (or one), as views."""
        result = Functions()

        async def mlfunctions() -> list[dict]:
            if name is not None and namespace is not None:
                one = await self.kube.get(kube.MLFUNCTIONS, namespace, name)
                return [one] if one else []
            return await self.kube.list(kube.MLFUNCTIONS)

        found, functions, read_metrics = await asyncio.gather(
            mlfunctions(), self._openfaas_functions(), self.metrics(), return_exceptions=True
        )
        if isinstance(found, BaseException):
            result.problems.append(_kube_problem(found))
            return result
        if isinstance(functions, BaseException):
            functions = _kube_problem(functions)
        if isinstance(functions, Problem):
            result.problems.append(functions)
            functions = {}
        metrics, metrics_problem = (
            read_metrics
            if isinstance(read_metrics, tuple)
            else (
                {},
                Problem(
                    "The gateway's metrics cannot be read", f"{type(read_metrics).__name__}: {read_metrics}"
                ),
            )
        )
        if metrics_problem:
            result.problems.append(metrics_problem)
            result.metrics_ok = False
        for mlfunction in sorted(found, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
            ref = (mlfunction.get("status") or {}).get("function") or {}
            key = f"{ref.get('name')}.{ref.get('namespace')}"
            result.views.append(
                overview.build(
                    mlfunction,
                    functions.get((ref.get("namespace"), ref.get("name"))),
                    metrics.get(key),
                    self.activity,
                    live=self.gateway_functions is not None,
                )
            )
        return result

    async def _openfaas_functions(self) -> dict[tuple[str, str], dict] | Problem:
        if self.gateway_functions is not None:
            try:
                return await self.gateway_functions.list(self.settings.function_namespace)
            except GatewayFunctionsError as error:
                return _gateway_functions_problem(error)
        try:
            items = await self.kube.list(kube.FUNCTIONS, self.settings.function_namespace)
        except KubeError as error:
            problem = advice.kube(error.status, str(error))
            problem.todo.append("Without the Functions, a function that cannot start is not explained here.")
            return problem
        return {(f["metadata"]["namespace"], f["metadata"]["name"]): f for f in items}

    async def live_ready(self, view: overview.FunctionView) -> int | None:
        """Ready replicas now, read just before a call: the gateway's count, else the Function's status."""
        metrics, _ = await self.metrics()
        if view.key in metrics and metrics[view.key].ready_replicas is not None:
            return metrics[view.key].ready_replicas
        if self.gateway_functions is not None:
            try:
                function = await self.gateway_functions.get(view.function_name, view.function_namespace)
            except GatewayFunctionsError:
                return view.ready
            return ((function or {}).get("status") or {}).get("availableReplicas", view.ready)
        try:
            function = await self.kube.get(kube.FUNCTIONS, view.function_namespace, view.function_name)
        except KubeError:
            return view.ready
        return ((function or {}).get("status") or {}).get("availableReplicas", view.ready)

    # ---- the model store ----

    async def store(self) -> tuple[Store, list[dict]]:
        """The store the console reads (CONSOLE_STORE_URL, else the default ModelStore's status.url), and the
        ModelStores it could list (for their conditions)."""
        try:
            stores = await self.kube.list(kube.MODELSTORES, self.settings.operator_namespace)
        except KubeError:
            stores = []
        url = self.settings.store_url
        if not url:
            default = next((s for s in stores if s["metadata"]["name"] == self.settings.default_store), None)
            url = ((default or {}).get("status") or {}).get("url", "")
        return Store(url, self.settings.store_token(), self.http), stores

    async def model_version(self, model: str, version: int | None) -> tuple[dict[str, Any] | None, str]:
        """The version's store record (its metadata says what the model takes), or None and why not."""
        store, _ = await self.store()
        try:
            return await store.version(model, version or "latest"), ""
        except StoreError as error:
            return None, str(error)

    async def invoke_credential(self, view: overview.FunctionView) -> tuple[dict[str, str], Problem | None]:
        """The header a train function requires, from its invoke Secret (read here, sent by this server,
        never shown to the browser). No Secret: the function asks for none (an operator from before them)."""
        try:
            return await train_credential.header_for(self.kube, view.namespace, view.name), None
        except KubeError as error:
            problem = advice.kube(error.status, str(error))
            if error.status == 403:
                problem = Problem(
                    f"The console may not read the train credential of {view.namespace}/{view.name}",
                    str(error),
                    [
                        (
                            f"Allow it in the chart: console.trainTriggers: [{{namespace: "
                            f"{view.namespace}, mlfunction: {view.name}}}] (a Role that may get "
                            "only that Secret)."
                        )
                    ],
                )
            return {}, problem


def _gateway_functions_problem(error: GatewayFunctionsError) -> Problem:
    todo = "Replicas below come from the MLFunctions' status instead (as of the operator's last pass)."
    if error.status in (401, 403) or error.status is None and "credentials" in str(error):
        todo += (" Put the gateway's basic-auth-user and basic-auth-password in the Secret the chart mounts "
                 "(openfaas.gatewaySecret); the console reads it again at once.")
    return Problem("The gateway's functions cannot be read", str(error), [todo])


def _kube_problem(error: BaseException) -> Problem:
    if isinstance(error, KubeError):
        return advice.kube(error.status, str(error))
    return Problem("Reading the cluster failed", f"{type(error).__name__}: {error}", ["Reload the page."])
