"""Depth-first traversal: ``iter_leaf``, ``iter_node`` and the collectors behind ``states``/``nodes``.

The order is the flatten order (node attributes sorted by name, pytree children in JAX order),
every container (graph node or pytree) is entered once by identity, so cycles terminate, and a
``State`` is reported once, at its first pre-order path. Depth (``allowed_hierarchy``) starts at
0 at the root and grows by one only when entering a graph node: states held by the root are at
level 0, a submodule and the states it holds directly are at level 1. Traversal stops below the
upper bound.
"""

from __future__ import annotations

import sys
from typing import Any, Iterator

from brainstate import _impl

from . import _registry as R

_core = _impl.core

__all__ = ["iter_leaf", "iter_node"]


def _check_hierarchy(allowed_hierarchy: Any) -> tuple:
    try:
        lo, hi = allowed_hierarchy
        lo, hi = int(lo), int(hi)
    except (TypeError, ValueError):
        raise ValueError(
            f"allowed_hierarchy must be a pair (lo, hi) of ints, got {allowed_hierarchy!r}."
        ) from None
    return lo, hi


def _children(x: Any, kind: int, link: Any) -> tuple:
    """``(keys, values)`` of a container at ``link`` (a path link, see _registry)."""
    if kind == R.GRAPH_NODE:
        keys, values, _ = R.node_children_at(R._NODE_IMPLS[type(x)], x, link)
        return keys, values
    if kind == R.NONE:
        return (), ()
    return R.pytree_children_at(x, link)


def _walk(root: Any, lo: int, hi: int, want_leaves: bool) -> Iterator[tuple]:
    """Shared generator: leaves (states and statics) or graph nodes (post-order).

    Iterative (graph depth is bounded by memory only): one frame per container being walked,
    ``[iterator over (key, child), link, level, kind, the container, its path or None, run]``.
    Graph nodes yield their own path (iter_node), so their frames carry it as a tuple; leaf
    walks carry links and build a frame's path once, when a leaf below needs it. ``run``
    counts consecutive pytree levels: past ``sys.getrecursionlimit()`` the walk raises
    RecursionError, as the core's walks do.
    """
    visited: set = set()
    yielded_states: set = set()
    classify = R.classify
    if hi < 0:
        return
    kind = classify(root)
    if kind != R.GRAPH_NODE and kind != R.PYTREE and kind != R.NONE:
        if want_leaves and lo <= 0:
            yield (), root
        return
    limit = sys.getrecursionlimit()
    visited.add(id(root))
    stack = [[zip(*_children(root, kind, None)), None, 0, kind, root, (),
              0 if kind == R.GRAPH_NODE else 1]]
    while stack:
        frame = stack[-1]
        it, link, level, kind, value, path, run = frame
        for k, v in it:
            child_kind = classify(v)
            child_level = level + 1 if child_kind == R.GRAPH_NODE else level
            if child_level > hi:
                continue
            if child_kind == R.GRAPH_NODE or child_kind == R.PYTREE or child_kind == R.NONE:
                if id(v) in visited:
                    continue
                visited.add(id(v))
                if child_kind == R.GRAPH_NODE:
                    child_run = 0
                elif run >= limit:
                    raise RecursionError("maximum recursion depth exceeded while walking a graph")
                else:
                    child_run = run + 1
                child = (link, k)
                stack.append([zip(*_children(v, child_kind, child)), child, child_level,
                              child_kind, v, None if want_leaves else (*path, k), child_run])
                break  # walk the child; this frame's loop resumes after it
            if want_leaves and child_level >= lo:
                if child_kind == R.STATE:
                    if id(v) in yielded_states:
                        continue
                    yielded_states.add(id(v))
                if path is None:
                    path = frame[5] = R.link_path(link)
                yield (*path, k), v
        else:  # every child walked: the container is done
            stack.pop()
            if not want_leaves and kind == R.GRAPH_NODE and level >= lo:
                yield path, value


def iter_leaf(node: Any, allowed_hierarchy: tuple = (0, R.MAX_INT)) -> Iterator[tuple]:
    """Yield ``(path, value)`` for every leaf of a graph: each state and each static value.

    Depth first in flatten order; every container is entered once (so cycles terminate) and a
    state shared by several slots is yielded once, at its first path. ``None`` and empty
    containers yield nothing.

    Parameters
    ----------
    node : graph node or pytree
        The root.
    allowed_hierarchy : (int, int), default (0, MAX_INT)
        Only leaves whose depth ``level`` satisfies ``lo <= level <= hi``; depth grows by one
        per graph node entered (pytree nesting does not count).

    Yields
    ------
    (tuple, Any)
        The path and the value.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Cell(brainstate.graph.Node):
    ...     def __init__(self):
    ...         self.w = brainstate.ParamState(jnp.ones(2))
    ...         self.n = 3
    >>> [path for path, _ in brainstate.graph.iter_leaf(Cell())]
    [('n',), ('w',)]
    """
    lo, hi = _check_hierarchy(allowed_hierarchy)
    yield from _walk(node, lo, hi, True)


def iter_node(node: Any, allowed_hierarchy: tuple = (0, R.MAX_INT)) -> Iterator[tuple]:
    """Yield ``(path, graph_node)`` for every graph node, children before parents (root last).

    Each node is yielded once, however many slots hold it.

    Parameters
    ----------
    node : graph node or pytree
        The root.
    allowed_hierarchy : (int, int), default (0, MAX_INT)
        Only nodes at depth ``lo <= level <= hi`` (the root is at depth 0).

    Yields
    ------
    (tuple, Any)
        The path (``()`` for the root) and the node.
    """
    lo, hi = _check_hierarchy(allowed_hierarchy)
    yield from _walk(node, lo, hi, False)


# --- the collectors behind states() and nodes() ---------------------------------------------------


def collect_states(root: Any, lo: int, hi: int, accept: Any = None) -> dict:
    """``{path: state}`` in iter_leaf order (first path of each state), as a plain dict.

    With ``accept`` (a callable ``state class -> bool``, memoised per class) only states whose
    class it accepts are kept. This is the hot path of ``Module.states()``: the loop lives in
    the core (``collect_states``).
    """
    return _core.collect_states(root, lo, hi, accept)


def collect_nodes(root: Any, lo: int, hi: int) -> dict:
    """``{path: graph_node}`` in iter_node order (post-order, root last)."""
    return dict(_walk(root, lo, hi, False))
