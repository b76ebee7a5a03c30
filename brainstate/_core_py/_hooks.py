"""Mirrors csrc/_core_hooks.pxi: hook dispatch, the pure reference.

The hook classes are those of the hook API (``brainstate/_hooks.py``): ``configure_hooks``
hands them over, as it hands the compiled twin their slot layout. For every operation the
global hooks run before the state's own; a dispatch is called only while the core's hook
counter is non-zero. The pure core dispatches its states here; so does the hosted core
(``brainstate/_hosted.py``) under either core, and the compiled core's ``scatter`` calls
``dispatch_write_after`` for hosted states (``brainstate._wiring`` hands it this module).

Measured on the dev box (bench in tests/test_hooks_api.py::test_dispatch_overhead):
- lock.acquire()/try/finally/release() costs 100 ns against 175 ns for ``with lock:``;
- a context built with object.__new__ and slot stores costs 1.5-2x less than calling the
  dataclass (type.__call__ plus default factories); ``metadata`` is created on first access
  (HookContext.__getattr__), since most hooks never touch it.
"""

from __future__ import annotations

import time
import weakref
from typing import Any, Callable, Optional

from brainstate._core_constants import HOOK_INIT as _INIT
from brainstate._core_constants import HOOK_READ as _READ
from brainstate._core_constants import HOOK_RESTORE as _RESTORE
from brainstate._core_constants import HOOK_WRITE_AFTER as _WRITE_AFTER
from brainstate._core_constants import HOOK_WRITE_BEFORE as _WRITE_BEFORE

_new = object.__new__
_time = time.time
_ref = weakref.ref

# --- what configure_hooks learns from the hook API ------------------------------------------
_api: Any = None  # the hook API module: its global registry (``_global``) is read per dispatch
_ReadCtx: Any = None
_WriteCtx: Any = None
_MutableCtx: Any = None
_RestoreCtx: Any = None
_InitCtx: Any = None
_MgrType: Any = type(None)
_handle_error: Callable[..., None] = None  # type: ignore[assignment]
_cancel_error: Callable[..., BaseException] = None  # type: ignore[assignment]


def configure_hooks(hooks: Any) -> None:
    """Learn the hook API's classes and error policy (``brainstate._hooks``)."""
    global _api, _ReadCtx, _WriteCtx, _MutableCtx, _RestoreCtx, _InitCtx, _MgrType
    global _handle_error, _cancel_error
    _api = hooks
    _ReadCtx, _WriteCtx = hooks.ReadHookContext, hooks.WriteHookContext
    _MutableCtx, _RestoreCtx = hooks.MutableWriteHookContext, hooks.RestoreHookContext
    _InitCtx = hooks.InitHookContext
    _MgrType = hooks.HookManager
    _handle_error = hooks._handle_error
    _cancel_error = hooks._cancel_error


def set_global_hook_registry(registry: Any) -> None:
    """The compiled core keeps the registry it is given; this dispatch reads the hook API's
    own (``brainstate._hooks._global``) at each call, so it needs nothing."""


# --- running one manager's chains -----------------------------------------------------------


def _run_shared(mgr: Any, chain: tuple, ctx: Any) -> None:
    """Run ``chain`` with one shared context; the caller holds ``mgr._lock``."""
    for hook in chain:
        if hook._enabled:  # may have been disabled by an earlier hook of this chain
            try:
                hook.callback(ctx)
            except Exception as exc:
                _handle_error(mgr, hook, exc, ctx)


def _run_observers(mgr: Any, chain_attr: str, cls: type, op: str,
                   state_ref: weakref.ref, **fields: Any) -> None:
    """Run an observing chain (read, write_after, restore, init) with one shared context."""
    lock = mgr._lock
    lock.acquire()
    try:
        chain = getattr(mgr, chain_attr)
        if chain:
            ctx: Any = _new(cls)
            ctx.operation = op
            ctx.state_ref = state_ref
            ctx.timestamp = _time()
            for name, value in fields.items():
                setattr(ctx, name, value)
            _run_shared(mgr, chain, ctx)
    finally:
        lock.release()


def _run_read(mgr: Any, value: Any, state_ref: weakref.ref) -> None:
    _run_observers(mgr, "_read_chain", _ReadCtx, "read", state_ref, value=value)


