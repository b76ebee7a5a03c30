"""Node-type registry, value classification, ``Static`` and one-level pytree flattening.

Every value met while walking a graph is classified by its type (memoised per type), first match
wins: a registered *graph node*, a *pytree* container, a ``State``, a bare ``TreefyState`` leaf,
else a *static* value. ``None`` is a pytree without children; it gets a kind of its own so the
walkers can skip it (and flatten can store it as a static) without a second test.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Generic, TypeVar

import jax
import numpy as np
from jax import tree_util as jtu

from brainstate._core_constants import GRAPH_CONSTANTS
from brainstate._state import State, TreefyState
from brainstate.util._nested_dict import link_path

__all__ = ["register_graph_node_type", "Static", "MAX_INT"]

#: Default upper bound of ``allowed_hierarchy`` (upstream uses int32's maximum).
MAX_INT = int(np.iinfo(np.int32).max)

A = TypeVar("A")

# Kinds (brainstate/_core_constants.py). Small ints compared with ``is``/``==`` in the hot loops.
GRAPH_NODE, PYTREE, STATE, STATE_LEAF, STATIC, NONE = GRAPH_CONSTANTS["kinds"]

_KIND: dict = {type(None): NONE, list: PYTREE, tuple: PYTREE, dict: PYTREE}


class GraphNodeImpl:
    """How the graph engine reads and rebuilds one registered mutable node type."""

    __slots__ = ("type", "flatten", "set_key", "pop_key", "create_empty", "clear", "fast")

    def __init__(self, type, flatten, set_key, pop_key, create_empty, clear, fast=False):
        self.type = type
        self.flatten = flatten
        self.set_key = set_key
        self.pop_key = pop_key
        self.create_empty = create_empty
        self.clear = clear
        # ``fast``: a plain Node: children are ``vars(node)`` (sorted, minus the class's
        # ``graph_invisible_attrs``), a fresh shell is ``object.__new__(cls)`` and is filled by
        # one ``vars(shell).update``, a reused one is cleared by ``vars(shell).clear()`` (the
        # compiled core does these directly). Set only by Node.__init_subclass__ for classes
        # without a custom ``__setattr__``.
        self.fast = fast


_NODE_IMPLS: dict = {}
# Fast node types without graph_invisible_attrs: children are exactly ``vars(node)``.
_PLAIN_NODES: set = set()


def register_graph_node_type(
    type: type,
    flatten: Callable[[Any], tuple],
    set_key: Callable[[Any, Any, Any], None],
    pop_key: Callable[[Any, Any], Any],
    create_empty: Callable[[Any], Any],
    clear: Callable[[Any], None],
) -> None:
    """Register a mutable container type as a graph node.

    Graph nodes are walked by identity: a node reached twice is recorded once and rebuilt as
    one shared object, cycles included. Every :class:`~brainstate.graph.Node` subclass is
    registered automatically.

    Parameters
    ----------
    type : type
        The class to register.
    flatten : callable
        ``flatten(node) -> (items, metadata)``: ``items`` is an ordered sequence of
        ``(key, value)`` children with unique keys; ``metadata`` is hashable and is handed to
        ``create_empty``.
    set_key : callable
        ``set_key(node, key, value)`` sets one child in place.
    pop_key : callable
        ``pop_key(node, key) -> value`` removes one child.
    create_empty : callable
        ``create_empty(metadata) -> node`` builds an empty instance.
    clear : callable
        ``clear(node)`` removes every child in place.

    Examples
    --------
    >>> import brainstate
    >>> class Bag:
    ...     def __init__(self):
    ...         self.items = {}
    >>> brainstate.graph.register_graph_node_type(
    ...     Bag,
    ...     flatten=lambda b: (sorted(b.items.items()), None),
    ...     set_key=lambda b, k, v: b.items.__setitem__(k, v),
    ...     pop_key=lambda b, k: b.items.pop(k),
    ...     create_empty=lambda metadata: Bag(),
    ...     clear=lambda b: b.items.clear(),
    ... )
    """
    _register(GraphNodeImpl(type, flatten, set_key, pop_key, create_empty, clear))


def _register(impl: GraphNodeImpl) -> None:
    _NODE_IMPLS[impl.type] = impl
    if impl.fast and not getattr(impl.type, "graph_invisible_attrs", ()):
        _PLAIN_NODES.add(impl.type)
    else:
        _PLAIN_NODES.discard(impl.type)
    # A type may change kind (e.g. a pytree class registered as a graph node): start over.
    _KIND.clear()
    _KIND.update({type(None): NONE, list: PYTREE, tuple: PYTREE, dict: PYTREE})


def node_children(impl: GraphNodeImpl, node: Any, path: tuple) -> tuple:
    """``(keys, values, metadata)`` of a graph node; errors name ``path``."""
    t = type(node)
    if impl.fast:
        d = node.__dict__
        invisible = t.graph_invisible_attrs
        keys = sorted(d) if not invisible else sorted(k for k in d if k not in invisible)
        return keys, [d[k] for k in keys], (t,)
    try:
        items, metadata = impl.flatten(node)
        items = list(items)
        keys = [k for k, _ in items]
        values = [v for _, v in items]
    except Exception as exc:
        raise ValueError(
            f"Cannot walk the graph node of type {t.__qualname__} at path {format_path(path)}: "
            f"its registered flatten function failed ({type(exc).__name__}: {exc}). It must "
            "return (sequence of (key, value) pairs, hashable metadata)."
        ) from exc
    try:
        unique = len(set(keys)) == len(keys)
    except TypeError:
        raise ValueError(
            f"The flatten function registered for {t.__qualname__} returned an unhashable child "
            f"key at path {format_path(path)} (keys: {keys!r}); child keys must be hashable."
        ) from None
    if not unique:
        dups = sorted({repr(k) for k in keys if keys.count(k) > 1})
        raise ValueError(
            f"The flatten function registered for {t.__qualname__} returned duplicate child "
            f"keys {', '.join(dups)} at path {format_path(path)}; every child key of a graph "
            "node must be unique."
        )
    return keys, values, metadata


def get_node_impl(t: type) -> GraphNodeImpl:
    """The registered implementation of graph-node type ``t``."""
    try:
        return _NODE_IMPLS[t]
    except KeyError:
        raise ValueError(
            f"Unknown graph node type {t!r}. Register it with "
            "brainstate.graph.register_graph_node_type (or subclass brainstate.graph.Node) "
            "before flattening or unflattening graphs that contain it."
        ) from None


def classify(x: Any) -> int:
    """The kind of ``x`` (GRAPH_NODE, PYTREE, STATE, STATE_LEAF, STATIC or NONE)."""
    t = type(x)
    k = _KIND.get(t)
    if k is None:
        if t in _NODE_IMPLS:
            k = GRAPH_NODE
        elif issubclass(t, State):  # before the pytree test: brainpy registers its Variable
            k = STATE
        elif not jtu.all_leaves((x,)):
            k = PYTREE
        elif issubclass(t, TreefyState):
            k = STATE_LEAF
        else:
            k = STATIC
        _KIND[t] = k
    return k


def is_graph_node(x: Any) -> bool:
    """Whether ``x``'s type is a registered graph node type."""
    return type(x) in _NODE_IMPLS


