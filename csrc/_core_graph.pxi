# Graph walks in C (included by _core.pyx).
#
# Twin of the "graph walks" section of brainstate/_core_py.py (the reference): the loops that
# graph.flatten / unflatten / states() run once per node and per state. brainstate.graph hands
# over its registry with configure_graph and keeps the policy, the rare paths and every message;
# these loops call back into it for anything but the common cases (fast Node subclasses, lists,
# tuples, dicts, states whose class customises nothing).
#
# Measured on bench/bench_graph.py before this file existed: the same loops in Python cost
# treefy_split 12.6x/17.7x jax.tree.flatten, treefy_merge 33.8x/38.1x jax.tree.unflatten and
# model.states() 2.2x a plain recursive Python walk; a plain walk alone is already 2.2x
# jax.tree.flatten, so no Python loop can meet the 3x targets.

from cpython.dict cimport PyDict_Next, PyDict_SetItem, PyDict_Keys
from cpython.dict cimport PyDict_Clear
from cpython.list cimport PyList_Append, PyList_Sort
from cpython.long cimport PyLong_FromVoidPtr, PyLong_AsSsize_t
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.exc cimport PyErr_Occurred, PyErr_Clear
from cpython.object cimport PyObject_RichCompareBool, Py_EQ
cimport cython

cdef extern from "Python.h":
    enum:
        _TPFLAGS_IS_ABSTRACT "Py_TPFLAGS_IS_ABSTRACT"
    PyObject* PyDict_GetItemWithError(object p, object key) except? NULL
    PyObject** _PyObject_GetDictPtr(object)
    object PyObject_GenericGetDict(object, void*)
    int PyObject_GenericSetDict(object, object, void*) except -1
    int Py_EnterRecursiveCall(const char*) except 1
    void Py_LeaveRecursiveCall()
    int Py_GetRecursionLimit()
    Py_ssize_t PyDict_GET_SIZE(object)
    Py_ssize_t PyTuple_GET_SIZE(object)
    PyObject* PyTuple_GET_ITEM(object, Py_ssize_t)
    Py_ssize_t PyList_GET_SIZE(object)
    PyObject* PyList_GET_ITEM(object, Py_ssize_t)
    void _list_set_item "PyList_SET_ITEM"(object, Py_ssize_t, PyObject*)

from cpython.object cimport PyTypeObject

# Kinds of brainstate.graph._registry and code tags of brainstate.graph._graphdef.
cdef enum:
    _K_NODE = 0
    _K_PYTREE = 1
    _K_STATE = 2
    _K_STATE_LEAF = 3
    _K_STATIC = 4
    _K_NONE = 5

cdef enum:
    _C_NODE_DEF = 0
    _C_NODE_REF = 1
    _C_STATE_DEF = 2
    _C_STATE_REF = 3
    _C_STATIC = 4
    _C_PYTREE = 5
    _C_LEAF = 6
    _C_STATE_AT = 7

cdef enum:
    _LIST_KIND = 1
    _TUPLE_KIND = 2
    _DICT_KIND = 3

_GRAPH_CONSTANTS = {
    "kinds": (0, 1, 2, 3, 4, 5),
    "codes": (0, 1, 2, 3, 4, 5, 6, 7),
    "treedef_kinds": (1, 2, 3),
}

cdef dict _g_kinds = {}
cdef object _g_classify = None
cdef dict _g_impls = {}
cdef set _g_plain = set()
cdef object _g_flatten_pytree = None
cdef object _g_node_children = None
cdef object _g_seq_treedef = None
cdef object _g_dict_treedef = None
cdef dict _g_treedef_kinds = {}
cdef object _g_hashable_by_value = None
cdef dict _g_fast_ref = {}
cdef object _g_fast_ref_ok = None
cdef dict _g_fast_state = {}
cdef object _g_fast_state_ok = None
cdef object _g_ref_type = None
cdef object _g_rebuild_error = None
cdef object _G_MISSING = object()

