"""Process-wide computing defaults and thread-local overrides (``dt``, precision, custom keys).

Two layers answer :func:`get`:

* process-wide settings, written by :func:`set` (and :func:`set_dt`, :func:`set_precision`,
  :func:`pop`, :func:`reset`) and seen at once by every thread;
* nested :func:`context` blocks, local to the thread (more exactly, to the :mod:`contextvars`
  context, so each thread and each asyncio task) that entered them, restored on exit and on
  exceptions.

Models read ``dt`` and the default dtypes at every step, so reads are the hot path: each
environment keeps, per thread, one *merged view* (a plain dict of settings overlaid with the
active contexts). It is rebuilt only when a context is entered or left and patched in place when
a setting changes, so :func:`get_dt` and :func:`get` cost one context-variable read and one dict
lookup.

Examples
--------
>>> import brainstate.environ as environ
>>> environ.set(dt=0.1)
>>> environ.get_dt()
0.1
>>> with environ.context(dt=0.01):
...     environ.get_dt()
0.01
>>> environ.get_dt()
0.1
>>> _ = environ.pop('dt')
"""

from __future__ import annotations

import contextvars
import functools
import numbers
import os
import re
import sys
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    # settings and contexts
    "EnvironmentState",
    "set",
    "get",
    "all",
    "pop",
    "context",
    "reset",
    # platform and devices
    "set_platform",
    "get_platform",
    "set_host_device_count",
    "get_host_device_count",
    # precision and default dtypes
    "set_precision",
    "get_precision",
    "dftype",
    "ditype",
    "dutype",
    "dctype",
    "tolerance",
    # integration step
    "set_dt",
    "get_dt",
    # behaviours run when a key changes
    "register_default_behavior",
    "unregister_default_behavior",
    "list_registered_behaviors",
    # constants
    "DEFAULT_PRECISION",
    "SUPPORTED_PLATFORMS",
    "SUPPORTED_PRECISIONS",
    # key names
    "I",
    "T",
    "DT",
    "PRECISION",
    "PLATFORM",
    "HOST_DEVICE_COUNT",
    "JIT_ERROR_CHECK",
    "FIT",
]

# --- key names and constants ------------------------------------------------------------------

I = "i"  # noqa: E741  (upstream name) index of the current step
T = "t"  #: current time of the computation
DT = "dt"  #: numerical integration step
PRECISION = "precision"  #: numerical precision (8, 16, 32, 64 or 'bf16')
PLATFORM = "platform"  #: computing platform ('cpu', 'gpu' or 'tpu')
HOST_DEVICE_COUNT = "host_device_count"  #: number of XLA host (CPU) devices
JIT_ERROR_CHECK = "jit_error_check"  #: whether jitted error checks run
FIT = "fit"  #: whether the model is being fitted (trained)

#: Precision reported while none is set and jax's 64-bit mode is off.
DEFAULT_PRECISION = 32
SUPPORTED_PLATFORMS = ("cpu", "gpu", "tpu")
SUPPORTED_PRECISIONS = (8, 16, 32, 64, "bf16")

_MISSING: Any = object()
_GLOBAL_ONLY = (PLATFORM, HOST_DEVICE_COUNT)
_COMPUTED = frozenset((PRECISION, PLATFORM, HOST_DEVICE_COUNT))  # answered even when not set
_F = TypeVar("_F", bound=Callable[..., Any])

_FLOAT = {64: np.float64, 32: np.float32, 16: np.float16, "bf16": jnp.bfloat16, 8: jnp.float8_e5m2}
_INT = {64: np.int64, 32: np.int32, 16: np.int16, "bf16": np.int16, 8: np.int8}
_UINT = {64: np.uint64, 32: np.uint32, 16: np.uint16, "bf16": np.uint16, 8: np.uint8}
_COMPLEX = {64: np.complex128, 32: np.complex64, 16: np.complex64, "bf16": np.complex64,
            8: np.complex64}
_TOLERANCE = {64: 1e-12, 32: 1e-5, 16: 1e-2, "bf16": 1e-2, 8: 1e-2}

# jax's 64-bit flag: ``.value`` reads it (thread-local overrides included) in ~40 ns, and calling
# it gives the thread-local context manager that precision contexts use.
_X64 = jax.enable_x64


# --- the environment object -------------------------------------------------------------------


