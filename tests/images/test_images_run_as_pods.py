"""Each deployable's image, built from its Dockerfile, starts the way the chart and faas-netes run it (uid 65532
without a passwd entry, read-only root, only /tmp writable) and holds only the packages it should."""

from __future__ import annotations

import json

import pytest
from mlfunctions_harness.images import REPO_ROOT

import image_containers

# The first build of all images (a few minutes) happens in whichever test needs them first.
pytestmark = [pytest.mark.images, pytest.mark.timeout(1800)]

FUNCTIONS = sorted(p.parent.name for p in (REPO_ROOT / "functions").glob("*/handler.py"))
OPERATOR_PYTHON = "/opt/operator/bin/python"
# No model store answers inside the container: the functions must start (and say so on /_/health) regardless.
FUNCTION_ENV = ["-e", "MODEL_NAME=iris", "-e", "MODEL_STORE_URL=http://127.0.0.1:9"]
KUBECONFIG_NOWHERE = {
    "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
    "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "nobody", "user": {"token": "not-a-token"}}],
    "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}],
}


def test_every_deployable_has_an_image_that_runs_as_a_numeric_user(built, docker_env):
    assert set(built) == {"operator", "iris-server", "console", *FUNCTIONS}
    for image in built.values():
        config = json.loads(image_containers.docker(docker_env, "image", "inspect", image.tag).stdout)[0]["Config"]
        assert config["User"] == "65532:65532", image.name  # numeric: the kubelet can check runAsNonRoot


def test_operator_gets_past_its_identity_and_connects_to_kubernetes(built, docker_env, containers, tmp_path):
    # kopf used to name itself after the OS user, and uid 65532 has no passwd entry: KeyError at start.
    kube = tmp_path / "kube"
    kube.mkdir(mode=0o755)
    (kube / "config").write_text(json.dumps(KUBECONFIG_NOWHERE))
    (kube / "config").chmod(0o644)
    container = image_containers.start(built["operator"], docker_env,
                                       ["-v", f"{kube}:/kube:ro", "-e", "KUBECONFIG=/kube/config"])
    containers.append(container)
    logs = container.wait_log("GET https://127.0.0.1:1/api")  # kopf's first request to the API server
    assert "getpwuid" not in logs and "Traceback" not in logs
    container.wait_http(OPERATOR_PYTHON, "http://127.0.0.1:8080/healthz")
    assert container.running()


def test_iris_server_answers_healthz_with_its_data_on_a_volume(built, docker_env, containers):
    container = image_containers.start(built["iris-server"], docker_env, [
        "-e", "IRIS_ADMIN_TOKEN=images-test-admin-token",
        # As the ModelStore's volume is mounted: owned by the pod's fsGroup.
        "--tmpfs", "/var/lib/iris:uid=65532,gid=65532,mode=0700"])
    containers.append(container)
    status, body = container.wait_http("python", "http://127.0.0.1:8080/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    container.wait_http("python", "http://127.0.0.1:8080/readyz")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_serves_the_openfaas_contract(built, docker_env, containers, function):
    container = image_containers.start(built[function], docker_env, FUNCTION_ENV)
    containers.append(container)
    container.wait_http("python", "http://127.0.0.1:8080/_/health")
    assert container.docker("exec", container.id, "test", "-e", "/tmp/.lock", check=False).returncode == 0
    # SIGTERM to PID 1 (the function itself): it drains and exits well within the grace period.
    container.docker("stop", "--time", "20", container.id, timeout=30)
    state = json.loads(container.docker("inspect", "--format", "{{json .State}}", container.id).stdout)
    assert (state["ExitCode"], state["OOMKilled"]) == (0, False), container.logs()
    assert "Finished server process" in container.logs()


@pytest.mark.parametrize(("image", "python", "present", "absent"), [
    ("predict", "python", ["onnxruntime", "numpy", "PIL", "iris_client"], ["sklearn", "skl2onnx", "scipy"]),
    ("train", "python", ["sklearn", "skl2onnx", "onnxruntime", "iris_client"], []),
    # No Kubernetes client library either: the operator talks to the API server through kopf's own session.
    ("operator", OPERATOR_PYTHON, ["kopf", "aiohttp", "httpx"],
     ["numpy", "scipy", "sklearn", "onnxruntime", "pandas", "kubernetes", "kubernetes_asyncio"]),
    ("console", "/opt/console/bin/python", ["mlfunctions_console.app", "starlette", "jinja2", "httpx"],
     ["numpy", "sklearn", "onnxruntime", "kopf", "kubernetes"]),
])
def test_image_holds_only_its_own_packages(built, docker_env, image, python, present, absent):
    imports = image_containers.run(built[image], docker_env, ["--entrypoint", python],
                                   ["-c", f"import {', '.join(present)}"])
    assert imports.returncode == 0, imports.stderr
    for module in absent:
        result = image_containers.run(built[image], docker_env, ["--entrypoint", python], ["-c", f"import {module}"])
        assert result.returncode != 0 and f"No module named '{module}'" in result.stderr, (module, result.stderr)