cdef tuple _EMPTY = ()
cdef object _NONE_CODE = (_C_STATIC, None)
cdef object _I_NODE_DEF = _C_NODE_DEF
cdef object _I_NODE_REF = _C_NODE_REF
cdef object _I_STATE_DEF = _C_STATE_DEF
cdef object _I_STATE_REF = _C_STATE_REF
cdef object _I_STATIC = _C_STATIC
cdef object _I_PYTREE = _C_PYTREE
cdef object _I_LEAF = _C_LEAF
cdef object _object_new = object.__new__
cdef object _K_TYPE = "type"
cdef object _K_SITE = "_source_info"
cdef object _K_HOOKS = "_hooks_manager"
cdef object _K_NAME = "_name"
cdef object _K_WRITTEN = "_been_writen"
cdef object _K_TAG = "tag"
# (0, 1, ..., n - 1) for small n: the keys of lists and tuples (graph._registry._RANGES).
cdef list _RANGES = [tuple(range(n)) for n in range(64)]


def configure_graph(*, constants, kinds, classify, node_impls, plain_nodes, flatten_pytree,
                    node_children, seq_treedef, dict_treedef, treedef_kinds, hashable_by_value,
                    fast_ref, fast_ref_ok, fast_state, fast_state_ok, ref_type, rebuild_error,
                    missing):
    """Hand the graph walks brainstate.graph's registry (its live dicts and sets) and callbacks.

    ``constants`` are the graph package's kind, code and treedef-kind numbers; a mismatch with
    the core's raises, so the two cannot drift apart silently. ``missing`` is the sentinel the
    loops hand to the slow paths for a path absent from the state mapping.
    """
    global _g_kinds, _g_classify, _g_impls, _g_plain, _g_flatten_pytree, _g_node_children
    global _g_seq_treedef, _g_dict_treedef, _g_treedef_kinds, _g_hashable_by_value
    global _g_fast_ref, _g_fast_ref_ok, _g_fast_state, _g_fast_state_ok, _g_ref_type
    global _g_rebuild_error, _G_MISSING
    if constants != _GRAPH_CONSTANTS:
        raise RuntimeError(
            f"brainstate.graph constants {constants!r} differ from the core's "
            f"{_GRAPH_CONSTANTS!r}; update both together."
        )
    if not issubclass(ref_type, TreefyStateCore):
        raise TypeError(f"ref_type must subclass TreefyStateCore, got {ref_type!r}.")
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
    _G_MISSING = missing


# --- small helpers ----------------------------------------------------------------------------

# mirrors ``(*path, k)`` in _core_py's graph walks
cdef inline tuple _path_plus(tuple path, object k):
    """``(*path, k)``."""
    cdef Py_ssize_t n = PyTuple_GET_SIZE(path)
    cdef Py_ssize_t i
    cdef tuple out = PyTuple_New(n + 1)
    cdef object x
    for i in range(n):
        x = <object>PyTuple_GET_ITEM(path, i)
        Py_INCREF(x)
        PyTuple_SET_ITEM(out, i, x)
    Py_INCREF(k)
    PyTuple_SET_ITEM(out, n, k)
    return out


# mirrors ``kind_get(type(v))`` / ``classify(v)`` in _core_py's graph walks
cdef inline Py_ssize_t _graph_kind(object v) except -1:
    cdef PyObject* k = PyDict_GetItemWithError(_g_kinds, type(v))
    if k != NULL:
        return PyLong_AsSsize_t(<object>k)
    return _g_classify(v)


# mirrors the list/tuple keys of graph._registry.flatten_pytree (called by _core_py.encode)
cdef inline tuple _range_keys(Py_ssize_t n):
    if n < 64:
        return <tuple>_RANGES[n]
    return tuple(range(n))


# mirrors ``tuple(sorted(node.__dict__))`` in _core_py.encode / collect_states
cdef object _sorted_keys(dict d, object t, dict cache, object invisible):
    """``tuple(sorted(d))`` (minus ``invisible``), reused while ``d`` lists the same key
    objects in the same order as the last dict of type ``t`` (instances of one class built by
    one ``__init__`` share their attribute-name objects)."""
    cdef PyObject* e = PyDict_GetItemWithError(cache, t)
    cdef Py_ssize_t pos = 0, i = 0, n = PyDict_GET_SIZE(d)
    cdef PyObject* k
    cdef PyObject* v
    cdef tuple order
    if e != NULL:
        order = <tuple>(<tuple><object>e)[0]
        if PyTuple_GET_SIZE(order) == n:
            while PyDict_Next(d, &pos, &k, &v):
                if k != PyTuple_GET_ITEM(order, i):
                    break
                i += 1
            if i == n:
                return (<tuple><object>e)[1]
    order = tuple(d)
    if invisible:
        keys = [x for x in order if x not in invisible]
    else:
        keys = PyDict_Keys(d)
    PyList_Sort(keys)
    srt = tuple(keys)
    cache[t] = (order, srt)
    return srt


