"""User operations on graphs: split/merge, state and node queries, in-place update, pop, clone."""

from __future__ import annotations

from typing import Any

from brainstate import _impl
from brainstate._error import StateSignatureError
from brainstate._state import State, TreefyState
from brainstate.util import FlattedDict, NestedDict
from brainstate.util.filter import (
    All,
    Any as AnyOf,
    Everything,
    Not,
    Nothing,
    OfType,
    WithTag,
    to_predicate,
)

from . import _registry as R
from ._flatten import flatten, merge_nested, ref_to_state, unflatten
from ._graphdef import GraphDef
from ._node import _node_set_key
from ._walk import _check_hierarchy, collect_nodes, collect_states

__all__ = [
    "treefy_split",
    "treefy_merge",
    "treefy_states",
    "states",
    "nodes",
    "graphdef",
    "clone",
    "pop_states",
    "update_states",
]

_core = _impl.core
_MISSING = object()


# --- filters ------------------------------------------------------------------------------------


def filters_to_predicates(filters: tuple) -> tuple:
    """Predicates of ``filters``; ``...``/``True`` may only appear at the end."""
    last = len(filters) - 1
    for i, f in enumerate(filters):
        if (f is Ellipsis or f is True) and i != last:
            if not all(r is Ellipsis or r is True for r in filters[i + 1 :]):
                raise ValueError(
                    f"`...` or `True` can only be used as the last filters, got {f!r} at index "
                    f"{i} of {filters!r}. Move it to the end: it matches everything, so no filter "
                    "after it would ever match."
                )
    return tuple(to_predicate(f) for f in filters)


def state_filters_to_predicates(filters: tuple, where: str) -> tuple:
    """:func:`filters_to_predicates` for filters that select states: a class that can never
    match one (neither a ``State`` subclass nor a base of ``State``: ``int``, ``jax.Array``, a
    module class...) raises instead of silently selecting nothing."""
    for f in filters:
        _check_state_filter(f, where)
    return filters_to_predicates(filters)


def _check_state_filter(f: Any, where: str) -> None:
    if isinstance(f, (list, tuple)):
        for member in f:
            _check_state_filter(member, where)
        return
    t = type(f)
    if t is AnyOf or t is All:
        for member in f.predicates:
            _check_state_filter(member, where)
        return
    cls = f.type if t is OfType else f
    if isinstance(cls, type) and not (issubclass(cls, State) or issubclass(State, cls)):
        raise TypeError(
            f"{where}: the filter {cls.__module__}.{cls.__qualname__} is not a State class, so "
            "it can never match a state. State filters are State subclasses (e.g. "
            "brainstate.ParamState), tag strings, True or ..., False or None, callables "
            "(path, value) -> bool, or lists/tuples of those."
        )


_PATH_FREE = (OfType, WithTag, Everything, Nothing)


def _path_free(predicate: Any) -> bool:
    """Whether ``predicate`` never reads the path (so the walk need not build it)."""
    t = type(predicate)
    if t in _PATH_FREE:
        return True
    if t is AnyOf or t is All:
        return all(_path_free(p) for p in predicate.predicates)
    if t is Not:
        return _path_free(predicate.predicate)
    return False


def _type_only(predicate: Any) -> type | None:
    """The class ``T`` when ``predicate`` is ``OfType(T)`` (decidable per state class)."""
    if type(predicate) is OfType:
        return predicate.type
    return None


def _partition(items: Any, predicates: tuple) -> tuple:
    """Split ``(path, value)`` pairs among predicates (first match wins) plus a remainder."""
    buckets: tuple[dict, ...] = tuple({} for _ in predicates)
    rest: dict = {}
    pairs = tuple(zip(predicates, buckets))
    for path, value in items:
        for predicate, bucket in pairs:
            if predicate(path, value):
                bucket[path] = value
                break
        else:
            rest[path] = value
    return buckets, rest