class _Frame:
    """One entered context: its merged view and what to restore on exit."""

    __slots__ = ("view", "overridden", "owner", "token", "x64")

    def __init__(self, view: dict, overridden: frozenset, owner: object) -> None:
        self.view = view
        self.overridden = overridden
        self.owner = owner
        self.token: contextvars.Token | None = None
        self.x64: Any = None


class EnvironmentState:
    """A set of environment settings: process-wide values plus thread-local context stacks.

    The module-level functions act on one default instance; pass ``env=`` to any of them to use
    an isolated instance instead (a library keeping its own defaults apart from the user's).

    Parameters
    ----------
    settings : Mapping, optional
        Initial process-wide settings, validated as by :func:`set`.

    Notes
    -----
    Only the default environment drives jax: setting ``precision`` there switches
    ``jax_enable_x64``, while on another instance it only changes what :func:`dftype` and
    friends return for that instance.

    Differs from upstream: upstream's state is a ``threading.local``, so a value ``set`` in one
    thread is invisible to threads started later (they see bare defaults). Here settings are
    shared by all threads and only contexts are thread-local.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> mine = environ.EnvironmentState()
    >>> environ.set(dt=0.5, env=mine)
    >>> environ.get_dt(env=mine)
    0.5
    >>> environ.get('dt', default=None)  # the default environment is untouched
    """

    __slots__ = ("_settings", "_functions", "_lock", "_view", "_live", "_drives_jax")

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self._settings: dict[str, Any] = {}
        self._functions: dict[str, Callable[[Any], Any]] = {}
        # Guards the settings and the live frames; never held while a behaviour runs.
        self._lock = threading.Lock()
        # The merged view for the current thread/task; with no context active it *is* the
        # settings dict, so an in-place ``set`` is seen everywhere at once.
        self._view: contextvars.ContextVar[dict] = contextvars.ContextVar(
            "brainstate.environ.view", default=self._settings)
        # Every entered, not yet exited frame of every thread, by ``id`` of its view (unique
        # while the frame lives): ``set``/``pop`` patch these views, exit finds its frame here.
        self._live: dict[int, _Frame] = {}
        self._drives_jax = False
        if settings:
            set(env=self, **dict(settings))

    @property
    def settings(self) -> Mapping[str, Any]:
        """Read-only view of the process-wide settings (contexts not applied)."""
        return types.MappingProxyType(self._settings)

    @property
    def functions(self) -> Mapping[str, Callable[[Any], Any]]:
        """Read-only view of the registered behaviours, by key."""
        return types.MappingProxyType(self._functions)

    def __repr__(self) -> str:
        return f"EnvironmentState({self._settings!r})"

    # --- writes (all under the lock) -----------------------------------------------------------

    def _store(self, values: dict[str, Any]) -> None:
        with self._lock:
            self._settings.update(values)
            for frame in self._live.values():
                for key, value in values.items():
                    if key not in frame.overridden:
                        frame.view[key] = value

    def _remove(self, key: str) -> Any:
        with self._lock:
            value = self._settings.pop(key)
            for frame in self._live.values():
                if key not in frame.overridden:
                    frame.view.pop(key, None)
            return value

    def _clear(self) -> None:
        with self._lock:
            self._settings.clear()
            self._functions.clear()
            for frame in self._live.values():
                for key in [k for k in frame.view if k not in frame.overridden]:
                    del frame.view[key]

    # --- contexts ------------------------------------------------------------------------------

    def _top(self) -> _Frame | None:
        """The innermost frame of this thread, or None outside any context."""
        return self._live.get(id(self._view.get()))

    def _push(self, values: dict[str, Any], owner: object) -> _Frame:
        with self._lock:
            base = self._view.get()
            parent = self._live.get(id(base))
            view = dict(base)
            view.update(values)
            overridden = frozenset(values) if parent is None else parent.overridden.union(values)
            frame = _Frame(view, overridden, owner)
            self._live[id(view)] = frame
            frame.token = self._view.set(view)
        return frame

    def _pop_frame(self, owner: object) -> _Frame:
        frame = self._top()
        if frame is None or frame.owner is not owner:
            raise RuntimeError(
                "brainstate.environ.context exited out of order: the innermost active context "
                "of this thread is not the one being exited. Exit contexts in the reverse order "
                "of entering them (use `with` blocks rather than calling __enter__/__exit__)."
            )
        with self._lock:
            del self._live[id(frame.view)]
            self._view.reset(frame.token)  # type: ignore[arg-type]
        return frame

    # --- reads ---------------------------------------------------------------------------------

    def _precision(self) -> int | str:
        precision = self._view.get().get(PRECISION)
        if precision is None:
            return 64 if _X64.value else DEFAULT_PRECISION
        return precision

    def _missing(self, key: str, default: Any, desc: str | None) -> Any:
        """Answer a key absent from the merged view: computed keys, the default, or KeyError."""
        if key == PRECISION:
            return self._precision()
        if key == PLATFORM:
            return get_platform()
        if key == HOST_DEVICE_COUNT:
            return get_host_device_count()
        if default is not _MISSING:
            return default
        raise KeyError(_missing_message(key, desc))

    # --- behaviours ----------------------------------------------------------------------------

    def _notify(self, values: Mapping[str, Any]) -> None:
        """Run the behaviours registered for ``values``' keys; the first error is re-raised."""
        if not self._functions:
            return
        error: BaseException | None = None
        for key, value in values.items():
            behavior = self._functions.get(key)
            if behavior is None:
                continue
            try:
                behavior(value)
            except Exception as exc:  # noqa: BLE001  (re-raised below, after the others ran)
                exc.add_note(f"raised by the behaviour registered for environ key {key!r} "
                             f"(called with {value!r})")
                error = error or exc
        if error is not None:
            raise error


