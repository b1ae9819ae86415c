"""The apps are layers (docs/architecture.md): each imports only the ones below it, no module
imports its way back to itself, and no project import hides inside a function to dodge a cycle.
Read from the source with `ast`, so every import counts, wherever it is written."""

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first. esimdash holds settings, accounts, health and units, under every app.
LAYERS = ["esimdash", "plans", "usage", "alerts", "family", "demo"]
# The URL root and the settings name every app: they sit on top, whatever their folder.
ON_TOP = {"esimdash.urls"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(path): path
    for layer in LAYERS
    for path in sorted((ROOT / layer).rglob("*.py"))
    if "migrations" not in path.parts
}


def _target(node: ast.ImportFrom | ast.Import, alias: ast.alias) -> str:
    if isinstance(node, ast.Import):
        return alias.name
    base = node.module or ""
    submodule = f"{base}.{alias.name}"
    return submodule if submodule in MODULES else base


def imports(module: str) -> list[tuple[str, bool]]:
    """(imported project module, whether the import is inside a function) for each import."""
    tree = ast.parse(MODULES[module].read_text())
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import | ast.ImportFrom):
                for alias in child.names:
                    target = _target(child, alias)
                    if target.split(".")[0] in LAYERS:
                        found.append((target, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _layer(module: str) -> int:
    return len(LAYERS) if module in ON_TOP else LAYERS.index(module.split(".")[0])


def test_the_modules_are_found():
    assert {"plans.models", "usage.status", "alerts.engine", "family.gifts", "demo.personas"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_own_app_and_those_below(module):
    above = sorted(
        {target for target, _ in imports(module) if target.split(".")[0] != module.split(".")[0]}
        - {target for target, _ in imports(module) if _layer(target) < _layer(module)}
    )
    assert above == []


def test_no_import_cycle_between_modules():
    graph = {module: {target for target, _ in imports(module) if target in MODULES} for module in MODULES}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def test_no_project_import_inside_a_function():
    hidden = sorted(
        f"{module} imports {target}"
        for module in MODULES
        if not module.endswith(".apps")  # AppConfig.ready(): Django's place to connect signals
        for target, in_function in imports(module)
        if in_function
    )
    assert hidden == []


def test_the_layer_rule_catches_an_upward_import(tmp_path, monkeypatch):
    """The check above can fail: a plans module importing usage is reported."""
    upward = tmp_path / "plans" / "upward.py"
    upward.parent.mkdir()
    upward.write_text("from usage.balances import line_balance\n")
    monkeypatch.setitem(MODULES, "plans.upward", upward)
    assert [target for target, _ in imports("plans.upward")] == ["usage.balances"]
    assert _layer("usage.balances") > _layer("plans.upward")
