"""Mirrors csrc/_core_context.pxi: configuration, process-wide activity counters, the
thread-local trace context and creation sites.

The configuration and the counters are the package's shared mutable state: ``configure``, the
counter functions and the state core rebind them here, so the other modules read them as
``_context.X`` (a name imported from here would keep the value it had at import). Functions and
objects that are never rebound (``INVALID``, ``_ctx``, the functions) are imported by name.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from brainstate._core_py._state import TraceFrame

# --- configuration (set once by brainstate._wiring) ------------------------------------------

_tree_flatten: Callable[[Any], tuple[list, Any]] = None  # type: ignore[assignment]
_leaf_spec: Callable[[Any], Any] = None  # type: ignore[assignment]
_array_type: Any = type(None)  # jax.Array's concrete type (its instances carry .aval)
_tracer_type: type = type(None)
_trace_ctx: Any = None
_make_error: Callable[..., BaseException] = None  # type: ignore[assignment]
_metadata_type: Any = type(None)
_pkg_prefix: str = "\0"
_source_site: Callable[[Any, int], Any] = None  # type: ignore[assignment]
# (StateCore, the hosted core): what counts as a state here. _state sets (StateCore,) once the
# class exists; configure() adds the hosted core.
_state_types: tuple = ()


def configure(
    *,
    tree_flatten: Callable,
    leaf_spec: Callable,
    array_type: type,
    key_array_type: type,
    tracer_type: type,
    trace_ctx: Any,
    make_error: Callable,
    hooks: Any,
    metadata_type: type,
    pkg_prefix: str,
    source_site: Callable,
    hosted_type: type,
) -> None:
    """Install the Python callables the core needs; called once by ``brainstate._wiring``.

    ``key_array_type`` feeds the compiled core's aval cache only (typed PRNG keys); the pure
    core compares every signature through ``leaf_spec`` and ignores it. ``hosted_type`` is the
    plain-Python state core of classes that cannot take this core's layout
    (``brainstate._hosted``): its states are recorded, gathered and scattered like ours.
    ``hooks`` is the hook dispatch the compiled core calls for hosted states: this package's
    ``_hooks`` module, through which this core dispatches every state, so it is not kept.
    """
    from brainstate._core_py._state import StateCore  # (that module imports this one)

    global _tree_flatten, _leaf_spec, _array_type, _tracer_type, _trace_ctx, _make_error
    global _metadata_type, _pkg_prefix, _source_site, _state_types
    _tree_flatten = tree_flatten
    _leaf_spec = leaf_spec
    _array_type = array_type
    _tracer_type = tracer_type
    _trace_ctx = trace_ctx
    _make_error = make_error
    _metadata_type = metadata_type
    _pkg_prefix = pkg_prefix
    _source_site = source_site
    _state_types = (StateCore, hosted_type)


class _Invalid:
    """The sentinel a poisoned state holds (its value was a tracer that died with its trace)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<invalidated trace value>"

    def __reduce__(self):
        return "INVALID"


INVALID = _Invalid()

# --- process-wide activity counters --------------------------------------------------------
# Each counts entries over all threads. When a counter is zero the matching per-thread work is
# skipped without touching thread-local storage: this is what keeps the eager path cheap.
_n_frames = 0  # active TraceFrames
_n_tree = 0  # active check_state_value_tree(...) entries
_n_tracer_check = 0  # active check_state_jax_tracer(...) entries
_n_catchers = 0  # active new-state catchers
_n_hooks = 0  # hook managers holding at least one enabled hook
_epoch = 0  # bumped whenever some state's signature is re-bound


def rebind_epoch() -> int:
    """A counter bumped whenever a state's signature is re-bound (caches compare it)."""
    return _epoch


def note_rebind() -> None:
    """Bump the rebind epoch (a hosted state re-bound its signature)."""
    global _epoch
    _epoch += 1


_counter_lock = threading.Lock()


def set_hooks_active(n: int) -> None:
    """Tell the core how many hook managers hold enabled hooks (0 turns dispatch off)."""
    global _n_hooks
    _n_hooks = int(n)


