"""Pure-Python reference core: the twin of the compiled ``brainstate._core``.

Same names, same behaviour, same messages as ``csrc/_core.pyx``; ``_core.pyi`` is the contract
both meet. This module imports nothing of brainstate and nothing of jax: ``_impl.configure_core``
hands it the few callables it needs (tree flattening, the tracer type, JAX's current trace, the
error factory, the hook dispatchers).

What lives here is the work done on every state access: the order of the checks, recording and
hooks of a ``value`` read or write, the signature compare, the trace-frame recording, and the
thread-local trace context with process-wide counters that let the eager path skip all of it.
The "graph walks" section at the end holds the loops ``brainstate.graph`` runs once per node and
per state (split, merge, ``states()``) and the storage base of ``TreefyState``.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Optional

__all__ = [
    "CORE_ABI",
    "configure",
    "Signature",
    "make_signature",
    "StateCore",
    "TraceFrame",
    "ThreadContext",
    "get_context",
    "push_frame",
    "pop_frame",
    "push_tree_check",
    "pop_tree_check",
    "push_tracer_check",
    "pop_tracer_check",
    "push_catcher",
    "pop_catcher",
    "stack_level",
    "set_hooks_active",
    "hooks_active",
    "INVALID",
    "capture_site",
    "is_rebinding",
    "gather",
    "scatter",
    "rebind_epoch",
    "note_rebind",
    "current_trace_ref",
    "configure_hooks",
    "set_global_hook_registry",
    "configure_graph",
    "TreefyStateCore",
    "treefy_attrs",
    "treefy_from_attrs",
    "treefy_flatten",
    "treefy_unflatten",
    "make_ref",
    "rebuild_state",
    "collect_states",
    "encode",
    "DecoderCore",
    "index_bound",
]

CORE_ABI = 5

# --- configuration (set once by brainstate._impl.configure_core) ----------------------------

_tree_flatten: Callable[[Any], tuple[list, Any]] = None  # type: ignore[assignment]
_leaf_spec: Callable[[Any], Any] = None  # type: ignore[assignment]
_array_type: Any = type(None)  # jax.Array's concrete type (its instances carry .aval)
_tracer_type: type = type(None)
_trace_ctx: Any = None
_make_error: Callable[..., BaseException] = None  # type: ignore[assignment]
_hooks: Any = None
_metadata_type: Any = type(None)
_pkg_prefix: str = "\0"
_source_site: Callable[[Any, int], Any] = None  # type: ignore[assignment]
_jax_tracer_type_check = None
_state_types: tuple = ()  # (StateCore, the hosted core): what counts as a state here


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
    """Install the Python callables the core needs; called once by ``brainstate._impl``.

    ``key_array_type`` feeds the compiled core's aval cache only (typed PRNG keys); the pure
    core compares every signature through ``leaf_spec`` and ignores it. ``hosted_type`` is the
    plain-Python state core of classes that cannot take this core's layout
    (``brainstate._hosted``): its states are recorded, gathered and scattered like ours.
    """
    global _tree_flatten, _leaf_spec, _array_type, _tracer_type, _trace_ctx, _make_error
    global _hooks, _metadata_type, _pkg_prefix, _source_site, _state_types
    _tree_flatten = tree_flatten
    _leaf_spec = leaf_spec
    _array_type = array_type
    _tracer_type = tracer_type
    _trace_ctx = trace_ctx
    _make_error = make_error
    _hooks = hooks
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


def configure_hooks(hooks: Any) -> None:
    """The compiled core learns the hook classes' slot layout here; the pure core dispatches
    through ``brainstate._hooks.dispatch_*`` and needs nothing."""


def set_global_hook_registry(registry: Any) -> None:
    """The compiled core reads the global registry directly; the pure core asks ``_hooks``."""


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


def push_frame(frame: "TraceFrame") -> None:
    """Make ``frame`` the innermost active frame of this thread."""
    _require(frame, TraceFrame, "frame")
    _ctx.state_stack.append(frame)
    _bump("_n_frames", 1)


def pop_frame(frame: "TraceFrame") -> bool:
    """Pop ``frame`` if it is innermost; return False (stack untouched) otherwise."""
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


def _same_structure(a: Signature, b: Signature) -> bool:
    # the single-array form stands for the leaf treedef
    if a.treedef is None:
        return b.treedef is None or (b.treedef.num_nodes == 1 and b.treedef.num_leaves == 1)
    if b.treedef is None:
        return a.treedef.num_nodes == 1 and a.treedef.num_leaves == 1
    return a.treedef == b.treedef


def is_rebinding() -> bool:
    """Whether an innermost ``check_state_value_tree(False)`` is active in this thread."""
    return _rebinding()


def _current_trace_ref() -> Any:
    return _trace_ctx.trace._weakref


def current_trace_ref() -> Any:
    """The identity of JAX's current trace (what a state's ``_trace_ref`` is compared with)."""
    return _trace_ctx.trace._weakref


# --- signatures -----------------------------------------------------------------------------


class Signature:
    """The abstract signature of a value: tree structure plus (shape, dtype) per leaf.

    A single-array value (the common case) keeps ``treedef=None`` and is compared without
    flattening. ``specs`` holds one entry per leaf: ``(shape, dtype)`` for array-likes, the
    Python type for leaves JAX cannot abstractify.
    """

    __slots__ = ("treedef", "specs", "shape", "dtype")

    def __init__(self, treedef: Any, specs: tuple, shape: Any = None, dtype: Any = None):
        self.treedef = treedef
        self.specs = specs
        self.shape = shape
        self.dtype = dtype

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Signature):
            return NotImplemented
        if self.treedef is None or other.treedef is None:
            # PyTreeDef.__eq__ raises TypeError on None; one single-array form and one full
            # form never match (a full form never describes exactly one array leaf)
            return (self.treedef is None and other.treedef is None
                    and self.shape == other.shape and self.dtype == other.dtype)
        return self.treedef == other.treedef and self.specs == other.specs

    def __hash__(self) -> int:
        return hash(self._full())

    def _full(self) -> tuple:
        if self.treedef is None:
            return (None, ((self.shape, self.dtype),))
        return (self.treedef, self.specs)

    def __repr__(self) -> str:
        if self.treedef is None:
            return f"Signature(shape={self.shape}, dtype={self.dtype})"
        return f"Signature(treedef={self.treedef}, leaves={list(self.specs)})"

    def __reduce__(self):
        return (Signature, (self.treedef, self.specs, self.shape, self.dtype))


def _analyse(value: Any) -> tuple[Signature, bool]:
    """Signature of ``value`` and whether any leaf is a JAX tracer."""
    if type(value) is _array_type:
        # aval directly: ArrayImpl.shape/.dtype are properties that read it (two calls saved)
        aval = value.aval
        return Signature(None, (), aval.shape, aval.dtype), False
    leaves, treedef = _tree_flatten(value)
    has_tracer = False
    specs = []
    for leaf in leaves:
        if type(leaf) is _array_type:  # jax arrays: already canonical
            aval = leaf.aval
            specs.append((aval.shape, aval.dtype))
            continue
        if isinstance(leaf, _tracer_type):
            has_tracer = True
        specs.append(_leaf_spec(leaf))
    if len(specs) == 1 and type(specs[0]) is tuple and treedef.num_nodes == 1:
        # a bare array-like leaf: the single form, equal to what a jax array gives
        return Signature(None, (), specs[0][0], specs[0][1]), has_tracer
    return Signature(treedef, tuple(specs)), has_tracer


def make_signature(value: Any) -> Signature:
    """The abstract signature of ``value``."""
    return _analyse(value)[0]


def _matches(sig: Signature, value: Any) -> tuple[bool, bool]:
    """(does ``value`` match ``sig``, does it hold a tracer)."""
    # The compiled twin confirms matches of plain-container trees by walking them without
    # JAX's flatten (_walk_node); this flatten stays the reference for its verdicts.
    if sig.treedef is None and type(value) is _array_type:
        aval = value.aval
        return aval.shape == sig.shape and aval.dtype == sig.dtype, False
    got, has_tracer = _analyse(value)
    return got == sig, has_tracer


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
        _require(st, _state_types, "st")
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
        _require(st, _state_types, "st")
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
    return _make_error("held", st, op, h.thread, threading.current_thread().name,
                       h.value is INVALID)


def _foreign_value(st: Any, h: _Hold, op: str) -> Any:
    """The value another thread sees (refused while that thread traces, or when none)."""
    v = h.value
    if v is INVALID or (_n_frames and _ctx.state_stack):
        raise _make_error("held", st, op, h.thread, threading.current_thread().name,
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

_VIEW = 1  # value installed by a transform's view path (new_arg / _set_view)
_TRACER = 2  # held value contains a JAX tracer


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
        raise _make_error("strict_attr", st)


def capture_site() -> Any:
    """The first calling frame outside the brainstate package, as a ``SourceSite``."""
    f: Optional[FrameType] = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_pkg_prefix):
        f = f.f_back
    if f is None:
        return None
    return _source_site(f.f_code, f.f_lasti)


class StateCore:
    """Base type of ``State``: typed slots and the whole read/write order of ``.value``."""

    __slots__ = (
        "_value",
        "_sig",
        "_trace_ref",
        "_level",
        "_been_writen",
        "_flags",
        "_hooks_mgr_or_none",
        "_site",
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
    _hooks_mgr_or_none: Any
    _site: Any
    _name: Any
    tag: Any
    _holder: "_Hold | None"  # while a trace of one thread holds the value

    def __new__(cls, *args: Any, **kwargs: Any) -> "StateCore":
        self = object.__new__(cls)
        sa = object.__setattr__
        for slot in ("_value", "_sig", "_trace_ref", "_hooks_mgr_or_none", "_site", "_name", "tag",
                     "_holder"):
            sa(self, slot, None)
        sa(self, "_level", 0)
        sa(self, "_flags", 0)
        sa(self, "_been_writen", False)
        return self

    def __init__(self, value: Any, name: Any = None, **metadata: Any) -> None:
        tag = _normalize_tag(metadata.pop("tag", None))
        trace_ref = _current_trace_ref()
        if isinstance(value, _metadata_type):
            metadata.update(value.metadata)
            value = value.raw_value
        if "type" in metadata:
            raise TypeError(_reserved_type_message(type(self)))
        if isinstance(value, _state_types):
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
        sa(self, "_hooks_mgr_or_none", None)
        sa(self, "_site", capture_site())
        sa(self, "_name", name)
        sa(self, "tag", tag)
        if metadata:
            self.__dict__.update(metadata)
        if _n_catchers:
            for catcher in tuple(_ctx.new_state_catcher):
                catcher.append(self)
        if _n_hooks:
            init_md = {"_name": name, "tag": tag}
            init_md.update(metadata)
            _hooks.dispatch_init(self, value, init_md)

    def __hash__(self) -> int:
        # identity semantics: hash(state) == hash(id(state)), no __eq__
        return hash(id(self))

    # -- guarded attribute assignment (strict attribute guard: docs/concepts/trace-contexts.md) --
    def __setattr__(self, name: str, value: Any) -> None:
        if _n_tracer_check:
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
            raise _make_error("poisoned", self, "read")
        h = self._holder
        if h is not None and h.owner != _get_ident():
            v = _foreign_value(self, h, "read")
        else:
            if _n_frames:
                _record_read(self)
            v = self._value
        if _n_hooks:
            _hooks.dispatch_read(self, v)
        return v

    @value.setter
    def value(self, v: Any) -> None:
        self._write(v, True)

    def _write(self, v: Any, fire_before: bool) -> None:
        # Error precedence: State value, tracer guard, signature, strict attribute guard;
        # all of them before any hook, recording or mutation.
        if isinstance(v, _state_types):
            raise _make_error("set_state", self, v)
        h = self._holder
        if h is not None and h.owner != _get_ident():
            return self._write_foreign(h, 0, v, fire_before)
        code, has_tracer = self._check(0, v)
        if has_tracer and not (_n_frames and _ctx.state_stack):
            if self._trace_ref is not _current_trace_ref():
                raise _make_error("tracer_write", self)
        if code < 0:
            raise self._mismatch(0, v)
        if _n_tracer_check:
            _strict_guard(self)
        old = self._value
        if _n_hooks and fire_before:
            nv = _hooks.dispatch_write_before(self, v, old)
            if nv is not v:
                code, has_tracer = self._check(0, nv)
                if code < 0:
                    raise self._mismatch(0, nv)
                v = nv
        if _n_frames:
            _record_write(self)
        self._store(v, has_tracer, code)
        object.__setattr__(self, "_been_writen", True)
        if _n_hooks:
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
        return _make_error("signature", self, _OPS[op], expected, v)

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
            global _epoch
            sa(self, "_sig", _analyse(v)[0])
            _epoch += 1  # a re-bind: caches keyed on signatures must revalidate

    def restore_value(self, v: Any) -> None:
        """Replace the value without the write path: no tracer guard, no write hooks.

        Checked against the signature, recorded as a read, fires ``restore`` hooks.
        """
        if isinstance(v, _state_types):
            raise _make_error("set_state", self, v)
        h = _held_elsewhere(self)
        if h is not None:
            return self._write_foreign(h, 1, v, False)
        code, has_tracer = self._check(1, v)
        if code < 0:
            raise self._mismatch(1, v)
        if _n_tracer_check:
            _strict_guard(self)
        if _n_frames:
            _record_read(self)
        old = self._value
        self._store(v, has_tracer, code)
        object.__setattr__(self, "_flags", self._flags & ~_VIEW)
        if self._flags == 0 and self._holder is not None:
            # the restore that ends this thread's trace keeps what other threads wrote meanwhile
            v = _hold_end(self, v, True)
        if _n_hooks:
            _hooks.dispatch_restore(self, v, old)

    def _write_foreign(self, h: _Hold, op: int, v: Any, fire_before: bool) -> None:
        # A write (op 0) or restore (1) from a thread other than the one whose trace holds this
        # state: checked against the stored signature (never re-bound: the trace relies on it),
        # hooks fire with the held value as the old one, and the value goes into the hold.
        old = _foreign_value(self, h, _OPS[op])
        got, has_tracer = _analyse(v)
        if has_tracer:
            raise _make_error("tracer_write", self)
        sig = self._sig
        if not (got == sig if op == 0 else _same_structure(sig, got)):
            raise _make_error("signature", self, _OPS[op], sig, v)
        if _n_tracer_check:
            _strict_guard(self)
        if _n_hooks and op == 0 and fire_before:
            nv = _hooks.dispatch_write_before(self, v, old)
            if nv is not v:
                got, has_tracer = _analyse(nv)
                if has_tracer or got != sig:
                    raise _make_error("signature", self, "write", sig, nv)
                v = nv
        _foreign_store(self, v)
        if op == 0:
            object.__setattr__(self, "_been_writen", True)
            if _n_hooks:
                _hooks.dispatch_write_after(self, v, old)
        elif _n_hooks:
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
        global _epoch
        if _held_elsewhere(self) is not None:
            raise _held_error(self, "restore")
        _epoch += 1
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
        if _n_hooks:
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
            raise _make_error("poisoned", self, "numel")
        n = 0
        for leaf in _tree_flatten(self._value)[0]:
            size = getattr(leaf, "size", 1)
            n += int(size)
        return n

    @property
    def _signature(self) -> Signature:
        """The stored abstract signature (a ``Signature``)."""
        return self._sig

    @_signature.setter
    def _signature(self, sig: Signature) -> None:
        global _epoch
        _require(sig, Signature, "sig")
        object.__setattr__(self, "_sig", sig)
        _epoch += 1  # a re-bind: caches keyed on signatures must revalidate

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
        sa(self, "_site", site if site is not None else capture_site())

    def _trace_is_valid(self) -> bool:
        return self._trace_ref is _current_trace_ref()

    def _recapture_trace(self) -> None:
        object.__setattr__(self, "_trace_ref", _current_trace_ref())
        object.__setattr__(self, "_level", stack_level())


_state_types = (StateCore,)  # until configure() names the hosted core


# --- per-call paths of transforms -----------------------------------------------------------


def gather(states: Any) -> list:
    """Current values of ``states`` in order: recorded in enclosing frames, no read hooks."""
    out = []
    for st in states:
        _require(st, _state_types, "st")
        h = _held_elsewhere(st)
        if h is not None:
            v = _foreign_value(st, h, "read")
        else:
            if _n_frames:
                _record_read(st)
            v = st._value
        if v is INVALID:
            raise _make_error("poisoned", st, "read")
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
    guard = not (_n_frames and _ctx.state_stack)
    current = INVALID  # JAX's current trace, looked up only for a non-array value
    sa = object.__setattr__
    for i in range(n):
        if written is not None and not written[i]:
            continue
        st, v = states[i], values[i]
        _require(st, _state_types, "st")
        h = _held_elsewhere(st)
        if h is not None:
            old = _foreign_value(st, h, "write")
            if type(v) is not _array_type and _analyse(v)[1]:
                raise _make_error("tracer_write", st)
            _foreign_store(st, v)
            sa(st, "_been_writen", True)
            if _n_hooks:
                _hooks.dispatch_write_after(st, v, old)
            continue
        if guard and type(v) is not _array_type:
            if current is INVALID:
                current = _current_trace_ref()
            if st._trace_ref is not current and _analyse(v)[1]:
                raise _make_error("tracer_write", st)
        old = st._value
        if _n_frames:
            _record_write(st)
        sa(st, "_value", v)  # flags kept: a traced call returns what it was given
        sa(st, "_been_writen", True)
        if _n_hooks:
            _hooks.dispatch_write_after(st, v, old)


# --- graph walks (brainstate.graph) ---------------------------------------------------------
#
# The loops run once per node and per state by graph.flatten / unflatten / states(). The graph
# package hands over its registry with configure_graph and keeps the policy, the rare paths and
# every message: these loops call back into it for anything but the common cases.

# Kinds of brainstate.graph._registry and code tags of brainstate.graph._graphdef.
_K_NODE, _K_PYTREE, _K_STATE, _K_STATE_LEAF, _K_STATIC, _K_NONE = range(6)
_C_NODE_DEF, _C_NODE_REF, _C_STATE_DEF, _C_STATE_REF, _C_STATIC, _C_PYTREE, _C_LEAF, _C_STATE_AT = (
    range(8)
)
_LIST_KIND, _TUPLE_KIND, _DICT_KIND = 1, 2, 3
_GRAPH_CONSTANTS = {
    "kinds": (_K_NODE, _K_PYTREE, _K_STATE, _K_STATE_LEAF, _K_STATIC, _K_NONE),
    "codes": (_C_NODE_DEF, _C_NODE_REF, _C_STATE_DEF, _C_STATE_REF, _C_STATIC, _C_PYTREE,
              _C_LEAF, _C_STATE_AT),
    "treedef_kinds": (_LIST_KIND, _TUPLE_KIND, _DICT_KIND),
}

_g_kinds: dict = {}
_g_classify: Callable = None  # type: ignore[assignment]
_g_impls: dict = {}
_g_plain: set = set()
_g_flatten_pytree: Callable = None  # type: ignore[assignment]
_g_node_children: Callable = None  # type: ignore[assignment]
_g_seq_treedef: Callable = None  # type: ignore[assignment]
_g_dict_treedef: Callable = None  # type: ignore[assignment]
_g_treedef_kinds: dict = {}
_g_hashable_by_value: Callable = None  # type: ignore[assignment]
_g_fast_ref: dict = {}
_g_fast_ref_ok: Callable = None  # type: ignore[assignment]
_g_fast_state: dict = {}
_g_fast_state_ok: Callable = None  # type: ignore[assignment]
_g_ref_type: Any = type(None)
_g_rebuild_error: Any = type(None)  # an exception class
_MISSING = object()
_NONE_CODE = (_C_STATIC, None)


def configure_graph(
    *,
    constants: dict,
    kinds: dict,
    classify: Callable,
    node_impls: dict,
    plain_nodes: set,
    flatten_pytree: Callable,
    node_children: Callable,
    seq_treedef: Callable,
    dict_treedef: Callable,
    treedef_kinds: dict,
    hashable_by_value: Callable,
    fast_ref: dict,
    fast_ref_ok: Callable,
    fast_state: dict,
    fast_state_ok: Callable,
    ref_type: type,
    rebuild_error: type,
    missing: Any,
) -> None:
    """Hand the graph walks brainstate.graph's registry (its live dicts and sets) and callbacks.

    ``constants`` are the graph package's kind, code and treedef-kind numbers; a mismatch with
    the core's raises, so the two cannot drift apart silently. ``missing`` is the sentinel the
    loops hand to the slow paths for a path absent from the state mapping.
    """
    global _g_kinds, _g_classify, _g_impls, _g_plain, _g_flatten_pytree, _g_node_children
    global _g_seq_treedef, _g_dict_treedef, _g_treedef_kinds, _g_hashable_by_value
    global _g_fast_ref, _g_fast_ref_ok, _g_fast_state, _g_fast_state_ok, _g_ref_type
    global _g_rebuild_error, _MISSING
    if constants != _GRAPH_CONSTANTS:
        raise RuntimeError(
            f"brainstate.graph constants {constants!r} differ from the core's "
            f"{_GRAPH_CONSTANTS!r}; update both together."
        )
    for name, table, kind in (("kinds", kinds, dict), ("node_impls", node_impls, dict),
                              ("plain_nodes", plain_nodes, set),
                              ("treedef_kinds", treedef_kinds, dict),
                              ("fast_ref", fast_ref, dict), ("fast_state", fast_state, dict)):
        if type(table) is not kind:
            raise TypeError(f"configure_graph: {name} must be a {kind.__name__} (the registry's "
                            f"live table), got {type(table).__name__}.")
    _g_kinds = kinds
    _g_classify = classify
    _g_impls = node_impls
    _g_plain = plain_nodes
    _g_flatten_pytree = flatten_pytree
    _g_node_children = node_children
    _g_seq_treedef = seq_treedef
    _g_dict_treedef = dict_treedef
    _g_treedef_kinds = treedef_kinds
    _g_hashable_by_value = hashable_by_value
    _g_fast_ref = fast_ref
    _g_fast_ref_ok = fast_ref_ok
    _g_fast_state = fast_state
    _g_fast_state_ok = fast_state_ok
    _g_ref_type = ref_type
    _g_rebuild_error = rebuild_error
    _MISSING = missing


class TreefyStateCore:
    """Base type of ``TreefyState``: its attribute storage.

    A plain object whose ``__dict__`` holds ``type``, ``value`` and the metadata in insertion
    order. (The compiled twin keeps the standard layout of ``State.to_state_ref()`` in typed
    slots and behaves the same.)
    """

    def __init__(self, type: Any, value: Any, **metadata: Any) -> None:
        vars(self).update(type=type, value=value, **metadata)


def treefy_attrs(ref: Any) -> dict:
    """A new dict of ``ref``'s attributes in order (``dict(vars(ref))`` without touching it)."""
    _require(ref, TreefyStateCore, "ref")
    return dict(vars(ref))


