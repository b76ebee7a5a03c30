"""Delays held in state: ``Delay``, ``DelayAccess``, ``StateWithDelay``, ``InterpolationRegistry``.

A :class:`Delay` keeps the recent history of a pytree of arrays in a ring buffer: a
``DelayState`` ``history`` of ``max_length`` rows (row ``k`` holds one past value) and a scalar
``write_ptr`` counting the updates. ``update(x)`` writes ``x`` into the row the pointer names
and advances the pointer; a read ``retrieve_at_step(d)`` takes the row written ``d`` updates
before the latest one. Both are one ``dynamic_slice`` / ``dynamic_update_slice`` of the
buffer, so inside a ``for_loop`` the buffer is updated in place and never copied.

Delays are registered before the buffer is allocated: each registration (``register_entry``,
``register_delay``, a ``prefetch_delay`` ...) grows ``max_length`` to hold the longest one,
and ``init_state`` allocates it. Reads by time (``retrieve_at_time``) interpolate between rows
with a method from :class:`InterpolationRegistry`.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import PyTreeDef

from brainstate import environ
from brainstate._state import DelayState, ShortTermState, State
from brainstate._units import brainunit as _brainunit, loaded as _loaded, mantissa as _mantissa
from brainstate.graph import Node
from brainstate.nn._collective_ops import call_order
from brainstate.nn._module import Module, _describe
from brainstate.transform import INIT_NO_BATCHING, cond, jit_error_if

__all__ = ["Delay", "DelayAccess", "StateWithDelay", "InterpolationRegistry"]

# upstream's legacy names, still accepted
_INTERP_LINEAR = "linear_interp"
_INTERP_ROUND = "round"
_DELAY_ROTATE = "rotation"
_DELAY_CONCAT = "concat"
_INTERP_ALIASES = {_INTERP_LINEAR: "linear", _INTERP_ROUND: "nearest"}

# A delay time within this relative distance of a whole number of steps is that number of
# steps: 1.0 / 0.1 is 10.000000000000002 in floating point, and ceil would make it 11.
_STEP_ROUNDING = 1e-6




# --- interpolation ---------------------------------------------------------------------------


class InterpolationMethod(Protocol):
    """The signature of an interpolation method.

    ``method(history, indices, float_idx, max_length)`` returns the value at the fractional
    buffer row ``float_idx`` (rows wrap modulo ``max_length``; a larger row is a later time),
    each leaf of ``history`` indexed by ``(row,) + indices``.
    """

    def __call__(self, history: Any, indices: tuple, float_idx: Any, max_length: int) -> Any: ...


class InterpolationRegistry:
    """The named interpolation methods of :meth:`Delay.retrieve_at_time`.

    Built in: ``'nearest'`` (alias ``'round'``), ``'linear'`` (alias ``'linear_interp'``),
    ``'cubic'`` (Catmull-Rom), ``'hermite'`` (cubic Hermite with finite-difference slopes),
    ``'polynomial2'`` and ``'polynomial3'`` (Lagrange through 3 and 4 rows).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> def previous_row(history, indices, float_idx, max_length):
    ...     row = jnp.floor(float_idx).astype(jnp.int32) % max_length
    ...     return jax.tree.map(lambda h: h[(row,) + indices], history)
    >>> brainstate.nn.InterpolationRegistry.register('previous_row', previous_row)
    >>> 'previous_row' in brainstate.nn.InterpolationRegistry.list_methods()
    True
    >>> brainstate.nn.InterpolationRegistry.unregister('previous_row')
    """

    __module__ = "brainstate.nn"

    _methods: dict[str, Callable] = {}

    @classmethod
    def register(cls, name: str, method: Callable) -> None:
        """Register ``method`` (see :class:`InterpolationMethod`) under ``name`` (replacing)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"An interpolation method name must be a non-empty string, but got "
                            f"{type(name).__name__}: {name!r}.")
        if not callable(method):
            raise TypeError(f"Interpolation method {name!r} must be callable "
                            f"(history, indices, float_idx, max_length) -> value, but got "
                            f"{type(method).__name__}: {method!r}.")
        cls._methods[name] = method

    @classmethod
    def unregister(cls, name: str) -> None:
        """Remove the method registered under ``name`` (``KeyError`` when there is none)."""
        if name not in cls._methods:
            raise KeyError(f"No interpolation method named {name!r}; registered: "
                           f"{cls.list_methods()}.")
        del cls._methods[name]

    @classmethod
    def get(cls, name: str) -> Callable:
        """The method registered under ``name``; ``ValueError`` listing the names otherwise."""
        try:
            return cls._methods[name]
        except (KeyError, TypeError):
            raise ValueError(f"Unknown interpolation method: {name!r}. Available methods: "
                             f"{cls.list_methods()}.") from None

    @classmethod
    def list_methods(cls) -> list:
        """The registered names, in registration order."""
        return list(cls._methods)