def hooks_active() -> int:
    """The count last given to ``set_hooks_active``."""
    return _n_hooks


# --- thread-local trace context -------------------------------------------------------------


class ThreadContext(threading.local):
    """One thread's stacks: trace frames, ``check_state_value_tree`` and
    ``check_state_jax_tracer`` settings (innermost last), ``catch_new_states`` catchers.
    """

    def __init__(self) -> None:
        self.state_stack: list = []
        self.tree_check: list = [False]
        self.jax_tracer_check: list = [False]
        self.new_state_catcher: list = []


_ctx = ThreadContext()


def get_context() -> ThreadContext:
    """This thread's trace context."""
    return _ctx


def stack_level() -> int:
    """The number of active trace frames in this thread (a new state's ``_level``)."""
    return len(_ctx.state_stack) if _n_frames else 0


def _bump(name: str, delta: int) -> None:
    with _counter_lock:
        globals()[name] += delta


def _require(value: Any, cls: Any, name: str) -> None:
    # the compiled core's typed arguments refuse anything else, None included: same error type
    if not isinstance(value, cls):
        expected = (cls[0] if isinstance(cls, tuple) else cls).__name__
        raise TypeError(f"Argument '{name}' has incorrect type (expected {expected}, got "
                        f"{type(value).__name__})")


def push_frame(frame: TraceFrame) -> None:
    """Make ``frame`` the innermost active frame of this thread."""
    from brainstate._core_py._state import TraceFrame  # (that module imports this one)

    _require(frame, TraceFrame, "frame")
    _ctx.state_stack.append(frame)
    _bump("_n_frames", 1)


def pop_frame(frame: TraceFrame) -> bool:
    """Pop ``frame`` if it is innermost; return False (stack untouched) otherwise."""
    from brainstate._core_py._state import TraceFrame  # (that module imports this one)

    _require(frame, TraceFrame, "frame")
    stack = _ctx.state_stack
    if not stack or stack[-1] is not frame:
        return False
    stack.pop()
    _bump("_n_frames", -1)
    return True


def push_tree_check(val: bool) -> None:
    _ctx.tree_check.append(bool(val))
    _bump("_n_tree", 1)


def pop_tree_check() -> None:
    _ctx.tree_check.pop()
    _bump("_n_tree", -1)


def push_tracer_check(val: bool) -> None:
    _ctx.jax_tracer_check.append(bool(val))
    _bump("_n_tracer_check", 1)


def pop_tracer_check() -> None:
    _ctx.jax_tracer_check.pop()
    _bump("_n_tracer_check", -1)


def push_catcher(catcher: Any) -> None:
    _ctx.new_state_catcher.append(catcher)
    _bump("_n_catchers", 1)


def pop_catcher(catcher: Any) -> None:
    cs = _ctx.new_state_catcher
    for i in range(len(cs) - 1, -1, -1):
        if cs[i] is catcher:
            del cs[i]
            _bump("_n_catchers", -1)
            return


def _rebinding() -> bool:
    # Innermost check_state_value_tree(False) turns checks into re-binds. The counter is
    # process-wide, so this thread must have an entry of its own above the base [False].
    if _n_tree == 0:
        return False
    tc = _ctx.tree_check
    return len(tc) > 1 and not tc[-1]


def is_rebinding() -> bool:
    """Whether an innermost ``check_state_value_tree(False)`` is active in this thread."""
    return _rebinding()


def _current_trace_ref() -> Any:
    return _trace_ctx.trace._weakref


def current_trace_ref() -> Any:
    """The identity of JAX's current trace (what a state's ``_trace_ref`` is compared with)."""
    return _trace_ctx.trace._weakref


# --- creation sites -------------------------------------------------------------------------


def capture_site() -> Any:
    """The first calling frame outside the brainstate package, as a ``SourceSite``."""
    f: Optional[FrameType] = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_pkg_prefix):
        f = f.f_back
    if f is None:
        return None
    return _source_site(f.f_code, f.f_lasti)
