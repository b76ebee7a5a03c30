# cython: language_level=3, embedsignature=True
"""Compiled core of brainstate: the work done on every state access.

Twin of ``brainstate/_core_py.py`` (the reference): same names, same behaviour, same messages
(errors are built by the injected ``make_error``). ``brainstate/_core.pyi`` is the contract.
Imports nothing of brainstate and nothing of jax; ``brainstate._impl.configure_core`` injects
the callables it needs. The graph walks (``_core_graph.pxi``) get brainstate.graph's registry the
same way, from ``configure_graph``.
"""

cimport cython
from cpython.object cimport PyObject, PyTypeObject
from cpython.type cimport PyType_IsSubtype
from cpython.ref cimport Py_XDECREF
from cpython.unicode cimport PyUnicode_Tailmatch
from cpython.dict cimport PyDict_GetItem, PyDict_Size, PyDict_Next

import sys
import threading

cdef extern from "Python.h":
    ctypedef struct PyFrameObject
    ctypedef struct PyCodeObject
    PyFrameObject* PyEval_GetFrame()
    PyCodeObject* PyFrame_GetCode(PyFrameObject* frame)
    PyFrameObject* PyFrame_GetBack(PyFrameObject* frame)
    int PyFrame_GetLasti(PyFrameObject* frame)
    const Py_ssize_t PY_SSIZE_T_MAX
    int _generic_setattr "PyObject_GenericSetAttr"(object, object, PyObject*) except -1

CORE_ABI = 5

# --- configuration (set once by brainstate._impl.configure_core) ----------------------------

cdef object _tree_flatten = None
cdef object _leaf_spec = None
cdef object _array_type = type(None)
cdef object _key_array_type = type(None)  # typed PRNG key arrays (their own concrete type)
cdef object _tracer_type = type(None)
cdef object _trace_ctx = None
cdef object _make_error = None
cdef object _hooks = None
cdef object _metadata_type = type(None)
cdef str _pkg_prefix = "\0"
cdef object _source_site = None
cdef object _aval_get = None  # ArrayImpl's `aval` getter, called without attribute lookup
cdef object _np_ndarray = type(None)  # numpy.ndarray once configured (a leaf type for the walk)
cdef type _hosted_type = None  # brainstate._hosted.HostedStateCore: states not of our layout


cdef inline object _aval_of(object array):
    # aval.shape/.dtype directly: ArrayImpl.shape/.dtype are Python properties reading it
    # (two Python calls, ~90 ns per write). The getter is called directly: the attribute
    # lookup through ArrayImpl's type costs ~8 ns more (perf: _PyType_Lookup misses).
    if _aval_get is not None:
        return _aval_get(array)
    return array.aval


def configure(*, tree_flatten, leaf_spec, array_type, key_array_type, tracer_type, trace_ctx,
              make_error, hooks, metadata_type, pkg_prefix, source_site, hosted_type):
    """Install the Python callables the core needs; called once by ``brainstate._impl``."""
    global _tree_flatten, _leaf_spec, _array_type, _key_array_type, _tracer_type, _trace_ctx
    global _make_error, _hooks, _metadata_type, _pkg_prefix, _source_site, _aval_get
    global _np_ndarray, _hosted_type
    _tree_flatten = tree_flatten
    _np_ndarray = sys.modules["numpy"].ndarray if "numpy" in sys.modules else type(None)
    _aval_get = getattr(getattr(array_type, "__dict__", {}).get("aval"), "fget", None)
    _leaf_spec = leaf_spec
    _array_type = array_type
    _key_array_type = key_array_type
    _tracer_type = tracer_type
    _trace_ctx = trace_ctx
    _make_error = make_error
    _hooks = hooks
    _metadata_type = metadata_type
    _pkg_prefix = pkg_prefix
    _source_site = source_site
    _hosted_type = hosted_type


# mirrors _core_py._state_types: a state of our layout, or one hosted on the plain-Python core
# (C-level subtype tests only: isinstance() with a Python class also looks up the value's
# __class__, a generic getattr on a jax array that cost ~10 % of a state's creation)
cdef inline bint _is_state(object v) except -1:
    return isinstance(v, StateCore) or (
        _hosted_type is not None and PyType_IsSubtype(type(v), _hosted_type))


class _Invalid:
    """The sentinel a poisoned state holds (its value was a tracer that died with its trace)."""

    __slots__ = ()

    def __repr__(self):
        return "<invalidated trace value>"

    def __reduce__(self):
        return "INVALID"


INVALID = _Invalid()
cdef object _INVALID = INVALID

# --- process-wide activity counters ---------------------------------------------------------
# Each counts entries over all threads; zero means the per-thread work is skipped without
# touching thread-local storage. Updated under the GIL.
cdef Py_ssize_t _n_frames = 0
cdef Py_ssize_t _n_tree = 0
cdef Py_ssize_t _n_tracer_check = 0
cdef Py_ssize_t _n_catchers = 0
cdef Py_ssize_t _n_hooks = 0
cdef Py_ssize_t _epoch = 0  # bumped whenever some state's signature is re-bound


def rebind_epoch():
    """A counter bumped whenever a state's signature is re-bound (caches compare it)."""
    return _epoch


def note_rebind():
    """Bump the rebind epoch (a hosted state re-bound its signature)."""
    global _epoch
    _epoch += 1


def set_hooks_active(n):
    """Tell the core how many hook managers hold enabled hooks (0 turns dispatch off)."""
    global _n_hooks
    _n_hooks = n


def hooks_active():
    """The count last given to ``set_hooks_active``."""
    return _n_hooks


# --- thread-local trace context -------------------------------------------------------------

cdef class ThreadContext:
    """One thread's stacks: trace frames, ``check_state_value_tree`` and
    ``check_state_jax_tracer`` settings (innermost last), ``catch_new_states`` catchers.
    """

    cdef public list state_stack
    cdef public list tree_check
    cdef public list jax_tracer_check
    cdef public list new_state_catcher

    def __init__(self):
        self.state_stack = []
        self.tree_check = [False]
        self.jax_tracer_check = [False]
        self.new_state_catcher = []


cdef extern from "Python.h":
    PyObject* PyThreadState_GetDict()

# Per-thread contexts live in the thread state's dict; the last one found is cached with that
# dict, so a lookup from the same thread is one pointer compare (a threading.local attribute
# costs ~40 ns, paid on every recorded access: bench_trace.py). The cache holds the dict
# alive, so a new thread can never reuse its address while it is cached.
cdef object _CTX_KEY = "brainstate._core.ThreadContext"
cdef object _cached_tdict = None
cdef ThreadContext _cached_ctx = None


