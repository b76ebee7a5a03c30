"""Mirrors csrc/_core_state.pxi: trace frames, the holds of one thread's trace, and the state
core (``StateCore``: the whole read/write order of ``.value``)."""

from __future__ import annotations

import threading
from typing import Any, Callable

from brainstate._core_constants import FLAG_TRACER, FLAG_VIEW
from brainstate._core_py import _context, _hooks
from brainstate._core_py._context import (
    INVALID,
    _ctx,
    _current_trace_ref,
    _rebinding,
    _require,
    capture_site,
    stack_level,
)
from brainstate._core_py._signature import Signature, _analyse, _matches, _same_structure

# --- trace frames ---------------------------------------------------------------------------


class TraceFrame:
    """Recording core of ``StateTraceStack``: which states were touched, in first-access order."""

    def __init__(self, new_arg: Callable | None = None, check_read: Callable | None = None):
        self.states: list = []
        self.been_writen: list = []
        self._id2index: dict = {}
        self._original_state_values: list = []
        self._originals_released = False
        self._new_arg = new_arg
        self._check_read = check_read

    def read_its_value(self, st: "StateCore") -> None:
        """Record a read of ``st`` (first sight: snapshot it and apply ``new_arg``)."""
        _require(st, _context._state_types, "st")
        if self._check_read is not None:
            self._check_read(st)
        if st in self._id2index:  # keyed by the state itself (identity hash and equality)
            return
        if _held_elsewhere(st) is not None:
            raise _held_error(st, "trace")
        self._id2index[st] = len(self.states)
        self.states.append(st)
        self.been_writen.append(False)
        self._original_state_values.append(st._value)
        if self._new_arg is not None:
            st._set_view(self._new_arg(st))

    def write_its_value(self, st: "StateCore") -> None:
        """Record a write of ``st`` (registered as read first if unseen)."""
        _require(st, _context._state_types, "st")
        idx = self._id2index.get(st)
        if idx is None:
            self.read_its_value(st)
            idx = self._id2index[st]
        self.been_writen[idx] = True


def _record_read(st: "StateCore") -> None:
    stack = _ctx.state_stack
    for i in range(st._level, len(stack)):
        stack[i].read_its_value(st)


def _record_write(st: "StateCore") -> None:
    stack = _ctx.state_stack
    for i in range(st._level, len(stack)):
        stack[i].write_its_value(st)


# --- states held by one thread's trace ------------------------------------------------------
# A trace puts its tracers (or a transform's per-lane views) into the very state objects it
# touches, for as long as it runs. Meanwhile the state is *held* by the tracing thread: other
# threads see the value it had before the trace, and what they write is kept in the hold and
# becomes the state's value when the trace rolls back (docs/ARCHITECTURE.md, "Threads and
# traces"). A thread that is tracing itself cannot use a state another thread's trace holds.
# The compiled core makes each transition atomic by running it without Python code in between;
# here a lock does.

_hold_lock = threading.Lock()
_get_ident = threading.get_ident


class _Hold:
    __slots__ = ("owner", "thread", "value", "dirty")

    def __init__(self, before: Any, concrete: bool) -> None:
        self.owner = _get_ident()
        self.thread = threading.current_thread().name  # the owner's name, for messages
        self.value = before if concrete else INVALID  # what other threads see (INVALID: none)
        self.dirty = False  # another thread wrote ``value`` during the hold


def _held_elsewhere(st: Any) -> "_Hold | None":
    """The hold of another thread's trace on ``st``, else None."""
    h = getattr(st, "_holder", None)  # (hosted states have none)
    if h is not None and h.owner != _get_ident():
        return h
    return None


def _hold_begin(st: "StateCore", before: Any, concrete: bool) -> None:
    """A trace-dependent value is going into ``st`` in this thread: hold it, remembering
    ``before`` when it was ``concrete`` (no-op when already held)."""
    if st._holder is None:
        object.__setattr__(st, "_holder", _Hold(before, concrete))


