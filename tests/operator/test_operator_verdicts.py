"""What users see: the one map from failures to verdicts (controllers/failures.py), and the status builders that
turn a verdict into the status written (builders/*_status.py), as the merge patch the operator sends."""

from __future__ import annotations

import pytest
from mlfunctions_operator.api import FunctionRef, MLFunctionSpec
from mlfunctions_operator.builders.mlfunction_status import (
    build_mlfunction_status,
    model_unknown,
    model_verdict,
)
from mlfunctions_operator.builders.modelstore_status import build_modelstore_status
from mlfunctions_operator.builders.status import Verdict, merge_patched, status_patch
from mlfunctions_operator.children import NotOwned
from mlfunctions_operator.controllers.failures import InvalidSpec, parse_spec, verdict_for
from mlfunctions_operator.kube import FUNCTION, KubeError
from mlfunctions_operator.store_client import Forbidden, ModelStoreError, Unauthorized, Unavailable
from mlfunctions_operator.stores import StoreProblem, StoreRef

STORE = StoreRef("team", "mlfunctions-system", "http://models.example:8080", "team-admin", "admin-token",
                 external=True)
NOW = "2026-11-24T10:00:00Z"


def _shape(verdict: Verdict) -> tuple[str, bool, bool, bool]:
    return verdict.reason, verdict.stalled, verdict.reconciling, verdict.retry


def test_an_invalid_spec_is_stalled_naming_the_field_and_not_retried():
    with pytest.raises(InvalidSpec) as error:
        parse_spec(MLFunctionSpec, {"spec": {"task": "predict", "model": {"name": "Not_A_Label"}}})
    verdict = verdict_for(error.value)
    assert _shape(verdict) == ("InvalidSpec", True, False, False)
    assert verdict.message.startswith("spec.model.name: ")


@pytest.mark.parametrize(("error", "shape"), [
    (NotOwned(FUNCTION, "openfaas-fn", "x", None), ("NotOwned", True, False, True)),
    (StoreProblem("ModelStoreNotFound", "no such store", stalled=True), ("ModelStoreNotFound", True, False, True)),
    (StoreProblem("ModelStoreNotReady", "starting", stalled=False), ("ModelStoreNotReady", False, True, True)),
    (KubeError(422, "Invalid", "spec.image: bad"), ("ApplyFailed", True, False, True)),
    (KubeError(403, "Forbidden", "no rights"), ("ApplyFailed", True, False, True)),
    (KubeError(500, "InternalError", "etcd"), ("APIError", False, True, True)),
    (KubeError(0, "Unreachable", "API server unreachable"), ("APIError", False, True, True)),
])
def test_failures_outside_the_store(error, shape):
    assert _shape(verdict_for(error, STORE)) == shape
    assert _shape(verdict_for(error, STORE, store_itself=True)) == shape  # the same for either kind


@pytest.mark.parametrize(("error", "for_a_function", "for_the_store"), [
    (Unauthorized("bad token", 401), ("ModelStoreRejectedAdminToken", True, False, True),
     ("AdminTokenRejected", True, False, True)),
    (Forbidden("not admin", 403), ("ModelStoreRejectedAdminToken", True, False, True),
     ("AdminTokenRejected", True, False, True)),
    (Unavailable("connection refused"), ("ModelStoreUnavailable", False, True, True),
     ("Unreachable", False, True, True)),
    (Unavailable("overloaded", 503), ("ModelStoreUnavailable", False, True, True), ("Unreachable", False, True, True)),
    # answered, but refused: not "unreachable"
    (ModelStoreError("teapot", 418), ("ModelStoreError", False, True, True), ("ModelStoreError", False, True, True)),
])
def test_store_failures_depend_on_whose_reconcile_it_is(error, for_a_function, for_the_store):
    function = verdict_for(error, STORE)
    assert _shape(function) == for_a_function
    assert f"ModelStore mlfunctions-system/team ({STORE.url})" in function.message and str(error) in function.message
    store = verdict_for(error, STORE, store_itself=True)
    assert _shape(store) == for_the_store and STORE.url in store.message
    if store.stalled:
        assert "Secret mlfunctions-system/team-admin" in store.message  # says where the rejected token is


