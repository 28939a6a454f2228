"""The images, built from the project's Dockerfiles by hack/images.sh (cached: seconds when nothing changed; the
first build takes a few minutes), and a docker daemon that holds them. A machine where docker cannot run fails
these tests: they are never skipped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mlfunctions_harness import images as image_builds

from image_containers import Container


@pytest.fixture(scope="session")
def docker_env() -> Iterator[dict[str, str]]:
    with image_builds.docker_daemon() as env:
        yield env


@pytest.fixture(scope="session")
def built(docker_env) -> dict[str, image_builds.Image]:
    images = image_builds.build(docker_env)
    for image in images.values():
        image_builds.ensure_in_docker(image, docker_env)
    return images


@pytest.fixture
def containers() -> Iterator[list[Container]]:
    """Containers a test started; all removed (with their volumes) at its end, whatever happens."""
    started: list[Container] = []
    yield started
    for container in started:
        container.remove()
