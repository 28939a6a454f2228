"""A Function's status from its Deployment's, in OpenFaaS Pro's shape (the process backend's status code)."""

from __future__ import annotations

from local_openfaas.faas_netes.status import deployment_failure, function_status

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def function(status: dict | None = None) -> dict:
    fn = {"metadata": {"name": "predict", "namespace": "openfaas-fn", "uid": "u", "generation": 4},
          "spec": {"name": "predict", "image": "mlfunctions/predict:0.1.0"}}
    if status is not None:
        fn["status"] = status
    return fn


def deployment(replicas: int | None, available: int = 0, conditions: list | None = None) -> dict:
    spec = {} if replicas is None else {"replicas": replicas}
    status = {"availableReplicas": available} if available else {}
    if conditions:
        status["conditions"] = conditions
    return {"spec": spec, "status": status}


def conditions(status: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_a_new_deployment_without_available_replicas_is_not_ready_and_reconciling():
    status = function_status(function(), deployment(1), "", NOW)
    assert (status["replicas"], status["availableReplicas"], status["unavailableReplicas"]) == (1, 0, 1)
    assert status["observedGeneration"] == 4
    assert conditions(status) == {"Ready": ("False", "Starting"), "Healthy": ("False", "Starting"),
                                  "Reconciling": ("True", "Scaling"), "Stalled": ("False", "Progressing")}


def test_all_replicas_available_is_ready_and_healthy():
    status = function_status(function(), deployment(2, available=2), "", NOW)
    assert (status["replicas"], status["availableReplicas"], status["unavailableReplicas"]) == (2, 2, 0)
    assert conditions(status) == {"Ready": ("True", "Available"), "Healthy": ("True", "Available"),
                                  "Reconciling": ("False", "Reconciled"), "Stalled": ("False", "Progressing")}


def test_some_replicas_available_is_ready_but_degraded():
    status = function_status(function(), deployment(3, available=1), "", NOW)
    assert conditions(status)["Ready"] == ("True", "Available")
    assert conditions(status)["Healthy"] == ("False", "Degraded")
    assert status["unavailableReplicas"] == 2


def test_scaled_to_zero_is_ready_and_not_healthy():
    status = function_status(function(), deployment(0), "", NOW)
    assert (status["replicas"], status["availableReplicas"]) == (0, 0)
    assert conditions(status)["Ready"] == ("True", "ScaledToZero")
    assert conditions(status)["Healthy"] == ("False", "ScaledToZero")


def test_replicas_default_to_one_as_the_api_server_does():
    assert function_status(function(), deployment(None), "", NOW)["replicas"] == 1


def test_an_error_stalls_the_function_and_says_why():
    status = function_status(function(), None, "required secret 'x' was not found in the cluster", NOW)
    assert conditions(status)["Stalled"] == ("True", "DeploymentFailed")
    assert conditions(status)["Ready"] == ("False", "DeploymentFailed")
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert "required secret 'x'" in stalled["message"]


def test_a_rollout_past_its_deadline_stalls_the_function():
    stuck = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
              "message": 'ReplicaSet "predict-7d" has timed out progressing.'}]
    assert deployment_failure(deployment(1, conditions=stuck)).startswith("ProgressDeadlineExceeded: ")
    assert conditions(function_status(function(), deployment(1, conditions=stuck), "", NOW))["Stalled"][0] == "True"
    progressing = [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]
    assert deployment_failure(deployment(1, available=1, conditions=progressing)) == ""


def test_replica_failure_stalls_the_function():
    quota = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "exceeded quota"}]
    assert deployment_failure(deployment(1, conditions=quota)) == "FailedCreate: exceeded quota"


def test_transition_times_move_only_when_a_condition_changes():
    first = function_status(function(), deployment(1), "", NOW)
    same = function_status(function(first), deployment(1), "", LATER)
    assert same == first  # nothing to write: the reconciler compares and skips the patch
    ready = function_status(function(first), deployment(1, available=1), "", LATER)
    times = {c["type"]: c["lastTransitionTime"] for c in ready["conditions"]}
    assert times == {"Ready": LATER, "Healthy": LATER, "Reconciling": LATER, "Stalled": NOW}


def test_a_function_that_does_not_parse_still_gets_a_status():
    broken = function()
    broken["spec"]["name"] = "Not_A_Label"
    status = function_status(broken, None, "spec.name 'Not_A_Label': expected a DNS-1123 label", NOW)
    assert conditions(status)["Stalled"] == ("True", "DeploymentFailed")
    assert status["observedGeneration"] == 4