cdef ThreadContext _ctx_slow():
    global _cached_tdict, _cached_ctx
    cdef PyObject* d = PyThreadState_GetDict()
    if d == NULL:
        raise RuntimeError("no thread state dict")
    tdict = <dict><object>d
    ctx = tdict.get(_CTX_KEY)
    if ctx is None:
        ctx = ThreadContext()
        tdict[_CTX_KEY] = ctx
    _cached_tdict = tdict
    _cached_ctx = <ThreadContext>ctx
    return _cached_ctx


cdef inline ThreadContext _get_ctx():
    if <PyObject*>_cached_tdict == PyThreadState_GetDict():
        return _cached_ctx
    return _ctx_slow()


def get_context():
    """This thread's trace context."""
    return _get_ctx()


# mirrors _core_py.stack_level
cdef inline Py_ssize_t _stack_level():
    if _n_frames == 0:
        return 0
    return len(<list>_get_ctx().state_stack)


def stack_level():
    """The number of active trace frames in this thread (a new state's ``_level``)."""
    return _stack_level()


def push_frame(TraceFrame frame not None):
    """Make ``frame`` the innermost active frame of this thread."""
    global _n_frames
    (<list>_get_ctx().state_stack).append(frame)
    _n_frames += 1


def pop_frame(TraceFrame frame not None):
    """Pop ``frame`` if it is innermost; return False (stack untouched) otherwise."""
    global _n_frames
    cdef list stack = _get_ctx().state_stack
    if not stack or stack[-1] is not frame:
        return False
    stack.pop()
    _n_frames -= 1
    return True


def push_tree_check(val):
    global _n_tree
    (<list>_get_ctx().tree_check).append(bool(val))
    _n_tree += 1


def pop_tree_check():
    global _n_tree
    (<list>_get_ctx().tree_check).pop()
    _n_tree -= 1


def push_tracer_check(val):
    global _n_tracer_check
    (<list>_get_ctx().jax_tracer_check).append(bool(val))
    _n_tracer_check += 1


def pop_tracer_check():
    global _n_tracer_check
    (<list>_get_ctx().jax_tracer_check).pop()
    _n_tracer_check -= 1


def push_catcher(catcher):
    global _n_catchers
    (<list>_get_ctx().new_state_catcher).append(catcher)
    _n_catchers += 1


def pop_catcher(catcher):
    global _n_catchers
    cdef list cs = _get_ctx().new_state_catcher
    cdef Py_ssize_t i
    for i in range(len(cs) - 1, -1, -1):
        if cs[i] is catcher:
            del cs[i]
            _n_catchers -= 1
            return


# mirrors _core_py._rebinding
cdef inline bint _rebinding():
    # Innermost check_state_value_tree(False) turns checks into re-binds. The counter is
    # process-wide, so this thread must have an entry of its own above the base [False].
    if _n_tree == 0:
        return False
    cdef list tc = _get_ctx().tree_check
    return len(tc) > 1 and not tc[-1]


def is_rebinding():
    """Whether an innermost ``check_state_value_tree(False)`` is active in this thread."""
    return _rebinding()


# mirrors _core_py._current_trace_ref
cdef inline object _current_trace_ref():
    return _trace_ctx.trace._weakref


def current_trace_ref():
    """The identity of JAX's current trace (what a state's ``_trace_ref`` is compared with)."""
    return _trace_ctx.trace._weakref


# --- creation sites -------------------------------------------------------------------------

# mirrors _core_py.capture_site (without building the SourceSite)
cdef object _site_of_caller():
    """(code, lasti) of the first Python frame outside the brainstate package, or None."""
    cdef PyFrameObject* f = PyEval_GetFrame()  # borrowed
    cdef PyFrameObject* owned = NULL           # strong ref to the frame we walked to
    cdef PyCodeObject* code
    cdef object code_obj
    cdef object result = None
    while f != NULL:
        code = PyFrame_GetCode(f)
        code_obj = <object>code
        Py_XDECREF(<PyObject*>code)
        if PyUnicode_Tailmatch(code_obj.co_filename, _pkg_prefix, 0, PY_SSIZE_T_MAX, -1) != 1:
            result = (code_obj, PyFrame_GetLasti(f))
            break
        f = PyFrame_GetBack(f)  # new reference or NULL
        Py_XDECREF(<PyObject*>owned)
        owned = f
    Py_XDECREF(<PyObject*>owned)
    return result


def capture_site():
    """The first calling frame outside the brainstate package, as a ``SourceSite``."""
    s = _site_of_caller()
    return None if s is None else _source_site(s[0], s[1])


# --- signatures -----------------------------------------------------------------------------

cdef class Signature:
    """The abstract signature of a value: tree structure plus (shape, dtype) per leaf.

    A single-array value keeps ``treedef=None`` and is compared without flattening.
    """

    cdef readonly object treedef
    cdef readonly tuple specs
    cdef readonly object shape
    cdef readonly object dtype
    cdef object _walk           # C-only: None = not compiled yet, False = not walkable, or the
                                # root _WalkNode of the treedef (see _compile_walk)
    cdef list _avals            # per leaf: an aval known to match its spec (identity cache)

    def __init__(self, treedef, tuple specs, shape=None, dtype=None):
        self.treedef = treedef
        self.specs = specs
        self.shape = shape
        self.dtype = dtype

    cdef tuple _full(self):
        if self.treedef is None:
            return (None, ((self.shape, self.dtype),))
        return (self.treedef, self.specs)

    def __eq__(self, other):
        if not isinstance(other, Signature):
            return NotImplemented
        cdef Signature o = <Signature>other
        if self.treedef is None or o.treedef is None:
            # PyTreeDef.__eq__ raises TypeError on None; one single-array form and one full
            # form never match (a full form never describes exactly one array leaf)
            return (self.treedef is None and o.treedef is None
                    and self.shape == o.shape and self.dtype == o.dtype)
        return self.treedef == o.treedef and self.specs == o.specs

    def __hash__(self):
        return hash(self._full())

    def __repr__(self):
        if self.treedef is None:
            return f"Signature(shape={self.shape}, dtype={self.dtype})"
        return f"Signature(treedef={self.treedef}, leaves={list(self.specs)})"

    def __reduce__(self):
        return (Signature, (self.treedef, self.specs, self.shape, self.dtype))


