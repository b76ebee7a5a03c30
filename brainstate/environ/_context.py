"""``context``: thread-local overrides of environment values, for a block or a function."""

from __future__ import annotations

import functools
from typing import Any

from brainstate.environ._keys import _F, _GLOBAL_ONLY, _X64, PRECISION, _check_values, _public
from brainstate.environ._state import EnvironmentState, _env


@_public  # the type users hold: keeps its name brainstate.environ._Context
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


@_public
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
