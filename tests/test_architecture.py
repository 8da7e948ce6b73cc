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


LIMIT = 30  # issue 14: no function above it, anywhere


def complexity(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """McCabe's cyclomatic complexity with boolean operators, counted as radon's `cc` counts it: 1,
    plus 1 for each `if`, `elif`, conditional expression (`a if c else b`), `for`, `while`, `assert`
    and `except` handler; plus 1 for the `else` of a `for`, `while` or `try`; plus 1 for each `for`
    and each `if` of a comprehension; plus one for each operand of `and`/`or` beyond the first
    (`a and b and c` is +2); plus one for each `case` of a `match` except the catch-all `case _`.
    A function nested in another (or a class in it) is its own count, not its parent's; a lambda's
    body counts in the function that holds it."""
    count = 1
    todo = list(ast.iter_child_nodes(function))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, (ast.If, ast.IfExp, ast.Assert)):
            count += 1
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            count += 1 + bool(node.orelse)
        elif isinstance(node, ast.Try | getattr(ast, "TryStar", ast.Try)):
            count += len(node.handlers) + bool(node.orelse)
        elif isinstance(node, ast.BoolOp):
            count += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            count += 1 + len(node.ifs)
        elif isinstance(node, ast.Match):
            count += sum(1 for case in node.cases
                         if not (isinstance(case.pattern, ast.MatchAs) and case.pattern.pattern is None))
        if not isinstance(node, ast.Assert):  # radon counts an assert once, whatever it holds
            todo += ast.iter_child_nodes(node)
    return count


def functions(path: Path):
    """(`module.py:Class.method`, node) for every function of a file, nested ones too."""
    def walk(node: ast.AST, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{prefix}{child.name}", child
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)
    yield from walk(ast.parse(path.read_text()), f"{path.relative_to(ROOT)}:")


def test_no_function_is_above_complexity_30():
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "plugins").rglob("*.py")) + sorted(
        (ROOT / "benchmarks").rglob("*.py"))
    over = {name: n for path in files for name, node in functions(path) if (n := complexity(node)) > LIMIT}
    assert over == {}, f"split these functions (complexity above {LIMIT}, radon's count)"