def test_a_failure_outside_the_map_is_raised_again():
    with pytest.raises(KeyError):  # a bug: the loop logs it and retries, never hidden behind a verdict
        verdict_for(KeyError("spec"), STORE)


def _mlfunction(status: dict | None = None) -> dict:
    return {"metadata": {"name": "iris", "namespace": "ds", "generation": 3}, **({"status": status} if status else {})}


def _status(body: dict, verdict: Verdict, **extra) -> dict:
    spec = MLFunctionSpec.model_validate({"task": "predict", "model": {"name": "iris"}})
    return status_patch(build_mlfunction_status(
        body, verdict, NOW, spec=spec, function_ref=FunctionRef(name="ds-iris", namespace="openfaas-fn"),
        gateway_url="http://gateway:8080/", **extra))


def test_a_failed_reconcile_leaves_what_it_did_not_get_to():
    earlier = {"url": "http://gateway:8080/function/ds-iris", "model": {"name": "iris", "version": 2}}
    patch = _status(_mlfunction(earlier), Verdict.stalled_on("ModelStoreNotFound", "no store"), function=None)
    assert set(patch) == {"observedGeneration", "conditions", "model"}
    assert patch["model"] == {"name": "iris"}  # the store was not asked: the version stays as it was
    after = merge_patched(earlier, patch)
    assert after["url"] == earlier["url"] and after["model"]["version"] == 2
    assert {c["type"]: c["status"] for c in patch["conditions"]} == {"Ready": "False", "Reconciling": "False",
                                                                    "Stalled": "True"}


def test_a_version_the_store_no_longer_has_leaves_the_status():
    spec = MLFunctionSpec.model_validate({"task": "predict", "model": {"name": "iris"}})
    verdict, condition = model_verdict(spec, "ModelStore ms/team", Verdict(True, "Deployed", "ok"), None)
    assert verdict.reason == "ModelNotFound" and condition.status is False
    earlier = {"model": {"name": "iris", "version": 2}}
    patch = _status(_mlfunction(earlier), verdict, function={"metadata": {"generation": 1}}, model_condition=condition)
    assert patch["model"] == {"name": "iris", "version": None}
    assert merge_patched(earlier, patch)["model"] == {"name": "iris"}


def test_an_unavailable_store_keeps_the_function_verdict_and_the_version():
    verdict, condition = model_unknown(Verdict(True, "Deployed", "ok"), "connection refused")
    assert (verdict.ready, verdict.reason, verdict.reconciling, verdict.retry) == (True, "Deployed", True, True)
    patch = _status(_mlfunction({"model": {"name": "iris", "version": 2}}), verdict, function=None,
                    model_condition=condition)
    assert patch["model"] == {"name": "iris"}
    assert {c["type"]: c["status"] for c in patch["conditions"]}["ModelAvailable"] == "Unknown"


def test_replicas_unknown_to_openfaas_are_removed():
    function = {"metadata": {"generation": 1}, "status": {}}
    patch = _status(_mlfunction(), Verdict.waiting_for("FunctionNotReady", "applied"), function=function)
    assert patch["url"] == "http://gateway:8080/function/ds-iris"
    assert patch["function"] == {"name": "ds-iris", "namespace": "openfaas-fn"}
    assert patch["replicas"] is None and patch["replicasSummary"] is None  # null: removed by the merge patch


def test_an_unchanged_status_patches_nothing():
    body = _mlfunction()
    first = _status(body, Verdict(True, "Deployed", "ok"), function=None)
    current = merge_patched({}, first)
    again = _status(_mlfunction(current), Verdict(True, "Deployed", "ok"), function=None)
    assert merge_patched(current, again) == current  # lastTransitionTime kept, so the write is skipped


def test_modelstore_status_removes_what_a_broken_spec_cannot_say():
    body = {"metadata": {"generation": 1}, "status": {"url": "http://old", "adminTokenSecret": "old-admin"}}
    patch = status_patch(build_modelstore_status(body, Verdict.stalled_on("InvalidSpec", "spec.replicas: >1"), NOW,
                                                 url=None, admin_token_secret=None))
    assert merge_patched(body["status"], patch).keys() == {"observedGeneration", "conditions"}
