"""Drawing jaxprs: the missing-dependency path, and the graph built (with a stand-in pydot)."""

from __future__ import annotations

import sys
import types

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import draw, draw_dot_graph, view_pydot
from brainstate.transform._ir_utils import IRValidationError


def _fake_pydot():
    """A recording stand-in with the pydot API the drawer uses."""
    mod = types.ModuleType("pydot")

    class Node:
        def __init__(self, name, **attrs):
            self.name, self.attrs = name, attrs

    class Edge:
        def __init__(self, src, dst, **attrs):
            self.src, self.dst, self.attrs = src, dst, attrs

    class Graph:
        def __init__(self, name="g", **attrs):
            self.name, self.attrs = name, attrs
            self.nodes, self.edges, self.subgraphs = [], [], []

        def add_node(self, n):
            self.nodes.append(n)

        def add_edge(self, e):
            self.edges.append(e)

        def add_subgraph(self, g):
            self.subgraphs.append(g)

        def all_nodes(self):
            return self.nodes + [n for s in self.subgraphs for n in s.all_nodes()]

        def labels(self):
            return [n.attrs["label"] for n in self.all_nodes()]

    mod.Node, mod.Edge, mod.Dot, mod.Cluster = Node, Edge, Graph, Graph
    return mod


@pytest.fixture
def fake_pydot(monkeypatch):
    mod = _fake_pydot()
    monkeypatch.setitem(sys.modules, "pydot", mod)
    return mod


def _f(x):
    y = jax.jit(lambda a: jnp.sin(a) * 2.0)(x)
    return jax.lax.cond(y.sum() > 0, jnp.cos, lambda a: jax.jit(jnp.tanh)(a), y) + 1.0


def test_missing_pydot_raises_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydot", None)  # import pydot -> ImportError
    closed = jax.make_jaxpr(_f)(jnp.ones(3))
    with pytest.raises(ImportError, match=r"draw_dot_graph needs the optional package 'pydot'.*"
                                          r"pip install pydot"):
        draw_dot_graph(closed)
    with pytest.raises(NotImplementedError, match=r"draw needs the optional package 'pydot'"):
        draw(_f)  # fails before any tracing


def test_graph_structure_collapsed(fake_pydot):
    closed = jax.make_jaxpr(_f)(jnp.ones(3))
    g = draw_dot_graph(closed)
    labels = g.labels()
    # the jit body holds only primitives: one node; the cond holds a nested jit: expanded
    assert "jit (<lambda>)" in labels and "sin" not in labels
    assert "cond" in labels and "cos" in labels and "jit (tanh)" in labels
    assert [s.attrs["label"] for s in g.subgraphs] == ["cond: branches[0]", "cond: branches[1]"]
    assert any(n.attrs["color"] == "red" for n in g.nodes)  # an output node
    assert any(n.attrs["color"] == "green" and n.attrs["label"].endswith("float32[3]")
               for n in g.nodes)
    names = {n.name for n in g.all_nodes()}
    assert all(e.src in names and e.dst in names for e in g.edges)  # no dangling edges


def test_graph_structure_expanded_and_no_avals(fake_pydot):
    g = draw(_f, collapse_primitives=False, show_avals=False)(jnp.ones(3))
    labels = g.labels()
    assert "sin" in labels and "tanh" in labels
    assert not any("float32" in lb for lb in labels)


def test_graph_of_loops_and_states(fake_pydot):
    s = brainstate.State(jnp.zeros(3))

    def f(x):
        s.value = s.value + x
        c, _ = jax.lax.scan(lambda c, e: (c + e, None), 0.0, x)
        w = jax.lax.while_loop(lambda v: v < 3.0, lambda v: v + 1.0, c)
        return w

    g = draw(f, collapse_primitives=False)(jnp.ones(3))
    labels = g.labels()
    assert "scan" in labels and "while" in labels
    assert {s.attrs["label"] for s in g.subgraphs} >= {"scan: jaxpr", "while: body_jaxpr",
                                                       "while: cond_jaxpr"}
    assert float(s.value.sum()) == 0.0  # drawing traced only


def test_draw_errors(fake_pydot):
    with pytest.raises(TypeError, match="draw needs a callable, got int"):
        draw(3)
    with pytest.raises(IRValidationError, match="draw_dot_graph expects a jax Jaxpr"):
        draw_dot_graph("x")
    with pytest.raises(TypeError, match="view_pydot needs a pydot graph"):
        view_pydot(3)


def test_view_pydot_without_ipython(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    graph = types.SimpleNamespace(create_png=lambda: b"")
    with pytest.raises(ImportError, match=r"view_pydot needs the optional package 'ipython'"):
        view_pydot(graph)


def test_real_pydot():
    pydot = pytest.importorskip("pydot")
    g = draw(_f)(jnp.ones(3))
    assert isinstance(g, pydot.Dot)
    assert "cond" in g.to_string()
