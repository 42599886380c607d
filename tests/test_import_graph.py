"""The import graph of edgekit/: no cycles (function-level imports included) and a leaf runtime/ package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "edgekit"


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the edgekit modules it imports anywhere in its body (edges into the root facade are ignored)."""
    root = PACKAGE.name
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            for name in names:
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                if name and name not in (mod, root):
                    graph[mod].add(name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_inside_edgekit() -> None:
    cycles = _cycles(_edges(_modules(PACKAGE)))
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_sees_function_level_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "edgekit"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("from edgekit.a import y\n")
    (pkg / "a" / "y.py").write_text("def f():\n    from . import x\n")
    assert _cycles(_edges(_modules(pkg))) == [["edgekit.a.x", "edgekit.a.y"]]


def test_runner_modules_import_nothing_else_of_edgekit() -> None:
    """The device-side runner travels with the sessions it uses and nothing more (edgekit.runtime.archive)."""
    from edgekit.runtime.archive import SHIPPED

    graph = _edges(_modules(PACKAGE))
    shipped = {f"edgekit.runtime.{n.removesuffix('.py')}".removesuffix(".__init__") for n in SHIPPED}
    for mod in shipped:
        assert graph[mod] <= shipped, f"{mod} imports {sorted(graph[mod] - shipped)}, which the runner archive lacks"


def test_runtime_is_a_leaf_package() -> None:
    """bench, evaluate and export use edgekit.runtime; it uses nothing else of edgekit (nothing imports upward)."""
    graph = _edges(_modules(PACKAGE))
    for mod, deps in graph.items():
        if mod == "edgekit.runtime" or mod.startswith("edgekit.runtime."):
            upward = sorted(d for d in deps if not d.startswith("edgekit.runtime"))
            assert not upward, f"{mod} imports {upward}"


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_the_chooser_stages_and_compression_never_import_the_reports() -> None:
    """The budget and baseline rules live in edgekit.rules, below the chooser and the reports: search, stages and
    compression decide without the report package (directly or through anything they import), and the rules
    import neither the chooser nor the reports."""
    graph = _edges(_modules(PACKAGE))
    for mod in graph:
        if mod == "edgekit.search" or mod.split(".")[1:2] in (["stages"], ["compression"], ["rules"]):
            bad = sorted(d for d in graph[mod] if d == "edgekit.report" or d.startswith("edgekit.report."))
            assert not bad, f"{mod} imports {bad}"
    for mod in (m for m in graph if m == "edgekit.rules" or m.startswith("edgekit.rules.")):
        up = sorted(d for d in _reaches(graph, mod) if d.startswith(("edgekit.report", "edgekit.search",
                                                                       "edgekit.pipeline", "edgekit.stages")))
        assert not up, f"{mod} reaches {up}"