# mirrors ``node.__dict__`` in _core_py's graph walks
cdef inline dict _node_dict(object node):
    """``node.__dict__`` (created when the node has none yet)."""
    return <dict>PyObject_GenericGetDict(node, NULL)


# mirrors ``object.__new__(t)`` in _core_py.DecoderCore._make_shells
cdef inline object _new_plain(object t):
    # object.__new__ would also lay out the class's shared-key attribute values, which the
    # first __dict__ access turns into a dict anyway: allocate bare, the fill sets a dict.
    cdef PyTypeObject* tp = <PyTypeObject*>t
    if tp.tp_new == (<PyTypeObject*>object).tp_new and not (tp.tp_flags & _TPFLAGS_IS_ABSTRACT):
        return PyType_GenericAlloc(<type>t, 0)
    return _object_new(t)


# mirrors ``bool(st.__dict__)`` in _core_py.make_ref
cdef inline bint _has_instance_attrs(object o):
    cdef PyObject** dp = _PyObject_GetDictPtr(o)
    return dp != NULL and dp[0] != NULL and PyDict_GET_SIZE(<object>dp[0]) != 0


# --- TreefyState storage ---------------------------------------------------------------------

cdef extern from "Python.h":
    PyObject* _PyType_Lookup(PyTypeObject* t, object name)
    object PyObject_GenericGetAttr(object o, object name)
    ctypedef struct _DescrSlots "PyTypeObject":
        void* tp_descr_get
        void* tp_descr_set

# The standard attribute layout of a ref made by State.to_state_ref() (metadata keys from
# _source_info on), and its length.
cdef tuple _STD_NAMES = ("type", "value", "_source_info", "_hooks_manager", "_name",
                         "_been_writen", "tag")
cdef enum:
    _N_STD = 7


# mirrors the key lookup in the __dict__ of _core_py.TreefyStateCore (the standard keys)
cdef inline Py_ssize_t _std_index(object name):
    """Position of ``name`` in the standard layout, or -1."""
    cdef Py_ssize_t i
    for i in range(_N_STD):
        if <PyObject*>name == PyTuple_GET_ITEM(_STD_NAMES, i):
            return i
    if type(name) is str:
        for i in range(_N_STD):
            if name == <object>PyTuple_GET_ITEM(_STD_NAMES, i):
                return i
    return -1


# mirrors the data-descriptor test of object.__getattribute__ (used by TreefyStateCore)
cdef inline bint _is_data_descr(PyObject* d):
    return d != NULL and (<_DescrSlots*>(<PyObject*>d).ob_type).tp_descr_set != NULL


