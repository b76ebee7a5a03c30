"""Draw a jaxpr as a Graphviz graph (needs the optional ``pydot`` package).

Inputs are green boxes, outputs red, literals orange, constants dark green, primitives grey;
the bodies of nested calls (``jit``, ``cond`` branches, loop bodies) are dotted clusters.

Examples
--------
>>> import jax.numpy as jnp
>>> import brainstate
>>> try:
...     g = brainstate.transform.draw(lambda x: jnp.sin(x) + 1.0)(1.0)
... except ImportError as e:  # pydot is optional
...     print('pip install pydot' in str(e))
... else:
...     print('sin' in g.to_string())
True
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from jax.extend.core import ClosedJaxpr, DropVar, Jaxpr, JaxprEqn, Literal

from brainstate.transform._ir_utils import IdentityMap, ensure_jaxpr

__all__ = ["draw", "view_pydot", "draw_dot_graph"]

_STYLE = {
    "in": dict(shape="box", color="green", fontname="Courier", fontsize="10"),
    "out": dict(shape="box", color="red", fontname="Courier", fontsize="10"),
    "literal": dict(shape="box", color="orange", fontname="Courier", fontsize="10"),
    "const": dict(shape="box", color="darkgreen", fontname="Courier", fontsize="10"),
    "var": dict(shape="box", color="blue", fontname="Courier", fontsize="10"),
    "prim": dict(shape="box", color="grey", fontname="Courier", fontsize="10"),
    "cluster": dict(style="dotted", fontname="Courier", fontsize="12", labeljust="l"),
}


class MissingDependencyError(ImportError, NotImplementedError):
    """An optional package a drawing helper needs is not installed (also a
    ``NotImplementedError``, which upstream raised)."""

    __module__ = "brainstate.transform"


def _require(module: str, pip_name: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"{what} needs the optional package {pip_name!r}, which is not installed. Install it "
            f"with `pip install {pip_name}`"
            + (" (rendering also needs Graphviz's `dot` program)." if pip_name == "pydot" else ".")
        ) from e


def _sub_jaxprs(eqn: JaxprEqn) -> list[tuple[str, Jaxpr]]:
    """(label, jaxpr) of each jaxpr among the equation's params, in param order."""
    out = []
    for k, v in eqn.params.items():
        items = v if isinstance(v, tuple) else (v,)
        for i, item in enumerate(items):
            if isinstance(item, (Jaxpr, ClosedJaxpr)):
                j = item.jaxpr if isinstance(item, ClosedJaxpr) else item
                out.append((f"{k}[{i}]" if isinstance(v, tuple) else k, j))
    return out


class _Builder:
    def __init__(self, pydot: Any, collapse: bool, show_avals: bool) -> None:
        self.pydot = pydot
        self.collapse = collapse
        self.show_avals = show_avals
        self.count = 0
        self.names = IdentityMap()  # var -> short name (a Var's own str is its id)

    def _id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def _label(self, var: Any) -> str:
        if isinstance(var, Literal):
            return str(var.val)
        if var not in self.names:
            n, name = len(self.names), ""
            while True:
                name = chr(ord("a") + n % 26) + name
                n //= 26
                if n == 0:
                    break
            self.names[var] = name
        name = self.names[var]
        return f"{name}:{var.aval.str_short()}" if self.show_avals else name

    def node(self, graph: Any, kind: str, label: str) -> str:
        nid = self._id("n")
        graph.add_node(self.pydot.Node(nid, label=label, **_STYLE[kind]))
        return nid

    def source(self, graph: Any, atom: Any, env: IdentityMap) -> str:
        if isinstance(atom, Literal):
            return self.node(graph, "literal", self._label(atom))
        if atom not in env:  # a free variable of a body (should not happen in valid jaxprs)
            env[atom] = self.node(graph, "var", self._label(atom))
        return env[atom]

    def jaxpr(self, graph: Any, jaxpr: Jaxpr, env: IdentityMap, top: bool) -> list[str]:
        """Draw the equations; returns the node ids of the outputs."""
        for v in jaxpr.constvars:
            env[v] = self.node(graph, "const", self._label(v))
        for eqn in jaxpr.eqns:
            self.eqn(graph, eqn, env)
        outs = [self.source(graph, a, env) for a in jaxpr.outvars]
        if top:
            for a, nid in zip(jaxpr.outvars, outs):
                out = self.node(graph, "out", self._label(a))
                graph.add_edge(self.pydot.Edge(nid, out))
        return outs

    def eqn(self, graph: Any, eqn: JaxprEqn, env: IdentityMap) -> None:
        subs = _sub_jaxprs(eqn)
        nested = any(_sub_jaxprs(e) for _, j in subs for e in j.eqns)
        if subs and (not self.collapse or nested):
            return self._expanded(graph, eqn, subs, env)
        name = eqn.params.get("name")
        label = eqn.primitive.name + (f" ({name})" if isinstance(name, str) else "")
        nid = self.node(graph, "prim", label)
        for a in eqn.invars:
            graph.add_edge(self.pydot.Edge(self.source(graph, a, env), nid))
        for v in eqn.outvars:
            if isinstance(v, DropVar):
                continue
            env[v] = self.node(graph, "var", self._label(v))
            graph.add_edge(self.pydot.Edge(nid, env[v]))

    def _expanded(self, graph: Any, eqn: JaxprEqn, subs: list, env: IdentityMap) -> None:
        # A call node feeds every body; each body's inputs are drawn inside its cluster.
        call = self.node(graph, "prim", eqn.primitive.name)
        for a in eqn.invars:
            graph.add_edge(self.pydot.Edge(self.source(graph, a, env), call))
        outs = []
        for label, j in subs:
            cl = self.pydot.Cluster(self._id("c"), label=f"{eqn.primitive.name}: {label}",
                                    **_STYLE["cluster"])
            inner = IdentityMap()
            for v in j.invars:
                inner[v] = self.node(cl, "in", self._label(v))
                graph.add_edge(self.pydot.Edge(call, inner[v], style="dashed"))
            outs = self.jaxpr(cl, j, inner, False)
            graph.add_subgraph(cl)
        last = outs if len(outs) == len(eqn.outvars) else [call] * len(eqn.outvars)
        for v, src in zip(eqn.outvars, last):
            if isinstance(v, DropVar):
                continue
            env[v] = self.node(graph, "var", self._label(v))
            graph.add_edge(self.pydot.Edge(src, env[v]))


