"""``graph_to_tree`` / ``tree_to_graph``: graph nodes inside a pytree <-> pure pytrees.

A mapping transform (``vmap``, ``eval_shape``...) can only move pytrees of arrays. ``graph_to_tree``
replaces every graph node leaf of a pytree by a :class:`NodeStates` (its ``GraphDef`` as static
structure, its state mappings as leaves), in one split context so objects shared between the
nodes stay shared; ``tree_to_graph`` rebuilds them in one merge context.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from brainstate._error import TraceContextError
from brainstate._state import State
from brainstate.util import FlattedDict

from . import _registry as R
from ._context import MergeContext, SplitContext, merge_context, split_context
from ._graphdef import GraphDef
from ._node import Node
from ._reftrack import RefMap
from ._walk import iter_leaf, iter_node

__all__ = ["graph_to_tree", "tree_to_graph", "NodeStates"]


class _Missing:
    """The "no prefix given" sentinel (a pytree leaf, so it broadcasts over any tree)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Missing"


Missing = _Missing()


class NodeStates:
    """A pytree standing for a graph node: its ``GraphDef`` (static) and state mappings (leaves).

    Parameters
    ----------
    _graphdef : GraphDef or None
        The node's structure (``None`` for prefix-only instances).
    states : tuple
        The state mappings (or prefixes).
    metadata : Any
        Static data carried along (part of the treedef).
    """

    __module__ = "brainstate.graph"
    __slots__ = ("_graphdef", "states", "metadata")

    def __init__(self, _graphdef: GraphDef | None, states: tuple, metadata: Any = None) -> None:
        self._graphdef = _graphdef
        self.states = tuple(states)
        self.metadata = metadata

    @property
    def graphdef(self) -> GraphDef:
        """The ``GraphDef``; ``ValueError`` when this instance carries none."""
        if self._graphdef is None:
            raise ValueError(
                "No graphdef available: this NodeStates was built with from_states/from_prefixes. "
                "Use NodeStates.from_split(graphdef, state) to carry one."
            )
        return self._graphdef

    @property
    def state(self) -> Any:
        """The single state mapping; ``ValueError`` unless there is exactly one."""
        if len(self.states) != 1:
            raise ValueError(
                f"Expected exactly one state mapping, got {len(self.states)}; read .states instead."
            )
        return self.states[0]

    @classmethod
    def from_split(cls, graphdef: GraphDef, state: Any, /, *states: Any,
                   metadata: Any = None) -> "NodeStates":
        """From ``treefy_split`` results."""
        return cls(graphdef, (state, *states), metadata)

    @classmethod
    def from_states(cls, state: Any, *states: Any) -> "NodeStates":
        """State mappings only, without a ``GraphDef``."""
        return cls(None, (state, *states), None)

    @classmethod
    def from_prefixes(cls, prefixes: Any, /, *, metadata: Any = None) -> "NodeStates":
        """Prefixes (e.g. vmap axes) in place of the state mappings."""
        return cls(None, tuple(prefixes), metadata)

    def __repr__(self) -> str:
        return f"NodeStates(graphdef={self._graphdef!r}, states={self.states!r}, metadata={self.metadata!r})"


def _ns_flatten_with_keys(ns: NodeStates):
    return (
        ((jax.tree_util.GetAttrKey("_graphdef"), ns._graphdef),
         (jax.tree_util.GetAttrKey("states"), ns.states)),
        ns.metadata,
    )


def _ns_unflatten(metadata: Any, children: Any) -> NodeStates:
    graphdef, states = children
    return NodeStates(graphdef, states, metadata)


jax.tree_util.register_pytree_with_keys(
    NodeStates, _ns_flatten_with_keys, _ns_unflatten,
    lambda ns: ((ns._graphdef, ns.states), ns.metadata),
)


