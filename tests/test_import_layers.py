"""The package's import graph: no module imports another that (directly or not) imports it back
while loading, and each layer imports only from the layers listed above it in
docs/ARCHITECTURE.md ("Layers").

Only imports that run while a module loads count (module level, outside ``if TYPE_CHECKING``);
an import inside a function runs later, when every module is loaded. Importing ``a.b.c`` loads
the packages ``a.b`` first, so it counts as importing them too.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import brainstate

ROOT = pathlib.Path(brainstate.__file__).parent

# docs/ARCHITECTURE.md, "Layers" (listed from the bottom up): a layer may import lower numbers
LAYERS = {
    "_core": 0, "_core_py": 0, "_core_constants": 0, "_impl": 0, "_jax_internals": 0,
    "graph": 2, "_wiring": 2, "transform": 3, "random": 4, "checkpoint": 4, "nn": 5, "_deprecated": 6,
}
STATE_LAYER = 1  # everything else: the State family, hooks, signatures, environ, util, ...


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ("brainstate",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _load_time_imports(tree: ast.Module) -> list[ast.stmt]:
    """The import statements of a module body that run while it loads."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.dump(node.test):
            todo[:0] = node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo[:0] = node.body + [s for h in node.handlers for s in h.body] + node.orelse
    return out


def _absolute(module: str, is_package: bool, target: str | None, level: int) -> str:
    if not level:
        return target or ""
    base = module.split(".")[: len(module.split(".")) - (0 if is_package else 1) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it loads while loading}`` inside the package."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        for node in _load_time_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _absolute(name, is_package, node.module, node.level)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            for target in targets:
                parts = target.split(".")
                for i in range(2, len(parts) + 1):  # the packages on the way load first
                    step = ".".join(parts[:i])
                    if step in mods and step != name and not name.startswith(step + "."):
                        edges[name].add(step)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def layer(module: str) -> int | None:
    parts = module.split(".")
    return None if len(parts) == 1 else LAYERS.get(parts[1], STATE_LAYER)


def upward(edges: dict[str, set[str]]) -> list[str]:
    """``"module -> target"`` for every import of a higher layer than the importer's."""
    out = []
    for module, targets in edges.items():
        for target in targets:
            low, high = layer(module), layer(target)
            if low is not None and high is not None and high > low:
                out.append(f"{module} -> {target}")
    return sorted(out)


def test_no_module_imports_itself_back_while_loading():
    assert cycles(import_graph()) == []


def test_layers_import_only_downward():
    assert upward(import_graph()) == []


def test_the_checks_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    # real edges are seen: a plain import, and the package a submodule import loads first
    assert "brainstate._state" in graph["brainstate.graph._operations"]
    assert "brainstate.util" in graph["brainstate.graph._operations"]  # via util.filter
    graph["brainstate._impl"] = graph["brainstate._impl"] | {"brainstate.nn"}
    assert upward(graph) == ["brainstate._impl -> brainstate.nn"]


@pytest.mark.parametrize("module", ["brainstate._impl", "brainstate._jax_internals"])
def test_the_bottom_layer_imports_nothing_above_it(module):
    assert all(layer(t) == 0 for t in import_graph()[module]), import_graph()[module]