def treefy_from_attrs(cls: Any, attrs: dict) -> Any:
    """A new ``cls`` ref whose attributes are ``attrs`` (in order), built without ``__init__``."""
    ref = cls.__new__(cls)
    vars(ref).update(attrs)
    return ref


_AUX_SKIP = ("type", "value", "_source_info", "_hooks_manager")


def treefy_flatten(ref: Any) -> tuple:
    """``(value, aux)`` of ``ref``'s pytree form: aux = ``(type, metadata items)`` in insertion
    order, without ``_source_info`` and ``_hooks_manager``."""
    _require(ref, TreefyStateCore, "ref")
    d = vars(ref)
    md = tuple([(k, v) for k, v in d.items() if k not in _AUX_SKIP])
    return d["value"], (d["type"], md)


def treefy_unflatten(cls: Any, aux: tuple, children: Any) -> Any:
    """The ref of ``cls`` that ``treefy_flatten`` described: fresh ``_source_info`` and
    ``_hooks_manager`` (None), then the metadata items in order."""
    ref = cls.__new__(cls)
    d = vars(ref)
    d.update(type=aux[0], value=children[0], _source_info=None, _hooks_manager=None)
    d.update(aux[1])
    return ref


def make_ref(st: Any) -> Any:
    """``st.to_state_ref()``, built directly when the state's class does not customise it."""
    t = type(st)
    if (_g_fast_ref.get(t) or _g_fast_ref_ok(t)) and not st.__dict__:
        ref = object.__new__(_g_ref_type)
        h = _held_elsewhere(st)
        ref.__dict__ = {
            "type": t,
            "value": st._value if h is None else _foreign_value(st, h, "split"),
            "_source_info": st._site,
            "_hooks_manager": st._hooks_mgr_or_none,
            "_name": st._name,
            "_been_writen": st._been_writen,
            "tag": st.tag,
        }
        return ref
    return st.to_state_ref()