# mirrors _core_py.TreefyStateCore (a plain object and its __dict__); pickled through
# TreefyState.__reduce__, so no generated pickle helpers
@cython.auto_pickle(False)
cdef class TreefyStateCore:
    """Base type of ``TreefyState``: its attribute storage.

    Behaves as a plain object whose ``__dict__`` holds ``type``, ``value`` and the metadata in
    insertion order (the pure twin is exactly that). A ref in the standard layout of
    ``State.to_state_ref()`` keeps those seven attributes in typed slots (further metadata in a
    small dict), so split builds and merge reads it without a dictionary; any other layout, or
    any use of ``vars(ref)``, moves every attribute into one real dict for good.
    """

    cdef object _type
    cdef object _value
    cdef object _site
    cdef object _hooks
    cdef object _name
    cdef object _written
    cdef object _tag
    cdef dict _extra  # standard layout: the metadata after ``tag``, in order (None: none)
    cdef dict _d      # any other layout: every attribute, in order (None: none yet)
    cdef bint _std
    cdef object _sig  # signature of _value when known (make_ref), dropped when value changes
    cdef object __weakref__

    def __init__(self, type, value, **metadata):
        # vars(self).update(type=type, value=value, **metadata)
        cdef Py_ssize_t i = 2
        if not self._std and not self._d and _PyObject_GetDictPtr(self) == NULL:
            for k in metadata:
                if i == _N_STD or <PyObject*>k != PyTuple_GET_ITEM(_STD_NAMES, i):
                    break
                i += 1
            if i == _N_STD:
                self._std = True
                self._type = type
                self._value = value
                self._site = metadata.pop("_source_info")
                self._hooks = metadata.pop("_hooks_manager")
                self._name = metadata.pop("_name")
                self._written = metadata.pop("_been_writen")
                self._tag = metadata.pop("tag")
                self._extra = metadata if metadata else None
                return
        d = self._all()
        d["type"] = type
        d["value"] = value
        d.update(metadata)
        self._sig = None

    # mirrors ``vars(ref)`` on _core_py.TreefyStateCore
    cdef dict _all(self):
        """Every attribute in one real dict (the ref keeps it from now on)."""
        cdef dict d
        if self._std:
            d = {
                _K_TYPE: self._type,
                _K_VALUE: self._value,
                _K_SITE: self._site,
                _K_HOOKS: self._hooks,
                _K_NAME: self._name,
                _K_WRITTEN: self._written,
                _K_TAG: self._tag,
            }
            if self._extra:
                d.update(self._extra)
            self._std = False
            self._type = self._value = self._site = self._hooks = None
            self._name = self._written = self._tag = None
            self._extra = None
            self._d = d
        elif self._d is None:
            self._d = self._new_dict()
        # the dict is out in the open: the value may change behind our back
        self._sig = None
        return self._d

    # mirrors the creation of the instance __dict__ of _core_py.TreefyStateCore
    cdef dict _new_dict(self):
        # A subclass without __slots__ has an instance __dict__ of its own, which vars() and
        # its __dict__ attribute return: keep the attributes there.
        if _PyObject_GetDictPtr(self) != NULL:
            return <dict>PyObject_GenericGetDict(self, NULL)
        return {}

    # mirrors ``vars(ref).get(name)`` on _core_py.TreefyStateCore
    cdef object _get(self, object name, bint* found):
        cdef Py_ssize_t i
        cdef PyObject* p
        found[0] = True
        if self._std:
            i = _std_index(name)
            if i == 0:
                return self._type
            if i == 1:
                return self._value
            if i == 2:
                return self._site
            if i == 3:
                return self._hooks
            if i == 4:
                return self._name
            if i == 5:
                return self._written
            if i == 6:
                return self._tag
            if self._extra is not None:
                p = PyDict_GetItemWithError(self._extra, name)
                if p != NULL:
                    return <object>p
        else:
            if self._d is None:
                if _PyObject_GetDictPtr(self) == NULL:
                    found[0] = False
                    return None
                self._d = self._new_dict()
            p = PyDict_GetItemWithError(self._d, name)
            if p != NULL:
                return <object>p
        found[0] = False
        return None

    # mirrors ``vars(ref)[name] = value`` on _core_py.TreefyStateCore
    cdef int _set(self, object name, object value) except -1:
        cdef Py_ssize_t i
        if self._std:
            i = _std_index(name)
            if i == 0:
                self._type = value
            elif i == 1:
                self._value = value
                self._sig = None
            elif i == 2:
                self._site = value
            elif i == 3:
                self._hooks = value
            elif i == 4:
                self._name = value
            elif i == 5:
                self._written = value
            elif i == 6:
                self._tag = value
            else:
                if self._extra is None:
                    self._extra = {}
                self._extra[name] = value
            return 0
        if self._d is None:
            self._d = self._new_dict()
        self._d[name] = value
        return 0

    # mirrors ``del vars(ref)[name]`` on _core_py.TreefyStateCore
    cdef int _del(self, object name) except -1:
        if self._std:
            if _std_index(name) < 0:
                if self._extra is not None and name in self._extra:
                    del self._extra[name]
                    return 0
                self._missing(name)
        self._all()
        if name not in self._d:
            self._missing(name)
        del self._d[name]
        return 0

    # mirrors the AttributeError of a missing attribute on _core_py.TreefyStateCore
    cdef int _missing(self, object name) except -1:
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'",
                             name=name, obj=self)

    def __getattribute__(self, name):
        cdef bint found
        cdef PyObject* descr = _PyType_Lookup((<PyObject*>self).ob_type, name)
        if not _is_data_descr(descr):
            v = self._get(name, &found)
            if found:
                return v
        return PyObject_GenericGetAttr(self, name)

    def __setattr__(self, name, value):
        if type(name) is not str:
            raise TypeError(f"attribute name must be string, not '{type(name).__name__}'")
        if _is_data_descr(_PyType_Lookup((<PyObject*>self).ob_type, name)):
            _generic_setattr(self, name, <PyObject*>value)
        else:
            self._set(name, value)

    def __delattr__(self, name):
        if type(name) is not str:
            raise TypeError(f"attribute name must be string, not '{type(name).__name__}'")
        if _is_data_descr(_PyType_Lookup((<PyObject*>self).ob_type, name)):
            _generic_setattr(self, name, NULL)
        else:
            self._del(name)

    @property
    def __dict__(self):
        return self._all()

    @__dict__.setter
    def __dict__(self, d):
        if not isinstance(d, dict):
            raise TypeError(f"__dict__ must be set to a dictionary, not a '{type(d).__name__}'")
        self._all()
        self._d = d
        if _PyObject_GetDictPtr(self) != NULL:
            PyObject_GenericSetDict(self, d, NULL)


