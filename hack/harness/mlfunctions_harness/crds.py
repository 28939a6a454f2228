"""Installing CustomResourceDefinitions and waiting until the API server serves them."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException


def load(paths: list[Path]) -> list[dict]:
    """Every CRD document in the given files (folders are read for *.yaml)."""
    documents = []
    for path in paths:
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        for file in files:
            documents += [d for d in yaml.safe_load_all(file.read_text()) if d and d.get("kind") ==
                          "CustomResourceDefinition"]
    return documents


def install(api: client.ApiClient, paths: list[Path], timeout: float = 30.0) -> list[str]:
    """Create or update the CRDs in `paths`; return their names once discovery serves every one of them."""
    extensions = client.ApiextensionsV1Api(api)
    documents = load(paths)
    for document in documents:
        name = document["metadata"]["name"]
        try:
            extensions.create_custom_resource_definition(document)
        except ApiException as error:
            if error.status != 409:
                raise
            current = extensions.read_custom_resource_definition(name)
            document = {**document, "metadata": {**document["metadata"],
                                                 "resourceVersion": current.metadata.resource_version}}
            extensions.replace_custom_resource_definition(name, document)
    for document in documents:
        _wait_served(api, document, timeout)
    return [d["metadata"]["name"] for d in documents]


def _wait_served(api: client.ApiClient, crd: dict, timeout: float) -> None:
    group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
    versions = [v["name"] for v in crd["spec"]["versions"] if v.get("served", True)]
    deadline = time.monotonic() + timeout
    while True:
        if all(_served(api, group, version, plural) for version in versions):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"CRD {crd['metadata']['name']} not served by discovery after {timeout:.0f}s")
        time.sleep(0.1)


def _served(api: client.ApiClient, group: str, version: str, plural: str) -> bool:
    try:
        resources = client.CustomObjectsApi(api).get_api_resources(group, version)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return any(r.name == plural for r in resources.resources)
