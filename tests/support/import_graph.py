"""The import graph of ``trioproxy``, read from the source (no module is executed).

Edges are the imports that run: module-level and inside functions, not those under
``if TYPE_CHECKING:`` (annotations only). ``from package import name`` is an edge to the submodule
when ``name`` is one, else to the package (its ``__init__``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import trioproxy

__all__ = ["ROOT", "SUBLAYERS", "cycles", "import_graph", "modules", "package_of"]

ROOT = Path(trioproxy.__file__).parent


def modules() -> dict[str, Path]:
    """Every module of ``trioproxy``: dotted name → file."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run (skipping ``if TYPE_CHECKING:`` bodies)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module → the ``trioproxy`` modules it imports when it runs."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in known)
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("trioproxy"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                edges.add(sub if sub in known else target)
        edges.discard(name)
        graph[name] = {e for e in edges if e in known}
    return graph


#: sub-packages that are layers of their own (README "How it is built"): pure code below the package
#: that holds them, which packages that may not import the holder may import
SUBLAYERS = ("upstream.routing",)


def package_of(module: str) -> str:
    """``trioproxy.core.run`` → ``core``; ``trioproxy.errors`` → ``errors``; the root → ``trioproxy``;
    a module of a sub-layer → the sub-layer (``trioproxy.upstream.routing.plan`` → ``upstream.routing``)."""
    parts = module.split(".")
    for sublayer in SUBLAYERS:
        depth = sublayer.count(".") + 2
        if ".".join(parts[1:depth]) == sublayer:
            return sublayer
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
