"""Mirrors csrc/_core_refs.pxi: the registry brainstate.graph hands over, ``TreefyState``
storage, refs and rebuilt states.

The graph walks (this module, ``_walk_common``, ``_states_walk``, ``_encoder``, ``_decoder``)
are the loops ``graph.flatten`` / ``unflatten`` / ``states()`` run once per node and per state.
The graph package hands over its registry with ``configure_graph`` and keeps the policy, the
rare paths and every message: these loops call back into it for anything but the common cases.
``configure_graph`` rebinds the ``_g_*`` tables here: the other walk modules read them as
``_refs._g_*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from brainstate._core_constants import GRAPH_CONSTANTS as _GRAPH_CONSTANTS
from brainstate._core_py._context import INVALID, _require
from brainstate._core_py._state import _foreign_value, _held_elsewhere

# The graph numbers (brainstate/_core_constants.py) under the names of the compiled twin's enums.
_K_NODE, _K_PYTREE, _K_STATE, _K_STATE_LEAF, _K_STATIC, _K_NONE = _GRAPH_CONSTANTS["kinds"]
_C_NODE_DEF, _C_NODE_REF, _C_STATE_DEF, _C_STATE_REF, _C_STATIC, _C_PYTREE, _C_LEAF, _C_STATE_AT = (
    _GRAPH_CONSTANTS["codes"])
_LIST_KIND, _TUPLE_KIND, _DICT_KIND = _GRAPH_CONSTANTS["treedef_kinds"]

_g_kinds: dict = {}
_g_classify: Callable = None  # type: ignore[assignment]
_g_impls: dict = {}
_g_plain: set = set()
_g_flatten_pytree: Callable = None  # type: ignore[assignment]
_g_node_children: Callable = None  # type: ignore[assignment]
_g_seq_treedef: Callable = None  # type: ignore[assignment]
_g_dict_treedef: Callable = None  # type: ignore[assignment]
_g_treedef_kinds: dict = {}
_g_hashable_by_value: Callable = None  # type: ignore[assignment]
_g_fast_ref: dict = {}
_g_fast_ref_ok: Callable = None  # type: ignore[assignment]
_g_fast_state: dict = {}
_g_fast_state_ok: Callable = None  # type: ignore[assignment]
_g_ref_type: Any = type(None)
_g_rebuild_error: Any = type(None)  # an exception class
_MISSING = object()
_NONE_CODE = (_C_STATIC, None)


def configure_graph(
    *,
    constants: dict,
    kinds: dict,
    classify: Callable,
    node_impls: dict,
    plain_nodes: set,
    flatten_pytree: Callable,
    node_children: Callable,
    seq_treedef: Callable,
    dict_treedef: Callable,
    treedef_kinds: dict,
    hashable_by_value: Callable,
    fast_ref: dict,
    fast_ref_ok: Callable,
    fast_state: dict,
    fast_state_ok: Callable,
    ref_type: type,
    rebuild_error: type,
    missing: Any,
) -> None:
    """Hand the graph walks brainstate.graph's registry (its live dicts and sets) and callbacks.

    ``constants`` are the graph package's kind, code and treedef-kind numbers; a mismatch with
    the core's raises, so the two cannot drift apart silently. ``missing`` is the sentinel the
    loops hand to the slow paths for a path absent from the state mapping.
    """
    global _g_kinds, _g_classify, _g_impls, _g_plain, _g_flatten_pytree, _g_node_children
    global _g_seq_treedef, _g_dict_treedef, _g_treedef_kinds, _g_hashable_by_value
    global _g_fast_ref, _g_fast_ref_ok, _g_fast_state, _g_fast_state_ok, _g_ref_type
    global _g_rebuild_error, _MISSING
    if constants != _GRAPH_CONSTANTS:
        raise RuntimeError(
            f"brainstate.graph constants {constants!r} differ from the core's "
            f"{_GRAPH_CONSTANTS!r}; update both together."
        )
    for name, table, kind in (("kinds", kinds, dict), ("node_impls", node_impls, dict),
                              ("plain_nodes", plain_nodes, set),
                              ("treedef_kinds", treedef_kinds, dict),
                              ("fast_ref", fast_ref, dict), ("fast_state", fast_state, dict)):
        if type(table) is not kind:
            raise TypeError(f"configure_graph: {name} must be a {kind.__name__} (the registry's "
                            f"live table), got {type(table).__name__}.")
    _g_kinds = kinds
    _g_classify = classify
    _g_impls = node_impls
    _g_plain = plain_nodes
    _g_flatten_pytree = flatten_pytree
    _g_node_children = node_children
    _g_seq_treedef = seq_treedef
    _g_dict_treedef = dict_treedef
    _g_treedef_kinds = treedef_kinds
    _g_hashable_by_value = hashable_by_value
    _g_fast_ref = fast_ref
    _g_fast_ref_ok = fast_ref_ok
    _g_fast_state = fast_state
    _g_fast_state_ok = fast_state_ok
    _g_ref_type = ref_type
    _g_rebuild_error = rebuild_error
    _MISSING = missing


class TreefyStateCore:
    """Base type of ``TreefyState``: its attribute storage.

    A plain object whose ``__dict__`` holds ``type``, ``value`` and the metadata in insertion
    order. (The compiled twin keeps the standard layout of ``State.to_state_ref()`` in typed
    slots and behaves the same.)
    """

    # (for the type checker: ``type``, ``value`` and the metadata live in the instance dict)
    type: Any
    value: Any

    def __init__(self, type: Any, value: Any, **metadata: Any) -> None:
        vars(self).update(type=type, value=value, **metadata)

    if TYPE_CHECKING:
        def __getattr__(self, name: str) -> Any: ...  # a metadata key, as _core.pyi says


def treefy_attrs(ref: Any) -> dict:
    """A new dict of ``ref``'s attributes in order (``dict(vars(ref))`` without touching it)."""
    _require(ref, TreefyStateCore, "ref")
    return dict(vars(ref))


