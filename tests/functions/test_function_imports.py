"""The functions' modules import each other in one direction only: no cycle, not even through an import made
lazily inside a function (a cycle there still means two modules that cannot be understood apart, and it breaks
as soon as either import moves to the top).

A function's modules are its folder's plus the template's (index.py and function_support.py sit next to them
in the image); they import each other by top-level name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from function_harness import PREDICT_DIR, TEMPLATE_DIR, TRAIN_DIR

TEMPLATE_MODULES = [TEMPLATE_DIR / "index.py", TEMPLATE_DIR / "function_support.py"]


def import_graph(files: list[Path]) -> dict[str, set[str]]:
    """module name -> the names of the other given modules it imports, anywhere in its body."""
    names = {path.stem for path in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        graph[path.stem] = (imported & names) - {path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done:
            return None
        for target in sorted(graph[module]):
            if cycle := visit(target, [*path, module]):
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        if cycle := visit(module, []):
            return cycle
    return None


@pytest.mark.parametrize("function_dir", [TRAIN_DIR, PREDICT_DIR], ids=lambda path: path.name)
def test_function_modules_import_without_cycles(function_dir):
    graph = import_graph(sorted(function_dir.glob("*.py")) + TEMPLATE_MODULES)
    assert "handler" in graph and graph["handler"], "the walk found none of the handler's imports"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_cycle_through_a_lazy_import_is_found(tmp_path):
    (tmp_path / "protocol.py").write_text("def parse():\n    from png import row\n")
    (tmp_path / "png.py").write_text("from protocol import InvalidInput\n")
    (tmp_path / "errors.py").write_text("import os\n")
    graph = import_graph(sorted(tmp_path.glob("*.py")))
    assert graph == {"errors": set(), "png": {"protocol"}, "protocol": {"png"}}
    assert find_cycle(graph) == ["png", "protocol", "png"]
