"""The OpenFaaS Function's status: what OpenFaaS writes and what the operator reads. The shape's home is
operator/mlfunctions_operator/api/openfaas.py; the local OpenFaaS writes it (local_openfaas/runtime/status.py for
the process backend, local_openfaas/faas_netes/status.py from a Deployment's status) and the Function CRD the
tests install declares it (hack/crds/openfaas.com_functions.yaml). Each status the local OpenFaaS can write is
held to the home, sent through the real API server's status subresource, and read back by the operator's reader,
whose verdict must be the one the status means."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from local_openfaas.faas_netes import status as faas_netes_status
from local_openfaas.runtime.spec import FunctionSpec
from local_openfaas.runtime.status import function_status
from local_openfaas.runtime.supervisor import CRASH_LOOP_AFTER, Snapshot
from mlfunctions_operator.api.openfaas import FUNCTION_CONDITIONS, FunctionCondition, FunctionStatus
from mlfunctions_operator.builders.status import function_verdict, observe_function, replicas_summary

REPO = Path(__file__).resolve().parents[2]
FUNCTION_CRD = REPO / "hack" / "crds" / "openfaas.com_functions.yaml"
NOW = "2026-11-24T10:00:00Z"
NAME = "data-science-iris-predict"


@dataclass(frozen=True)
class State:
    """One status the local OpenFaaS can write, and what the operator must make of it."""

    name: str
    write: Callable[[], dict]  # the status, as the local OpenFaaS builds it
    ready: bool                # the operator's verdict
    reason: str
    says: str                  # a fragment of the verdict's message
    summary: str               # the MLFunction's Replicas column


def runtime(snapshot: Snapshot | None, error: str = "", preparing: bool = False, generation: int = 1):
    """The process backend's status; `generation` is the spec generation it acted on (the Function's is 1)."""
    spec = FunctionSpec(name=NAME, namespace="openfaas-fn", image=IMAGE, generation=generation)
    return lambda: function_status(spec, snapshot, error, None, NOW, preparing=preparing)


def faas_netes(replicas: int | None, available: int, conditions: tuple = (), error: str = "", deployment=True):
    """The Kubernetes backend's status, from a Deployment's status as its controller reports it."""
    function = {"metadata": {"name": NAME, "namespace": "openfaas-fn", "generation": 1},
                "spec": {"name": NAME, "image": IMAGE}}
    body = {"spec": {} if replicas is None else {"replicas": replicas},
            "status": {"availableReplicas": available, "conditions": list(conditions)}}
    return lambda: faas_netes_status.function_status(function, body if deployment else None, error, NOW)


IMAGE = "ghcr.io/mlfunctions/predict:0.1.0"
DEADLINE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "x" has timed out progressing.'}
STATES = [
    State("preparing-image", runtime(None, preparing=True), False, "FunctionNotReady", "preparing image", "0/0"),
    State("deployment-failed", runtime(None, error="image example/missing not found"), False, "FunctionNotReady",
          "image example/missing not found", "0/0"),
    State("starting", runtime(Snapshot(1, 0, 0)), False, "FunctionNotReady", "waiting for a replica", "0/1"),
    State("crash-loop", runtime(Snapshot(1, 0, CRASH_LOOP_AFTER, "exit status 3")), False, "FunctionNotReady",
          "exit status 3", "0/1"),
    State("available", runtime(Snapshot(2, 2, 0)), True, "Deployed", "2/2 replicas available", "2/2"),
    State("degraded", runtime(Snapshot(2, 1, 0)), True, "Deployed", "1/2 replicas available", "1/2"),
    State("scaled-to-zero", runtime(Snapshot(0, 0, 0)), True, "ScaledToZero", "scaled to zero", "0 (idle)"),
    State("last-replica-stopping", runtime(Snapshot(0, 1, 0)), True, "Deployed", "1/0 replicas available", "1/0"),
    State("older-generation", runtime(Snapshot(1, 1, 0), generation=0), False, "FunctionNotReady",
          "waiting for OpenFaaS to report", "1/1"),
    State("deployment-available", faas_netes(2, 2), True, "Deployed", "2/2 replicas available", "2/2"),
    State("deployment-default-replicas", faas_netes(None, 0), False, "FunctionNotReady", "waiting for a replica",
          "0/1"),
    State("deployment-scaled-to-zero", faas_netes(0, 0), True, "ScaledToZero", "scaled to zero", "0 (idle)"),
    State("deployment-past-its-deadline", faas_netes(1, 0, (DEADLINE,)), False, "FunctionNotReady",
          "ProgressDeadlineExceeded", "0/1"),
    State("deployment-not-made", faas_netes(None, 0, error='secret "model-token" not found', deployment=False),
          False, "FunctionNotReady", 'secret "model-token" not found', "0/0"),
]
IDS = [state.name for state in STATES]


def _check_verdict(state: State, function: dict) -> None:
    observation = observe_function(function)
    verdict = function_verdict(f"openfaas-fn/{NAME}", observation)
    assert (verdict.ready, verdict.reason) == (state.ready, state.reason), verdict
    assert state.says in verdict.message, verdict.message
    assert replicas_summary(observation) == state.summary


@pytest.mark.parametrize("state", STATES, ids=IDS)
def test_the_local_openfaas_writes_the_homes_shape(state):
    status = state.write()
    # Every field the runtime writes is one the home declares, with the same name and value.
    assert FunctionStatus.model_validate(status).dump() == status
    assert [c["type"] for c in status["conditions"]] == list(FUNCTION_CONDITIONS)


@pytest.mark.parametrize("state", STATES, ids=IDS)
def test_the_operator_reads_what_the_local_openfaas_writes(state):
    _check_verdict(state, {"metadata": {"name": NAME, "generation": 1}, "status": state.write()})


def _aliases(model) -> set[str]:
    return {field.alias for field in model.model_fields.values()}


def test_the_function_crd_declares_the_homes_shape():
    crd = yaml.safe_load(FUNCTION_CRD.read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert set(status["properties"]) == _aliases(FunctionStatus)
    condition = status["properties"]["conditions"]["items"]
    assert set(condition["properties"]) == _aliases(FunctionCondition)
    assert condition["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


@pytest.fixture(scope="module")
def function(k8s: client.ApiClient, install_crds):
    """A Function on the real API server (generation 1), in a namespace of its own."""
    install_crds(FUNCTION_CRD.relative_to(REPO))
    core, custom = client.CoreV1Api(k8s), client.CustomObjectsApi(k8s)
    namespace = f"t-fnstatus-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    custom.create_namespaced_custom_object("openfaas.com", "v1", namespace, "functions", {
        "apiVersion": "openfaas.com/v1", "kind": "Function", "metadata": {"name": NAME},
        "spec": {"name": NAME, "image": IMAGE}})
    yield custom, namespace
    core.delete_namespace(namespace)


@pytest.mark.parametrize("state", STATES, ids=IDS)
def test_through_the_api_server_the_operator_reads_what_the_local_openfaas_writes(function, state):
    custom, namespace = function
    written = state.write()
    # A merge patch replaces the conditions list whole, as the runtime's own status writes do.
    custom.patch_namespaced_custom_object_status("openfaas.com", "v1", namespace, "functions", NAME,
                                                 {"status": written},
                                                 _content_type="application/merge-patch+json")
    read = custom.get_namespaced_custom_object("openfaas.com", "v1", namespace, "functions", NAME)
    assert read["metadata"]["generation"] == 1
    assert read["status"] == written, "the API server pruned or changed fields the local OpenFaaS writes"
    _check_verdict(state, read)