# mirrors _core_py._analyse
cdef Signature _analyse(object value, bint* has_tracer):
    """Signature of ``value``; sets ``has_tracer`` when a leaf is a JAX tracer."""
    has_tracer[0] = False
    if type(value) is _array_type:
        aval = _aval_of(value)
        return Signature(None, (), aval.shape, aval.dtype)
    leaves, treedef = _tree_flatten(value)
    cdef list specs = []
    for leaf in <list>leaves:
        if type(leaf) is _array_type:  # jax arrays: already canonical, skip the Python call
            aval = _aval_of(leaf)
            specs.append((aval.shape, aval.dtype))
            continue
        if isinstance(leaf, _tracer_type):
            has_tracer[0] = True
        specs.append(_leaf_spec(leaf))
    if len(specs) == 1 and type(specs[0]) is tuple and treedef.num_nodes == 1:
        # a bare array-like leaf: the single form, equal to what a jax array gives
        return Signature(None, (), specs[0][0], specs[0][1])
    return Signature(treedef, tuple(specs))


# mirrors _core_py._matches for a tree signature; 1 = match, -1 = mismatch
cdef int _matches_tree(Signature sig, object value, bint* has_tracer) except -2:
    # Compares leaf by leaf against the stored specs instead of building a Signature.
    cdef list leaves
    cdef tuple specs = sig.specs
    cdef Py_ssize_t i, n
    has_tracer[0] = False
    if type(value) is _array_type:
        return -1  # a tree signature never equals the single-array form
    root = sig._walk
    if root is None:
        root = _compile_walk(sig)
    if root is not False:
        if _walk_node(<_WalkNode>root, value, sig, has_tracer) == 1:
            return 1
        has_tracer[0] = False  # the flatten below decides (and phrases nothing: same verdict)
    leaves_obj, treedef = _tree_flatten(value)
    leaves = <list>leaves_obj
    n = len(leaves)
    if n != len(specs) or not (treedef == sig.treedef):
        return -1
    for i in range(n):
        leaf = leaves[i]
        spec = specs[i]
        if type(leaf) is _array_type and type(spec) is tuple:
            aval = _aval_of(leaf)
            if not (aval.shape == (<tuple>spec)[0] and _same_dtype(aval.dtype, (<tuple>spec)[1])):
                return -1
            continue
        if isinstance(leaf, _tracer_type):
            has_tracer[0] = True
        if not (_leaf_spec(leaf) == spec):
            return -1
    return 1


# --- checked tree writes without JAX's flatten -------------------------------------------------
#
# Flattening a dict of 10 arrays costs ~6 us, most of a checked tree write. A tree signature
# made only of plain containers is compiled once into _WalkNodes, and a write walks the new
# value along them. The walk only ever confirms a match: anything it is not sure of (another
# container type, a dict subclass, a namedtuple, a leaf type JAX might treat as a node, any
# difference) sends the write to the flatten path above, which gives the verdict and, through
# the slow path, the words. So the walk can make a write faster, never change its outcome.

cdef enum:
    _W_LEAF = 0
    _W_NONE = 1
    _W_DICT = 2
    _W_LIST = 3
    _W_TUPLE = 4


cdef class _WalkNode:
    """One node of a compiled tree signature (C-only, built by ``_compile_walk``)."""

    cdef int kind
    cdef Py_ssize_t index       # a leaf's position in Signature.specs
    cdef tuple keys             # a dict's keys in JAX's (sorted) order, all exact str
    cdef tuple children         # _WalkNodes, in JAX's flatten order


cdef object _compile_walk(Signature sig):
    """The root _WalkNode of ``sig`` (cached on it), or False when it cannot be walked."""
    cdef list count = [0]
    root = None
    try:
        root = _compile_node(sig.treedef, count, 0)
    except (AttributeError, TypeError, ValueError):  # a PyTreeDef API this code does not know
        root = None
    if root is None or count[0] != len(sig.specs) or count[0] != sig.treedef.num_leaves:
        sig._walk = False
        return False
    sig._avals = [None] * count[0]
    sig._walk = root
    return root


cdef int _MAX_WALK_DEPTH = 256  # deeper signatures are flattened: C recursion stays bounded


cdef object _compile_node(object treedef, list count, int depth):
    # None when the node (or one below it) is not a plain container: the walk would have to
    # reproduce a custom flatten (namedtuple, OrderedDict, defaultdict, registered classes)
    if depth > _MAX_WALK_DEPTH:
        return None
    cdef _WalkNode node = _WalkNode.__new__(_WalkNode)
    data = treedef.node_data()
    if data is None:
        node.kind = _W_LEAF
        node.index = count[0]
        count[0] += 1
        return node
    node_type, aux = data
    if node_type is type(None):
        node.kind = _W_NONE
        return node
    if node_type is dict:
        # JAX sorts the keys; exact str keys sort one way whatever the insertion order
        # (mixed or exotic keys are left to JAX, which may refuse to sort them)
        for k in aux:
            if type(k) is not str:
                return None
        node.kind = _W_DICT
        node.keys = tuple(aux)
    elif node_type is list:
        node.kind = _W_LIST
    elif node_type is tuple:
        node.kind = _W_TUPLE
    else:
        return None
    cdef list children = []
    for child_def in treedef.children():
        child = _compile_node(child_def, count, depth + 1)
        if child is None:
            return None
        children.append(child)
    node.children = tuple(children)
    if node.kind == _W_DICT and len(node.keys) != len(node.children):
        return None
    return node


cdef int _walk_node(_WalkNode node, object x, Signature sig, bint* has_tracer) except -2:
    # 1 = x flattens to this node's structure with matching leaves; 0 = not sure (flatten).
    cdef tuple children = node.children
    cdef Py_ssize_t i, n
    cdef Py_ssize_t pos = 0
    cdef PyObject* k
    cdef PyObject* item
    cdef int kind = node.kind
    if kind == _W_LEAF:
        return _walk_leaf(node.index, x, sig, has_tracer)
    if kind == _W_NONE:
        return 1 if x is None else 0
    if kind == _W_DICT:
        if type(x) is not dict:  # a subclass is a leaf to JAX unless registered: flatten
            return 0
        n = len(children)
        if PyDict_Size(x) != n:
            return 0
        # only exact str keys: a key that merely compares equal to a stored one could sort
        # (or compare) differently in JAX's flatten
        while PyDict_Next(x, &pos, &k, NULL):
            if type(<object>k) is not str:
                return 0
        for i in range(n):
            item = PyDict_GetItem(x, (<tuple>node.keys)[i])  # borrowed; str keys cannot raise
            if item == NULL:
                return 0
            if _walk_node(<_WalkNode>children[i], <object>item, sig, has_tracer) != 1:
                return 0
        return 1
    n = len(children)
    if kind == _W_LIST:
        if type(x) is not list or len(<list>x) != n:
            return 0
        for i in range(n):
            if _walk_node(<_WalkNode>children[i], (<list>x)[i], sig, has_tracer) != 1:
                return 0
        return 1
    # _W_TUPLE; a namedtuple is another node
    if type(x) is not tuple or len(<tuple>x) != n:
        return 0
    for i in range(n):
        if _walk_node(<_WalkNode>children[i], (<tuple>x)[i], sig, has_tracer) != 1:
            return 0
    return 1


