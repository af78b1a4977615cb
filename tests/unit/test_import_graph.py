"""Imports among the project's modules run one way: no cycle, and the Django-free packages
never import Django or the Django project.

The graph is read from the source (every ``import`` and ``from ... import`` anywhere in a
module, inside functions too: a lazy import that only hides a cycle is still a cycle), not
from ``sys.modules``, so nothing is imported to build it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tutor", "training", "inference", "pedagogy")
DJANGO_FREE = ("training", "inference", "pedagogy")

Graph = dict[str, set[str]]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every dotted name ``tree`` imports, relative imports resolved against ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            # ``from pkg import mod`` imports the submodule ``pkg.mod`` when there is one.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def resolve(name: str, modules: Iterable[str]) -> str | None:
    """The project module that importing ``name`` runs last (its longest known prefix)."""
    known = set(modules)
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def build_graph(root: Path, packages: Iterable[str]) -> Graph:
    files = {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
        if "migrations" not in path.parts
    }
    graph: Graph = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for imported in imported_names(tree, name, path.name == "__init__.py"):
            target = resolve(imported, files)
            if target is not None and target != name:
                graph[name].add(target)
    return graph


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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


def real_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Cycles, less those made only of a package and its own submodules: an ``__init__`` that
    re-exports a submodule which imports a sibling through the package is not a knot."""
    cycles = []
    for component in strongly_connected(graph):
        top = min(component, key=len)
        if not all(member == top or member.startswith(top + ".") for member in component):
            cycles.append(component)
    return cycles


@pytest.fixture(scope="module")
def project_graph() -> Graph:
    return build_graph(ROOT, PACKAGES)


def test_the_graph_covers_every_package(project_graph: Graph) -> None:
    for package in PACKAGES:
        assert package in project_graph
    assert any(targets for targets in project_graph.values()), "no import edges found"


def test_no_import_cycles(project_graph: Graph) -> None:
    cycles = real_cycles(project_graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_django_free_packages_import_no_django(project_graph: Graph) -> None:
    offenders = []
    for package in DJANGO_FREE:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            name = module_name(path, ROOT)
            for imported in imported_names(tree, name, path.name == "__init__.py"):
                top = imported.split(".")[0]
                if top in {"django", "channels", "tutor", "celery"}:
                    offenders.append(f"{name} imports {imported}")
    assert not offenders, "\n".join(offenders)


# ---- the checker itself -------------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_lazy_import_cycle_is_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/a.py": "from app import b\n",
            "app/b.py": "def f():\n    from .a import g\n",
        },
    )
    assert real_cycles(build_graph(tmp_path, ["app"])) == [["app.a", "app.b"]]


def test_a_cycle_across_packages_is_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "one/__init__.py": "",
            "one/x.py": "import two.y\n",
            "two/__init__.py": "",
            "two/y.py": "from one.x import thing\n",
        },
    )
    assert real_cycles(build_graph(tmp_path, ["one", "two"])) == [["one.x", "two.y"]]


def test_relative_imports_resolve_against_the_package(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from .sub import mod\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/mod.py": "from .. import other\nfrom ..other import name\n",
            "pkg/other.py": "",
        },
    )
    graph = build_graph(tmp_path, ["pkg"])
    assert graph["pkg"] == {"pkg.sub", "pkg.sub.mod"}
    assert graph["pkg.sub.mod"] == {"pkg", "pkg.other"}
    # pkg -> pkg.sub.mod -> pkg is a package re-exporting its own submodule: not a knot.
    assert real_cycles(graph) == []


def test_a_one_way_chain_has_no_cycle(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "p/__init__.py": "",
            "p/a.py": "from p import b\n",
            "p/b.py": "import p.c\nimport os\n",
            "p/c.py": "import json\n",
        },
    )
    assert real_cycles(build_graph(tmp_path, ["p"])) == []


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, set[str]]:
    size = draw(st.integers(1, 8))
    edges = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, size - 1))))
    graph: dict[str, set[str]] = {f"m{i}": set() for i in range(size)}
    for a, b in edges:
        if a != b:
            graph[f"m{a}"].add(f"m{b}")
    return graph


def _reaches(graph: Mapping[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for child in graph[node]:
            if child == goal:
                return True
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return False


@given(graphs())
def test_components_match_mutual_reachability(graph: dict[str, set[str]]) -> None:
    """Two modules share a component exactly when each reaches the other."""
    component_of = {m: tuple(c) for c in strongly_connected(graph) for m in c}
    for a in graph:
        for b in graph:
            if a == b:
                continue
            together = a in component_of and component_of.get(a) == component_of.get(b)
            assert together == (_reaches(graph, a, b) and _reaches(graph, b, a))
