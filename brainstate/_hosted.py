"""State classes that cannot take the core's layout: hosted on a plain-Python state core.

``StateCore`` (compiled, or the pure twin's slotted class) fixes the instance layout of every
state. A class that also inherits another base with its own layout (``__slots__`` or a C
struct), such as brainpy's ``class Variable(brainstate.State, Array)`` whose ``Array`` declares
``__slots__ = ('_value',)``, cannot be built on it: CPython refuses the class statement
("multiple bases have instance lay-out conflict").

``StateMeta`` (the metaclass of the ``State`` family) catches that case and builds the class on
*hosted twins* instead: for each state class among the bases, a copy of its namespace whose
root is ``HostedStateCore``, a plain-Python core with no layout of its own that keeps the
same fields in the instance ``__dict__`` (or in a base's slot of the same name, as brainpy's
``_value``). The class behaves as a state everywhere: signature checks, hooks, trace
recording, transforms, graph walks and checkpoints, through the same core functions (they
take the attribute path for a state that is not a ``StateCore``). ``isinstance`` and
``issubclass`` against the named state classes hold through the metaclass.

What it costs: the hosted class's reads and writes run in Python (the pure twin's speed). Any
metaclass takes ``isinstance(x, <state class>)`` off CPython's exact-``type`` fast path (~40 ns
more per Python-level check that is not an exact type match); once a hosted class exists the
check is ``StateMeta.__instancecheck__``, in Python. Classes that do not conflict keep the
compiled core untouched, and the core's own type checks are C-level.
"""

from __future__ import annotations

import logging
import types
import typing
from typing import Any

import jax

from brainstate._core_constants import FLAG_TRACER, FLAG_VIEW
from brainstate._impl import core as _core
from brainstate._core_py import _hooks as _dispatch  # the pure dispatch, under either core
from brainstate._messages import make_error

__all__ = ["HostedStateCore", "StateMeta", "is_hosted"]

_log = logging.getLogger("brainstate")

_VIEW = FLAG_VIEW  # the value is a transform's per-lane view (the cores' flag of the same name)
_TRACER = FLAG_TRACER  # the value holds a JAX tracer
_OPS = ("write", "restore")

# The core's fields: what ``vars(state)`` holds besides user metadata on a hosted state.
CORE_FIELDS = frozenset(("_value", "_sig", "_trace_ref", "_level", "_been_writen", "_flags",
                         "_hooks_manager", "_source_info", "_name", "tag"))


def _has_tracer(value: Any) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value))


_LEAF = jax.tree_util.tree_structure(0)


def same_structure(a: Any, b: Any) -> bool:
    """Whether signatures ``a`` and ``b`` have one tree structure (the single-array form,
    ``treedef=None``, is a leaf)."""
    return (a.treedef if a.treedef is not None else _LEAF) == (
        b.treedef if b.treedef is not None else _LEAF)


def _normalize_tag(tag: Any) -> Any:
    if tag is None:
        return None
    return {tag} if isinstance(tag, str) else set(tag)


def record_access(st: Any, write: bool) -> None:
    """Record a read (or write) of ``st`` on this thread's frames at or above its level."""
    stack = _core.get_context().state_stack
    for i in range(st._level, len(stack)):
        if write:
            stack[i].write_its_value(st)
        else:
            stack[i].read_its_value(st)


def _strict_guard(st: Any) -> None:
    # check_state_jax_tracer(): refuse any mutation from a JAX trace other than the state's own
    if _core.get_context().jax_tracer_check[-1] and st._trace_ref is not _core.current_trace_ref():
        raise make_error("strict_attr", st)


_set = object.__setattr__


