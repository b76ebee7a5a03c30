"""Process-wide values: ``set``, ``get``, ``all``, ``pop``, ``reset``, and the integration step
``dt`` (``get_dt``, ``set_dt``). ``get`` and ``get_dt`` are the hot readers."""

from __future__ import annotations

from typing import Any

import jax

from brainstate.environ._keys import (
    _COMPUTED,
    _MISSING,
    DT,
    PRECISION,
    _check_device_count,
    _check_dt,
    _check_platform,
    _check_values,
    _public,
)
from brainstate.environ._platform import set_host_device_count, set_platform
from brainstate.environ._state import _DEFAULT, _X64_AT_IMPORT, EnvironmentState, _env, _view

# --- settings -----------------------------------------------------------------------------------


@_public
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


@_public
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


@_public
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


@_public
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


@_public
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


# --- integration step ---------------------------------------------------------------------------


@_public
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


@_public
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
