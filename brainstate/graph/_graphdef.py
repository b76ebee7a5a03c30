"""``GraphDef``: the static structure of an object graph, and its public edge classes.

A ``GraphDef`` is what :func:`~brainstate.graph.flatten` keeps of a graph once the states are
taken out: the node types and metadata, every static attribute, the pytree containers, and the
sharing pattern (which slots point to the same node or state). It is hashable, comparable, free
of arrays held by states, and registered as a static JAX pytree, so it can key a ``jit`` cache.

Internally a GraphDef stores plain tuples (``codes``), because building, hashing and comparing
nested tuples happens in C; the documented view (``root``, ``node_specs`` made of
:class:`NodeEdge`, :class:`StateEdge`, ... objects) is built from them on first access. The codes
are:

- ``(NODE_DEF, index)``: first occurrence of a graph node (it has a ``NodeSpec``);
- ``(NODE_REF, index)``: a later occurrence of the same node (sharing, cycles);
- ``(STATE_DEF, index, type, signature)``: first occurrence of a state, at the slot's path;
- ``(STATE_REF, index, type)``: a later occurrence of the same state (no mapping entry);
- ``(STATIC, value)``: a value carried verbatim;
- ``(PYTREE, treedef, keys, codes)``: a pytree container, re-created on every merge;
- ``(LEAF, path)``: a bare ``TreefyState`` leaf stored at ``path``;
- ``(STATE_AT, index, type, signature, path)``: a state at an explicit path (hand-built).

A node record is ``(type, index, metadata, keys, codes)``; records are in ascending index order.
The path of a defining state is implicit (the path of the slot it occupies), which keeps split
from building one path tuple per state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import jax

from brainstate._core_constants import GRAPH_CONSTANTS

__all__ = [
    "PytreeType",
    "NodeEdge",
    "StateEdge",
    "StateLeafEdge",
    "PytreeEdge",
    "StaticEdge",
    "NodeSpec",
    "GraphDef",
]

# Code tags (first element of every internal code tuple; brainstate/_core_constants.py).
NODE_DEF, NODE_REF, STATE_DEF, STATE_REF, STATIC, PYTREE, LEAF, STATE_AT = GRAPH_CONSTANTS["codes"]

# How many node specs a GraphDef repr lists before summarising the rest.
_REPR_MAX_SPECS = 12


class PytreeType:
    """Sentinel: the ``GraphDef.type`` of a graph whose root is a pytree, not a graph node."""

    __module__ = "brainstate.graph"


# --- the public edge view ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NodeEdge:
    """A reference to a graph node by its global index (sharing and cycles share the index).

    Parameters
    ----------
    index : int
        The node's global index; its :class:`NodeSpec` has the same index.
    """

    __module__ = "brainstate.graph"
    index: int


@dataclasses.dataclass(frozen=True)
class StateEdge:
    """A ``State`` slot, deduplicated by identity and referenced by its global index.

    Parameters
    ----------
    index : int
        The state's global index.
    path : tuple or None
        The state-mapping path of the defining (first) occurrence; ``None`` on later
        occurrences, which have no mapping entry.
    type : type
        The state's class (e.g. ``ParamState``).
    signature : Signature, optional
        The abstract signature the state had when split (checked on merge); ``None`` on
        later occurrences and on hand-built edges (no check).
    """

    __module__ = "brainstate.graph"
    index: int
    path: tuple | None
    type: type
    signature: Any = None


@dataclasses.dataclass(frozen=True)
class StateLeafEdge:
    """A bare ``TreefyState`` leaf carried in the state mapping at ``path`` (never deduplicated).

    Parameters
    ----------
    path : tuple
        The state-mapping path holding the value.
    """

    __module__ = "brainstate.graph"
    path: tuple


@dataclasses.dataclass(frozen=True)
class PytreeEdge:
    """A pytree container (list, tuple, dict, dataclass pytree...), re-created on every merge.

    Parameters
    ----------
    treedef : jax.tree_util.PyTreeDef
        One level of the container's structure (its children are leaves ``*``).
    fields : tuple of (key, edge)
        The children, in flatten order, with their path keys.
    """

    __module__ = "brainstate.graph"
    treedef: Any
    fields: tuple

    @property
    def metadata(self) -> Any:
        """Alias of ``treedef`` (upstream's field name)."""
        return self.treedef


@dataclasses.dataclass(frozen=True)
class StaticEdge:
    """A value carried verbatim in the structure (ints, strings, functions, plain arrays...).

    Parameters
    ----------
    value : Any
        The static value; it must be hashable for the ``GraphDef`` to be hashable.
    """

    __module__ = "brainstate.graph"
    value: Any


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """The static record of one graph node.

    Parameters
    ----------
    type : type
        The node's class.
    index : int
        Its global index.
    metadata : Any
        Hashable metadata returned by the node type's flatten function (``(type,)`` for a
        :class:`~brainstate.graph.Node`).
    fields : tuple of (key, edge)
        The node's children, in flatten order.
    """

    __module__ = "brainstate.graph"
    type: type
    index: int
    metadata: Any
    fields: tuple


# --- codes <-> edges --------------------------------------------------------------------------


def _code_to_edge(code: tuple, path: tuple) -> Any:
    tag = code[0]
    if tag == NODE_DEF or tag == NODE_REF:
        return NodeEdge(code[1])
    if tag == STATE_DEF:
        return StateEdge(code[1], path, code[2], code[3])
    if tag == STATE_REF:
        return StateEdge(code[1], None, code[2])
    if tag == STATIC:
        return StaticEdge(code[1])
    if tag == PYTREE:
        return PytreeEdge(
            code[1],
            tuple((k, _code_to_edge(c, (*path, k))) for k, c in zip(code[2], code[3])),
        )
    if tag == LEAF:
        return StateLeafEdge(code[1])
    if tag == STATE_AT:
        return StateEdge(code[1], code[4], code[2], code[3])
    raise TypeError(f"Unknown GraphDef code {code!r}; this is a bug in brainstate.graph.")


def _node_paths(root: tuple, records: tuple) -> dict:
    """Map each node index to the path of its first (pre-order) occurrence."""
    by_index = {rec[1]: rec for rec in records}
    paths: dict = {}
    tag = root[0]
    if tag == NODE_DEF or tag == NODE_REF:
        if root[1] not in by_index:
            return paths
        paths[root[1]] = ()
        rec = by_index[root[1]]
        keys, codes = rec[3], rec[4]
    elif tag == PYTREE:
        keys, codes = root[2], root[3]
    else:
        return paths
    # Iterative (graph depth is bounded by memory only), pre-order: one frame per container
    # being walked, (its path, iterator over its (key, code) pairs).
    stack: list[tuple[tuple, Iterator[tuple[Any, Any]]]] = [((), zip(keys, codes))]
    while stack:
        path, it = stack[-1]
        for k, code in it:
            tag = code[0]
            if tag == NODE_DEF or tag == NODE_REF:
                index = code[1]
                if index in paths or index not in by_index:
                    continue
                paths[index] = p = (*path, k)
                rec = by_index[index]
                stack.append((p, zip(rec[3], rec[4])))
                break  # walk the node; this loop resumes after it
            elif tag == PYTREE:
                stack.append(((*path, k), zip(code[2], code[3])))
                break
        else:
            stack.pop()
    return paths


def _codes_from_edges(root: Any, node_specs: tuple) -> tuple:
    """Codes of a hand-built GraphDef, node definitions assigned in pre-order from the root."""
    specs = {}
    for spec in node_specs:
        if not isinstance(spec, NodeSpec):
            raise TypeError(f"GraphDef node_specs must hold NodeSpec objects, got {spec!r}.")
        specs[spec.index] = spec
    records: dict = {}

    def leaf_code(edge: Any, frame: list | None, k: Any) -> tuple:
        # The code of an edge that is not a container; ``frame`` holds the path it sits under
        # (None: the root).
        if isinstance(edge, StateEdge):
            if edge.path is None:
                return (STATE_REF, edge.index, edge.type)
            if frame is None:
                path: tuple | None = ()
            else:
                path = frame_path(frame)
                if path is not None:
                    path = (*path, k)
            if path is not None and tuple(edge.path) == path:
                return (STATE_DEF, edge.index, edge.type, edge.signature)
            return (STATE_AT, edge.index, edge.type, edge.signature, tuple(edge.path))
        if isinstance(edge, StaticEdge):
            return (STATIC, edge.value)
        if isinstance(edge, StateLeafEdge):
            return (LEAF, tuple(edge.path))
        raise TypeError(
            f"Expected an edge (NodeEdge, StateEdge, StateLeafEdge, PytreeEdge or StaticEdge), "
            f"got {edge!r} of type {type(edge).__name__}."
        )

    def frame_path(frame: list) -> tuple | None:
        # A frame's path, built once: None for a spec not reachable from the root.
        path = frame[5]
        if path is _UNSET:
            link = frame[4]
            if link is _UNREACHABLE:
                path = None
            else:
                keys = []
                while link is not None and link is not _UNREACHABLE:
                    link, k = link
                    keys.append(k)
                keys.reverse()
                path = None if link is _UNREACHABLE else tuple(keys)
            frame[5] = path
        return path

    def open_node(index: int, link: Any) -> list:
        spec = specs[index]
        records[index] = None  # reserved: a cycle reaching it again gets a NODE_REF
        return [iter(spec.fields), [], [], spec, link, _UNSET]

    def run(stack: list) -> tuple:
        # Iterative pre-order (hand-built graphs may be deep too): one frame per container,
        # [iterator over its fields, keys, codes, its NodeSpec or PytreeEdge, link of its
        # path (_UNREACHABLE below a spec the root does not reach), its path once built].
        while True:
            frame = stack[-1]
            it, keys, codes, owner, link = frame[:5]
            for k, e in it:
                keys.append(k)
                if isinstance(e, NodeEdge):
                    index = e.index
                    if index in records or index not in specs:
                        codes.append((NODE_REF, index))
                        continue
                    stack.append(open_node(index, _child_link(link, k)))
                    break  # convert the node; this frame's loop resumes after it
                if isinstance(e, PytreeEdge):
                    stack.append([iter(e.fields), [], [], e, _child_link(link, k), _UNSET])
                    break
                codes.append(leaf_code(e, frame, k))
            else:
                stack.pop()
                keys, codes = tuple(keys), tuple(codes)
                code: tuple
                if isinstance(owner, NodeSpec):
                    records[owner.index] = (owner.type, owner.index, owner.metadata, keys, codes)
                    code = (NODE_DEF, owner.index)
                else:
                    code = (PYTREE, owner.treedef, keys, codes)
                if not stack:
                    return code
                stack[-1][2].append(code)

    if isinstance(root, NodeEdge):
        if root.index in specs:
            root_code = run([open_node(root.index, None)])
        else:
            root_code = (NODE_REF, root.index)
    elif isinstance(root, PytreeEdge):
        root_code = run([[iter(root.fields), [], [], root, None, _UNSET]])
    else:
        root_code = leaf_code(root, None, None)
    # Specs not reachable from the root are kept, with explicit state paths only.
    for index in specs:
        if index not in records:
            run([open_node(index, _UNREACHABLE)])
    return root_code, tuple(records[i] for i in sorted(records))


_UNSET = object()
_UNREACHABLE = object()


def _child_link(link: Any, k: Any) -> Any:
    return _UNREACHABLE if link is _UNREACHABLE else (link, k)


# --- GraphDef ---------------------------------------------------------------------------------


class GraphDef:
    """The static structure of an object graph: a root edge plus one spec per graph node.

    Produced by :func:`~brainstate.graph.flatten` / :func:`~brainstate.graph.treefy_split` and
    consumed by :func:`~brainstate.graph.unflatten` / :func:`~brainstate.graph.treefy_merge`.
    Immutable; equality is structural; the hash is computed on first use and cached; registered
    as a static JAX pytree (no leaves).

    Parameters
    ----------
    root : Edge
        The root edge: a :class:`NodeEdge` when the root is a graph node, a
        :class:`PytreeEdge` when it is a pytree.
    node_specs : tuple of NodeSpec
        One spec per graph node, in ascending index order.

    Notes
    -----
    A GraphDef holding an unhashable static value (typically a plain array stored as an
    attribute) still splits and merges, but hashing it raises ``TypeError``. Statics compared by
    identity (a lock, a transform object) make GraphDefs of two otherwise identical models
    unequal. State edges record the abstract signature each state had when it was split; two
    models whose states differ in shape or dtype have unequal GraphDefs.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Cell(brainstate.graph.Node):
    ...     def __init__(self):
    ...         self.w = brainstate.ParamState(jnp.ones(2))
    >>> graphdef, state = brainstate.graph.treefy_split(Cell())
    >>> graphdef.type.__name__
    'Cell'
    >>> graphdef == brainstate.graph.graphdef(Cell())
    True
    """

    __module__ = "brainstate.graph"
    # _size: one more than the largest index the codes use, when known (a cache for merge,
    # not part of equality, hashing or pickling).
    __slots__ = ("_root", "_records", "_prepass", "_hash", "_view", "_size")
    _root: tuple
    _records: tuple
    _prepass: bool
    _hash: int | None
    _view: tuple | None
    _size: int | None

    def __init__(self, root: Any, node_specs: tuple = ()) -> None:
        root_code, records = _codes_from_edges(root, tuple(node_specs))
        _init(self, root_code, records, True)

    @classmethod
    def _from_codes(cls, root: tuple, records: tuple, prepass: bool,
                    size: int | None = None) -> "GraphDef":
        self = object.__new__(cls)
        _init(self, root, records, prepass, size)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(
            f"cannot assign to {name!r}: GraphDef is immutable; split the graph again instead."
        )

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete {name!r}: GraphDef is immutable.")

    # -- the documented view --

    def _build_view(self) -> tuple:
        view = self._view
        if view is None:
            paths = _node_paths(self._root, self._records)
            root = _code_to_edge(self._root, ())
            specs = []
            for typ, index, metadata, keys, codes in self._records:
                base = paths.get(index)
                fields = tuple(
                    (k, _code_to_edge(c, (*base, k) if base is not None else (k,)))
                    for k, c in zip(keys, codes)
                )
                specs.append(NodeSpec(typ, index, metadata, fields))
            view = (root, tuple(specs))
            object.__setattr__(self, "_view", view)
        return view

    @property
    def root(self) -> Any:
        """The root edge (a ``NodeEdge`` for a graph-node root, else a ``PytreeEdge``...)."""
        return self._build_view()[0]

    @property
    def node_specs(self) -> tuple:
        """One :class:`NodeSpec` per graph node, ascending by index."""
        return self._build_view()[1]

    @property
    def type(self) -> type:
        """The root node's type, or :class:`PytreeType` when the root is a pytree."""
        root = self._root
        if root[0] == NODE_DEF or root[0] == NODE_REF:
            for rec in self._records:
                if rec[1] == root[1]:
                    return rec[0]
        return PytreeType

    @property
    def index(self) -> int:
        """The root node's global index (``0`` when the root is a pytree)."""
        root = self._root
        return root[1] if root[0] == NODE_DEF or root[0] == NODE_REF else 0

    @property
    def num_nodes(self) -> int:
        """The number of distinct graph nodes."""
        return len(self._records)

    # -- equality, hashing, pickling --

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if type(other) is not GraphDef:
            return NotImplemented
        try:
            return self._root == other._root and self._records == other._records
        except Exception:
            # A static whose == is not a bool (an array attribute): compare statics by
            # identity, or by a boolean == where one exists.
            return _safe_equal((self._root, self._records), (other._root, other._records))

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            try:
                h = hash((self._root, self._records))
            except TypeError as exc:
                where = _find_unhashable(self)
                raise TypeError(
                    "GraphDef is not hashable because it contains an unhashable static value"
                    f"{where}. Wrap dynamic arrays in a State (so they travel in the state "
                    "mapping), or make the attribute hashable (e.g. a tuple instead of a list "
                    "of constants, or brainstate.graph.Static for a value meant to be static)."
                ) from exc
            object.__setattr__(self, "_hash", h)
        return h

    def __reduce__(self):
        return (GraphDef._from_codes, (self._root, self._records, self._prepass))

    def __deepcopy__(self, memo: dict) -> "GraphDef":
        import copy

        def copy_static(value: Any) -> Any:
            try:
                return copy.deepcopy(value, memo)
            except Exception:
                # Locks and other uncopyable statics are shared by the copy (documented in
                # Node.__deepcopy__).
                return value

        return GraphDef._from_codes(
            _map_statics(self._root, copy_static),
            tuple(
                (t, i, m, k, tuple(_map_statics(c, copy_static) for c in codes))
                for t, i, m, k, codes in self._records
            ),
            self._prepass,
        )

    def __copy__(self) -> "GraphDef":
        return self

    def __repr__(self) -> str:
        root, specs = self._build_view()
        lines = ["GraphDef(", f"  root={root!r},", "  node_specs=("]
        for spec in specs[:_REPR_MAX_SPECS]:
            fields = ", ".join(f"{k!r}: {_short(e)}" for k, e in spec.fields)
            lines.append(f"    NodeSpec({spec.type.__qualname__}, index={spec.index}, {{{fields}}}),")
        if len(specs) > _REPR_MAX_SPECS:
            lines.append(f"    ... {len(specs) - _REPR_MAX_SPECS} more node specs")
        lines.append("  )")
        lines.append(")")
        return "\n".join(lines)


def _init(self: GraphDef, root: tuple, records: tuple, prepass: bool,
          size: int | None = None) -> None:
    sa = object.__setattr__
    sa(self, "_root", root)
    sa(self, "_records", records)
    sa(self, "_prepass", prepass)
    sa(self, "_hash", None)
    sa(self, "_view", None)
    sa(self, "_size", size)


def _short(edge: Any) -> str:
    if isinstance(edge, NodeEdge):
        return f"Node#{edge.index}"
    if isinstance(edge, StateEdge):
        ref = "" if edge.path is not None else " (shared)"
        return f"{edge.type.__name__}#{edge.index}{ref}"
    if isinstance(edge, StaticEdge):
        text = repr(edge.value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(edge, PytreeEdge):
        inner = ", ".join(f"{k!r}: {_short(e)}" for k, e in edge.fields[:6])
        more = ", ..." if len(edge.fields) > 6 else ""
        return f"Pytree({{{inner}{more}}})"
    return repr(edge)


def _map_statics(code: tuple, fn: Any) -> tuple:
    tag = code[0]
    if tag == STATIC:
        return (STATIC, fn(code[1]))
    if tag == PYTREE:
        return (PYTREE, code[1], code[2], tuple(_map_statics(c, fn) for c in code[3]))
    return code


def _safe_equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is tuple and type(b) is tuple:
        return len(a) == len(b) and all(_safe_equal(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:
        return False


def _find_unhashable(gd: GraphDef) -> str:
    """`` at path ...`` for the first unhashable static (empty when none is found)."""
    paths = _node_paths(gd._root, gd._records)

    def search(code: tuple, path: tuple) -> tuple | None:
        tag = code[0]
        if tag == STATIC:
            try:
                hash(code[1])
            except TypeError:
                return path, code[1]
        elif tag == PYTREE:
            for k, c in zip(code[2], code[3]):
                found = search(c, (*path, k))
                if found is not None:
                    return found
        return None

    found = search(gd._root, ())
    if found is None:
        for _, index, _, keys, codes in gd._records:
            base = paths.get(index, ())
            for k, c in zip(keys, codes):
                found = search(c, (*base, k))
                if found is not None:
                    break
            if found is not None:
                break
    if found is None:
        return ""
    path, value = found
    return f" at path {'.'.join(map(str, path)) or '<root>'} ({type(value).__name__})"


jax.tree_util.register_static(GraphDef)
