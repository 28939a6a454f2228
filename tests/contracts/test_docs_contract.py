"""The documentation against the repository: every relative link in every Markdown file resolves to a file or
folder in the repository (nothing outside it, which a clone would not have), and every MLFunction or ModelStore
the docs show is admitted by the API server as it is written."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from mlfunctions_operator import API_VERSION, GROUP, VERSION

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.I)  # https:, mailto:, protocol-relative
YAML_BLOCK = re.compile(r"^ {0,3}```ya?ml\n(.*?)^ {0,3}```", re.S | re.M)


def markdown_files() -> list[Path]:
    """The repository's Markdown files: tracked ones and new ones not ignored (what a commit would hold)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout.split()
    return sorted(REPO / name for name in listed if (REPO / name).exists())


def relative_links(text: str) -> list[str]:
    prose = CODE_SPAN.sub("", FENCE.sub("", text))
    targets = INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)
    return [t for t in targets if not EXTERNAL.match(t) and not t.startswith("#")]


def _resolve(markdown: Path, target: str) -> Path:
    path = target.split("#", 1)[0].split("?", 1)[0]
    base = REPO if path.startswith("/") else markdown.parent
    return (base / path.lstrip("/")).resolve()


MARKDOWN = markdown_files()


def test_the_markdown_files_are_found():
    names = {path.relative_to(REPO).as_posix() for path in MARKDOWN}
    assert {"README.md", "docs/api.md", "docs/README.md", "tests/contracts/README.md"} <= names


@pytest.mark.parametrize("markdown", MARKDOWN, ids=[p.relative_to(REPO).as_posix() for p in MARKDOWN])
def test_every_relative_link_resolves_inside_the_repository(markdown):
    broken = []
    for target in relative_links(markdown.read_text()):
        resolved = _resolve(markdown, target)
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{markdown.relative_to(REPO)} links to what the repository does not have: {broken}"


def test_the_link_finder_sees_links_and_skips_code():
    text = ("See [the API](docs/api.md#status), ![a picture](img/x.png) and [web](https://example.com).\n"
            "`[not](a-link.md)`\n```\n[nor](this.md)\n```\n[ref]: ../../shared/API.md\n[top](#anchor)\n")
    assert relative_links(text) == ["docs/api.md#status", "img/x.png", "../../shared/API.md"]
    assert not _resolve(REPO / "README.md", "../../shared/API.md").is_relative_to(REPO)


def documented_objects() -> list[tuple[str, int, dict]]:
    """Every MLFunction and ModelStore in a YAML block of a Markdown file: (file, block number, object)."""
    found = []
    for markdown in MARKDOWN:
        for number, block in enumerate(YAML_BLOCK.findall(markdown.read_text()), start=1):
            try:
                documents = list(yaml.safe_load_all(block))
            except yaml.YAMLError:
                continue  # a fragment (a status, a values excerpt), not an object to apply
            for document in documents:
                if isinstance(document, dict) and document.get("apiVersion") == API_VERSION:
                    found.append((markdown.relative_to(REPO).as_posix(), number, document))
    return found


OBJECTS = documented_objects()


def test_the_api_reference_shows_both_kinds():
    kinds = {(name, obj["kind"]) for name, _, obj in OBJECTS}
    assert {("docs/api.md", "MLFunction"), ("docs/api.md", "ModelStore"), ("README.md", "MLFunction")} <= kinds


@pytest.fixture(scope="module")
def dry_run(k8s: client.ApiClient, install_crds):
    """dry_run(object) -> None if the API server admits it (in a namespace of the test's), else its message."""
    install_crds("crds")
    core, custom = client.CoreV1Api(k8s), client.CustomObjectsApi(k8s)
    namespace = f"t-docs-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))

    def create(obj: dict) -> str | None:
        body = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
        body.pop("status", None)
        plural = {"MLFunction": "mlfunctions", "ModelStore": "modelstores"}[obj["kind"]]
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body, dry_run="All")
        except ApiException as error:
            return json.loads(error.body)["message"]
        return None

    yield create
    core.delete_namespace(namespace)


@pytest.mark.parametrize("where, number, obj", OBJECTS,
                         ids=[f"{where}#{number}-{obj['metadata']['name']}" for where, number, obj in OBJECTS])
def test_every_documented_object_is_admitted(dry_run, where, number, obj):
    message = dry_run(obj)
    assert message is None, f"{where}, YAML block {number}: the API server refuses it: {message}"