def broadcast_prefix(prefix_tree: Any, full_tree: Any, prefix_is_leaf: Callable | None = None,
                     tree_is_leaf: Callable | None = None) -> list:
    """One prefix entry per leaf of ``full_tree`` (each prefix leaf repeated over its subtree)."""
    result: list = []

    def add(x: Any, subtree: Any) -> None:
        # (annotated: mypy cannot resolve jaxlib's PyTreeDef from tree_structure's return type)
        treedef: jax.tree_util.PyTreeDef = jax.tree_util.tree_structure(
            subtree, is_leaf=tree_is_leaf)
        n = treedef.num_leaves
        result.extend([x] * n)

    jax.tree.map(add, prefix_tree, full_tree, is_leaf=prefix_is_leaf)
    return result


def check_consistent_aliasing(node: Any, prefix: Any, /, *, node_prefixes: RefMap | None = None
                              ) -> None:
    """Check that every graph node and state reachable from ``node`` is given one prefix.

    Raises
    ------
    TraceContextError
        If a reachable state belongs to another JAX trace.
    ValueError
        If an object shared between leaves is reached with two different prefixes.
    """
    node_prefixes = RefMap() if node_prefixes is None else node_prefixes

    def record(path: tuple, value: Any) -> None:
        if value in node_prefixes:
            node_prefixes[value].append((path, prefix))
        else:
            node_prefixes[value] = [(path, prefix)]

    for path, value in iter_leaf(node):
        if isinstance(value, State):
            if not value._trace_is_valid():
                raise TraceContextError(
                    f"Trying to extract graph node from different trace level, got {value!r} at "
                    f"path {R.format_path(path)}: the state was created under another JAX trace. "
                    "Create it outside the transformed function, or pass it in explicitly."
                )
            record(path, value)
    for path, value in iter_node(node):
        # Every state reachable from a node below was checked above: only a class with its own
        # check_valid_context has more to check (calling the default on each node walks each
        # subgraph again, quadratic in the graph's depth).
        if isinstance(value, Node) and \
                type(value).check_valid_context is not Node.check_valid_context:
            value.check_valid_context(
                lambda: f"Trying to extract graph node from different trace level, got {value!r}"
            )
        record(path, value)

    messages = []
    for obj, entries in node_prefixes._mapping.values():
        distinct: list = []
        for _, p in entries:
            if not any(_same_prefix(p, q) for q in distinct):
                distinct.append(p)
        if len(distinct) > 1:
            lines = "\n".join(f"  {R.format_path(path)}: {p!r}" for path, p in entries)
            messages.append(f"{type(obj).__qualname__}:\n{lines}")
    if messages:
        raise ValueError(
            "Inconsistent aliasing detected. The following objects are reached with different "
            "prefixes (e.g. vmap axes); an object shared between inputs must get one prefix:\n"
            + "\n".join(messages)
        )


