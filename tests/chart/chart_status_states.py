"""Every state an MLFunction's or a ModelStore's status can take, built with the operator's own status builders,
with what kstatus and the Argo CD health checks must make of each. Shared by the kstatus and Lua tests."""

from __future__ import annotations

from dataclasses import dataclass

from mlfunctions_operator import API_VERSION
from mlfunctions_operator.builders.status import (
    MODEL_AVAILABLE,
    ConditionValue,
    Verdict,
    function_verdict,
    merge_conditions,
    observe_function,
    replicas_summary,
    verdict_conditions,
)
from mlfunctions_operator.controllers.modelstore import deployment_verdict

NOW = "2026-11-24T10:00:00Z"
FUNCTION_NS = "openfaas-fn"
FUNCTION = "data-science-iris-predict"


@dataclass(frozen=True)
class State:
    name: str
    body: dict
    kstatus: str   # Current, InProgress, Failed, Terminating
    argocd: str    # Healthy, Progressing, Degraded, Suspended


def _metadata(kind: str, generation: int, deleting: bool = False) -> dict:
    meta = {"name": "iris-predict" if kind == "MLFunction" else "default",
            "namespace": "data-science" if kind == "MLFunction" else "mlfunctions-system",
            "uid": "4b7f5b0e-0000-4000-8000-000000000001", "generation": generation,
            "creationTimestamp": "2026-11-24T09:59:00Z"}
    if deleting:
        meta.update(deletionTimestamp=NOW, finalizers=["mlfunctions.dev/finalizer"])
    return meta


def _conditions(verdict: Verdict, generation: int, extra: list[ConditionValue] = ()) -> list[dict]:
    return merge_conditions(None, [*verdict_conditions(verdict), *extra], generation, NOW)


def _openfaas_function(replicas: int, available: int, ready: str = "True", reason: str = "Available") -> dict:
    """An OpenFaaS Function as its controller reports it."""
    return {"metadata": {"name": FUNCTION, "namespace": FUNCTION_NS, "generation": 1},
            "status": {"observedGeneration": 1, "replicas": replicas, "availableReplicas": available,
                       "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": ""}]}}


def mlfunction(verdict: Verdict, *, generation: int = 2, observed: int | None = 2, function: dict | None = None,
               model_version: int | None = 3, deleting: bool = False) -> dict:
    body = {"apiVersion": API_VERSION, "kind": "MLFunction", "metadata": _metadata("MLFunction", generation, deleting),
            "spec": {"task": "predict", "model": {"name": "iris"}}}
    if observed is None:
        return body
    model = ConditionValue(MODEL_AVAILABLE, model_version is not None, "Found" if model_version else "ModelNotFound")
    status = {"observedGeneration": observed, "conditions": _conditions(verdict, observed, [model]),
              "model": {"name": "iris", **({"version": model_version} if model_version else {})}}
    if function is not None:
        observation = observe_function(function)
        status.update(url=f"http://gateway.openfaas:8080/function/{FUNCTION}",
                      function={"name": FUNCTION, "namespace": FUNCTION_NS},
                      replicas=observation.replicas, availableReplicas=observation.available,
                      replicasSummary=replicas_summary(observation) or None)
    body["status"] = {k: v for k, v in status.items() if v is not None}
    return body


def _verdict_for(function: dict) -> Verdict:
    return function_verdict(f"{FUNCTION_NS}/{FUNCTION}", observe_function(function))


def _deployment(available: int, generation: int = 1) -> dict:
    return {"metadata": {"name": "iris-server-default", "namespace": "mlfunctions-system", "generation": generation},
            "status": {"observedGeneration": generation, "availableReplicas": available,
                       "updatedReplicas": available}}


def modelstore(verdict: Verdict, *, generation: int = 1, observed: int | None = 1, external: bool = False) -> dict:
    spec = ({"external": {"url": "https://models.example.com",
                          "adminTokenSecretRef": {"name": "models-admin", "key": "admin-token"}}}
            if external else {"replicas": 1, "storage": {"size": "1Gi"}})
    body = {"apiVersion": API_VERSION, "kind": "ModelStore", "metadata": _metadata("ModelStore", generation),
            "spec": spec}
    if observed is not None:
        body["status"] = {"observedGeneration": observed, "conditions": _conditions(verdict, observed),
                          "url": "https://models.example.com" if external else
                          "http://iris-server-default.mlfunctions-system.svc:8080",
                          "adminTokenSecret": "models-admin" if external else "iris-server-default-admin"}
    return body


