"""The local OpenFaaS's imports run one way: the gateway (HTTP) on pods, pods on faas_netes, both on the
runtime, the runtime on funcenv and the harness, and nothing imports upwards or in a circle. Read from the source (every import, also
those inside functions), so a new arrow the wrong way fails here before it hides in a running process."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {  # package -> the folder it lives in
    "local_openfaas": REPO_ROOT / "local-openfaas" / "local_openfaas",
    "mlfunctions_harness": REPO_ROOT / "hack" / "harness" / "mlfunctions_harness",
    "mlfunctions_stack": REPO_ROOT / "hack" / "stack" / "mlfunctions_stack",
}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules that `name` imports (a `from package import module` counts as the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            for alias in node.names:
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {t for t in targets if t in MODULES}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _arrows(source: str, target: str) -> list[str]:
    return sorted(f"{a} -> {b}" for a, deps in GRAPH.items() if a == source or a.startswith(source + ".")
                  for b in deps if b == target or b.startswith(target + "."))


def test_the_graph_is_read():
    # Known arrows, so an empty graph (a parser that finds nothing) cannot pass the tests below.
    assert "local_openfaas.runtime.runtime" in GRAPH["local_openfaas.gateway.app"]
    assert "mlfunctions_harness.processes" in GRAPH["local_openfaas.runtime.replica"]
    assert "mlfunctions_harness.processes" in GRAPH["mlfunctions_harness.model_store"]  # a relative import


@pytest.mark.parametrize("lower, higher", [
    ("local_openfaas.runtime", "local_openfaas.gateway"),      # the provider interface is the runtime's
    ("local_openfaas.runtime", "local_openfaas.faas_netes"),
    ("local_openfaas.runtime", "local_openfaas.pods"),          # backends plug into the runtime, not the reverse
    ("local_openfaas.faas_netes", "local_openfaas.pods"),
    ("local_openfaas.pods", "local_openfaas.gateway"),
    ("local_openfaas.funcenv", "local_openfaas.runtime"),
    ("local_openfaas.funcenv", "local_openfaas.gateway"),
    ("local_openfaas", "mlfunctions_stack"),
    ("mlfunctions_harness", "local_openfaas"),
    ("mlfunctions_harness", "mlfunctions_stack"),
])
def test_no_import_runs_upwards(lower, higher):
    assert _arrows(lower, higher) == []


def test_no_import_cycle():
    cycles, state = [], {}  # state: 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []
