# The encoder behind graph.flatten / treefy_split (included by _core.pyx).
# Twin: brainstate/_core_py/_encoder.py.

# --- flatten ----------------------------------------------------------------------------------

# mirrors the signature part of the STATE_DEF code in _core_py._encoder.encode
cdef inline object _split_signature(object state):
    """``st._signature``, or the held value's signature under a view or with tracers."""
    if not isinstance(state, StateCore):  # a hosted state: attribute access
        return make_signature(state._value) if state._flags else state._signature
    cdef StateCore st = <StateCore>state
    if st._flags and not (st._holder is not None and _foreign(st)):
        return make_signature(st._value)
    return _state_signature(st)


# One container being encoded by _Encoder: what enc_node / enc_pytree and their enc_items call
# in _core_py._encoder.encode hold while they loop over its children.
@cython.final
cdef class _EFrame(_Frame):
    cdef tuple keys        # the keys in order
    cdef object src
    cdef int src_kind      # 0: src is a dict indexed by keys; 1: a list; 2: a tuple
    cdef tuple codes       # the children's codes (codes[:j] are set)
    cdef dict sub          # the sub-mapping so far
    cdef Py_ssize_t j      # the next child's position
    cdef Py_ssize_t pos    # the record the codes belong to (-1: the root pytree's)
    cdef bint all_static
    cdef bint is_node
    cdef object obj        # a node: its type; a pytree: the pytree
    cdef object index      # a node: its index; a pytree: its treedef
    cdef object meta       # a node: its metadata; a pytree: its keys as flattened
    cdef Py_ssize_t i      # a node: its index