cdef int _walk_leaf(Py_ssize_t i, object leaf, Signature sig, bint* has_tracer) except -2:
    # Only types JAX always treats as leaves; anything else may be a registered node (a
    # Quantity has .shape and .dtype too) and goes to the flatten.
    spec = sig.specs[i]
    t = type(leaf)
    if t is _array_type:
        if type(spec) is not tuple:
            return 0
        aval = _aval_of(leaf)
        if aval is (<list>sig._avals)[i]:  # avals are immutable and shared: see _check
            return 1
        if aval.shape == (<tuple>spec)[0] and _same_dtype(aval.dtype, (<tuple>spec)[1]):
            (<list>sig._avals)[i] = aval
            return 1
        return 0
    if not (t is float or t is int or t is bool or t is complex or t is _np_ndarray):
        if not isinstance(leaf, _tracer_type):
            return 0
        has_tracer[0] = True
    return 1 if _leaf_spec(leaf) == spec else 0


def make_signature(value):
    """The abstract signature of ``value``."""
    cdef bint t
    return _analyse(value, &t)


# mirrors _core_py._same_structure
cdef bint _same_structure(Signature a, Signature b) except -1:
    # the single-array form stands for the leaf treedef
    if a.treedef is None:
        return b.treedef is None or (b.treedef.num_nodes == 1 and b.treedef.num_leaves == 1)
    if b.treedef is None:
        return a.treedef.num_nodes == 1 and a.treedef.num_leaves == 1
    return a.treedef == b.treedef


cdef inline bint _same_dtype(object a, object b):
    return a is b or a == b


# --- trace frames ---------------------------------------------------------------------------

cdef class TraceFrame:
    """Recording core of ``StateTraceStack``: which states were touched, in first-access order."""

    cdef public list states
    cdef public list been_writen
    cdef public dict _id2index
    cdef public list _original_state_values
    cdef public bint _originals_released
    cdef public object _new_arg
    cdef public object _check_read

    def __init__(self, new_arg=None, check_read=None):
        self.states = []
        self.been_writen = []
        self._id2index = {}
        self._original_state_values = []
        self._originals_released = False
        self._new_arg = new_arg
        self._check_read = check_read

    # mirrors _core_py.TraceFrame.read_its_value (returns the state's index)
    cdef Py_ssize_t _read(self, object st) except -2:
        if self._check_read is not None:
            self._check_read(st)
        key = st  # keyed by the state itself: identity hash, no id() int to allocate
        idx = self._id2index.get(key)
        if idx is not None:
            return <Py_ssize_t>idx
        if isinstance(st, StateCore) and (<StateCore>st)._holder is not None \
                and _foreign(<StateCore>st):
            raise _held_error(<StateCore>st, "trace")
        cdef Py_ssize_t n = len(self.states)
        self._id2index[key] = n
        self.states.append(st)
        self.been_writen.append(False)
        if isinstance(st, StateCore):
            orig = (<StateCore>st)._value
            self._original_state_values.append(orig)
            if self._new_arg is not None:
                view = self._new_arg(st)
                _hold_begin(<StateCore>st, orig, (<StateCore>st)._flags == 0)
                (<StateCore>st)._value = view
                (<StateCore>st)._flags |= _VIEW
        else:  # a hosted state: its own attributes and view entry point
            self._original_state_values.append(st._value)
            if self._new_arg is not None:
                st._set_view(self._new_arg(st))
        return n

    def read_its_value(self, st):
        """Record a read of ``st`` (first sight: snapshot it and apply ``new_arg``)."""
        _require_state(st)
        self._read(st)

    # mirrors _core_py.TraceFrame.write_its_value
    cdef int _write(self, object st) except -1:
        cdef Py_ssize_t idx = self._read(st)
        self.been_writen[idx] = True
        return 0

    def write_its_value(self, st):
        """Record a write of ``st`` (registered as read first if unseen)."""
        _require_state(st)
        self._write(st)


# mirrors _core_py._require(st, _state_types, "st")
cdef int _require_state(object st) except -1:
    if not _is_state(st):
        raise TypeError(f"Argument 'st' has incorrect type (expected StateCore, got "
                        f"{type(st).__name__})")
    return 0


# mirrors _core_py._record_read
cdef int _record_read(StateCore st) except -1:
    cdef list stack = _get_ctx().state_stack
    cdef Py_ssize_t i
    for i in range(st._level, len(stack)):
        (<TraceFrame>stack[i])._read(st)
    return 0


# mirrors _core_py._record_write
cdef int _record_write(StateCore st) except -1:
    cdef list stack = _get_ctx().state_stack
    cdef Py_ssize_t i
    for i in range(st._level, len(stack)):
        (<TraceFrame>stack[i])._write(st)
    return 0


# --- states held by one thread's trace ------------------------------------------------------
# A trace puts its tracers (or a transform's per-lane views) into the very state objects it
# touches, for as long as it runs. Meanwhile the state is *held* by the tracing thread: other
# threads see the value it had before the trace, and what they write is kept in the hold and
# becomes the state's value when the trace rolls back (docs/ARCHITECTURE.md, "Threads and
# traces"). A thread that is tracing itself cannot use a state another thread's trace holds.
# mirrors _core_py._Hold

cdef class _Hold:
    cdef ThreadContext owner
    cdef object thread  # the owner's thread name, for messages
    cdef object value   # what other threads see (_INVALID: created inside the trace, none)
    cdef bint dirty     # another thread wrote ``value`` during the hold


cdef inline bint _foreign(StateCore st):
    """``st`` is held by a trace of another thread (the caller tested ``_holder`` first)."""
    return (<_Hold>st._holder).owner is not _get_ctx()


# mirrors _core_py._hold_begin
cdef int _hold_begin(StateCore st, object before, bint concrete) except -1:
    """A trace-dependent value is going into ``st`` in this thread: hold it, remembering
    ``before`` when it was ``concrete`` (no-op when already held)."""
    cdef _Hold h
    if st._holder is None:
        h = _Hold.__new__(_Hold)
        h.owner = _get_ctx()
        h.thread = threading.current_thread().name
        h.value = before if concrete else _INVALID
        h.dirty = False
        st._holder = h
    return 0


# mirrors _core_py._hold_end
cdef inline object _hold_end(StateCore st, object v, bint keep_foreign_write):
    """``st`` goes back to a concrete value ``v`` in this thread: release the hold. A restore
    (``keep_foreign_write``) keeps instead what another thread wrote during the hold."""
    cdef _Hold h = <_Hold>st._holder
    st._holder = None
    if keep_foreign_write and h.dirty:
        return h.value
    return v