def mlfunction_states() -> list[State]:
    deployed_fn = _openfaas_function(2, 2)
    idle_fn = _openfaas_function(0, 0)
    starting_fn = _openfaas_function(1, 0, ready="False", reason="Starting")
    deployed = _verdict_for(deployed_fn)
    store_down = Verdict(ready=True, reason=deployed.reason, message=deployed.message, reconciling=True)
    return [
        State("deployed", mlfunction(deployed, function=deployed_fn), "Current", "Healthy"),
        State("scaled-to-zero", mlfunction(_verdict_for(idle_fn), function=idle_fn), "Current", "Healthy"),
        State("function-not-reported", mlfunction(_verdict_for({}), function={}), "InProgress", "Progressing"),
        State("function-starting", mlfunction(_verdict_for(starting_fn), function=starting_fn),
              "InProgress", "Progressing"),
        State("model-not-found", mlfunction(Verdict.waiting_for(
            "ModelNotFound", "model iris not found in ModelStore mlfunctions-system/default; train it first "
                             "(an MLFunction with task: train)"), function=deployed_fn, model_version=None),
              "InProgress", "Progressing"),
        State("model-store-not-ready", mlfunction(Verdict.waiting_for(
            "ModelStoreNotReady", "ModelStore mlfunctions-system/default was just created; waiting for it to "
                                  "start")), "InProgress", "Progressing"),
        State("ready-while-store-unavailable", mlfunction(store_down, function=deployed_fn),
              "InProgress", "Progressing"),
        State("stalled-invalid-spec", mlfunction(Verdict.stalled_on(
            "InvalidSpec", "spec.training: training is required when task is train")), "Failed", "Degraded"),
        State("stalled-store-not-found", mlfunction(Verdict.stalled_on(
            "ModelStoreNotFound", "spec.modelStore: ModelStore mlfunctions-system/team not found; create it or "
                                  "name an existing one")), "Failed", "Degraded"),
        State("stalled-not-owned", mlfunction(Verdict.stalled_on(
            "NotOwned", f"Function {FUNCTION_NS}/{FUNCTION} already exists and it was not created by "
                        "mlfunctions-operator; delete or rename it to let the operator create its own")),
              "Failed", "Degraded"),
        State("stalled-admin-token-rejected", mlfunction(Verdict.stalled_on(
            "ModelStoreRejectedAdminToken", "ModelStore mlfunctions-system/default rejected the admin token")),
              "Failed", "Degraded"),
        State("generation-not-observed", mlfunction(deployed, generation=3, observed=2, function=deployed_fn),
              "InProgress", "Progressing"),
        State("deleting", mlfunction(deployed, function=deployed_fn, deleting=True), "Terminating", "Progressing"),
    ]


def modelstore_states() -> list[State]:
    return [
        State("available", modelstore(deployment_verdict(_deployment(1), 1)), "Current", "Healthy"),
        State("external-reachable", modelstore(Verdict(
            ready=True, reason="Reachable", message="external iris-server at https://models.example.com answers "
                                                    "and accepts its admin token"), external=True),
              "Current", "Healthy"),
        State("deployment-not-available", modelstore(deployment_verdict(_deployment(0), 1)),
              "InProgress", "Progressing"),
        State("stopped", modelstore(deployment_verdict(_deployment(0), 0)), "Current", "Suspended"),
        State("external-unreachable", modelstore(Verdict.waiting_for(
            "Unreachable", "https://models.example.com is unavailable: connection refused"), external=True),
              "InProgress", "Progressing"),
        State("stalled-admin-token-rejected", modelstore(Verdict.stalled_on(
            "AdminTokenRejected", "https://models.example.com rejected the admin token in Secret "
                                  "mlfunctions-system/models-admin: 401 invalid token"), external=True),
              "Failed", "Degraded"),
        State("generation-not-observed", modelstore(deployment_verdict(_deployment(1), 1), generation=2, observed=1),
              "InProgress", "Progressing"),
    ]
