# Hook dispatch in C (included by _core.pyx). Twin: brainstate/_core_py/_hooks.py (the pure
# reference, which also fires the hooks of hosted states under this core).
#
# The public hook classes stay the Python ones of brainstate/_hooks.py (slotted dataclasses
# and slotted classes); this file reads and writes their slots through the member offsets
# CPython gives each __slots__ entry, so a context costs one allocation and a few pointer
# stores instead of a Python-level construction (measured: ~230 ns per context in Python).
#
# Where a hooked write's time goes (one write_before + one write_after hook, bench_hooks.py's
# loop, 2-core VM, ~172 ns against a ~62 ns limit): two CLOCK_REALTIME reads (~16 ns each
# through the vDSO; time.time() is the same call), two C-to-Python calls (~35 ns each: the
# eval loop's entry and frame setup, which the limit's inlined Python-to-Python calls skip),
# the checked write (~39 ns), and the dispatch (masks, lock, contexts: ~15 ns per hook).
# What it took to get there from ~290 ns (callgrind instruction counts, perf samples): the
# callbacks are called by raw vectorcall with the error path out of line (a Cython try saves
# and restores the exception state), the masks are read as small ints once per manager and
# round, the spare contexts live in a C array, a reused context's timestamp float is
# overwritten in place, and the write itself got cheaper (aval identity, see _core.pyx).

from cpython.ref cimport Py_INCREF
from cpython.weakref cimport PyWeakref_NewRef

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    object PyType_GenericAlloc(type t, Py_ssize_t nitems)
    ctypedef void* PyThread_type_lock
    PyThread_type_lock PyThread_allocate_lock()
    void PyThread_free_lock(PyThread_type_lock)
    int PyThread_acquire_lock(PyThread_type_lock, int waitflag) nogil
    void PyThread_release_lock(PyThread_type_lock) nogil
    unsigned long PyThread_get_thread_ident()
    PyObject* PyObject_Vectorcall(PyObject* callable, PyObject** args, size_t nargsf,
                                  PyObject* kwnames)
    size_t PY_VECTORCALL_ARGUMENTS_OFFSET

cdef extern from "time.h":
    cdef struct timespec:
        long tv_sec
        long tv_nsec
    int timespec_get(timespec* ts, int base)
    int TIME_UTC

# --- a re-entrant lock with a C fast path --------------------------------------------------

