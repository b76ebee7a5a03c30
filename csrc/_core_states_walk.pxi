# The walk behind graph.states() (included by _core.pyx).
# Twin: brainstate/_core_py/_states_walk.py.

# --- states() ---------------------------------------------------------------------------------

cdef enum:
    _M_DICT = 0    # src[k] for k in keys, src a dict
    _M_LIST = 1    # the items of the list src, keyed by position
    _M_TUPLE = 2   # the items of the tuple src, keyed by position
    _M_ITEM = 3    # src[k] for k in keys, src any mapping


# One container being walked by _StatesWalk: what node() / the pytree branch of items() in
# _core_py._states_walk.collect_states hold while they loop over its children.
@cython.final
cdef class _SFrame(_Frame):
    cdef object keys       # _M_DICT, _M_ITEM: the keys in order (a tuple or a list)
    cdef object src
    cdef Py_ssize_t j      # the next child's position
    cdef Py_ssize_t level  # graph nodes entered above the children
    cdef int mode


# mirrors _core_py._states_walk.collect_states (its closures are the methods; its recursion is
# the frames)
@cython.final
cdef class _StatesWalk:

    cdef dict out
    cdef _PtrMap seen    # addresses of entered containers and of reported states
    cdef Py_ssize_t lo
    cdef Py_ssize_t hi
    cdef object accept
    cdef dict memo
    cdef dict order_cache
    cdef list frames     # frames[:depth]: the containers being walked, the root first
    cdef Py_ssize_t depth
    cdef Py_ssize_t limit  # sys.getrecursionlimit(): the deepest pytree nesting walked

    def __dealloc__(self):
        _pm_free(&self.seen)

    cdef inline _SFrame push(self, object k, Py_ssize_t level, Py_ssize_t nest):
        cdef _SFrame f
        if self.depth < PyList_GET_SIZE(self.frames):
            f = <_SFrame>PyList_GET_ITEM(self.frames, self.depth)
        else:
            f = _SFrame.__new__(_SFrame)
            self.frames.append(f)
        self.depth += 1
        f.key = k
        f.level = level
        f.nest = nest
        f.j = 0
        return f

    # mirrors the start of node() in _core_py._states_walk.collect_states
    cdef int push_node(self, object k, object n, Py_ssize_t level) except -1:
        cdef _SFrame f = self.push(k, level, 0)
        t = type(n)
        if t in _g_plain:
            d = _node_dict(n)
            f.keys = _sorted_keys(d, t, self.order_cache, None)
            f.src = d
        else:
            keys, values, _ = _g_node_children(_g_impls[t], n,
                                               _frames_path(self.frames, self.depth, NULL))
            f.src = dict(zip(keys, values))
            if type(keys) is not tuple and type(keys) is not list:
                keys = tuple(keys)
            f.keys = keys
        f.mode = _M_DICT
        return 0

    # mirrors the start of the pytree branch of items() in _core_py._states_walk.collect_states
    cdef int push_pytree(self, object k, object x, Py_ssize_t level, Py_ssize_t nest) except -1:
        cdef _SFrame f
        if nest > self.limit:
            _too_deep(" while walking a graph")
        f = self.push(k, level, nest)
        t = type(x)
        if t is list:
            f.mode = _M_LIST
            f.src = x
        elif t is tuple:
            f.mode = _M_TUPLE
            f.src = x
        else:
            sv = None
            if t is dict:
                # flatten_pytree's sorted keys, without building the path (a chain of nodes
                # through dicts would build one per dict: quadratic in the depth)
                ks = PyDict_Keys(x)
                try:
                    PyList_Sort(ks)
                except TypeError:
                    pass  # flatten_pytree raises the error
                else:
                    sv = x
            if sv is None:
                ks, sv, _ = _g_flatten_pytree(x, _frames_path(self.frames, self.depth, NULL))
            f.mode = _M_DICT if type(sv) is dict else _M_ITEM
            f.src = sv
            if type(ks) is not tuple and type(ks) is not list:
                ks = tuple(ks)
            f.keys = ks
        return 0

    # mirrors items() in _core_py._states_walk.collect_states: the children of the top frame,
    # until one is a container to enter (its frame is pushed) or none is left (the frame is
    # popped)
    cdef int run(self) except -1:
        cdef _SFrame f
        cdef Py_ssize_t kind, j, level
        cdef int mode
        cdef bint pushed
        cdef PyObject* keep
        cdef object keys
        cdef object src
        while self.depth > 0:
            f = <_SFrame>PyList_GET_ITEM(self.frames, self.depth - 1)
            keys = f.keys
            src = f.src
            mode = f.mode
            level = f.level
            j = f.j
            pushed = False
            while True:
                if mode == _M_LIST:
                    if j >= PyList_GET_SIZE(src):
                        break
                    k = _index_int(j)
                    v = <object>PyList_GET_ITEM(src, j)
                elif mode == _M_TUPLE:
                    if j >= PyTuple_GET_SIZE(src):
                        break
                    k = _index_int(j)
                    v = <object>PyTuple_GET_ITEM(src, j)
                else:
                    if type(keys) is tuple:
                        if j >= PyTuple_GET_SIZE(keys):
                            break
                        k = <object>PyTuple_GET_ITEM(keys, j)
                    else:
                        if j >= PyList_GET_SIZE(keys):
                            break
                        k = <object>PyList_GET_ITEM(keys, j)
                    if mode == _M_DICT:
                        v = (<dict>src)[k]
                    else:
                        v = src[k]
                j += 1
                kind = _graph_kind(v)
                if kind == _K_STATE:
                    if level >= self.lo and _pm_get(&self.seen, <void*>v) < 0:
                        if self.memo is not None:
                            t = type(v)
                            keep = PyDict_GetItemWithError(self.memo, t)
                            if keep == NULL:
                                kp = bool(self.accept(t))
                                self.memo[t] = kp
                            else:
                                kp = <object>keep
                            if not kp:
                                continue
                        _pm_put(&self.seen, <void*>v, 1)
                        self.out[_frames_path(self.frames, self.depth, <PyObject*>k)] = v
                elif kind == _K_NODE:
                    if level < self.hi and _pm_get(&self.seen, <void*>v) < 0:
                        _pm_put(&self.seen, <void*>v, 1)
                        f.j = j
                        self.push_node(k, v, level + 1)
                        pushed = True
                        break
                elif kind == _K_PYTREE:
                    if _pm_get(&self.seen, <void*>v) < 0:
                        _pm_put(&self.seen, <void*>v, 1)
                        f.j = j
                        self.push_pytree(k, v, level, f.nest + 1)
                        pushed = True
                        break
            if not pushed:
                self.depth -= 1
        return 0