class HostedStateCore:
    """The state core in plain Python, with no instance layout of its own.

    The contract of ``StateCore`` (``brainstate/_core_py/`` is its reference): the same
    fields, the same order of checks, recording and hooks on a write, the same transform
    entry points. It talks to the active core through its public functions, so trace frames,
    hooks and rebind epochs are shared with the compiled states.
    """

    # Defaults for a state made without ``__init__`` (``cls.__new__`` then ``_init_from``,
    # as copies, refs and unpickling do). ``_value`` has none: it may be a base's slot.
    _sig: Any = None
    _trace_ref: Any = None
    _level: int = 0
    _been_writen: bool = False
    _flags: int = 0
    _hooks_manager: Any = None
    _source_info: Any = None
    _name: Any = None
    tag: Any = None
    _value: Any  # declared only (no class default): it may be a base's slot

    def __init__(self, value: Any, name: Any = None, **metadata: Any) -> None:
        tag = _normalize_tag(metadata.pop("tag", None))
        if isinstance(value, _metadata_type):
            metadata.update(value.metadata)
            value = value.raw_value
        if "type" in metadata:
            raise TypeError(
                f"{type(self).__name__}(..., type=...): 'type' cannot be a state's metadata key: "
                "the state's snapshot keeps the state class under that name. Use another key, "
                "e.g. 'kind'.")
        if is_state(value):
            value = value.value
        self._init_from(value, _core.capture_site())
        _set(self, "_been_writen", False)
        _set(self, "_hooks_manager", None)
        _set(self, "_name", name)
        _set(self, "tag", tag)
        for k, v in metadata.items():
            _set(self, k, v)
        for catcher in tuple(_core.get_context().new_state_catcher):
            catcher.append(self)
        if _core.hooks_active():
            init_md = {"_name": name, "tag": tag}
            init_md.update(metadata)
            _dispatch.dispatch_init(self, value, init_md)

    __hash__ = object.__hash__  # identity (a base's value-based __eq__ must not change it)

    def __setattr__(self, name: str, value: Any) -> None:
        _strict_guard(self)
        _set(self, name, value)

    def _setattr_no_check(self, name: str, value: Any) -> None:
        """Set an attribute bypassing the strict attribute guard."""
        _set(self, name, value)

    # -- reading and writing --
    @property
    def value(self) -> Any:
        """The state's current value (a PyTree of arrays); assign to replace it."""
        if self._value is _core.INVALID:
            raise make_error("poisoned", self, "read")
        record_access(self, False)  # (first sight under a transform installs its view: read after)
        v = self._value
        if _core.hooks_active():
            _dispatch.dispatch_read(self, v)
        return v

    @value.setter
    def value(self, v: Any) -> None:
        self._write(v, True)

    def _write(self, v: Any, fire_before: bool) -> None:
        # the order of _core_py's StateCore._write: State value, tracer guard, signature, strict
        # attribute guard; all before any hook, recording or mutation
        if is_state(v):
            raise make_error("set_state", self, v)
        code, has_tracer = self._check(0, v)
        if has_tracer and not _core.get_context().state_stack:
            if self._trace_ref is not _core.current_trace_ref():
                raise make_error("tracer_write", self)
        if code < 0:
            raise self._mismatch(0, v)
        _strict_guard(self)
        old = self._value
        hooked = _core.hooks_active()
        if hooked and fire_before:
            nv = _dispatch.dispatch_write_before(self, v, old)
            if nv is not v:
                code, has_tracer = self._check(0, nv)
                if code < 0:
                    raise self._mismatch(0, nv)
                v = nv
        record_access(self, True)
        self._store(v, has_tracer, code)
        _set(self, "_been_writen", True)
        if hooked:
            _dispatch.dispatch_write_after(self, v, old)

    def _check(self, op: int, v: Any) -> tuple[int, bool]:
        """``(code, has tracer)``: 1 matches, 0 re-bind (``check_state_value_tree(False)``),
        -1 mismatch; op 0 compares a write, 1 a restore (tree structure under a view)."""
        has_tracer = _has_tracer(v)
        if _core.is_rebinding():
            return 0, has_tracer
        got = _core.make_signature(v)
        if self._flags & (_VIEW | _TRACER) and self._value is not _core.INVALID:
            held = _core.make_signature(self._value)
            same = held == got if op == 0 else same_structure(held, got)
            return (1 if same else -1), has_tracer
        return (1 if got == self._sig else -1), has_tracer

    def _mismatch(self, op: int, v: Any) -> BaseException:
        if self._flags & (_VIEW | _TRACER) and self._value is not _core.INVALID:
            expected = _core.make_signature(self._value)
        else:
            expected = self._sig
        return make_error("signature", self, _OPS[op], expected, v)

    def _store(self, v: Any, has_tracer: bool, code: int) -> None:
        _set(self, "_value", v)
        _set(self, "_flags", (self._flags & _VIEW) | (_TRACER if has_tracer else 0))
        if code == 0:
            _set(self, "_sig", _core.make_signature(v))
            _core.note_rebind()

    def restore_value(self, v: Any) -> None:
        """Replace the value without the write path: no tracer guard, no write hooks."""
        if is_state(v):
            raise make_error("set_state", self, v)
        code, has_tracer = self._check(1, v)
        if code < 0:
            raise self._mismatch(1, v)
        _strict_guard(self)
        record_access(self, False)
        old = self._value
        self._store(v, has_tracer, code)
        _set(self, "_flags", self._flags & ~_VIEW)
        if _core.hooks_active():
            _dispatch.dispatch_restore(self, v, old)

    # -- what transforms call --
    def _write_no_before(self, v: Any) -> None:
        self._write(v, False)

    def _set_view(self, v: Any) -> None:
        _set(self, "_value", v)
        _set(self, "_flags", self._flags | _VIEW)

    def _restore_rebind(self, v: Any) -> None:
        _core.note_rebind()
        old = self._value
        _set(self, "_value", v)
        _set(self, "_sig", _core.make_signature(v))
        _set(self, "_flags", _TRACER if _has_tracer(v) else 0)
        if _core.hooks_active():
            _dispatch.dispatch_restore(self, v, old)

    def _restore_silent(self, v: Any) -> None:
        _set(self, "_value", v)
        _set(self, "_flags", _TRACER if _has_tracer(v) else 0)

    def _invalidate_trace_value(self) -> None:
        _set(self, "_value", _core.INVALID)
        _set(self, "_flags", 0)

    def _read_value(self) -> Any:
        self.check_if_deleted()
        return self._value

    def _write_value(self, v: Any) -> None:
        """The raw store under a subclass's own ``value`` setter (which checked ``v``).

        The signature follows the stored value, so what the setter allowed (brainpy's
        ``Variable`` accepts another batch size along its batch axis) stays consistent with
        what the transforms see.
        """
        _set(self, "_value", v)
        sig = _core.make_signature(v)
        if sig != self._sig:
            _set(self, "_sig", sig)
            _core.note_rebind()
        _set(self, "_flags", _TRACER if _has_tracer(v) else 0)

    def check_if_deleted(self) -> None:
        """Hook for subclasses that materialise their value lazily (no-op here)."""

    def numel(self) -> int:
        """Total number of elements over all leaves of the value."""
        if self._value is _core.INVALID:
            raise make_error("poisoned", self, "numel")
        return sum(int(getattr(leaf, "size", 1)) for leaf in jax.tree_util.tree_leaves(self._value))

    @property
    def _signature(self) -> Any:
        """The stored abstract signature."""
        return self._sig

    @_signature.setter
    def _signature(self, sig: Any) -> None:
        if not isinstance(sig, _core.Signature):
            raise TypeError(f"Argument 'sig' has incorrect type (expected Signature, got "
                            f"{type(sig).__name__})")
        _set(self, "_sig", sig)
        _core.note_rebind()

    @property
    def stack_level(self) -> int:
        """The trace-stack depth this state belongs to."""
        return self._level

    @stack_level.setter
    def stack_level(self, level: int) -> None:
        _set(self, "_level", level)

    def increase_stack_level(self) -> None:
        _set(self, "_level", self._level + 1)

    def decrease_stack_level(self) -> None:
        _set(self, "_level", max(self._level - 1, 0))

    def _init_from(self, value: Any, site: Any) -> None:
        """Bind a state built without ``__init__`` (copy, ref, unpickle) to ``value``."""
        _set(self, "_value", value)
        _set(self, "_sig", _core.make_signature(value))
        _set(self, "_flags", _TRACER if _has_tracer(value) else 0)
        _set(self, "_trace_ref", _core.current_trace_ref())
        _set(self, "_level", _core.stack_level())
        _set(self, "_source_info", site if site is not None else _core.capture_site())

    def _trace_is_valid(self) -> bool:
        return self._trace_ref is _core.current_trace_ref()

    def _recapture_trace(self) -> None:
        _set(self, "_trace_ref", _core.current_trace_ref())
        _set(self, "_level", _core.stack_level())


