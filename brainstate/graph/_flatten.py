"""``flatten`` and ``unflatten``: a graph to ``(GraphDef, NestedDict)`` and back.

``flatten`` walks the graph once, in pre-order, giving every distinct graph node and state a
global index (identity-keyed, so sharing and cycles collapse to one index). It builds the nested
state mapping as it goes (no flat-path pass) and records node structure as tuples.

``unflatten`` creates every node shell first, then fills the shells record by record (ascending
index = pre-order), materialising each state at its defining slot. Sharing and cycles resolve
because shells exist before anything points at them. A state used in a record that is filled
before the record defining it (a parent holding a child's state under a later attribute name)
makes ``flatten`` mark the GraphDef for a pre-pass that materialises every state first.

Performance notes (see ``bench/bench_graph.py``): the per-node and per-state loops live in the
core (``encode``, ``DecoderCore``; compiled in ``csrc/_core_encoder.pxi`` and
``csrc/_core_decoder.pxi``, the pure twins in ``brainstate/_core_py/``): ``brainstate/_wiring.py``
hands them the registry and this module's shortcut tables; this module keeps the rare paths and
every message. The
state mapping is nested while walking; ``TreefyState`` objects and rebuilt states are built with
the exact attribute layout of ``State.to_state_ref()`` / ``TreefyState.to_state()`` without
their generic per-attribute loops (``tests/test_graph.py`` pins the equivalence); a split ref
carries its state's signature, so merging it does not read shapes and dtypes again; nothing here
creates reference cycles.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from brainstate import _impl
from brainstate._error import StateSignatureError
from brainstate._hosted import is_hosted
from brainstate._state import State, TreefyState
from brainstate.util import FlattedDict, NestedDict

from . import _registry as R
from ._graphdef import (
    LEAF,
    NODE_DEF,
    NODE_REF,
    PYTREE,
    STATE_AT,
    STATE_DEF,
    GraphDef,
    _node_paths,
)
from ._reftrack import RefMap

__all__ = ["flatten", "unflatten"]

_core = _impl.core
_MISSING = object()

# --- fast refs and fast rebuilt states -------------------------------------------------------

# Per State class: may refs/states be built without the generic to_state_ref()/to_state()?
# The core's loops read these dicts and call the *_ok functions for a class not seen yet.
_FAST_REF: dict = {}
_FAST_STATE: dict = {}


def _fast_ref_ok(cls: Any) -> bool:
    ok = _FAST_REF.get(cls)
    if ok is None:
        ok = (cls.to_state_ref is State.to_state_ref and cls._attr_dict is State._attr_dict
              and not is_hosted(cls))
        _FAST_REF[cls] = ok
    return ok


def _fast_state_ok(cls: Any) -> bool:
    ok = _FAST_STATE.get(cls)
    if ok is None:
        ok = (
            isinstance(cls, type)
            and issubclass(cls, State)
            and cls._adopt is State._adopt
            and cls._init_from is State._init_from
            and cls.__new__ is State.__new__
            and cls.update_from_ref is State.update_from_ref
            and not is_hosted(cls)
        )
        _FAST_STATE[cls] = ok
    return ok


def state_ref(st: State) -> TreefyState:
    """``st.to_state_ref()``, built directly when the class does not customise it."""
    return _core.make_ref(st)


def ref_to_state(ref: TreefyState, copy_hooks: bool = False) -> State:
    """A new live state from ``ref``: ``ref.to_state()`` plus our two fixes.

    Fresh trace identity and level, its own (empty) hook manager, and its own tag set (a ref
    carries the original state's set object; sharing it would make ``add_tag`` on the copy
    tag the original too). With ``copy_hooks`` the hooks carried by the ref's manager are
    registered again on the new state.
    """
    st = _core.rebuild_state(ref)
    if st is None:
        st = ref.to_state()
        tag = st.tag
        if type(tag) is set:
            st.tag = set(tag)
    if copy_hooks:
        _copy_hooks(getattr(ref, "_hooks_manager", None), st)
    return st


def _copy_hooks(manager: Any, st: State) -> None:
    if manager is None:
        return
    from brainstate._hooks import HOOK_TYPES

    for hook in manager.get_hooks():
        st.register_hook(HOOK_TYPES[hook._index], hook.callback, hook.priority, hook.name,
                         hook.enabled)


# --- flatten ----------------------------------------------------------------------------------


def flatten(node: Any, /, ref_index: RefMap | None = None, treefy_state: bool = True):
    """Flatten a graph into its static structure and a nested state mapping.

    Every distinct graph node and ``State`` gets a global index (by identity); a state reached
    twice is recorded once, at the path of its first pre-order occurrence, and later
    occurrences become back-references. Pytree containers are recorded inline; a pytree whose
    children are all static and whose type hashes by value (a tuple of ints, ``None``...)
    collapses to one static value.

    Parameters
    ----------
    node : graph node or pytree
        The root.
    ref_index : RefMap, optional
        The identity -> index map to extend (``split_context`` shares one across calls so
        objects shared between the split graphs keep one index). A fresh one by default.
    treefy_state : bool, default True
        Store ``state.to_state_ref()`` snapshots (``TreefyState``) in the mapping; with
        ``False`` store the live ``State`` objects.

    Returns
    -------
    (GraphDef, NestedDict)
        The structure and the mapping ``path -> TreefyState`` (nested by path parts).

    Raises
    ------
    ValueError
        If ``node`` is neither a graph node nor a pytree (e.g. a bare ``State``), if a dict's
        keys cannot be ordered, or if a container cannot be walked (the message names its path).
    TypeError
        If ``ref_index`` is not a :class:`RefMap`.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Cell(brainstate.graph.Node):
    ...     def __init__(self):
    ...         self.w = brainstate.ParamState(jnp.ones(2))
    ...         self.alias = self.w
    >>> graphdef, mapping = brainstate.graph.flatten(Cell())
    >>> list(mapping)
    ['alias']
    """
    if ref_index is None:
        table = None  # the core uses a faster table of its own
    elif isinstance(ref_index, RefMap):
        table = ref_index._mapping
    else:
        raise TypeError(
            f"ref_index must be a brainstate.graph.RefMap, got {type(ref_index).__name__}. "
            "Pass None to use a fresh one."
        )
    kind = R.classify(node)
    if kind != R.GRAPH_NODE and kind != R.PYTREE and kind != R.NONE:
        raise ValueError(
            f"Cannot flatten a non-node root of type {type(node).__qualname__}: {node!r}. "
            "The root must be a graph node (e.g. a brainstate.graph.Node or nn.Module) or a "
            "pytree (list, tuple, dict...) holding them; wrap a lone State in a container, "
            "e.g. flatten({'x': state})."
        )
    with R.gc_paused():
        root_code, records, root_sub, prepass, size = _core.encode(node, kind, table,
                                                                   treefy_state)
        return GraphDef._from_codes(root_code, records, prepass, size), NestedDict(root_sub)


# --- unflatten --------------------------------------------------------------------------------


class _RebuildError(Exception):
    """Internal: a failure at ``keys`` below the record (or root code) being rebuilt."""

    def __init__(self, keys: tuple, make: Any) -> None:
        super().__init__()
        self.keys = keys
        self.make = make  # make(path_str) -> the exception to raise


def as_nested(mapping: Any) -> dict:
    """A nested dict view of a state mapping (NestedDict, FlattedDict or nested Mapping)."""
    if isinstance(mapping, FlattedDict):
        return NestedDict.from_flat(mapping)
    if isinstance(mapping, dict):
        return mapping
    if isinstance(mapping, Mapping):
        return dict(mapping)
    raise TypeError(
        f"Expected a state mapping (NestedDict, FlattedDict or nested dict), got "
        f"{type(mapping).__qualname__}."
    )


def merge_nested(mappings: tuple) -> dict:
    """Merge state mappings path by path (later ones win); inputs are not modified."""
    if not mappings:
        return {}
    nested = [as_nested(m) for m in mappings]
    if len(nested) == 1:
        return nested[0]
    out = dict(nested[0])
    for m in nested[1:]:
        _merge_into(out, m)
    return out


def _merge_into(out: dict, m: Mapping) -> None:
    # Iterative (mappings nest one level per graph node): one frame per pair of sub-mappings
    # being merged, (the merged copy, iterator over m's items, link of its path).
    stack: list[tuple[dict, Iterator, Any]] = [(out, iter(m.items()), None)]
    while stack:
        out, it, link = stack[-1]
        for k, v in it:
            cur = out.get(k, _MISSING)
            if cur is _MISSING:
                out[k] = v
                continue
            cur_is_dict = isinstance(cur, dict)
            v_is_dict = isinstance(v, dict)
            if cur_is_dict and v_is_dict:
                merged = dict(cur)
                out[k] = merged
                stack.append((merged, iter(v.items()), (link, k)))
                break  # merge the sub-mappings; this frame's loop resumes after it
            elif cur_is_dict or v_is_dict:
                raise ValueError(
                    f"Cannot merge state mappings: path {R.format_path(R.link_path((link, k)))} "
                    "is a leaf in one mapping and a sub-mapping in another. Merge mappings split "
                    "from the same graph."
                )
            else:
                out[k] = v
        else:
            stack.pop()


def unflatten(
    graphdef: GraphDef,
    state_mapping: Any,
    /,
    *,
    index_ref: dict | None = None,
    index_ref_cache: dict | None = None,
    check_signatures: bool = True,
    copy_hooks: bool = False,
) -> Any:
    """Rebuild a graph from its ``GraphDef`` and a state mapping.

    Each defining state slot takes the mapping entry at its path: a ``TreefyState`` becomes a
    new live state (fresh trace identity, current trace level, its own empty hook manager); a
    live ``State`` is used as it is. Shared nodes and states are rebuilt once and shared;
    cycles are restored.

    Parameters
    ----------
    graphdef : GraphDef
        The structure from :func:`flatten`.
    state_mapping : NestedDict, FlattedDict or nested dict
        The states, e.g. the mapping from :func:`flatten` or a merge of split mappings.
    index_ref : dict, optional
        ``index -> object`` table to fill (``merge_context`` shares one across calls).
    index_ref_cache : dict, optional
        Existing objects by index to reuse: cached node shells are cleared and refilled (their
        type must match), cached states are updated in place (``update_from_ref``), and a
        state missing from the mapping is taken from the cache.
    check_signatures : bool, default True
        Check every rebuilt state's signature (structure, shapes, dtypes) against the one
        recorded when the graph was split. Also skipped inside
        ``brainstate.check_state_value_tree(False)``.
    copy_hooks : bool, default False
        Register the hooks carried by each ``TreefyState``'s hook manager on the rebuilt
        state. By default rebuilt states start with no hooks: hooks often close over the
        original object (a cache to invalidate), and a ref that went through a ``jax.tree``
        operation carries no manager at all.

    Returns
    -------
    Any
        The rebuilt root.

    Raises
    ------
    TypeError
        If ``graphdef`` is not a :class:`GraphDef`.
    ValueError
        If the mapping lacks a path the GraphDef needs (``Expected key <path> in the state
        mapping ...``), has paths it does not use, or holds something other than a state at a
        state path; if a node type is unknown or a cached object has the wrong type.
    StateSignatureError
        If a value's signature differs from the recorded one (see ``check_signatures``).
    """
    if not isinstance(graphdef, GraphDef):
        raise TypeError(
            f"unflatten expects a brainstate.graph.GraphDef as its first argument, got "
            f"{type(graphdef).__qualname__}."
        )
    mapping = as_nested(state_mapping)
    size = None
    if index_ref is None:
        # the core then keeps its index table in a list of this size (-1: keep a dict)
        size = graphdef._size
        if size is None:
            size = _core.index_bound(graphdef._root, graphdef._records)
            object.__setattr__(graphdef, "_size", size)
    check = check_signatures and not _core.is_rebinding()
    with R.gc_paused():
        return _Decoder(graphdef, mapping, index_ref, index_ref_cache, check, copy_hooks,
                        size).run()


class _Decoder(_core.DecoderCore):
    """One unflatten call: the core's loops plus the rare paths and the errors."""

    __slots__ = ()

    def run(self) -> Any:
        gd = self.gd
        records = gd._records
        # Pass 1: every node shell exists before anything points at it.
        self._make_shells(records)
        root = gd._root
        if root[0] == NODE_DEF:
            self.subs[root[1]] = self.mapping
        if gd._prepass:
            self._define_all()
        # The root code first (pre-order first), then the records in index order.
        result = self._resolve_root(root)
        self._fill(records)
        if self.exact and self.total != self.dicts + self.leaves:
            self._raise_extra()
        return result

    # -- errors (the core detects, these word) --

    def _path_of(self, index: int | None, keys: tuple) -> tuple:
        if index is None:
            return keys
        base = _node_paths(self.gd._root, self.gd._records).get(index)
        return (*base, *keys) if base is not None else keys

    def _raise(self, index: int | None, err: _RebuildError):
        path = self._path_of(index, err.keys)
        raise err.make(R.format_path(path)) from err.__cause__

    def _raise_extra(self):
        expected = _expected_paths(self.gd)
        extra = []
        for path in _mapping_paths(self.mapping, expected):
            extra.append(R.format_path(path))
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise ValueError(
            f"The state mapping has {len(extra) or 'some'} path(s) that the GraphDef does not "
            f"use: {shown or '(entries of unexpected kind)'}. Merge a mapping split from the "
            "same graph (treefy_split), or drop the extra entries first."
        )

    def _bad_node_type(self, t: type) -> None:
        R.get_node_impl(t)  # raises the "Unknown graph node type" error

    def _bad_cached_node(self, t: type, index: int, shell: Any) -> None:
        raise ValueError(
            f"Expected a node of type {t.__qualname__} for index {index} in "
            f"index_ref_cache, but it holds a {type(shell).__qualname__}. The "
            "cache must come from rebuilding the same graph."
        )

    def _bad_signature(self, keys_path: tuple, st: State, sig: Any) -> _RebuildError:
        return _RebuildError(keys_path, lambda where: _signature_error(where, st, sig))

    def _not_a_dict(self, keys_path: tuple, value: Any) -> _RebuildError:
        return _not_a_dict(keys_path, value)

    def _unknown_index(self, keys_path: tuple, what: str, index: int) -> _RebuildError:
        return _unknown_index(keys_path, what, index)

    def _bad_code(self, code: Any) -> BaseException:
        return TypeError(f"Unknown GraphDef code {code!r}; this is a bug.")

    # -- the passes --

    def _resolve_root(self, root: tuple) -> Any:
        tag = root[0]
        if tag == NODE_DEF or tag == NODE_REF:
            try:
                return self.table[root[1]]
            except KeyError:
                raise ValueError(
                    f"The GraphDef's root refers to node index {root[1]}, which is neither in "
                    "the GraphDef nor in the merge context. Merge it inside the merge_context "
                    "that rebuilt the graphs it was split with."
                ) from None
        try:
            if tag == PYTREE:
                return self._pytree(root, self.mapping, (), True)
            return self._items(("",), (root,), None, ())[0]
        except _RebuildError as err:
            self._raise(None, err)

    # -- the rare paths of the core's loops --

    def _ref_to_state(self, ref: TreefyState) -> State:
        return ref_to_state(ref)

    def _leaf(self, path: tuple, keys_path: tuple) -> Any:
        v = _lookup(self.mapping, path)
        if v is _MISSING:
            raise _RebuildError(
                keys_path,
                lambda where, p=path: ValueError(
                    f"Expected key {R.format_path(p)} in the state mapping while rebuilding the "
                    "graph."
                ),
            )
        self.leaves += 1
        return ref_to_state(v, self.copy_hooks) if isinstance(v, TreefyState) else v

    def _state_at(self, code: tuple, keys_path: tuple) -> State:
        return self._state(_lookup(self.mapping, code[4]), code, keys_path, explicit=code[4])

    def _state(self, v, code, keys_path, explicit=None) -> State:
        index = code[1]
        cache = self.cache
        if v is _MISSING:
            if cache is not None and index in cache:
                st = cache[index]
                self.table[index] = st
                return st
            shown = explicit
            raise _RebuildError(
                keys_path,
                lambda where: ValueError(
                    f"Expected key {R.format_path(shown) if shown is not None else where} in "
                    "the state mapping while rebuilding the graph. The GraphDef has a "
                    f"{code[2].__name__} there; merge every mapping returned by treefy_split "
                    "(or include that path)."
                ),
            )
        self.leaves += 1
        if cache is not None and index in cache:
            st = self._update_cached(cache[index], v, keys_path)
        elif isinstance(v, TreefyState):
            st = ref_to_state(v, self.copy_hooks)
        elif isinstance(v, State):
            st = v
        else:
            raise _RebuildError(
                keys_path,
                lambda where: ValueError(
                    f"Expected a TreefyState or State at path {where} of the state mapping, got "
                    f"{type(v).__qualname__}: {_short_repr(v)}. The GraphDef has a "
                    f"{code[2].__name__} there."
                ),
            )
        sig = code[3]
        if self.check and sig is not None and st._signature != sig and \
                not _keep_poisoned(st, sig):
            raise _RebuildError(
                keys_path,
                lambda where: _signature_error(where, st, sig),
            )
        self.table[index] = st
        return st

    def _cached_error(self, keys_path: tuple, exc: Exception) -> Exception:
        """What ``_update_cached`` raises for ``exc`` (the compiled update's failure)."""
        if isinstance(exc, StateSignatureError):
            err = _RebuildError(
                keys_path,
                lambda where, exc=exc: StateSignatureError(
                    f"At path {where} of the state mapping: {exc}"
                ),
            )
            err.__cause__ = exc
            return err
        return exc

    def _update_cached(self, st: Any, v: Any, keys_path: tuple) -> State:
        if not isinstance(st, State):
            raise _RebuildError(
                keys_path,
                lambda where: ValueError(
                    f"index_ref_cache holds a {type(st).__qualname__} where the state at path "
                    f"{where} should be; the cache must come from rebuilding the same graph."
                ),
            )
        try:
            if isinstance(v, TreefyState):
                st.update_from_ref(v)
            elif isinstance(v, State):
                if v._been_writen:
                    st.value = v.value
                else:
                    st.restore_value(v.value)
            else:
                raise _RebuildError(
                    keys_path,
                    lambda where: ValueError(
                        f"Expected a TreefyState or State at path {where} of the state mapping, "
                        f"got {type(v).__qualname__}."
                    ),
                )
        except StateSignatureError as exc:
            raise self._cached_error(keys_path, exc) from exc
        return st

    def _define_all(self) -> None:
        """Pre-pass: materialise every defining state before any record is filled.

        Leaves and node sub-mappings are counted here; the fill pass finds these states and
        sub-mappings already in place and does not count them again.
        """
        root = self.gd._root
        if root[0] == PYTREE:
            self._define_codes(root[2], root[3], self.mapping, (), None)
        for _, index, _, keys, codes in self.gd._records:
            self._define_codes(keys, codes, self.subs.get(index), (), index)

    def _define_codes(self, keys, codes, sub, prefix, index) -> None:
        table = self.table
        for k, c in zip(keys, codes):
            tag = c[0]
            try:
                if tag == STATE_DEF and c[1] not in table:
                    v = sub.get(k, _MISSING) if sub is not None else _MISSING
                    self._state(v, c, (*prefix, k))
                elif tag == STATE_AT and c[1] not in table:
                    self.exact = False
                    self._state(_lookup(self.mapping, c[4]), c, (*prefix, k), explicit=c[4])
                elif tag == NODE_DEF and sub is not None and c[1] not in self.subs:
                    child = sub.get(k)
                    if isinstance(child, dict):
                        self.dicts += 1
                        self.total += len(child)
                        self.subs[c[1]] = child
                elif tag == PYTREE:
                    child = sub.get(k) if sub is not None else None
                    self._define_codes(c[2], c[3], child if isinstance(child, dict) else None,
                                       (*prefix, k), index)
            except _RebuildError as err:
                self._raise(index, err)


