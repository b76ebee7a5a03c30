# The per-call paths of transforms: gather and scatter (included by _core.pyx).
# Twin: brainstate/_core_py/_calls.py.

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


# mirrors _core_py._state._record_read / _record_write for a hosted state (its level is an
# attribute)
cdef int _record_hosted(object st, bint write) except -1:
    cdef list stack = _get_ctx().state_stack
    cdef Py_ssize_t i
    for i in range(<Py_ssize_t>st._level, len(stack)):
        if write:
            (<TraceFrame>stack[i])._write(st)
        else:
            (<TraceFrame>stack[i])._read(st)
    return 0


# the tracer guard of _core_py._calls.scatter for one state; returns JAX's current trace
# (``current`` is _INVALID until looked up: at most once per scatter)
cdef object _scatter_guard(object st, object trace_ref, object v, object current):
    cdef bint has_tracer
    if current is _INVALID:
        current = _current_trace_ref()
    if trace_ref is not current:
        _analyse(v, &has_tracer)
        if has_tracer:
            raise _make_error("tracer_write", st)
    return current


# mirrors one state of _core_py._calls.scatter, for a hosted state (attribute access throughout)
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


# mirrors the held-state branch of _core_py._calls.scatter
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
    # mirrors _core_py._calls.scatter
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