# mirrors _core_py.treefy_attrs
def treefy_attrs(TreefyStateCore ref not None):
    """A new dict of ``ref``'s attributes in order (``dict(vars(ref))`` without touching it)."""
    if ref._std:
        d = {
            _K_TYPE: ref._type,
            _K_VALUE: ref._value,
            _K_SITE: ref._site,
            _K_HOOKS: ref._hooks,
            _K_NAME: ref._name,
            _K_WRITTEN: ref._written,
            _K_TAG: ref._tag,
        }
        if ref._extra:
            d.update(ref._extra)
        return d
    return dict(ref._all())


# mirrors _core_py.treefy_from_attrs
def treefy_from_attrs(cls, dict attrs):
    """A new ``cls`` ref whose attributes are ``attrs`` (in order), built without ``__init__``."""
    cdef TreefyStateCore ref = <TreefyStateCore?>cls.__new__(cls)
    cdef Py_ssize_t i = 0
    for k in attrs:
        if i == _N_STD or <PyObject*>k != PyTuple_GET_ITEM(_STD_NAMES, i):
            break
        i += 1
    if i == _N_STD and _PyObject_GetDictPtr(ref) == NULL:
        d = dict(attrs)
        ref._std = True
        ref._type = d.pop(_K_TYPE)
        ref._value = d.pop(_K_VALUE)
        ref._site = d.pop(_K_SITE)
        ref._hooks = d.pop(_K_HOOKS)
        ref._name = d.pop(_K_NAME)
        ref._written = d.pop(_K_WRITTEN)
        ref._tag = d.pop(_K_TAG)
        ref._extra = d if d else None
    else:
        ref._all().update(attrs)
    return ref


cdef tuple _AUX_SKIP = ("type", "value", "_source_info", "_hooks_manager")


# mirrors _core_py.treefy_flatten
def treefy_flatten(TreefyStateCore ref not None):
    """``(value, aux)`` of ``ref``'s pytree form: aux = ``(type, metadata items)`` in insertion
    order, without ``_source_info`` and ``_hooks_manager``."""
    cdef list items
    if ref._std:
        items = [(_K_NAME, ref._name), (_K_WRITTEN, ref._written), (_K_TAG, ref._tag)]
        if ref._extra:
            items.extend(ref._extra.items())
        return ref._value, (ref._type, tuple(items))
    d = ref._all()
    md = tuple([(k, v) for k, v in d.items() if k not in _AUX_SKIP])
    return d["value"], (d["type"], md)


# mirrors _core_py.treefy_unflatten
def treefy_unflatten(cls, tuple aux, children):
    """The ref of ``cls`` that ``treefy_flatten`` described: fresh ``_source_info`` and
    ``_hooks_manager`` (None), then the metadata items in order."""
    cdef TreefyStateCore ref = <TreefyStateCore?>cls.__new__(cls)
    cdef tuple md = aux[1]
    cdef Py_ssize_t n = len(md)
    value = children[0]
    if (n >= 3 and md[0][0] == "_name" and md[1][0] == "_been_writen" and md[2][0] == "tag"
            and all(k not in _STD_NAMES for k, _ in md[3:])
            and _PyObject_GetDictPtr(ref) == NULL):
        ref._std = True
        ref._type = aux[0]
        ref._value = value
        ref._site = None
        ref._hooks = None
        ref._name = md[0][1]
        ref._written = md[1][1]
        ref._tag = md[2][1]
        ref._extra = dict(md[3:]) if n > 3 else None
        return ref
    d = ref._all()
    d[_K_TYPE] = aux[0]
    d[_K_VALUE] = value
    d[_K_SITE] = None
    d[_K_HOOKS] = None
    d.update(md)
    return ref


# --- refs and rebuilt states ------------------------------------------------------------------

# mirrors the _site attribute of _core_py.StateCore (the SourceSite is built on first use)
cdef inline object _state_site(StateCore st):
    if st._site_obj is None and st._site_code is not None:
        st._site_obj = _source_site(st._site_code, st._site_lasti)
    return st._site_obj