def _keep_poisoned(st: State, sig: Any) -> bool:
    """A poisoned state (value died with its trace) is rebuilt poisoned, with its signature."""
    if st._value is _core.INVALID:
        st._signature = sig
        return True
    return False


def _lookup(mapping: Any, path: tuple) -> Any:
    cur = mapping
    for part in path:
        if not isinstance(cur, dict):
            return _MISSING
        cur = cur.get(part, _MISSING)
        if cur is _MISSING:
            return _MISSING
    return cur


def _not_a_dict(keys_path: tuple, value: Any) -> _RebuildError:
    return _RebuildError(
        keys_path,
        lambda where: ValueError(
            f"Expected a sub-mapping at path {where} of the state mapping (the GraphDef has "
            f"a container there), got {type(value).__qualname__}: {_short_repr(value)}."
        ),
    )


def _unknown_index(keys_path: tuple, what: str, index: int) -> _RebuildError:
    return _RebuildError(
        keys_path,
        lambda where: ValueError(
            f"The {what} at path {where} refers to index {index}, which this GraphDef does not "
            f"define and the merge context does not hold. A GraphDef split inside a "
            "split_context must be merged inside the matching merge_context, after the "
            "GraphDefs it shares objects with."
        ),
    )


def _signature_error(where: str, st: State, sig: Any) -> StateSignatureError:
    from brainstate._signature import _first_difference

    try:
        detail = _first_difference(sig, st._value)
    except Exception:  # the words are best effort; the mismatch itself is certain
        detail = f"expected {sig}, got {st._signature}"
    return StateSignatureError(
        f"Cannot rebuild the {type(st).__name__} at path {where}: the value in the state mapping "
        f"does not match the signature recorded when the graph was split; {detail}.\n"
        "Merge values of the recorded structure, shapes and dtypes, or rebuild with new "
        "signatures on purpose: pass check_signatures=False, or merge inside "
        "`brainstate.check_state_value_tree(False)`."
    )


