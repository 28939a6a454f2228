"""Fixtures of the node suite: the node's cluster (its own control plane, not the session's `control_plane`), a
namespace in it per test, and the project's images imported into the node's containerd."""

from __future__ import annotations

import uuid

import pytest
from chart_release import Kubectl
from kubernetes import client
from kubernetes.client.rest import ApiException
from mlfunctions_harness import images


@pytest.fixture(scope="session")
def node_api(node) -> client.ApiClient:
    """An admin client of the node's cluster (for set-up and checks)."""
    with node.control_plane.api_client() as api:
        yield api


@pytest.fixture
def node_namespace(node_api: client.ApiClient) -> str:
    name = f"n-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(node_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture(scope="session")
def iris_server_image(node) -> str:
    """The iris-server image (built from its Dockerfile by hack/images.sh, cached) in the node's containerd: the
    image with Python that the node checks run in. Returns the name pods use (imagePullPolicy: Never)."""
    image = images.build()["iris-server"]
    node.import_image(image.tar)
    return image.ref


@pytest.fixture(scope="module")
def built(node) -> dict[str, images.Image]:
    """Every image built from the Dockerfiles (cached), imported into the node's containerd."""
    return images.load_into_containerd(node.containerd.socket)


@pytest.fixture(scope="module")
def kubectl(node) -> Kubectl:
    return Kubectl(node.control_plane.kubectl, node.control_plane.kubeconfig)


@pytest.fixture(scope="module")
def core(node_api) -> client.CoreV1Api:
    return client.CoreV1Api(node_api)
