# The decoder behind graph.unflatten / treefy_merge (included by _core.pyx).
# Twin: brainstate/_core_py/_decoder.py.

# --- unflatten --------------------------------------------------------------------------------

# mirrors ``append(value)`` in _core_py._decoder.DecoderCore._items (or the __dict__ update of
# _fill)
cdef inline int _emit(list out, dict target, object k, object value) except -1:
    if target is None:
        return PyList_Append(out, value)
    return PyDict_SetItem(target, k, value)


cdef tuple _INDEXED_TAGS = (_C_NODE_DEF, _C_NODE_REF, _C_STATE_DEF, _C_STATE_REF, _C_STATE_AT)


# mirrors _core_py._decoder.index_bound
cdef int _bound_visit(object code, Py_ssize_t* top, Py_ssize_t* count, bint* bad) except -1:
    cdef Py_ssize_t tag = code[0]
    if tag == _C_NODE_DEF or tag == _C_NODE_REF or tag == _C_STATE_DEF or \
            tag == _C_STATE_REF or tag == _C_STATE_AT:
        i = code[1]
        count[0] += 1
        if type(i) is not int or i < 0:
            bad[0] = True
        elif i > top[0]:
            top[0] = i
    elif tag == _C_PYTREE:
        # pytree codes nest as deep as the pytrees did (bounded by the recursion limit when
        # made by encode, not when built by hand): a RecursionError, never a C stack overflow
        Py_EnterRecursiveCall(" while rebuilding a graph")
        try:
            for c in code[3]:
                _bound_visit(c, top, count, bad)
        finally:
            Py_LeaveRecursiveCall()
    return 0


def index_bound(root, records):
    """One more than the largest index a GraphDef's codes use, or -1 when the indices are not
    ints or leave more than half of that range unused (then a dict holds them better)."""
    cdef Py_ssize_t top = -1, count = 0
    cdef bint bad = False
    _bound_visit(root, &top, &count, &bad)
    for rec in records:
        i = rec[1]
        count += 1
        if type(i) is not int or i < 0:
            bad = True
        elif i > top:
            top = i
        for c in rec[4]:
            _bound_visit(c, &top, &count, &bad)
    if bad or top + 1 > 2 * count + 64:
        return -1
    return top + 1


# mirrors the index -> object dict of _core_py._decoder.DecoderCore (table and subs)
cdef class _IndexTable:
    """``index -> object`` for one unflatten call: a list over the GraphDef's index range, a
    dict for any other key. The mapping protocol serves the Python slow paths."""

    cdef list items
    cdef Py_ssize_t n
    cdef dict other

    def __cinit__(self, Py_ssize_t n):
        self.items = [None] * n
        self.n = n
        self.other = {}

    # mirrors the key hashing of a dict index table
    cdef inline Py_ssize_t slot(self, object idx):
        cdef Py_ssize_t i
        if type(idx) is int:
            i = PyLong_AsSsize_t(idx)
            if i == -1 and PyErr_Occurred():
                PyErr_Clear()
                return -1
            if 0 <= i < self.n:
                return i
        return -1

    # mirrors ``table.get(idx)``
    cdef inline object cget(self, object idx):
        """The object at ``idx``, or None."""
        cdef Py_ssize_t i = self.slot(idx)
        if i >= 0:
            return <object>PyList_GET_ITEM(self.items, i)
        return self.other.get(idx)

    # mirrors ``table[idx] = v``
    cdef inline int cset(self, object idx, object v) except -1:
        cdef Py_ssize_t i = self.slot(idx)
        if i >= 0:
            # index checked by slot(): store without Cython's bounds-checked item assignment
            old = PyList_GET_ITEM(self.items, i)
            Py_INCREF(v)
            _list_set_item(self.items, i, <PyObject*>v)
            Py_XDECREF(old)
        else:
            self.other[idx] = v
        return 0

    def __getitem__(self, idx):
        v = self.cget(idx)
        if v is None:
            raise KeyError(idx)
        return v

    def __setitem__(self, idx, v):
        if v is None:
            raise ValueError("an index table holds objects, not None")
        self.cset(idx, v)

    def __contains__(self, idx):
        return self.cget(idx) is not None

    def get(self, idx, default=None):
        v = self.cget(idx)
        return default if v is None else v


# mirrors ``table.get(index)`` in _core_py._decoder.DecoderCore (None: absent)
cdef inline object _tab_get(object tab, bint dense, object idx):
    cdef PyObject* p
    if dense:
        return (<_IndexTable>tab).cget(idx)
    p = PyDict_GetItemWithError(<dict>tab, idx)
    return None if p == NULL else <object>p