def rebuild_state(ref: Any) -> Any:
    """A new live state from a ``TreefyState`` of the standard layout, else None.

    ``ref.to_state()`` without its generic attribute loop: fresh trace identity and level, no
    hook manager, the ref's creation site, and a copy of its tag set.
    """
    if type(ref) is not _g_ref_type:
        return None
    d = ref.__dict__
    if len(d) != 7:
        return None
    try:
        cls, value, site = d["type"], d["value"], d["_source_info"]
        name, written, tag = d["_name"], d["_been_writen"], d["tag"]
    except KeyError:
        return None
    if not (_g_fast_state.get(cls) or _g_fast_state_ok(cls)):
        return None
    st = cls.__new__(cls)
    st._init_from(value, site)
    sa = object.__setattr__
    sa(st, "_name", name)
    sa(st, "_been_writen", written)
    sa(st, "tag", set(tag) if type(tag) is set else tag)
    return st


# Deep graphs: the walks below recurse over neither graph nodes nor pytrees. Each keeps an
# explicit stack with one frame per container being walked (a graph node or a pytree), holding
# what a recursive call would hold in its locals; entering a child container pushes a frame,
# finishing one pops it and hands its result to the parent frame exactly where the recursive
# call would have returned. A frame resumes its loop through an iterator over its keys (a
# ``for`` over it is left by ``break`` to descend and continued on return), so the visit order,
# the indices, the records, the mapping and the errors are those of a plain recursive walk.
#
# Graph-node depth is then bounded by memory only. Pytree nesting is still bounded: nested
# pytrees give nested code tuples (and nested sub-mappings), which CPython hashes, compares and
# prints recursively without a depth guard, so past ``sys.getrecursionlimit()`` consecutive
# pytree levels (pytrees inside pytrees, no graph node between) the walks raise RecursionError
# like the compiled core's recursion guard, with the same words.
#
# Paths are links ``(up, key)`` (``None`` is the root's empty path), turned into tuples only
# where one is needed (a state's key in states(), an error message, a LEAF code): a chain of
# nodes n deep would otherwise hold n path tuples of up to n keys each.