def draw_dot_graph(fn: Jaxpr | ClosedJaxpr, collapse_primitives: bool = True,
                   show_avals: bool = True) -> Any:
    """A ``pydot.Dot`` graph of a jaxpr.

    Parameters
    ----------
    fn : ClosedJaxpr or Jaxpr
        The program.
    collapse_primitives : bool
        When True, a nested call whose body holds only primitives is one node; when False
        every nested body is drawn as a cluster.
    show_avals : bool
        Add shape and dtype to the variable labels.

    Returns
    -------
    pydot.Dot

    Raises
    ------
    ImportError
        When ``pydot`` is not installed (the message gives the pip command); the error is
        also a ``NotImplementedError``.
    IRValidationError
        When ``fn`` is not a jaxpr.

    Notes
    -----
    Differs from upstream: every nested jaxpr (any primitive carrying one) can be expanded,
    and the missing dependency raises ``ImportError`` (upstream: ``NotImplementedError``).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> closed = jax.make_jaxpr(lambda x: jnp.cos(x) * 2.0)(1.0)
    >>> try:
    ...     g = brainstate.transform.draw_dot_graph(closed)
    ... except ImportError as e:
    ...     print('pip install pydot' in str(e))
    ... else:
    ...     print('cos' in g.to_string())
    True
    """
    jaxpr, _, _ = ensure_jaxpr(fn, "draw_dot_graph")
    pydot = _require("pydot", "pydot", "draw_dot_graph")
    b = _Builder(pydot, bool(collapse_primitives), bool(show_avals))
    g = pydot.Dot(graph_type="digraph")
    env = IdentityMap()
    for v in jaxpr.invars:
        env[v] = b.node(g, "in", b._label(v))
    b.jaxpr(g, jaxpr, env, True)
    return g


def draw(f: Callable, collapse_primitives: bool = True, show_avals: bool = True) -> Callable:
    """Wrap ``f`` so that calling the wrapper with example arguments returns its graph.

    Parameters
    ----------
    f : callable
        A JAX function; it may read and write brainstate ``State`` s (their values appear as
        extra inputs/outputs).
    collapse_primitives, show_avals : bool
        As :func:`draw_dot_graph`.

    Returns
    -------
    callable
        ``(*args, **kwargs) -> pydot.Dot``.

    Raises
    ------
    TypeError
        When ``f`` is not callable.
    ImportError
        When ``pydot`` is not installed (raised by ``draw`` itself).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> try:
    ...     drawer = brainstate.transform.draw(lambda x: x + 1.0)
    ... except ImportError:  # pydot is optional
    ...     drawer = lambda *args: None
    >>> callable(drawer)
    True
    """
    if not callable(f):
        raise TypeError(f"draw needs a callable, got {type(f).__name__}.")
    _require("pydot", "pydot", "draw")  # fail here, not at the first call

    def _inner_draw(*args: Any, **kwargs: Any) -> Any:
        from brainstate.transform._make_jaxpr import StatefulFunction
        closed = StatefulFunction(f, return_only_write=True).get_jaxpr(*args, **kwargs)
        return draw_dot_graph(closed, collapse_primitives, show_avals)

    return _inner_draw


def view_pydot(dot_graph: Any) -> None:
    """Show a graph from :func:`draw` in a Jupyter notebook (needs ``IPython`` and Graphviz).

    Raises
    ------
    ImportError
        When ``IPython`` is not installed.
    TypeError
        When ``dot_graph`` has no ``create_png`` method (not a pydot graph).

    Examples
    --------
    >>> import brainstate
    >>> brainstate.transform.view_pydot  # doctest: +ELLIPSIS
    <function view_pydot at ...>
    """
    if not hasattr(dot_graph, "create_png"):
        raise TypeError(f"view_pydot needs a pydot graph (from draw / draw_dot_graph), got "
                        f"{type(dot_graph).__name__}.")
    display = _require("IPython.display", "ipython", "view_pydot")
    display.display(display.Image(dot_graph.create_png()))