def is_node(x: Any) -> bool:
    """Whether ``x`` is a container the engine descends into (graph node or pytree)."""
    k = classify(x)
    return k == GRAPH_NODE or k == PYTREE or k == NONE


# --- Static -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Static(Generic[A]):
    """A pytree without leaves that carries ``value`` as static metadata.

    JAX transforms treat a ``Static`` as structure (it never becomes a tracer); the graph
    engine stores it verbatim in the ``GraphDef``. Equality and hash are by value, so
    ``value`` must be hashable for the ``GraphDef`` to be hashable.

    Parameters
    ----------
    value : Any
        The static payload.

    Examples
    --------
    >>> import jax
    >>> from brainstate.graph import Static
    >>> jax.tree.leaves(Static(3))
    []
    >>> Static((1, 2)) == Static((1, 2))
    True
    """

    __module__ = "brainstate.graph"
    value: A


jax.tree_util.register_static(Static)


# --- one-level pytree flattening ----------------------------------------------------------------

# One-level treedefs of the built-in containers, cached so flatten does not rebuild them and
# unflatten can rebuild these containers directly. Values: (treedef, rebuild kind).
_SEQ_TREEDEFS: dict = {}
_DICT_TREEDEFS: dict = {}
_TREEDEF_KIND: dict = {}
_MAX_CACHED_DICT_TREEDEFS = 4096
LIST_KIND, TUPLE_KIND, DICT_KIND = GRAPH_CONSTANTS["treedef_kinds"]


_N_RANGES = 64
_RANGES = [tuple(range(n)) for n in range(_N_RANGES)]


def seq_treedef(t: type, n: int) -> Any:
    key = (t, n)
    td = _SEQ_TREEDEFS.get(key)
    if td is None:
        td = jtu.tree_structure(t([0] * n))
        _SEQ_TREEDEFS[key] = td
        _TREEDEF_KIND[td] = LIST_KIND if t is list else TUPLE_KIND
    return td


def dict_treedef(keys: tuple) -> Any:
    td = _DICT_TREEDEFS.get(keys)
    if td is None:
        if len(_DICT_TREEDEFS) >= _MAX_CACHED_DICT_TREEDEFS:
            _DICT_TREEDEFS.clear()
        td = jtu.tree_structure(dict.fromkeys(keys, 0))
        _DICT_TREEDEFS[keys] = td
        _TREEDEF_KIND[td] = DICT_KIND
    return td


