"""The code's layout holds: dependencies point one way, no module imports in a circle, every module
imports on its own.

    web -> (visits, scheduler, transcription) -> caserecord, with visits -> scheduler (walk-in hours)

Imports are read from the source (every `import`, at module level or inside a function), so a
cycle cannot hide behind a function-level import, and `from P import x` counts as depending on P's
face (its `__init__`), which Python runs first; inside a package, modules import their siblings as
`import P.x as x`, which does not go through the face; then each module is imported in a fresh
interpreter, so none depends on another having been imported first.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("caserecord", "scheduler", "visits", "transcription", "web")
# Which packages each package may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "caserecord": set(),
    "scheduler": {"caserecord"},
    "transcription": {"caserecord"},
    "visits": {"caserecord", "scheduler"},
    "web": {"caserecord", "scheduler", "transcription", "visits"},
}


@cache
def modules() -> dict[str, Path]:
    """Every module of the packages, by dotted name (migrations aside: Alembic loads them)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module of ours that `name` (a module, or a name inside one) is, if any."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports() -> dict[str, set[str]]:
    """For each module, the modules of ours it imports."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from P import x` runs P's face (its __init__) whatever x is, and x may be a module.
                targets.add(base)
                targets |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known}
        resolved = (_resolve(t, known) for t in targets)
        graph[name] = {t for t in resolved if t and t != name}
    return graph


def test_dependencies_point_one_way() -> None:
    wrong = []
    for name, targets in imports().items():
        here = name.split(".")[0]
        for target in targets:
            there = target.split(".")[0]
            if there != here and there not in ALLOWED[here]:
                wrong.append(f"{name} imports {target}: {here} may not depend on {there}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_module_imports_in_a_circle() -> None:
    graph = imports()
    # Tarjan's strongly connected components; a component of more than one module is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, "\n".join(" <-> ".join(c) for c in circles)


def test_the_reader_finds_the_imports_it_must() -> None:
    """The checks above are only as good as the import reader: it must see these edges."""
    graph = imports()
    assert "visits.lifecycle" in graph["visits.runtime"]
    assert "scheduler.walk_ins" in graph["visits.admission"]
    assert {"web.services", "web.problems"} <= graph["web.routing"]
    assert "caserecord.models" in graph["caserecord.notes"]
    # `from scheduler import walk_ins` reaches the package's face as well as the module.
    assert {"scheduler", "scheduler.walk_ins"} <= graph["visits.admission"]


def _import_alone(name: str) -> tuple[str, int, str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    return name, done.returncode, done.stderr[-2000:]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports_on_its_own(package: str) -> None:
    names = [n for n in modules() if n.split(".")[0] == package]
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [(n, err) for n, code, err in pool.map(_import_alone, names) if code != 0]
    assert not failed, "\n\n".join(f"{n}:\n{err}" for n, err in failed)