cdef class FastRLock:
    """A re-entrant lock whose uncontended acquire/release touch no OS lock.

    Used as each hook manager's lock: dispatch holds it for a whole chain (hooks of one
    manager never run concurrently), registration holds it while rebuilding the chains.

    Every field is read and written with the GIL held, so owner/count updates are atomic
    with respect to other threads. The OS lock ``_lk`` is taken only under contention: a
    thread that finds the lock owned by another thread takes ``_lk`` on the owner's behalf
    (``_locked``), then blocks on it without the GIL; the owner's final release releases
    ``_lk`` and so wakes it. (CPython 3.11's lock acquire reads the monotonic clock even
    when it does not wait: two clock reads per hooked write, ~10 % of it under perf.)
    """

    cdef PyThread_type_lock _lk
    cdef unsigned long _owner
    cdef long _count
    cdef long _waiting
    cdef bint _locked

    def __cinit__(self):
        self._lk = PyThread_allocate_lock()
        if self._lk == NULL:
            raise MemoryError("cannot allocate a lock")

    def __dealloc__(self):
        if self._lk != NULL:
            PyThread_free_lock(self._lk)

    cdef inline int _acquire(self) except -1:
        cdef unsigned long me = PyThread_get_thread_ident()
        if self._count:
            if self._owner == me:
                self._count += 1
                return 0
        elif not self._waiting:
            self._owner = me
            self._count = 1
            return 0
        return self._acquire_contended(me)

    cdef int _acquire_contended(self, unsigned long me) except -1:
        if not self._locked and not self._waiting:
            # The owner never took the OS lock: take it for them, their release frees it. It
            # is free here: it is held only while _locked is set (taken for an owner, or by a
            # woken waiter, who sets _locked before anyone else gets the GIL) or while a
            # waiter is counted in _waiting. So the acquire does not wait (with the GIL held).
            if not PyThread_acquire_lock(self._lk, 0):
                raise RuntimeError("FastRLock: OS lock held with no owner or waiter recorded")
            self._locked = True
        self._waiting += 1
        with nogil:
            PyThread_acquire_lock(self._lk, 1)
        self._waiting -= 1
        self._locked = True
        self._owner = me
        self._count = 1
        return 0

    cdef inline int _release(self) except -1:
        if self._count == 0 or self._owner != PyThread_get_thread_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._release_owned()
        return 0

    cdef inline void _release_owned(self) noexcept:
        # for a caller that acquired the lock in the same frame (the dispatch loops): the
        # owner check would only re-read the thread id
        self._count -= 1
        if self._count == 0:
            self._owner = 0
            if self._locked:
                self._locked = False
                PyThread_release_lock(self._lk)

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the lock (blocking only; ``timeout`` is not supported)."""
        if not blocking:
            if self._count:
                if self._owner != PyThread_get_thread_ident():
                    return False
            elif self._waiting:
                return False
        self._acquire()
        return True

    def release(self):
        self._release()

    def __enter__(self):
        self._acquire()
        return True

    def __exit__(self, *exc):
        self._release()

    def _is_owned(self):
        return self._count > 0 and self._owner == PyThread_get_thread_ident()


# --- slot access ------------------------------------------------------------------------

cdef object _TRUE_OBJ = True
cdef PyObject* _PY_TRUE = <PyObject*>_TRUE_OBJ  # (a bare `True` would be the C integer 1)


cdef inline PyObject* _slot(object obj, Py_ssize_t off) noexcept:
    # borrowed, may be NULL when the slot was never set
    return (<PyObject**>((<char*><PyObject*>obj) + off))[0]


cdef inline void _clear_slot(object obj, Py_ssize_t off) noexcept:
    cdef PyObject** p = <PyObject**>((<char*><PyObject*>obj) + off)
    cdef PyObject* old = p[0]
    p[0] = NULL
    Py_XDECREF(old)


cdef inline void _set_slot(object obj, Py_ssize_t off, object value) noexcept:
    cdef PyObject** p = <PyObject**>((<char*><PyObject*>obj) + off)
    cdef PyObject* old = p[0]
    Py_INCREF(value)
    p[0] = <PyObject*>value
    Py_XDECREF(old)


cdef Py_ssize_t _offset(type cls, str name) except -1:
    descr = None
    for klass in cls.__mro__:
        descr = klass.__dict__.get(name)
        if descr is not None:
            break
    if type(descr).__name__ != "member_descriptor":
        raise TypeError(f"{cls.__name__}.{name} is not a __slots__ member")
    return (<PyMemberDescrObject*><PyObject*>descr).d_member.offset


# Offsets of the hook API's __slots__ members, filled by configure_hooks(). Reading and writing
# contexts, hooks and managers by offset (and reusing spare contexts) is what makes a hooked
# access cheap: the same dispatch by attribute name measured 3.4x slower on a write with a
# write_before and a write_after hook, 2.7x on a read with a read hook, and 1.3-1.6x on unhooked
# accesses once a global registry exists (caching each slot's descriptor instead: 2.2x). The
# check in _offset keeps a layout change from going unnoticed: a non-slot attribute is refused.
cdef Py_ssize_t _O_CTX_OPERATION, _O_CTX_REF, _O_CTX_TIME, _O_CTX_VALUE, _O_CTX_OLD
cdef Py_ssize_t _O_CTX_METADATA
cdef Py_ssize_t _O_CTX_TRANSFORMED, _O_CTX_CANCEL, _O_CTX_REASON, _O_CTX_INITMD
cdef Py_ssize_t _O_READ_VALUE, _O_INIT_VALUE
cdef Py_ssize_t _O_HOOK_CALLBACK, _O_HOOK_ENABLED
cdef Py_ssize_t _O_MGR_MASK, _O_MGR_LOCK
cdef Py_ssize_t _O_CHAIN[5]
cdef type _ReadCtx = None, _WriteCtx = None, _MutableCtx = None, _RestoreCtx = None, _InitCtx = None
cdef object _handle_error = None
cdef object _cancel_error = None
cdef object _global_mgr = None
cdef type _MgrType = None
cdef bint _hooks_ready = False


def configure_hooks(hooks):
    """Learn the slot layout of brainstate._hooks' classes (contexts, Hook, HookManager)."""
    global _O_CTX_OPERATION, _O_CTX_REF, _O_CTX_TIME, _O_CTX_VALUE, _O_CTX_OLD
    global _O_CTX_TRANSFORMED, _O_CTX_CANCEL, _O_CTX_REASON, _O_CTX_INITMD
    global _O_READ_VALUE, _O_INIT_VALUE, _O_CTX_METADATA
    global _O_HOOK_CALLBACK, _O_HOOK_ENABLED, _O_MGR_MASK, _O_MGR_LOCK
    global _ReadCtx, _WriteCtx, _MutableCtx, _RestoreCtx, _InitCtx
    global _handle_error, _cancel_error, _hooks_ready, _MgrType
    _ReadCtx, _WriteCtx = hooks.ReadHookContext, hooks.WriteHookContext
    _MutableCtx, _RestoreCtx = hooks.MutableWriteHookContext, hooks.RestoreHookContext
    _InitCtx = hooks.InitHookContext
    # Every context class must share the base offsets (they inherit the slots).
    for cls in (_ReadCtx, _WriteCtx, _MutableCtx, _RestoreCtx, _InitCtx):
        if _offset(cls, "operation") != _offset(hooks.HookContext, "operation"):
            raise TypeError("context classes do not share their base slots")
    _O_CTX_OPERATION = _offset(hooks.HookContext, "operation")
    _O_CTX_REF = _offset(hooks.HookContext, "state_ref")
    _O_CTX_TIME = _offset(hooks.HookContext, "timestamp")
    _O_CTX_METADATA = _offset(hooks.HookContext, "metadata")
    for k in range(5):  # spare contexts of the previous layout
        Py_XDECREF(_spare[k])
        _spare[k] = NULL
    _O_CTX_VALUE = _offset(_WriteCtx, "value")
    _O_READ_VALUE = _offset(_ReadCtx, "value")
    _O_INIT_VALUE = _offset(_InitCtx, "value")
    for cls in (_MutableCtx, _RestoreCtx):
        if _offset(cls, "value") != _O_CTX_VALUE or _offset(cls, "old_value") != \
                _offset(_WriteCtx, "old_value"):
            raise TypeError("write context classes do not share their slots")
    _O_CTX_OLD = _offset(_WriteCtx, "old_value")
    _O_CTX_TRANSFORMED = _offset(_MutableCtx, "transformed_value")
    _O_CTX_CANCEL = _offset(_MutableCtx, "cancel")
    _O_CTX_REASON = _offset(_MutableCtx, "cancel_reason")
    _O_CTX_INITMD = _offset(_InitCtx, "init_metadata")
    _O_HOOK_CALLBACK = _offset(hooks.Hook, "callback")
    _O_HOOK_ENABLED = _offset(hooks.Hook, "_enabled")
    _O_MGR_MASK = _offset(hooks.HookManager, "mask")
    _O_MGR_LOCK = _offset(hooks.HookManager, "_lock")
    for i, name in enumerate(("_read_chain", "_write_before_chain", "_write_after_chain",
                              "_restore_chain", "_init_chain")):
        _O_CHAIN[i] = _offset(hooks.HookManager, name)
    _MgrType = hooks.HookManager
    _handle_error = hooks._handle_error
    _cancel_error = hooks._cancel_error
    _hooks_ready = True


