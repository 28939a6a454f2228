"""The CRDs in crds/ and the API reference in docs/api.md are generated from the pydantic models and must be
current; the CRDs' schemas must be useful."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml
from mlfunctions_operator import apidoc, crdgen

REPO = Path(__file__).resolve().parents[2]


def test_crds_in_the_repository_are_current(tmp_path):
    for path in crdgen.write(tmp_path):
        committed = REPO / "crds" / path.name
        assert committed.exists(), f"crds/{path.name} missing: run `make crds`"
        fresh, current = path.read_text(), committed.read_text()
        diff = "".join(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True),
                                            f"crds/{path.name}", "generated"))
        assert fresh == current, f"crds/ is stale; run `make crds`:\n{diff}"


def test_the_api_reference_is_current():
    fresh = apidoc.render((REPO / "docs" / "api.template.md").read_text(), crdgen.crds())
    current = (REPO / "docs" / "api.md").read_text()
    diff = "".join(difflib.unified_diff(current.splitlines(True), fresh.splitlines(True), "docs/api.md", "generated"))
    assert fresh == current, f"docs/api.md is stale; run `make crds`:\n{diff}"


def test_the_api_reference_documents_every_field_and_column():
    reference = (REPO / "docs" / "api.md").read_text()
    for crd in crdgen.crds():
        version = crd["spec"]["versions"][0]
        root = version["schema"]["openAPIV3Schema"]
        for section in ("spec", "status"):
            for path, _ in _walk(root["properties"][section], section):
                if path != section and not path.endswith("[]"):  # a list's items are documented by their fields
                    assert f"| `{path}` |" in reference, f"docs/api.md does not document {path}"
        for column in version["additionalPrinterColumns"]:
            assert f"| {column['name']} | `{column['jsonPath']}` |" in reference, column


def test_a_template_line_naming_no_crd_section_is_refused():
    with pytest.raises(ValueError, match="line 2"):
        apidoc.render("# API\n{{ fields Widget spec }}\n", crdgen.crds())
    with pytest.raises(ValueError, match="line 1"):
        apidoc.render("{{ fields MLFunction }}\n", crdgen.crds())


def _walk(schema: dict, path: str = ""):
    yield path, schema
    for name, prop in (schema.get("properties") or {}).items():
        yield from _walk(prop, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")


@pytest.mark.parametrize("crd", [crdgen.mlfunction_crd(), crdgen.modelstore_crd()],
                         ids=["mlfunctions", "modelstores"])
def test_every_field_is_described_and_structural(crd):
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for section in ("spec", "status"):
        for path, node in _walk(root["properties"][section], section):
            assert node.get("description"), f"{path} has no description (kubectl explain would show nothing)"
            # structural: every node has a type, or is an int-or-string
            assert node.get("type") or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
            assert "$ref" not in node and "title" not in node, path
            if node.get("anyOf"):
                assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf only for int-or-string"


def test_mlfunction_names_columns_and_subresources():
    crd = crdgen.mlfunction_crd()
    names = crd["spec"]["names"]
    assert (names["plural"], names["shortNames"], names["categories"]) == ("mlfunctions", ["mlf"],
                                                                           ["mlfunctions", "all"])
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Task", "Model", "Ready", "Replicas",
                                                                       "URL", "Age", "Last Run", "Result",
                                                                       "Next Run"]
    assert [c["name"] for c in version["additionalPrinterColumns"] if c.get("priority")] == \
        ["Last Run", "Result", "Next Run"]  # kubectl get -o wide only: the default columns are the contract's
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["task", "model"]
    assert spec["properties"]["scaling"]["properties"]["maxReplicas"]["default"] == 5
    assert spec["properties"]["training"]["properties"]["testSize"]["exclusiveMaximum"] is True


def test_modelstore_short_name():
    assert crdgen.modelstore_crd()["spec"]["names"]["shortNames"] == ["ms"]


def test_generated_yaml_parses_back():
    for text in crdgen.render().values():
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"


def test_unsupported_unions_are_refused():
    with pytest.raises(ValueError):
        crdgen._collapse_any_of({"anyOf": [{"type": "integer"}, {"type": "object"}]}, {})
