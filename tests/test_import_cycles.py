"""No import cycles inside the package: the imports of im2latex_hf/**/*.py, read with `ast`, flow one way.

A module's imports are its `import` and `from ... import` statements outside functions (at module level, also
under `if`/`try` and in class bodies; not under `if TYPE_CHECKING:`, which never runs). Importing
`im2latex_hf.a.b` runs `im2latex_hf/a/__init__.py` first, so it counts as importing `im2latex_hf.a` too (except
for modules inside `im2latex_hf.a`, whose package is already running when they run).
`default_model/` is a model folder (its files are copies loaded as remote code), not part of the package's graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO_ROOT

PACKAGE = "im2latex_hf"
SKIPPED = ("default_model",)


def module_files(root: Path = REPO_ROOT / PACKAGE) -> dict[str, Path]:
    """Module name → file, for every .py file of the package (outside `SKIPPED` folders)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if any(part in SKIPPED for part in parts):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_statements(tree: ast.AST, in_functions: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module (or, with `in_functions`, any of its functions) runs."""
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and not in_functions:
                continue
            if isinstance(child, ast.If) and is_type_checking(child.test):
                for statement in child.orelse:
                    visit_statement(statement)
                continue
            visit_statement(child)

    def visit_statement(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        else:
            visit(node)

    visit(tree)
    return found


def imported_modules(name: str, path: Path, modules: dict[str, Path], in_functions: bool) -> set[str]:
    """The package's modules that module `name` imports (and the packages above them)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for statement in import_statements(ast.parse(path.read_text(), str(path)), in_functions):
        if isinstance(statement, ast.Import):
            targets.update(alias.name for alias in statement.names)
            continue
        if statement.level:
            base = package.split(".")
            base = base[: len(base) - (statement.level - 1)]
            source = ".".join(base + ([statement.module] if statement.module else []))
        else:
            source = statement.module or ""
        targets.add(source)
        targets.update(f"{source}.{alias.name}" for alias in statement.names)  # `from . import module`
    imported = set()
    for target in targets:
        parts = target.split(".")
        imported.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # the packages above run first
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}  # already running
    return {module for module in imported if module in modules and module != name and module not in ancestors}


def import_graph(in_functions: bool = False) -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, modules, in_functions) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, the first repeated at the end) per strongly connected group of modules."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(set(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)

    found = []
    for group in groups:  # a shortest way back to the group's first module, inside the group
        start = min(group)
        paths = {start: [start]}
        frontier = [start]
        while frontier:
            node = frontier.pop(0)
            for target in sorted(graph[node] & group):
                if target == start:
                    found.append(paths[node] + [start])
                    frontier = []
                    break
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    frontier.append(target)
    return found


def describe(found: list[list[str]]) -> str:
    return "\n".join(" → ".join(cycle) for cycle in found)


def test_the_cycle_finder_finds_cycles_and_skips_functions_and_type_checking(tmp_path):
    package = tmp_path / PACKAGE
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub.b import thing\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("from .. import c\n")
    (package / "c.py").write_text("import im2latex_hf.a\n")
    (package / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .e import E\ndef f():\n    from .e import g\n"
    )
    (package / "e.py").write_text("from .d import f\n")
    modules = module_files(package)
    graph = {name: imported_modules(name, path, modules, in_functions=False) for name, path in modules.items()}
    assert graph[f"{PACKAGE}.a"] == {f"{PACKAGE}.sub", f"{PACKAGE}.sub.b"}
    assert graph[f"{PACKAGE}.sub.b"] == {f"{PACKAGE}.c"}  # its own package, `sub`, is already running
    assert cycles(graph) == [[f"{PACKAGE}.a", f"{PACKAGE}.sub.b", f"{PACKAGE}.c", f"{PACKAGE}.a"]]
    with_functions = {name: imported_modules(name, path, modules, in_functions=True) for name, path in modules.items()}
    assert [f"{PACKAGE}.d", f"{PACKAGE}.e", f"{PACKAGE}.d"] in cycles(with_functions)


def test_no_import_cycle_at_module_level():
    found = cycles(import_graph())
    assert not found, f"import cycles:\n{describe(found)}"


def test_no_import_cycle_even_through_imports_inside_functions():
    found = cycles(import_graph(in_functions=True))
    assert not found, f"import cycles:\n{describe(found)}"


# The package's areas, from the top down: a module may import its own area's modules and those of areas below it.
LAYERS = (
    ("cli", "hub"),
    ("evaluation",),
    ("inference",),
    ("onnx",),
    ("training",),
    ("metrics",),
    ("data",),
    ("rendering",),
    (
        "auto_registration",
        "bundled_model",
        "configuration_im2latex",
        "image_processing_im2latex",
        "latex",
        "modeling_im2latex",
        "preprocessing",
        "processing_im2latex",
        "tokenization_im2latex",
    ),
)


def layer(module: str) -> int | None:
    """The layer of a module of the package (None for the package's own `__init__`)."""
    area = module.split(".")[1] if "." in module else None
    return next((depth for depth, areas in enumerate(LAYERS) if area in areas), None)


def test_every_module_belongs_to_a_layer():
    unplaced = [name for name in module_files() if name != PACKAGE and layer(name) is None]
    assert not unplaced, f"add these to LAYERS: {unplaced}"


def test_imports_flow_down_the_layers():
    upward = [
        f"{name} → {target}"
        for name, targets in import_graph(in_functions=True).items()
        for target in targets
        if target != PACKAGE and name != PACKAGE and layer(target) < layer(name)
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))
