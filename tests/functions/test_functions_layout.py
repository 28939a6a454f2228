"""The OpenFaaS layout faas-cli builds from: stack.yml, the template, the function folders (static checks; the
images themselves are built and run in tests/images)."""

from __future__ import annotations

import re

import yaml

from local_openfaas import funcenv

FUNCTIONS = funcenv.FUNCTIONS_DIR
STACK = yaml.safe_load((FUNCTIONS / "stack.yml").read_text())
DEFAULT_IMAGES = {
    "train": "ghcr.io/mlfunctions/train:0.1.0",
    "predict": "ghcr.io/mlfunctions/predict:0.1.0",
}
WATCHDOG_SETTINGS = {"exec_timeout", "read_timeout", "write_timeout", "max_inflight", "upstream_url", "mode"}


def test_stack_names_the_default_images_and_existing_folders():
    assert STACK["provider"] == {"name": "openfaas", "gateway": "http://127.0.0.1:8080"}
    assert {name: fn["image"] for name, fn in STACK["functions"].items()} == DEFAULT_IMAGES
    for name, fn in STACK["functions"].items():
        folder = FUNCTIONS / fn["handler"]
        assert (folder / "handler.py").is_file() and (folder / "requirements.txt").is_file(), name
        template = FUNCTIONS / "template" / fn["lang"]
        assert yaml.safe_load((template / "template.yml").read_text())["language"] == fn["lang"]
        assert "model-store-token" in fn["secrets"]


def test_stack_carries_no_watchdog_settings():
    # The functions serve OpenFaaS's contract themselves: a watchdog's timeouts or readiness path would be read
    # by nothing (call timeouts are the gateway's; readiness is the default GET /_/health).
    for name, fn in STACK["functions"].items():
        assert not set(fn.get("environment") or {}) & WATCHDOG_SETTINGS, name
        assert "com.openfaas.ready.http.path" not in (fn.get("annotations") or {}), name


def test_template_dockerfile_serves_the_contract_itself_as_a_non_root_user():
    dockerfile = (FUNCTIONS / "template" / "mlfunctions-python3" / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    # Numeric, so Kubernetes can enforce runAsNonRoot without looking the name up.
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1])
    # The final stage copies a ready virtualenv: pip runs only in the build stage.
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "pip install" not in final_stage and "COPY --from=build" in final_stage
    # Every stage on the one Python base (nothing else to pull, e.g. a watchdog image), no frontend to pull.
    assert re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+$", dockerfile, re.MULTILINE)
    assert not re.match(r"#\s*syntax=", dockerfile) and "watchdog" not in final_stage.lower()
    # The function process itself listens on OpenFaaS's port, on every interface, and is PID 1 (gets SIGTERM).
    assert re.search(r"^\s+HOST=0\.0\.0\.0", final_stage, re.MULTILINE)
    assert re.search(r"^\s+PORT=8080", final_stage, re.MULTILINE)
    assert 'CMD ["python", "index.py"]' in final_stage
    assert "COPY function/vendor/" in dockerfile  # the iris-client wheel, see below


def test_the_client_wheel_reaches_every_build_context():
    # faas-cli copies configuration.copy paths (inside functions/) into function/<path>; make wheels fills it.
    assert STACK["configuration"]["copy"] == ["./vendor"]
    makefile = (FUNCTIONS / "Makefile").read_text()
    assert "--wheel-dir vendor ../iris-server/client" in makefile


def test_predict_requirements_do_not_name_scikit_learn():
    for path in [
        FUNCTIONS / "predict" / "requirements.txt",
        FUNCTIONS / "template" / "mlfunctions-python3" / "requirements.txt",
    ]:
        text = path.read_text().lower()
        names = {
            re.split(r"[<>=!~\[; ]", line.strip())[0]
            for line in text.splitlines()
            if line.strip() and not line.startswith("#")
        }
        assert names.isdisjoint({"scikit-learn", "sklearn", "skl2onnx", "skops", "joblib"}), path