_metadata_type: type[Any] = type(None)  # brainstate.StateMetadata, set by configure()


def configure(metadata_type: type) -> None:
    """Name the ``StateMetadata`` type (called by ``brainstate._wiring`` with the cores'
    configuration)."""
    global _metadata_type
    _metadata_type = metadata_type


def is_hosted(cls: type) -> bool:
    """Whether state class ``cls`` is built on ``HostedStateCore``."""
    return isinstance(cls, type) and issubclass(cls, HostedStateCore)


def is_state(x: Any) -> bool:
    """Whether ``x`` is a state of either core layout (no metaclass dispatch)."""
    return isinstance(x, (_core.StateCore, HostedStateCore))


# --- the metaclass ----------------------------------------------------------------------------

_TWINS: dict = {}  # state class -> its hosted twin


def _layout_conflict(exc: TypeError) -> bool:
    msg = str(exc)
    return "lay-out conflict" in msg or "layout conflict" in msg


def _with_class_cell(fn: Any, cls: type) -> Any:
    """``fn`` rebuilt so that zero-argument ``super()`` inside it refers to ``cls``."""
    if not isinstance(fn, types.FunctionType) or "__class__" not in fn.__code__.co_freevars:
        return fn
    assert fn.__closure__ is not None  # a function with free variables has a closure
    cells = tuple(types.CellType(cls) if name == "__class__" else cell
                  for name, cell in zip(fn.__code__.co_freevars, fn.__closure__))
    new = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, cells)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__dict__.update(fn.__dict__)
    new.__qualname__, new.__doc__, new.__module__ = fn.__qualname__, fn.__doc__, fn.__module__
    new.__annotations__ = fn.__annotations__
    return new


