"""``graph.Node``: the base class of mutable graph objects (every ``nn.Module`` is one)."""

from __future__ import annotations

import copy
import threading
from typing import Any, Callable

import jax

from brainstate._error import TraceContextError
from brainstate._state import State, TreefyState
from brainstate.util import flat_mapping, nest_mapping

from . import _registry as R
from ._flatten import flatten, unflatten
from ._reftrack import RefMap
from ._walk import collect_states

__all__ = ["Node"]

_repr_active = threading.local()
# How many graph levels a repr shows; deeper nodes print as ``Name(...)``.
_REPR_MAX_DEPTH = 64


class Node:
    """Base class of graph nodes: objects walked by identity, whose attributes are their children.

    Every subclass is registered with :func:`~brainstate.graph.register_graph_node_type` when
    it is defined. Its children are ``vars(node)`` in attribute-name order, minus the names in
    the class attribute ``graph_invisible_attrs``. Rebuilding (``treefy_merge``, ``clone``)
    creates instances with ``object.__new__`` (no ``__init__``) and restores the attributes
    directly, or through ``setattr`` when the class defines its own ``__setattr__``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Linear(brainstate.graph.Node):
    ...     def __init__(self, n):
    ...         self.weight = brainstate.ParamState(jnp.ones((n, n)))
    >>> layer = Linear(2)
    >>> list(brainstate.graph.states(layer))
    [('weight',)]
    """

    __module__ = "brainstate.graph"

    #: Attribute names the graph does not see (not split, not merged, not in ``states()``).
    graph_invisible_attrs: tuple = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register_node_class(cls)

    def __deepcopy__(self, memo: dict | None = None) -> Any:
        """An independent copy: new nodes, new states, copied values, sharing preserved.

        Static attributes are deep-copied too, except objects that cannot be (locks), which
        the copy shares. Objects of the graph are entered into ``memo``, so a state deep-copied
        together with its node (``copy.deepcopy([model, model.w])``) stays shared.
        """
        if memo is None:
            memo = {}
        ref_index = RefMap()
        graphdef, mapping = flatten(self, ref_index=ref_index)
        copy_leaf = lambda x: copy.deepcopy(x, memo)  # noqa: E731
        try:
            mapping = jax.tree.map(copy_leaf, mapping)
        except RecursionError:
            # JAX flattens the mapping (one level per graph node) recursively, and stops
            # before mapping anything: past its limit, go leaf by leaf
            mapping = nest_mapping({path: jax.tree.map(copy_leaf, v)
                                    for path, v in flat_mapping(mapping).items()})
        graphdef = copy.deepcopy(graphdef, memo)
        index_ref: dict = {}
        result = unflatten(graphdef, mapping, index_ref=index_ref)
        for obj, index in ref_index._mapping.values():
            new = index_ref.get(index)
            if new is not None:
                memo[id(obj)] = new
        return result

    def check_valid_context(self, error_msg: Callable[[], str]) -> None:
        """Raise ``TraceContextError(error_msg())`` if a reachable state belongs to another trace.

        Parameters
        ----------
        error_msg : callable
            Builds the message (called only on failure).
        """
        for st in collect_states(self, 0, R.MAX_INT).values():
            if not st._trace_is_valid():
                raise TraceContextError(error_msg())

    # -- display --

    def __pretty_repr_item__(self, name: str, value: Any) -> tuple | None:
        """``(label, value)`` to show for attribute ``name``, or ``None`` to hide it."""
        return None if value is None else (name, value)

    def __repr__(self) -> str:
        active = getattr(_repr_active, "ids", None)
        if active is None:
            active = _repr_active.ids = set()
        name = type(self).__name__
        if id(self) in active or len(active) >= _REPR_MAX_DEPTH:
            # a cycle, or a graph nested deeper than a repr shows (and than its recursion goes)
            return f"{name}(...)"
        active.add(id(self))
        try:
            invisible = type(self).graph_invisible_attrs
            lines = []
            for key, value in vars(self).items():
                if key in invisible:
                    continue
                item = self.__pretty_repr_item__(key, value)
                if item is None:
                    continue
                label, shown = item
                text = repr(shown).replace("\n", "\n  ")
                lines.append(f"  {label}={text},")
        finally:
            active.discard(id(self))
        if not lines:
            return f"{name}()"
        return f"{name}(\n" + "\n".join(lines) + "\n)"


# --- the registered implementation of Node types -------------------------------------------------


def _node_flatten(node: Node) -> tuple:
    invisible = type(node).graph_invisible_attrs
    items = sorted((k, v) for k, v in vars(node).items() if k not in invisible)
    return items, (type(node),)


def _node_set_key(node: Node, key: Any, value: Any) -> None:
    if not isinstance(key, str):
        raise KeyError(
            f"Invalid key: {key!r} ({type(key).__name__}) for a {type(node).__qualname__}; the "
            "children of a graph Node are its attributes, so keys must be str."
        )
    existing = vars(node).get(key)
    if isinstance(existing, State) and isinstance(value, TreefyState):
        existing.update_from_ref(value)
    else:
        setattr(node, key, value)


def _node_pop_key(node: Node, key: Any) -> Any:
    if not isinstance(key, str):
        raise KeyError(
            f"Invalid key: {key!r} ({type(key).__name__}) for a {type(node).__qualname__}; "
            "attribute names are str."
        )
    return vars(node).pop(key)


def _node_create_empty(metadata: tuple) -> Node:
    (node_type,) = metadata
    return object.__new__(node_type)


def _node_clear(node: Node) -> None:
    vars(node).clear()


def _register_node_class(cls: type) -> None:
    fast = cls.__setattr__ is object.__setattr__
    R._register(
        R.GraphNodeImpl(
            cls, _node_flatten, _node_set_key, _node_pop_key, _node_create_empty, _node_clear,
            fast=fast,
        )
    )


_register_node_class(Node)
