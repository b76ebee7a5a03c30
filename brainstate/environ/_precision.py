"""The numerical precision and the default dtypes and tolerance that follow from it."""

from __future__ import annotations

import numpy as np

from brainstate.environ._keys import (
    _COMPLEX,
    _FLOAT,
    _INT,
    _TOLERANCE,
    _UINT,
    _normalize_precision,
    _public,
)
from brainstate.environ._settings import set
from brainstate.environ._state import EnvironmentState, _env


@_public
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


@_public
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


@_public
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


@_public
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


@_public
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


@_public
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


@_public
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
