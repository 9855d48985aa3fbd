"""The import graph of lsp_server/ and engine/, read from the source with `ast`.

Every import counts: top-level ones, those under `TYPE_CHECKING` and those inside functions.
`from a.b import c` is an edge to `a.b.c` when that is a module, else to `a.b`; relative
imports are resolved; no implicit edge is added from a module to its parent packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lsp_server", "engine")
CONTEXT = "lsp_server.context"


def _module_names() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is one of our modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    edges: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target is not None:
                    edges.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                drop = node.level - 1
                base_parts = package[: len(package) - drop] if drop else package
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if alias.name != "*" and full in modules:
                    edges.add(full)
                    continue
                target = _resolve(base, modules)
                if target is not None:
                    edges.add(target)
    edges.discard(module)
    return edges


def _graph() -> dict[str, set[str]]:
    modules = _module_names()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle from each strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        # Iterative Tarjan: each frame is (node, iterator over its successors).
        nonlocal counter
        frames = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while frames:
            node, successors = frames[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    frames.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            frames.pop()
            if frames:
                parent = frames[-1][0]
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
                    components.append(component)

    for name in sorted(graph):
        if name not in index:
            visit(name)

    cycles = []
    for component in components:
        members = set(component)
        start = min(component)
        # Shortest path back to `start` inside the component (breadth first).
        previous: dict[str, str] = {}
        queue = [start]
        found: str | None = None
        while queue and found is None:
            node = queue.pop(0)
            for succ in sorted(graph[node] & members):
                if succ == start:
                    found = node
                    break
                if succ not in previous:
                    previous[succ] = node
                    queue.append(succ)
        assert found is not None
        path = [found]
        while path[-1] != start:
            path.append(previous[path[-1]])
        cycles.append([*reversed(path), start])
    return cycles


def test_graph_sees_the_packages() -> None:
    graph = _graph()
    assert "lsp_server.cli" in graph and "engine.generate" in graph
    assert "lsp_server.context.assemble" in graph
    # A sanity check of the edges themselves: the CLI entry point reaches the server.
    assert "lsp_server.server" in graph["lsp_server.cli"]


def test_edges_follow_the_rules(tmp_path: Path) -> None:
    files = {
        "p/__init__.py": "",
        "p/a.py": "",
        "p/b.py": "thing = 1\n",
        "p/sub/__init__.py": "from . import c\n",
        "p/sub/c.py": (
            "from typing import TYPE_CHECKING\n"
            "from .. import a\n"  # a module: an edge to it
            "from ..b import thing\n"  # a name in p.b: an edge to p.b
            "import os.path\n"  # outside the packages: no edge
            "if TYPE_CHECKING:\n"
            "    from p.sub import d\n"
            "def f():\n"
            "    import p.sub.d\n"
        ),
        "p/sub/d.py": "from . import not_a_module\n",  # a name in p.sub
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    modules = {"p": tmp_path / "p/__init__.py", "p.a": tmp_path / "p/a.py",
               "p.b": tmp_path / "p/b.py", "p.sub": tmp_path / "p/sub/__init__.py",
               "p.sub.c": tmp_path / "p/sub/c.py", "p.sub.d": tmp_path / "p/sub/d.py"}
    assert _imports("p.sub", modules["p.sub"], modules) == {"p.sub.c"}
    assert _imports("p.sub.c", modules["p.sub.c"], modules) == {"p.a", "p.b", "p.sub.d"}
    assert _imports("p.sub.d", modules["p.sub.d"], modules) == {"p.sub"}


def test_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_context_engine_imports_nothing_else_of_the_server() -> None:
    bad = [
        f"{module} -> {target}"
        for module, targets in sorted(_graph().items())
        if module == CONTEXT or module.startswith(CONTEXT + ".")
        for target in sorted(targets)
        if (target == "lsp_server" or target.startswith("lsp_server."))
        and not (target == CONTEXT or target.startswith(CONTEXT + "."))
    ]
    assert not bad, "lsp_server/context imports the rest of lsp_server:\n" + "\n".join(bad)
