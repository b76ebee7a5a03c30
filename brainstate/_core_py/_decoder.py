"""Mirrors csrc/_core_decoder.pxi: the decoder behind ``graph.unflatten`` / ``treefy_merge``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from brainstate._core_py import _refs
from brainstate._core_py._refs import (
    _C_LEAF,
    _C_NODE_DEF,
    _C_NODE_REF,
    _C_PYTREE,
    _C_STATE_AT,
    _C_STATE_DEF,
    _C_STATE_REF,
    _C_STATIC,
    _DICT_KIND,
    _LIST_KIND,
    _TUPLE_KIND,
    _keep_poisoned,
    rebuild_state,
)
from brainstate._core_py._walk_common import _too_deep

def _treedef_kind(td: Any) -> int:
    try:
        return _refs._g_treedef_kinds.get(td, 0)
    except TypeError:
        return 0




_INDEXED = (_C_NODE_DEF, _C_NODE_REF, _C_STATE_DEF, _C_STATE_REF, _C_STATE_AT)


def index_bound(root: tuple, records: tuple) -> int:
    """One more than the largest index a GraphDef's codes use, or -1 when the indices are not
    ints or leave more than half of that range unused (then a dict holds them better)."""
    top = -1
    count = 0
    bad = False
    # the codes still to look at (a pytree code's children are pushed, not recursed into)
    todo = [root]
    pending = iter(records)
    while True:
        while todo:
            code = todo.pop()
            tag = code[0]
            if tag in _INDEXED:
                i = code[1]
                count += 1
                if type(i) is not int or i < 0:
                    bad = True
                elif i > top:
                    top = i
            elif tag == _C_PYTREE:
                todo.extend(code[3])
        rec = next(pending, None)
        if rec is None:
            break
        i = rec[1]
        count += 1
        if type(i) is not int or i < 0:
            bad = True
        elif i > top:
            top = i
        todo.extend(rec[4])
    if bad or top + 1 > 2 * count + 64:
        return -1
    return top + 1


class DecoderCore:
    """The loops of one ``graph.unflatten`` call; the graph package subclasses it with the rare
    paths (``_state``, ``_leaf``, ``_ref_to_state``) and the errors (``_raise``, ``_bad_*``).

    Holds no reference to itself: no cycles for the garbage collector.
    """

    __slots__ = ("gd", "mapping", "table", "cache", "check", "copy_hooks", "subs", "total",
                 "dicts", "leaves", "exact")

    if TYPE_CHECKING:  # the rare paths and the errors, defined by the graph package's subclass
        def _state(self, v: Any, code: tuple, keys_path: tuple) -> Any: ...
        def _state_at(self, code: tuple, keys_path: tuple) -> Any: ...
        def _ref_to_state(self, ref: Any) -> Any: ...
        def _leaf(self, path: tuple, keys_path: tuple) -> Any: ...
        def _raise(self, index: int | None, err: Any) -> None: ...
        def _bad_node_type(self, t: type) -> None: ...
        def _bad_cached_node(self, t: type, index: int, shell: Any) -> None: ...
        def _bad_signature(self, keys_path: tuple, st: Any, sig: Any) -> BaseException: ...
        def _not_a_dict(self, keys_path: tuple, value: Any) -> BaseException: ...
        def _unknown_index(self, keys_path: tuple, what: str, index: int) -> BaseException: ...
        def _bad_code(self, code: Any) -> BaseException: ...

    def __init__(self, gd: Any, mapping: Any, table: dict | None, cache: Any, check: bool,
                 copy_hooks: bool, size: int | None = None) -> None:
        # ``table``: the caller's index -> object dict (merge_context), or None for a fresh
        # one; ``size`` (from index_bound) lets the compiled twin keep that one in a list.
        self.gd = gd
        self.mapping = mapping
        self.table = {} if table is None else table
        self.cache = cache
        self.check = check
        self.copy_hooks = copy_hooks
        self.subs: dict = {}  # node index -> its sub-mapping (None: nothing below it)
        # Extra-path detection: every mapping dict reached contributes its length; every
        # entry consumed (a leaf or a sub-dict reached) must account for one of them.
        self.total = len(mapping)
        self.dicts = 0
        self.leaves = 0
        # Explicit-path codes (hand-built GraphDefs) may reach dicts the count does not see.
        self.exact = True

    def _make_shells(self, records: tuple) -> None:
        """Pass 1: every node shell exists (in the table) before anything points at it."""
        table = self.table
        cache = self.cache
        impls = _refs._g_impls
        for rec in records:
            t, index = rec[0], rec[1]
            impl: Any = impls.get(t)
            if impl is None:
                self._bad_node_type(t)
            if cache is not None and index in cache:
                shell = cache[index]
                if type(shell) is not t:
                    self._bad_cached_node(t, index, shell)
                impl.clear(shell)
            elif impl.fast:
                shell = object.__new__(t)
            else:
                shell = impl.create_empty(rec[2])
            table[index] = shell

    def _fill(self, records: tuple) -> None:
        """Fill the shells record by record (ascending index = pre-order)."""
        subs_get = self.subs.get
        table = self.table
        impls = _refs._g_impls
        for t, index, _, keys, codes in records:
            try:
                values = self._items(keys, codes, subs_get(index), ())
            except _refs._g_rebuild_error as err:
                self._raise(index, err)
            impl = impls[t]
            if impl.fast:
                table[index].__dict__.update(zip(keys, values))
            else:
                shell = table[index]
                for k, v in zip(keys, values):
                    impl.set_key(shell, k, v)

    def _pytree(self, code: tuple, sub: Any, keys_path: tuple, is_root: bool) -> Any:
        """The container a PYTREE ``code`` stands for; ``sub`` is its sub-mapping (or None)."""
        if sub is not None and not is_root:
            if not isinstance(sub, dict):
                raise self._not_a_dict(keys_path, sub)
            self.dicts += 1
            self.total += len(sub)
        return _build_pytree(code, self._walk(code[2], code[3], sub, keys_path, 1))

    def _items(self, keys: tuple, codes: tuple, sub: Any, prefix: tuple) -> list:
        """Resolve the codes of one container whose sub-mapping is ``sub`` (or None)."""
        return self._walk(keys, codes, sub, prefix, 0)

    def _walk(self, keys: tuple, codes: tuple, sub: Any, prefix: tuple, run: int) -> list:
        # ``run``: the consecutive pytree levels ending at this container (0: a node's record).
        # Nested PYTREE codes are resolved on an explicit stack, one frame per container:
        # [iterator over (key, code), its sub-mapping's get (None: no sub-mapping), its path
        # below the record, children resolved so far, its PYTREE code (None: the outermost)].
        table = self.table
        table_get = table.get
        subs = self.subs
        # The common state slot (a TreefyState with the standard layout, no cache, no hook
        # copying) is rebuilt here; everything else goes through self._state.
        inline = self.cache is None and not self.copy_hooks
        check = self.check
        missing, ref_type = _refs._MISSING, _refs._g_ref_type
        stack: list[list[Any]] = [
            [zip(keys, codes), sub.get if sub is not None else None, prefix, [], None]
        ]
        while True:
            frame = stack[-1]
            it, sub_get, prefix, out, _ = frame
            append = out.append
            n_leaves = 0
            for k, c in it:
                tag = c[0]
                if tag == _C_STATE_DEF:
                    st = table_get(c[1])
                    if st is None:
                        v = sub_get(k, missing) if sub_get is not None else missing
                        if inline and type(v) is ref_type:
                            st = rebuild_state(v)
                            if st is None:
                                st = self._ref_to_state(v)
                            n_leaves += 1
                            sig = c[3]
                            if check and sig is not None and st._signature != sig and \
                                    not _keep_poisoned(st, sig):
                                self.leaves += n_leaves
                                raise self._bad_signature((*prefix, k), st, sig)
                            table[c[1]] = st
                        else:
                            st = self._state(v, c, (*prefix, k))
                    append(st)
                elif tag == _C_STATIC:
                    append(c[1])
                elif tag == _C_NODE_DEF:
                    if sub_get is not None:
                        child = sub_get(k)
                        if child is not None:
                            if not isinstance(child, dict):
                                raise self._not_a_dict((*prefix, k), child)
                            if c[1] not in subs:
                                self.dicts += 1
                                self.total += len(child)
                                subs[c[1]] = child
                    append(table[c[1]])
                elif tag == _C_NODE_REF:
                    st = table_get(c[1], missing)
                    if st is missing:
                        raise self._unknown_index((*prefix, k), "node", c[1])
                    append(st)
                elif tag == _C_STATE_REF:
                    st = table_get(c[1])
                    if st is None:
                        raise self._unknown_index((*prefix, k), "state", c[1])
                    append(st)
                elif tag == _C_PYTREE:
                    # what _pytree does, its children walked by a new frame
                    child = sub_get(k) if sub_get is not None else None
                    path = (*prefix, k)
                    if child is not None:
                        if not isinstance(child, dict):
                            raise self._not_a_dict(path, child)
                        self.dicts += 1
                        self.total += len(child)
                    if run + len(stack) > sys.getrecursionlimit():
                        raise _too_deep("while rebuilding a graph")
                    stack.append([zip(c[2], c[3]), child.get if child is not None else None,
                                  path, [], c])
                    break
                elif tag == _C_LEAF:
                    self.exact = False
                    append(self._leaf(c[1], (*prefix, k)))
                elif tag == _C_STATE_AT:
                    self.exact = False
                    st = table_get(c[1])
                    if st is None:
                        st = self._state_at(c, (*prefix, k))
                    append(st)
                else:
                    raise self._bad_code(c)
            else:
                if n_leaves:
                    self.leaves += n_leaves
                stack.pop()
                code = frame[4]
                if code is None:
                    return out
                stack[-1][3].append(_build_pytree(code, out))
                continue
            if n_leaves:  # left to walk a nested pytree: count what this frame consumed
                self.leaves += n_leaves


def _build_pytree(code: tuple, children: list) -> Any:
    """The container of PYTREE ``code`` holding ``children``."""
    treedef = code[1]
    kind = _treedef_kind(treedef)
    if kind == _LIST_KIND:
        return children
    if kind == _TUPLE_KIND:
        return tuple(children)
    if kind == _DICT_KIND:
        return dict(zip(code[2], children))
    return treedef.unflatten(children)