def collect_states(root, lo, hi, accept=None):
    """``{path: state}`` in flatten order, each state once at its first path (``graph.states``).

    Containers are entered once by identity; depth grows by one per graph node entered and
    the walk stops below ``hi``. With ``accept`` (``state class -> bool``, memoised per class
    for the call) only states of accepted classes are kept.
    """
    cdef _StatesWalk w = _StatesWalk.__new__(_StatesWalk)
    w.out = {}
    _pm_init(&w.seen, 64)
    # depth bounds beyond any real depth behave alike: clamp them to the C range
    w.lo = max(min(lo, PY_SSIZE_T_MAX), -PY_SSIZE_T_MAX)
    w.hi = max(min(hi, PY_SSIZE_T_MAX), -PY_SSIZE_T_MAX)
    w.accept = accept
    w.memo = None if accept is None else {}
    w.order_cache = {}
    w.frames = []
    w.depth = 0
    w.limit = Py_GetRecursionLimit()
    if w.hi < 0:
        return w.out
    kind = _g_classify(root)
    if kind == _K_STATE:
        if w.lo <= 0 and (accept is None or accept(type(root))):
            w.out[()] = root
    elif kind == _K_NODE:
        _pm_put(&w.seen, <void*>root, 1)
        w.push_node(None, root, 0)
        w.run()
    elif kind == _K_PYTREE:
        _pm_put(&w.seen, <void*>root, 1)
        w.push_pytree(None, root, 0, 1)
        w.run()
    return w.out