def set_global_hook_registry(registry):
    """Tell the core which manager holds the global hooks (None: no registry)."""
    global _global_mgr
    if registry is not None and not (_hooks_ready and isinstance(registry, _MgrType)):
        raise TypeError("the global hook registry must be a HookManager of the configured "
                        f"hooks module, got {type(registry).__name__}")
    _global_mgr = registry  # checked once here: _hook_bits reads its mask unchecked


cdef extern from *:
    """
    /* A hook mask (a small non-negative int) without PyLong_AsLong's generic path, which
       cost ~3 ns per read, four reads per hooked write. */
    static inline long bs_small_long(PyObject* o) {
        if (PyLong_CheckExact(o)) {
    #if PY_VERSION_HEX >= 0x030C0000
            if (PyUnstable_Long_IsCompact((PyLongObject*)o))
                return (long)PyUnstable_Long_CompactValue((PyLongObject*)o);
    #else
            Py_ssize_t n = Py_SIZE(o);
            if (n == 0) return 0;
            if (n == 1) return (long)((PyLongObject*)o)->ob_digit[0];
    #endif
        }
        return PyLong_AsLong(o);
    }
    """
    long bs_small_long(PyObject* o) except? -1


cdef inline long _mask(object mgr) except -1:
    cdef PyObject* m
    if type(mgr) is not _MgrType and not isinstance(mgr, _MgrType):
        raise TypeError(f"a state's hook manager must be a HookManager, got {type(mgr).__name__}")
    m = _slot(mgr, _O_MGR_MASK)
    return 0 if m == NULL else bs_small_long(m)