def _same_prefix(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


def _default_split_fn(ctx: SplitContext, path: Any, prefix: Any, leaf: Any) -> NodeStates:
    return NodeStates.from_split(*ctx.treefy_split(leaf))


def graph_to_tree(
    may_have_graph_nodes: Any,
    /,
    *,
    prefix: Any = Missing,
    split_fn: Callable = _default_split_fn,
    map_non_graph_nodes: bool = False,
    check_aliasing: bool = True,
) -> tuple:
    """Replace each graph node leaf of a pytree by a :class:`NodeStates` (one split context).

    Parameters
    ----------
    may_have_graph_nodes : pytree
        A pytree whose leaves may be graph nodes.
    prefix : pytree, optional
        A prefix of the tree (e.g. vmap ``in_axes``); checked for consistent aliasing.
    split_fn : callable
        ``split_fn(ctx, keypath, prefix, leaf) -> pytree`` for graph node leaves.
    map_non_graph_nodes : bool, default False
        Also pass the other leaves through ``split_fn``.
    check_aliasing : bool, default True
        Require one prefix per shared object, and every state to belong to the current trace.

    Returns
    -------
    (pytree, FlattedDict)
        The pure pytree, and the states found, keyed by ``(global index,)``.

    Raises
    ------
    ValueError
        Inconsistent aliasing, or a prefix that does not match the tree's leaf count.
    TraceContextError
        A reachable state from another JAX trace (``check_aliasing``).
    """
    leaf_prefixes = broadcast_prefix(prefix, may_have_graph_nodes,
                                     prefix_is_leaf=lambda x: x is None)
    leaf_keys, treedef = jax.tree_util.tree_flatten_with_path(may_have_graph_nodes)
    if len(leaf_keys) != len(leaf_prefixes):
        raise ValueError(
            f"Mismatched number of leaves and prefixes: the tree has {len(leaf_keys)} leaves but "
            f"the prefix expands to {len(leaf_prefixes)}. Give a prefix tree that is a prefix of "
            "the input tree."
        )
    with split_context() as (ctx, ref_index):
        leaves_out = []
        node_prefixes = RefMap()
        for (keypath, leaf), leaf_prefix in zip(leaf_keys, leaf_prefixes):
            if R.is_graph_node(leaf):
                if check_aliasing:
                    check_consistent_aliasing(leaf, leaf_prefix, node_prefixes=node_prefixes)
                leaves_out.append(split_fn(ctx, keypath, leaf_prefix, leaf))
            else:
                if map_non_graph_nodes:
                    leaf = split_fn(ctx, keypath, leaf_prefix, leaf)
                leaves_out.append(leaf)
        found = FlattedDict(
            {(index,): obj for obj, index in ref_index._mapping.values() if isinstance(obj, State)}
        )
    return jax.tree.unflatten(treedef, leaves_out), found


def _is_tree_node(x: Any) -> bool:
    return isinstance(x, NodeStates)


def _merge_tree_node(ctx: MergeContext, path: Any, prefix: Any, leaf: Any) -> Any:
    if not isinstance(leaf, NodeStates):
        raise ValueError(
            f"Expected a NodeStates at {jax.tree_util.keystr(path)}, got {type(leaf).__qualname__}."
        )
    # A transform boundary may legitimately change per-lane shapes (vmap), so the signatures
    # recorded outside are not enforced here.
    return ctx.treefy_merge(leaf.graphdef, *leaf.states, check_signatures=False)


def tree_to_graph(
    tree: Any,
    /,
    *,
    prefix: Any = Missing,
    merge_fn: Callable = _merge_tree_node,
    is_node_leaf: Callable = _is_tree_node,
    is_leaf: Callable = _is_tree_node,
    map_non_graph_nodes: bool = False,
) -> Any:
    """Rebuild the graph nodes of a pytree produced by :func:`graph_to_tree` (one merge context).

    Rebuilt states take the values in the tree as they are, without checking them against the
    signatures recorded by ``graph_to_tree`` (a transform in between may change shapes).

    Raises
    ------
    ValueError
        A prefix that does not match the tree's leaf count, or a node leaf that is not a
        ``NodeStates``.
    """
    leaf_prefixes = broadcast_prefix(prefix, tree,
                                     prefix_is_leaf=lambda x: x is None or is_leaf(x),
                                     tree_is_leaf=is_leaf)
    leaf_keys, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)
    if len(leaf_keys) != len(leaf_prefixes):
        raise ValueError(
            f"Mismatched number of leaves and prefixes: the tree has {len(leaf_keys)} leaves but "
            f"the prefix expands to {len(leaf_prefixes)}."
        )
    with merge_context() as (ctx, _):
        leaves_out = []
        for (keypath, leaf), leaf_prefix in zip(leaf_keys, leaf_prefixes):
            if is_node_leaf(leaf):
                leaves_out.append(merge_fn(ctx, keypath, leaf_prefix, leaf))
            else:
                if map_non_graph_nodes:
                    leaf = merge_fn(ctx, keypath, leaf_prefix, leaf)
                leaves_out.append(leaf)
    return jax.tree.unflatten(treedef, leaves_out)