# mirrors _core_py._held_error
cdef object _held_error(StateCore st, str op):
    cdef _Hold h = <_Hold>st._holder
    return _make_error("held", st, op, h.thread, threading.current_thread().name,
                       h.value is _INVALID)


# mirrors _core_py._foreign_value
cdef object _foreign_value(StateCore st, str op):
    """The value another thread sees (refused while that thread traces, or when none)."""
    cdef _Hold h = <_Hold>st._holder
    if h.value is _INVALID or (_n_frames and len(<list>_get_ctx().state_stack)):
        raise _held_error(st, op)
    return h.value


# mirrors _core_py._foreign_store
cdef int _foreign_store(StateCore st, object v) except -1:
    """Store ``v`` where another thread's trace will keep it (the hold, or the state itself
    when the hold ended meanwhile, e.g. while hooks ran)."""
    h = st._holder
    if h is None or not _foreign(st):
        st._value = v  # (this thread is not tracing: no hold of its own can have begun)
        st._flags = 0
        return 0
    (<_Hold>h).value = v
    (<_Hold>h).dirty = True
    return 0


# --- the state core -------------------------------------------------------------------------

cdef enum:
    _VIEW = 1    # value installed by a transform's view path (new_arg / _set_view)
    _TRACER = 2  # held value contains a JAX tracer


# mirrors _core_py._strict_guard
cdef int _strict_guard(StateCore st) except -1:
    if (<list>_get_ctx().jax_tracer_check)[-1] and st._trace_ref is not _current_trace_ref():
        raise _make_error("strict_attr", st)
    return 0


# mirrors _core_py._reserved_type_message
cdef str _reserved_type_message(type cls):
    return (f"{cls.__name__}(..., type=...): 'type' cannot be a state's metadata key: the "
            "state's snapshot (TreefyState, used by graph splits, transforms and checkpoints) "
            "keeps the state class under that name. Use another key, e.g. 'kind'.")


cdef object _normalize_tag(object tag):
    if tag is None:
        return None
    if isinstance(tag, str):
        return {tag}
    return set(tag)


# --- `state.value = v` without the generic attribute machinery ----------------------------
#
# STORE_ATTR reaches StateCore.__setattr__ (the strict attribute guard), whose generic store
# looks ``value`` up through the type's MRO and calls the property setter through its
# wrapper: ~7 ns of a ~47 ns checked write. Types whose ``value`` is StateCore's own property
# are remembered with their version tag (CPython invalidates it on any change to the type or
# a base, as its own method cache relies on), and their writes go straight to ``_write``.

cdef extern from *:
    """
    static inline int bs_type_tag_valid(PyTypeObject* tp, unsigned int tag) {
    #ifdef Py_TPFLAGS_VALID_VERSION_TAG
        if (!(tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) return 0;
    #endif
        return tag != 0 && tp->tp_version_tag == tag;
    }
    """
    bint bs_type_tag_valid(PyTypeObject* tp, unsigned int tag)

cdef object _value_descr = None  # StateCore.__dict__["value"], set after the class
cdef object _K_VALUE = "value"  # (also a key of the graph code's ref dicts)
cdef PyTypeObject* _own_value_types[4]
cdef unsigned int _own_value_tags[4]
cdef int _own_value_next = 0


cdef inline bint _own_value_setter(object t):
    cdef PyTypeObject* tp = <PyTypeObject*>t
    cdef int i
    for i in range(4):
        if _own_value_types[i] == tp:
            if bs_type_tag_valid(tp, _own_value_tags[i]):
                return True
            break
    return _own_value_setter_slow(t)


cdef bint _own_value_setter_slow(object t):
    global _own_value_next
    cdef PyTypeObject* tp = <PyTypeObject*>t
    if getattr(t, _K_VALUE, None) is not _value_descr:  # (assigns the version tag)
        return False
    if bs_type_tag_valid(tp, tp.tp_version_tag):
        # a borrowed pointer: a stale entry only fails to match (a new type at the same
        # address has its own version tag)
        _own_value_types[_own_value_next] = tp
        _own_value_tags[_own_value_next] = tp.tp_version_tag
        _own_value_next = (_own_value_next + 1) & 3
    return True


