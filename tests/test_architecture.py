"""The package's layering, read from its source: no import cycles, and imports only flow down the data flow.

Rooms, in the order data flows through them: shared words (errors, labels, state, log, stderr, theory;
the demo clip's package) → perception → mapping → music → outputs → live → tools and train → cli.
A module may import from its own room and earlier ones. ``cli`` (and ``__main__``) may import anything;
``tools`` and ``train`` anything but ``cli``. Every import counts: top-level, inside functions, and under
``TYPE_CHECKING`` (a type-only import still couples the rooms).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "emobridge"
ROOT = Path(__file__).resolve().parent.parent / "daemon"

SHARED = {"errors", "labels", "state", "log", "stderr", "theory", "demo"}  # demo: the clip's package, imports nothing
ORDER = {"shared": 0, "perception": 1, "mapping": 2, "music": 3, "outputs": 4, "live": 5, "tools": 6, "train": 6,
         "cli": 7}


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """``emobridge.x.y`` -> its file, for every module under *root* (a package is its ``__init__.py``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join([PACKAGE, *parts])] = path
    return names


def imported(module: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that *module* imports anywhere in its file, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(part for part in (base, node.module) if part)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import x`: x may be a module
    # A module's own packages are already loading whenever it runs: an edge to them is no cycle.
    own = {module.rsplit(".", n)[0] for n in range(module.count(".") + 1)}
    return {owner(name, modules) for name in found if owner(name, modules)} - own


def owner(name: str, modules: set[str]) -> str | None:
    """The module that *name* is or lives in (``emobridge.labels.EMOTIONS`` -> ``emobridge.labels``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    names = module_names(root)
    return {module: imported(module, path, set(names)) for module, path in names.items()}


def room(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or parts[0] in SHARED:
        return "shared"
    if parts[0] in ("cli", "__main__"):
        return "cli"
    if parts[0] in ORDER:
        return parts[0]
    raise AssertionError(f"{module} belongs to no room: add it to the rooms in {Path(__file__).name}")


def may_import(source: str, target: str) -> bool:
    if source == "cli":
        return True
    return target != "cli" and ORDER[target] <= ORDER[source]


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} ({room(module)}) imports {target} ({room(target)})"
                  for module, targets in graph.items() for target in targets
                  if not may_import(room(module), room(target)))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each group of modules that import each other (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = {stack.pop()}
            while node not in group:
                group.add(stack.pop())
            if len(group) > 1:
                found.append(cycle_in(graph, group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A path start → … → start inside one strongly connected *group* (shortest, by breadth-first search)."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{group} is not strongly connected")


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_sees_function_level_type_checking_and_relative_imports(graph):
    assert "emobridge.live.daemon" in graph["emobridge.cli"]                # inside cmd_run
    assert "emobridge.perception.emotion" in graph["emobridge.tools.bench"]  # under TYPE_CHECKING and in run_bench
    assert "emobridge.errors" in graph["emobridge.labels"]                   # `from .errors import ...`
    assert "emobridge.demo" in graph["emobridge.cli"]                        # `from .demo import ...`, a package


def test_no_module_imports_itself_back(graph):
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" → ".join(cycle) for cycle in found)


def test_imports_follow_the_data_flow(graph):
    found = layering_violations(graph)
    assert not found, "imports against the data flow:\n" + "\n".join(found)


def test_the_checks_catch_what_they_are_for(tmp_path):
    """A made-up package that breaks every rule once, and does what is allowed once each."""
    files = {
        "labels.py": "from .perception import faces\n",                       # shared words import a stage
        "perception/__init__.py": "",
        "perception/faces.py": "def f():\n    from ..tools import bench\n",   # a stage imports a tool, in a function
        "mapping/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..outputs import osc\n",
        "outputs/__init__.py": "",
        "outputs/osc.py": "from ..mapping import x\n",                        # allowed: outputs come after mapping
        "tools/__init__.py": "",
        "tools/bench.py": "from ..train import model\nfrom .. import cli\n",   # train is allowed, cli is not
        "train/__init__.py": "",
        "train/model.py": "import emobridge.tools.bench\n",                   # allowed, but closes a cycle
        "cli.py": "from .tools import bench\nfrom .live import daemon\n",
        "live/__init__.py": "",
        "live/daemon.py": "from .. import cli\n",                              # a cycle through cli, and a violation
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    made_up = import_graph(tmp_path)
    assert layering_violations(made_up) == [  # `from .perception import faces` runs perception/__init__ too
        "emobridge.labels (shared) imports emobridge.perception (perception)",
        "emobridge.labels (shared) imports emobridge.perception.faces (perception)",
        "emobridge.live.daemon (live) imports emobridge.cli (cli)",
        "emobridge.mapping (mapping) imports emobridge.outputs (outputs)",
        "emobridge.mapping (mapping) imports emobridge.outputs.osc (outputs)",
        "emobridge.perception.faces (perception) imports emobridge.tools (tools)",
        "emobridge.perception.faces (perception) imports emobridge.tools.bench (tools)",
        "emobridge.tools.bench (tools) imports emobridge.cli (cli)",
    ]
    # cli, live.daemon, tools.bench and train.model all reach each other: one group, reported by one cycle
    assert sorted(cycles(made_up)) == [
        ["emobridge.cli", "emobridge.live.daemon", "emobridge.cli"],
        ["emobridge.mapping", "emobridge.outputs.osc", "emobridge.mapping"],
    ]
