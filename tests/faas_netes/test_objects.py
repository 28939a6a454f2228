"""The pure Function -> Deployment/Service translation against golden manifests and faas-netes's rules."""

from __future__ import annotations

import json

import pytest
from local_openfaas.faas_netes import objects
from local_openfaas.faas_netes.objects import DeploymentConfig, MissingSecret, ProbeTiming
from local_openfaas.runtime.spec import InvalidFunction

UID = "5b1c0c1e-1111-4a2b-9c3d-000000000001"


def function(name: str = "predict", **spec) -> dict:
    return {"apiVersion": "openfaas.com/v1", "kind": "Function",
            "metadata": {"name": name, "namespace": "openfaas-fn", "uid": UID, "generation": 3},
            "spec": {"name": name, "image": f"mlfunctions/{name}:0.1.0", **spec}}


FULL = function(
    handler="python index.py",
    environment={"write_timeout": "30s", "MODEL": "iris", "exec_timeout": "30s"},
    labels={"com.openfaas.scale.min": "2", "com.openfaas.scale.max": "5", "com.openfaas.scale.zero": "true",
            "mlfunctions.dev/model": "iris"},
    annotations={"com.openfaas.serviceaccount": "predict-sa", "mlfunctions.dev/owner": "team-a"},
    secrets=["iris-read-token", "registry-auth"],
    limits={"memory": "256Mi", "cpu": "500m"},
    requests={"memory": "128Mi", "cpu": "50m"},
    constraints=["kubernetes.io/arch=amd64", "not-a-selector"],
    readOnlyRootFilesystem=True,
)
SECRETS = {
    "iris-read-token": {"type": "Opaque", "data": {"token": "c2VjcmV0", "url": "aHR0cDovL2lyaXM="}},
    "registry-auth": {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "e30="}},
}


def test_full_function_matches_golden(golden):
    golden("predict-full", [objects.deployment(FULL, SECRETS), objects.service(FULL)])


def test_minimal_function_matches_golden(golden):
    minimal = function("train")
    golden("train-minimal", [objects.deployment(minimal, {}), objects.service(minimal)])


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_objects_are_named_after_the_function_and_owned_by_it():
    deployment, service = objects.deployment(FULL, SECRETS), objects.service(FULL)
    for obj in (deployment, service):
        assert obj["metadata"]["name"] == "predict" and obj["metadata"]["namespace"] == "openfaas-fn"
        assert obj["metadata"]["ownerReferences"] == [{"apiVersion": "openfaas.com/v1", "kind": "Function",
                                                       "name": "predict", "uid": UID, "controller": True,
                                                       "blockOwnerDeletion": True}]
    assert deployment["spec"]["selector"] == {"matchLabels": {"faas_function": "predict"}}
    assert service["spec"]["selector"] == {"faas_function": "predict"}
    assert container(deployment)["name"] == "predict"


def test_environment_is_sorted_with_fprocess_from_the_handler():
    env = container(objects.deployment(FULL, SECRETS))["env"]
    assert [e["name"] for e in env] == ["MODEL", "exec_timeout", "fprocess", "write_timeout"]
    assert {"name": "fprocess", "value": "python index.py"} in env
    assert "env" not in container(objects.deployment(function(), {}))


def test_secrets_are_projected_per_key_and_registry_secrets_pulled():
    pod = objects.deployment(FULL, SECRETS)["spec"]["template"]["spec"]
    projected = next(v for v in pod["volumes"] if v["name"] == "predict-projected-secrets")
    assert projected["projected"]["sources"] == [{"secret": {"name": "iris-read-token", "items": [
        {"key": "token", "path": "token"}, {"key": "url", "path": "url"}]}}]
    assert {"name": "predict-projected-secrets", "readOnly": True, "mountPath": "/var/openfaas/secrets"} in (
        pod["containers"][0]["volumeMounts"])
    assert pod["imagePullSecrets"] == [{"name": "registry-auth"}]


def test_a_missing_secret_is_refused():
    with pytest.raises(MissingSecret, match="required secret 'registry-auth' was not found"):
        objects.deployment(FULL, {"iris-read-token": SECRETS["iris-read-token"]})


def test_read_only_root_gets_a_writable_tmp_and_nothing_else_does():
    read_only = objects.deployment(FULL, SECRETS)
    assert container(read_only)["securityContext"] == {"readOnlyRootFilesystem": True}
    assert {"name": "temp", "emptyDir": {}} == read_only["spec"]["template"]["spec"]["volumes"][0]
    assert {"name": "temp", "mountPath": "/tmp"} == container(read_only)["volumeMounts"][0]
    writable = objects.deployment(function(), {})
    assert container(writable)["securityContext"] == {"readOnlyRootFilesystem": False}
    assert "volumes" not in writable["spec"]["template"]["spec"] and "volumeMounts" not in container(writable)


def test_non_root_user_is_uid_12000_when_configured():
    deployment = objects.deployment(function(), {}, DeploymentConfig(set_non_root_user=True))
    assert container(deployment)["securityContext"]["runAsUser"] == 12000


