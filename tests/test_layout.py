"""The package's layers, read from the source: no import circle between modules, the
engine core imports nothing above it, and few modules lie loose at the package top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import casr_cli

PKG = Path(casr_cli.__file__).parent


def _name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the casr_cli modules it imports anywhere in its body (lazy imports too)."""
    files = {_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        here = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1]) if node.level else ""
                target = ".".join(p for p in (base, node.module or "") if p)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    deps.add(sub if sub in files else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[mod] = {d for d in deps if d in files and d != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan).  A package's own
    ``__init__`` imported by its submodules (a registry the package fills) is not an edge."""
    def edges(m: str) -> set[str]:
        return {d for d in graph[m] if not m.startswith(d + ".")}

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_import_graph_sees_lazy_imports():
    g = import_graph()
    assert "casr_cli.models" in g["casr_cli.upscaler"]  # imported inside Upscaler.load
    assert "casr_cli.engine.core" in g["casr_cli.upscaler"]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_engine_core_imports_nothing_above_it():
    allowed = ("casr_cli.engine", "casr_cli.errors")
    bad = {m: sorted(d for d in deps if not d.startswith(allowed))
           for m, deps in import_graph().items() if m.startswith("casr_cli.engine")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_few_modules_at_the_package_top():
    loose = sorted(p.name for p in PKG.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "errors.py", "upscaler.py"]


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    """Each module imported first, in a fresh interpreter (one per package, the modules in
    turn, each after clearing casr_cli from sys.modules): no import order hides a circle."""
    mods = sorted(m for m in import_graph() if not m.endswith("__main__"))
    code = ("import importlib, sys\n"
            f"for m in {mods!r}:\n"
            "    for k in [k for k in sys.modules if k == 'casr_cli' or k.startswith('casr_cli.')]:\n"
            "        del sys.modules[k]\n"
            "    importlib.import_module(m)\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_luma_weights_are_one_constant():
    """BT.601's weights are written once (io/colour.py; prose may name them); the studio-range Y is the same
    weights times 219."""
    from casr_cli.io.colour import LUMA, Y_STUDIO

    assert LUMA == (0.299, 0.587, 0.114) and sum(LUMA) == pytest.approx(1.0)
    assert Y_STUDIO == pytest.approx(tuple(219 * w for w in LUMA), abs=1e-9)
    weights = set(LUMA) | set(Y_STUDIO)
    written = sorted(str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
                     if any(isinstance(n, ast.Constant) and n.value in weights and isinstance(n.value, float)
                            for n in ast.walk(ast.parse(p.read_text()))))
    assert written == ["io/colour.py"]
