"""examples/: what the issue promises is there, the kustomization a GitOps tool points at lists every file, and
every object parses with the operator's own API types. (That they apply and become Ready under the chart's RBAC
is tested in test_chart_install.py.)"""

from __future__ import annotations

import subprocess

import yaml
from chart_support import EXAMPLES
from mlfunctions_operator.api import MLFunctionSpec, ModelStoreSpec


def _documents() -> list[dict]:
    return [d for p in sorted(EXAMPLES.glob("*.yaml")) if p.name != "kustomization.yaml"
            for d in yaml.safe_load_all(p.read_text()) if d]


def test_kustomization_lists_every_example():
    listed = yaml.safe_load((EXAMPLES / "kustomization.yaml").read_text())["resources"]
    files = sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == files


def test_kustomize_renders_every_object(kubectl_binary):
    rendered = subprocess.run([kubectl_binary, "kustomize", str(EXAMPLES)], capture_output=True, text=True,
                              check=True).stdout
    names = sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(rendered) if d)
    assert names == sorted((d["kind"], d["metadata"]["name"]) for d in _documents())


def test_examples_parse_with_the_operator_api():
    for document in _documents():
        model = {"MLFunction": MLFunctionSpec, "ModelStore": ModelStoreSpec}.get(document["kind"])
        if model:
            model.model_validate(document["spec"])


def test_examples_cover_the_promised_cases():
    specs = {d["metadata"]["name"]: MLFunctionSpec.model_validate(d["spec"])
             for d in _documents() if d["kind"] == "MLFunction"}
    iris = [s for s in specs.values() if s.model.name == "iris"]
    assert {s.task for s in iris} == {"train", "predict"}
    assert {s.task for s in specs.values() if s.training and s.training.dataset == "digits"} == {"train"}
    assert [s for s in specs.values() if s.task == "predict" and s.model.name == "digits"]
    assert [s for s in specs.values() if s.task == "predict" and s.scaling.min_replicas == 0]
    assert [s for s in specs.values() if s.training and s.training.schedule]
    assert [d for d in _documents() if d["kind"] == "ModelStore"]
