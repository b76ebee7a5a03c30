"""Initializers (``nn.init``): arrays drawn from ``brainstate.random`` for parameters and states.

The public module of the catalogue: the initializer classes live in
``brainstate/nn/_initializers.py`` and the size helpers in ``_sizes.py``; both are re-exported
here. What stays here is :func:`param` and :func:`calculate_init_gain`.

An initializer is a callable object: ``init(shape, dtype=None, rng=None, key=None)`` returns an
array of ``shape``. Random initializers draw through :mod:`brainstate.random`: from the state
built from the ``seed`` they were constructed with, else from ``rng=`` or ``key=`` given to the
call, else from the global ``brainstate.random.DEFAULT``. The dtype defaults to
``brainstate.environ.dftype()``.

Units are optional: with ``brainunit`` installed, ``unit=`` (or Quantity parameters) give
Quantities; without it every initializer works on plain arrays.

:func:`param` turns whatever a layer was given for a parameter (an initializer, a callable, an
array, a scalar or ``None``) into an array of the requested size.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from brainstate._state import State
from brainstate._units import attach as _attach, split as _split
from brainstate.nn._initializers import (
    Constant, DeltaOrthogonal, Exponential, Gamma, Identity, Initializer, KaimingNormal,
    KaimingUniform, LecunNormal, LecunUniform, Normal, Orthogonal, TruncatedNormal, Uniform,
    VarianceScaling, XavierNormal, XavierUniform, ZeroInit,
)
from brainstate.nn._sizes import _broadcasts_to, are_broadcastable_shapes, to_size
from brainstate.typing import Size

if TYPE_CHECKING:  # annotations only: brainstate.typing.ArrayLike is built lazily
    from brainstate.typing import ArrayLike

__all__ = [
    "param",
    "calculate_init_gain",
    "to_size",
    "are_broadcastable_shapes",
    "Initializer",
    "ZeroInit",
    "Constant",
    "Identity",
    "Normal",
    "TruncatedNormal",
    "Uniform",
    "Gamma",
    "Exponential",
    "VarianceScaling",
    "KaimingUniform",
    "KaimingNormal",
    "XavierUniform",
    "XavierNormal",
    "LecunUniform",
    "LecunNormal",
    "Orthogonal",
    "DeltaOrthogonal",
]


# ---------------------------------------------------------------------------------------------
# param
# ---------------------------------------------------------------------------------------------


def _is_scalar(x: Any) -> bool:
    if isinstance(x, (numbers.Number, np.bool_)):
        return True
    m, _ = _split(x)
    if isinstance(m, (numbers.Number, np.bool_)):
        return True
    return isinstance(m, (np.ndarray, np.generic, jax.Array)) and np.ndim(m) == 0


def _add_batch(value: Any, sizes: tuple, batch_size: int) -> Any:
    """Prepend a batch axis of ``batch_size`` (after padding ``value`` to ``len(sizes)`` dims)."""
    m, unit = _split(value)
    m = jnp.asarray(m)
    m = jnp.reshape(m, (1,) * (len(sizes) - m.ndim) + m.shape)
    m = jnp.broadcast_to(m[None], (batch_size,) + m.shape)
    return _attach(m, unit)


def param(
    parameter: Callable | ArrayLike | State | None,
    sizes: Size,
    batch_size: int | None = None,
    allow_none: bool = True,
    allow_scalar: bool = True,
) -> Any:
    """Make a parameter of ``sizes`` from an initializer, a callable, an array or a scalar.

    Parameters
    ----------
    parameter : Initializer, callable, array, Quantity, State, scalar or None
        - ``None``: returned as ``None`` (a ``ValueError`` when ``allow_none=False``).
        - a scalar (Python number, 0-d array or Quantity): returned unchanged when
          ``allow_scalar`` (a ``ValueError`` otherwise).
        - an :class:`Initializer` or any callable ``f``: ``f(shape)``, where ``shape`` is
          ``sizes`` with ``batch_size`` prepended when given.
        - an array or Quantity: checked to broadcast to ``sizes``; with ``batch_size`` it is
          padded to ``len(sizes)`` dimensions and given a leading batch axis (an array that
          already has ``len(sizes) + 1`` dimensions must have ``batch_size`` as its first).
        - a :class:`~brainstate.State`: its value is checked as an array; the state itself is
          returned, or a new state of the same type holding the batched value.
    sizes : int or sequence of int
        The parameter's shape (without the batch axis).
    batch_size : int, optional
        Size of a leading batch axis.
    allow_none : bool, default True
        Whether ``None`` is accepted.
    allow_scalar : bool, default True
        Whether scalars are accepted (and returned as they are).

    Returns
    -------
    array, Quantity, State, scalar or None

    Raises
    ------
    ValueError
        ``None`` or a scalar where it is not allowed, a shape that does not broadcast to
        ``sizes``, a mismatched batch axis, or a callable returning a wrong shape.
    TypeError
        Any other kind of ``parameter`` (a list, a string, ...).

    Notes
    -----
    Differs from upstream: an array must broadcast *to* ``sizes`` (upstream only required the
    trailing dimensions to be compatible, so a ``(3, 10)`` array passed for size ``(10,)``);
    the result of a callable is checked the same way; a scalar with ``allow_scalar=False`` and
    an unknown type raise clear errors (upstream let 0-d arrays through and raised
    ``ValueError`` for an unknown type, here a ``TypeError``); a ``State`` without a batch
    axis is returned as it is instead of being copied into a new state.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from brainstate.nn import init
    >>> init.param(init.Constant(0.5), (2, 3)).shape
    (2, 3)
    >>> init.param(jnp.zeros(3), 3, batch_size=4).shape
    (4, 3)
    >>> init.param(1.0, (2, 3))
    1.0
    >>> init.param(None, 3) is None
    True
    """
    if parameter is None:
        if allow_none:
            return None
        raise ValueError(
            "param: got None, but allow_none=False. Give an initializer, a callable, an array "
            "or a scalar."
        )
    sizes = to_size(sizes)
    if sizes is None:
        raise ValueError("param: sizes must be an int or a sequence of ints, got None.")
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"param: batch_size must be a positive int, got {batch_size!r}.")
        batch_size = int(batch_size)
    full = sizes if batch_size is None else (batch_size,) + sizes

    if isinstance(parameter, State):
        value = parameter.value
        out = _check_array(value, sizes, batch_size, full, allow_scalar)
        return parameter if out is value else type(parameter)(out)

    if _is_scalar(parameter):
        if allow_scalar:
            return parameter
        raise ValueError(
            f"param: got the scalar {parameter!r}, but allow_scalar=False. Give an array of "
            f"shape {full}, an initializer or a callable."
        )

    if callable(parameter):
        out = parameter(full)
        shape = tuple(np.shape(_split(out)[0]))
        if not _broadcasts_to(shape, full):
            raise ValueError(
                f"param: the initializer {parameter!r} returned shape {shape}, which does not "
                f"broadcast to the requested shape {full}."
            )
        return out

    m, _ = _split(parameter)
    if not isinstance(m, (np.ndarray, jax.Array)):
        raise TypeError(
            f"param: expected an initializer, a callable, an array, a Quantity, a State, a "
            f"scalar or None, got {type(parameter).__name__}. Convert sequences with "
            f"jnp.asarray(...)."
        )
    return _check_array(parameter, sizes, batch_size, full, allow_scalar)


def _check_array(value: Any, sizes: tuple, batch_size: int | None, full: tuple,
                 allow_scalar: bool) -> Any:
    shape = tuple(np.shape(_split(value)[0]))
    if not shape and not allow_scalar:
        raise ValueError(
            f"param: got a scalar (shape ()), but allow_scalar=False. Give an array of shape "
            f"{full}."
        )
    if batch_size is not None and len(shape) == len(sizes) + 1:
        if shape[0] != batch_size:
            raise ValueError(
                f"param: the parameter's leading (batch) axis has size {shape[0]}, but "
                f"batch_size={batch_size}. Expected shape {full}, got {shape}."
            )
        if not _broadcasts_to(shape[1:], sizes):
            raise ValueError(
                f"param: the parameter's shape {shape} does not match the given size {full}."
            )
        return value
    if not _broadcasts_to(shape, sizes):
        raise ValueError(
            f"param: the parameter's shape {shape} does not match the given size {sizes} "
            f"(it must broadcast to it)."
        )
    if batch_size is None:
        return value
    return _add_batch(value, sizes, batch_size)


# ---------------------------------------------------------------------------------------------
# gain
# ---------------------------------------------------------------------------------------------

_LINEAR_FNS = (
    "linear", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid",
)


def calculate_init_gain(nonlinearity: str, param: ArrayLike | None = None) -> float:
    r"""The recommended gain of an initializer for a nonlinearity.

    ================= ==========================================
    nonlinearity      gain
    ================= ==========================================
    linear, conv*d,   :math:`1`
    conv_transpose*d,
    sigmoid
    tanh              :math:`5/3`
    relu              :math:`\sqrt{2}`
    leaky_relu        :math:`\sqrt{2 / (1 + \text{negative\_slope}^2)}`
    selu              :math:`3/4`
    ================= ==========================================

    Parameters
    ----------
    nonlinearity : str
        The nonlinearity's name (see the table).
    param : float, optional
        The negative slope of ``leaky_relu`` (default 0.01).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        An unknown nonlinearity or a slope that is not a number.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.calculate_init_gain('tanh')
    1.6666666666666667
    >>> round(init.calculate_init_gain('leaky_relu', 0.2), 4)
    1.3868
    """
    if nonlinearity in _LINEAR_FNS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float, np.integer, np.floating)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(
                f"calculate_init_gain: the negative slope of leaky_relu must be a number, got "
                f"{type(param).__name__}: {param!r}."
            )
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(
        f"calculate_init_gain: unsupported nonlinearity {nonlinearity!r}; choose one of "
        f"{list(_LINEAR_FNS) + ['tanh', 'relu', 'leaky_relu', 'selu']}."
    )