def _rebind_member(obj: Any, cls: type) -> Any:
    if isinstance(obj, (staticmethod, classmethod)):
        return type(obj)(_with_class_cell(obj.__func__, cls))
    if isinstance(obj, property):
        fget, fset, fdel = (_with_class_cell(f, cls) if f is not None else None
                            for f in (obj.fget, obj.fset, obj.fdel))
        return property(fget, fset, fdel, obj.__doc__)
    return _with_class_cell(obj, cls)


def _twin(base: type) -> type:
    """The hosted twin of ``base``: ``base`` itself unless it is built on the core's layout."""
    if base is _core.StateCore:
        return HostedStateCore
    if not (isinstance(base, type) and issubclass(base, _core.StateCore)):
        return base
    twin = _TWINS.get(base)
    if twin is None:
        slots = base.__dict__.get("__slots__", ())
        slots = (slots,) if isinstance(slots, str) else tuple(slots)
        skip = {"__dict__", "__weakref__", "__slots__", *slots}
        ns = {k: v for k, v in base.__dict__.items() if k not in skip}
        ns["__qualname__"] = f"{base.__qualname__}[hosted]"
        ns["_hosted_twin_of"] = base
        twin = type.__new__(type(base), base.__name__, tuple(_twin(b) for b in base.__bases__), ns)
        for k, v in ns.items():
            new = _rebind_member(v, twin)
            if new is not v:
                type.__setattr__(twin, k, new)
        _TWINS[base] = twin
        _register_hosted(twin)
    return twin


# Every hosted class (the twins and the classes built on them) -> the state classes it stands
# for through its twins. Classes are kept alive by it, as by any class registry.
_HOSTED: dict = {}


def _register_hosted(cls: type) -> None:
    _HOSTED[cls] = tuple(k.__dict__["_hosted_twin_of"] for k in cls.__mro__
                         if "_hosted_twin_of" in k.__dict__)


def _stands_for(cls: type, hosted: type) -> bool:
    return type.__subclasscheck__(cls, hosted) or any(
        type.__subclasscheck__(cls, o) for o in _HOSTED[hosted])


def _instancecheck(cls: type, instance: Any) -> bool:
    t = type(instance)
    if t in _HOSTED:
        return _stands_for(cls, t)
    return type.__instancecheck__(cls, instance)


def _subclasscheck(cls: type, sub: Any) -> bool:
    if sub in _HOSTED:
        return _stands_for(cls, sub)
    return type.__subclasscheck__(cls, sub)