def _split_nested(mapping: dict, predicates: tuple, exhaustive: bool) -> tuple:
    """Partition a nested mapping's leaves by predicates into nested mappings (one per filter)."""
    n = len(predicates)
    pairs = tuple(enumerate(predicates))
    need_path = not all(_path_free(p) for p in predicates)
    rest: list = []
    # Iterative (mappings nest one level per graph node): one frame per sub-mapping being
    # partitioned, [iterator over its items, its link, its outs (one dict or None per
    # predicate), its path or None until a leaf needs it]. A finished frame hands its
    # non-empty outs to its parent's under its key, where the recursive call returned them.
    root_outs: list = [None] * n
    stack: list[list[Any]] = [[iter(mapping.items()), None, root_outs, ()]]
    while stack:
        frame = stack[-1]
        it, link, outs, path = frame
        for k, v in it:
            if isinstance(v, dict):
                stack.append([iter(v.items()), (link, k), [None] * n, None])
                break  # partition the sub-mapping; this frame's loop resumes after it
            if need_path:
                if path is None:
                    path = frame[3] = R.link_path(link)
                p = (*path, k)
            else:
                p = ()
            for b, predicate in pairs:
                if predicate(p, v):
                    o = outs[b]
                    if o is None:
                        o = outs[b] = {}
                    o[k] = v
                    break
            else:
                if path is None:
                    path = frame[3] = R.link_path(link)
                rest.append((*path, k))
        else:
            stack.pop()
            if stack:
                parent_outs = stack[-1][2]
                k = link[1]
                for b in range(n):
                    s = outs[b]
                    if s:
                        o = parent_outs[b]
                        if o is None:
                            o = parent_outs[b] = {}
                        o[k] = s
    outs = root_outs
    if exhaustive and rest:
        shown = ", ".join(R.format_path(p) for p in rest[:5])
        more = f" and {len(rest) - 5} more" if len(rest) > 5 else ""
        raise ValueError(
            f"Non-exhaustive filters, got a non-empty remainder: {len(rest)} state(s) matched no "
            f"filter: {shown}{more}.\nUse `...` as the last filter to match all remaining "
            "elements, e.g. treefy_split(model, ParamState, ...)."
        )
    return tuple(NestedDict(o or {}) for o in outs)


# --- split / merge ------------------------------------------------------------------------------


def treefy_split(node: Any, *filters: Any) -> tuple:
    """Split a graph into its ``GraphDef`` and state mapping(s) of ``TreefyState`` snapshots.

    Parameters
    ----------
    node : graph node or pytree
        The graph to split.
    *filters
        Optional filters (see :func:`brainstate.util.filter.to_predicate`). Each state goes to
        the first filter it matches; together they must match every state, so end with
        ``...`` to collect the rest (``treefy_split(model, ParamState, ...)``).

    Returns
    -------
    tuple
        ``(graphdef, mapping)`` without filters, ``(graphdef, mapping_1, ..., mapping_n)``
        with ``n`` filters.

    Raises
    ------
    ValueError
        If some state matches no filter (``Non-exhaustive filters ...``), or ``...`` is not last.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Cell(brainstate.graph.Node):
    ...     def __init__(self):
    ...         self.w = brainstate.ParamState(jnp.ones(2))
    ...         self.h = brainstate.ShortTermState(jnp.zeros(2))
    >>> graphdef, params, others = brainstate.graph.treefy_split(
    ...     Cell(), brainstate.ParamState, ...)
    >>> list(params), list(others)
    (['w'], ['h'])
    >>> cell = brainstate.graph.treefy_merge(graphdef, params, others)
    """
    with R.gc_paused():
        graphdef_, mapping = flatten(node)
        if not filters:
            return graphdef_, mapping
        predicates = state_filters_to_predicates(filters, "treefy_split")
        return (graphdef_, *_split_nested(mapping, predicates, exhaustive=True))


def treefy_merge(
    graphdef: GraphDef,
    *state_mappings: Any,
    check_signatures: bool = True,
    copy_hooks: bool = False,
) -> Any:
    """Rebuild a graph from a ``GraphDef`` and state mappings (merged path by path, later wins).

    Rebuilt states are new objects: fresh trace identity (usable at once, also inside the JAX
    trace that rebuilt them), the current trace level, their own empty hook manager (hooks of
    the split states are not carried over unless ``copy_hooks=True``), and their own tag set.
    Nodes and states shared in the split graph are shared in the rebuilt one; cycles survive.

    Parameters
    ----------
    graphdef : GraphDef
        From :func:`treefy_split`.
    *state_mappings : NestedDict or FlattedDict
        The mappings returned by :func:`treefy_split` (possibly transformed, e.g. by
        ``jax.tree.map``), together covering every state path.
    check_signatures : bool, default True
        Check each state's signature against the one recorded at split time (see
        :func:`~brainstate.graph.unflatten`).
    copy_hooks : bool, default False
        Register the hooks carried by the mappings' ``TreefyState`` objects on the rebuilt states.

    Returns
    -------
    Any
        The rebuilt graph.

    Raises
    ------
    ValueError
        Missing path (``Expected key <path> in the state mapping ...``), extra paths, a
        non-state value at a state path, or mappings that disagree on a path's kind.
    StateSignatureError
        A value whose signature differs from the recorded one.
    """
    with R.gc_paused():
        mapping = merge_nested(state_mappings)
        return unflatten(graphdef, mapping, check_signatures=check_signatures,
                         copy_hooks=copy_hooks)


