"""The pod pool's objects (pods/pool_objects.py): what a pool pod may hold before it serves (nothing of a
function), how a claim takes it out of the pool for good, what specialization sends (exactly what the function's
own pod would get), and the one Secret the Role lets the backend write."""

from __future__ import annotations

from pathlib import Path

import yaml
from local_openfaas.faas_netes import objects
from local_openfaas.faas_netes.objects import DeploymentConfig
from local_openfaas.pods import pool_objects

IMAGE = "docker.io/mlfunctions/predict:dev"
RBAC = Path(objects.__file__).with_name("rbac.yaml")


def function(**spec) -> dict:
    return {"apiVersion": "openfaas.com/v1", "kind": "Function",
            "metadata": {"name": "predict", "namespace": "fn", "uid": "u-1"},
            "spec": {"name": "predict", "image": IMAGE, "environment": {"MODEL_NAME": "iris"}, **spec}}


def test_a_pool_pod_holds_nothing_of_a_function():
    deployment = pool_objects.pool_deployment("fn", IMAGE, 2, "t0ken", DeploymentConfig())
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == IMAGE and deployment["spec"]["replicas"] == 2
    assert container["env"] == [{"name": "MLFUNCTIONS_POOL_TOKEN_FILE",
                                 "value": f"{pool_objects.TOKEN_DIR}/{pool_objects.TOKEN_KEY}"}]
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] and container["securityContext"]["runAsNonRoot"]
    assert {v["name"]: v for v in pod["volumes"]}["pool-token"]["secret"]["secretName"] == pool_objects.TOKEN_SECRET
    assert "t0ken" not in str(deployment)  # only its digest, which rolls the pool when the token changes
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert objects.FUNCTION_LABEL not in labels  # no function's ReplicaSet or Service may select a pool pod


def test_a_claim_leaves_the_pool_selector_and_names_one_function():
    deployment = pool_objects.pool_deployment("fn", IMAGE, 1, "t", DeploymentConfig())
    labels = dict(deployment["spec"]["template"]["metadata"]["labels"])
    for key, value in pool_objects.claim_patch("predict")["metadata"]["labels"].items():
        if value is None:
            labels.pop(key)
        else:
            labels[key] = value
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert not selector.items() <= labels.items()  # its ReplicaSet lets go of it
    assert pool_objects.watch_key(labels) == "predict"
    assert pool_objects.watch_key(deployment["spec"]["template"]["metadata"]["labels"]) == \
        pool_objects.pool_pods_key(IMAGE)


def test_specialization_sends_what_the_functions_own_pod_gets():
    secret = {"metadata": {"name": "predict-store"}, "type": "Opaque", "data": {"model-store-token": "dG9r"}}
    fn = function(secrets=["predict-store"])
    body = pool_objects.specialization(fn, {"predict-store": secret})
    own = objects.deployment(fn, {"predict-store": secret})["spec"]["template"]["spec"]["containers"][0]
    assert body["env"] == {e["name"]: e["value"] for e in own["env"]}
    assert body["secrets"] == {"model-store-token": "dG9r"}


def test_the_role_lets_the_backend_write_only_the_pool_token_secret():
    role = yaml.safe_load(RBAC.read_text())
    patchable = [rule for rule in role["rules"] if "secrets" in rule["resources"] and "patch" in rule["verbs"]]
    assert patchable == [{"apiGroups": [""], "resources": ["secrets"],
                          "resourceNames": [pool_objects.TOKEN_SECRET], "verbs": ["patch"]}]