def _link_path(link: Any) -> tuple:
    """The path tuple a link ``(up, key)`` stands for (``None``: the root's ``()``)."""
    keys = []
    while link is not None:
        link, k = link
        keys.append(k)
    keys.reverse()
    return tuple(keys)


def _too_deep(while_: str) -> RecursionError:
    return RecursionError(f"maximum recursion depth exceeded {while_}")


_N_RANGES = 64
_RANGES = [tuple(range(n)) for n in range(_N_RANGES)]
# Paths up to this long are handed down as tuples (bounded memory); deeper frames build theirs
# from their link when needed.
_SHORT_PATH = 32


def _pytree_level(x: Any, link: Any) -> tuple:
    """``(keys, src, treedef)`` of one level of pytree ``x`` at ``link``: the registry's
    ``flatten_pytree``, done here for lists, tuples and dicts of sortable keys (the path it
    takes only words its errors, so it is built only for the other pytrees)."""
    t = type(x)
    if t is list or t is tuple:
        n = len(x)
        return (_RANGES[n] if n < _N_RANGES else tuple(range(n))), x, _g_seq_treedef(t, n)
    if t is dict:
        try:
            keys = tuple(sorted(x))
        except TypeError:
            pass  # flatten_pytree raises the error naming the path
        else:
            return keys, x, _g_dict_treedef(keys)
    return _g_flatten_pytree(x, _link_path(link))