def treedef_kind(td: Any) -> int:
    """LIST_KIND/TUPLE_KIND/DICT_KIND for cached built-in treedefs, 0 for any other."""
    try:
        return _TREEDEF_KIND.get(td, 0)
    except TypeError:
        return 0


def sorted_dict_keys(d: dict, path: tuple) -> list:
    """``sorted(d)``, or a ValueError naming ``path`` when the keys cannot be ordered."""
    try:
        return sorted(d)
    except TypeError:
        kinds = sorted({type(k).__name__ for k in d})
        raise ValueError(
            f"Cannot walk the dict at path {format_path(path)}: its keys are not mutually "
            f"sortable (key types: {', '.join(kinds)}). JAX orders dict children by key, so "
            "use keys of one comparable type (e.g. all strings) in dicts held by a graph."
        ) from None


def _key_to_part(key: Any) -> Any:
    if isinstance(key, jtu.SequenceKey):
        return key.idx
    if isinstance(key, (jtu.DictKey, jtu.FlattenedIndexKey)):
        return key.key
    if isinstance(key, jtu.GetAttrKey):
        return key.name
    return str(key)


def flatten_pytree(x: Any, path: tuple) -> tuple:
    """One level of pytree ``x``: ``(keys, src, treedef)`` with ``src[key]`` the child.

    ``src`` is ``x`` itself for lists, tuples and dicts, else a dict built from the children.
    Errors name ``path``.
    """
    t = type(x)
    if t is list or t is tuple:
        n = len(x)
        return _RANGES[n] if n < _N_RANGES else tuple(range(n)), x, seq_treedef(t, n)
    if t is dict:
        keys = tuple(sorted_dict_keys(x, path))
        return keys, x, dict_treedef(keys)
    try:
        pairs, treedef = jtu.tree_flatten_with_path(x, is_leaf=lambda y: y is not x)
    except Exception as exc:
        raise ValueError(
            f"Cannot walk the {t.__qualname__} at path {format_path(path)}: flattening it as a "
            f"pytree failed ({type(exc).__name__}: {exc})."
        ) from exc
    keys = tuple(_key_to_part(kp[0]) for kp, _ in pairs)
    try:
        unique = len(set(keys)) == len(keys)
    except TypeError:
        unique = False
    if not unique:
        # Some pytree types report the same key twice; positional keys keep paths unique.
        keys = tuple(range(len(keys)))
    return keys, dict(zip(keys, (v for _, v in pairs))), treedef


def pytree_children(x: Any, path: tuple) -> tuple:
    """``(keys, values)`` of one pytree level."""
    keys, src, _ = flatten_pytree(x, path)
    return keys, [src[k] for k in keys]


def unflatten_pytree(treedef: Any, keys: tuple, children: list) -> Any:
    kind = treedef_kind(treedef)
    if kind == LIST_KIND:
        return children
    if kind == TUPLE_KIND:
        return tuple(children)
    if kind == DICT_KIND:
        return dict(zip(keys, children))
    return treedef.unflatten(children)


# --- paths as links (walks of deep graphs) ----------------------------------------------------
#
# The walks of this package keep no recursion per graph level (a chain of nodes 10,000 deep
# walks like a wide graph) and carry a container's path as a link ``(up, key)`` (``None``: the
# root's ``()``), built into a tuple only where one is needed: a chain n deep would otherwise
# hold n path tuples of up to n keys each. Pytree nesting (a list in a list in a list...)
# stays bounded by ``sys.getrecursionlimit()``, as in the core's walks
# (brainstate/_core_py/_walk_common.py).
# ``link_path`` (from brainstate.util) builds the tuple.


def node_children_at(impl: GraphNodeImpl, node: Any, link: Any) -> tuple:
    """:func:`node_children` with the path as a link (built only for a registered flatten,
    whose errors name it)."""
    return node_children(impl, node, () if impl.fast else link_path(link))


def pytree_children_at(x: Any, link: Any) -> tuple:
    """:func:`pytree_children` with the path as a link (built only where an error may name it:
    not for lists, tuples and dicts of sortable keys)."""
    t = type(x)
    if t is list or t is tuple:
        return range(len(x)), x
    if t is dict:
        try:
            keys = sorted(x)
        except TypeError:
            pass  # sorted_dict_keys raises the error naming the path
        else:
            return keys, [x[k] for k in keys]
    return pytree_children(x, link_path(link))


def hashable_by_value(x: Any) -> bool:
    """Whether ``type(x)`` defines a value-based hash (so equal statics compare equal)."""
    h = type(x).__hash__
    return h is not None and h is not object.__hash__


def format_path(path: Any) -> str:
    """A path as a dotted string (``<root>`` for the empty path)."""
    if path is None:
        return "<unknown>"
    if not path:
        return "<root>"
    return ".".join(str(p) for p in path)


# --- pausing the cyclic garbage collector: brainstate/_gc.py ----------------------------------

from brainstate._gc import gc_paused  # noqa: E402  (re-exported: the graph modules use R.gc_paused)