def graphdef(node: Any) -> GraphDef:
    """The ``GraphDef`` of ``node`` (``flatten(node)[0]``)."""
    return flatten(node)[0]


def clone(node: Any) -> Any:
    """A copy of ``node`` with new node objects and new states (split + merge).

    Sharing and cycles are preserved; state values (arrays) are shared by reference, not
    copied (use ``copy.deepcopy`` for independent buffers); the new states have no hooks.
    """
    graphdef_, mapping = flatten(node)
    return unflatten(graphdef_, mapping)


# --- queries ------------------------------------------------------------------------------------


def treefy_states(node: Any, *filters: Any) -> Any:
    """The state mapping of ``node`` (``TreefyState`` snapshots), optionally filtered.

    Parameters
    ----------
    node : graph node or pytree
        The graph.
    *filters
        Optional filters; each state goes to the first it matches, unmatched states are
        dropped (no exhaustiveness requirement).

    Returns
    -------
    NestedDict or tuple of NestedDict
        One mapping without filters or with one filter, else one per filter.
    """
    with R.gc_paused():
        _, mapping = flatten(node)
        if not filters:
            return mapping
        predicates = state_filters_to_predicates(filters, "treefy_states")
        parts = _split_nested(mapping, predicates, exhaustive=False)
        return parts[0] if len(parts) == 1 else parts


def states(node: Any, *filters: Any, allowed_hierarchy: tuple = (0, R.MAX_INT)) -> Any:
    """The live ``State`` objects of a graph, keyed by path.

    Each state appears once, at its first path in flatten order (node attributes sorted by
    name). Filters partition the states (first match wins); states matching none are dropped.

    Parameters
    ----------
    node : graph node or pytree
        The graph.
    *filters
        Optional filters.
    allowed_hierarchy : (int, int), default (0, MAX_INT)
        Depth bounds: states held by the root are at depth 0, by a direct child node at 1...

    Returns
    -------
    FlattedDict or tuple of FlattedDict
        One mapping ``path -> State`` for zero or one filter, a tuple of ``n`` for ``n >= 2``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Cell(brainstate.graph.Node):
    ...     def __init__(self):
    ...         self.w = brainstate.ParamState(jnp.ones(2))
    ...         self.h = brainstate.ShortTermState(jnp.zeros(2))
    >>> list(brainstate.graph.states(Cell(), brainstate.ParamState))
    [('w',)]
    """
    lo, hi = _check_hierarchy(allowed_hierarchy)
    n = len(filters)
    predicates = state_filters_to_predicates(filters, "states")
    with R.gc_paused():
        if n == 0:
            return FlattedDict(collect_states(node, lo, hi))
        if n == 1:
            target = _type_only(predicates[0])
            if target is not None:
                # OfType on live states is isinstance, decidable once per state class.
                return FlattedDict(
                    collect_states(node, lo, hi, lambda cls: issubclass(cls, target))
                )
        found = collect_states(node, lo, hi)
        buckets, _ = _partition(found.items(), predicates)
    result = tuple(FlattedDict(b) for b in buckets)
    return result[0] if n == 1 else result


def nodes(node: Any, *filters: Any, allowed_hierarchy: tuple = (0, R.MAX_INT)) -> Any:
    """The graph nodes of a graph, keyed by path (the root under ``()``), children first.

    Parameters
    ----------
    node : graph node or pytree
        The graph.
    *filters
        Optional filters (e.g. a node class); first match wins, unmatched nodes are dropped.
    allowed_hierarchy : (int, int), default (0, MAX_INT)
        Depth bounds (the root is at depth 0, its direct child nodes at 1...).

    Returns
    -------
    FlattedDict or tuple of FlattedDict
        One mapping for zero or one filter, a tuple of ``n`` for ``n >= 2``.
    """
    lo, hi = _check_hierarchy(allowed_hierarchy)
    with R.gc_paused():
        found = collect_nodes(node, lo, hi)
    n = len(filters)
    if n == 0:
        return FlattedDict(found)
    predicates = filters_to_predicates(filters)
    buckets, _ = _partition(found.items(), predicates)
    result = tuple(FlattedDict(b) for b in buckets)
    return result[0] if n == 1 else result


# --- pop_states -------------------------------------------------------------------------------