_DEFAULT = EnvironmentState()
_DEFAULT._drives_jax = True
# Bound once: the hot readers call it directly (~10% faster than ``_DEFAULT._view.get()``).
_view = _DEFAULT._view.get
_X64_AT_IMPORT = bool(_X64.value)


def _env(env: EnvironmentState | None) -> EnvironmentState:
    if env is None:
        return _DEFAULT
    if not isinstance(env, EnvironmentState):
        raise TypeError(f"env must be a brainstate.environ.EnvironmentState or None; got "
                        f"{type(env).__name__} {env!r}. Create one with EnvironmentState().")
    return env


def _missing_message(key: str, desc: str | None) -> str:
    msg = (f"environ key {key!r} is not set: no context in this thread sets it and it has no "
           f"process-wide value. Set it with brainstate.environ.set({key}=...) for the whole "
           f"process or `with brainstate.environ.context({key}=...):` for a block, or pass "
           f"default= to get().")
    if desc:
        msg += f" Description of {key!r}: {desc}"
    return msg


# --- validation ---------------------------------------------------------------------------------


def _normalize_precision(precision: Any) -> int | str:
    """Return the canonical form of ``precision`` (an int, or ``'bf16'``) or raise ValueError."""
    if isinstance(precision, str):
        if precision == "bf16":
            return precision
        if precision in ("8", "16", "32", "64"):
            return int(precision)
    elif isinstance(precision, numbers.Integral) and not isinstance(precision, bool):
        if int(precision) in (8, 16, 32, 64):
            return int(precision)
    raise ValueError(
        f"precision must be one of {SUPPORTED_PRECISIONS} (an int may also be given as a "
        f"string, e.g. '64'); got {precision!r} ({type(precision).__name__}). "
        f"Example: brainstate.environ.set_precision(32)."
    )


def _quantity_second(value: Any) -> Any:
    """The unit ``second`` of ``value``'s unit library if it is a Quantity, else None.

    brainunit stays optional: a Quantity can only exist if its library was imported.
    """
    for name in ("brainunit", "saiunit"):
        mod = sys.modules.get(name)
        quantity = getattr(mod, "Quantity", None)
        if quantity is not None and isinstance(value, quantity):
            return getattr(mod, "second")
    return None


def _check_dt(dt: Any) -> Any:
    """Return ``dt`` unchanged if it is a usable integration step, else raise."""
    second = _quantity_second(dt)
    number = dt
    if second is not None:
        if not (dt.is_unitless or dt.dim == second.dim):
            raise ValueError(f"dt must be a time (or unitless); got {dt!r}. "
                             f"Example: brainstate.environ.set_dt(0.1 * brainunit.ms).")
        number = dt.mantissa
    if isinstance(number, jax.core.Tracer):
        return dt  # a traced step cannot be inspected; jax checks its use
    if isinstance(number, bool) or np.ndim(number) != 0 or not _is_real(number):
        raise TypeError(f"dt must be a real scalar (a float, or a brainunit Quantity of time); "
                        f"got {type(dt).__name__} {dt!r}.")
    value = float(number)
    if not (value > 0.0 and np.isfinite(value)):
        raise ValueError(f"dt must be finite and > 0; got dt={dt!r}. "
                         f"Example: brainstate.environ.set_dt(0.1).")
    return dt


