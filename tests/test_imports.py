"""No import cycle inside the package (issue 12): the modules form a straight path, each importing only
modules below it. Imports inside functions count too (a lazy import is still a dependency); imports under
``if TYPE_CHECKING:`` do not (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from outcome_registry.paths import PROJECT_DIR

PACKAGES = ("outcome_registry", "dashboard")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every module this one imports at runtime (absolute names, resolved relative imports)."""
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)  # `from pkg import module`
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    files = {
        _module_name(path): path
        for package in PACKAGES
        if (PROJECT_DIR / package / "__init__.py").exists()
        for path in (PROJECT_DIR / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = _imports(tree, module, path.name == "__init__.py")
        # A package's __init__ importing its own submodules is how a package is assembled, not a cycle.
        graph[module] = {n for n in names if n in files and n != module and not n.startswith(module + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_hand_made_cycle() -> None:
    # a -> b -> c -> a is one cycle; d -> a hangs off it; e is alone.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_relative_and_from_imports_are_resolved() -> None:
    tree = ast.parse(
        "from . import store\nfrom .validate import run\nimport outcome_registry.paths\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from outcome_registry import cli\n"
        "def f():\n    from outcome_registry import pipeline\n"
    )
    names = _imports(tree, "outcome_registry.publish", is_package=False)
    assert {"outcome_registry.store", "outcome_registry.validate.run", "outcome_registry.paths"} <= names
    assert "outcome_registry.pipeline" in names  # a lazy import still counts
    assert "outcome_registry.cli" not in names  # TYPE_CHECKING imports never run


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "outcome_registry.pipeline" in graph and "outcome_registry.validate.run" in graph
    found = cycles(graph)
    if found:
        pytest.fail("import cycles: " + "; ".join(" <-> ".join(c) for c in found))