def _rows(float_idx: Any, offsets: tuple, max_length: int) -> tuple:
    """``(t, rows)``: the fractional part of ``float_idx`` and the rows ``floor + offset``."""
    base = jnp.floor(float_idx)
    i0 = base.astype(jnp.int32)
    return float_idx - base, [(i0 + k) % max_length for k in offsets]


def _weighted(history: Any, indices: tuple, rows: list, weights: list) -> Any:
    def combine(h: Any) -> Any:
        total = None
        for row, w in zip(rows, weights):
            term = h[(row,) + indices] * w.astype(h.dtype)
            total = term if total is None else total + term
        return total

    return jax.tree.map(combine, history)


def _nearest(history: Any, indices: tuple, float_idx: Any, max_length: int) -> Any:
    row = jnp.round(float_idx).astype(jnp.int32) % max_length
    return jax.tree.map(lambda h: h[(row,) + indices], history)


def _linear(history: Any, indices: tuple, float_idx: Any, max_length: int) -> Any:
    t, rows = _rows(float_idx, (0, 1), max_length)
    return _weighted(history, indices, rows, [1 - t, t])


def _cubic(history: Any, indices: tuple, float_idx: Any, max_length: int) -> Any:
    t, rows = _rows(float_idx, (-1, 0, 1, 2), max_length)
    t2, t3 = t * t, t * t * t
    weights = [-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0,
               -1.5 * t3 + 2.0 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2]
    return _weighted(history, indices, rows, weights)


def _hermite(history: Any, indices: tuple, float_idx: Any, max_length: int) -> Any:
    # Slopes by central differences: m0 = (v1 - v_-1) / 2, m1 = (v2 - v0) / 2, folded into
    # per-row weights of the Hermite basis h00 v0 + h10 m0 + h01 v1 + h11 m1.
    t, rows = _rows(float_idx, (-1, 0, 1, 2), max_length)
    t2, t3 = t * t, t * t * t
    h00, h10 = 2 * t3 - 3 * t2 + 1, t3 - 2 * t2 + t
    h01, h11 = -2 * t3 + 3 * t2, t3 - t2
    weights = [-0.5 * h10, h00 - 0.5 * h11, h01 + 0.5 * h10, 0.5 * h11]
    return _weighted(history, indices, rows, weights)


def _polynomial2(history: Any, indices: tuple, float_idx: Any, max_length: int) -> Any:
    t, rows = _rows(float_idx, (-1, 0, 1), max_length)
    weights = [0.5 * t * (t - 1), (1 - t) * (1 + t), 0.5 * t * (t + 1)]
    return _weighted(history, indices, rows, weights)


def _polynomial3(history: Any, indices: tuple, float_idx: Any, max_length: int) -> Any:
    t, rows = _rows(float_idx, (-1, 0, 1, 2), max_length)
    weights = [-t * (t - 1) * (t - 2) / 6, (t + 1) * (t - 1) * (t - 2) / 2,
               -t * (t + 1) * (t - 2) / 2, t * (t + 1) * (t - 1) / 6]
    return _weighted(history, indices, rows, weights)


for _name, _method in (("nearest", _nearest), (_INTERP_ROUND, _nearest), ("linear", _linear),
                       (_INTERP_LINEAR, _linear), ("cubic", _cubic), ("hermite", _hermite),
                       ("polynomial2", _polynomial2), ("polynomial3", _polynomial3)):
    InterpolationRegistry.register(_name, _method)
del _name, _method


# --- delay steps -----------------------------------------------------------------------------