# The bits of a manager's mask, one per hook type: the numbers of brainstate/_core_constants.py
# (tests/test_core_constants.py compares them).
cdef enum:
    _H_READ = 1
    _H_WRITE_BEFORE = 2
    _H_WRITE_AFTER = 4
    _H_RESTORE = 8
    _H_INIT = 16

_HOOK_BITS = (_H_READ, _H_WRITE_BEFORE, _H_WRITE_AFTER, _H_RESTORE, _H_INIT)


# Hook bits of one state: the global manager's mask in the low byte, the state's own
# manager's mask in the next (_STATE_SHIFT). Read once per dispatch round and passed down, so a
# hooked write reads each mask twice (before and after its write_before hooks) instead of
# once per check (~3.5 ns each: a type check and PyLong_AsLong).
cdef enum:
    _STATE_SHIFT = 8


cdef inline long _hook_bits(StateCore state) except -1:
    """The hook points with hooks for ``state``, packed per manager (see _STATE_SHIFT)."""
    cdef long bits = 0
    cdef PyObject* gm
    g = _global_mgr
    if g is not None:
        gm = _slot(g, _O_MGR_MASK)
        if gm != NULL:
            bits = bs_small_long(gm)
    m = state._hooks_manager
    if m is not None:
        bits |= _mask(m) << _STATE_SHIFT
    return bits


cdef inline bint _any_bit(long bits, long bit) noexcept:
    return (bits & (bit | (bit << _STATE_SHIFT))) != 0


cdef extern from "Python.h":
    ctypedef struct PyFloatObject:
        double ob_fval
    bint PyFloat_CheckExact(PyObject* o)
    Py_ssize_t _refcnt "Py_REFCNT"(PyObject* o)  # (the macro: also right where the count is split)


cdef inline int _stamp(object ctx) except -1:
    """Set ``ctx.timestamp`` to ``time.time()`` (the same clock: CLOCK_REALTIME).

    A reused context's previous float is overwritten in place when only the context holds it
    (nothing can observe the change): saves a float allocation and free per dispatch.
    """
    cdef timespec ts
    timespec_get(&ts, TIME_UTC)
    cdef double t = ts.tv_sec + ts.tv_nsec * 1e-9
    cdef PyObject* old = _slot(ctx, _O_CTX_TIME)
    if old != NULL and _refcnt(old) == 1 and PyFloat_CheckExact(old):
        (<PyFloatObject*>old).ob_fval = t
    else:
        _set_slot(ctx, _O_CTX_TIME, t)
    return 0


cdef inline FastRLock _lock_of(object mgr):
    lock = <object>_slot(mgr, _O_MGR_LOCK)
    if type(lock) is not FastRLock:
        raise TypeError("hook manager lock is not a FastRLock (manager built before the "
                        "compiled core was configured?)")
    return <FastRLock>lock


# One spare context per class, reused when nothing but the cache refers to it (no hook kept
# it): a context allocation is a GC allocation, and the collections it triggers were ~15 % of
# a hooked write (perf). A hook that keeps its context makes the next dispatch allocate anew.
cdef PyObject* _spare[5]  # owned references, NULL: none yet


cdef enum:
    _K_READ = 0
    _K_MUTABLE = 1
    _K_WRITE = 2
    _K_RESTORE = 3
    _K_INIT = 4


