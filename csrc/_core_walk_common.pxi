# What the graph walks share: identity sets and lazy paths (included by _core.pyx).
# Twin: brainstate/_core_py/_walk_common.py.

# --- identity sets and lazy paths -------------------------------------------------------------

from libc.stdlib cimport calloc, free, realloc

# An open-addressing map from object addresses to indices: the walks' "seen"/"table" without a
# Python int, tuple and dict entry per object (they dominated the walks' allocations). The
# addresses are valid only while the objects live: the walks keep every object they record
# alive (the graph holds them, or a keep-alive list does).
cdef struct _PtrMap:
    void** keys
    Py_ssize_t* vals
    Py_ssize_t cap       # a power of two
    Py_ssize_t used
    int shift


# mirrors ``{}`` / ``set()`` for the id-keyed tables of _core_py._encoder.encode / collect_states
cdef int _pm_init(_PtrMap* m, Py_ssize_t cap) except -1:
    cdef int bits = 6
    while (<Py_ssize_t>1 << bits) < cap:
        bits += 1
    m.cap = <Py_ssize_t>1 << bits
    m.shift = 64 - bits
    m.used = 0
    m.keys = <void**>calloc(m.cap, sizeof(void*))
    m.vals = <Py_ssize_t*>calloc(m.cap, sizeof(Py_ssize_t))
    if m.keys == NULL or m.vals == NULL:
        free(m.keys)
        free(m.vals)
        m.keys = NULL
        m.vals = NULL
        raise MemoryError()
    return 0


# mirrors dropping those tables
cdef void _pm_free(_PtrMap* m):
    free(m.keys)
    free(m.vals)
    m.keys = NULL
    m.vals = NULL


# mirrors the hash lookup of those tables
cdef inline Py_ssize_t _pm_slot(_PtrMap* m, void* key):
    cdef size_t h = (<size_t>key * <size_t>11400714819323198485ULL) >> m.shift
    cdef size_t mask = <size_t>(m.cap - 1)
    while m.keys[h] != NULL and m.keys[h] != key:
        h = (h + 1) & mask
    return <Py_ssize_t>h


# mirrors ``table.get(id(v))`` / ``id(v) in seen`` in _core_py._encoder.encode / collect_states
cdef inline Py_ssize_t _pm_get(_PtrMap* m, void* key):
    """The value stored for ``key``, or -1."""
    cdef Py_ssize_t h = _pm_slot(m, key)
    return m.vals[h] if m.keys[h] != NULL else -1


# mirrors ``table[id(v)] = ...`` / ``seen.add(id(v))`` in _core_py._encoder.encode / collect_states
cdef int _pm_put(_PtrMap* m, void* key, Py_ssize_t val) except -1:
    cdef Py_ssize_t h, i
    cdef _PtrMap old
    if 2 * (m.used + 1) > m.cap:
        old = m[0]
        _pm_init(m, old.cap * 2)
        for i in range(old.cap):
            if old.keys[i] != NULL:
                h = _pm_slot(m, old.keys[i])
                m.keys[h] = old.keys[i]
                m.vals[h] = old.vals[i]
                m.used += 1
        _pm_free(&old)
    h = _pm_slot(m, key)
    if m.keys[h] == NULL:
        m.keys[h] = key
        m.used += 1
    m.vals[h] = val
    return 0


# The walks keep one frame per container being walked (a graph node or a pytree) on a stack of
# their own instead of the C stack, so the node depth of a graph is bounded by memory only (the
# recursive walks raised RecursionError past ~1,000 nested nodes). A frame holds what the
# recursive call held in locals; the frames are reused by depth (no allocation per container).
# A path is the keys of the frames below the root: built into a tuple only when needed (a
# state's key in states(), an error message, a callback that takes a path).
cdef class _Frame:
    cdef object key        # the container's key in its parent (None for the root)
    cdef Py_ssize_t nest   # consecutive pytree nesting ending at this container (a node: 0)