# State pickles through its own __reduce__: no generated pickle helpers to show in help()
@cython.auto_pickle(False)
cdef class StateCore:
    """Base type of ``State``: typed slots and the whole read/write order of ``.value``."""

    cdef public object _value
    cdef object _sigobj         # Signature, or None: single array with _sig_shape/_sig_dtype
    cdef object _sig_shape
    cdef object _sig1           # the single form's Signature once built (None: not yet)
    cdef object _sig_dtype
    cdef object _aval           # an aval known to match _sig_shape/_sig_dtype (see _check);
                                # for a typed PRNG key, (base array aval, impl)
    cdef public object _trace_ref
    cdef public Py_ssize_t _level
    cdef public bint _been_writen
    cdef public int _flags
    cdef public object _hooks_mgr_or_none
    cdef object _site_code
    cdef int _site_lasti
    cdef object _site_obj
    cdef public object _name
    cdef public object tag
    cdef object _wref           # this state's weak reference, made on the first hook dispatch
    cdef object _split_code     # the STATE_DEF code the last graph split built for it
    cdef object _holder         # a _Hold while a trace of one thread holds the value, else None
    cdef object __weakref__

    def __init__(self, value, name=None, **metadata):
        cdef object tag = None
        if metadata:
            tag = _normalize_tag(metadata.pop("tag", None))
        self._trace_ref = _current_trace_ref()
        if isinstance(value, _metadata_type):
            metadata.update(value.metadata)
            value = value.raw_value
        if metadata and "type" in metadata:
            raise TypeError(_reserved_type_message(type(self)))
        if type(value) is not _array_type and _is_state(value):
            value = value.value
        self._bind(value)
        if self._flags:  # created inside a trace: no concrete value for other threads
            _hold_begin(self, _INVALID, False)
        self._level = _stack_level()
        self._been_writen = False
        self._hooks_mgr_or_none = None
        site = _site_of_caller()
        if site is not None:
            self._site_code = site[0]
            self._site_lasti = site[1]
        self._name = name
        self.tag = tag
        if metadata:
            getattr(self, "__dict__").update(metadata)
        if _n_catchers:
            for catcher in tuple(_get_ctx().new_state_catcher):
                catcher.append(self)
        if _n_hooks:
            init_md = {"_name": name, "tag": tag}
            init_md.update(metadata)
            _dispatch_init(self, value, init_md)

    # mirrors the value/signature part of _core_py.StateCore._init_from
    cdef inline void _bind(self, object value) except *:
        # Store value and derive the signature from it (single arrays without an object).
        cdef bint has_tracer = False
        self._value = value
        if type(value) is _array_type:
            # ArrayImpl.shape/.dtype are Python properties returning aval.shape/.dtype;
            # reading the aval directly saves two Python calls per state built (merge of a
            # jax.tree.map'ed mapping: ~100 ns per state). tests/test_graph_core.py pins the
            # equivalence for the JAX version in use.
            aval = _aval_of(value)
            self._sigobj = None
            self._sig_shape = aval.shape
            self._sig_dtype = aval.dtype
            self._sig1 = None
            self._aval = aval
        else:
            sig = _analyse(value, &has_tracer)
            if sig.treedef is None:
                self._sigobj = None
                self._sig_shape = sig.shape
                self._sig_dtype = sig.dtype
                self._sig1 = sig
                self._aval = None
            else:
                self._sigobj = sig
        self._flags = _TRACER if has_tracer else 0

    # mirrors _core_py.StateCore._init_from's value/signature part, for a value whose
    # signature is known (a ref made by make_ref, whose value is the state's checked value)
    cdef inline void _bind_known(self, object value, Signature sig):
        # (None fields are tested before they are cleared: on a fresh state they all are, and
        # each store of None is two writes to None's reference count, which every store in
        # this loop waits on)
        self._value = value
        if sig.treedef is None:
            if self._sigobj is not None:
                self._sigobj = None
            self._sig_shape = sig.shape
            self._sig_dtype = sig.dtype
            self._sig1 = sig
            if self._aval is not None:
                self._aval = None
        else:
            self._sigobj = sig
        self._flags = 0

    def __hash__(self):
        # identity semantics: hash(state) == hash(id(state)), no __eq__.
        # An address is below 2**61 - 1, where an int hashes to itself: no int is built.
        return <Py_ssize_t><void*>self

    # -- guarded attribute assignment (strict attribute guard: docs/concepts/trace-contexts.md) --
    def __setattr__(self, name, value):
        if _n_tracer_check:
            _strict_guard(self)
        if name is _K_VALUE and _own_value_setter(type(self)):
            self._write(value, True)
            return
        _generic_setattr(self, name, <PyObject*>value)

    def __delattr__(self, name):
        _generic_setattr(self, name, NULL)

    def _setattr_no_check(self, name, value):
        """Set an attribute bypassing the strict attribute guard."""
        _generic_setattr(self, name, <PyObject*>value)

    # -- signature access --
    @property
    def _signature(self):
        """The stored abstract signature (a ``Signature``)."""
        return _state_signature(self)

    @_signature.setter
    def _signature(self, Signature sig not None):
        global _epoch
        _epoch += 1
        if sig.treedef is None:
            self._sigobj = None
            self._sig_shape = sig.shape
            self._sig_dtype = sig.dtype
            self._sig1 = sig
            self._aval = None
        else:
            self._sigobj = sig

    @property
    def _site(self):
        return _state_site(self)

    @_site.setter
    def _site(self, site):
        self._site_obj = site
        self._site_code = None

    # -- reading --
    @property
    def value(self):
        """The state's current value (a PyTree of arrays); assign to replace it."""
        if self._value is _INVALID:
            raise _make_error("poisoned", self, "read")
        if self._holder is not None and _foreign(self):
            v = _foreign_value(self, "read")
        else:
            if _n_frames:
                _record_read(self)
            v = self._value
        if _n_hooks:
            _dispatch_read(self, v)
        return v

    @value.setter
    def value(self, v):
        self._write(v, True)

    # mirrors _core_py.StateCore._write
    cdef int _write(self, object v, bint fire_before) except -1:
        # Error precedence: State value, tracer guard, signature, strict attribute guard;
        # all of them before any hook, recording or mutation.
        cdef bint has_tracer = False
        cdef int code
        if type(v) is not _array_type and _is_state(v):
            raise _make_error("set_state", self, v)
        if self._holder is not None and _foreign(self):
            return self._write_foreign(0, v, fire_before)
        code = self._check(0, v, &has_tracer)
        if has_tracer and not (_n_frames and len(<list>_get_ctx().state_stack)):
            if self._trace_ref is not _current_trace_ref():
                raise _make_error("tracer_write", self)
        if code < 0:
            raise self._mismatch(0, v)
        if _n_tracer_check:
            _strict_guard(self)
        old = self._value
        cdef long hooked = 0
        if _n_hooks:
            # one look at the masks of the global and this state's manager: a hook registered
            # on another state must not cost this write two dispatch calls
            hooked = _hook_bits(self)
            if _any_bit(hooked, 2) and fire_before:
                nv = _dispatch_write_before(self, hooked, v, old)
                if nv is not v:
                    code = self._check(0, nv, &has_tracer)
                    if code < 0:
                        raise self._mismatch(0, nv)
                    v = nv
                hooked = _hook_bits(self)  # a write_before hook may have (un)registered hooks
        if _n_frames:
            _record_write(self)
        self._store(v, has_tracer, code)
        self._been_writen = True
        if _any_bit(hooked, 4):
            _dispatch_write_after(self, hooked, v, old)
        return 0

    # mirrors _core_py.StateCore._check
    cdef int _check(self, int op, object v, bint* has_tracer) except -2:
        # op 0 = write, 1 = restore. Returns 1 = matches, 0 = an active
        # check_state_value_tree(False) asks for a re-bind, -1 = mismatch (the caller raises
        # _mismatch once the guards that take precedence have run).
        cdef Signature held, got
        has_tracer[0] = False
        if _rebinding():
            if type(v) is not _array_type:
                _analyse(v, has_tracer)
            return 0
        if self._flags & (_VIEW | _TRACER) and self._value is not _INVALID:
            # Under a transform's view the stored shape may be per-lane: compare with the held value.
            held = _analyse(self._value, has_tracer)
            got = _analyse(v, has_tracer)
            if op == 0:
                same = held == got
            else:
                same = _same_structure(held, got)
            return 1 if same else -1
        if self._sigobj is None and type(v) is _array_type:
            # Avals are immutable and JAX hands the same aval object to the arrays of one
            # shape/dtype it builds (every output of a jitted step, every jnp.ones(n)): an
            # identity hit settles the check without reading shape and dtype (~25 ns of a
            # ~85 ns write). C-only cache: the pure twin compares every time.
            aval = _aval_of(v)
            if aval is self._aval:
                return 1
            if aval.shape == self._sig_shape and _same_dtype(aval.dtype, self._sig_dtype):
                self._aval = aval
                return 1
            return -1
        if self._sigobj is None and type(v) is _key_array_type:
            # A typed PRNG key (a RandomState's value, written at every draw). The generic path
            # below costs ~2.7 us (leaf_spec cannot canonicalise its extended dtype) and the
            # key's own .aval ~9 us (it rebuilds a sharding): test instead the identity of its
            # uint32 base array's aval and of its PRNG implementation, cached as a pair (a
            # tuple is never the aval of a plain array, so the branch above cannot confuse it).
            base = _aval_of(v._base_array)
            impl = v._impl
            cached = self._aval
            if type(cached) is tuple and (<tuple>cached)[0] is base \
                    and (<tuple>cached)[1] is impl:
                return 1
            if v.shape == self._sig_shape and _same_dtype(v.dtype, self._sig_dtype):
                self._aval = (base, impl)
                return 1
            return -1
        if self._sigobj is not None:
            return _matches_tree(<Signature>self._sigobj, v, has_tracer)
        got = _analyse(v, has_tracer)
        return 1 if got == self._signature else -1

    # mirrors _core_py.StateCore._mismatch
    cdef object _mismatch(self, int op, object v):
        cdef bint t
        if self._flags & (_VIEW | _TRACER) and self._value is not _INVALID:
            expected = _analyse(self._value, &t)
        else:
            expected = self._signature
        return _make_error("signature", self, "write" if op == 0 else "restore", expected, v)

    # mirrors _core_py.StateCore._store
    cdef inline void _store(self, object v, bint has_tracer, int code) except *:
        cdef int view = self._flags & _VIEW
        if has_tracer or self._holder is not None:
            self._store_holding(has_tracer, view)
        if code != 0:
            self._value = v
            self._flags = view | (_TRACER if has_tracer else 0)
        else:
            global _epoch
            self._bind(v)
            self._flags |= view
            _epoch += 1  # a re-bind: caches keyed on signatures must revalidate

    # the hold part of _store, out of line: taken only in traces and by held states
    cdef int _store_holding(self, bint has_tracer, int view) except -1:
        if has_tracer:
            if self._holder is None:
                _hold_begin(self, self._value, self._flags == 0)
        elif not view:
            _hold_end(self, None, False)  # this thread's own concrete write ends its hold
        return 0

    def restore_value(self, v):
        """Replace the value without the write path: no tracer guard, no write hooks.

        Checked against the signature, recorded as a read, fires ``restore`` hooks.
        """
        self._restore(v)

    cdef int _restore(self, object v) except -1:
        cdef bint has_tracer = False
        cdef int code
        if type(v) is not _array_type and _is_state(v):
            raise _make_error("set_state", self, v)
        if self._holder is not None and _foreign(self):
            return self._write_foreign(1, v, False)
        code = self._check(1, v, &has_tracer)
        if code < 0:
            raise self._mismatch(1, v)
        if _n_tracer_check:
            _strict_guard(self)
        if _n_frames:
            _record_read(self)
        old = self._value
        self._store(v, has_tracer, code)
        self._flags &= ~_VIEW
        if self._flags == 0 and self._holder is not None:
            # the restore that ends this thread's trace keeps what other threads wrote meanwhile
            v = _hold_end(self, v, True)
            self._value = v
        if _n_hooks:
            _dispatch_restore(self, v, old)
        return 0

    # mirrors _core_py.StateCore._write_foreign
    cdef int _write_foreign(self, int op, object v, bint fire_before) except -1:
        # A write (op 0) or restore (1) from a thread other than the one whose trace holds this
        # state: checked against the stored signature (never re-bound: the trace relies on it),
        # hooks fire with the held value as the old one, and the value goes into the hold.
        cdef bint has_tracer = False
        cdef long hooked = 0
        old = _foreign_value(self, "write" if op == 0 else "restore")
        got = _analyse(v, &has_tracer)
        if has_tracer:
            raise _make_error("tracer_write", self)
        sig = _state_signature(self)
        if not (got == sig if op == 0 else _same_structure(sig, got)):
            raise _make_error("signature", self, "write" if op == 0 else "restore", sig, v)
        if _n_tracer_check:
            _strict_guard(self)
        if _n_hooks and op == 0:
            hooked = _hook_bits(self)
            if _any_bit(hooked, 2) and fire_before:
                nv = _dispatch_write_before(self, hooked, v, old)
                if nv is not v:
                    got = _analyse(nv, &has_tracer)
                    if has_tracer or not (got == sig):
                        raise _make_error("signature", self, "write", sig, nv)
                    v = nv
                hooked = _hook_bits(self)
        _foreign_store(self, v)
        if op == 0:
            self._been_writen = True
            if _any_bit(hooked, 4):
                _dispatch_write_after(self, hooked, v, old)
        elif _n_hooks:
            _dispatch_restore(self, v, old)
        return 0

    # -- internal paths used by transforms --
    def _write_no_before(self, v):
        """Write path for a transform's write-back: checked, recorded, ``write_before`` skipped."""
        self._write(v, False)

    def _set_view(self, v):
        """Install a transform's per-lane view of the value (no check, no record, no hooks)."""
        if self._holder is not None and _foreign(self):
            raise _held_error(self, "trace")
        _hold_begin(self, self._value, self._flags == 0)
        self._value = v
        self._flags |= _VIEW

    def _restore_rebind(self, v):
        """Restore ``v`` and re-bind the signature to it (vmap_new_states, eval_shape)."""
        global _epoch
        if self._holder is not None and _foreign(self):
            raise _held_error(self, "restore")
        old = self._value
        cdef bint was_concrete = self._flags == 0
        self._bind(v)
        _epoch += 1
        if self._flags:
            _hold_begin(self, old, was_concrete)
        elif self._holder is not None:
            _hold_end(self, v, False)  # (a re-bind keeps its own value: the signature is v's)
        if _n_hooks:
            _dispatch_restore(self, v, old)

    def _restore_silent(self, v):
        """Put back a value this state held before (a transform's rollback): no check, no hooks.

        When this ends the hold of this thread's trace, a value another thread wrote during
        the trace is kept instead of ``v``.
        """
        cdef bint has_tracer = False
        if type(v) is not _array_type:
            _analyse(v, &has_tracer)
        h = self._holder
        if h is not None and _foreign(self):
            if has_tracer:
                raise _held_error(self, "restore")
            _foreign_store(self, v)
            return
        if has_tracer:
            _hold_begin(self, self._value, self._flags == 0)
        elif h is not None:
            v = _hold_end(self, v, True)
        self._value = v
        self._flags = _TRACER if has_tracer else 0

    def _invalidate_trace_value(self):
        """Poison the state: its value was a tracer that died with its trace."""
        self._holder = None
        self._value = _INVALID
        self._flags = 0

    def _read_value(self):
        self.check_if_deleted()
        if self._holder is not None and _foreign(self):
            return _foreign_value(self, "read")
        return self._value

    def _write_value(self, v):
        self._value = v

    def check_if_deleted(self):
        """Hook for subclasses that materialise their value lazily (no-op here)."""

    def numel(self):
        """Total number of elements over all leaves of the value."""
        if self._value is _INVALID:
            raise _make_error("poisoned", self, "numel")
        n = 0
        for leaf in _tree_flatten(self._value)[0]:
            n += int(getattr(leaf, "size", 1))
        return n

    @property
    def stack_level(self):
        """The trace-stack depth this state belongs to."""
        return self._level

    @stack_level.setter
    def stack_level(self, level):
        self._level = level

    def increase_stack_level(self):
        self._level = self._level + 1

    def decrease_stack_level(self):
        self._level = max(self._level - 1, 0)

    def _init_from(self, value, site):
        """Bind a state built without ``__init__`` (copy, ref, unpickle) to ``value``.

        The signature is derived from the value; trace identity and level are captured now;
        ``site`` (or the current call site) becomes the creation site.
        """
        self._bind(value)
        if self._flags and self._holder is None:
            _hold_begin(self, _INVALID, False)
        self._trace_ref = _current_trace_ref()
        self._level = _stack_level()
        if site is not None:
            self._site_obj = site
            self._site_code = None
        else:
            s = _site_of_caller()
            self._site_obj = None
            self._site_code = None if s is None else s[0]
            self._site_lasti = 0 if s is None else s[1]

    def _trace_is_valid(self):
        return self._trace_ref is _current_trace_ref()

    def _recapture_trace(self):
        self._trace_ref = _current_trace_ref()
        self._level = _stack_level()