def _hold_end(st: "StateCore", v: Any, keep_foreign_write: bool, has_tracer: bool = False) -> Any:
    """``st`` goes back to a concrete value ``v`` in this thread: release the hold and store
    the value. A restore (``keep_foreign_write``) keeps instead what another thread wrote
    during the hold. Returns the value stored."""
    sa = object.__setattr__
    with _hold_lock:
        h = st._holder
        sa(st, "_holder", None)
        if keep_foreign_write and h is not None and h.dirty:
            v = h.value
        sa(st, "_value", v)
    return v


def _held_error(st: Any, op: str) -> BaseException:
    h = st._holder
    return _context._make_error("held", st, op, h.thread, threading.current_thread().name,
                                h.value is INVALID)


def _foreign_value(st: Any, h: _Hold, op: str) -> Any:
    """The value another thread sees (refused while that thread traces, or when none)."""
    v = h.value
    if v is INVALID or (_context._n_frames and _ctx.state_stack):
        raise _context._make_error("held", st, op, h.thread, threading.current_thread().name,
                                   v is INVALID)
    return v


def _foreign_store(st: Any, v: Any) -> None:
    """Store ``v`` where another thread's trace will keep it (the hold, or the state itself
    when the hold ended meanwhile, e.g. while hooks ran)."""
    sa = object.__setattr__
    with _hold_lock:
        h = st._holder
        if h is None or h.owner == _get_ident():
            sa(st, "_value", v)  # (this thread is not tracing: no hold of its own can have begun)
            sa(st, "_flags", 0)
        else:
            h.value = v
            h.dirty = True


# --- the state core -------------------------------------------------------------------------

_VIEW = FLAG_VIEW  # value installed by a transform's view path (new_arg / _set_view)
_TRACER = FLAG_TRACER  # held value contains a JAX tracer


def _reserved_type_message(cls: type) -> str:
    return (f"{cls.__name__}(..., type=...): 'type' cannot be a state's metadata key: the "
            "state's snapshot (TreefyState, used by graph splits, transforms and checkpoints) "
            "keeps the state class under that name. Use another key, e.g. 'kind'.")


def _normalize_tag(tag: Any) -> Any:
    if tag is None:
        return None
    if isinstance(tag, str):
        return {tag}
    return set(tag)


_OPS = ("write", "restore")


def _strict_guard(st: "StateCore") -> None:
    # check_state_jax_tracer(): refuse any mutation from a JAX trace other than the state's own
    if _ctx.jax_tracer_check[-1] and st._trace_ref is not _current_trace_ref():
        raise _context._make_error("strict_attr", st)