cdef object _last_fast_ref = None  # the last class found fast (graphs repeat a few)


# mirrors _core_py.make_ref
cdef object _make_ref(object state):
    global _last_fast_ref
    cdef TreefyStateCore ref
    cdef StateCore st
    if not isinstance(state, StateCore):
        return state.to_state_ref()  # a hosted state: the class's own method
    st = <StateCore>state
    cdef object t = type(st)
    cdef PyObject* ok
    cdef bint fast = t is _last_fast_ref
    if not fast:
        ok = PyDict_GetItemWithError(_g_fast_ref, t)
        fast = (ok != NULL and <object>ok) or _g_fast_ref_ok(t)
        if fast:
            _last_fast_ref = t
    if fast and not _has_instance_attrs(st):
        ref = <TreefyStateCore>(<PyTypeObject*>_g_ref_type).tp_new(
            _g_ref_type, <PyObject*>_EMPTY, NULL)
        ref._std = True
        ref._type = t
        ref._value = _foreign_value(st, "split") if st._holder is not None and _foreign(st) \
            else st._value
        ref._site = _state_site(st)
        ref._hooks = st._hooks_mgr_or_none
        ref._name = st._name
        ref._written = st._been_writen
        ref._tag = st.tag
        if st._flags == 0 and st._value is not _INVALID:
            # the state's value matches its signature (the core checks every write):
            # merge rebuilds from it without reading shapes and dtypes again
            ref._sig = _state_signature(st)
        return ref
    return st.to_state_ref()


def make_ref(st):
    """``st.to_state_ref()``, built directly when the state's class does not customise it."""
    _require_state(st)
    return _make_ref(st)


# mirrors the trace/level/site part of _core_py.StateCore._init_from, computed once per call
cdef class _Rebinder:
    """What every state rebuilt by one call shares: trace identity, level, the caller's site."""

    cdef object trace_ref
    cdef Py_ssize_t level
    cdef object caller     # (code, lasti) of the calling frame outside brainstate, or None
    cdef bint have_caller
    cdef object fast_cls   # the last two classes found fast (graphs alternate a few state
    cdef object fast_cls2  # classes, e.g. a weight and a buffer per layer)

    def __cinit__(self):
        self.trace_ref = _current_trace_ref()
        self.level = _stack_level()
        self.have_caller = False


cdef bint _fast_state_cls(_Rebinder rb, object cls) except -1:
    """``_fast_state_ok(cls)``: the class customises none of what the compiled rebuild and
    update do for it (the last two classes answered are remembered on ``rb``)."""
    cdef PyObject* p
    if cls is rb.fast_cls or cls is rb.fast_cls2:
        return True
    p = PyDict_GetItemWithError(_g_fast_state, cls)
    if not ((p != NULL and <object>p) or _g_fast_state_ok(cls)):
        return False
    if not (isinstance(cls, type) and issubclass(cls, StateCore)):
        return False  # a hosted class (its predicate answer aside): never built by tp_new
    rb.fast_cls2 = rb.fast_cls
    rb.fast_cls = cls
    return True


# mirrors _core_py.rebuild_state
cdef object _rebuild(object ref, _Rebinder rb):
    cdef TreefyStateCore r
    cdef PyObject* p
    cdef dict d
    cdef StateCore st
    if type(ref) is not _g_ref_type:
        return None
    r = <TreefyStateCore>ref
    sig = r._sig
    if r._std:
        if r._extra:
            return None
        cls = r._type
        value = r._value
        site = r._site
        name = r._name
        written = r._written
        tag = r._tag
    else:
        d = r._d
        if d is None or PyDict_GET_SIZE(d) != _N_STD:
            return None
        try:
            cls = d[_K_TYPE]
            value = d[_K_VALUE]
            site = d[_K_SITE]
            name = d[_K_NAME]
            written = d[_K_WRITTEN]
            tag = d[_K_TAG]
        except KeyError:
            return None
    if not _fast_state_cls(rb, cls):
        return None
    st = <StateCore>(<PyTypeObject*>cls).tp_new(cls, <PyObject*>_EMPTY, NULL)
    # StateCore._init_from, with what the call shares computed once
    if sig is not None:
        st._bind_known(value, <Signature>sig)
    else:
        st._bind(value)
    st._trace_ref = rb.trace_ref
    st._level = rb.level
    # (a fresh state's fields are None: None is not stored again, see _bind_known)
    if site is not None:
        st._site_obj = site
    else:
        if not rb.have_caller:
            rb.caller = _site_of_caller()
            rb.have_caller = True
        if rb.caller is not None:
            st._site_code = rb.caller[0]
            st._site_lasti = rb.caller[1]
    if name is not None:
        st._name = name
    st._been_writen = written
    if tag is not None:
        st.tag = set(tag) if type(tag) is set else tag
    return st