def collect_states(root: Any, lo: int, hi: int, accept: Any = None) -> dict:
    """``{path: state}`` in flatten order, each state once at its first path (``graph.states``).

    Containers are entered once by identity; depth grows by one per graph node entered and
    the walk stops below ``hi``. With ``accept`` (``state class -> bool``, memoised per class
    for the call) only states of accepted classes are kept.
    """
    out: dict = {}
    seen: set = set()  # ids of entered containers and of reported states
    seen_add = seen.add
    kind_get = _g_kinds.get
    classify = _g_classify
    plain = _g_plain
    memo: dict | None = None if accept is None else {}
    limit = sys.getrecursionlimit()

    def node_entries(n, link):
        # ``(keys, src)``: ``src[k]`` is the child under ``k`` (a dict of the node's children)
        keys, values, _ = _g_node_children(_g_impls[type(n)], n, _link_path(link))
        return keys, dict(zip(keys, values))

    if hi < 0:
        return out
    kind = classify(root)
    if kind == _K_STATE:
        if lo <= 0 and (accept is None or accept(type(root))):
            out[()] = root
        return out
    if kind == _K_NODE:
        seen_add(id(root))
        if type(root) in plain:
            ks, sv = sorted(root.__dict__), root.__dict__
        else:
            ks, sv = node_entries(root, None)
        stack = [[iter(ks), sv, None, 0, 0, ()]]
    elif kind == _K_PYTREE:
        seen_add(id(root))
        ks, sv, _ = _pytree_level(root, None)
        stack = [[iter(ks), sv, None, 0, 1, ()]]
    else:
        return out

    # A frame: [key iterator, src, link, level (graph nodes entered), run (consecutive pytree
    # levels ending here), its path: built when a state below needs it, handed down while
    # short (a state's key is then one tuple away)].
    while stack:
        frame = stack[-1]
        it, src, link, level, run, path = frame
        for k in it:
            v = src[k]
            t = type(v)
            kind = kind_get(t)
            if kind is None:
                kind = classify(v)
            if kind == _K_STATE:
                if level >= lo:
                    i = id(v)
                    if i not in seen:
                        if memo is not None:
                            keep = memo.get(t)
                            if keep is None:
                                keep = memo[t] = bool(accept(t))
                            if not keep:
                                continue
                        seen_add(i)
                        if path is None:
                            path = frame[5] = _link_path(link)
                        out[(*path, k)] = v
            elif kind == _K_NODE:
                i = id(v)
                if level < hi and i not in seen:
                    seen_add(i)
                    child = (link, k)
                    if t in plain:
                        ks, sv = sorted(v.__dict__), v.__dict__
                    else:
                        ks, sv = node_entries(v, child)
                    stack.append([iter(ks), sv, child, level + 1, 0,
                                  (*path, k) if path is not None and len(path) < _SHORT_PATH
                                  else None])
                    break  # walk the child; this frame's loop resumes after it
            elif kind == _K_PYTREE:
                i = id(v)
                if i not in seen:
                    seen_add(i)
                    if run >= limit:
                        raise _too_deep("while walking a graph")
                    child = (link, k)
                    ks, sv, _ = _pytree_level(v, child)
                    stack.append([iter(ks), sv, child, level, run + 1,
                                  (*path, k) if path is not None and len(path) < _SHORT_PATH
                                  else None])
                    break
        else:  # every child seen: this container is done
            stack.pop()
    return out