def treefy_from_attrs(cls: Any, attrs: dict) -> Any:
    """A new ``cls`` ref whose attributes are ``attrs`` (in order), built without ``__init__``."""
    ref = cls.__new__(cls)
    vars(ref).update(attrs)
    return ref


_AUX_SKIP = ("type", "value", "_source_info", "_hooks_manager")


def treefy_flatten(ref: Any) -> tuple:
    """``(value, aux)`` of ``ref``'s pytree form: aux = ``(type, metadata items)`` in insertion
    order, without ``_source_info`` and ``_hooks_manager``."""
    _require(ref, TreefyStateCore, "ref")
    d = vars(ref)
    md = tuple([(k, v) for k, v in d.items() if k not in _AUX_SKIP])
    return d["value"], (d["type"], md)


def treefy_unflatten(cls: Any, aux: tuple, children: Any) -> Any:
    """The ref of ``cls`` that ``treefy_flatten`` described: fresh ``_source_info`` and
    ``_hooks_manager`` (None), then the metadata items in order."""
    ref = cls.__new__(cls)
    d = vars(ref)
    d.update(type=aux[0], value=children[0], _source_info=None, _hooks_manager=None)
    d.update(aux[1])
    return ref


def make_ref(st: Any) -> Any:
    """``st.to_state_ref()``, built directly when the state's class does not customise it."""
    t = type(st)
    if (_g_fast_ref.get(t) or _g_fast_ref_ok(t)) and not st.__dict__:
        ref = object.__new__(_g_ref_type)
        h = _held_elsewhere(st)
        ref.__dict__ = {
            "type": t,
            "value": st._value if h is None else _foreign_value(st, h, "split"),
            "_source_info": st._source_info,
            "_hooks_manager": st._hooks_manager,
            "_name": st._name,
            "_been_writen": st._been_writen,
            "tag": st.tag,
        }
        return ref
    return st.to_state_ref()


def rebuild_state(ref: Any) -> Any:
    """A new live state from a ``TreefyState`` of the standard layout, else None.

    ``ref.to_state()`` without its generic attribute loop: fresh trace identity and level, no
    hook manager, the ref's creation site, and a copy of its tag set.
    """
    if type(ref) is not _g_ref_type:
        return None
    d = ref.__dict__
    if len(d) != 7:
        return None
    try:
        cls, value, site = d["type"], d["value"], d["_source_info"]
        name, written, tag = d["_name"], d["_been_writen"], d["tag"]
    except KeyError:
        return None
    if not (_g_fast_state.get(cls) or _g_fast_state_ok(cls)):
        return None
    st = cls.__new__(cls)
    st._init_from(value, site)
    sa = object.__setattr__
    sa(st, "_name", name)
    sa(st, "_been_writen", written)
    sa(st, "tag", set(tag) if type(tag) is set else tag)
    return st


def _keep_poisoned(st: Any, sig: Any) -> bool:
    """A poisoned state (value died with its trace) is rebuilt poisoned, with its signature."""
    if st._value is INVALID:
        st._signature = sig
        return True
    return False