def pop_states(node: Any, *filters: Any) -> Any:
    """Remove the states matching ``filters`` from their owning graph nodes and return them.

    Each state is matched once, at its first path; a matched state held by several slots is
    returned once but detached from every graph node holding it. Nothing is removed when an
    error is raised.

    Parameters
    ----------
    node : graph node or pytree
        The graph to mutate.
    *filters
        At least one filter; each state goes to the first filter it matches.

    Returns
    -------
    NestedDict or tuple of NestedDict
        The removed live ``State`` objects, one mapping per filter (a single mapping for one
        filter).

    Raises
    ------
    ValueError
        If no filter is given, or a matching state (or an alias of one) sits inside a pytree
        container such as a list (``Cannot pop key ...``): containers cannot be mutated in
        place; move the state to a node attribute.
    """
    if not filters:
        raise ValueError(
            "Expected at least one filter, e.g. pop_states(model, brainstate.ParamState)."
        )
    predicates = state_filters_to_predicates(filters, "pop_states")
    buckets: tuple[dict, ...] = tuple({} for _ in predicates)
    decided: dict = {}  # id(state) -> matched?
    removals: list = []  # (impl, owner, key)
    visited: set = set()
    classify = R.classify

    def frame(x: Any, kind: int, link: Any) -> list | None:
        # [iterator over (key, child), link, the container, its impl (None: a pytree), its
        # path or None until a state below needs it]; None for a container not to enter.
        if id(x) in visited:
            return None
        visited.add(id(x))
        if kind == R.GRAPH_NODE:
            impl = R._NODE_IMPLS[type(x)]
            keys, values, _ = R.node_children_at(impl, x, link)
            return [zip(keys, values), link, x, impl, None]
        if kind == R.NONE:
            return None
        keys, values = R.pytree_children_at(x, link)
        return [zip(keys, values), link, x, None, None]

    # Iterative (graph depth is bounded by memory only): one frame per container being walked.
    top = frame(node, classify(node), None)
    stack = [top] if top is not None else []
    while stack:
        f = stack[-1]
        it, link, x, impl, path = f
        for k, v in it:
            child_kind = classify(v)
            if child_kind == R.GRAPH_NODE or child_kind == R.PYTREE:
                child = frame(v, child_kind, (link, k))
                if child is not None:
                    stack.append(child)
                    break  # walk the child; this frame's loop resumes after it
                continue
            if child_kind != R.STATE:
                continue
            if path is None:
                path = f[4] = R.link_path(link)
            p = (*path, k)
            matched = decided.get(id(v))
            if matched is None:
                matched = False
                for predicate, bucket in zip(predicates, buckets):
                    if predicate(p, v):
                        bucket[p] = v
                        matched = True
                        break
                decided[id(v)] = matched
            if matched:
                if impl is None:
                    raise ValueError(
                        f"Cannot pop key {k!r} from node of type {type(x).__qualname__} at path "
                        f"{R.format_path(path)}: a {type(v).__name__} selected by the filters "
                        "lives in this pytree container, which cannot be mutated in place. Hold "
                        "the state as an attribute of a graph node instead. Nothing was removed."
                    )
                removals.append((impl, x, k))
        else:
            stack.pop()
    for impl, owner, key in removals:
        impl.pop_key(owner, key)
    result = tuple(NestedDict.from_flat(b) for b in buckets)
    return result[0] if len(result) == 1 else result


# --- update_states ----------------------------------------------------------------------------