# mirrors the ``path`` tuples passed down by _core_py._encoder.encode / collect_states
cdef tuple _frames_path(list frames, Py_ssize_t depth, PyObject* k):
    """The path of the container of ``frames[depth - 1]`` (the keys of frames 1 to
    ``depth - 1``), extended by ``k`` unless it is NULL."""
    cdef Py_ssize_t n = depth - 1 if depth > 1 else 0
    cdef Py_ssize_t i
    cdef tuple out = PyTuple_New(n + 1 if k != NULL else n)
    cdef object x
    for i in range(n):
        x = (<_Frame>PyList_GET_ITEM(frames, i + 1)).key
        Py_INCREF(x)
        PyTuple_SET_ITEM(out, i, x)
    if k != NULL:
        Py_INCREF(<object>k)
        PyTuple_SET_ITEM(out, n, <object>k)
    return out


# mirrors the RecursionError of the pure walks, which recurse once per pytree level: nested
# pytrees give nested code tuples, which CPython hashes and compares recursively, so their
# nesting stays bounded by the recursion limit (graph nodes are not: they nest by index)
cdef int _too_deep(str where) except -1:
    raise RecursionError("maximum recursion depth exceeded" + where)


# Index ints shared across calls (ints above 256 are not cached by Python): a split of a
# 10,000-state graph otherwise allocates 15,000 of them.
cdef list _INDEX_INTS = list(range(257))
cdef enum:
    _MAX_INDEX_INTS = 1 << 15


# mirrors the int indices of _core_py._encoder.encode (``len(table)``)
cdef inline object _index_int(Py_ssize_t i):
    cdef Py_ssize_t n
    if i < PyList_GET_SIZE(_INDEX_INTS):
        return <object>PyList_GET_ITEM(_INDEX_INTS, i)
    if i >= _MAX_INDEX_INTS:
        return i
    n = PyList_GET_SIZE(_INDEX_INTS)
    _INDEX_INTS.extend(range(n, min(max(2 * n, i + 1), _MAX_INDEX_INTS)))
    return <object>PyList_GET_ITEM(_INDEX_INTS, i)


# The (NODE_DEF, i) codes, shared across splits the same way (tuples are immutable).
cdef list _NODE_DEF_CODES = []


# mirrors ``(NODE_DEF, i)`` in _core_py._encoder.encode
cdef inline object _node_def_code(Py_ssize_t i):
    cdef Py_ssize_t n
    if i < PyList_GET_SIZE(_NODE_DEF_CODES):
        return <object>PyList_GET_ITEM(_NODE_DEF_CODES, i)
    if i >= _MAX_INDEX_INTS:
        return (_I_NODE_DEF, i)
    n = PyList_GET_SIZE(_NODE_DEF_CODES)
    _NODE_DEF_CODES.extend([(_I_NODE_DEF, _index_int(j))
                            for j in range(n, min(max(2 * n, i + 1, 64), _MAX_INDEX_INTS))])
    return <object>PyList_GET_ITEM(_NODE_DEF_CODES, i)


# mirrors ``(STATE_DEF, i, t, sig)`` in _core_py._encoder.encode; the state keeps the last one
# it got, and a split that would build an equal one (same index, class and signature objects:
# the common case of splitting one model again and again) takes it back
cdef inline object _state_def_code(object state, object index, object t, object sig):
    if not isinstance(state, StateCore):
        return (_I_STATE_DEF, index, t, sig)  # a hosted state keeps no code
    cdef StateCore st = <StateCore>state
    cdef tuple c = <tuple>st._split_code if st._split_code is not None else None
    if c is not None and <PyObject*>index == PyTuple_GET_ITEM(c, 1) and \
            <PyObject*>t == PyTuple_GET_ITEM(c, 2) and <PyObject*>sig == PyTuple_GET_ITEM(c, 3):
        return c
    c = (_I_STATE_DEF, index, t, sig)
    st._split_code = c
    return c

