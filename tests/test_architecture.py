"""docs/ARCHITECTURE.md's module table is the code's own: every module of src/lit has its row, each
imports only the lit modules its row lists (deferred imports too), and no two modules import each
other, however indirectly."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "lit"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
ANYONE = {"errors"}  # LitError: every module may raise it


def modules() -> dict[str, Path]:
    """`store`, `git.run`, `proxy.relay`... for every module of the package (packages' __init__ hold
    only their docstring, and are checked to import nothing)."""
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in sorted(PACKAGE.rglob("*.py"))
            if p.name != "__init__.py"}


def lit_imports(path: Path) -> set[str]:
    known = modules()
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "lit":
            base = node.module.removeprefix("lit").lstrip(".")
            for alias in node.names:
                name = f"{base}.{alias.name}".lstrip(".")
                out.add(name if name in known else base)
        elif isinstance(node, ast.Import):
            out |= {a.name.removeprefix("lit.") for a in node.names if a.name.startswith("lit.")}
    return out - {""}


def table() -> dict[str, set[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.fullmatch(r"\| `([\w.]+)` \| [^|]+ \| ([^|]*) \|", line.strip())
        if m:
            rows[m.group(1)] = {w.strip(" `") for w in m.group(2).split(",") if w.strip(" `-—")}
    return rows


def test_every_module_has_its_row():
    assert sorted(set(modules()) - set(table())) == [], "add a row to docs/ARCHITECTURE.md's module table"
    assert sorted(set(table()) - set(modules())) == [], "rows of modules that are gone"
    for init in PACKAGE.rglob("__init__.py"):
        assert lit_imports(init) == set(), init


def test_each_module_imports_only_what_its_row_lists():
    rows = table()
    extra = {name: sorted(lit_imports(path) - rows.get(name, set()) - ANYONE - {name})
             for name, path in modules().items()}
    assert {k: v for k, v in extra.items() if v} == {}, "an import that docs/ARCHITECTURE.md does not list"


def test_no_import_cycle():
    graph = {name: lit_imports(path) - {name} for name, path in modules().items()}

    def reaches(start: str) -> set[str]:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo += graph.get(n, ())
        return seen

    assert sorted((a, b) for a in graph for b in graph[a] if a in reaches(b)) == []


def test_no_module_reaches_into_another_modules_private_names():
    known = modules()
    found = []
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        module_names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "lit":
                base = node.module.removeprefix("lit").lstrip(".")
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{name}: from {node.module} import {alias.name}")
                    if f"{base}.{alias.name}".lstrip(".") in known:
                        module_names.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in module_names
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.append(f"{name}: {node.value.id}.{node.attr}")
    assert found == []