def update_states(node: Any, state_dict: Any, /, *state_dicts: Any) -> None:
    """Update a graph in place from state mappings (merged path by path, later wins).

    For each path: an existing state is updated from a ``TreefyState`` (``update_from_ref``:
    metadata, then the value through the checked write path, keeping the state's identity,
    hooks and trace) or from a live ``State`` (its snapshot); a missing attribute of a graph
    node is created (a ``TreefyState`` is materialised as a new state, a live ``State`` is
    stored as it is); a sub-mapping descends into the sub-graph at that path. The whole
    update is validated (structure and signatures) before anything is written.

    Parameters
    ----------
    node : graph node or pytree
        The graph to update.
    state_dict, *state_dicts : NestedDict, FlattedDict or nested dict
        The new states.

    Raises
    ------
    ValueError
        A bare state aimed at a sub-graph (``Expected a subgraph ...``), a state aimed at a
        non-state attribute, a key set on an immutable pytree (``Cannot set key ... on
        immutable node ...``), or a value that is neither a state nor a sub-mapping
        (``Unsupported update type ...``); the message names the path.
    StateSignatureError
        A value that does not match its state's signature (nothing is written).
    """
    mapping = merge_nested((state_dict, *state_dicts))
    updates: list = []  # (state, ref)
    creations: list = []  # (impl, owner, key, value)
    check = not _core.is_rebinding()
    classify = R.classify

    def frame(x: Any, d: dict, link: Any) -> list:
        # [iterator over d's items, link, x, its impl (None: a pytree), x's children by key,
        # x's path or None until a message or a check needs it]
        kind = classify(x)
        if kind == R.GRAPH_NODE:
            impl = R._NODE_IMPLS[type(x)]
            keys, values, _ = R.node_children_at(impl, x, link)
        elif kind == R.PYTREE or kind == R.NONE:
            impl = None
            keys, values = R.pytree_children_at(x, link) if kind == R.PYTREE else ((), ())
        else:
            raise ValueError(
                f"Expected a subgraph at path {R.format_path(R.link_path(link))}, got a "
                f"{type(x).__qualname__}; the mapping has a sub-mapping there."
            )
        return [iter(d.items()), link, x, impl, dict(zip(keys, values)), None]

    # Iterative (graph depth is bounded by memory only): one frame per sub-graph being matched
    # with its sub-mapping; a frame's path is built once, when a state slot or a message needs it.
    stack = [frame(node, mapping, None)]
    while stack:
        f = stack[-1]
        it, link, x, impl, current, path = f
        is_graph = impl is not None
        for k, v in it:
            cur = current.get(k, _MISSING)
            if cur is not _MISSING:
                ck = classify(cur)
                if ck == R.GRAPH_NODE or ck == R.PYTREE or ck == R.NONE:
                    if isinstance(v, dict):
                        stack.append(frame(cur, v, (link, k)))
                        break  # match the sub-graph; this frame's loop resumes after it
                    p = R.link_path((link, k))
                    if isinstance(v, (TreefyState, State)):
                        raise ValueError(
                            f"Expected a subgraph for {k!r} at path {R.format_path(p)}, but got "
                            f"a state leaf {v!r}; the graph holds a {type(cur).__qualname__} "
                            "there."
                        )
                    raise ValueError(
                        f"Unsupported update type {type(v).__qualname__} for key {k!r} at path "
                        f"{R.format_path(p)}; expected a sub-mapping for the sub-graph there."
                    )
            if path is None:
                path = f[5] = R.link_path(link)
            p = (*path, k)
            if cur is _MISSING:
                if is_graph and impl.set_key is _node_set_key and not isinstance(k, str):
                    raise ValueError(
                        f"Invalid key {k!r} ({type(k).__name__}) at path {R.format_path(p)}: the "
                        f"children of a {type(x).__qualname__} are attributes, so keys must be "
                        "str."
                    )
                if not is_graph:
                    raise ValueError(
                        f"Cannot set key {k!r} on immutable node of type {type(x).__qualname__} "
                        f"at path {R.format_path(path)}: pytree containers cannot gain entries "
                        "in place."
                    )
                if isinstance(v, (TreefyState, State)):
                    creations.append((impl, x, k, v))
                    continue
                raise ValueError(
                    f"Unsupported update type {type(v).__qualname__} for key {k!r} at path "
                    f"{R.format_path(p)}: the graph has no attribute there, and only a "
                    "TreefyState or State can create one."
                )
            if isinstance(v, (State, TreefyState)):
                if not isinstance(cur, State):
                    raise ValueError(
                        f"Trying to update a non-State attribute {k!r} at path "
                        f"{R.format_path(p)} (a {type(cur).__qualname__}) with a state: {v!r}."
                    )
                ref = v.to_state_ref() if isinstance(v, State) else v
                if check:
                    _precheck_signature(cur, ref, p)
                updates.append((cur, ref))
            else:
                raise ValueError(
                    f"Unsupported update type {type(v).__qualname__} for key {k!r} at path "
                    f"{R.format_path(p)}; expected a TreefyState, a State or a sub-mapping."
                )
        else:
            stack.pop()
    for st, ref in updates:
        st.update_from_ref(ref)
    for impl, owner, key, value in creations:
        if isinstance(value, TreefyState):
            value = ref_to_state(value)
        impl.set_key(owner, key, value)


def _precheck_signature(st: State, ref: TreefyState, path: tuple) -> None:
    value = ref.value
    try:
        got = _core.make_signature(value)
    except Exception:
        return  # let the write path report it
    if got != st._signature and not st._flags:
        from brainstate._signature import _first_difference

        raise StateSignatureError(
            f"Cannot update the {type(st).__name__} at path {R.format_path(path)}: the new "
            f"value does not match the state's signature; {_first_difference(st._signature, value)}"
            ".\nNothing was updated. To change signatures on purpose, update inside "
            "`brainstate.check_state_value_tree(False)`."
        )
