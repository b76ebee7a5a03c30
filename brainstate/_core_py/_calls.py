"""Mirrors csrc/_core_calls.pxi: the per-call paths of transforms (``gather`` and ``scatter``)."""

from __future__ import annotations

from typing import Any

from brainstate._core_py import _context, _hooks
from brainstate._core_py._context import INVALID, _ctx, _current_trace_ref, _require
from brainstate._core_py._signature import _analyse
from brainstate._core_py._state import (
    _foreign_store,
    _foreign_value,
    _held_elsewhere,
    _record_read,
    _record_write,
)

# --- per-call paths of transforms -----------------------------------------------------------


def gather(states: Any) -> list:
    """Current values of ``states`` in order: recorded in enclosing frames, no read hooks."""
    out = []
    state_types = _context._state_types
    for st in states:
        _require(st, state_types, "st")
        h = _held_elsewhere(st)
        if h is not None:
            v = _foreign_value(st, h, "read")
        else:
            if _context._n_frames:
                _record_read(st)
            v = st._value
        if v is INVALID:
            raise _context._make_error("poisoned", st, "read")
        out.append(v)
    return out


def scatter(states: Any, values: Any, written: Any = None) -> None:
    """Store a compiled call's results: written states without re-checking their signature.

    ``written`` holds one flag per state (``None``: every state was written). Signatures were
    checked when the computation was traced, and its output avals are fixed, so only
    recording in enclosing frames and observer hooks remain per call. The tracer guard stays:
    outside any brainstate trace, a state from another JAX trace must not receive tracers (a
    brainstate transform called inside a raw ``jax.jit``).
    """
    states, values = list(states), list(values)
    n = len(states)
    if len(values) != n or (written is not None and len(written) != n):
        raise ValueError(f"scatter: {n} states, {len(values)} values"
                         + ("" if written is None else f", {len(written)} written flags"))
    guard = not (_context._n_frames and _ctx.state_stack)
    current = INVALID  # JAX's current trace, looked up only for a non-array value
    sa = object.__setattr__
    # (the counters are read per state: a hook or a trace's new_arg may change them)
    state_types, array_type = _context._state_types, _context._array_type
    for i in range(n):
        if written is not None and not written[i]:
            continue
        st, v = states[i], values[i]
        _require(st, state_types, "st")
        h = _held_elsewhere(st)
        if h is not None:
            old = _foreign_value(st, h, "write")
            if type(v) is not array_type and _analyse(v)[1]:
                raise _context._make_error("tracer_write", st)
            _foreign_store(st, v)
            sa(st, "_been_writen", True)
            if _context._n_hooks:
                _hooks.dispatch_write_after(st, v, old)
            continue
        if guard and type(v) is not array_type:
            if current is INVALID:
                current = _current_trace_ref()
            if st._trace_ref is not current and _analyse(v)[1]:
                raise _context._make_error("tracer_write", st)
        old = st._value
        if _context._n_frames:
            _record_write(st)
        sa(st, "_value", v)  # flags kept: a traced call returns what it was given
        sa(st, "_been_writen", True)
        if _context._n_hooks:
            _hooks.dispatch_write_after(st, v, old)