# mirrors ``table[index] = v`` in _core_py._decoder.DecoderCore
cdef inline int _tab_set(object tab, bint dense, object idx, object v) except -1:
    if dense:
        return (<_IndexTable>tab).cset(idx, v)
    return PyDict_SetItem(<dict>tab, idx, v)


cdef extern from "Python.h":
    int PyDict_Next(object d, Py_ssize_t* pos, PyObject** key, PyObject** value)


# ``sub[k]`` for keys asked in the sub-mapping's own order (a split writes each node's entries
# in its key order, and a jax.tree.map keeps it): the next entry is checked by key identity
# before falling back to a hash lookup (~10 ns per state of a merge).
cdef inline object _sub_get(dict sub, object k, Py_ssize_t* pos):
    cdef PyObject* key
    cdef PyObject* value
    cdef Py_ssize_t at = pos[0]
    if PyDict_Next(sub, &at, &key, &value) and key == <PyObject*>k:
        pos[0] = at
        return <object>value
    value = PyDict_GetItemWithError(sub, k)
    return _G_MISSING if value == NULL else <object>value


# mirrors _core_py._decoder.DecoderCore
cdef class DecoderCore:
    """The loops of one ``graph.unflatten`` call; the graph package subclasses it with the rare
    paths (``_state``, ``_leaf``, ``_ref_to_state``) and the errors (``_raise``, ``_bad_*``).

    Holds no reference to itself: no cycles for the garbage collector.
    """

    cdef public object gd
    cdef public object mapping
    cdef public object table     # index -> object: the caller's dict, or an _IndexTable
    cdef public object cache
    cdef public bint check
    cdef public bint copy_hooks
    cdef public object subs      # node index -> its sub-mapping (None: nothing below it)
    cdef public Py_ssize_t total
    cdef public Py_ssize_t dicts
    cdef public Py_ssize_t leaves
    cdef public bint exact
    cdef _Rebinder _rb
    cdef dict _fast_types
    cdef list _shells      # the shells of the records, in order (set by _make_shells)
    cdef bint _dense       # table and subs are _IndexTables
    cdef object _last_type # the last node type _is_fast answered for (records repeat types)
    cdef bint _last_fast

    def __init__(self, gd, mapping, table, cache, bint check, bint copy_hooks, size=None):
        # ``table``: the caller's index -> object dict (merge_context), or None for a fresh
        # one; ``size`` (from index_bound) lets the fresh one be a list.
        self.gd = gd
        self.mapping = mapping
        self.cache = cache
        self.check = check
        self.copy_hooks = copy_hooks
        if table is None and size is not None and size >= 0:
            self._dense = True
            self.table = _IndexTable(size)
            self.subs = _IndexTable(size)
        else:
            self._dense = False
            self.table = {} if table is None else <dict?>table
            self.subs = {}
        # Extra-path detection: every mapping dict reached contributes its length; every
        # entry consumed (a leaf or a sub-dict reached) must account for one of them.
        self.total = len(mapping)
        self.dicts = 0
        self.leaves = 0
        # Explicit-path codes (hand-built GraphDefs) may reach dicts the count does not see.
        self.exact = True
        self._rb = None
        self._fast_types = {}

    # mirrors ``impl.fast`` in _core_py._decoder.DecoderCore._make_shells / _fill
    cdef bint _is_fast(self, object t, object impl) except -1:
        cdef PyObject* p
        if t is self._last_type:
            return self._last_fast
        p = PyDict_GetItemWithError(self._fast_types, t)
        if p != NULL:
            fast = <object>p is True
        else:
            fast = bool(impl.fast)
            self._fast_types[t] = fast
        self._last_type = t
        self._last_fast = fast
        return fast

    cdef object _checked_table(self):
        # ``table`` and ``subs`` are public attributes: refuse what the walks cannot index (a
        # bare instance holds None) before a C-level dict call sees it
        cdef object t = self.table
        cdef object u = self.subs
        if self._dense:
            if type(t) is _IndexTable and type(u) is _IndexTable:
                return t
        elif isinstance(t, dict) and isinstance(u, dict):
            return t
        raise TypeError(
            f"DecoderCore.table and .subs must be "
            f"{'the index tables it was built with' if self._dense else 'dicts'}, got "
            f"{type(t).__name__} and {type(u).__name__}; build the decoder through its __init__."
        )

    # mirrors _core_py._decoder.DecoderCore._make_shells (def: called once per call by the subclass)
    def _make_shells(self, records):
        """Pass 1: every node shell exists (in the table) before anything points at it."""
        cdef object table = self._checked_table()
        cdef bint dense = self._dense
        cdef PyObject* p
        cdef list shells = []
        cache = self.cache
        for rec in records:
            t = rec[0]
            index = rec[1]
            p = PyDict_GetItemWithError(_g_impls, t)
            if p == NULL:
                self._bad_node_type(t)
                impl = None
            else:
                impl = <object>p
            if type(cache) is dict:
                p = PyDict_GetItemWithError(<dict>cache, index)
                shell = None if p == NULL else <object>p
            elif cache is not None and index in cache:
                shell = cache[index]
            else:
                shell = None
            if shell is not None:
                if type(shell) is not t:
                    self._bad_cached_node(t, index, shell)
                if self._is_fast(t, impl):
                    PyDict_Clear(_node_dict(shell))  # a fast node's impl.clear: vars().clear()
                else:
                    impl.clear(shell)
            elif self._is_fast(t, impl):
                shell = _new_plain(t)
            else:
                shell = impl.create_empty(rec[2])
            _tab_set(table, dense, index, shell)
            shells.append(shell)
        self._shells = shells

    # mirrors _core_py._decoder.DecoderCore._fill (def: called once per call by the subclass)
    def _fill(self, records):
        """Fill the shells record by record (ascending index = pre-order)."""
        cdef object table = self._checked_table()
        cdef object subs = self.subs
        cdef bint dense = self._dense
        cdef dict d
        cdef PyObject* p
        cdef PyObject** dp
        cdef list shells = self._shells
        cdef Py_ssize_t j = 0
        if shells is not None and len(shells) != len(records):
            shells = None
        for rec in records:
            t, index, _, keys, codes = rec
            shell = <object>PyList_GET_ITEM(shells, j) if shells is not None else table[index]
            j += 1
            if t is self._last_type:
                fast = self._last_fast
                impl = None
            else:
                impl = _g_impls[t]
                fast = self._is_fast(t, impl)
            sub = _tab_get(subs, dense, index)
            d = {} if fast else None
            try:
                values = self._items_c(keys, codes, sub, _EMPTY, d)
            except _g_rebuild_error as err:
                self._raise(index, err)
            if fast:
                dp = _PyObject_GetDictPtr(shell)
                if dp != NULL and dp[0] == NULL:
                    PyObject_GenericSetDict(shell, d, NULL)  # a fresh shell: the dict is its
                else:
                    _node_dict(shell).update(d)
            else:
                if impl is None:
                    impl = _g_impls[t]
                for k, v in zip(keys, values):
                    impl.set_key(shell, k, v)

    def _pytree(self, code, sub, keys_path, is_root):
        return self._pytree_c(code, sub, keys_path, is_root)

    def _items(self, keys, codes, sub, prefix):
        """Resolve the codes of one container whose sub-mapping is ``sub`` (or None)."""
        return self._items_c(keys, codes, sub, tuple(prefix), None)

    # mirrors _core_py._decoder.DecoderCore._pytree
    cdef object _pytree_c(self, object code, object sub, object keys_path, bint is_root):
        cdef Py_ssize_t kind
        if sub is not None and not is_root:
            if not isinstance(sub, dict):
                raise self._not_a_dict(keys_path, sub)
            self.dicts += 1
            self.total += len(sub)
        Py_EnterRecursiveCall(" while rebuilding a graph")
        try:
            children = self._items_c(code[2], code[3], sub, tuple(keys_path), None)
        finally:
            Py_LeaveRecursiveCall()
        treedef = code[1]
        try:
            kind = _g_treedef_kinds.get(treedef, 0)
        except TypeError:
            kind = 0
        if kind == _LIST_KIND:
            return children
        if kind == _TUPLE_KIND:
            return tuple(children)
        if kind == _DICT_KIND:
            return dict(zip(code[2], children))
        return treedef.unflatten(children)

    cdef object _fast_cached(self, object idx):
        """The cache's state at ``idx`` when its class takes the compiled update (else None)."""
        cdef PyObject* p = PyDict_GetItemWithError(<dict>self.cache, idx)
        if p == NULL or not isinstance(<object>p, StateCore):
            return None
        if self._rb is None:
            self._rb = _Rebinder()
        return <object>p if _fast_state_cls(self._rb, type(<object>p)) else None

    # mirrors _core_py._decoder.DecoderCore._items; with ``target`` the values go into it under
    # their keys (a node's new __dict__) and None is returned
    cdef list _items_c(self, object keys, object codes, object sub, tuple prefix, dict target):
        cdef object table = self._checked_table()
        cdef object subs = self.subs
        cdef bint dense = self._dense
        cdef list out = [] if target is None else None
        cdef Py_ssize_t j, n, tag, n_leaves = 0
        cdef bint inline = self.cache is None and not self.copy_hooks
        cdef bint cached = type(self.cache) is dict and not self.copy_hooks
        cdef bint check = self.check
        cdef bint dict_sub = type(sub) is dict
        cdef PyObject* p
        cdef tuple c
        cdef Py_ssize_t cursor = 0  # _sub_get's position in a dict ``sub``
        if type(keys) is not tuple:
            keys = tuple(keys)
        if type(codes) is not tuple:
            codes = tuple(codes)
        n = min(PyTuple_GET_SIZE(keys), PyTuple_GET_SIZE(codes))
        sub_get = None if sub is None or dict_sub else sub.get
        for j in range(n):
            k = <object>PyTuple_GET_ITEM(keys, j)
            c = <tuple?><object>PyTuple_GET_ITEM(codes, j)
            tag = c[0]
            if tag == _C_STATE_DEF:
                idx = c[1]
                st = _tab_get(table, dense, idx)
                if st is None:
                    if dict_sub:
                        v = _sub_get(<dict>sub, k, &cursor)
                    elif sub_get is not None:
                        v = sub_get(k, _G_MISSING)
                    else:
                        v = _G_MISSING
                    if inline and type(v) is _g_ref_type:
                        if self._rb is None:
                            self._rb = _Rebinder()
                        st = _rebuild(v, self._rb)
                        if st is None:
                            st = self._ref_to_state(v)
                        n_leaves += 1
                        sig = c[3]
                        if check and sig is not None and _sig_differs_any(st, sig) and \
                                not _keep_poisoned_any(st, sig):
                            self.leaves += n_leaves
                            raise self._bad_signature(_path_plus(prefix, k), st, sig)
                        _tab_set(table, dense, idx, st)
                    elif cached and type(v) is _g_ref_type and \
                            (<TreefyStateCore>v)._std and not (<TreefyStateCore>v)._extra:
                        # mirrors _Decoder._state / _update_cached for a state of the cache
                        st = self._fast_cached(idx)
                        if st is None:
                            st = self._state(v, c, _path_plus(prefix, k))
                        else:
                            n_leaves += 1
                            try:
                                _update_from_ref(<StateCore>st, <TreefyStateCore>v)
                            except Exception as exc:
                                self.leaves += n_leaves
                                raise self._cached_error(_path_plus(prefix, k), exc)
                            sig = c[3]
                            if check and sig is not None and \
                                    _sig_differs(<StateCore>st, sig) and \
                                    not _keep_poisoned(<StateCore>st, sig):
                                self.leaves += n_leaves
                                raise self._bad_signature(_path_plus(prefix, k), st, sig)
                            _tab_set(table, dense, idx, st)
                    else:
                        st = self._state(v, c, _path_plus(prefix, k))
                _emit(out, target, k, st)
            elif tag == _C_STATIC:
                _emit(out, target, k, c[1])
            elif tag == _C_NODE_DEF:
                if sub is not None:
                    if dict_sub:
                        child = _sub_get(<dict>sub, k, &cursor)
                        if child is _G_MISSING:
                            child = None
                    else:
                        child = sub_get(k)
                    if child is not None:
                        if not isinstance(child, dict):
                            raise self._not_a_dict(_path_plus(prefix, k), child)
                        idx = c[1]
                        if _tab_get(subs, dense, idx) is None:
                            self.dicts += 1
                            self.total += len(child)
                            _tab_set(subs, dense, idx, child)
                node = _tab_get(table, dense, c[1])
                if node is None:
                    raise KeyError(c[1])
                _emit(out, target, k, node)
            elif tag == _C_NODE_REF:
                node = _tab_get(table, dense, c[1])
                if node is None:
                    raise self._unknown_index(_path_plus(prefix, k), "node", c[1])
                _emit(out, target, k, node)
            elif tag == _C_STATE_REF:
                st = _tab_get(table, dense, c[1])
                if st is None:
                    raise self._unknown_index(_path_plus(prefix, k), "state", c[1])
                _emit(out, target, k, st)
            elif tag == _C_PYTREE:
                if sub is None:
                    child = None
                elif dict_sub:
                    p = PyDict_GetItemWithError(<dict>sub, k)
                    child = None if p == NULL else <object>p
                else:
                    child = sub_get(k)
                _emit(out, target, k, self._pytree_c(c, child, _path_plus(prefix, k), False))
            elif tag == _C_LEAF:
                self.exact = False
                _emit(out, target, k, self._leaf(c[1], _path_plus(prefix, k)))
            elif tag == _C_STATE_AT:
                self.exact = False
                st = _tab_get(table, dense, c[1])
                if st is None:
                    st = self._state_at(c, _path_plus(prefix, k))
                _emit(out, target, k, st)
            else:
                raise self._bad_code(c)
        if n_leaves:
            self.leaves += n_leaves
        return out