class StateCore:
    """Base type of ``State``: typed slots and the whole read/write order of ``.value``."""

    __slots__ = (
        "_value",
        "_sig",
        "_trace_ref",
        "_level",
        "_been_writen",
        "_flags",
        "_hooks_manager",
        "_source_info",
        "_name",
        "tag",
        "_holder",
        "__dict__",
        "__weakref__",
    )
    # (the slots' types, for the type checker; __new__ fills every one)
    _value: Any
    _sig: Any
    _trace_ref: Any
    _level: int
    _been_writen: bool
    _flags: int
    _hooks_manager: Any
    _source_info: Any
    _name: Any
    tag: Any
    _holder: "_Hold | None"  # while a trace of one thread holds the value

    def __new__(cls, *args: Any, **kwargs: Any) -> "StateCore":
        self = object.__new__(cls)
        sa = object.__setattr__
        for slot in ("_value", "_sig", "_trace_ref", "_hooks_manager", "_source_info", "_name", "tag",
                     "_holder"):
            sa(self, slot, None)
        sa(self, "_level", 0)
        sa(self, "_flags", 0)
        sa(self, "_been_writen", False)
        return self

    def __init__(self, value: Any, name: Any = None, **metadata: Any) -> None:
        tag = _normalize_tag(metadata.pop("tag", None))
        trace_ref = _current_trace_ref()
        if isinstance(value, _context._metadata_type):
            metadata.update(value.metadata)
            value = value.raw_value
        if "type" in metadata:
            raise TypeError(_reserved_type_message(type(self)))
        if isinstance(value, _context._state_types):
            value = value.value
        sig, has_tracer = _analyse(value)
        sa = object.__setattr__
        sa(self, "_value", value)
        sa(self, "_sig", sig)
        sa(self, "_trace_ref", trace_ref)
        sa(self, "_level", stack_level())
        sa(self, "_been_writen", False)
        sa(self, "_flags", _TRACER if has_tracer else 0)
        if has_tracer:  # created inside a trace: no concrete value for other threads
            _hold_begin(self, INVALID, False)
        sa(self, "_hooks_manager", None)
        sa(self, "_source_info", capture_site())
        sa(self, "_name", name)
        sa(self, "tag", tag)
        if metadata:
            self.__dict__.update(metadata)
        if _context._n_catchers:
            for catcher in tuple(_ctx.new_state_catcher):
                catcher.append(self)
        if _context._n_hooks:
            init_md = {"_name": name, "tag": tag}
            init_md.update(metadata)
            _hooks.dispatch_init(self, value, init_md)

    def __hash__(self) -> int:
        # identity semantics: hash(state) == hash(id(state)), no __eq__
        return hash(id(self))

    # -- guarded attribute assignment (strict attribute guard: docs/concepts/trace-contexts.md) --
    def __setattr__(self, name: str, value: Any) -> None:
        if _context._n_tracer_check:
            _strict_guard(self)
        object.__setattr__(self, name, value)

    def _setattr_no_check(self, name: str, value: Any) -> None:
        """Set an attribute bypassing the strict attribute guard."""
        object.__setattr__(self, name, value)

    # -- reading --
    @property
    def value(self) -> Any:
        """The state's current value (a PyTree of arrays); assign to replace it."""
        if self._value is INVALID:
            raise _context._make_error("poisoned", self, "read")
        h = self._holder
        if h is not None and h.owner != _get_ident():
            v = _foreign_value(self, h, "read")
        else:
            if _context._n_frames:
                _record_read(self)
            v = self._value
        if _context._n_hooks:
            _hooks.dispatch_read(self, v)
        return v

    @value.setter
    def value(self, v: Any) -> None:
        self._write(v, True)

    def _write(self, v: Any, fire_before: bool) -> None:
        # Error precedence: State value, tracer guard, signature, strict attribute guard;
        # all of them before any hook, recording or mutation.
        if isinstance(v, _context._state_types):
            raise _context._make_error("set_state", self, v)
        h = self._holder
        if h is not None and h.owner != _get_ident():
            return self._write_foreign(h, 0, v, fire_before)
        code, has_tracer = self._check(0, v)
        if has_tracer and not (_context._n_frames and _ctx.state_stack):
            if self._trace_ref is not _current_trace_ref():
                raise _context._make_error("tracer_write", self)
        if code < 0:
            raise self._mismatch(0, v)
        if _context._n_tracer_check:
            _strict_guard(self)
        old = self._value
        if _context._n_hooks and fire_before:
            nv = _hooks.dispatch_write_before(self, v, old)
            if nv is not v:
                code, has_tracer = self._check(0, nv)
                if code < 0:
                    raise self._mismatch(0, nv)
                v = nv
        if _context._n_frames:
            _record_write(self)
        self._store(v, has_tracer, code)
        object.__setattr__(self, "_been_writen", True)
        if _context._n_hooks:
            _hooks.dispatch_write_after(self, v, old)

    def _check(self, op: int, v: Any) -> tuple[int, bool]:
        """Compare ``v`` with the signature (op 0 = write, 1 = restore).

        Returns ``(code, has tracer)``: code 1 = matches, 0 = an active
        ``check_state_value_tree(False)`` asks for a re-bind, -1 = mismatch (the caller raises
        ``_mismatch`` once the guards that take precedence have run).
        """
        if _rebinding():
            return 0, _analyse(v)[1]
        if self._flags & (_VIEW | _TRACER) and self._value is not INVALID:
            # Under a transform's view the stored shape may be per-lane: compare with the held value.
            held, _ = _analyse(self._value)
            got, has_tracer = _analyse(v)
            same = held == got if op == 0 else _same_structure(held, got)
            return (1 if same else -1), has_tracer
        ok, has_tracer = _matches(self._sig, v)
        return (1 if ok else -1), has_tracer

    def _mismatch(self, op: int, v: Any) -> BaseException:
        """The signature error for ``v`` (the expected side as ``_check`` saw it)."""
        if self._flags & (_VIEW | _TRACER) and self._value is not INVALID:
            expected = _analyse(self._value)[0]
        else:
            expected = self._sig
        return _context._make_error("signature", self, _OPS[op], expected, v)

    def _store(self, v: Any, has_tracer: bool, code: int) -> None:
        sa = object.__setattr__
        view = self._flags & _VIEW
        if has_tracer and self._holder is None:
            _hold_begin(self, self._value, self._flags == 0)
        if not (has_tracer or view) and self._holder is not None:
            _hold_end(self, v, False)  # this thread's own concrete write ends its hold
        else:
            sa(self, "_value", v)
        sa(self, "_flags", view | (_TRACER if has_tracer else 0))
        if code == 0:
            sa(self, "_sig", _analyse(v)[0])
            _context._epoch += 1  # a re-bind: caches keyed on signatures must revalidate

    def restore_value(self, v: Any) -> None:
        """Replace the value without the write path: no tracer guard, no write hooks.

        Checked against the signature, recorded as a read, fires ``restore`` hooks.
        """
        if isinstance(v, _context._state_types):
            raise _context._make_error("set_state", self, v)
        h = _held_elsewhere(self)
        if h is not None:
            return self._write_foreign(h, 1, v, False)
        code, has_tracer = self._check(1, v)
        if code < 0:
            raise self._mismatch(1, v)
        if _context._n_tracer_check:
            _strict_guard(self)
        if _context._n_frames:
            _record_read(self)
        old = self._value
        self._store(v, has_tracer, code)
        object.__setattr__(self, "_flags", self._flags & ~_VIEW)
        if self._flags == 0 and self._holder is not None:
            # the restore that ends this thread's trace keeps what other threads wrote meanwhile
            v = _hold_end(self, v, True)
        if _context._n_hooks:
            _hooks.dispatch_restore(self, v, old)

    def _write_foreign(self, h: _Hold, op: int, v: Any, fire_before: bool) -> None:
        # A write (op 0) or restore (1) from a thread other than the one whose trace holds this
        # state: checked against the stored signature (never re-bound: the trace relies on it),
        # hooks fire with the held value as the old one, and the value goes into the hold.
        old = _foreign_value(self, h, _OPS[op])
        got, has_tracer = _analyse(v)
        if has_tracer:
            raise _context._make_error("tracer_write", self)
        sig = self._sig
        if not (got == sig if op == 0 else _same_structure(sig, got)):
            raise _context._make_error("signature", self, _OPS[op], sig, v)
        if _context._n_tracer_check:
            _strict_guard(self)
        if _context._n_hooks and op == 0 and fire_before:
            nv = _hooks.dispatch_write_before(self, v, old)
            if nv is not v:
                got, has_tracer = _analyse(nv)
                if has_tracer or got != sig:
                    raise _context._make_error("signature", self, "write", sig, nv)
                v = nv
        _foreign_store(self, v)
        if op == 0:
            object.__setattr__(self, "_been_writen", True)
            if _context._n_hooks:
                _hooks.dispatch_write_after(self, v, old)
        elif _context._n_hooks:
            _hooks.dispatch_restore(self, v, old)

    # -- internal paths used by transforms --
    def _write_no_before(self, v: Any) -> None:
        """Write path for a transform's write-back: checked, recorded, ``write_before`` skipped."""
        self._write(v, False)

    def _set_view(self, v: Any) -> None:
        """Install a transform's per-lane view of the value (no check, no record, no hooks)."""
        if _held_elsewhere(self) is not None:
            raise _held_error(self, "trace")
        _hold_begin(self, self._value, self._flags == 0)
        object.__setattr__(self, "_value", v)
        object.__setattr__(self, "_flags", self._flags | _VIEW)

    def _restore_rebind(self, v: Any) -> None:
        """Restore ``v`` and re-bind the signature to it (vmap_new_states, eval_shape)."""
        if _held_elsewhere(self) is not None:
            raise _held_error(self, "restore")
        _context._epoch += 1
        old = self._value
        sig, has_tracer = _analyse(v)
        sa = object.__setattr__
        if has_tracer:
            _hold_begin(self, old, self._flags == 0)
            sa(self, "_value", v)
        elif self._holder is not None:
            _hold_end(self, v, False)  # (a re-bind keeps its own value: the signature is v's)
        else:
            sa(self, "_value", v)
        sa(self, "_sig", sig)
        sa(self, "_flags", _TRACER if has_tracer else 0)
        if _context._n_hooks:
            _hooks.dispatch_restore(self, v, old)

    def _restore_silent(self, v: Any) -> None:
        """Put back a value this state held before (a transform's rollback): no check, no hooks.

        When this ends the hold of this thread's trace, a value another thread wrote during
        the trace is kept instead of ``v``.
        """
        has_tracer = _analyse(v)[1]
        if _held_elsewhere(self) is not None:
            if has_tracer:
                raise _held_error(self, "restore")
            _foreign_store(self, v)
            return
        if has_tracer:
            _hold_begin(self, self._value, self._flags == 0)
            self._value = v
        elif self._holder is not None:
            _hold_end(self, v, True)
        else:
            self._value = v
        self._flags = _TRACER if has_tracer else 0

    def _invalidate_trace_value(self) -> None:
        """Poison the state: its value was a tracer that died with its trace."""
        object.__setattr__(self, "_holder", None)
        object.__setattr__(self, "_value", INVALID)
        object.__setattr__(self, "_flags", 0)

    def _read_value(self) -> Any:
        self.check_if_deleted()
        h = _held_elsewhere(self)
        return self._value if h is None else _foreign_value(self, h, "read")

    def _write_value(self, v: Any) -> None:
        object.__setattr__(self, "_value", v)

    def check_if_deleted(self) -> None:
        """Hook for subclasses that materialise their value lazily (no-op here)."""

    def numel(self) -> int:
        """Total number of elements over all leaves of the value."""
        if self._value is INVALID:
            raise _context._make_error("poisoned", self, "numel")
        n = 0
        for leaf in _context._tree_flatten(self._value)[0]:
            size = getattr(leaf, "size", 1)
            n += int(size)
        return n

    @property
    def _signature(self) -> Signature:
        """The stored abstract signature (a ``Signature``)."""
        return self._sig

    @_signature.setter
    def _signature(self, sig: Signature) -> None:
        _require(sig, Signature, "sig")
        object.__setattr__(self, "_sig", sig)
        _context._epoch += 1  # a re-bind: caches keyed on signatures must revalidate

    @property
    def stack_level(self) -> int:
        """The trace-stack depth this state belongs to."""
        return self._level

    @stack_level.setter
    def stack_level(self, level: int) -> None:
        object.__setattr__(self, "_level", level)

    def increase_stack_level(self) -> None:
        object.__setattr__(self, "_level", self._level + 1)

    def decrease_stack_level(self) -> None:
        object.__setattr__(self, "_level", max(self._level - 1, 0))

    def _init_from(self, value: Any, site: Any) -> None:
        """Bind a state built without ``__init__`` (copy, ref, unpickle) to ``value``.

        The signature is derived from the value; trace identity and level are captured now;
        ``site`` (or the current call site) becomes the creation site.
        """
        sig, has_tracer = _analyse(value)
        sa = object.__setattr__
        sa(self, "_value", value)
        sa(self, "_sig", sig)
        sa(self, "_flags", _TRACER if has_tracer else 0)
        if has_tracer and self._holder is None:
            _hold_begin(self, INVALID, False)
        sa(self, "_trace_ref", _current_trace_ref())
        sa(self, "_level", stack_level())
        sa(self, "_source_info", site if site is not None else capture_site())

    def _trace_is_valid(self) -> bool:
        return self._trace_ref is _current_trace_ref()

    def _recapture_trace(self) -> None:
        object.__setattr__(self, "_trace_ref", _current_trace_ref())
        object.__setattr__(self, "_level", stack_level())


_context._state_types = (StateCore,)  # until configure() names the hosted core
