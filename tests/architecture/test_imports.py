"""The house rules that import-linter's contracts do not state: no import cycles, no private names across modules.

The layer contracts themselves live in pyproject.toml and run as `lint-imports` (make lint).
"""

import ast
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("integrations", "incidents", "dashboard", "sandbox", "lineup_ops")


def _graph():
    present = [p for p in PACKAGES if (ROOT / p / "__init__.py").exists()]
    return grimp.build_graph(*present, cache_dir=None)


def _cycles(graph, package: str) -> list[list[str]]:
    """Strongly connected components (Tarjan) of the module graph inside one package, larger than one module."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    edges = {
        m: sorted(n for n in graph.find_modules_directly_imported_by(m) if n in modules) for m in modules
    }
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
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

    for m in modules:
        if m not in index:
            visit(m)
    return out


@pytest.mark.parametrize("package", ["integrations", "incidents", "sandbox", "dashboard"])
def test_no_import_cycle_inside_a_package(package):
    if not (ROOT / package / "__init__.py").exists():
        pytest.skip(f"{package} is not in this tree")
    cycles = _cycles(_graph(), package)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _private_imports():
    """`from a.b import _x` or `a.b._x` where a.b is another module of ours (a dunder is not private)."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            here = _module_name(path)
            imported_modules = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    if node.module.split(".")[0] not in PACKAGES:
                        continue
                    for alias in node.names:
                        name = alias.name
                        if name.startswith("_") and not name.startswith("__") and node.module != here:
                            found.append(
                                f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}.{name}"
                            )
                        imported_modules[alias.asname or name] = f"{node.module}.{name}"
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.split(".")[0] in PACKAGES:
                            imported_modules[alias.asname or alias.name] = alias.name
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in imported_modules
                    and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and node.attr != "_meta"
                ):
                    found.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} uses {imported_modules[node.value.id]}.{node.attr}"
                    )
    return found


def test_no_module_uses_another_modules_private_names():
    found = _private_imports()
    assert not found, "private names used across modules:\n" + "\n".join(found)


def test_no_test_module_imports_another_test_module():
    found = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not found, (
        "test modules importing test modules (move shared helpers to tests/support/):\n" + "\n".join(found)
    )