# mirrors _core_py._encoder.encode (its closures are the methods; its recursion is the frames)
@cython.final
cdef class _Encoder:

    cdef object table      # the caller's id -> (obj, index) dict, or None
    cdef _PtrMap index     # address -> index, for the objects met in this call
    cdef list keep         # keeps them alive (and so their addresses unique) when table is None
    cdef Py_ssize_t count  # indices handed out: base + count is the next
    cdef list records
    cdef Py_ssize_t* owner # owner[i - base]: record position holding index i's defining code
    cdef Py_ssize_t owner_cap
    cdef Py_ssize_t base
    cdef bint prepass
    cdef bint treefy
    cdef dict order_cache
    cdef dict node_info    # type -> (impl, fast, invisible, (type,))
    cdef object root_sub
    cdef object root_code
    cdef list frames       # frames[:depth]: the containers being encoded, the root first
    cdef Py_ssize_t depth
    cdef Py_ssize_t limit  # sys.getrecursionlimit(): the deepest pytree nesting encoded

    def __dealloc__(self):
        _pm_free(&self.index)
        free(self.owner)

    # mirrors ``table_get(id(v))`` in _core_py._encoder.encode
    cdef Py_ssize_t lookup(self, object v) except -2:
        """The index of ``v`` (-1: not met yet)."""
        cdef Py_ssize_t i = _pm_get(&self.index, <void*>v)
        cdef PyObject* e
        if i < 0 and self.base:
            e = PyDict_GetItemWithError(<dict>self.table, PyLong_FromVoidPtr(<void*>v))
            if e != NULL:
                i = (<tuple><object>e)[1]
        return i

    # mirrors ``table[id(v)] = (v, i); owner.append(pos)`` in _core_py._encoder.encode
    cdef object add(self, object v, Py_ssize_t pos):
        """Give ``v`` the next index (defined by the record at ``pos``); returns the index."""
        cdef Py_ssize_t i = self.base + self.count
        if self.count == self.owner_cap:
            self.owner_cap = 2 * self.owner_cap + 64
            p = <Py_ssize_t*>realloc(self.owner, self.owner_cap * sizeof(Py_ssize_t))
            if p == NULL:
                raise MemoryError()
            self.owner = p
        self.owner[self.count] = pos
        self.count += 1
        _pm_put(&self.index, <void*>v, i)
        index = _index_int(i)
        if self.table is None:
            self.keep.append(v)
        else:
            self.table[PyLong_FromVoidPtr(<void*>v)] = (v, index)
        return index

    cdef inline _EFrame push(self, object k, Py_ssize_t nest):
        cdef _EFrame f
        if self.depth < PyList_GET_SIZE(self.frames):
            f = <_EFrame>PyList_GET_ITEM(self.frames, self.depth)
        else:
            f = _EFrame.__new__(_EFrame)
            self.frames.append(f)
        self.depth += 1
        f.key = k
        f.nest = nest
        return f

    # mirrors the start of enc_items of _core_py._encoder.encode
    cdef inline int start(self, _EFrame f, object keys, object src, int src_kind) except -1:
        if type(keys) is not tuple:
            keys = tuple(keys)
        f.keys = <tuple>keys
        f.src = src
        f.src_kind = src_kind
        f.codes = PyTuple_New(PyTuple_GET_SIZE(keys))
        f.sub = {}
        f.all_static = True
        f.j = 0
        return 0

    # mirrors enc_node of _core_py._encoder.encode up to its enc_items call
    cdef int push_node(self, object k, object node, object index, Py_ssize_t i) except -1:
        cdef tuple info
        cdef PyObject* p
        cdef Py_ssize_t pos
        cdef _EFrame f = self.push(k, 0)  # first: the node's path ends with its frame
        t = type(node)
        p = PyDict_GetItemWithError(self.node_info, t)
        if p == NULL:
            impl = _g_impls[t]
            fast = bool(impl.fast)
            info = (impl, fast, t.graph_invisible_attrs if fast else None, (t,))
            self.node_info[t] = info
        else:
            info = <tuple><object>p
        pos = len(self.records)
        self.records.append(None)
        if info[1]:
            src = _node_dict(node)
            keys = _sorted_keys(src, t, self.order_cache, info[2])
            metadata = info[3]
        else:
            keys, values, metadata = _g_node_children(
                info[0], node, _frames_path(self.frames, self.depth, NULL))
            keys = tuple(keys)
            src = dict(zip(keys, values))
        f.is_node = True
        f.obj = t
        f.index = index
        f.meta = metadata
        f.i = i
        f.pos = pos
        return self.start(f, keys, src, 0)

    # mirrors enc_pytree of _core_py._encoder.encode up to its enc_items call (``x`` is not None)
    cdef int push_pytree(self, object k, object x, Py_ssize_t pos, Py_ssize_t nest) except -1:
        cdef int src_kind = 0
        cdef Py_ssize_t n
        cdef _EFrame f = self.push(k, nest)  # first: the pytree's path ends with its frame
        t = type(x)
        if t is list or t is tuple:
            n = len(x)
            keys = _range_keys(n)
            src = x
            treedef = _g_seq_treedef(t, n)
            src_kind = 1 if t is list else 2
        elif t is dict:
            klist = PyDict_Keys(x)
            try:
                PyList_Sort(klist)
            except TypeError:
                keys, src, treedef = _g_flatten_pytree(  # raises the error
                    x, _frames_path(self.frames, self.depth, NULL))
            else:
                keys = tuple(klist)
                src = x
                treedef = _g_dict_treedef(keys)
        else:
            keys, src, treedef = _g_flatten_pytree(x, _frames_path(self.frames, self.depth, NULL))
        if nest > self.limit:
            _too_deep(" while flattening a graph")
        f.is_node = False
        f.obj = x
        f.index = treedef
        f.meta = keys
        f.pos = pos
        return self.start(f, keys, src, src_kind)

    # mirrors enc_items of _core_py._encoder.encode for the top frame, until a child is a
    # container to enter (its frame is pushed) or none is left; then the ends of enc_node /
    # enc_pytree for the finished frame, whose code goes to its parent where the recursive call
    # returned
    cdef int run(self) except -1:
        cdef Py_ssize_t kind, i, j, n, pos
        cdef int src_kind
        cdef bint all_static, pushed
        # borrowed from the top frame, which keeps them while its children are walked (and
        # after it is popped, until a push reuses it): no reference counting per resume
        cdef PyObject* keys
        cdef PyObject* src
        cdef PyObject* codes
        cdef PyObject* sub
        cdef _EFrame f
        cdef _EFrame parent
        while True:
            f = <_EFrame>PyList_GET_ITEM(self.frames, self.depth - 1)
            keys = <PyObject*>f.keys
            src = <PyObject*>f.src
            src_kind = f.src_kind
            codes = <PyObject*>f.codes
            sub = <PyObject*>f.sub
            pos = f.pos
            all_static = f.all_static
            j = f.j
            n = PyTuple_GET_SIZE(<object>keys)
            pushed = False
            while j < n:
                k = <object>PyTuple_GET_ITEM(<object>keys, j)
                if src_kind == 0:
                    v = (<dict><object>src)[k]
                elif src_kind == 1:
                    v = (<list><object>src)[j]
                else:
                    v = (<tuple><object>src)[j]
                kind = _graph_kind(v)
                if kind == _K_STATE:
                    all_static = False
                    t = type(v)
                    i = self.lookup(v)
                    if i < 0:
                        index = self.add(v, pos)
                        PyDict_SetItem(<object>sub, k, _make_ref(v) if self.treefy else v)
                        # A state under a transform's per-lane view holds a value of another
                        # shape than its stored signature: record what a rebuilt state will have.
                        code = _state_def_code(v, index, t, _split_signature(v))
                    else:
                        if i >= self.base and self.owner[i - self.base] > pos:
                            self.prepass = True
                        code = (_I_STATE_REF, _index_int(i), t)
                elif kind == _K_NONE:
                    code = _NONE_CODE
                elif kind == _K_STATIC:
                    code = (_I_STATIC, v)
                elif kind == _K_NODE:
                    all_static = False
                    i = self.lookup(v)
                    if i < 0:
                        i = self.base + self.count
                        index = self.add(v, pos)
                        f.j = j
                        f.all_static = all_static
                        self.push_node(k, v, index, i)
                        pushed = True
                        break
                    code = (_I_NODE_REF, _index_int(i))
                elif kind == _K_PYTREE:
                    if v is None:
                        code = _NONE_CODE  # static: all_static stays
                    else:
                        f.j = j
                        f.all_static = all_static
                        self.push_pytree(k, v, pos, f.nest + 1)
                        pushed = True
                        break
                else:  # a bare TreefyState that is not a pytree
                    all_static = False
                    PyDict_SetItem(<object>sub, k, v)
                    code = (_I_LEAF, _frames_path(self.frames, self.depth, <PyObject*>k))
                Py_INCREF(code)
                PyTuple_SET_ITEM(<object>codes, j, code)
                j += 1
            if pushed:
                continue
            # the frame is complete: pop it and hand its code (and sub-mapping) to the parent
            self.depth -= 1
            if f.is_node:
                self.records[pos] = (f.obj, f.index, f.meta, <object>keys, <object>codes)
                if self.depth == 0:
                    self.root_sub = <object>sub
                    return 0
                parent = <_EFrame>PyList_GET_ITEM(self.frames, self.depth - 1)
                if PyDict_GET_SIZE(<object>sub):
                    PyDict_SetItem(parent.sub, f.key, <object>sub)
                code = _node_def_code(f.i)
            else:
                if all_static and _g_hashable_by_value(f.obj):
                    code = (_I_STATIC, f.obj)
                elif self.depth == 0:
                    self.root_sub = <object>sub
                    code = (_I_PYTREE, f.index, f.meta, <object>codes)
                else:
                    if PyDict_GET_SIZE(<object>sub):
                        PyDict_SetItem(
                            (<_EFrame>PyList_GET_ITEM(self.frames, self.depth - 1)).sub,
                            f.key, <object>sub)
                    code = (_I_PYTREE, f.index, f.meta, <object>codes)
                if self.depth == 0:
                    self.root_code = code
                    return 0
                parent = <_EFrame>PyList_GET_ITEM(self.frames, self.depth - 1)
                if (<tuple>code)[0] is not _I_STATIC:
                    parent.all_static = False
            Py_INCREF(code)
            PyTuple_SET_ITEM(parent.codes, parent.j, code)
            parent.j += 1