# mirrors the _sig attribute of _core_py.StateCore (the single form's object is built once)
cdef inline Signature _state_signature(StateCore st):
    cdef Signature s
    if st._sigobj is not None:
        return <Signature>st._sigobj
    if st._sig1 is None:
        s = Signature.__new__(Signature)
        s.treedef = None
        s.specs = ()
        s.shape = st._sig_shape
        s.dtype = st._sig_dtype
        st._sig1 = s
    return <Signature>st._sig1


_value_descr = StateCore.__dict__["value"]


# --- hook dispatch ---------------------------------------------------------------------------

include "_core_hooks.pxi"


# --- per-call paths of transforms -----------------------------------------------------------

def gather(states):
    """Current values of ``states`` in order: recorded in enclosing frames, no read hooks."""
    cdef list out = []
    for st in states:
        if isinstance(st, StateCore):
            if (<StateCore>st)._holder is not None and _foreign(<StateCore>st):
                v = _foreign_value(<StateCore>st, "read")
            else:
                if _n_frames:
                    _record_read(<StateCore>st)
                v = (<StateCore>st)._value
        else:
            _require_state(st)
            if _n_frames:
                _record_hosted(st, False)
            v = st._value
        if v is _INVALID:
            raise _make_error("poisoned", st, "read")
        out.append(v)
    return out


