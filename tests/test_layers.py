"""The package's import graph: every import points down the pipeline, and no module imports itself back.

The layer order is written here once. A module may import its own layer and the layers below it, never one
above; imports inside functions count as much as those at the top of a file (a lazy import is still a
dependency). A package's ``__init__`` re-exports its modules, so a module that imports its own package (rather
than the sibling module) closes a cycle, which the cycle check reports too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import squeezenas

# Lowest first: each layer may use those before it.
LAYERS = ("utils", "data", "space", "models", "supernet", "cost", "engine", "search", "deploy", "viz", "pipeline",
          "cli")
MAX_LINES = 400
ROOT = Path(squeezenas.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every squeezenas module ``path`` imports (``from pkg import sub`` counts as importing pkg and pkg.sub)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.add(module)
            out |= {f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in known}
    return {m for m in out if m in known and m != name}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: squeezenas/__init__.py (the version)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def test_every_module_belongs_to_a_layer():
    strays = [m for m in _modules() if _layer(m) is not None and _layer(m) not in LAYERS]
    assert not strays, f"modules outside the layers {LAYERS}: {strays}"


def test_imports_point_down_the_layers():
    upward = []
    for module, deps in _graph().items():
        here = _layer(module)
        for dep in deps:
            there = _layer(dep)
            if here in LAYERS and there in LAYERS and LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{module} imports {dep} ({here} < {there})")
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(upward))


def test_no_import_cycle():
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(_modules()))
def test_modules_stay_small(module):
    lines = len(_modules()[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}: split it by job)"


def test_the_layer_check_sees_an_upward_and_a_cyclic_import(tmp_path, monkeypatch):
    """The checks above can fail: a fake package with an upward import and a cycle is caught."""
    pkg = tmp_path / "squeezenas"
    for rel, text in {"__init__.py": "", "space/__init__.py": "", "space/a.py": "from squeezenas.cli import b\n",
                      "cli/__init__.py": "", "cli/b.py": "import squeezenas.space.a\n"}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", pkg)
    with pytest.raises(AssertionError, match="squeezenas.space.a imports squeezenas.cli.b"):
        test_imports_point_down_the_layers()
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycle()