def encode(root, root_kind, table, bint treefy):
    """The pre-order walk behind ``graph.flatten``.

    Returns ``(root_code, records, mapping, prepass, size)``; ``size`` is one more than the
    largest index used when ``table`` started empty, else None. ``table`` maps
    ``id(obj) -> (obj, index)`` and is extended in place (a split_context shares it across
    calls); None for a fresh one that the caller does not need back. See
    ``brainstate/graph/_graphdef.py`` for the codes.
    """
    cdef _Encoder enc = _Encoder.__new__(_Encoder)
    cdef Py_ssize_t i
    if table is not None and type(table) is not dict:
        raise TypeError(f"table must be a dict or None, got {type(table).__name__}")
    enc.table = table
    enc.keep = [] if table is None else None
    enc.count = 0
    enc.records = []
    enc.base = 0 if table is None else len(table)
    enc.prepass = False
    enc.treefy = treefy
    enc.order_cache = {}
    enc.node_info = {}
    enc.root_sub = None
    enc.root_code = None
    enc.frames = []
    enc.depth = 0
    enc.limit = Py_GetRecursionLimit()
    _pm_init(&enc.index, 64)
    if root_kind == _K_NODE:
        i = enc.lookup(root)
        if i >= 0:  # already split earlier in this split_context
            return (_I_NODE_REF, _index_int(i)), (), {}, False, None
        i = enc.base + enc.count
        index = enc.add(root, -1)
        enc.push_node(None, root, index, i)
        enc.run()
        size = None if enc.base else enc.count
        return (_I_NODE_DEF, index), tuple(enc.records), enc.root_sub, enc.prepass, size
    if root is None:
        code = _NONE_CODE
    else:
        enc.push_pytree(None, root, -1, 1)
        enc.run()
        code = enc.root_code
    sub = enc.root_sub
    size = None if enc.base else enc.count
    return code, tuple(enc.records), sub or {}, enc.prepass, size