def rebuild_state(ref):
    """A new live state from a ``TreefyState`` of the standard layout, else None.

    ``ref.to_state()`` without its generic attribute loop: fresh trace identity and level, no
    hook manager, the ref's creation site, and a copy of its tag set.
    """
    return _rebuild(ref, _Rebinder())


# mirrors State.update_from_ref (brainstate/_state.py) for a ref of the standard layout, as
# DecoderCore._items_c reaches it through _Decoder._update_cached for a state of the cache
cdef int _update_from_ref(StateCore st, TreefyStateCore r) except -1:
    """Adopt the ref's ``_name``, ``tag`` and ``_been_writen``, then write its value (restore it
    when the ref was never written); on failure the three are put back."""
    old_name, old_tag, old_written = st._name, st.tag, st._been_writen
    written = r._written
    st._name = r._name
    st.tag = r._tag
    st._been_writen = written
    try:
        if written:
            if _n_tracer_check:  # ``st.value = ...`` passes the strict attribute guard first
                _strict_guard(st)
            st._write(r._value, True)
        else:
            st._restore(r._value)
    except BaseException:
        st._name, st.tag, st._been_writen = old_name, old_tag, old_written
        raise
    return 0


# mirrors _core_py._keep_poisoned
cdef inline bint _keep_poisoned(StateCore st, object sig) except -1:
    if st._value is _INVALID:
        st._signature = sig
        return True
    return False


# mirrors the signature compare in _core_py.DecoderCore._items
cdef inline bint _sig_differs(StateCore st, object sig) except -1:
    """``st._signature != sig`` without building the state's Signature object."""
    cdef Signature o
    if sig is st._sig1 or sig is st._sigobj:
        return False
    if type(sig) is Signature and st._sigobj is None:
        o = <Signature>sig
        if o.treedef is not None:
            return True
        if (st._sig_shape is o.shape or PyObject_RichCompareBool(st._sig_shape, o.shape, Py_EQ)) \
                and (st._sig_dtype is o.dtype
                     or PyObject_RichCompareBool(st._sig_dtype, o.dtype, Py_EQ)):
            # equal: share the GraphDef's object, so a later split builds none
            st._sig1 = sig
            return False
        return True
    return st._signature != sig


# the two above for a state of either layout (a hosted one through its attributes)
cdef inline bint _sig_differs_any(object st, object sig) except -1:
    if isinstance(st, StateCore):
        return _sig_differs(<StateCore>st, sig)
    return st._signature != sig


cdef inline bint _keep_poisoned_any(object st, object sig) except -1:
    if isinstance(st, StateCore):
        return _keep_poisoned(<StateCore>st, sig)
    if st._value is _INVALID:
        st._signature = sig
        return True
    return False


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


# mirrors ``{}`` / ``set()`` for the id-keyed tables of _core_py.encode / collect_states
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


# mirrors ``table.get(id(v))`` / ``id(v) in seen`` in _core_py.encode / collect_states
cdef inline Py_ssize_t _pm_get(_PtrMap* m, void* key):
    """The value stored for ``key``, or -1."""
    cdef Py_ssize_t h = _pm_slot(m, key)
    return m.vals[h] if m.keys[h] != NULL else -1


# mirrors ``table[id(v)] = ...`` / ``seen.add(id(v))`` in _core_py.encode / collect_states
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


# mirrors the ``path`` tuples passed down by _core_py.encode / collect_states
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


# mirrors the int indices of _core_py.encode (``len(table)``)
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


# mirrors ``(NODE_DEF, i)`` in _core_py.encode
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


# mirrors ``(STATE_DEF, i, t, sig)`` in _core_py.encode; the state keeps the last one it got,
# and a split that would build an equal one (same index, class and signature objects: the
# common case of splitting one model again and again) takes it back
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


# --- states() ---------------------------------------------------------------------------------

