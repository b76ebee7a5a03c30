# Graph walks in C, first part (included by _core.pyx): the registry brainstate.graph hands
# over, small helpers, TreefyState storage, refs and rebuilt states.
# Twin: brainstate/_core_py/_refs.py.
#
# The graph walks (this file, _core_walk_common.pxi, _core_states_walk.pxi, _core_encoder.pxi,
# _core_decoder.pxi) are the loops graph.flatten / unflatten / states() run once per node and
# per state; their pure twins are the modules of the same names in brainstate/_core_py/ (the
# reference). brainstate.graph hands over its registry with configure_graph and keeps the
# policy, the rare paths and every message; these loops call back into it for anything but the
# common cases (fast Node subclasses, lists, tuples, dicts, states whose class customises
# nothing).
#
# Measured on bench/bench_graph.py before these loops were compiled: the same loops in Python
# cost treefy_split 12.6x/17.7x jax.tree.flatten, treefy_merge 33.8x/38.1x jax.tree.unflatten and
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

# Kinds of brainstate.graph._registry, code tags of brainstate.graph._graphdef and treedef kinds:
# the numbers of brainstate/_core_constants.py (the one definition), shown to Python in
# _GRAPH_CONSTANTS. configure_graph refuses others; tests/test_core_constants.py compares them.
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
    "kinds": (_K_NODE, _K_PYTREE, _K_STATE, _K_STATE_LEAF, _K_STATIC, _K_NONE),
    "codes": (_C_NODE_DEF, _C_NODE_REF, _C_STATE_DEF, _C_STATE_REF, _C_STATIC, _C_PYTREE,
              _C_LEAF, _C_STATE_AT),
    "treedef_kinds": (_LIST_KIND, _TUPLE_KIND, _DICT_KIND),
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

# mirrors ``(*path, k)`` in the pure walks (brainstate/_core_py/)
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


# mirrors ``kind_get(type(v))`` / ``classify(v)`` in the pure walks (brainstate/_core_py/)
cdef inline Py_ssize_t _graph_kind(object v) except -1:
    cdef PyObject* k = PyDict_GetItemWithError(_g_kinds, type(v))
    if k != NULL:
        return PyLong_AsSsize_t(<object>k)
    return _g_classify(v)


# mirrors the list/tuple keys of graph._registry.flatten_pytree (called by _core_py._encoder.encode)
cdef inline tuple _range_keys(Py_ssize_t n):
    if n < 64:
        return <tuple>_RANGES[n]
    return tuple(range(n))


# mirrors ``tuple(sorted(node.__dict__))`` in _core_py._encoder.encode / collect_states
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


# mirrors ``node.__dict__`` in the pure walks (brainstate/_core_py/)
cdef inline dict _node_dict(object node):
    """``node.__dict__`` (created when the node has none yet)."""
    return <dict>PyObject_GenericGetDict(node, NULL)


# mirrors ``object.__new__(t)`` in _core_py._decoder.DecoderCore._make_shells
cdef inline object _new_plain(object t):
    # object.__new__ would also lay out the class's shared-key attribute values, which the
    # first __dict__ access turns into a dict anyway: allocate bare, the fill sets a dict.
    cdef PyTypeObject* tp = <PyTypeObject*>t
    if tp.tp_new == (<PyTypeObject*>object).tp_new and not (tp.tp_flags & _TPFLAGS_IS_ABSTRACT):
        return PyType_GenericAlloc(<type>t, 0)
    return _object_new(t)


# mirrors ``bool(st.__dict__)`` in _core_py._refs.make_ref
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


# mirrors the key lookup in the __dict__ of _core_py._refs.TreefyStateCore (the standard keys)
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


