"""Trace bookkeeping around the core: ``StateTraceStack`` and ``StateJaxTracer``.

The recording itself (first-access order, written flags, originals, ``new_arg`` substitution)
is the core's ``TraceFrame``; the views, write-back helpers and LIFO-checked context manager
are here.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from brainstate._impl import core as _core
from brainstate._jax_internals import jax_core

__all__ = ["StateTraceStack", "StateJaxTracer"]


class StateJaxTracer:
    """The JAX trace a state was created under; valid while that trace is the current one.

    Identities compare equal iff they captured the same JAX trace. The hash is constant
    (JAX's trace token is not hashable), so they can still live in sets.
    """

    __module__ = "brainstate.util"
    __slots__ = ("_trace_ref",)

    def __init__(self, trace_ref: Any = None) -> None:
        if trace_ref is None:
            trace_ref = jax_core.trace_ctx.trace._weakref
        self._trace_ref = trace_ref

    @property
    def jax_trace(self) -> Any:
        """The JAX trace object (``None`` once it has been collected)."""
        return self._trace_ref() if self._trace_ref is not None else None

    def is_valid(self) -> bool:
        """Whether the captured trace is JAX's current trace."""
        return self._trace_ref is jax_core.trace_ctx.trace._weakref

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StateJaxTracer) and other._trace_ref is self._trace_ref

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"StateJaxTracer({self.jax_trace!r})"


def _abstract(x: Any) -> Any:
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is not None and dtype is not None:
        return jax.ShapeDtypeStruct(tuple(shape), dtype)
    return x


class StateTraceStack(_core.TraceFrame):
    """Records which states a block of code reads and writes, in first-access order.

    A transform enters one around the function it traces: each state met for the first time
    becomes an input (``new_arg`` swaps its value for a traced one) and written states become
    outputs. Also a debugging tool:

    >>> import jax.numpy as jnp, brainstate
    >>> a, b = brainstate.State(jnp.zeros(2)), brainstate.State(jnp.ones(2))
    >>> with brainstate.StateTraceStack() as trace:
    ...     b.value = a.value + 1
    >>> [s is b for s in trace.get_write_states()]
    [True]

    Stacks nest and must be exited in LIFO order; a state created inside a stack is not
    recorded by it (only by stacks entered after the state).
    """

    __module__ = "brainstate"

    def __init__(self, new_arg: Callable | None = None, name: str | None = None,
                 check_read: Callable | None = None) -> None:
        super().__init__(new_arg, check_read)
        self.name = name
        self._level_str = "?"

    # -- context manager --
    def __enter__(self) -> "StateTraceStack":
        _core.push_frame(self)
        self._level_str = str(_core.stack_level())
        return self

    def __exit__(self, *exc: Any) -> None:
        if not _core.pop_frame(self):
            raise RuntimeError(
                f"{self} exited out of order: trace stacks must be exited in LIFO order "
                "(the innermost first). The stack was left unchanged."
            )

    def __str__(self) -> str:
        return f"StateTraceStack({self._level_str})"

    __repr__ = __str__

    # -- configuration --
    def set_new_arg(self, new_arg: Callable) -> None:
        """Install the callback turning a state's value into a traced input."""
        self._new_arg = new_arg

    def new_arg(self, state: Any) -> None:
        """Apply ``new_arg`` to ``state`` (swap its value for the callback's result)."""
        if self._new_arg is not None:
            state._set_view(self._new_arg(state))

    @property
    def original_state_values(self) -> tuple:
        """The value of each recorded state at its first access."""
        return tuple(self._original_state_values)

    # -- views --
    def get_state_values(self, separate: bool = False, replace: bool = False) -> Any:
        """Current values of all states (``separate``: ``(writes, reads)``)."""
        if not separate:
            return [st.value for st in self.states]
        writes: list = []
        reads: list = []
        for st, w in zip(self.states, self.been_writen):
            if w:
                writes.append(st.value)
                if replace:
                    reads.append(None)
            else:
                reads.append(st.value)
                if replace:
                    writes.append(None)
        return tuple(writes), tuple(reads)

    def get_read_states(self, replace_writen: bool = False) -> tuple:
        """States only read (``None`` in written slots when ``replace_writen``)."""
        if replace_writen:
            return tuple(None if w else st for st, w in zip(self.states, self.been_writen))
        return tuple(st for st, w in zip(self.states, self.been_writen) if not w)

    def get_write_states(self, replace_read: bool = False) -> tuple:
        """States written (``None`` in read-only slots when ``replace_read``)."""
        if replace_read:
            return tuple(st if w else None for st, w in zip(self.states, self.been_writen))
        return tuple(st for st, w in zip(self.states, self.been_writen) if w)

    def get_read_state_values(self, replace_writen: bool = False) -> tuple:
        return tuple(None if st is None else st.value
                     for st in self.get_read_states(replace_writen))

    def get_write_state_values(self, replace_read: bool = False) -> tuple:
        return tuple(None if st is None else st.value
                     for st in self.get_write_states(replace_read))

    def state_subset(self, state_type: type) -> list:
        """The recorded states that are instances of ``state_type``."""
        return [st for st in self.states if isinstance(st, state_type)]

    # -- write-back --
    def recovery_original_values(self) -> None:
        """Restore every recorded state to its value at first access."""
        if self._originals_released:
            raise RuntimeError(
                "Internal error: the original values of this StateTraceStack were released."
            )
        for st, v in zip(self.states, self._original_state_values):
            st.restore_value(v)

    def release_original_values(self) -> None:
        """Replace the snapshots by abstract values (no tracer kept alive by a cache)."""
        self._original_state_values = [jax.tree.map(_abstract, v)
                                       for v in self._original_state_values]
        self._new_arg = None
        self._originals_released = True

    def assign_state_vals(self, state_vals: Any) -> None:
        """Write back one value per state: written ones via ``.value =``, others restored."""
        if len(state_vals) != len(self.states):
            raise ValueError(
                f"The number of state values ({len(state_vals)}) does not match the number "
                f"of recorded states ({len(self.states)})."
            )
        for st, w, v in zip(self.states, self.been_writen, state_vals):
            if w:
                st.value = v
            else:
                st.restore_value(v)

    def assign_state_vals_v2(self, read_state_vals: Any, write_state_vals: Any) -> None:
        """Write back: written states get ``write_state_vals[i]``, read-only ones are restored."""
        n = len(self.states)
        if len(read_state_vals) != n or len(write_state_vals) != n:
            raise ValueError(
                f"Expected {n} read and {n} write values, got {len(read_state_vals)} and "
                f"{len(write_state_vals)}."
            )
        for st, w, rv, wv in zip(self.states, self.been_writen, read_state_vals,
                                 write_state_vals):
            if w:
                st.value = wv
            else:
                st.restore_value(rv)

    # -- combination --
    def merge(self, *traces: "StateTraceStack") -> "StateTraceStack":
        """Union of the recorded states in first-seen order; written flags OR-ed."""
        for trace in traces:
            for st, w, orig in zip(trace.states, trace.been_writen,
                                   trace._original_state_values):
                idx = self._id2index.get(st)
                if idx is None:
                    self._id2index[st] = len(self.states)
                    self.states.append(st)
                    self.been_writen.append(w)
                    self._original_state_values.append(orig)
                elif w:
                    self.been_writen[idx] = True
            if trace._originals_released:
                self._originals_released = True
        return self

    def __add__(self, other: "StateTraceStack") -> "StateTraceStack":
        return StateTraceStack().merge(self, other)