cdef inline object _fresh(int k, type cls):
    cdef PyObject* spare = _spare[k]
    if spare != NULL and _refcnt(spare) == 1:  # only the cache refers to it
        _clear_slot(<object>spare, _O_CTX_METADATA)
        return <object>spare
    ctx = PyType_GenericAlloc(cls, 0)
    Py_INCREF(ctx)
    _spare[k] = <PyObject*>ctx
    Py_XDECREF(spare)
    return ctx


cdef inline void _set_slot_if_new(object obj, Py_ssize_t off, object value) noexcept:
    # a reused context often holds the same object already (operation string, state
    # reference, None/False defaults, a value written again): no reference count traffic
    if _slot(obj, off) != <PyObject*>value:
        _set_slot(obj, off, value)


cdef inline object _new_ctx(int k, type cls, str op, object ref, object value):
    ctx = _fresh(k, cls)
    _set_slot_if_new(ctx, _O_CTX_OPERATION, op)
    _set_slot_if_new(ctx, _O_CTX_REF, ref)
    _stamp(ctx)
    if k == _K_READ:
        _set_slot_if_new(ctx, _O_READ_VALUE, value)
    elif k == _K_INIT:
        _set_slot_if_new(ctx, _O_INIT_VALUE, value)
    else:
        _set_slot_if_new(ctx, _O_CTX_VALUE, value)
    return ctx


cdef int _raise_pending() except -1:
    return -1  # the exception the caller left set propagates from here


cdef int _hook_failed(object mgr, object hook, object ctx) except -1:
    # the callback raised (the exception is set): hand it to the error policy
    try:
        _raise_pending()
    except Exception as exc:
        _handle_error(mgr, hook, exc, ctx)
    return 1


