"""The deployables' images (operator, iris-server, each function), as hack/images.sh builds them from the project's
own Dockerfiles: docker-archive tars under ~/.cache/mlfunctions/images/, rebuilt only when their inputs change.

    built = images.build()                       # {"operator": Image(...), "predict": ..., ...}
    node.import_image(built["predict"].tar)      # pods then use built["predict"].ref, imagePullPolicy: Never
    with images.docker_daemon() as env: ...      # run the images themselves (tests/images)

The script prints its progress and build times on stderr, which is passed through.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "hack" / "images.sh"
# A first build (debootstrap, then pip in each image) takes a few minutes; a generous bound, not a wait.
BUILD_TIMEOUT_SECONDS = 1800


class ImageBuildError(RuntimeError):
    """hack/images.sh failed; its stderr (passed through) says where."""


@dataclass(frozen=True)
class Image:
    name: str  # operator, iris-server, train, predict
    tag: str  # mlfunctions/operator:dev, as docker names it
    tar: Path  # the docker-archive

    @property
    def ref(self) -> str:
        """The name containerd (and so a pod spec) knows the image by once imported."""
        return f"docker.io/{self.tag}"

    @property
    def image_id(self) -> str:
        """sha256:... of the image's config, the same in docker and in containerd."""
        with tarfile.open(self.tar) as archive:
            manifest = json.load(archive.extractfile("manifest.json"))
        return "sha256:" + manifest[0]["Config"].removesuffix(".json")


def _script(*args: str, env: dict[str, str] | None = None) -> str:
    try:
        result = subprocess.run([str(SCRIPT), *args], stdout=subprocess.PIPE, text=True, check=True,
                                env=env, timeout=BUILD_TIMEOUT_SECONDS)
    except subprocess.CalledProcessError as error:
        raise ImageBuildError(f"{SCRIPT.name} {' '.join(args)} exited with {error.returncode}") from None
    return result.stdout


def _parse(output: str) -> dict[str, Image]:
    images = {}
    for line in output.splitlines():
        name, tag, tar = line.split()
        images[name] = Image(name, tag, Path(tar))
    return images


def build(env: dict[str, str] | None = None) -> dict[str, Image]:
    """Every image, built if its inputs changed (seconds when nothing did); by name."""
    return _parse(_script("build", env=env))


def load_into_containerd(socket: Path) -> dict[str, Image]:
    """build(), then every image imported into the containerd at `socket` (namespace k8s.io), unless it is there."""
    images = _parse(_script("load", str(socket)))
    return {name: Image(name, image.tag.removeprefix("docker.io/"), image.tar) for name, image in images.items()}


def _docker_answers(env: dict[str, str]) -> bool:
    result = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=env,
                            capture_output=True, check=False)
    return result.returncode == 0


@contextmanager
def docker_daemon() -> Iterator[dict[str, str]]:
    """An environment (os.environ plus DOCKER_HOST) in which `docker` reaches a running daemon: $DOCKER_HOST's, or
    the script's own dockerd, which is stopped again at the end if this call started it."""
    env = dict(os.environ)
    if env.get("DOCKER_HOST"):
        if not _docker_answers(env):
            raise ImageBuildError(f"DOCKER_HOST={env['DOCKER_HOST']} does not answer")
        yield env
        return
    settings = dict(line.split("=", 1) for line in _script("daemon-start").splitlines())
    env["DOCKER_HOST"] = settings["DOCKER_HOST"]
    try:
        yield env
    finally:
        if settings["STARTED"] == "1":
            _script("daemon-stop")


def ensure_in_docker(image: Image, env: dict[str, str]) -> None:
    """The daemon holds `image.tag` with the tar's content (loads the tar when the daemon lacks it, e.g. when its
    data-root was cleared but the tars were kept)."""
    current = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image.tag], env=env,
                             capture_output=True, text=True, check=False).stdout.strip()
    if current != image.image_id:
        subprocess.run(["docker", "load", "--quiet", "--input", str(image.tar)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
