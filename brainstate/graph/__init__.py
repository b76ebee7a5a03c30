"""The graph model: walk, split and rebuild object graphs of nodes and states.

A *graph* is a Python object graph of graph nodes (:class:`Node`, hence every ``nn.Module``,
and any type given to :func:`register_graph_node_type`), pytree containers, ``State`` objects
and static values. :func:`treefy_split` turns it into a hashable :class:`GraphDef` plus a
``NestedDict`` of ``TreefyState`` snapshots keyed by path; :func:`treefy_merge` rebuilds it, with
shared nodes and states shared again and cycles restored.

Rebuilt states are new objects with a fresh trace identity and their own empty hook manager;
``treefy_merge(..., copy_hooks=True)`` registers the split states' hooks on them instead.
"""

from ._context import MergeContext, SplitContext, merge_context, split_context
from ._convert import NodeStates, graph_to_tree, tree_to_graph
from ._flatten import flatten, unflatten
from ._graphdef import (
    GraphDef,
    NodeEdge,
    NodeSpec,
    PytreeEdge,
    PytreeType,
    StateEdge,
    StateLeafEdge,
    StaticEdge,
)
from ._node import Node
from ._operations import (
    clone,
    graphdef,
    nodes,
    pop_states,
    states,
    treefy_merge,
    treefy_split,
    treefy_states,
    update_states,
)
from ._reftrack import RefMap
from ._registry import MAX_INT, Static, register_graph_node_type
from ._walk import iter_leaf, iter_node

__all__ = [
    "Node",
    "register_graph_node_type",
    "Static",
    "RefMap",
    "GraphDef",
    "NodeSpec",
    "NodeEdge",
    "StateEdge",
    "StateLeafEdge",
    "PytreeEdge",
    "StaticEdge",
    "PytreeType",
    "flatten",
    "unflatten",
    "treefy_split",
    "treefy_merge",
    "treefy_states",
    "states",
    "nodes",
    "graphdef",
    "clone",
    "pop_states",
    "update_states",
    "iter_leaf",
    "iter_node",
    "split_context",
    "merge_context",
    "SplitContext",
    "MergeContext",
    "graph_to_tree",
    "tree_to_graph",
    "NodeStates",
    "MAX_INT",
]

for _name in ("flatten", "unflatten", "treefy_split", "treefy_merge", "treefy_states", "states",
              "nodes", "graphdef", "clone", "pop_states", "update_states", "iter_leaf",
              "iter_node", "split_context", "merge_context", "graph_to_tree", "tree_to_graph",
              "register_graph_node_type"):
    globals()[_name].__module__ = "brainstate.graph"
del _name