cdef enum:
    _M_DICT = 0    # src[k] for k in keys, src a dict
    _M_LIST = 1    # the items of the list src, keyed by position
    _M_TUPLE = 2   # the items of the tuple src, keyed by position
    _M_ITEM = 3    # src[k] for k in keys, src any mapping


# One container being walked by _StatesWalk: what node() / the pytree branch of items() in
# _core_py.collect_states hold while they loop over its children.
@cython.final
cdef class _SFrame(_Frame):
    cdef object keys       # _M_DICT, _M_ITEM: the keys in order (a tuple or a list)
    cdef object src
    cdef Py_ssize_t j      # the next child's position
    cdef Py_ssize_t level  # graph nodes entered above the children
    cdef int mode


# mirrors _core_py.collect_states (its closures are the methods; its recursion is the frames)
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

    # mirrors the start of node() in _core_py.collect_states
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

    # mirrors the start of the pytree branch of items() in _core_py.collect_states
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

    # mirrors items() in _core_py.collect_states: the children of the top frame, until one is
    # a container to enter (its frame is pushed) or none is left (the frame is popped)
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

# --- flatten ----------------------------------------------------------------------------------

# mirrors the signature part of the STATE_DEF code in _core_py.encode
cdef inline object _split_signature(object state):
    """``st._signature``, or the held value's signature under a view or with tracers."""
    if not isinstance(state, StateCore):  # a hosted state: attribute access
        return make_signature(state._value) if state._flags else state._signature
    cdef StateCore st = <StateCore>state
    if st._flags and not (st._holder is not None and _foreign(st)):
        return make_signature(st._value)
    return _state_signature(st)


# One container being encoded by _Encoder: what enc_node / enc_pytree and their enc_items call
# in _core_py.encode hold while they loop over its children.
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

# mirrors _core_py.encode (its closures are the methods; its recursion is the frames)
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

    # mirrors ``table_get(id(v))`` in _core_py.encode
    cdef Py_ssize_t lookup(self, object v) except -2:
        """The index of ``v`` (-1: not met yet)."""
        cdef Py_ssize_t i = _pm_get(&self.index, <void*>v)
        cdef PyObject* e
        if i < 0 and self.base:
            e = PyDict_GetItemWithError(<dict>self.table, PyLong_FromVoidPtr(<void*>v))
            if e != NULL:
                i = (<tuple><object>e)[1]
        return i

    # mirrors ``table[id(v)] = (v, i); owner.append(pos)`` in _core_py.encode
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

    # mirrors the start of enc_items of _core_py.encode
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

    # mirrors enc_node of _core_py.encode up to its enc_items call
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

    # mirrors enc_pytree of _core_py.encode up to its enc_items call (``x`` is not None)
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

    # mirrors enc_items of _core_py.encode for the top frame, until a child is a container to
    # enter (its frame is pushed) or none is left; then the ends of enc_node / enc_pytree for
    # the finished frame, whose code goes to its parent where the recursive call returned
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

# --- unflatten --------------------------------------------------------------------------------

# mirrors ``append(value)`` in _core_py.DecoderCore._items (or the __dict__ update of _fill)
cdef inline int _emit(list out, dict target, object k, object value) except -1:
    if target is None:
        return PyList_Append(out, value)
    return PyDict_SetItem(target, k, value)


cdef tuple _INDEXED_TAGS = (_C_NODE_DEF, _C_NODE_REF, _C_STATE_DEF, _C_STATE_REF, _C_STATE_AT)


# mirrors _core_py.index_bound
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


# mirrors the index -> object dict of _core_py.DecoderCore (table and subs)
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


# mirrors ``table.get(index)`` in _core_py.DecoderCore (None: absent)
cdef inline object _tab_get(object tab, bint dense, object idx):
    cdef PyObject* p
    if dense:
        return (<_IndexTable>tab).cget(idx)
    p = PyDict_GetItemWithError(<dict>tab, idx)
    return None if p == NULL else <object>p


# mirrors ``table[index] = v`` in _core_py.DecoderCore
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


# mirrors _core_py.DecoderCore
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

    # mirrors ``impl.fast`` in _core_py.DecoderCore._make_shells / _fill
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

    # mirrors _core_py.DecoderCore._make_shells (def: called once per call by the subclass)
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

    # mirrors _core_py.DecoderCore._fill (def: called once per call by the subclass)
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

    # mirrors _core_py.DecoderCore._pytree
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

    # mirrors _core_py.DecoderCore._items; with ``target`` the values go into it under their
    # keys (a node's new __dict__) and None is returned
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