class StateMeta(type):
    """Metaclass of the ``State`` family: hosts classes whose bases conflict in layout.

    ``isinstance``/``issubclass`` dispatch is installed only when the first hosted class is
    made, so a program without one pays no Python-level check.

    ``dir()`` of a state class (what ``help()`` and completion on the class list) leaves out
    the core's machinery: Cython's pickling helpers and vtable, the core's slot annotations,
    the typing bookkeeping of ``Generic`` and ``__signature__`` (``help()`` prints it as the
    call signature). The attributes stay reachable, and ``dir(state)`` of an instance lists
    everything, as for any object.
    """

    _root: Any = None  # the family's root (``State``): the first class built on StateCore

    def __new__(mcls, name: str, bases: tuple, ns: dict, **kwargs: Any):
        try:
            cls = super().__new__(mcls, name, bases, ns, **kwargs)
            if StateMeta._root is None and _core.StateCore in bases:
                StateMeta._root = cls
            elif issubclass(cls, HostedStateCore):  # a subclass of a hosted class
                _register_hosted(cls)
            return cls
        except TypeError as exc:
            if not _layout_conflict(exc) or not any(
                    isinstance(b, type) and issubclass(b, _core.StateCore) for b in bases):
                raise
        hosted_bases = tuple(_twin(b) for b in bases)
        cls = super().__new__(mcls, name, hosted_bases, ns, **kwargs)
        _register_hosted(cls)
        _install_virtual_checks()
        _log.debug("%s.%s: its bases conflict with the compiled state layout; built on "
                   "HostedStateCore (plain-Python reads and writes)", cls.__module__,
                   cls.__qualname__)
        return cls

    def __dir__(cls) -> list[str]:
        return [name for name in type.__dir__(cls) if not _is_internal(cls, name)]


# Names that say nothing about a state class's API: Cython's generated members, typing's
# bookkeeping of generic classes, the signature object ``help()`` already prints as the
# class's call signature.
_INTERNAL_NAMES = frozenset(("__pyx_vtable__", "__orig_bases__", "__parameters__",
                             "__orig_class__", "__signature__"))
# Names hidden only where the class that defines them is one of the internal bases below
# (a user's class with its own ``__annotations__`` or ``__init_subclass__`` keeps them).
_INTERNAL_WHEN_INHERITED = frozenset(("__annotations__", "__setstate__", "__init_subclass__",
                                      "__class_getitem__"))
_CORE_MODULES = ("brainstate._core", "brainstate._core_py")


def _is_internal(cls: type, name: str) -> bool:
    if name in _INTERNAL_NAMES or name.startswith("__pyx_") or name.endswith("_cython__"):
        return True
    if name not in _INTERNAL_WHEN_INHERITED:
        return False
    owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
    if name == "__annotations__" and owner is not None and not owner.__dict__[name]:
        return True  # empty: the body annotates only for the type checker (under TYPE_CHECKING)
    return owner is not None and (owner is typing.Generic or owner is HostedStateCore
                                  or owner.__module__ in _CORE_MODULES)


def _install_virtual_checks() -> None:
    if "__instancecheck__" not in StateMeta.__dict__:
        StateMeta.__instancecheck__ = _instancecheck  # type: ignore[method-assign]
        StateMeta.__subclasscheck__ = _subclasscheck  # type: ignore[method-assign]
        _accept_hosted_init(StateMeta._root)


def _accept_hosted_init(root: type) -> None:
    """Let ``State.__init__(obj, ...)`` initialise a hosted state too.

    Code written for upstream's plain-Python ``State`` calls ``brainstate.State.__init__(self,
    value)`` explicitly on its own instances (brainpy's ``Variable``); the compiled constructor
    refuses an instance that is not of its layout. Installed with the first hosted class, so
    programs without one keep the compiled constructor (a Python ``__init__`` would cost every
    state creation a Python call).
    """
    core_init = _core.StateCore.__init__

    def __init__(self, value: Any, name: Any = None, **metadata: Any) -> None:
        if isinstance(self, _core.StateCore):
            core_init(self, value, name, **metadata)
        else:
            HostedStateCore.__init__(self, value, name, **metadata)

    __init__.__qualname__ = f"{root.__qualname__}.__init__"
    __init__.__module__ = root.__module__
    type.__setattr__(root, "__init__", __init__)
