"""No import circle in the project: modules form layers, each importing only the ones below it.

The graph is read from the source (every ``import`` / ``from ... import`` of a first-party module,
including imports inside functions and under ``TYPE_CHECKING``), so a circle held together by a
function-level import counts too. Also: the ``reviewsense`` command's helpers never exit the process.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from tests.helpers.paths import ROOT

PACKAGES = ("chalicelib", "reviewsense", "training", "infra", "tests")


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for ``app.py`` and every module of ``packages`` under ``root``."""
    files = [root / "app.py"] if (root / "app.py").exists() else []
    for package in packages:
        files += sorted((root / package).rglob("*.py"))
    modules: dict[str, Path] = {}
    for path in files:
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the first-party modules it imports anywhere in its source."""

    def first_party(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(first_party(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from package import module``: that module; ``from module import name``: the module.
                imported.update(first_party(f"{base}.{alias.name}") for alias in node.names)
        graph[module] = {name for name in imported if name and name != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_project_has_no_import_circle() -> None:
    graph = import_graph(module_files(ROOT, PACKAGES))
    assert "reviewsense.cli" in graph and "reviewsense.pipelineops" in graph["reviewsense.demo"]
    assert cycles(graph) == []


def test_the_commands_import_the_helpers_and_never_the_reverse() -> None:
    graph = import_graph(module_files(ROOT, PACKAGES))
    commands = {"reviewsense.cli", "reviewsense.demo", "reviewsense.pipelinecli"}
    assert {"reviewsense.lake", "reviewsense.localcontrol", "reviewsense.console"} <= graph["reviewsense.cli"]
    importers = {m for m in graph if graph[m] & commands and not m.startswith("tests.")}
    assert importers <= commands, "only the front end imports a command module"


def test_a_circle_held_by_a_function_level_import_is_found(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "front.py").write_text("from pkg.helpers import table\n")
    (tmp_path / "pkg" / "helpers.py").write_text("def table():\n    from . import front\n")
    (tmp_path / "pkg" / "leaf.py").write_text("import pkg.helpers\n")
    graph = import_graph(module_files(tmp_path, ["pkg"]))
    assert graph["pkg.helpers"] == {"pkg.front"}
    assert cycles(graph) == [["pkg.front", "pkg.helpers"]]


def _exits(tree: ast.Module) -> list[int]:
    """Lines raising or catching ``SystemExit`` or calling ``sys.exit``, outside the ``__main__`` guard."""
    main_guarded = {
        id(inner)
        for node in tree.body
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    lines = []
    for node in ast.walk(tree):
        if id(node) in main_guarded:
            continue
        if isinstance(node, ast.Raise) and node.exc is not None and "SystemExit" in ast.unparse(node.exc):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and ast.unparse(node.func) in {"sys.exit", "exit", "quit"}:
            lines.append(node.lineno)
        if isinstance(node, ast.ExceptHandler) and node.type and "SystemExit" in ast.unparse(node.type):
            lines.append(node.lineno)
    return lines


def test_the_command_modules_never_exit_the_process_themselves() -> None:
    """Helpers raise ``OperatorError``; only ``reviewsense.cli.main``'s caller turns it into an exit."""
    exits = {
        path.name: _exits(ast.parse(path.read_text())) for path in sorted((ROOT / "reviewsense").glob("*.py"))
    }
    assert {name: lines for name, lines in exits.items() if lines} == {}
    assert _exits(ast.parse("def f():\n    raise SystemExit('no run')\n")) == [2]
