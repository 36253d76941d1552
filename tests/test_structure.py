"""The package's shape: no import cycles among docvision's modules, no module over 400 lines.

Imports are read from the source, everywhere (module level, inside functions, TYPE_CHECKING blocks).
``from package import name`` counts as importing ``package`` and, when it is a module, ``package.name``:
a module that takes a sibling through its package depends on the package's __init__ too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "docvision"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(tree: ast.AST, runtime: bool = False):
    """Import nodes; with ``runtime`` only those that run (``if TYPE_CHECKING:`` bodies left out)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if runtime and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def graph(runtime: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text()), runtime):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    edges = graph()
    assert "docvision.run.engine" in edges and edges["docvision.cli.render"]  # the walk sees imports
    assert cycles(edges) == []


def test_the_walk_would_see_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT.parent)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_comment_cites_a_file_outside_the_repository():
    cited = [str(p.relative_to(ROOT.parent)) for p in ROOT.rglob("*.py") if "DESIGN.md" in p.read_text()]
    assert cited == []


def test_data_moves_down_the_layers():
    """cli -> session -> run -> tasks -> (ingest, models) -> document: nothing imports a layer above it when
    it runs (a type hint may name a type from above: ``if TYPE_CHECKING`` imports never run)."""
    order = ["docvision.cli", "docvision.session", "docvision.run", "docvision.tasks"]
    edges = graph(runtime=True)
    for name, targets in edges.items():
        for layer, above in ((order[i], order[:i]) for i in range(len(order))):
            if name.startswith(("docvision.ingest", "docvision.models")) or name.startswith(layer):
                upper = above if name.startswith(layer) else order
                bad = [t for t in targets if t.startswith(tuple(upper))]
                assert not bad, (name, bad)
