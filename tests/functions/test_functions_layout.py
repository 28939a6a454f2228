"""The OpenFaaS layout faas-cli builds from: stack.yml, the template, the function folders (static checks; no
container engine here, so the images themselves are not built in tests)."""

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


def test_stack_names_the_default_images_and_existing_folders():
    assert STACK["provider"] == {"name": "openfaas", "gateway": "http://127.0.0.1:8080"}
    assert {name: fn["image"] for name, fn in STACK["functions"].items()} == DEFAULT_IMAGES
    for name, fn in STACK["functions"].items():
        folder = FUNCTIONS / fn["handler"]
        assert (folder / "handler.py").is_file() and (folder / "requirements.txt").is_file(), name
        template = FUNCTIONS / "template" / fn["lang"]
        assert yaml.safe_load((template / "template.yml").read_text())["language"] == fn["lang"]
        assert "model-store-token" in fn["secrets"]


def test_training_gets_watchdog_timeouts_sized_for_training():
    env = STACK["functions"]["train"]["environment"]
    assert _seconds(env["exec_timeout"]) >= 600 and _seconds(env["write_timeout"]) > _seconds(
        env["exec_timeout"]
    )


def test_template_dockerfile_runs_the_watchdog_as_a_non_root_user():
    dockerfile = (FUNCTIONS / "template" / "mlfunctions-python3" / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    # Numeric, so Kubernetes can enforce runAsNonRoot without looking the name up.
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1])
    # The final stage copies a ready virtualenv: pip runs only in the build stage.
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "pip install" not in final_stage and "COPY --from=build" in final_stage
    assert re.search(r"^FROM .*of-watchdog:\d+\.\d+\.\d+", dockerfile, re.MULTILINE)
    assert 'mode="http"' in dockerfile and 'CMD ["fwatchdog"]' in dockerfile
    assert 'upstream_url="http://127.0.0.1:5000"' in dockerfile and 'PORT="5000"' in dockerfile
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


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([hms])", duration))
