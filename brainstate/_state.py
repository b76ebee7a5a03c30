"""``State`` and its family: typed, checked, mutable slots holding a PyTree of arrays.

The hot paths (``.value`` get/set, ``restore_value``, the signature check, trace recording,
hook dispatch) live in the core's ``StateCore`` (compiled ``brainstate._core`` or its pure twin);
this module adds everything around them: construction helpers, copies, refs, names, tags,
hooks API, repr and pickling.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import threading
from typing import (
    TYPE_CHECKING, Any, Callable, Generic, Iterable, Iterator, Self, Sequence, TypeVar, cast,
    overload,
)

import jax
import numpy as np

from brainstate._hosted import CORE_FIELDS as _HOSTED_FIELDS
from brainstate._hosted import HostedStateCore, StateMeta, record_access, same_structure
from brainstate._impl import core as _core
from brainstate._messages import attach_site, describe_state
from brainstate._signature import _unit_of
from brainstate.util.filter import to_predicate

if TYPE_CHECKING:
    from brainstate._trace import StateJaxTracer

_HOOKS_MANAGER_LOCK = threading.Lock()  # guards the lazy creation of a state's HookManager

__all__ = [
    "State",
    "ShortTermState",
    "LongTermState",
    "ParamState",
    "BatchState",
    "HiddenState",
    "DelayState",
    "NonBatchState",
    "HiddenGroupState",
    "HiddenTreeState",
    "FakeState",
    "TreefyState",
    "StateMetadata",
    "maybe_state",
    "check_state_value_tree",
    "check_state_jax_tracer",
    "catch_new_states",
    "NewStateCatcher",
    "record_state_value_read",
    "record_state_value_write",
    "record_state_value_restore",
]


T = TypeVar("T")  # the type of a state's value: ``State[jax.Array]``


@dataclasses.dataclass
class StateMetadata(Generic[T]):
    """A raw value bundled with metadata; ``State(StateMetadata(v, {'unit': 'mV'}))``."""

    raw_value: T
    metadata: dict = dataclasses.field(default_factory=dict)


class _Unchanged:
    """The default of ``State.replace(value=...)``: keep the current value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unchanged>"


_MISSING: Any = _Unchanged()
# Attributes that belong to the core's slots; everything else lives in the instance __dict__.
_CORE_ATTRS = ("_name", "tag", "_been_writen")
# Never carried by refs into a new state (ours: a rebuilt state owns its identity and hooks).
_NOT_ADOPTED = ("_source_info", "_hooks_manager", "_trace_state", "_level", "_value")


def _abstract(x: Any) -> Any:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None and dtype is not None:
        return jax.ShapeDtypeStruct(tuple(shape), dtype)
    return x