cdef inline int _call_hook(object mgr, object hook, object ctx) except -1:
    """Call ``hook``'s callback with ``ctx``: 0 = returned, 1 = raised and the error policy
    swallowed it (a policy that re-raises propagates).

    A raw vectorcall with the error handling out of line: a Cython ``try`` saves and restores
    the thread's exception state on entry, and its generic call checks for bound methods
    first (~120 instructions per hook under callgrind).
    """
    cdef PyObject* args[2]
    args[0] = NULL
    args[1] = <PyObject*>ctx
    # held for the call: the callback may replace ``hook.callback``, dropping the last reference
    cdef object cb = <object>_slot(hook, _O_HOOK_CALLBACK)
    cdef PyObject* r = PyObject_Vectorcall(<PyObject*>cb, &args[1],
                                           1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
    if r == NULL:
        return _hook_failed(mgr, hook, ctx)
    Py_XDECREF(r)
    return 0


cdef int _run_observe(object mgr, Py_ssize_t idx, int k, type cls, str op, object ref,
                      object new, object old, object init_md) except -1:
    # mirrors _core_py._hooks._run_read / _run_write_after / _run_restore / _run_init
    cdef FastRLock lock = _lock_of(mgr)
    cdef tuple chain
    lock._acquire()
    try:
        chain = <tuple>(<object>_slot(mgr, _O_CHAIN[idx]))
        if len(chain):
            ctx = _new_ctx(k, cls, op, ref, new)
            if k == _K_INIT:
                _set_slot(ctx, _O_CTX_INITMD, {} if init_md is None else init_md)
            elif k != _K_READ:
                _set_slot_if_new(ctx, _O_CTX_OLD, old)
            for hook in chain:  # mirrors _core_py._hooks._run_shared
                if _slot(hook, _O_HOOK_ENABLED) == _PY_TRUE:
                    _call_hook(mgr, hook, ctx)
    finally:
        lock._release_owned()
    return 0


cdef object _run_write_before(object mgr, object new, object old, object ref):
    # mirrors _core_py._hooks._run_write_before
    cdef FastRLock lock = _lock_of(mgr)
    cdef object result = new
    cdef object transformed = None
    cdef PyObject* p
    lock._acquire()
    try:
        for hook in <tuple>(<object>_slot(mgr, _O_CHAIN[1])):
            if _slot(hook, _O_HOOK_ENABLED) != _PY_TRUE:
                continue
            ctx = _new_ctx(_K_MUTABLE, _MutableCtx, "write_before", ref, new)
            _set_slot_if_new(ctx, _O_CTX_OLD, old)
            _set_slot_if_new(ctx, _O_CTX_TRANSFORMED, transformed)
            _set_slot_if_new(ctx, _O_CTX_CANCEL, False)
            _set_slot_if_new(ctx, _O_CTX_REASON, None)
            if _call_hook(mgr, hook, ctx):
                continue
            p = _slot(ctx, _O_CTX_CANCEL)
            if p != NULL and <object>p:
                raise _cancel_error(hook, ctx)
            p = _slot(ctx, _O_CTX_TRANSFORMED)
            if p != NULL and <object>p is not None:
                result = transformed = <object>p
        return result
    finally:
        lock._release_owned()


# --- the entry points the state core calls (only while _n_hooks > 0) ---------------------

cdef inline object _ref_of(StateCore state):
    # kept on the state: a weak reference to itself is no cycle, and re-making it per
    # dispatch cost ~60 ns per hooked write (bench_hooks.py)
    if state._wref is None:
        state._wref = PyWeakref_NewRef(state, None)
    return state._wref


cdef int _dispatch_observe(StateCore state, long bits, long bit, Py_ssize_t idx, int k,
                           type cls, str op, object new, object old, object init_md) except -1:
    # ``bits``: _hook_bits(state), read by the caller; global hooks run before the state's
    # (mirrors _core_py._hooks.dispatch_read and its siblings)
    cdef object ref = None
    if bits & bit:
        ref = _ref_of(state)
        _run_observe(_global_mgr, idx, k, cls, op, ref, new, old, init_md)
        bits = _hook_bits(state)  # the global hooks may have changed this state's hooks
    if bits & (bit << _STATE_SHIFT):
        m = state._hooks_manager
        if m is not None:
            _run_observe(m, idx, k, cls, op, _ref_of(state) if ref is None else ref, new, old,
                         init_md)
    return 0


cdef inline int _dispatch_read(StateCore state, object value) except -1:
    # the bits are tested here, inline: a read while hooks exist only on other states or
    # for other hook points must not pay a call
    cdef long bits = _hook_bits(state)
    if _any_bit(bits, _H_READ):
        _dispatch_observe(state, bits, _H_READ, 0, _K_READ, _ReadCtx, "read", value, None, None)
    return 0


cdef object _dispatch_write_before(StateCore state, long bits, object new, object old):
    # mirrors _core_py._hooks.dispatch_write_before
    cdef object ref = None
    if bits & _H_WRITE_BEFORE:
        ref = _ref_of(state)
        new = _run_write_before(_global_mgr, new, old, ref)
        bits = _hook_bits(state)  # the global hooks may have changed this state's hooks
    if bits & (_H_WRITE_BEFORE << _STATE_SHIFT):
        m = state._hooks_manager
        if m is not None:
            new = _run_write_before(m, new, old, _ref_of(state) if ref is None else ref)
    return new


cdef inline int _dispatch_write_after(StateCore state, long bits, object new,
                                      object old) except -1:
    return _dispatch_observe(state, bits, _H_WRITE_AFTER, 2, _K_WRITE, _WriteCtx, "write_after",
                             new, old, None)


cdef inline int _dispatch_restore(StateCore state, object new, object old) except -1:
    return _dispatch_observe(state, _hook_bits(state), _H_RESTORE, 3, _K_RESTORE, _RestoreCtx,
                             "restore", new, old, None)


cdef inline int _dispatch_init(StateCore state, object value, object init_md) except -1:
    return _dispatch_observe(state, _hook_bits(state), _H_INIT, 4, _K_INIT, _InitCtx, "init",
                             value, None, init_md)


def _hook_layout_debug(mgr):
    """(mask, chain lengths, ready) as the compiled dispatch sees ``mgr`` (for tests); a chain
    slot never set (a manager whose ``__init__`` did not run) counts as empty."""
    cdef PyObject* chain
    mask = _mask(mgr)
    lengths = []
    for i in range(5):
        chain = _slot(mgr, _O_CHAIN[i])
        lengths.append(0 if chain == NULL else len(<tuple>(<object>chain)))
    return mask, tuple(lengths), _hooks_ready