def encode(root: Any, root_kind: int, table: dict | None, treefy: bool) -> tuple:
    """The pre-order walk behind ``graph.flatten``.

    Returns ``(root_code, records, mapping, prepass, size)``; ``size`` is one more than the
    largest index used when ``table`` started empty, else None. ``table`` maps
    ``id(obj) -> (obj, index)`` and is extended in place (a split_context shares it across
    calls); None for a fresh one that the caller does not need back. See
    ``brainstate/graph/_graphdef.py`` for the codes.
    """
    if table is None:
        table = {}
    elif type(table) is not dict:
        raise TypeError(f"table must be a dict or None, got {type(table).__name__}")
    kind_get = _g_kinds.get
    classify = _g_classify
    impls = _g_impls
    table_get = table.get
    none_code = _NONE_CODE
    limit = sys.getrecursionlimit()

    records: list = []
    # owner[i - base]: position of the record holding the defining code of index i (-1: the
    # root pytree). A STATE_REF in an earlier-filled record than its definition needs a pre-pass.
    owner: list = []
    base = len(table)
    prepass = False

    # A frame: [key iterator, src, link, pos (the record holding the codes: the node's own, or
    # for a pytree its node's), codes so far, sub-mapping so far, run (consecutive pytree
    # levels ending here: 0 for a node), the node (type, index, metadata, keys) or None for a
    # pytree, the pytree (x, treedef, keys) or None for a node].
    def node_frame(node, link, index):
        t = type(node)
        impl = impls[t]
        pos = len(records)
        records.append(None)  # filled when the node is done: records stay in index order
        if impl.fast:
            src = node.__dict__
            invisible = t.graph_invisible_attrs
            if invisible:
                keys = tuple(sorted(k for k in src if k not in invisible))
            else:
                keys = tuple(sorted(src))
            metadata = (t,)
        else:
            keys, values, metadata = _g_node_children(impl, node, _link_path(link))
            keys = tuple(keys)
            src = dict(zip(keys, values))
        return [iter(keys), src, link, pos, [], {}, 0, (t, index, metadata, keys), None]

    def pytree_frame(x, link, pos, run):
        if run > limit:
            raise _too_deep("while flattening a graph")
        keys, src, treedef = _pytree_level(x, link)
        return [iter(keys), src, link, pos, [], {}, run, None, (x, treedef, keys)]

    try:
        # size: one more than the largest index used, known when the table started empty
        if root_kind == _K_NODE:
            e = table_get(id(root))
            if e is not None:  # already split earlier in this split_context
                return (_C_NODE_REF, e[1]), (), {}, False, None
            i = len(table)
            table[id(root)] = (root, i)
            owner.append(-1)
            root_code: Any = (_C_NODE_DEF, i)
            stack = [node_frame(root, None, i)]
        elif root is None:
            return none_code, (), {}, False, None if base else len(table)
        else:
            root_code = None  # the root pytree's, when its frame is done
            stack = [pytree_frame(root, None, -1, 1)]
        root_sub: Any = None

        while stack:
            frame = stack[-1]
            it, src, link, pos, codes, sub, run, node, pt = frame
            append = codes.append
            for k in it:
                v = src[k]
                t = type(v)
                kind = kind_get(t)
                if kind is None:
                    kind = classify(v)
                if kind == _K_STATE:
                    e = table_get(id(v))
                    if e is None:
                        i = len(table)
                        table[id(v)] = (v, i)
                        owner.append(pos)
                        sub[k] = make_ref(v) if treefy else v
                        # A state under a transform's per-lane view holds a value of another
                        # shape than its stored signature: record what a rebuilt state will have.
                        append(
                            (_C_STATE_DEF, i, t,
                             v._signature if not v._flags or _held_elsewhere(v) is not None
                             else make_signature(v._value))
                        )
                    else:
                        i = e[1]
                        if i >= base and owner[i - base] > pos:
                            prepass = True
                        append((_C_STATE_REF, i, t))
                elif kind == _K_NONE:
                    append(none_code)
                elif kind == _K_STATIC:
                    append((_C_STATIC, v))
                elif kind == _K_NODE:
                    e = table_get(id(v))
                    if e is None:
                        i = len(table)
                        table[id(v)] = (v, i)
                        owner.append(pos)
                        stack.append(node_frame(v, (link, k), i))
                        break  # encode the child; this frame's loop resumes after it
                    append((_C_NODE_REF, e[1]))
                elif kind == _K_PYTREE:
                    if v is None:
                        append(none_code)
                    else:
                        stack.append(pytree_frame(v, (link, k), pos, run + 1))
                        break
                else:  # a bare TreefyState that is not a pytree
                    sub[k] = v
                    append((_C_LEAF, _link_path((link, k))))
            else:
                # Every child encoded: finish this container and hand its code and sub-mapping
                # to its parent, where the recursive call would have returned them.
                stack.pop()
                codes = tuple(codes)
                code: tuple
                if node is not None:
                    t, index, metadata, keys = node
                    records[pos] = (t, index, metadata, keys, codes)
                    code = (_C_NODE_DEF, index)
                else:
                    x, treedef, keys = pt
                    # all static: every child a static (None included), so the container is one
                    if all(c[0] == _C_STATIC for c in codes) and _g_hashable_by_value(x):
                        code = (_C_STATIC, x)
                        sub = None
                    else:
                        code = (_C_PYTREE, treedef, keys, codes)
                if not stack:  # the root
                    if node is None:
                        root_code = code
                    root_sub = sub
                    break
                parent = stack[-1]
                if sub:
                    parent[5][link[1]] = sub
                parent[4].append(code)

        size = None if base else len(table)
        return root_code, tuple(records), root_sub or {}, prepass, size
    finally:
        # The closures refer to each other through their cells: clear the cells so the call
        # leaves no reference cycle behind for the garbage collector.
        node_frame = pytree_frame = None  # type: ignore[assignment]  # noqa: F841