def _run_write_before(mgr: Any, new: Any, old: Any, state_ref: weakref.ref) -> Any:
    lock = mgr._lock
    lock.acquire()
    try:
        result = new
        transformed = None
        for hook in mgr._write_before_chain:
            if not hook._enabled:
                continue
            ctx: Any = _new(_MutableCtx)
            ctx.operation = "write_before"
            ctx.state_ref = state_ref
            ctx.timestamp = _time()
            ctx.value = new
            ctx.old_value = old
            ctx.transformed_value = transformed
            ctx.cancel = False
            ctx.cancel_reason = None
            try:
                hook.callback(ctx)
            except Exception as exc:
                _handle_error(mgr, hook, exc, ctx)
                continue
            if ctx.cancel:
                raise _cancel_error(hook, ctx)
            if ctx.transformed_value is not None:
                result = transformed = ctx.transformed_value
        return result
    finally:
        lock.release()


def _run_write_after(mgr: Any, new: Any, old: Any, state_ref: weakref.ref) -> None:
    _run_observers(mgr, "_write_after_chain", _WriteCtx, "write_after", state_ref,
                   value=new, old_value=old)


def _run_restore(mgr: Any, new: Any, old: Any, state_ref: weakref.ref) -> None:
    _run_observers(mgr, "_restore_chain", _RestoreCtx, "restore", state_ref,
                   value=new, old_value=old)


def _run_init(mgr: Any, value: Any, state_ref: weakref.ref,
              init_metadata: Optional[dict]) -> None:
    _run_observers(mgr, "_init_chain", _InitCtx, "init", state_ref, value=value,
                   init_metadata={} if init_metadata is None else init_metadata)


# --- the entry points (called by the state cores while hooks are active) --------------------
# Each reads the state's manager after the global chain ran, so a global hook that registers
# per-state hooks (say, an ``init`` hook attaching a logger) sees them fire at once.


def _manager_of(state: Any) -> Any:
    m = state._hooks_manager
    if m is not None and not isinstance(m, _MgrType):
        raise TypeError(f"a state's hook manager must be a HookManager, got {type(m).__name__}")
    return m


def dispatch_read(state: Any, value: Any) -> None:
    """Fire the global, then the per-state ``read`` hooks of ``state``."""
    ref = None
    g = _api._global
    if g is not None and g.mask & _READ:
        ref = _ref(state)
        _run_read(g, value, ref)
    m = _manager_of(state)
    if m is not None and m.mask & _READ:
        _run_read(m, value, _ref(state) if ref is None else ref)


def dispatch_write_before(state: Any, new: Any, old: Any) -> Any:
    """Run the global, then the per-state ``write_before`` chain; return the value to store.

    Raises
    ------
    HookCancellationError
        If a hook vetoed the write.
    """
    ref = None
    g = _api._global
    if g is not None and g.mask & _WRITE_BEFORE:
        ref = _ref(state)
        new = _run_write_before(g, new, old, ref)
    m = _manager_of(state)
    if m is not None and m.mask & _WRITE_BEFORE:
        new = _run_write_before(m, new, old, _ref(state) if ref is None else ref)
    return new


def dispatch_write_after(state: Any, new: Any, old: Any) -> None:
    """Fire the global, then the per-state ``write_after`` hooks of ``state``."""
    ref = None
    g = _api._global
    if g is not None and g.mask & _WRITE_AFTER:
        ref = _ref(state)
        _run_write_after(g, new, old, ref)
    m = _manager_of(state)
    if m is not None and m.mask & _WRITE_AFTER:
        _run_write_after(m, new, old, _ref(state) if ref is None else ref)


def dispatch_restore(state: Any, new: Any, old: Any) -> None:
    """Fire the global, then the per-state ``restore`` hooks of ``state``."""
    ref = None
    g = _api._global
    if g is not None and g.mask & _RESTORE:
        ref = _ref(state)
        _run_restore(g, new, old, ref)
    m = _manager_of(state)
    if m is not None and m.mask & _RESTORE:
        _run_restore(m, new, old, _ref(state) if ref is None else ref)


def dispatch_init(state: Any, value: Any, init_metadata: Optional[dict]) -> None:
    """Fire the global, then the per-state ``init`` hooks of ``state``."""
    ref = None
    g = _api._global
    if g is not None and g.mask & _INIT:
        ref = _ref(state)
        _run_init(g, value, ref, init_metadata)
    m = _manager_of(state)
    if m is not None and m.mask & _INIT:
        _run_init(m, value, _ref(state) if ref is None else ref, init_metadata)
