"""The layers, read from the code's own imports.

`ground` is below every domain package and imports none of them; the domain packages
import `ground` and each other but never `village`, the top floor of entry points. No two
modules import each other, directly or round a circle, when they are loaded; an import
inside a function is there only to spare a real start-up cost, and says so on its line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUND = "ground"
DOMAIN = ("devices", "ingest", "alerting", "broadcast", "dashboards", "simulators")
TOP = "village"
PACKAGES = (GROUND, *DOMAIN, TOP)
START_UP_COST = "start-up cost"


@dataclass(frozen=True)
class Import:
    """One import of a project module by another."""

    source: str
    target: str
    line: int
    at_load: bool  # runs when the module is loaded (not in a function nor TYPE_CHECKING)
    in_function: bool
    text: str


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom, source: str, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = source.split(".")
            if not modules[source].name == "__init__.py":
                package = package[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, *([base] if base else [])])
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                 for alias in node.names]
    found = []
    for name in names:
        project = name
        while project and project not in modules:
            project = project.rpartition(".")[0]
        found.append(project or name)  # a project module, or the outside one as written
    return found


def imports(modules: dict[str, Path]) -> Iterator[Import]:
    for source, path in modules.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        yield from _walk(tree, source, modules, lines, in_function=False, type_checking=False)


def _walk(node: ast.AST, source: str, modules: dict[str, Path], lines: list[str],
          in_function: bool, type_checking: bool) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            for target in _targets(child, source, modules):
                yield Import(source, target, child.lineno, not (in_function or type_checking),
                             in_function, lines[child.lineno - 1])
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, source, modules, lines, True, type_checking)
        elif isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING":
            yield from _walk(child, source, modules, lines, in_function, True)
        else:
            yield from _walk(child, source, modules, lines, in_function, type_checking)


def package_of(module: str) -> str:
    return module.split(".")[0]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


MODULES = project_modules()
EVERY_IMPORT = list(imports(MODULES))
IMPORTS = [i for i in EVERY_IMPORT if i.target in MODULES and i.source != i.target]


def test_the_reader_sees_every_kind_of_import() -> None:
    fake = {"p": ROOT / "p/__init__.py", "p.a": ROOT / "p/a.py", "p.b": ROOT / "p/b.py"}
    tree = ast.parse("from . import b\nfrom p.b import x\nimport p.a\n"
                     "if TYPE_CHECKING:\n    from p import b\ndef f():\n    import p.b\n"
                     "    import json.decoder\n")
    found = list(_walk(tree, "p.a", fake, [""] * 6 + ["    import p.b", "    import json"],
                       False, False))
    assert [(i.target, i.at_load, i.in_function) for i in found] == [
        ("p.b", True, False), ("p.b", True, False), ("p.a", True, False),
        ("p.b", False, False), ("p.b", False, True), ("json.decoder", False, True)]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_ground_imports_no_package_above_it() -> None:
    upward = [(i.source, i.target) for i in IMPORTS
              if package_of(i.source) == GROUND and package_of(i.target) != GROUND]
    assert upward == []


def test_domain_packages_never_import_the_entry_points() -> None:
    upward = [(i.source, i.target) for i in IMPORTS
              if package_of(i.source) in DOMAIN and package_of(i.target) == TOP]
    assert upward == []


def test_no_import_circle_among_modules() -> None:
    edges: dict[str, set[str]] = {}
    for i in IMPORTS:
        if i.at_load:
            edges.setdefault(i.source, set()).add(i.target)
    assert cycles(edges) == []


def test_no_import_circle_among_packages() -> None:
    edges: dict[str, set[str]] = {}
    for i in IMPORTS:
        if package_of(i.source) != package_of(i.target):
            edges.setdefault(package_of(i.source), set()).add(package_of(i.target))
    assert cycles(edges) == []


def test_imports_inside_functions_only_spare_a_start_up_cost() -> None:
    hidden = sorted({f"{i.source}:{i.line}: {i.text.strip()}" for i in EVERY_IMPORT
                     if i.in_function and START_UP_COST not in i.text})
    assert hidden == []
