"""The operator image (root Dockerfile): pinned base, multi-stage, non-root, and only the operator's dependency
tree, which holds no numpy or scikit-learn and covers every module the operator imports. (No container engine
here: the Dockerfile is checked as text; the dependency tree is resolved by pip exactly as its build stage does.)"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from importlib import metadata

import pytest
from chart_support import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
OPERATOR = REPO_ROOT / "operator"
# What the predict function, not the operator, needs: none of it may reach the operator image.
FORBIDDEN = {"numpy", "scipy", "scikit-learn", "pandas", "onnx", "onnxruntime", "skl2onnx", "fastapi", "uvicorn"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_is_multi_stage_on_a_pinned_base():
    instructions = _instructions()
    args = dict(a.split("=", 1) for op, a in instructions if op == "ARG" and "=" in a)
    stages = [a for op, a in instructions if op == "FROM"]
    assert len(stages) >= 2, "a build stage and a final stage"
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), f"pin the base: {base}"
    assert all(s.split()[0] == "${PYTHON_IMAGE}" for s in stages), "every stage on the pinned base"
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    assert not [a for op, a in final if op == "RUN"], "the final stage installs nothing itself: it copies the venv"
    assert [a for op, a in final if op == "COPY"] == ["--from=build /opt/operator /opt/operator"]


def test_dockerfile_runs_as_a_numeric_non_root_user():
    users = [a for op, a in _instructions() if op == "USER"]
    assert users, "no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so the kubelet can verify the chart's runAsNonRoot: true.
    assert uid.isdigit() and int(uid) != 0 and (not gid or (gid.isdigit() and int(gid) != 0))
    entrypoint = json.loads(next(a for op, a in _instructions() if op == "ENTRYPOINT"))
    assert entrypoint == ["/opt/operator/bin/python", "-m", "mlfunctions_operator"]


def test_build_context_holds_only_the_operator():
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[[line.strip() for line in ignore].index("*")] == "*", "everything excluded by default"
    allowed = {line[1:].strip() for line in ignore if line.startswith("!")}
    assert allowed == {"operator/pyproject.toml", "operator/mlfunctions_operator/"}
    copied = [a.split()[0] for op, a in _instructions() if op == "COPY" and not a.startswith("--from")]
    assert copied == ["operator/"]


@pytest.fixture(scope="module")
def dependency_tree(tmp_path_factory) -> set[str]:
    """What the image's build stage installs: pip resolves the operator from this checkout."""
    report = tmp_path_factory.mktemp("pip") / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), str(OPERATOR)],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"pip could not resolve the operator's dependencies:\n{result.stderr}"
    return {_normalize(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}


def test_operator_dependency_tree_has_no_ml_stack(dependency_tree):
    assert {"kopf", "pydantic", "httpx", "mlfunctions-operator"} <= dependency_tree
    # No Kubernetes client either: the operator speaks the API's JSON itself (kube_connection.py); the client's
    # generated models cost ~60 MB of memory at import.
    assert "kubernetes" not in dependency_tree and "kubernetes-asyncio" not in dependency_tree
    assert dependency_tree & FORBIDDEN == set()


def _imported_distributions() -> dict[str, str]:
    """Distribution of every third-party top-level module the operator's code imports, by module."""
    modules = set()
    for path in (OPERATOR / "mlfunctions_operator").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"mlfunctions_operator", "__future__"}
    owners = metadata.packages_distributions()
    missing = third_party - owners.keys()
    assert not missing, f"imported but not installed in .venv: {missing}"
    return {module: _normalize(owners[module][0]) for module in third_party}


def test_every_import_of_the_operator_is_in_its_dependency_tree(dependency_tree):
    """A module imported but not declared works in .venv (where everything is installed) and crashes the image."""
    undeclared = {m: d for m, d in _imported_distributions().items() if d not in dependency_tree}
    assert not undeclared, f"add to operator/pyproject.toml's dependencies: {undeclared}"
