"""The house stays in order: imports between rooms only go down the layers README's Layout names, other rooms
reach `training` and `data` only through their packages, and no two files import each other (directly or
round a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

ROOMS = {"studies": "studies", "results": "results", "search_spaces": "search_spaces", "training": "training",
         "data": "data", "storage": "storage"}
# What each room may import from the others (the package root's errors module is below everything).
ALLOWED = {
    "storage": {"errors"},
    "search_spaces": {"errors"},
    "data": {"errors"},
    "training": {"errors", "data"},
    "results": {"errors", "storage", "search_spaces", "training", "data"},
    "studies": {"errors", "storage", "search_spaces", "training", "data", "results"},
}
# Rooms whose modules nobody outside reaches past the package's `__init__`.
SEALED = ("training", "data")


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the installed package (sub-packages included)."""
    found = {}
    for room, folder in ROOMS.items():
        for path in (REPO / folder).rglob("*.py"):
            dotted = ".".join(path.relative_to(REPO / folder).with_suffix("").parts)
            found[f"adamtune.{room}.{dotted}".removesuffix(".__init__")] = path
    for path in (REPO / "adamtune").glob("*.py"):
        found[f"adamtune.{path.stem}".removesuffix(".__init__")] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("adamtune")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("adamtune"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}
    return out


def room_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    return "errors" if module.startswith("adamtune.errors") else "root"


def test_rooms_import_only_downwards():
    wrong = []
    for name, path in modules().items():
        room = room_of(name)
        if room not in ALLOWED:
            continue
        for target in imports_of(name, path):
            other = room_of(target)
            if other != room and other not in ALLOWED[room]:
                wrong.append(f"{name} imports {target} ({room} -> {other})")
    assert not wrong, "\n".join(wrong)


def test_other_rooms_import_training_and_data_only_through_their_packages():
    known = modules()
    callers = {**known, **{f"benchmarks.{p.stem}": p for p in (REPO / "benchmarks").glob("*.py")}}
    wrong = []
    for name, path in callers.items():
        for target in imports_of(name, path):
            room = room_of(target)
            if (room in SEALED and room_of(name) != room and target in known and target != f"adamtune.{room}"):
                wrong.append(f"{name} imports {target}: import it from adamtune.{room}")
    assert not wrong, "\n".join(wrong)


def test_no_file_imports_itself_round_a_circle():
    known = modules()
    graph = {n: {t for t in imports_of(n, p) if t in known and t != n} for n, p in known.items()}
    # a package's __init__ re-exporting its own modules is not a circle of files
    graph = {n: {t for t in ts if not n.startswith(t + ".") and not t.startswith(n + ".")} for n, ts in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, "import circle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]) \
                if nxt in trail else f"import circle through {nxt}"
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