def _steps_of(time: Any, step: Any, owner: Any) -> tuple[Any, Any]:
    """``(time, steps)``: a delay time (scalar or 1-D) as whole buffer steps of length ``step``.

    The time is rounded up to whole steps, except that a time within ``_STEP_ROUNDING`` of a
    whole number of steps is that number (floating-point division must not add a step).
    """
    ratio = _ratio(time, step, owner)
    nearest = np.round(ratio)
    close = np.abs(ratio - nearest) <= _STEP_ROUNDING * np.maximum(1.0, nearest)
    steps = np.where(close, nearest, np.ceil(ratio)).astype(np.int64)
    return time, (int(steps) if steps.ndim == 0 else steps)


def _ratio(time: Any, step: Any, owner: Any) -> np.ndarray:
    """``time / step`` as a float64 array, after checking units, shape and sign."""
    bu = _loaded()
    ratio = time / step
    if bu is not None and isinstance(ratio, bu.Quantity):
        if not ratio.is_unitless:
            raise ValueError(
                f"{_describe(owner)}: a delay time must have the unit of time of dt "
                f"(or of update_every); got delay {time!r} and step {step!r}.")
        ratio = ratio.to_decimal()
    elif bu is not None and isinstance(time, bu.Quantity) != isinstance(step, bu.Quantity):
        raise ValueError(f"{_describe(owner)}: the delay time {time!r} and the step {step!r} "
                         "must both carry a unit of time or both be plain numbers.")
    try:
        ratio = np.asarray(ratio, dtype=np.float64)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise TypeError(f"{_describe(owner)}: a delay time must be a concrete number or array "
                        f"(buffer sizes are fixed before tracing), but got {time!r}.") from None
    if ratio.ndim > 1:
        raise ValueError(f"{_describe(owner)}: a delay time must be a scalar or a 1-D array, "
                         f"but got shape {ratio.shape}.")
    if not np.all(np.isfinite(ratio)) or np.any(ratio < 0):
        raise ValueError(f"{_describe(owner)}: delay times must be finite and >= 0, but got "
                         f"{time!r}.")
    return ratio