class _ClassSignature:
    """``cls.__signature__`` for classes built on the compiled core, computed per class.

    ``inspect.signature`` cannot read a compiled ``__init__``: this gives the constructor's
    documented signature for classes that inherit it, and the signature of a subclass's own
    Python ``__init__`` (without ``self``) for classes that define one.
    """

    _CORE = inspect.Signature([
        inspect.Parameter("value", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
        inspect.Parameter("metadata", inspect.Parameter.VAR_KEYWORD),
    ])

    def __get__(self, instance: Any, owner: type) -> inspect.Signature | None:
        if instance is not None:
            return None  # a state is not callable
        for klass in owner.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            if inspect.isfunction(init):
                sig = inspect.signature(init)
                return sig.replace(parameters=list(sig.parameters.values())[1:])
            return self._CORE  # the compiled core's constructor
        return self._CORE


class State(_core.StateCore, Generic[T], metaclass=StateMeta):
    """A typed, mutable slot holding a PyTree of arrays.

    Read through ``.value`` and replace by assigning to it. The first value fixes the state's
    abstract signature (tree structure, each leaf's shape and dtype); every later write or
    restore is checked against it and a mismatch raises :class:`StateSignatureError` before
    anything changes.

    Parameters
    ----------
    value : PyTree
        The initial value. A ``StateMetadata`` is unwrapped (its metadata merged into
        ``metadata``); a ``State`` contributes its current value.
    name : str, optional
        A display name, used in error messages.
    **metadata
        ``tag`` (a string or an iterable of strings, normalised to a set) and any custom
        attributes (``State(x, unit='mV').unit == 'mV'``).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> st = brainstate.State(jnp.zeros(3), name='v')
    >>> st.value = jnp.ones(3)
    >>> st.value = jnp.ones(4)
    Traceback (most recent call last):
    ...
    brainstate.StateSignatureError: Cannot write State 'v' ...

    ``State`` is generic in the type of its value, for type checkers: ``State(jnp.zeros(3))``
    is a ``State[jax.Array]`` whose ``.value`` is a ``jax.Array``, and ``State[int]``,
    ``ParamState[jax.Array]``, ... are valid annotations (and subscriptable at run time).

    >>> import jax
    >>> def reset(st: brainstate.State[jax.Array]) -> None:
    ...     st.value = jnp.zeros_like(st.value)
    >>> reset(st)
    >>> brainstate.State[jax.Array](jnp.ones(2)).value
    Array([1., 1.], dtype=float32)

    A subclass may combine ``State`` with bases that have their own instance layout (a class
    with ``__slots__``, as brainpy's ``class Variable(State, Array)``): it is then built on the
    plain-Python state core (same behaviour, Python-speed reads and writes; see
    ``brainstate/_hosted.py``).

    Notes
    -----
    Differs from upstream: brainstate 0.5.4 types ``.value`` as ``PyTree[ArrayLike]`` for
    every state and its subclasses are not generic; here ``.value`` has the class's type
    parameter and ``ParamState[...]``, ``HiddenState[...]``, ... carry it. ``State[T](x)``
    does not record ``__orig_class__`` on the instance (upstream keeps it in the instance
    dict, from where it travels into refs and checkpoints as metadata).
    """

    __module__ = "brainstate"
    __signature__ = _ClassSignature()

    if TYPE_CHECKING:
        # What type checkers see of the core's constructor, ``value`` and ``restore_value``
        # (the core's own stub types them ``Any``); at run time the core's versions stay, so
        # reads and writes pay nothing for the typing.
        @overload
        def __init__(self, value: State[T], name: Any = None, **metadata: Any) -> None: ...
        @overload
        def __init__(self, value: StateMetadata[T], name: Any = None,
                     **metadata: Any) -> None: ...
        @overload
        def __init__(self, value: T, name: Any = None, **metadata: Any) -> None: ...
        def __init__(self, value: Any, name: Any = None, **metadata: Any) -> None: ...

        @property
        def value(self) -> T: ...
        @value.setter
        def value(self, v: T) -> None: ...

        def restore_value(self, v: T) -> None: ...

    @property
    def __orig_class__(self) -> Any:
        # ``State[int](x)`` makes a plain ``State`` and typing then tries to record the alias
        # on the instance, where it would become metadata (carried by refs, checkpoints and
        # treedefs). Without a setter the write raises AttributeError, which typing ignores.
        raise AttributeError("__orig_class__")

    # --- names, tags, levels, sites ---

    @property
    def name(self) -> Any:
        """The state's display name (``None`` when unnamed)."""
        return self._name

    @name.setter
    def name(self, name: Any) -> None:
        self._setattr_no_check("_name", name)

    def add_tag(self, tag: str) -> None:
        """Add ``tag`` to the state's tag set (created when absent)."""
        if self.tag is None:
            self.tag = {tag}
        else:
            self.tag.add(tag)

    @property
    def source_info(self) -> Any:
        """Where the state was created (a ``SourceSite``, or ``None``)."""
        return self._source_info

    @property
    def _trace_state(self) -> StateJaxTracer:
        from brainstate._trace import StateJaxTracer

        return StateJaxTracer(self._trace_ref)

    @_trace_state.setter
    def _trace_state(self, tracer: Any) -> None:
        self._trace_ref = tracer._trace_ref

    def raise_error_with_source_info(self, error: BaseException):
        """Raise ``error`` with the state's creation site attached."""
        raise attach_site(error, self)

    def _check_value_tree(self, v: Any) -> None:
        """Raise ``StateSignatureError`` if ``v``'s tree structure differs from the state's.

        Upstream's hook for subclasses that define their own ``value`` setter: the structure
        is checked here and the setter decides about shapes and dtypes (brainpy's ``Variable``
        accepts another batch size along its batch axis). ``State.value`` itself checks the
        whole signature. Changes nothing; inside ``check_state_value_tree(False)`` every
        value passes.
        """
        if _core.is_rebinding():
            return
        expected = self._signature
        got = _core.make_signature(v)
        if got != expected and not same_structure(expected, got):
            raise _impl_error_signature(self, "check", v)

    def value_call(self, func: Callable) -> Any:
        """``jax.tree.map(func, self.value)``."""
        return jax.tree.map(func, self.value)

    @classmethod
    def init(cls, fn: Callable, in_size: Any, batch_size: int | None = None,
             tag: Any = None) -> Self:
        """Build a state whose value is ``fn(shape)``; shape = ``(batch_size?, *in_size)``."""
        size = (in_size,) if isinstance(in_size, int) else tuple(in_size)
        if batch_size is not None:
            size = (batch_size,) + size
        value = fn(size) if callable(fn) else fn
        return cls(value, tag=tag)

    # --- hooks ---

    @property
    def hooks(self) -> Any:
        """The state's ``HookManager`` (created on first use; stable identity).

        The core keeps it in ``_hooks_manager``, ``None`` until then: the hot paths read that
        and skip a state without hooks.
        """
        mgr = self._hooks_manager
        if mgr is None:
            from brainstate._hooks import HookManager

            # two threads registering a state's first hooks must share one manager: a second
            # one would replace the first and drop the hooks registered on it
            with _HOOKS_MANAGER_LOCK:
                mgr = self._hooks_manager
                if mgr is None:
                    mgr = HookManager()
                    self._setattr_no_check("_hooks_manager", mgr)
        return mgr

    def register_hook(self, hook_type: str, callback: Callable, priority: int = 0,
                      name: str | None = None, enabled: bool = True) -> Any:
        """Register ``callback`` for ``hook_type`` on this state; returns a ``HookHandle``."""
        return self.hooks.register_hook(hook_type, callback, priority, name, enabled)

    def unregister_hook(self, handle: Any) -> bool:
        """Remove the hook behind ``handle``; False if it was not registered here."""
        mgr = self._hooks_manager
        return False if mgr is None else mgr.unregister_hook(handle)

    def list_hooks(self, hook_type: str | None = None) -> list:
        """The hooks of ``hook_type`` (all five types when ``None``, init included)."""
        return self.hooks.get_hooks(hook_type)

    def clear_hooks(self, hook_type: str | None = None) -> None:
        """Remove the hooks of ``hook_type`` (all when ``None``)."""
        mgr = self._hooks_manager
        if mgr is not None:
            mgr.clear_hooks(hook_type)

    def has_hooks(self, hook_type: str | None = None) -> bool:
        """Whether a hook of ``hook_type`` (any when ``None``) is registered."""
        return self.hooks.has_hooks(hook_type)

    @contextlib.contextmanager
    def temporary_hook(self, hook_type: str, callback: Callable, priority: int = 0):
        """Register a hook for the duration of a ``with`` block (removed also on error)."""
        handle = self.register_hook(hook_type, callback, priority)
        try:
            yield handle
        finally:
            handle.remove()

    # --- copies and refs ---

    def _attr_dict(self) -> dict:
        """The state's attributes as upstream's instance dict would hold them."""
        attrs = {"_name": self._name, "_been_writen": self._been_writen, "tag": self.tag}
        d = self.__dict__
        if d and isinstance(self, HostedStateCore):  # its core fields live in the dict too
            d = {k: v for k, v in d.items() if k not in _HOSTED_FIELDS}
        attrs.update(d)
        return attrs

    def _blank(self) -> Self:
        return type(self).__new__(type(self))  # type: ignore[return-value]  # (core stub)

    def _adopt(self, attrs: dict) -> None:
        for k, v in attrs.items():
            if k not in _NOT_ADOPTED:
                self._setattr_no_check(k, v)

    def copy(self) -> Self:
        """A new state of the same class sharing the value; fresh identity, no hooks."""
        new = self._blank()
        new._adopt(self._attr_dict())
        new._setattr_no_check("_been_writen", False)
        new._init_from(self._value, None)
        _keep_poisoned_signature(new, self)
        return new

    def replace(self, value: Any = _MISSING, **attrs: Any) -> Self:
        """A new state with ``attrs`` (raw attribute names) and optionally a new value."""
        if isinstance(value, State):
            if type(value) is not type(self):
                raise ValueError(
                    f"Cannot replace value from incompatible container, expected "
                    f"{type(self).__name__}, got {type(value).__name__}."
                )
            return value.replace(**attrs) if attrs else value
        new = self._blank()
        merged = self._attr_dict()
        merged.update(attrs)
        v = merged.pop("_value", self._value if value is _MISSING else value)
        new._adopt(merged)
        new._init_from(v, self._source_info)
        # upstream: a replaced state shares the original's trace identity and hook manager
        new._setattr_no_check("_trace_ref", self._trace_ref)
        new._setattr_no_check("_level", self._level)
        new._setattr_no_check("_hooks_manager", self._hooks_manager)
        return new

    def copy_from(self, other: Self) -> None:
        """Adopt ``other``'s value and metadata, keeping own identity, level, site and hooks."""
        if type(self) is not type(other):
            raise ValueError(
                f"Cannot copy from incompatible container, expected {type(self).__name__}, "
                f"got {type(other).__name__}."
            )
        if self is other:
            return
        if other._signature != self._signature and not _core.is_rebinding():
            raise _impl_error_signature(self, "copy from", other._value)
        self._adopt(other._attr_dict())
        self._setattr_no_check("_value", other._value)
        self._setattr_no_check("_signature", other._signature)
        # the value's tracer/view status travels with it (the under-a-view check reads it)
        self._setattr_no_check("_flags", other._flags)

    def to_state_ref(self) -> TreefyState[T]:
        """A ``TreefyState`` snapshot of this state (value plus metadata)."""
        attrs = {"_source_info": self._source_info, "_hooks_manager": self._hooks_manager}
        attrs.update(self._attr_dict())
        return TreefyState(type(self), self._value, **attrs)

    def update_from_ref(self, ref: "TreefyState") -> None:
        """Update from a ref: metadata copied, value written (or restored if never written).

        Keeps this state's own hook manager, trace identity, level and creation site (upstream
        replaces the hook manager, silently dropping every hook). Nothing changes when the
        value does not match the signature.
        """
        md = ref.get_metadata()
        before = {k: v for k, v in self._attr_dict().items() if k in md}
        self._adopt(md)
        try:
            if md.get("_been_writen", True):
                self.value = ref.value
            else:
                self.restore_value(ref.value)
        except BaseException:
            for k in md:
                if k in _NOT_ADOPTED:
                    continue
                if k in before:
                    self._setattr_no_check(k, before[k])
                else:
                    self.__dict__.pop(k, None)
            raise

    # --- display and pickling ---

    def __repr__(self) -> str:
        try:
            value = jax.tree.map(_abstract, self._value)
        except Exception:  # repr never raises (poisoned or odd values)
            value = self._value
        parts = [f"value={value!r}"]
        if self._name is not None:
            parts.append(f"name={self._name!r}")
        if self.tag is not None:
            parts.append(f"tag={self.tag!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __reduce__(self) -> tuple:
        """Pickle support: the class, the value and the metadata (no hooks)."""
        # A core-neutral form: a pickle made under one core loads under the other. Hooks are
        # not pickled (callbacks may not be); trace identity and level are those of the loader.
        # The poison sentinel belongs to one core, so a poisoned state pickles as a flag.
        if self._value is _core.INVALID:
            sig = self._signature
            return (_rebuild_state, (type(self), None, self._attr_dict(),
                                     (sig.treedef, sig.specs, sig.shape, sig.dtype)))
        return (_rebuild_state, (type(self), self._value, self._attr_dict()))

    def __copy__(self) -> Self:
        """``copy.copy``: a new state of the same class, sharing the value (no hooks)."""
        new = _rebuild_state(type(self), self._value, self._attr_dict())
        _keep_poisoned_signature(new, self)
        return new

    def __deepcopy__(self, memo: dict) -> Self:
        """``copy.deepcopy``: a new state of the same class with a deep copy of the value."""
        import copy

        new = _rebuild_state(type(self), copy.deepcopy(self._value, memo),
                             copy.deepcopy(self._attr_dict(), memo))
        _keep_poisoned_signature(new, self)
        memo[id(self)] = new
        return new


def record_state_value_read(st: State) -> None:
    """Record a read of ``st`` on this thread's trace frames at or above its stack level.

    For subclasses that define their own ``value`` property (upstream's API, used by
    brainpy's ``Variable``); ``State.value`` records by itself.
    """
    record_access(st, False)


def record_state_value_write(st: State) -> None:
    """Record a write of ``st`` on this thread's trace frames at or above its stack level."""
    record_access(st, True)


def record_state_value_restore(st: State) -> None:
    """Record a restore of ``st`` (a restore counts as a read, as ``restore_value`` does)."""
    record_state_value_read(st)


_S = TypeVar("_S", bound=State)


def _rebuild_state(cls: type[_S], value: Any, attrs: dict, poisoned_sig: Any = None) -> _S:
    st: _S = cls.__new__(cls)  # type: ignore[assignment]  # (the core's __new__ is untyped)
    st._adopt(attrs)
    st._init_from(value, None)
    if poisoned_sig is not None:
        # the Signature type is core-specific, so a pickle carries its fields
        st._setattr_no_check("_signature", _core.Signature(*poisoned_sig))
        st._invalidate_trace_value()
    return st


def _keep_poisoned_signature(new: State, old: State) -> None:
    # A poisoned value says nothing about the signature; the copy keeps the original's, so a
    # concrete write un-poisons it as it would the original.
    if old._value is _core.INVALID:
        new._setattr_no_check("_signature", old._signature)


def _impl_error_signature(state: State, op: str, value: Any) -> BaseException:
    from brainstate._signature import signature_error

    return signature_error(state, op, state._signature, value)


class ShortTermState(State[T]):
    """A state whose value is transient (reset between trials): buffers, membrane potentials."""

    __module__ = "brainstate"


class LongTermState(State[T]):
    """A state kept across trials: weights, running statistics."""

    __module__ = "brainstate"


class ParamState(LongTermState[T]):
    """A trainable parameter: ``model.states(ParamState)`` is what an optimiser moves."""

    __module__ = "brainstate"


class BatchState(LongTermState[T]):
    """A state holding batch-level data."""

    __module__ = "brainstate"


class DelayState(ShortTermState[T]):
    """A state holding a delay buffer."""

    __module__ = "brainstate"


class NonBatchState(ShortTermState[T]):
    """A short-term state that ``vmap_new_states`` keeps un-batched."""


def _is_array(value: Any) -> bool:
    return isinstance(value, (np.ndarray, jax.Array)) or type(value).__name__ == "Quantity"


class HiddenState(ShortTermState[T]):
    """A hidden variable of a dynamical system (one array: membrane potential, conductance).

    Raises
    ------
    TypeError
        If ``value`` is not a ``numpy.ndarray``, ``jax.Array`` or ``brainunit.Quantity``.
    """

    __module__ = "brainstate"

    def __init__(self, value: T, name: Any = None, **metadata: Any) -> None:
        if not _is_array(value):
            raise TypeError(
                f"HiddenState only supports numpy.ndarray, jax.Array or brainunit.Quantity, "
                f"got {type(value).__name__}. Wrap the value with jnp.asarray(...)."
            )
        super().__init__(value, name=name, **metadata)

    @property
    def varshape(self) -> tuple:
        """The shape of the variable."""
        return tuple(self._value.shape)

    @property
    def num_state(self) -> int:
        """The number of variables held (1)."""
        return 1


def _mantissa_in(value: Any, unit: Any, what: str) -> Any:
    """``value``'s numbers expressed in ``unit`` (``None``: a plain array), as a JAX array.

    A unitful value is converted (mV into a V slot is scaled); one of another physical dimension,
    or a plain array for a unitful slot (and the reverse), is refused: guessing would rescale.
    """
    got = _unit_of(value)
    if unit is None:
        if got is not None and not getattr(got, "is_unitless", False):
            raise TypeError(f"{what} holds plain numbers, got a value in {got}; pass "
                            f"value.to_decimal({got}) to store the numbers in that unit.")
        return jax.numpy.asarray(value.mantissa if got is not None else value)
    if got is None:
        raise TypeError(f"{what} is in {unit}, got a plain array; multiply it by the unit "
                        f"(value * {unit}) to say what the numbers mean.")
    return jax.numpy.asarray(value.to_decimal(unit))  # brainunit refuses another dimension


def _with_unit(mantissa: Any, unit: Any) -> Any:
    if unit is None:
        return mantissa
    import brainunit  # present: a unit was found on a value

    return brainunit.Quantity(mantissa, unit=unit)


class HiddenGroupState(HiddenState[T]):
    """Several same-shaped hidden variables stacked on the last axis of one array."""

    __module__ = "brainstate"
    if TYPE_CHECKING:  # set by __init__ (metadata, as upstream); no class annotations for help()
        name2index: dict[str, int]

    def __init__(self, value: T, name: Any = None, **metadata: Any) -> None:
        arr: Any = value  # an array (checked below); ``T`` only carries its type to ``.value``
        if not _is_array(arr):
            raise TypeError(f"HiddenGroupState needs an array, got {type(arr).__name__}.")
        if np.ndim(arr) < 2:
            raise ValueError(
                f"HiddenGroupState needs an array with ndim >= 2 (the last axis enumerates the "
                f"sub-states), got shape {np.shape(arr)}."
            )
        super().__init__(value, name=name, **metadata)
        self._setattr_no_check("name2index", {str(i): i for i in range(arr.shape[-1])})

    @property
    def varshape(self) -> tuple:
        return tuple(self._value.shape[:-1])

    @property
    def num_state(self) -> int:
        return int(self._value.shape[-1])

    def _index(self, item: Any) -> int:
        n = self.num_state
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not -n <= item < n:
                raise IndexError(f"Index {item} out of range for {n} sub-states.")
            return int(item) % n
        if isinstance(item, str):
            if item not in self.name2index:
                raise KeyError(f"Unknown sub-state {item!r}; known: {list(self.name2index)}.")
            return self.name2index[item]
        raise TypeError(f"Sub-state index must be int or str, got {type(item).__name__}.")

    def get_value(self, item: Any) -> Any:
        """The sub-state ``item`` (int index or name)."""
        value: Any = self.value  # the stacked array (``T`` only carries its type)
        return value[..., self._index(item)]

    def set_value(self, val: Any) -> None:
        """Write sub-states from ``{index_or_name: array}`` or a list (index = position)."""
        if isinstance(val, (list, tuple)):
            val = dict(enumerate(val))
        if not isinstance(val, dict):
            raise TypeError(f"set_value needs a dict or a list, got {type(val).__name__}.")
        current: Any = self.value
        unit = _unit_of(current)
        new = jax.numpy.asarray(current.mantissa if unit is not None else current)
        for k, v in val.items():
            if isinstance(k, str):
                k = self._index(k)
            elif not isinstance(k, (int, np.integer)) or isinstance(k, bool):
                raise TypeError(f"The key {k!r} should be int or str.")
            if not 0 <= k < self.num_state:
                raise ValueError(f"Index {k} out of range [0, {self.num_state}).")
            v = self._entry_mantissa(v, k, unit)
            if tuple(v.shape) != self.varshape:
                raise ValueError(
                    f"The shape of the value {tuple(v.shape)} does not match the variable "
                    f"shape {self.varshape}."
                )
            new = new.at[..., k].set(v.astype(new.dtype))
        self.value = _with_unit(new, unit)

    def _entry_mantissa(self, v: Any, index: int, unit: Any) -> Any:
        return _mantissa_in(v, unit, f"Sub-state {index} of {describe_state(self)}")


class HiddenTreeState(HiddenGroupState[jax.Array]):
    """A dict or list of same-shaped arrays stored as one array stacked on the last axis."""

    __module__ = "brainstate"
    if TYPE_CHECKING:  # set by __init__ (metadata); the units are None for plain arrays
        index2name: dict[int, str]
        name2unit: dict[str, Any]
        index2unit: dict[int, Any]

    def __init__(self, value: Any, name: Any = None, **metadata: Any) -> None:
        if isinstance(value, dict):
            names, arrays = [str(k) for k in value], list(value.values())
        elif isinstance(value, (list, tuple)):
            names, arrays = [str(i) for i in range(len(value))], list(value)
        else:
            raise TypeError(f"HiddenTreeState needs a dict or a sequence, got {type(value).__name__}.")
        for a in arrays:
            if not _is_array(a):
                raise TypeError(f"HiddenTreeState entries must be arrays, got {type(a).__name__}.")
        shapes = {tuple(np.shape(a)) for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"HiddenTreeState entries must share one shape, got {sorted(shapes)}.")
        # Entries may carry different units: the stacked array holds each one's mantissa, the
        # units are kept per entry and re-attached by get_value.
        units = [_unit_of(a) for a in arrays]
        stacked = jax.numpy.stack(
            [jax.numpy.asarray(a.mantissa if unit is not None else a)
             for a, unit in zip(arrays, units)], axis=-1)
        State.__init__(self, stacked, name=name, **metadata)
        self._setattr_no_check("name2index", {n: i for i, n in enumerate(names)})
        self._setattr_no_check("index2name", dict(enumerate(names)))
        self._setattr_no_check("name2unit", dict(zip(names, units)))
        self._setattr_no_check("index2unit", dict(enumerate(units)))

    @property
    def num_state(self) -> int:
        n = int(self._value.shape[-1])
        if n != len(self.name2index):
            raise ValueError(
                f"HiddenTreeState holds {n} sub-states but knows {len(self.name2index)} names."
            )
        return n

    def set_value(self, val: Any) -> None:
        if isinstance(val, (dict, list, tuple)) and not val:
            raise ValueError(
                f"HiddenTreeState.set_value needs at least one entry, got an empty "
                f"{type(val).__name__}; pass {{name: array}} for the sub-states to change."
            )
        super().set_value(val)

    def get_value(self, item: Any) -> Any:
        """The sub-state ``item`` (int index or name), with its unit where it has one."""
        i = self._index(item)
        return _with_unit(self.value[..., i], self.index2unit[i])

    def _entry_mantissa(self, v: Any, index: int, unit: Any) -> Any:
        return _mantissa_in(v, self.index2unit[index],
                            f"Sub-state {self.index2name[index]!r} of {describe_state(self)}")


class FakeState(Generic[T]):
    """A plain value holder with the ``State`` reading API but no hooks, tracing or checks."""

    __module__ = "brainstate"
    __slots__ = ("value", "name")

    def __init__(self, value: T, name: Any = None) -> None:
        self.value = value
        self.name = name

    def __repr__(self) -> str:
        return f"FakedState(value={self.value!r})"


_AUX_EXCLUDED = ("_source_info", "_hooks_manager")


class TreefyState(_core.TreefyStateCore, Generic[T]):
    """A pytree snapshot of a state: its class, its value (the one child) and its metadata.

    Attributes: ``type``, ``value`` and one per metadata key, in insertion order (as a plain
    object's ``__dict__``; ``vars(ref)`` works). Two refs with the same class and metadata have
    equal treedefs, so ``jax.jit`` does not retrace for them; refs whose ``_been_writen``,
    ``tag``, ``_name`` or custom metadata differ have different treedefs (as upstream).
    """

    __module__ = "brainstate"
    # Storage lives in the core's base (typed slots for the standard layout of
    # State.to_state_ref()); a per-instance __dict__ here would shadow it.
    __slots__ = ()

    @property
    def __orig_class__(self) -> Any:
        # as State.__orig_class__: ``TreefyState[int](...)`` must not add metadata
        raise AttributeError("__orig_class__")

    @property
    def name(self) -> Any:
        return getattr(self, "_name", None)

    @name.setter
    def name(self, name: Any) -> None:
        self._name = name

    def get_metadata(self) -> dict:
        """All attributes except ``type`` and ``value``."""
        attrs = _core.treefy_attrs(self)
        attrs.pop("type", None)
        attrs.pop("value", None)
        return attrs

    def replace(self, value: Any) -> "TreefyState":
        """A new ref with the same class and metadata and ``value``."""
        return TreefyState(self.type, value, **self.get_metadata())

    def copy(self) -> "TreefyState":
        return jax.tree.map(lambda x: x, self)

    def to_state(self) -> State:
        """A new live state of ``self.type`` (no ``__init__``, no init hooks, fresh hooks)."""
        cls = self.type
        st = cls.__new__(cls)
        md = self.get_metadata()
        st._adopt(md)
        st._init_from(self.value, md.get("_source_info"))
        return st

    def __repr__(self) -> str:
        md = ", ".join(f"{k}={v!r}" for k, v in self.get_metadata().items()
                       if k not in _AUX_EXCLUDED)
        value = jax.tree.map(_abstract, self.value)
        return f"TreefyState(type={self.type.__name__}, value={value!r}{', ' if md else ''}{md})"

    def __reduce__(self):
        # Core-neutral: a pickle made under one core loads under the other.
        return (_rebuild_treefy, (type(self), _core.treefy_attrs(self)))


def _rebuild_treefy(cls: type, attrs: dict) -> TreefyState:
    return _core.treefy_from_attrs(cls, attrs)


def _treefy_flatten_with_keys(ref: TreefyState):
    value, aux = _core.treefy_flatten(ref)
    return ((_VALUE_KEY, value),), aux


def _treefy_flatten(ref: TreefyState):
    value, aux = _core.treefy_flatten(ref)
    return (value,), aux


def _treefy_unflatten(aux: tuple, children: Iterable[Any]) -> TreefyState:
    # JAX passes the tuple that _treefy_flatten returned
    return _core.treefy_unflatten(TreefyState, aux, cast(Sequence[Any], children))


_VALUE_KEY = jax.tree_util.GetAttrKey("value")
jax.tree_util.register_pytree_with_keys(
    TreefyState, _treefy_flatten_with_keys, _treefy_unflatten, _treefy_flatten
)


def maybe_state(x: Any) -> Any:
    """``x.value`` for a ``State``, ``x`` unchanged otherwise (``FakeState`` included)."""
    return x.value if isinstance(x, State) else x


@contextlib.contextmanager
def check_state_value_tree(val: bool = True) -> Iterator[None]:
    """Within the block, ``val=False`` turns signature checks into re-binds.

    Writes and restores are not checked and the state's signature becomes that of the new
    value: the explicit way to change a state's shape, dtype or structure. ``val=True`` (the
    default, innermost wins) restores checking inside an outer ``False`` block.
    """
    _core.push_tree_check(val)
    try:
        yield
    finally:
        _core.pop_tree_check()


@contextlib.contextmanager
def check_state_jax_tracer(val: bool = True) -> Iterator[None]:
    """Strict attribute guard: refuse any attribute write on a state from another JAX trace.

    A debugging aid for raw-JAX leaks; it also rejects legitimate writes inside
    ``brainstate.transform.jit`` to states created outside (as upstream).
    """
    _core.push_tracer_check(val)
    try:
        yield
    finally:
        _core.pop_tracer_check()


def _nothing():
    from brainstate.util.filter import Nothing

    return Nothing()


class NewStateCatcher:
    """Collects the states created while a ``catch_new_states`` block is active."""

    __module__ = "brainstate"

    def __init__(self, state_tag: str | None = None, state_to_exclude: Any = None) -> None:
        self.state_tag = state_tag
        # Any filter (a state class, a tag, a predicate): calling a class as a predicate would
        # construct a state, which the catcher would catch, and so on without end.
        self.state_to_exclude = _nothing() if state_to_exclude is None \
            else to_predicate(state_to_exclude)
        self._states: list = []
        self._ids: set = set()

    def append(self, state: State) -> None:
        """Add ``state`` unless excluded or already caught; tag it when a tag is set."""
        if self.state_to_exclude((), state):
            return
        if id(state) in self._ids:
            return
        self._ids.add(id(state))
        self._states.append(state)
        if self.state_tag is not None:
            state.add_tag(self.state_tag)

    def get_states(self) -> list:
        return list(self._states)

    def get_state_values(self) -> list:
        return [st.value for st in self._states]

    @property
    def values(self) -> list:
        return self.get_state_values()

    def __iter__(self):
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)

    def __getitem__(self, index: int) -> State:
        return self._states[index]

    def __contains__(self, state: Any) -> bool:
        return id(state) in self._ids

    def remove(self, state: State) -> None:
        """Forget ``state`` (ValueError when it was not caught)."""
        if id(state) not in self._ids:
            raise ValueError(f"{state!r} was not caught by this catcher.")
        self._ids.discard(id(state))
        self._states = [s for s in self._states if s is not state]

    def clear(self) -> None:
        self._states.clear()
        self._ids.clear()

    def get_by_tag(self, tag: str) -> list:
        """The caught states whose tag set contains ``tag``."""
        return [s for s in self._states if s.tag is not None and tag in s.tag]

    def decrease_stack_level(self) -> None:
        """Lower every caught state's stack level by one (clamped at 0)."""
        for st in self._states:
            st.decrease_stack_level()


@contextlib.contextmanager
def catch_new_states(state_tag: str | None = None,
                     state_to_exclude: Any = None) -> Iterator[NewStateCatcher]:
    """Catch every ``State`` created in the block (nested catchers all receive it).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> with brainstate.catch_new_states('new') as catcher:
    ...     st = brainstate.State(jnp.zeros(2))
    >>> len(catcher), st.tag
    (1, {'new'})
    """
    catcher = NewStateCatcher(state_tag, state_to_exclude)
    _core.push_catcher(catcher)
    try:
        yield catcher
    finally:
        _core.pop_catcher(catcher)
