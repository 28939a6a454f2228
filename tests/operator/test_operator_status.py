"""Status logic: kstatus conditions, the OpenFaaS Function's status, replicas summary."""

from __future__ import annotations

from mlfunctions_operator.builders.modelstore_status import deployment_verdict
from mlfunctions_operator.builders.status import (
    ConditionValue,
    FunctionObservation,
    Verdict,
    function_verdict,
    merge_conditions,
    observe_function,
    replicas_summary,
    verdict_conditions,
)
from mlfunctions_operator.scheduler import backoff


def _by_type(conditions):
    return {c["type"]: c for c in conditions}


def test_transition_time_changes_only_with_status():
    first = merge_conditions(None, verdict_conditions(Verdict.waiting_for("FunctionNotReady", "wait")), 1, "T1")
    second = merge_conditions(first, verdict_conditions(Verdict.waiting_for("ModelNotFound", "train")), 2, "T2")
    ready = _by_type(second)["Ready"]
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == ("False", "ModelNotFound", "T1")
    assert ready["observedGeneration"] == 2
    third = merge_conditions(second, verdict_conditions(Verdict(True, "Deployed", "ok")), 2, "T3")
    assert _by_type(third)["Ready"]["lastTransitionTime"] == "T3"
    assert _by_type(third)["Reconciling"]["status"] == "False"
    assert _by_type(third)["Stalled"]["lastTransitionTime"] == "T1"  # False all along


def test_stalled_verdict_sets_stalled_and_not_reconciling():
    conditions = _by_type(merge_conditions([], verdict_conditions(
        Verdict.stalled_on("NotOwned", "Function openfaas-fn/x exists")), 1, "T"))
    assert conditions["Stalled"]["status"] == "True" and conditions["Stalled"]["reason"] == "NotOwned"
    assert conditions["Stalled"]["message"] == "Function openfaas-fn/x exists"
    assert conditions["Reconciling"]["status"] == "False" and conditions["Ready"]["status"] == "False"


def test_unknown_condition_status():
    conditions = merge_conditions([], [ConditionValue("ModelAvailable", None, "ModelStoreUnavailable")], 1, "T")
    assert conditions[0]["status"] == "Unknown"


def _function(conditions=None, generation=1, **status):
    body = {"metadata": {"generation": generation}}
    if conditions is not None or status:
        body["status"] = {**status, "conditions": [
            {"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in (conditions or [])]}
    return body


def test_no_status_from_openfaas_is_not_ready():
    for function in (None, _function(), _function(conditions=[])):
        observation = observe_function(function)
        assert not observation.reported
        assert function_verdict("openfaas-fn/f", observation).reason == "FunctionNotReady"


def test_status_for_an_older_generation_does_not_count():
    stale = _function([("Ready", "True", "", "")], generation=3, observedGeneration=2, replicas=1,
                      availableReplicas=1)
    assert not observe_function(stale).reported


def test_ready_function_is_deployed():
    observation = observe_function(_function([("Ready", "True", "", ""), ("Healthy", "True", "", "")],
                                             observedGeneration=1, replicas=2, availableReplicas=2))
    verdict = function_verdict("openfaas-fn/f", observation)
    assert verdict.ready and verdict.reason == "Deployed"
    assert replicas_summary(observation) == "2/2"


def test_scaled_to_zero_is_ready_and_idle():
    observation = observe_function(_function([("Ready", "True", "", ""), ("Healthy", "False", "", "")],
                                             replicas=0, availableReplicas=0))
    verdict = function_verdict("openfaas-fn/f", observation)
    assert verdict.ready and verdict.reason == "ScaledToZero"
    assert replicas_summary(observation) == "0 (idle)"


def test_not_ready_function_passes_on_openfaas_message():
    observation = observe_function(_function([("Ready", "False", "Reconciling", ""),
                                              ("Stalled", "True", "SecretMissing", "secret x not found")],
                                             replicas=1, availableReplicas=0))
    verdict = function_verdict("openfaas-fn/f", observation)
    assert not verdict.ready and verdict.reconciling
    assert "secret x not found" in verdict.message
    assert replicas_summary(observation) == "0/1"


def test_replicas_summary_empty_before_openfaas_reports():
    assert replicas_summary(FunctionObservation(reported=False)) == ""


def test_backoff_grows_and_is_capped():
    delays = [backoff(n, cap=60) for n in range(10)]
    assert delays[:4] == [2, 4, 8, 16] and max(delays) == 60 and delays == sorted(delays)


def test_deployment_verdict():
    deployment = {"metadata": {"namespace": "ns", "name": "d", "generation": 2},
                  "status": {"observedGeneration": 2, "availableReplicas": 1, "updatedReplicas": 1}}
    assert deployment_verdict(deployment, 1).ready
    assert deployment_verdict({**deployment, "status": {"observedGeneration": 1, "availableReplicas": 1,
                                                        "updatedReplicas": 1}}, 1).reconciling
    assert deployment_verdict({**deployment, "status": {}}, 1).reason == "DeploymentNotAvailable"
    stopped = deployment_verdict(deployment, 0)
    assert stopped.ready and stopped.reason == "Stopped"