def _is_integer_index(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is not None:
        return bool(jnp.issubdtype(dtype, jnp.integer))
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


# --- Delay -----------------------------------------------------------------------------------


class DelayAccess(Node):
    """A named read of a :class:`Delay`: registers ``entry`` at ``*time`` and reads it when called.

    Parameters
    ----------
    delay : Delay
        The delay to read.
    *time
        The delay time (then optional integer indices), as for :meth:`Delay.register_entry`.
    entry : str
        The entry name.
    """

    __module__ = "brainstate.nn"

    def __init__(self, delay: "Delay", *time: Any, entry: str) -> None:
        if not isinstance(delay, Delay):
            raise TypeError(f"DelayAccess needs a brainstate.nn.Delay, but got "
                            f"{type(delay).__name__}: {delay!r}.")
        super().__init__()
        self.delay = delay
        self._delay_entry = entry
        self.delay_info = delay.register_entry(entry, *time)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The delayed value of the entry (arguments are ignored)."""
        return self.delay.at(self._delay_entry)


class Delay(Module):
    """The recent history of a pytree of arrays, in a ring buffer held in state.

    ``update(x)`` records ``x``; ``retrieve_at_step(d)`` returns the value recorded ``d``
    updates before the latest (``d = 0``: the latest), ``retrieve_at_time(t)`` the value at
    model time ``t`` (needs ``environ`` ``'t'``), interpolated between recorded rows. Until
    ``max_length`` updates have happened, reads reach rows filled by ``init``.

    Parameters
    ----------
    target_info : pytree of arrays or jax.ShapeDtypeStruct
        Shape and dtype of one recorded value (``None`` for :class:`StateWithDelay`).
    time : float, int, Quantity or array, optional
        The longest delay to hold (more can be registered before ``init_state``).
    init : scalar, array or callable, optional
        The rows before the first update: a value broadcast to each row, or
        ``init(shape, dtype=...)`` returning the whole buffer. Zeros by default.
    entries : dict, optional
        ``{name: time}`` or ``{name: (time, *indices)}`` registered at once (see
        :meth:`register_entry`).
    interpolation : str or callable, optional
        The method of :meth:`retrieve_at_time`: a name in :class:`InterpolationRegistry` or a
        callable with its signature. Default ``'linear'``.
    take_aware_unit : bool, default False
        Accepted for compatibility: units (brainunit) are always recorded and restored here.
    update_every : float or Quantity, optional
        Record only every ``update_every`` of model time (a multiple of dt): buffer rows are
        then ``update_every`` apart, and delays are counted in those rows.
    delay_method, interp_method : str
        Upstream's deprecated spellings (``'rotation'``/``'concat'``; ``'round'``/
        ``'linear_interp'``).

    Notes
    -----
    Differs from upstream:

    - a delay time a hair above a whole number of steps by floating-point division
      (``1.0 / 0.1``) is that number of steps, not one more;
    - a concrete read beyond the buffer raises ``ValueError`` naming the delay (upstream reads
      a wrapped row unless ``jit_error_check`` is on); a delay registered after ``init_state``
      that needs a longer buffer makes the next read or update raise, instead of reading
      wrapped rows of the short buffer;
    - a read or update before ``init_state`` says to call ``brainstate.nn.init_all_states``;
      an update whose value does not match the recorded shape names both shapes;
    - units are recorded from the first update (or the target) and put back on every read,
      whatever ``take_aware_unit`` says; ``time=None`` does not need ``dt``;
    - no thread locks: traced code cannot interleave, and eager updates of one delay from
      several threads are not supported.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> with brainstate.environ.context(dt=0.1):
    ...     delay = brainstate.nn.Delay(jnp.zeros(2), time=0.3)  # 3 steps: 4 rows
    ...     _ = delay.register_entry('one_step', 0.1)
    ...     delay.init_state()
    ...     for i in range(5):
    ...         delay.update(jnp.full(2, float(i)))
    ...     delay.at('one_step'), delay.retrieve_at_step(3)
    (Array([3., 3.], dtype=float32), Array([1., 1.], dtype=float32))
    """

    __module__ = "brainstate.nn"

    history: DelayState
    write_ptr: ShortTermState
    max_time: Any  # the longest delay time: a float, an array or a Quantity

    def __init__(
        self,
        target_info: Any,
        time: Any = None,
        init: Any = None,
        entries: dict | None = None,
        interpolation: str | Callable | None = None,
        take_aware_unit: bool = False,
        update_every: Any = None,
        delay_method: str | None = _DELAY_ROTATE,
        interp_method: str = _INTERP_LINEAR,
    ) -> None:
        super().__init__()
        self.target_info = _shape_info(target_info)
        if delay_method == _DELAY_CONCAT:
            warnings.warn("delay_method='concat' is deprecated: every Delay is a ring buffer.",
                          DeprecationWarning, stacklevel=2)
        elif delay_method not in (None, _DELAY_ROTATE):
            raise ValueError(f"Unknown delay_method {delay_method!r}; it is deprecated anyway "
                             "(every Delay is a ring buffer): leave it out.")
        self.interp_method = _check_interpolation(
            _INTERP_ALIASES.get(interp_method, interp_method) if interpolation is None
            else interpolation)
        if init is not None and not isinstance(init, (numbers.Number, jax.Array, np.ndarray)) \
                and not callable(init):
            raise TypeError(f"Delay init must be a number, an array, a callable or None, but "
                            f"got {type(init).__name__}: {init!r}.")
        self._init = init
        self.take_aware_unit = take_aware_unit
        self._unit = _units_of(target_info)
        self.update_every, self.update_every_step = self._check_update_every(update_every)
        self.max_time, steps = (0.0, 0) if time is None else _steps_of(time, self._step(), self)
        self.max_length = int(np.max(steps)) + 1
        self._registered_entries: dict[str, Any] = {}
        for entry, spec in (entries or {}).items():
            spec = spec if isinstance(spec, (tuple, list)) else (spec,)
            self.register_entry(entry, *spec)

    def _check_update_every(self, update_every: Any) -> tuple[Any, int]:
        if update_every is None:
            return None, 1
        dt = environ.get_dt()
        ratio = _ratio(update_every, dt, self)
        _, steps = _steps_of(update_every, dt, self)
        if ratio.ndim or ratio < 1 - _STEP_ROUNDING:
            raise ValueError(f"{_describe(self)}: update_every must be a scalar time >= dt "
                             f"({dt!r}), but got {update_every!r}.")
        return update_every, steps

    def _step(self) -> Any:
        """The time between two buffer rows: ``update_every`` or dt."""
        return environ.get_dt() if self.update_every is None else self.update_every

    # -- registration --

    def register_delay(self, *time_and_idx: Any) -> tuple | None:
        """Make the buffer hold delay ``time_and_idx[0]``; return ``(steps, *indices)``.

        Parameters
        ----------
        *time_and_idx
            The delay time (a scalar or 1-D array, in the unit of dt; ``None`` for no delay),
            then optional integer indices applied to each read value.

        Returns
        -------
        tuple or None
            ``(delay_steps, *indices)`` for :meth:`retrieve_at_step`; ``None`` for ``None``.
        """
        if not time_and_idx:
            raise TypeError(f"{_describe(self)}.register_delay needs a delay time (then "
                            "optional integer indices).")
        for index in time_and_idx[1:]:
            if not _is_integer_index(index):
                raise TypeError(f"{_describe(self)}: delay indices must be integers, but got "
                                f"{index!r}.")
        if time_and_idx[0] is None:
            return None
        time, steps = _steps_of(time_and_idx[0], self._step(), self)
        self.max_time = _larger(self.max_time, time)
        self.max_length = max(self.max_length, int(np.max(steps)) + 1)
        return (steps, *time_and_idx[1:])

    def register_entry(self, entry: str, *time_and_idx: Any) -> tuple | None:
        """Register a named read ``entry`` at ``time_and_idx`` (see :meth:`register_delay`).

        Raises
        ------
        KeyError
            ``entry`` is already registered.
        """
        if not isinstance(entry, str):
            raise TypeError(f"A delay entry must be a string, but got {type(entry).__name__}: "
                            f"{entry!r}.")
        if entry in self._registered_entries:
            raise KeyError(
                f"{_describe(self)}: entry {entry!r} is already registered (as "
                f"{self._registered_entries[entry]!r}); the new request was {time_and_idx!r}. "
                "Use another entry name.")
        info = self.register_delay(*time_and_idx)
        self._registered_entries[entry] = info
        return info

    def access(self, entry: str, *time_and_idx: Any) -> DelayAccess:
        """A :class:`DelayAccess` registering ``entry`` at ``time_and_idx``."""
        return DelayAccess(self, *time_and_idx, entry=entry)

    # -- state --

    def _buffer(self, a: Any, batch_size: int | None) -> jax.Array:
        shape = (self.max_length,) + (() if batch_size is None else (batch_size,)) + a.shape
        init = self._init
        if init is None:
            return jnp.zeros(shape, a.dtype)
        if callable(init):
            data = init(shape, dtype=a.dtype)
            if tuple(np.shape(data)) != shape:
                raise ValueError(f"{_describe(self)}: init{shape!r} returned shape "
                                 f"{np.shape(data)}, not the buffer shape {shape}.")
            return jnp.asarray(_mantissa(data), a.dtype)
        return jnp.broadcast_to(jnp.asarray(_mantissa(init), a.dtype), shape)

    @call_order(3)
    def init_state(self, batch_size: int | None = None, **kwargs: Any) -> None:
        """Allocate the buffer (``max_length`` rows, after the optional batch axis) and pointer."""
        if self.target_info is None:
            raise ValueError(f"{_describe(self)} has no target_info: give the shape and dtype of "
                             "one recorded value (an array or jax.ShapeDtypeStruct).")
        # The pointer is shared by every batch lane: all lanes update in step.
        self.write_ptr = ShortTermState(jnp.asarray(0, jnp.int32), tag=INIT_NO_BATCHING)
        self.history = DelayState(jax.tree.map(lambda a: self._buffer(a, batch_size),
                                               self.target_info))

    def reset_state(self, batch_size: int | None = None, **kwargs: Any) -> None:
        """Refill the buffer with ``init`` and rewind the pointer."""
        self._require_state()
        self.write_ptr.value = jnp.asarray(0, jnp.int32)
        self.history.value = jax.tree.map(lambda a: self._buffer(a, batch_size),
                                          self.target_info)

    def _require_state(self) -> None:
        history = self.__dict__.get("history")
        if history is None:
            raise ValueError(
                f"{_describe(self)} has no buffer yet: call brainstate.nn.init_all_states(model) "
                "(or delay.init_state()) after registering its delays.")
        rows = jax.tree.leaves(history.value)[0].shape[0] if jax.tree.leaves(history.value) \
            else self.max_length
        if rows != self.max_length:
            raise ValueError(
                f"{_describe(self)}: a delay registered after init_state needs {self.max_length} "
                f"buffer rows, but the buffer has {rows}. Register every delay before "
                "brainstate.nn.init_all_states(model), or call it again.")

    # -- reads --

    def at(self, entry: str) -> Any:
        """The delayed value of the registered ``entry``."""
        if not isinstance(entry, str):
            raise TypeError(f"A delay entry must be a string, but got {type(entry).__name__}: "
                            f"{entry!r}.")
        if entry not in self._registered_entries:
            raise KeyError(f"{_describe(self)} has no entry {entry!r}; registered: "
                           f"{sorted(self._registered_entries)}. Register it with "
                           "register_entry(name, time) first.")
        info = self._registered_entries[entry]
        return self.retrieve_at_step(*((0,) if info is None else info))

    def retrieve_at_step(self, delay_step: Any, *indices: Any) -> Any:
        """The value recorded ``delay_step`` updates before the latest, indexed by ``indices``.

        Parameters
        ----------
        delay_step : int or integer array
            ``0 <= delay_step < max_length`` (an array gives one row per element).
        *indices
            Index arrays applied after the row (e.g. neuron indices of a vector of delays).
        """
        self._require_state()
        step = self._checked_step(delay_step)
        row = jax.lax.stop_gradient(self._row_of(delay_step, step))
        if not indices and row.ndim == 0:
            values = jax.tree.map(lambda h: jax.lax.dynamic_index_in_dim(h, row, 0, False),
                                  self.history.value)
        else:
            key = (row,) + indices
            values = jax.tree.map(lambda h: h[key], self.history.value)
        return self._with_units(values)

    def _row_of(self, delay_step: Any, step: jax.Array) -> jax.Array:
        """The buffer row holding the value ``step`` updates before the latest."""
        length = self.max_length
        if length == 1:
            return jnp.int32(0)
        if self.update_every_step == 1 and isinstance(delay_step, (int, np.integer)):
            # a fixed delay (the common case): the row is the write pointer shifted by a
            # constant, and the oldest row (step = length - 1) is the pointer itself
            shift = (length - 1 - int(delay_step)) % length
            ptr = self.write_ptr.value
            return ptr if shift == 0 else jax.lax.rem(ptr + jnp.int32(shift), jnp.int32(length))
        return jax.lax.rem(self._latest_row_plus_length() - step, jnp.int32(length))

    def _latest_row_plus_length(self) -> jax.Array:
        """The row of the latest update, plus ``max_length`` (so ``- step`` stays >= 0).

        Non-negative integer arithmetic throughout: ``lax.div``/``lax.rem`` are one
        instruction each, where Python's ``//``/``%`` add sign corrections that cost a kernel
        each per step of a loop.
        """
        length, every = self.max_length, self.update_every_step
        ptr = self.write_ptr.value
        if every == 1:
            return ptr + jnp.int32(length - 1)
        return jax.lax.div(ptr + jnp.int32(length * every - 1), jnp.int32(every))

    def _checked_step(self, delay_step: Any) -> jax.Array:
        if delay_step is None:
            raise TypeError(f"{_describe(self)}: retrieve_at_step needs a delay step.")
        if not _is_integer_index(delay_step):
            raise TypeError(f"{_describe(self)}: a delay step must be an integer, but got "
                            f"{delay_step!r} (use retrieve_at_time for a time).")
        if not isinstance(delay_step, jax.core.Tracer):
            steps = np.asarray(delay_step)
            if steps.size and (steps.max() >= self.max_length or steps.min() < 0):
                raise ValueError(
                    f"{_describe(self)}: delay of {steps.max() if steps.max() >= 0 else steps.min()}"
                    f" steps requested, but the buffer holds delays 0..{self.max_length - 1}. "
                    "Register the longer delay (register_entry / register_delay / time=) before "
                    "brainstate.nn.init_all_states(model).")
        elif environ.get(environ.JIT_ERROR_CHECK, False):
            jit_error_if(jnp.any((delay_step >= self.max_length) | (delay_step < 0)),
                         f"{_describe(self)}: a delay step is outside 0..{self.max_length - 1}.")
        return jnp.asarray(delay_step, jnp.int32)

    def retrieve_at_time(self, delay_time: Any, *indices: Any) -> Any:
        """The value at model time ``delay_time`` (the current time is ``environ`` ``'t'``).

        Rows are interpolated with the delay's ``interpolation`` method.
        """
        self._require_state()
        if delay_time is None:
            raise TypeError(f"{_describe(self)}: retrieve_at_time needs a time.")
        now = environ.get(environ.T, desc="the current model time, for a delayed read by time")
        step = self._step()
        if environ.get(environ.JIT_ERROR_CHECK, False):
            jit_error_if(jnp.logical_or(delay_time > now, delay_time < now - self.max_time - step),
                         f"{_describe(self)}: a delayed read by time must lie within the "
                         "recorded window.")
        offset = (now - delay_time) / step
        bu = _loaded()
        if bu is not None and isinstance(offset, bu.Quantity):
            offset = offset.to_decimal()
        latest = (self._latest_row_plus_length() - self.max_length).astype(environ.dftype())
        float_row = jax.lax.stop_gradient(latest - jnp.asarray(offset, environ.dftype()))
        method = self.interp_method
        method = InterpolationRegistry.get(method) if isinstance(method, str) else method
        values = method(self.history.value, tuple(indices), float_row, self.max_length)
        return self._with_units(values)

    def _with_units(self, values: Any) -> Any:
        if self._unit is None:
            return values
        bu = _brainunit()
        return jax.tree.map(lambda v, unit: v if unit is None else bu.maybe_decimal(v * unit),
                            values, self._unit, is_leaf=lambda x: x is None)

    # -- writes --

    def update(self, current: Any) -> None:
        """Record ``current`` (every call, or every ``update_every`` of model time)."""
        self._require_state()
        current = self._strip_units(current)
        if self.update_every is None:
            self._write(current)
        else:
            due = (self.write_ptr.value % self.update_every_step) == 0
            cond(due, lambda: self._write(current), lambda: None)
        period = self.max_length * self.update_every_step
        if period > 1:  # a one-row buffer written every call: the pointer stays 0
            self.write_ptr.value = jax.lax.rem(self.write_ptr.value + 1, jnp.int32(period))

    def _write(self, current: Any) -> None:
        ptr, every = self.write_ptr.value, self.update_every_step
        row = jax.lax.stop_gradient(ptr if every == 1 else jax.lax.div(ptr, jnp.int32(every)))
        history = self.history.value
        # annotated: mypy cannot resolve the jaxlib type jax.tree.structure returns
        rows_struct: PyTreeDef = jax.tree.structure(history)
        got_struct: PyTreeDef = jax.tree.structure(current)
        if got_struct != rows_struct:
            raise ValueError(f"{_describe(self)}: update got a value of structure "
                             f"{got_struct}, but the buffer records "
                             f"{rows_struct}.")

        def put(h: jax.Array, v: Any) -> jax.Array:
            v = jnp.asarray(v)
            if v.shape != h.shape[1:]:
                raise ValueError(f"{_describe(self)}: update got shape {v.shape}, but the buffer "
                                 f"records values of shape {h.shape[1:]}.")
            if h.shape[0] == 1:  # the only row: a plain write, no index arithmetic
                return v.astype(h.dtype)[None]
            return jax.lax.dynamic_update_index_in_dim(h, v.astype(h.dtype), row, 0)

        self.history.value = jax.tree.map(put, history, current)

    def _strip_units(self, current: Any) -> Any:
        bu = _loaded()
        if bu is None:
            return current
        leaves, treedef = jax.tree.flatten(current, is_leaf=lambda x: isinstance(x, bu.Quantity))
        units = [leaf.unit if isinstance(leaf, bu.Quantity) else None for leaf in leaves]
        if all(unit is None for unit in units) and self._unit is None:
            return current
        recorded = jax.tree.unflatten(treedef, units)
        if self._unit is None:
            self._unit = recorded
        elif units != jax.tree.leaves(self._unit, is_leaf=lambda x: x is None):
            raise ValueError(f"{_describe(self)}: update got units {units}, but the buffer "
                             f"records {jax.tree.leaves(self._unit, is_leaf=lambda x: x is None)}.")
        return jax.tree.unflatten(treedef, [_mantissa(leaf) for leaf in leaves])


def _shape_info(target: Any) -> Any:
    """``target`` as a pytree of ``jax.ShapeDtypeStruct`` (units dropped)."""
    if target is None:
        return None
    bu = _loaded()

    def info(a: Any) -> jax.ShapeDtypeStruct:
        if isinstance(a, jax.ShapeDtypeStruct):
            return a
        a = _mantissa(a)
        return jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a))

    is_quantity = (lambda x: isinstance(x, bu.Quantity)) if bu is not None else None
    return jax.tree.map(info, target, is_leaf=is_quantity)


def _units_of(target: Any) -> Any:
    bu = _loaded()
    if bu is None or target is None:
        return None
    leaves, treedef = jax.tree.flatten(target, is_leaf=lambda x: isinstance(x, bu.Quantity))
    units = [leaf.unit if isinstance(leaf, bu.Quantity) else None for leaf in leaves]
    return None if all(u is None for u in units) else jax.tree.unflatten(treedef, units)




def _larger(a: Any, b: Any) -> Any:
    """The larger of two delay times (scalars or arrays, maybe with units)."""
    bu = _loaded()
    if bu is not None and (isinstance(a, bu.Quantity) or isinstance(b, bu.Quantity)):
        if not isinstance(a, bu.Quantity):  # the initial 0.0
            return bu.math.max(b)
        return bu.math.maximum(a, bu.math.max(b))
    return max(float(np.max(a)), float(np.max(b)))


def _check_interpolation(method: Any) -> Any:
    if isinstance(method, str):
        InterpolationRegistry.get(method)  # ValueError naming the known methods
        return method
    if callable(method):
        return method
    raise TypeError(f"interpolation must be a method name {InterpolationRegistry.list_methods()} "
                    f"or a callable, but got {type(method).__name__}: {method!r}.")


# --- StateWithDelay --------------------------------------------------------------------------


class StateWithDelay(Delay):
    """The history of state ``target.<item>``, recorded after each update of ``target``.

    Usually made by :meth:`Dynamics.prefetch_delay` or ``module.prefetch('V').delay.at(t)``,
    which register it as an after-update of the module. Its ``update()`` records the state's
    current value; ``init_state`` takes shape, dtype and unit from the state.

    Parameters
    ----------
    target : Module
        The module holding the state.
    item : str
        The attribute name of the state.
    init : scalar, array or callable, optional
        The rows before the first update (see :class:`Delay`).
    interpolation : str or callable, default 'round'
        The method of :meth:`retrieve_at_time`.
    **kwargs
        Other :class:`Delay` arguments (``time``, ``update_every`` ...).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> pop = brainstate.nn.Dynamics(2)
    >>> pop.V = brainstate.HiddenState(jnp.zeros(2))
    >>> with brainstate.environ.context(dt=1.0):
    ...     delay = brainstate.nn.StateWithDelay(pop, 'V', time=2.0)
    ...     delay.init_state()
    ...     for i in range(3):
    ...         pop.V.value = jnp.full(2, float(i))
    ...         delay.update()
    ...     delay.retrieve_at_step(2)
    Array([0., 0.], dtype=float32)
    """

    __module__ = "brainstate.nn"

    def __init__(self, target: Any, item: str, init: Any = None,
                 interpolation: str | Callable | None = _INTERP_ROUND, **kwargs: Any) -> None:
        if not isinstance(item, str):
            raise TypeError(f"StateWithDelay item must be an attribute name (str), but got "
                            f"{type(item).__name__}: {item!r}.")
        super().__init__(None, init=init, interpolation=interpolation, **kwargs)
        self._target = target
        self._target_term = item

    @property
    def state(self) -> State:
        """The recorded state, ``target.<item>``."""
        value = getattr(self._target, self._target_term, None)
        if not isinstance(value, State):
            have = "nothing" if value is None else f"a {type(value).__name__}"
            raise TypeError(
                f"{_describe(self)} records {_describe(self._target)}.{self._target_term}, which "
                f"is {have}, not a State. Create the state first (its init_state: "
                "brainstate.nn.init_all_states(model) runs them, the state's module before its "
                "delays), or check the name.")
        return value

    @call_order(3)
    def init_state(self, *args: Any, **kwargs: Any) -> None:
        """Take shape, dtype and unit from the state, then allocate the buffer."""
        value = self.state.value
        self.target_info = _shape_info(value)
        self._unit = _units_of(value)
        super().init_state(*args, **kwargs)

    def update(self, *args: Any) -> None:
        """Record the state's current value (arguments are ignored)."""
        super().update(self.state.value)
