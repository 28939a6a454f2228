"""Resource limits per tenant: with caps set (the chart's operator.limits), an MLFunction that asks for more
replicas, CPU or memory than one may have, or that would take its namespace past a cap, is Stalled naming the
field and the cap, and nothing is created for it; the namespace's older MLFunctions keep what they have.
Environment that would change what runs (the loader's, Python's, the runtime's) is refused at admission."""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException
from tenancy_cluster import condition, fn_name, predict_spec

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    return {"MLFUNCTIONS_MAX_REPLICAS_PER_FUNCTION": "5", "MLFUNCTIONS_MAX_CPU_PER_REPLICA": "500m",
            "MLFUNCTIONS_MAX_MEMORY_PER_REPLICA": "512Mi", "MLFUNCTIONS_MAX_REPLICAS_PER_NAMESPACE": "6",
            "MLFUNCTIONS_MAX_FUNCTIONS_PER_NAMESPACE": "3"}


def _limited(cluster, store, namespace: str, name: str, *words: str) -> dict:
    stalled = cluster.wait_condition(namespace, name, "Stalled", "LimitExceeded")
    assert all(word in stalled["message"] for word in words), stalled["message"]
    cluster.another_pass(namespace, name)  # a pass that would have created, had it been allowed
    assert cluster.owned_in_function_namespace(namespace, name) == [] and store.live_tokens(namespace, name) == []
    return stalled


@pytest.mark.parametrize("extra,words", [
    ({"scaling": {"maxReplicas": 10}}, ("spec.scaling.maxReplicas is 10", "at most 5 per MLFunction")),
    ({"resources": {"requests": {"cpu": "2"}}}, ("spec.resources.requests.cpu is 2", "at most 500m per replica")),
    ({"resources": {"limits": {"memory": "1Gi"}}}, ("spec.resources.limits.memory is 1Gi", "at most 512Mi")),
])
def test_a_spec_over_a_per_function_cap_is_stalled_naming_field_and_cap(cluster, store, tenants, extra, words):
    (team,) = tenants("team")
    cluster.create_mlf(team, "greedy", predict_spec(f"l-{team}", **extra))
    _limited(cluster, store, team, "greedy", *words)


def test_a_replica_without_limits_is_held_to_the_caps(cluster, store, tenants):
    (team,) = tenants("team")
    cluster.create_mlf(team, "modest", predict_spec(f"l-{team}", resources={"requests": {"cpu": "100m"}}))
    function = cluster.wait(lambda: cluster.function(fn_name(team, "modest")), what="the Function")
    assert function["spec"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert function["spec"]["requests"] == {"cpu": "100m"}


def test_the_namespace_caps_count_older_mlfunctions_first(cluster, store, tenants):
    (team,) = tenants("team")
    for name in ("first", "second"):
        cluster.create_mlf(team, name, predict_spec(f"n-{team}", scaling={"maxReplicas": 3}))
        cluster.wait(lambda n=name: cluster.function(fn_name(team, n)), what=f"{name}'s Function")
    cluster.create_mlf(team, "third", predict_spec(f"n-{team}", scaling={"maxReplicas": 1}))
    _limited(cluster, store, team, "third", "spec.scaling.maxReplicas of third", "to 7 replicas",
             "allows 6 there", "2 older MLFunction(s) there hold 6")
    for name in ("first", "second"):
        assert condition(cluster.mlf(team, name), "Stalled")["status"] == "False"

    # an older one growing past the cap is refused too, and its Function keeps what it had
    cluster.patch_mlf(team, "second", {"spec": {"scaling": {"maxReplicas": 4}}})
    cluster.wait_condition(team, "second", "Stalled", "LimitExceeded")
    assert cluster.function(fn_name(team, "second"))["spec"]["labels"]["com.openfaas.scale.max"] == "3"

    # room again (first deleted): the waiting ones are admitted at the next resync, oldest first
    cluster.delete_mlf(team, "first")
    cluster.wait(lambda: cluster.function(fn_name(team, "third")), timeout=30, what="the third Function")
    cluster.wait(lambda: cluster.function(fn_name(team, "second"))["spec"]["labels"]["com.openfaas.scale.max"]
                 == "4", what="second's new maxReplicas")


def test_the_number_of_mlfunctions_in_a_namespace_is_capped(cluster, store, tenants):
    (team,) = tenants("team")
    for name in ("a", "b", "c"):
        cluster.create_mlf(team, name, predict_spec(f"c-{team}", scaling={"maxReplicas": 1}))
    for name in ("a", "b", "c"):
        cluster.wait(lambda n=name: cluster.function(fn_name(team, n)), what=f"{name}'s Function")
    cluster.create_mlf(team, "d", predict_spec(f"c-{team}", scaling={"maxReplicas": 1}))
    _limited(cluster, store, team, "d", "metadata.namespace", "at most 3 MLFunctions")


@pytest.mark.parametrize("name", ["LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP",
                                  "fprocess", "FUNCTION_DIR", "OPENFAAS_SECRETS_DIR", "PATH", "TRAIN_CALL_POLICY",
                                  "MODEL_STORE_TOKEN"])
def test_environment_that_changes_what_runs_is_refused_at_admission(cluster, tenants, name):
    (team,) = tenants("team")
    env = [{"name": "LOG_LEVEL", "value": "debug"}, {"name": name, "value": "/tmp/evil"}]
    with pytest.raises(ApiException) as refused:
        cluster.create_mlf(team, "loader", predict_spec("m", env=env))
    assert refused.value.status == 422
    assert "spec.env[1].name" in refused.value.body and "runtime or loader" in refused.value.body
    assert cluster.mlf(team, "loader") is None
    cluster.create_mlf(team, "fine", predict_spec("m", env=env[:1]))  # an ordinary variable is fine