def _treedef_kind(td: Any) -> int:
    try:
        return _g_treedef_kinds.get(td, 0)
    except TypeError:
        return 0


def _keep_poisoned(st: Any, sig: Any) -> bool:
    """A poisoned state (value died with its trace) is rebuilt poisoned, with its signature."""
    if st._value is INVALID:
        st._signature = sig
        return True
    return False


_INDEXED = (_C_NODE_DEF, _C_NODE_REF, _C_STATE_DEF, _C_STATE_REF, _C_STATE_AT)


def index_bound(root: tuple, records: tuple) -> int:
    """One more than the largest index a GraphDef's codes use, or -1 when the indices are not
    ints or leave more than half of that range unused (then a dict holds them better)."""
    top = -1
    count = 0
    bad = False
    # the codes still to look at (a pytree code's children are pushed, not recursed into)
    todo = [root]
    pending = iter(records)
    while True:
        while todo:
            code = todo.pop()
            tag = code[0]
            if tag in _INDEXED:
                i = code[1]
                count += 1
                if type(i) is not int or i < 0:
                    bad = True
                elif i > top:
                    top = i
            elif tag == _C_PYTREE:
                todo.extend(code[3])
        rec = next(pending, None)
        if rec is None:
            break
        i = rec[1]
        count += 1
        if type(i) is not int or i < 0:
            bad = True
        elif i > top:
            top = i
        todo.extend(rec[4])
    if bad or top + 1 > 2 * count + 64:
        return -1
    return top + 1