# mirrors _core_py._record_read / _record_write for a hosted state (its level is an attribute)
cdef int _record_hosted(object st, bint write) except -1:
    cdef list stack = _get_ctx().state_stack
    cdef Py_ssize_t i
    for i in range(<Py_ssize_t>st._level, len(stack)):
        if write:
            (<TraceFrame>stack[i])._write(st)
        else:
            (<TraceFrame>stack[i])._read(st)
    return 0


# the tracer guard of _core_py.scatter for one state; returns JAX's current trace (``current``
# is _INVALID until looked up: at most once per scatter)
cdef object _scatter_guard(object st, object trace_ref, object v, object current):
    cdef bint has_tracer
    if current is _INVALID:
        current = _current_trace_ref()
    if trace_ref is not current:
        _analyse(v, &has_tracer)
        if has_tracer:
            raise _make_error("tracer_write", st)
    return current


# mirrors one state of _core_py.scatter, for a hosted state (attribute access throughout)
cdef object _scatter_hosted(object st, object v, bint guard, object current):
    _require_state(st)
    if guard and type(v) is not _array_type:
        current = _scatter_guard(st, st._trace_ref, v, current)
    old = st._value
    if _n_frames:
        _record_hosted(st, True)
    object.__setattr__(st, "_value", v)
    object.__setattr__(st, "_been_writen", True)
    if _n_hooks:
        _hooks.dispatch_write_after(st, v, old)
    return current


# mirrors the held-state branch of _core_py.scatter
cdef int _scatter_foreign(StateCore st, object v) except -1:
    cdef bint has_tracer = False
    old = _foreign_value(st, "write")
    if type(v) is not _array_type:
        _analyse(v, &has_tracer)
        if has_tracer:
            raise _make_error("tracer_write", st)
    _foreign_store(st, v)
    st._been_writen = True
    if _n_hooks:
        _dispatch_write_after(st, _hook_bits(st), v, old)
    return 0


def scatter(states, values, written=None):
    """Store a compiled call's results: written states without re-checking their signature.

    ``written`` holds one flag per state (``None``: every state was written). Signatures were
    checked when the computation was traced, and its output avals are fixed, so only
    recording in enclosing frames and observer hooks remain per call. The tracer guard stays:
    outside any brainstate trace, a state from another JAX trace must not receive tracers (a
    brainstate transform called inside a raw ``jax.jit``).
    """
    # mirrors _core_py.scatter
    cdef StateCore st
    # tuples and lists are indexed in place (a transform's entry keeps its states in a tuple)
    sts = states if type(states) is list or type(states) is tuple else list(states)
    vals = values if type(values) is list or type(values) is tuple else list(values)
    cdef Py_ssize_t i, n = len(sts)
    if len(vals) != n or (written is not None and len(written) != n):
        raise ValueError(f"scatter: {n} states, {len(vals)} values"
                         + ("" if written is None else f", {len(written)} written flags"))
    cdef bint guard = not (_n_frames and len(<list>_get_ctx().state_stack))
    current = _INVALID  # JAX's current trace, looked up only for a non-array value
    for i in range(n):
        if written is not None and not written[i]:
            continue
        obj = sts[i]
        v = vals[i]
        if not isinstance(obj, StateCore):
            current = _scatter_hosted(obj, v, guard, current)
            continue
        st = <StateCore>obj
        if st._holder is not None and _foreign(st):
            _scatter_foreign(st, v)
            continue
        if guard and type(v) is not _array_type:
            current = _scatter_guard(st, st._trace_ref, v, current)
        old = st._value
        if _n_frames:
            _record_write(st)
        st._value = v  # flags kept: a traced call returns what it was given (tracer or not)
        st._been_writen = True
        if _n_hooks:
            _dispatch_write_after(st, _hook_bits(st), v, old)


# --- graph walks ----------------------------------------------------------------------------

include "_core_graph.pxi"
