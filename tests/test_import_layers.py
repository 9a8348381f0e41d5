"""The declared layer order, enforced on EVERY import of cse_models, cse_serving, cse_assets and cse_demo:
module level, function level and `TYPE_CHECKING` blocks alike (an import inside a function is still a
dependency; it only hides a cycle until the function runs).

Importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` first, so an import of a module is also an
import of every package above it — except the importer's own packages, which Python has already started.
A cycle is a strongly connected set of two or more modules; an upward import is one from a module to a
module of a later layer (README, "Layout").
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cse_models", "cse_serving", "cse_assets", "cse_demo")

# cse_models, lowest first: a module may import its own layer (without a cycle) and the layers before it.
MODEL_LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "registry", "specs", "model_sets"),
    ("data",),
    ("features",),
    ("config",),
    ("heads",),
    ("datasets",),
    ("scoring",),
    ("models",),
    ("training",),
    ("export",),
    ("classical",),
    ("members",),
    ("ensembles",),
    ("evaluation",),
    ("store",),
    ("publication",),
    ("cli", "cli_global", "__init__"),
)
# The packages: the library first, serving and the Dagster wiring beside each other, the demo over all.
PACKAGE_LAYERS: dict[str, int] = {"cse_models": 0, "cse_serving": 1, "cse_assets": 1, "cse_demo": 2}


def module_files() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name an `import` or `from … import` statement anywhere in the file can load."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """module → the project modules importing it loads (the longest module prefix of each name, and the
    packages above that module)."""
    modules = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        targets: set[str] = set()
        for name in imported_names(module, path):
            parts = name.split(".")
            hits = [".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in modules]
            if hits:
                target = hits[0]
                targets |= {".".join(target.split(".")[:i]) for i in range(1, target.count(".") + 2)}
        graph[module] = {t for t in targets if t in modules and t != module and t not in own}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of two or more modules (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_of(module: str) -> tuple[int, int]:
    """(package layer, cse_models layer) of a module; a cse_models module that no layer names fails."""
    package, _, rest = module.partition(".")
    if package != "cse_models":
        return PACKAGE_LAYERS[package], 0
    head = rest.split(".")[0] if rest else "__init__"
    for level, names in enumerate(MODEL_LAYERS):
        if head in names:
            return PACKAGE_LAYERS[package], level
    raise AssertionError(f"cse_models.{head} is in no layer: add it to MODEL_LAYERS and the README's layout")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_no_upward_imports() -> None:
    found = upward_imports(import_graph())
    assert not found, f"{len(found)} upward imports:\n" + "\n".join(found)


def test_the_graph_sees_function_local_imports(tmp_path: Path) -> None:
    """The walker reads imports inside functions and relative imports: a planted local import from a low
    layer to a high one is an upward import and, with its reverse, a cycle."""
    low = tmp_path / "low.py"
    low.write_text("def f():\n    from cse_models.publication import publish\n")
    high = tmp_path / "high.py"
    high.write_text("from .low import f\n")
    assert "cse_models.publication.publish" in set(imported_names("cse_models.errors", low))
    assert "cse_models.low" in set(imported_names("cse_models.high", high))
    graph = {"cse_models.errors": {"cse_models.publication"}, "cse_models.publication": {"cse_models.errors"}}
    assert cycles(graph) == [["cse_models.errors", "cse_models.publication"]]
    assert upward_imports(graph) == ["cse_models.errors ((0, 0)) imports cse_models.publication ((0, 15))"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_in_a_layer(package: str) -> None:
    for module in module_files():
        if module.startswith(package):
            layer_of(module)
