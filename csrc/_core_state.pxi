# Trace frames, holds, the state core and `state.value = v` (included by _core.pyx).
# Twin: brainstate/_core_py/_state.py.

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

    # mirrors _core_py._state.TraceFrame.read_its_value (returns the state's index)
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

    # mirrors _core_py._state.TraceFrame.write_its_value
    cdef int _write(self, object st) except -1:
        cdef Py_ssize_t idx = self._read(st)
        self.been_writen[idx] = True
        return 0

    def write_its_value(self, st):
        """Record a write of ``st`` (registered as read first if unseen)."""
        _require_state(st)
        self._write(st)


# mirrors _core_py._context._require(st, _state_types, "st")
cdef int _require_state(object st) except -1:
    if not _is_state(st):
        raise TypeError(f"Argument 'st' has incorrect type (expected StateCore, got "
                        f"{type(st).__name__})")
    return 0


# mirrors _core_py._state._record_read
cdef int _record_read(StateCore st) except -1:
    cdef list stack = _get_ctx().state_stack
    cdef Py_ssize_t i
    for i in range(st._level, len(stack)):
        (<TraceFrame>stack[i])._read(st)
    return 0


# mirrors _core_py._state._record_write
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
# mirrors _core_py._state._Hold

cdef class _Hold:
    cdef ThreadContext owner
    cdef object thread  # the owner's thread name, for messages
    cdef object value   # what other threads see (_INVALID: created inside the trace, none)
    cdef bint dirty     # another thread wrote ``value`` during the hold


cdef inline bint _foreign(StateCore st):
    """``st`` is held by a trace of another thread (the caller tested ``_holder`` first)."""
    return (<_Hold>st._holder).owner is not _get_ctx()


# mirrors _core_py._state._hold_begin
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


# mirrors _core_py._state._hold_end
cdef inline object _hold_end(StateCore st, object v, bint keep_foreign_write):
    """``st`` goes back to a concrete value ``v`` in this thread: release the hold. A restore
    (``keep_foreign_write``) keeps instead what another thread wrote during the hold."""
    cdef _Hold h = <_Hold>st._holder
    st._holder = None
    if keep_foreign_write and h.dirty:
        return h.value
    return v


# mirrors _core_py._state._held_error
cdef object _held_error(StateCore st, str op):
    cdef _Hold h = <_Hold>st._holder
    return _make_error("held", st, op, h.thread, threading.current_thread().name,
                       h.value is _INVALID)


# mirrors _core_py._state._foreign_value
cdef object _foreign_value(StateCore st, str op):
    """The value another thread sees (refused while that thread traces, or when none)."""
    cdef _Hold h = <_Hold>st._holder
    if h.value is _INVALID or (_n_frames and len(<list>_get_ctx().state_stack)):
        raise _held_error(st, op)
    return h.value


# mirrors _core_py._state._foreign_store
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

# The state flags of brainstate/_core_constants.py (tests/test_core_constants.py compares them).
cdef enum:
    _VIEW = 1    # value installed by a transform's view path (new_arg / _set_view)
    _TRACER = 2  # held value contains a JAX tracer

_STATE_FLAGS = {"view": _VIEW, "tracer": _TRACER}


# mirrors _core_py._state._strict_guard
cdef int _strict_guard(StateCore st) except -1:
    if (<list>_get_ctx().jax_tracer_check)[-1] and st._trace_ref is not _current_trace_ref():
        raise _make_error("strict_attr", st)
    return 0


# mirrors _core_py._state._reserved_type_message
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
    cdef public object _hooks_manager
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
        self._hooks_manager = None
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

    # mirrors the value/signature part of _core_py._state.StateCore._init_from
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

    # mirrors _core_py._state.StateCore._init_from's value/signature part, for a value whose
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
    def _source_info(self):
        return _state_site(self)

    @_source_info.setter
    def _source_info(self, site):
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

    # mirrors _core_py._state.StateCore._write
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

    # mirrors _core_py._state.StateCore._check
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

    # mirrors _core_py._state.StateCore._mismatch
    cdef object _mismatch(self, int op, object v):
        cdef bint t
        if self._flags & (_VIEW | _TRACER) and self._value is not _INVALID:
            expected = _analyse(self._value, &t)
        else:
            expected = self._signature
        return _make_error("signature", self, "write" if op == 0 else "restore", expected, v)

    # mirrors _core_py._state.StateCore._store
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

    # mirrors _core_py._state.StateCore._write_foreign
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


# mirrors the _sig attribute of _core_py._state.StateCore (the single form's object is built once)
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