def _short_repr(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _expected_paths(gd: GraphDef) -> set:
    """Every leaf path and every sub-mapping path a mapping for ``gd`` may contain."""
    paths: set = set()
    node_paths = _node_paths(gd._root, gd._records)
    todo: list = []  # (keys, codes, base) of the containers still to look at

    root = gd._root
    if root[0] == PYTREE:
        todo.append((root[2], root[3], ()))
    for _, index, _, keys, codes in reversed(gd._records):
        base = node_paths.get(index)
        if base is not None:
            todo.append((keys, codes, base))
    while todo:
        keys, codes, base = todo.pop()
        for k, c in zip(keys, codes):
            tag = c[0]
            if tag == STATE_DEF:
                paths.add((*base, k))
            elif tag == STATE_AT:
                paths.add(c[4])
            elif tag == LEAF:
                paths.add(c[1])
            elif tag == PYTREE:
                todo.append((c[2], c[3], (*base, k)))
    # Every prefix of an expected leaf is an expected sub-mapping.
    for p in list(paths):
        for n in range(1, len(p)):
            paths.add(p[:n])
    return paths


def _mapping_paths(mapping: dict, expected: set) -> list:
    """The paths of ``mapping`` not in ``expected`` (not descending below such a path), in
    depth-first order."""
    out: list = []
    # iterative: mappings nest one level per graph node
    stack: list[tuple[tuple, Iterator]] = [((), iter(mapping.items()))]
    while stack:
        prefix, it = stack[-1]
        for k, v in it:
            path = (*prefix, k)
            if path not in expected:
                out.append(path)
            elif isinstance(v, dict):
                stack.append((path, iter(v.items())))
                break  # walk the sub-mapping; this loop resumes after it
        else:
            stack.pop()
    return out

