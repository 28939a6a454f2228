"""Generates the CustomResourceDefinitions in crds/ from the pydantic models in `api`.

    python -m mlfunctions_operator.crdgen crds                       # writes crds/mlfunctions.dev_<plural>.yaml
    python -m mlfunctions_operator.crdgen crds --docs docs/api.md    # and the API reference (see apidoc)

pydantic emits JSON Schema (draft 2020-12); Kubernetes wants a structural OpenAPI v3 schema. The conversion inlines
$refs, turns `X | None` into X (absence is how Kubernetes says "unset"), turns `int | str` into int-or-string,
translates exclusive bounds, drops titles, and keeps descriptions, defaults, enums, bounds and the
x-kubernetes-* extensions declared on the models.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from . import GROUP, VERSION, apidoc
from .api import MLFunctionSpec, MLFunctionStatus, ModelStoreSpec, ModelStoreStatus
from .api.mlfunction import DNS_LABEL_RULE
from .api.modelstore import STORE_NAME_RULE

_DROPPED = {"title"}
_KEY_ORDER = {"description": 0, "type": 1, "required": 2, "default": 3, "properties": 4}


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a pydantic model."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})
    return _convert(schema, definitions)


def _convert(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = definitions[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**copy.deepcopy(target), **node}  # the field's own description wins over the class docstring
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**_convert(node.pop("allOf")[0], definitions), **node}
    if "anyOf" in node:
        node = _collapse_any_of(node, definitions)
    if node.get("default", 0) is None:
        del node["default"]
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), (int, float)) and not isinstance(node.get(bound), bool):
            node[inclusive] = node.pop(bound)
            node[bound] = True
    if node.get("type") == "object" and node.get("additionalProperties") is True:
        del node["additionalProperties"]
        node["x-kubernetes-preserve-unknown-fields"] = True
    out: dict[str, Any] = {}
    # description and type first: the order a reader of the YAML (or of `kubectl explain`) expects.
    for key, value in sorted(node.items(), key=lambda item: _KEY_ORDER.get(item[0], len(_KEY_ORDER))):
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: _convert(prop, definitions) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _convert(value, definitions)
        else:
            out[key] = value
    return out


def _collapse_any_of(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    options = [_convert(o, definitions) for o in node.pop("anyOf") if o.get("type") != "null"]
    if len(options) == 1:
        return {**options[0], **node}
    types = {o.get("type") for o in options}
    if types == {"integer", "string"}:
        # Kubernetes' int-or-string (as in core/v1 Quantity); a pattern applies to the string form.
        merged: dict[str, Any] = {**node, "x-kubernetes-int-or-string": True,
                                  "anyOf": [{"type": "integer"}, {"type": "string"}]}
        for option in options:
            if "pattern" in option:
                merged["pattern"] = option["pattern"]
        return merged
    raise ValueError(f"cannot express anyOf {options} in a structural schema")


def _condition_columns() -> list[dict[str, Any]]:
    return [{"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
             "description": "Whether the object is ready (kstatus Ready condition)."}]


def _crd(kind: str, plural: str, spec: type[BaseModel], status: type[BaseModel], description: str, *,
         short_names: list[str], categories: list[str], columns: list[dict[str, Any]],
         root_rules: list[dict[str, Any]]) -> dict[str, Any]:
    root: dict[str, Any] = {
        "description": description,
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "Versioned schema of this object: "
                                                            f"{GROUP}/{VERSION}."},
            "kind": {"type": "string", "description": f"{kind}."},
            "metadata": {"type": "object"},
            "spec": openapi_schema(spec),
            "status": openapi_schema(status),
        },
    }
    if root_rules:
        root["x-kubernetes-validations"] = root_rules
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}",
                     "labels": {"app.kubernetes.io/part-of": "mlfunctions"}},
        "spec": {
            "group": GROUP,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "shortNames": short_names, "categories": categories},
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": root},
            }],
        },
    }


def mlfunction_crd() -> dict[str, Any]:
    return _crd(
        "MLFunction", "mlfunctions", MLFunctionSpec, MLFunctionStatus,
        "MLFunction ships a scikit-learn model as a serverless function on OpenFaaS: a train function that fits "
        "and uploads the model, or a predict function that serves it, with scaling and a scoped model-store "
        "credential managed by the mlfunctions operator.",
        short_names=["mlf"], categories=["mlfunctions", "all"],
        columns=[
            {"name": "Task", "type": "string", "jsonPath": ".spec.task", "description": "train or predict."},
            {"name": "Model", "type": "string", "jsonPath": ".spec.model.name", "description": "The model's name."},
            *_condition_columns(),
            {"name": "Replicas", "type": "string", "jsonPath": ".status.replicasSummary",
             "description": 'available/desired replicas, or "0 (idle)" when scaled to zero.'},
            {"name": "URL", "type": "string", "jsonPath": ".status.url", "description": "URL on the gateway."},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            # A scheduled train function's runs; with -o wide only (most MLFunctions have no schedule).
            {"name": "Last Run", "type": "date", "jsonPath": ".status.training.lastScheduleTime", "priority": 1,
             "description": "When the last scheduled training run was due."},
            {"name": "Result", "type": "string", "jsonPath": ".status.training.lastRun.result", "priority": 1,
             "description": "Succeeded or Failed: how the last scheduled training run went."},
            {"name": "Next Run", "type": "date", "jsonPath": ".status.training.nextScheduleTime", "priority": 1,
             "description": "When the next scheduled training run is due."},
        ],
        root_rules=[DNS_LABEL_RULE],
    )


def modelstore_crd() -> dict[str, Any]:
    return _crd(
        "ModelStore", "modelstores", ModelStoreSpec, ModelStoreStatus,
        "ModelStore is an iris-server model store used by MLFunctions: deployed by the operator (Deployment, "
        "Service, PVC and admin Secret) or an existing one given by spec.external.url.",
        short_names=["ms"], categories=["mlfunctions"],
        columns=[
            *_condition_columns(),
            {"name": "URL", "type": "string", "jsonPath": ".status.url", "description": "Where functions reach it."},
            {"name": "External", "type": "string", "jsonPath": ".spec.external.url", "priority": 1,
             "description": "The external store's URL, if any."},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        root_rules=[STORE_NAME_RULE],
    )


def crds() -> list[dict[str, Any]]:
    return [mlfunction_crd(), modelstore_crd()]


def render() -> dict[str, str]:
    """File name -> YAML text of every CRD."""
    header = "# Generated by `python -m mlfunctions_operator.crdgen` from operator/mlfunctions_operator/api. " \
             "Do not edit.\n"
    out = {}
    for crd in crds():
        name = f"{GROUP}_{crd['spec']['names']['plural']}.yaml"
        out[name] = header + yaml.safe_dump(crd, sort_keys=False, width=120, allow_unicode=True)
    return out


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlfunctions_operator.crdgen", description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path, help="where to write the CRDs (the repository's crds/)")
    parser.add_argument("--docs", type=Path, metavar="API_MD",
                        help="also write the API reference here, from the template next to it (api.template.md)")
    args = parser.parse_args(argv)
    for path in write(args.directory):
        print(path)
    if args.docs:
        print(apidoc.write(args.docs, args.docs.with_name("api.template.md"), crds()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