# mirrors _core_py._refs.TreefyStateCore (a plain object and its __dict__); pickled through
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
    cdef object _source_info
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
                self._source_info = metadata.pop("_source_info")
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

    # mirrors ``vars(ref)`` on _core_py._refs.TreefyStateCore
    cdef dict _all(self):
        """Every attribute in one real dict (the ref keeps it from now on)."""
        cdef dict d
        if self._std:
            d = {
                _K_TYPE: self._type,
                _K_VALUE: self._value,
                _K_SITE: self._source_info,
                _K_HOOKS: self._hooks,
                _K_NAME: self._name,
                _K_WRITTEN: self._written,
                _K_TAG: self._tag,
            }
            if self._extra:
                d.update(self._extra)
            self._std = False
            self._type = self._value = self._source_info = self._hooks = None
            self._name = self._written = self._tag = None
            self._extra = None
            self._d = d
        elif self._d is None:
            self._d = self._new_dict()
        # the dict is out in the open: the value may change behind our back
        self._sig = None
        return self._d

    # mirrors the creation of the instance __dict__ of _core_py._refs.TreefyStateCore
    cdef dict _new_dict(self):
        # A subclass without __slots__ has an instance __dict__ of its own, which vars() and
        # its __dict__ attribute return: keep the attributes there.
        if _PyObject_GetDictPtr(self) != NULL:
            return <dict>PyObject_GenericGetDict(self, NULL)
        return {}

    # mirrors ``vars(ref).get(name)`` on _core_py._refs.TreefyStateCore
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
                return self._source_info
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

    # mirrors ``vars(ref)[name] = value`` on _core_py._refs.TreefyStateCore
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
                self._source_info = value
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

    # mirrors ``del vars(ref)[name]`` on _core_py._refs.TreefyStateCore
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

    # mirrors the AttributeError of a missing attribute on _core_py._refs.TreefyStateCore
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


# mirrors _core_py._refs.treefy_attrs
def treefy_attrs(TreefyStateCore ref not None):
    """A new dict of ``ref``'s attributes in order (``dict(vars(ref))`` without touching it)."""
    if ref._std:
        d = {
            _K_TYPE: ref._type,
            _K_VALUE: ref._value,
            _K_SITE: ref._source_info,
            _K_HOOKS: ref._hooks,
            _K_NAME: ref._name,
            _K_WRITTEN: ref._written,
            _K_TAG: ref._tag,
        }
        if ref._extra:
            d.update(ref._extra)
        return d
    return dict(ref._all())


# mirrors _core_py._refs.treefy_from_attrs
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
        ref._source_info = d.pop(_K_SITE)
        ref._hooks = d.pop(_K_HOOKS)
        ref._name = d.pop(_K_NAME)
        ref._written = d.pop(_K_WRITTEN)
        ref._tag = d.pop(_K_TAG)
        ref._extra = d if d else None
    else:
        ref._all().update(attrs)
    return ref


cdef tuple _AUX_SKIP = ("type", "value", "_source_info", "_hooks_manager")


# mirrors _core_py._refs.treefy_flatten
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


# mirrors _core_py._refs.treefy_unflatten
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
        ref._source_info = None
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

# mirrors the _source_info attribute of _core_py._state.StateCore (its SourceSite built on first use)
cdef inline object _state_site(StateCore st):
    if st._site_obj is None and st._site_code is not None:
        st._site_obj = _source_site(st._site_code, st._site_lasti)
    return st._site_obj


cdef object _last_fast_ref = None  # the last class found fast (graphs repeat a few)


# mirrors _core_py._refs.make_ref
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
        ref._source_info = _state_site(st)
        ref._hooks = st._hooks_manager
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


# mirrors the trace/level/site part of _core_py._state.StateCore._init_from, computed once per call
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


# mirrors _core_py._refs.rebuild_state
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
        site = r._source_info
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


# mirrors _core_py._refs._keep_poisoned
cdef inline bint _keep_poisoned(StateCore st, object sig) except -1:
    if st._value is _INVALID:
        st._signature = sig
        return True
    return False


# mirrors the signature compare in _core_py._decoder.DecoderCore._items
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

