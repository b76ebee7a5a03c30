# Configuration, process-wide activity counters, the thread-local trace context and
# creation sites (included by _core.pyx). Twin: brainstate/_core_py/_context.py.

# --- configuration (set once by brainstate._wiring) ------------------------------------------

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
    """Install the Python callables the core needs; called once by ``brainstate._wiring``."""
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


# mirrors _core_py._context._state_types: a state of our layout, or one hosted on the
# plain-Python core (C-level subtype tests only: isinstance() with a Python class also looks up
# the value's __class__, a generic getattr on a jax array that cost ~10 % of a state's creation)
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


# mirrors _core_py._context.stack_level
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


# mirrors _core_py._context._rebinding
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


# mirrors _core_py._context._current_trace_ref
cdef inline object _current_trace_ref():
    return _trace_ctx.trace._weakref


def current_trace_ref():
    """The identity of JAX's current trace (what a state's ``_trace_ref`` is compared with)."""
    return _trace_ctx.trace._weakref


# --- creation sites -------------------------------------------------------------------------

# mirrors _core_py._context.capture_site (without building the SourceSite)
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

