"""The floor plan, checked from the import graph: no import cycles among first-party modules, the
desktop reaches the engine only through its allowed surface, the engine and training never import the
desktop, and the setup side stays torch-free.

The graph is read with ``ast`` from the source files (nothing is imported, so a test cannot pass
because a module happened to be loaded already). Every ``import`` statement counts, at module level
and inside functions alike: a function-level import is still a dependency (it runs on the first
call, PyInstaller must bundle it, a reader must know it), and a cycle through one is still a
circle in the design. Importing a submodule also runs its parent packages' ``__init__``; those
implicit edges are not drawn (each ``__init__`` here is a docstring or a cheap re-export).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "desktop", "training")


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    names: tuple[str, ...]  # for ``from X import a, b``; empty for ``import X``
    module_level: bool
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = modules()[importer].name == "__init__.py"
    base = importer.split(".")[: len(importer.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _first_party(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


@cache
def edges() -> tuple[Edge, ...]:
    found = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(), str(path))
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [(alias.name, ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, node)
                targets = []
                for alias in node.names:  # ``from pkg import submodule`` is an edge to the submodule
                    sub = f"{base}.{alias.name}"
                    targets.append((sub, ()) if sub in modules() else (base, (alias.name,)))
            else:
                continue
            for target, names in targets:
                if _first_party(target) or target.split(".")[0] == "torch":
                    found.append(Edge(name, target, names, id(node) in top, node.lineno))
    return tuple(found)


def _graph(module_level_only: bool = False) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules()}
    for edge in edges():
        if edge.imported in modules() and (edge.module_level or not module_level_only):
            graph[edge.importer].add(edge.imported)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
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
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_code() -> None:
    """Guards the checks below against reading nothing: known edges of each kind are found."""
    graph = _graph()
    assert "engine.protocol" in graph["desktop.assistant"]  # module level
    assert "engine.worker" in graph["desktop.engine_client"]  # inside a function
    assert "engine.minigpt4.converter" in graph["engine.store.conversion_process"]  # from pkg import module
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "first-party modules import each other in a circle:\n" + "\n".join(" <-> ".join(c) for c in cycles)


# The engine's surface for the desktop process (README, "Layout"). The desktop talks to the engine
# process in protocol messages over a pipe; it may start that process, read pictures as the engine
# does, run the torch-free setup side, and use perception's pure helpers. Never the torch side
# (engine.minigpt4: it would load torch into the UI process) nor the worker's internals.
DESKTOP_MAY_IMPORT: dict[str, frozenset[str] | None] = {  # module -> the names allowed (None: all)
    "engine": None,
    "engine.protocol": None,
    "engine.image_io": None,
    "engine.perception.reading_order": None,
    "engine.perception.speech_recognition": frozenset(
        {"SAMPLE_RATE", "NothingHeard", "check_audible", "SpeechInputUnavailable", "default_model_path"}),
    "engine.handle": None,  # EngineHandle, run_in_thread: our end of the pipe
    "engine.worker": frozenset({"serve", "spawn_worker"}),
}


def _desktop_may_import(edge: Edge) -> bool:
    if edge.imported.startswith("engine.store.") or edge.imported == "engine.store":
        return True
    if edge.imported not in DESKTOP_MAY_IMPORT:
        return False
    allowed = DESKTOP_MAY_IMPORT[edge.imported]
    return allowed is None or (bool(edge.names) and set(edge.names) <= allowed)


def test_desktop_reaches_the_engine_only_through_its_surface() -> None:
    wrong = [f"{modules()[e.importer].relative_to(ROOT)}:{e.line} imports {e.imported} {list(e.names) or ''}"
             for e in edges() if e.importer.startswith("desktop") and e.imported.startswith("engine")
             and not _desktop_may_import(e)]
    assert not wrong, "the desktop goes past the engine's surface:\n" + "\n".join(wrong)


def test_the_engine_and_training_never_import_the_desktop() -> None:
    """The desktop is built on the engine, never the other way round: the engine process, its CLI and
    training run without the app (and without Qt)."""
    wrong = [f"{modules()[e.importer].relative_to(ROOT)}:{e.line} imports {e.imported}" for e in edges()
             if e.importer.split(".")[0] in ("engine", "training") and e.imported.split(".")[0] == "desktop"]
    assert not wrong, "the engine side reaches up into the desktop:\n" + "\n".join(wrong)


def test_the_rule_catches_a_torch_side_import() -> None:
    assert not _desktop_may_import(Edge("desktop.x", "engine.minigpt4.loading", ("load_model",), True, 1))
    assert not _desktop_may_import(Edge("desktop.x", "engine.worker", ("failure_for",), False, 1))
    assert not _desktop_may_import(Edge("desktop.x", "engine.worker", (), True, 1))  # import engine.worker
    assert _desktop_may_import(Edge("desktop.x", "engine.store.catalogue", ("CATALOGUE",), True, 1))


# Modules that run in the desktop process or the CLI before any model is loaded: importing them
# must not import torch (seconds of start-up and hundreds of MB in a process that never needs it).
TORCH_FREE_MODULES = ("engine", "engine.__main__", "engine.protocol", "engine.handle", "engine.image_io",
                      "engine.worker")
TORCH_FREE_PACKAGES = ("engine.perception", "engine.store", "desktop")


def _torch_free(module: str) -> bool:
    return module in TORCH_FREE_MODULES or any(module == p or module.startswith(p + ".") for p in TORCH_FREE_PACKAGES)


def test_the_setup_side_and_the_desktop_do_not_import_torch_at_module_level() -> None:
    graph = _graph(module_level_only=True)
    torch_at_top = {e.importer for e in edges() if e.imported.split(".")[0] == "torch" and e.module_level}
    wrong = []
    for start in filter(_torch_free, modules()):
        seen, todo, via = {start}, [start], {start: None}
        while todo:
            node = todo.pop()
            if node in torch_at_top:
                path = [node]
                while via[path[-1]] is not None:
                    path.append(via[path[-1]])
                wrong.append(" -> ".join(reversed(path)) + " -> torch")
                break
            for nxt in graph[node] - seen:
                seen.add(nxt)
                via[nxt] = node
                todo.append(nxt)
    assert not wrong, "torch imported at module level by:\n" + "\n".join(wrong)
