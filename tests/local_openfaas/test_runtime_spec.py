"""Function resources, faas-provider JSON, Function status and stack.yml: pure conversions."""

import pytest
from local_openfaas.runtime.programs import StaticPrograms, UnknownImage, requirement_names, stack_images
from local_openfaas.runtime.spec import (
    FunctionSpec,
    InvalidFunction,
    from_custom_object,
    from_deployment,
    to_custom_object,
    to_function_status,
)
from local_openfaas.runtime.status import function_status
from local_openfaas.runtime.supervisor import Snapshot

FUNCTION = {
    "apiVersion": "openfaas.com/v1", "kind": "Function",
    "metadata": {"name": "iris-predict", "namespace": "openfaas-fn", "generation": 3,
                 "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {"name": "iris-predict", "image": "ghcr.io/mlfunctions/predict:0.1.0",
             "environment": {"MODEL_NAME": "iris", "MODEL_REFRESH_SECONDS": 30},
             "labels": {"com.openfaas.scale.min": "0"}, "secrets": ["iris-predict-token"],
             "requests": {"memory": "128Mi"}},
}


def test_function_resource_to_spec_and_back():
    spec = from_custom_object(FUNCTION)
    assert spec.key == ("openfaas-fn", "iris-predict")
    assert spec.environment == {"MODEL_NAME": "iris", "MODEL_REFRESH_SECONDS": "30"}  # label/env values are strings
    assert spec.secrets == ("iris-predict-token",) and spec.generation == 3
    again = to_custom_object(spec)
    assert again["spec"] == {**FUNCTION["spec"], "environment": spec.environment}
    assert again["metadata"] == {"name": "iris-predict", "namespace": "openfaas-fn"}


@pytest.mark.parametrize("change, message", [
    ({"image": ""}, "spec.image: required"),
    ({"name": "Not_A_Name"}, "DNS-1123"),
    ({"environment": ["A=1"]}, "spec.environment: expected an object"),
])
def test_bad_function_resources_are_explained(change, message):
    bad = {**FUNCTION, "spec": {**FUNCTION["spec"], **change}}
    with pytest.raises(InvalidFunction, match=message):
        from_custom_object(bad)


def test_faas_cli_deployment_body():
    spec = from_deployment({"service": "echo", "image": "echo:1", "envVars": {"A": "1"}, "labels": {"x": "y"},
                            "secrets": ["s"], "limits": {"memory": "64Mi"}, "unknownField": True})
    assert (spec.name, spec.namespace, spec.image) == ("echo", "openfaas-fn", "echo:1")
    assert spec.environment == {"A": "1"} and spec.secrets == ("s",) and spec.limits == {"memory": "64Mi"}
    assert from_deployment({"service": "echo", "image": "i", "namespace": "team"}).namespace == "team"


def test_bad_deployment_bodies_name_every_bad_field():
    with pytest.raises(InvalidFunction) as caught:
        from_deployment({"service": "Bad Name", "envVars": ["x"]})
    message = str(caught.value)
    assert "service" in message and "DNS-1123" in message and "image" in message and "envVars" in message
    with pytest.raises(InvalidFunction, match="body"):
        from_deployment(["not", "an", "object"])


def test_function_status_json_is_faas_provider_shaped():
    spec = from_custom_object(FUNCTION)
    status = to_function_status(spec, replicas=2, available=1, invocations=7)
    assert status["name"] == "iris-predict" and status["replicas"] == 2 and status["availableReplicas"] == 1
    assert status["invocationCount"] == 7 and status["requests"] == {"memory": "128Mi"}
    assert status["createdAt"] == "2026-01-01T00:00:00Z"


def _conditions(status):
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_status_scaled_to_zero_is_ready_but_not_healthy():
    status = function_status(from_custom_object(FUNCTION), Snapshot(0, 0, 0), "", None, "T1")
    assert _conditions(status)["Ready"] == ("True", "ScaledToZero")
    assert _conditions(status)["Healthy"] == ("False", "ScaledToZero")
    assert (status["replicas"], status["availableReplicas"], status["observedGeneration"]) == (0, 0, 3)


def test_status_while_starting_running_and_crash_looping():
    spec = from_custom_object(FUNCTION)
    starting = function_status(spec, Snapshot(1, 0, 0), "", None, "T1")
    assert _conditions(starting)["Ready"] == ("False", "Starting")
    assert _conditions(starting)["Reconciling"][0] == "True"
    running = function_status(spec, Snapshot(2, 2, 0), "", starting, "T2")
    assert _conditions(running)["Ready"] == ("True", "Available") and _conditions(running)["Healthy"][0] == "True"
    assert running["unavailableReplicas"] == 0
    looping = function_status(spec, Snapshot(1, 0, 4, "replica exited with code 3"), "", running, "T3")
    assert _conditions(looping)["Stalled"] == ("True", "CrashLoopBackOff")
    assert "code 3" in {c["type"]: c for c in looping["conditions"]}["Ready"]["message"]


def test_condition_transition_times_move_only_on_change():
    spec = from_custom_object(FUNCTION)
    first = function_status(spec, Snapshot(1, 1, 0), "", None, "T1")
    second = function_status(spec, Snapshot(2, 1, 0), "", first, "T2")
    times = {c["type"]: c["lastTransitionTime"] for c in second["conditions"]}
    assert times["Ready"] == "T1"           # still True
    assert times["Healthy"] == "T2"         # True -> False (1/2 available)


def test_status_of_a_function_that_cannot_run():
    status = function_status(from_custom_object(FUNCTION), None, "image 'x' is not built from stack.yml", None, "T")
    assert _conditions(status)["Stalled"] == ("True", "DeploymentFailed")
    assert _conditions(status)["Ready"][0] == "False"


def test_stack_yml_maps_images_to_folders(tmp_path):
    (tmp_path / "stack.yml").write_text(
        "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n"
        "  a: {lang: python3-http, handler: ./a, image: 'ghcr.io/x/a:1'}\n"
        "  b: {lang: python3-http, handler: ./sub/b, image: 'ghcr.io/x/b:1'}\n")
    assert stack_images(tmp_path / "stack.yml") == {"ghcr.io/x/a:1": tmp_path / "a",
                                                    "ghcr.io/x/b:1": tmp_path / "sub" / "b"}


def test_requirement_names(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# comment\nnumpy>=2\nonnxruntime==1.20 ; python_version>'3'\n-r other.txt\n"
                    "scikit-learn[extra]  # trailing\n\n")
    assert requirement_names(path) == ("numpy", "onnxruntime", "scikit-learn")
    assert requirement_names(tmp_path / "missing.txt") == ()


def test_static_programs(tmp_path):
    (tmp_path / "programs.yaml").write_text("echo:1: {python: /usr/bin/python3, argv: [index.py], preload: [json]}\n")
    programs = StaticPrograms(tmp_path / "programs.yaml")
    program = programs.resolve("echo:1")
    assert program.command == ["/usr/bin/python3", "index.py"] and program.cwd == tmp_path
    with pytest.raises(UnknownImage, match="nope:1"):
        programs.resolve("nope:1")


def test_runs_like_ignores_labels_but_not_env():
    spec = from_custom_object(FUNCTION)
    relabelled = FunctionSpec(**{**spec.__dict__, "labels": {"com.openfaas.scale.max": "3"}})
    changed_env = FunctionSpec(**{**spec.__dict__, "environment": {"MODEL_NAME": "wine"}})
    assert spec.runs_like(relabelled) and not spec.runs_like(changed_env)