class DecoderCore:
    """The loops of one ``graph.unflatten`` call; the graph package subclasses it with the rare
    paths (``_state``, ``_leaf``, ``_ref_to_state``) and the errors (``_raise``, ``_bad_*``).

    Holds no reference to itself: no cycles for the garbage collector.
    """

    __slots__ = ("gd", "mapping", "table", "cache", "check", "copy_hooks", "subs", "total",
                 "dicts", "leaves", "exact")

    if TYPE_CHECKING:  # the rare paths and the errors, defined by the graph package's subclass
        def _state(self, v: Any, code: tuple, keys_path: tuple) -> Any: ...
        def _state_at(self, code: tuple, keys_path: tuple) -> Any: ...
        def _ref_to_state(self, ref: Any) -> Any: ...
        def _leaf(self, path: tuple, keys_path: tuple) -> Any: ...
        def _raise(self, index: int | None, err: Any) -> None: ...
        def _bad_node_type(self, t: type) -> None: ...
        def _bad_cached_node(self, t: type, index: int, shell: Any) -> None: ...
        def _bad_signature(self, keys_path: tuple, st: Any, sig: Any) -> BaseException: ...
        def _not_a_dict(self, keys_path: tuple, value: Any) -> BaseException: ...
        def _unknown_index(self, keys_path: tuple, what: str, index: int) -> BaseException: ...
        def _bad_code(self, code: Any) -> BaseException: ...

    def __init__(self, gd: Any, mapping: Any, table: dict | None, cache: Any, check: bool,
                 copy_hooks: bool, size: int | None = None) -> None:
        # ``table``: the caller's index -> object dict (merge_context), or None for a fresh
        # one; ``size`` (from index_bound) lets the compiled twin keep that one in a list.
        self.gd = gd
        self.mapping = mapping
        self.table = {} if table is None else table
        self.cache = cache
        self.check = check
        self.copy_hooks = copy_hooks
        self.subs: dict = {}  # node index -> its sub-mapping (None: nothing below it)
        # Extra-path detection: every mapping dict reached contributes its length; every
        # entry consumed (a leaf or a sub-dict reached) must account for one of them.
        self.total = len(mapping)
        self.dicts = 0
        self.leaves = 0
        # Explicit-path codes (hand-built GraphDefs) may reach dicts the count does not see.
        self.exact = True

    def _make_shells(self, records: tuple) -> None:
        """Pass 1: every node shell exists (in the table) before anything points at it."""
        table = self.table
        cache = self.cache
        impls = _g_impls
        for rec in records:
            t, index = rec[0], rec[1]
            impl: Any = impls.get(t)
            if impl is None:
                self._bad_node_type(t)
            if cache is not None and index in cache:
                shell = cache[index]
                if type(shell) is not t:
                    self._bad_cached_node(t, index, shell)
                impl.clear(shell)
            elif impl.fast:
                shell = object.__new__(t)
            else:
                shell = impl.create_empty(rec[2])
            table[index] = shell

    def _fill(self, records: tuple) -> None:
        """Fill the shells record by record (ascending index = pre-order)."""
        subs_get = self.subs.get
        table = self.table
        impls = _g_impls
        for t, index, _, keys, codes in records:
            try:
                values = self._items(keys, codes, subs_get(index), ())
            except _g_rebuild_error as err:
                self._raise(index, err)
            impl = impls[t]
            if impl.fast:
                table[index].__dict__.update(zip(keys, values))
            else:
                shell = table[index]
                for k, v in zip(keys, values):
                    impl.set_key(shell, k, v)

    def _pytree(self, code: tuple, sub: Any, keys_path: tuple, is_root: bool) -> Any:
        """The container a PYTREE ``code`` stands for; ``sub`` is its sub-mapping (or None)."""
        if sub is not None and not is_root:
            if not isinstance(sub, dict):
                raise self._not_a_dict(keys_path, sub)
            self.dicts += 1
            self.total += len(sub)
        return _build_pytree(code, self._walk(code[2], code[3], sub, keys_path, 1))

    def _items(self, keys: tuple, codes: tuple, sub: Any, prefix: tuple) -> list:
        """Resolve the codes of one container whose sub-mapping is ``sub`` (or None)."""
        return self._walk(keys, codes, sub, prefix, 0)

    def _walk(self, keys: tuple, codes: tuple, sub: Any, prefix: tuple, run: int) -> list:
        # ``run``: the consecutive pytree levels ending at this container (0: a node's record).
        # Nested PYTREE codes are resolved on an explicit stack, one frame per container:
        # [iterator over (key, code), its sub-mapping's get (None: no sub-mapping), its path
        # below the record, children resolved so far, its PYTREE code (None: the outermost)].
        table = self.table
        table_get = table.get
        subs = self.subs
        # The common state slot (a TreefyState with the standard layout, no cache, no hook
        # copying) is rebuilt here; everything else goes through self._state.
        inline = self.cache is None and not self.copy_hooks
        check = self.check
        stack: list[list[Any]] = [
            [zip(keys, codes), sub.get if sub is not None else None, prefix, [], None]
        ]
        while True:
            frame = stack[-1]
            it, sub_get, prefix, out, _ = frame
            append = out.append
            n_leaves = 0
            for k, c in it:
                tag = c[0]
                if tag == _C_STATE_DEF:
                    st = table_get(c[1])
                    if st is None:
                        v = sub_get(k, _MISSING) if sub_get is not None else _MISSING
                        if inline and type(v) is _g_ref_type:
                            st = rebuild_state(v)
                            if st is None:
                                st = self._ref_to_state(v)
                            n_leaves += 1
                            sig = c[3]
                            if check and sig is not None and st._signature != sig and \
                                    not _keep_poisoned(st, sig):
                                self.leaves += n_leaves
                                raise self._bad_signature((*prefix, k), st, sig)
                            table[c[1]] = st
                        else:
                            st = self._state(v, c, (*prefix, k))
                    append(st)
                elif tag == _C_STATIC:
                    append(c[1])
                elif tag == _C_NODE_DEF:
                    if sub_get is not None:
                        child = sub_get(k)
                        if child is not None:
                            if not isinstance(child, dict):
                                raise self._not_a_dict((*prefix, k), child)
                            if c[1] not in subs:
                                self.dicts += 1
                                self.total += len(child)
                                subs[c[1]] = child
                    append(table[c[1]])
                elif tag == _C_NODE_REF:
                    st = table_get(c[1], _MISSING)
                    if st is _MISSING:
                        raise self._unknown_index((*prefix, k), "node", c[1])
                    append(st)
                elif tag == _C_STATE_REF:
                    st = table_get(c[1])
                    if st is None:
                        raise self._unknown_index((*prefix, k), "state", c[1])
                    append(st)
                elif tag == _C_PYTREE:
                    # what _pytree does, its children walked by a new frame
                    child = sub_get(k) if sub_get is not None else None
                    path = (*prefix, k)
                    if child is not None:
                        if not isinstance(child, dict):
                            raise self._not_a_dict(path, child)
                        self.dicts += 1
                        self.total += len(child)
                    if run + len(stack) > sys.getrecursionlimit():
                        raise _too_deep("while rebuilding a graph")
                    stack.append([zip(c[2], c[3]), child.get if child is not None else None,
                                  path, [], c])
                    break
                elif tag == _C_LEAF:
                    self.exact = False
                    append(self._leaf(c[1], (*prefix, k)))
                elif tag == _C_STATE_AT:
                    self.exact = False
                    st = table_get(c[1])
                    if st is None:
                        st = self._state_at(c, (*prefix, k))
                    append(st)
                else:
                    raise self._bad_code(c)
            else:
                if n_leaves:
                    self.leaves += n_leaves
                stack.pop()
                code = frame[4]
                if code is None:
                    return out
                stack[-1][3].append(_build_pytree(code, out))
                continue
            if n_leaves:  # left to walk a nested pytree: count what this frame consumed
                self.leaves += n_leaves


def _build_pytree(code: tuple, children: list) -> Any:
    """The container of PYTREE ``code`` holding ``children``."""
    treedef = code[1]
    kind = _treedef_kind(treedef)
    if kind == _LIST_KIND:
        return children
    if kind == _TUPLE_KIND:
        return tuple(children)
    if kind == _DICT_KIND:
        return dict(zip(code[2], children))
    return treedef.unflatten(children)