def _is_real(x: Any) -> bool:
    if isinstance(x, numbers.Real):
        return True
    dtype = getattr(x, "dtype", None)  # jnp.issubdtype also knows bfloat16 and float8
    return dtype is not None and (jnp.issubdtype(dtype, jnp.floating)
                                  or jnp.issubdtype(dtype, jnp.integer))


def _check_values(values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalize the built-in keys of ``values`` (in place) and return it."""
    if PRECISION in values:
        values[PRECISION] = _normalize_precision(values[PRECISION])
    if DT in values:
        _check_dt(values[DT])
    return values


# --- settings -----------------------------------------------------------------------------------


def set(
    platform: str | None = None,
    host_device_count: int | None = None,
    precision: int | str | None = None,
    dt: Any = None,
    env: EnvironmentState | None = None,
    **kwargs: Any,
) -> None:
    """Set process-wide environment values, seen by every thread.

    Parameters
    ----------
    platform : str, optional
        Computing platform, see :func:`set_platform` (not stored as a key).
    host_device_count : int, optional
        Number of XLA host devices, see :func:`set_host_device_count` (not stored as a key).
    precision : int or str, optional
        One of :data:`SUPPORTED_PRECISIONS`. On the default environment, 64 turns jax's
        64-bit mode on and any other value turns it off.
    dt : float or Quantity, optional
        Integration step; must be finite and positive.
    env : EnvironmentState, optional
        The environment to change; the default one if omitted.
    **kwargs
        Any other key and value.

    Raises
    ------
    ValueError
        For an unknown platform or precision, a non-positive ``dt`` or host device count.
        Nothing is changed when a value is rejected.

    Notes
    -----
    Differs from upstream: a behaviour (see :func:`register_default_behavior`) that raises
    makes ``set`` raise (after every behaviour ran and the values were stored) instead of
    being turned into a warning.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.set(dt=0.1, fit=True)
    >>> environ.get('fit')
    True
    >>> _ = environ.pop('fit'), environ.pop('dt')
    """
    target = _env(env)
    values = dict(kwargs)
    if precision is not None:
        values[PRECISION] = precision
    if dt is not None:
        values[DT] = dt
    _check_values(values)
    if platform is not None:
        _check_platform(platform)
    if host_device_count is not None:
        _check_device_count(host_device_count)
    if platform is not None:
        set_platform(platform, env=target)
    if host_device_count is not None:
        set_host_device_count(host_device_count, env=target)
    if PRECISION in values and target._drives_jax:
        jax.config.update("jax_enable_x64", values[PRECISION] == 64)
    target._store(values)
    target._notify(values)


def get(key: str, default: Any = _MISSING, desc: str | None = None,
        env: EnvironmentState | None = None) -> Any:
    """Return the value of ``key``: the innermost active context's, else the process-wide one.

    Parameters
    ----------
    key : str
        The key, e.g. ``'dt'`` or one of the names :data:`I`, :data:`T`, :data:`FIT`.
    default : Any, optional
        Returned when the key is not set. Without it a missing key raises ``KeyError``.
    desc : str, optional
        What the key means; added to the ``KeyError`` message.
    env : EnvironmentState, optional
        The environment to read; the default one if omitted.

    Returns
    -------
    Any
        The value. ``'precision'`` is always answered (from jax's 64-bit mode when not set),
        ``'platform'`` and ``'host_device_count'`` come from :func:`get_platform` and
        :func:`get_host_device_count`.

    Raises
    ------
    KeyError
        If ``key`` is not set and no ``default`` is given; the message names the key and how
        to set it.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.get('fit', False)
    False
    >>> with environ.context(fit=True):
    ...     environ.get('fit')
    True
    """
    if env is None:
        if default is _MISSING:
            try:
                return _view()[key]
            except KeyError:
                pass
        else:
            value = _view().get(key, _MISSING)
            if value is not _MISSING:
                return value
            if key not in _COMPUTED:  # the common miss, e.g. get('fit', False), stays inline
                return default
        return _DEFAULT._missing(key, default, desc)
    target = _env(env)
    value = target._view.get().get(key, _MISSING)
    if value is not _MISSING:
        return value
    return target._missing(key, default, desc)


def all(env: EnvironmentState | None = None) -> dict[str, Any]:
    """Return a snapshot of every value in effect in this thread (contexts applied).

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment to read; the default one if omitted.

    Returns
    -------
    dict
        A new dict; changing it does not change the environment. It always holds
        ``'precision'``.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> with environ.context(dt=0.1):
    ...     environ.all()['dt']
    0.1
    """
    target = _env(env)
    snapshot = dict(target._view.get())
    if PRECISION not in snapshot:
        snapshot[PRECISION] = target._precision()
    return snapshot


def pop(key: str, default: Any = _MISSING, env: EnvironmentState | None = None) -> Any:
    """Remove a process-wide value and return it.

    Parameters
    ----------
    key : str
        The key to remove.
    default : Any, optional
        Returned when the key has no process-wide value. Without it that raises ``KeyError``.
    env : EnvironmentState, optional
        The environment to change; the default one if omitted.

    Returns
    -------
    Any
        The removed value, or ``default``.

    Raises
    ------
    KeyError
        If the key has no process-wide value and no default is given.
    ValueError
        If a context active in this thread sets ``key`` (pop it after the context exits).

    Notes
    -----
    Registered behaviours are not run. Popping ``'precision'`` leaves jax's 64-bit mode as it
    is; the precision then reported follows that mode.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.set(seed=1)
    >>> environ.pop('seed')
    1
    >>> environ.pop('seed', None) is None
    True
    """
    target = _env(env)
    frame = target._top()
    if frame is not None and key in frame.overridden:
        raise ValueError(
            f"cannot pop environ key {key!r} while a context of this thread sets it "
            f"(value there: {target._view.get().get(key)!r}); pop it after the `with "
            f"brainstate.environ.context({key}=...)` block exits."
        )
    try:
        return target._remove(key)
    except KeyError:
        pass
    if default is not _MISSING:
        return default
    raise KeyError(f"environ key {key!r} has no process-wide value to pop (set keys: "
                   f"{sorted(target._settings)}); pass default= to pop() to allow a missing key.")


def reset(env: EnvironmentState | None = None) -> None:
    """Forget every process-wide value and registered behaviour of an environment.

    Contexts still active keep their values until they exit. On the default environment,
    jax's 64-bit mode is put back to what it was when this module was imported.

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment to reset; the default one if omitted.

    Notes
    -----
    Differs from upstream: no ``UserWarning`` is emitted (the call is explicit), and jax's
    64-bit mode returns to its import-time value rather than being forced off.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> mine = environ.EnvironmentState({'dt': 0.1})
    >>> environ.reset(env=mine)
    >>> environ.get('dt', None, env=mine) is None
    True
    """
    target = _env(env)
    target._clear()
    if target._drives_jax:
        jax.config.update("jax_enable_x64", _X64_AT_IMPORT)


# --- contexts -----------------------------------------------------------------------------------


class _Context:
    """What :func:`context` returns: a re-usable, re-entrant context manager and decorator."""

    __slots__ = ("_values", "_env", "_x64", "__weakref__")

    def __init__(self, values: dict[str, Any], env: EnvironmentState) -> None:
        self._values = values
        self._env = env
        # The jax 64-bit mode this context imposes in its thread, or None to leave it alone.
        self._x64 = values[PRECISION] == 64 if env._drives_jax and PRECISION in values else None

    def __enter__(self) -> dict[str, Any]:
        env = self._env
        frame = env._push(self._values, self)
        try:
            if self._x64 is not None:
                x64 = _X64(self._x64)
                x64.__enter__()
                frame.x64 = x64
            env._notify(self._values)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        snapshot = dict(frame.view)
        if PRECISION not in snapshot:
            snapshot[PRECISION] = env._precision()
        return snapshot

    def __exit__(self, *exc_info: Any) -> None:
        env = self._env
        frame = env._pop_frame(self)
        if frame.x64 is not None:
            frame.x64.__exit__(None, None, None)
        if env._functions:
            view = env._view.get()
            restored = {k: view[k] for k in self._values if k in view}
            if PRECISION in self._values and PRECISION not in restored:
                restored[PRECISION] = env._precision()
            env._notify(restored)

    def __call__(self, fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"brainstate.environ.context({args})"


def context(*, env: EnvironmentState | None = None, **kwargs: Any) -> _Context:
    """Override environment values for a block or a function, in this thread only.

    Usable as ``with context(dt=0.1) as values:`` (``values`` is :func:`all` inside the block)
    or as a decorator ``@context(dt=0.1)``. Contexts nest; on exit, normal or by an exception,
    the previous values come back. The same object may be entered again, even recursively.

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment to override; the default one if omitted.
    **kwargs
        Keys and values in effect inside the block. ``precision`` is validated and, on the
        default environment, switches jax's 64-bit mode for this thread only; ``dt`` is
        validated as by :func:`set_dt`.

    Returns
    -------
    context manager
        Also a decorator.

    Raises
    ------
    ValueError
        For ``platform`` or ``host_device_count`` (process-wide only: use :func:`set`), or an
        invalid ``precision`` / ``dt``. Raised here, before anything is entered.

    Notes
    -----
    Differs from upstream: the precision switch uses jax's thread-local 64-bit context instead
    of the process-wide flag, so other threads keep their precision; a behaviour that raises
    propagates (the context is then not entered, or fully restored) instead of warning.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> with environ.context(dt=0.1):
    ...     with environ.context(dt=0.05):
    ...         environ.get_dt()
    ...     environ.get_dt()
    0.05
    0.1
    >>> @environ.context(fit=True)
    ... def fitting():
    ...     return environ.get('fit')
    >>> fitting()
    True
    """
    for key in _GLOBAL_ONLY:
        if key in kwargs:
            raise ValueError(
                f"cannot set {key!r} in a context: it is process-wide. Use "
                f"brainstate.environ.set({key}=...) or set_{key}(...) before computing."
            )
    return _Context(_check_values(dict(kwargs)), _env(env))


# --- integration step ---------------------------------------------------------------------------


def get_dt(env: EnvironmentState | None = None) -> Any:
    """Return the integration step ``dt`` in effect (a float or a brainunit Quantity).

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment to read; the default one if omitted.

    Raises
    ------
    KeyError
        If no ``dt`` is set.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> with environ.context(dt=0.1):
    ...     environ.get_dt()
    0.1
    """
    if env is None:
        try:
            return _view()[DT]
        except KeyError:
            pass
        return _DEFAULT._missing(DT, _MISSING, None)
    return get(DT, env=env)


def set_dt(dt: Any, env: EnvironmentState | None = None) -> None:
    """Set the process-wide integration step ``dt``.

    Parameters
    ----------
    dt : float or Quantity
        A finite, positive real scalar, or a brainunit Quantity of time.
    env : EnvironmentState, optional
        The environment to change; the default one if omitted.

    Raises
    ------
    ValueError
        If ``dt`` is zero, negative, not finite, or a Quantity that is not a time.
    TypeError
        If ``dt`` is not a real scalar.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.set_dt(0.1)
    >>> environ.get_dt()
    0.1
    >>> _ = environ.pop('dt')
    """
    set(dt=_check_dt(dt), env=env)  # checked here too: ``set`` reads dt=None as "not given"


# --- precision and default dtypes ---------------------------------------------------------------


def set_precision(precision: int | str, env: EnvironmentState | None = None) -> None:
    """Set the process-wide numerical precision.

    Parameters
    ----------
    precision : int or str
        One of :data:`SUPPORTED_PRECISIONS` (ints also as strings, e.g. ``'64'``). On the
        default environment 64 turns jax's 64-bit mode on, any other value turns it off.
    env : EnvironmentState, optional
        The environment to change; the default one if omitted.

    Raises
    ------
    ValueError
        For an unsupported precision; the message lists the valid ones.

    Notes
    -----
    Differs from upstream: string forms are stored normalized (``'64'`` reads back as ``64``).

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> mine = environ.EnvironmentState()
    >>> environ.set_precision('bf16', env=mine)
    >>> environ.get_precision(env=mine), environ.dftype(env=mine).__name__
    (16, 'bfloat16')
    """
    set(precision=_normalize_precision(precision), env=env)


def get_precision(env: EnvironmentState | None = None) -> int:
    """Return the precision in effect, in bits (``'bf16'`` reports 16).

    When none is set it follows jax's 64-bit mode: 64 if enabled, else
    :data:`DEFAULT_PRECISION`.

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment to read; the default one if omitted.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> with environ.context(precision=16):
    ...     environ.get_precision()
    16
    """
    precision = _env(env)._precision()
    return 16 if precision == "bf16" else precision  # type: ignore[return-value]


def _current_precision(env: EnvironmentState | None) -> int | str:
    return _env(env)._precision()


def dftype(env: EnvironmentState | None = None) -> type:
    """Return the default floating dtype: float64/32/16, bfloat16 or float8_e5m2 by precision.

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment to read; the default one if omitted.

    Examples
    --------
    >>> import numpy as np
    >>> import brainstate.environ as environ
    >>> with environ.context(precision=32):
    ...     np.zeros(1, dtype=environ.dftype()).dtype
    dtype('float32')
    """
    return _FLOAT[_current_precision(env)]


def ditype(env: EnvironmentState | None = None) -> type:
    """Return the default integer dtype: int64/32/16/8 by precision (int16 for ``'bf16'``).

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment to read; the default one if omitted.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> with environ.context(precision=32):
    ...     environ.ditype().__name__
    'int32'
    """
    return _INT[_current_precision(env)]


def dutype(env: EnvironmentState | None = None) -> type:
    """Return the default unsigned integer dtype: uint64/32/16/8 by precision.

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment to read; the default one if omitted.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> with environ.context(precision=16):
    ...     environ.dutype().__name__
    'uint16'
    """
    return _UINT[_current_precision(env)]


def dctype(env: EnvironmentState | None = None) -> type:
    """Return the default complex dtype: complex128 at precision 64, complex64 otherwise.

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment to read; the default one if omitted.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> with environ.context(precision=32):
    ...     environ.dctype().__name__
    'complex64'
    """
    return _COMPLEX[_current_precision(env)]


def tolerance(env: EnvironmentState | None = None) -> np.ndarray:
    """Return a comparison tolerance suited to the precision, as a 0-d array of :func:`dftype`.

    1e-12 at precision 64, 1e-5 at 32, 1e-2 below.

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment to read; the default one if omitted.

    Notes
    -----
    Differs from upstream: a NumPy array (so a float64 tolerance survives while jax's 64-bit
    mode is off) of the default float dtype (upstream uses float16 for every precision
    below 32, which mixes badly with bfloat16 arrays under strict dtype promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import brainstate.environ as environ
    >>> with environ.context(precision=32):
    ...     t = environ.tolerance()
    >>> float(t) == float(np.float32(1e-5)), t.dtype
    (True, dtype('float32'))
    """
    precision = _current_precision(env)
    return np.asarray(_TOLERANCE[precision], dtype=_FLOAT[precision])


# --- platform and devices -----------------------------------------------------------------------


def _check_platform(platform: Any) -> None:
    if platform not in SUPPORTED_PLATFORMS:
        raise ValueError(f"platform must be one of {SUPPORTED_PLATFORMS}; got {platform!r}. "
                         f"Example: brainstate.environ.set_platform('cpu').")


def _check_device_count(n: Any) -> None:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"host_device_count must be a positive int; got {n!r}. "
                         f"Example: brainstate.environ.set_host_device_count(4).")


def set_platform(platform: str, env: EnvironmentState | None = None) -> None:
    """Select the computing platform jax uses by default (``jax_platform_name``).

    Takes effect only before jax initializes its backends, so call it at program start.

    Parameters
    ----------
    platform : str
        One of :data:`SUPPORTED_PLATFORMS`.
    env : EnvironmentState, optional
        Whose ``'platform'`` behaviour to run; the default environment if omitted.

    Raises
    ------
    ValueError
        For an unsupported platform.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.set_platform('cpu')  # doctest: +SKIP
    """
    _check_platform(platform)
    jax.config.update("jax_platform_name", platform)
    _env(env)._notify({PLATFORM: platform})


def get_platform() -> str:
    """Return the platform of jax's first device: ``'cpu'``, ``'gpu'`` or ``'tpu'``.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.get_platform() in environ.SUPPORTED_PLATFORMS
    True
    """
    return jax.devices()[0].platform


_DEVICE_COUNT_FLAG = re.compile(r"--xla_force_host_platform_device_count=(\S+)")


def set_host_device_count(n: int, env: EnvironmentState | None = None) -> None:
    """Make XLA expose ``n`` host (CPU) devices, e.g. for ``jax.pmap`` or sharding on CPU.

    Writes ``--xla_force_host_platform_device_count=n`` into the ``XLA_FLAGS`` environment
    variable (replacing an earlier count), so it takes effect only before jax initializes its
    backends.

    Parameters
    ----------
    n : int
        Number of devices, at least 1.
    env : EnvironmentState, optional
        Whose ``'host_device_count'`` behaviour to run; the default environment if omitted.

    Raises
    ------
    ValueError
        If ``n`` is not a positive int.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.set_host_device_count(4)  # doctest: +SKIP
    """
    _check_device_count(n)
    others = _DEVICE_COUNT_FLAG.sub("", os.environ.get("XLA_FLAGS", "")).split()
    os.environ["XLA_FLAGS"] = " ".join([f"--xla_force_host_platform_device_count={int(n)}",
                                        *others])
    _env(env)._notify({HOST_DEVICE_COUNT: int(n)})


def get_host_device_count() -> int:
    """Return the host device count requested in ``XLA_FLAGS`` (1 when none is).

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.get_host_device_count() >= 1
    True
    """
    match = _DEVICE_COUNT_FLAG.search(os.environ.get("XLA_FLAGS", ""))
    return int(match.group(1)) if match and match.group(1).isdigit() else 1


# --- behaviours ---------------------------------------------------------------------------------


def register_default_behavior(key: str, behavior: Callable[[Any], Any],
                              replace_if_exist: bool = False,
                              env: EnvironmentState | None = None) -> None:
    """Register a callback run with the new value whenever ``key`` changes.

    It runs on :func:`set` (and :func:`set_dt`, :func:`set_precision`, :func:`set_platform`,
    :func:`set_host_device_count`), on entering a :func:`context` that sets ``key``, and on
    leaving it (with the value restored, if any). :func:`pop` and :func:`reset` do not run it.

    Parameters
    ----------
    key : str
        The key to watch.
    behavior : callable
        Called as ``behavior(value)``. An exception it raises propagates to the caller.
    replace_if_exist : bool
        Replace an existing behaviour for ``key`` instead of raising.
    env : EnvironmentState, optional
        The environment to watch; the default one if omitted.

    Raises
    ------
    TypeError
        If ``key`` is not a str or ``behavior`` is not callable.
    ValueError
        If ``key`` already has a behaviour and ``replace_if_exist`` is false.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> seen = []
    >>> mine = environ.EnvironmentState()
    >>> environ.register_default_behavior('dt', seen.append, env=mine)
    >>> with environ.context(dt=0.1, env=mine):
    ...     pass
    >>> seen
    [0.1]
    """
    if not isinstance(key, str):
        raise TypeError(f"behaviour key must be a str; got {type(key).__name__} {key!r}.")
    if not callable(behavior):
        raise TypeError(f"behaviour for environ key {key!r} must be callable; got "
                        f"{type(behavior).__name__} {behavior!r}.")
    target = _env(env)
    with target._lock:
        if key in target._functions and not replace_if_exist:
            raise ValueError(
                f"environ key {key!r} already has a behaviour ({target._functions[key]!r}); "
                f"pass replace_if_exist=True to replace it, or unregister_default_behavior() "
                f"first."
            )
        target._functions[key] = behavior


def unregister_default_behavior(key: str, env: EnvironmentState | None = None) -> bool:
    """Remove the behaviour registered for ``key``; return whether there was one.

    Parameters
    ----------
    key : str
        The watched key.
    env : EnvironmentState, optional
        The environment; the default one if omitted.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.unregister_default_behavior('no-such-key')
    False
    """
    target = _env(env)
    with target._lock:
        return target._functions.pop(key, None) is not None


def list_registered_behaviors(env: EnvironmentState | None = None) -> list[str]:
    """Return the keys that have a registered behaviour.

    Parameters
    ----------
    env : EnvironmentState, optional
        The environment; the default one if omitted.

    Examples
    --------
    >>> import brainstate.environ as environ
    >>> environ.list_registered_behaviors(env=environ.EnvironmentState())
    []
    """
    return list(_env(env)._functions)