def test_default_probes_are_http_on_the_health_path_with_the_charts_timing():
    probe = {"httpGet": {"path": "/_/health", "port": 8080}, "initialDelaySeconds": 2, "timeoutSeconds": 1,
             "periodSeconds": 2, "successThreshold": 1, "failureThreshold": 3}
    assert objects.probes({}, DeploymentConfig()) == (probe, probe)


def test_exec_probes_read_the_lock_file_when_http_probes_are_off():
    config = DeploymentConfig(http_probe=False, readiness=ProbeTiming(3, 1, 10), liveness=ProbeTiming(5, 2, 20))
    liveness, readiness = objects.probes({}, config)
    assert liveness["exec"] == readiness["exec"] == {"command": ["cat", "/tmp/.lock"]}
    assert (liveness["periodSeconds"], readiness["periodSeconds"]) == (20, 10)
    assert (liveness["timeoutSeconds"], readiness["timeoutSeconds"]) == (2, 1)
    assert liveness["initialDelaySeconds"] == readiness["initialDelaySeconds"] == 5  # the liveness delay, as in Go


def test_probe_annotations_move_the_path_and_the_initial_delay():
    config = DeploymentConfig(http_probe=False)
    liveness, readiness = objects.probes({"com.openfaas.health.http.path": "/ready",
                                          "com.openfaas.health.http.initialDelay": "1m30s"}, config)
    assert liveness["httpGet"] == readiness["httpGet"] == {"path": "/ready", "port": 8080}  # a path forces HTTP
    assert liveness["initialDelaySeconds"] == readiness["initialDelaySeconds"] == 90
    with pytest.raises(InvalidFunction, match="initialDelay duration format"):
        objects.probes({"com.openfaas.health.http.initialDelay": "soon"}, config)


def test_resources_carry_only_what_the_function_sets():
    assert container(objects.deployment(FULL, SECRETS))["resources"] == {
        "limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "50m", "memory": "128Mi"}}
    only_memory = objects.deployment(function(limits={"memory": "64Mi"}), {})
    assert container(only_memory)["resources"] == {"limits": {"memory": "64Mi"}}


def test_scaling_labels_reach_the_pods_and_the_service_account_the_pod_spec():
    deployment = objects.deployment(FULL, SECRETS)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["faas_function"] == "predict" and labels["com.openfaas.scale.max"] == "5"
    assert deployment["metadata"]["labels"] == {"faas_function": "predict"}
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "predict-sa"
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/arch": "amd64"}


@pytest.mark.parametrize(("minimum", "current", "expected"), [
    (None, None, 1),     # a new function: one replica
    ("3", None, 3),      # a new function with a minimum
    ("0", None, 1),      # a minimum must be positive
    ("two", None, 1),    # and an integer
    ("2", 5, 5),         # the autoscaler's count stays
    ("2", 1, 2),         # but not below the minimum
    ("2", 0, 0),         # a function scaled to zero stays at zero
    (None, 4, 4),
])
def test_replicas_follow_faas_netes_get_replicas(minimum, current, expected):
    labels = {} if minimum is None else {"com.openfaas.scale.min": minimum}
    assert objects.replicas(labels, current) == expected
    assert objects.deployment(function(labels=labels), {}, current_replicas=current)["spec"]["replicas"] == expected


def test_annotations_keep_the_function_spec_and_scraping_off_unless_asked():
    deployment = objects.deployment(FULL, SECRETS)
    annotations = deployment["metadata"]["annotations"]
    assert annotations["prometheus.io.scrape"] == "false"
    assert json.loads(annotations["com.openfaas.function.spec"]) == FULL["spec"]
    assert deployment["spec"]["template"]["metadata"]["annotations"] == annotations
    assert objects.service(FULL)["metadata"]["annotations"] == {"prometheus.io.scrape": "false",
                                                                **FULL["spec"]["annotations"]}
    scraped = objects.deployment(function(annotations={"prometheus.io.scrape": "true"}), {})
    assert scraped["metadata"]["annotations"]["prometheus.io.scrape"] == "true"


def test_service_is_cluster_ip_on_8080():
    assert objects.service(FULL)["spec"] == {
        "type": "ClusterIP", "selector": {"faas_function": "predict"},
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080, "targetPort": 8080}]}


def test_container_port_and_pull_policy():
    assert container(objects.deployment(function(), {}))["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container(objects.deployment(function(), {}))["imagePullPolicy"] == "IfNotPresent"
    always = objects.deployment(function(), {}, DeploymentConfig(image_pull_policy="Always"))
    assert container(always)["imagePullPolicy"] == "Always"
    with pytest.raises(ValueError, match="image pull policy"):
        DeploymentConfig(image_pull_policy="Sometimes")


def test_a_function_that_is_not_a_dns_label_is_refused():
    with pytest.raises(InvalidFunction, match="DNS-1123"):
        objects.deployment(function("Not_Valid"), {})
