"""Activation-family functions along an axis: ``logsumexp``, ``log_softmax``, ``softmax``,
``softmin``, ``standardize``, ``one_hot`` (re-exported by ``brainstate/nn/_activations.py``, whose
docstring gives the rules for units and dtypes)."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Sequence

import jax
import jax.numpy as jnp

from brainstate import environ
from brainstate._units import is_quantity as _is_quantity, split as _split
from brainstate.nn._activation_inputs import (
    _as_float, _cast, _check_axis, _in_unit, _norm_axes, _unitless,
)

if TYPE_CHECKING:  # annotations only: brainstate.typing.ArrayLike is built lazily
    from brainstate.typing import ArrayLike

__all__ = [
    "logsumexp", "log_softmax", "softmax", "softmin", "standardize", "one_hot",
]


def logsumexp(
    a: ArrayLike,
    axis: int | tuple[int, ...] | None = None,
    b: ArrayLike | None = None,
    keepdims: bool = False,
    return_sign: bool = False,
    where: ArrayLike | None = None,
) -> Any:
    r"""Log of the sum of exponentials, :math:`\log \sum_i b_i e^{a_i}`, computed stably.

    Parameters
    ----------
    a : ArrayLike
        Input (a quantity must be dimensionless).
    axis : int or tuple of int, optional
        Axes to reduce; all when ``None``.
    b : ArrayLike, optional
        Weights of the exponentials.
    keepdims : bool, default False
        Keep the reduced axes with size 1.
    return_sign : bool, default False
        Also return the sign of the sum (for negative weights).
    where : ArrayLike, optional
        Mask of the elements to include.

    Returns
    -------
    jax.Array or (jax.Array, jax.Array)
        The result, and its sign when ``return_sign``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> round(float(brainstate.nn.logsumexp(jnp.zeros(4))), 4)
    1.3863
    """
    a = _unitless(a, "logsumexp")
    axis = _check_axis(axis, a, "logsumexp")
    if b is not None:
        b = _cast(b, a)
    return jax.scipy.special.logsumexp(a, axis=axis, b=b, keepdims=keepdims,
                                       return_sign=return_sign, where=where)


def log_softmax(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Log-softmax, :math:`x_i - \log \sum_j e^{x_j}` along ``axis``.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).
    axis : int or tuple of int, optional, default -1
        Axes of the normalisation; all when ``None``.
    where : ArrayLike, optional
        Mask of the elements to include.

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Raises
    ------
    ValueError
        If an axis is out of range.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> y = brainstate.nn.log_softmax(jnp.array([1.0, 1.0]))
    >>> [round(v, 4) for v in y.tolist()]
    [-0.6931, -0.6931]
    """
    x = _unitless(x, "log_softmax")
    return jax.nn.log_softmax(x, axis=_check_axis(axis, x, "log_softmax"), where=where)


def softmax(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Softmax, :math:`e^{x_i} / \sum_j e^{x_j}` along ``axis``: values in ``[0, 1]`` summing to 1.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).
    axis : int or tuple of int, optional, default -1
        Axes of the normalisation; all when ``None``.
    where : ArrayLike, optional
        Mask of the elements to include.

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Raises
    ------
    ValueError
        If an axis is out of range.

    See Also
    --------
    log_softmax, softmin

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.softmax(jnp.array([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    x = _unitless(x, "softmax")
    return jax.nn.softmax(x, axis=_check_axis(axis, x, "softmax"), where=where)


def softmin(x: ArrayLike, axis: int | tuple[int, ...] | None = -1) -> jax.Array:
    r"""Softmin, :math:`e^{-x_i} / \sum_j e^{-x_j}` along ``axis`` (the softmax of ``-x``).

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).
    axis : int or tuple of int, optional, default -1
        Axes of the normalisation; all when ``None``.

    Returns
    -------
    jax.Array
        An array of the input's shape; the smallest input gets the largest weight.

    Raises
    ------
    ValueError
        If an axis is out of range.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> y = brainstate.nn.softmin(jnp.array([0.0, 10.0]))
    >>> bool(y[0] > 0.99)
    True
    """
    x = _unitless(x, "softmin")
    return jax.nn.softmax(-x, axis=_check_axis(axis, x, "softmin"))


def standardize(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    variance: ArrayLike | None = None,
    epsilon: ArrayLike = 1e-5,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Standardise: :math:`(x - \bar x) / \sqrt{\mathrm{Var}(x) + \epsilon}` along ``axis``.

    Parameters
    ----------
    x : ArrayLike
        Input; a quantity is accepted and the (dimensionless) result is a plain array.
    axis : int or tuple of int, optional, default -1
        Axes of the mean and variance; all when ``None``.
    variance : ArrayLike, optional
        A precomputed variance (for a quantity ``x``, in ``x``'s unit squared); computed from
        ``x`` when ``None``.
    epsilon : ArrayLike, default 1e-5
        Added to the variance (in the squared unit of ``x``'s mantissa).
    where : ArrayLike, optional
        Mask of the elements to include.

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Raises
    ------
    ValueError
        If an axis is out of range.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> y = brainstate.nn.standardize(jnp.array([1.0, 3.0]), epsilon=0.0)
    >>> y.tolist()
    [-1.0, 1.0]
    """
    m, unit = _split(x)
    m = _as_float(m)
    if variance is not None:
        if unit is not None:
            variance = _in_unit(variance, unit ** 2, "variance", "standardize")
        elif _is_quantity(variance):
            variance = _in_unit(variance, None, "variance", "standardize")
        variance = _cast(variance, m)
    axis = _check_axis(axis, m, "standardize")
    return jax.nn.standardize(m, axis=axis, variance=variance, epsilon=_cast(epsilon, m),
                              where=where)


def one_hot(
    x: Any,
    num_classes: int,
    *,
    dtype: Any = None,
    axis: int | Sequence[int] = -1,
) -> jax.Array:
    """One-hot encode indices: index ``i`` becomes a length-``num_classes`` row with a 1 at ``i``.

    Indices outside ``[0, num_classes)`` (negative ones included) encode as all zeros.

    Parameters
    ----------
    x : ArrayLike
        The indices (a quantity must be dimensionless).
    num_classes : int
        The number of classes; a positive, static integer.
    dtype : dtype, optional
        The output dtype; default :func:`brainstate.environ.dftype`.
    axis : int or sequence of int, default -1
        Where the new class axis goes in the output (which has ``x.ndim + 1`` dimensions).

    Returns
    -------
    jax.Array
        ``x``'s shape with a class axis of size ``num_classes`` inserted at ``axis``.

    Raises
    ------
    TypeError
        If ``num_classes`` is not an integer (a float, a bool, a traced value).
    ValueError
        If ``num_classes < 1`` or ``axis`` is out of range for the output.

    Notes
    -----
    Differs from upstream: the default dtype follows ``environ.dftype()`` rather than jax's
    default float, and bad ``num_classes``/``axis`` raise errors that name the argument.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.one_hot(jnp.array([0, 2]), 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    >>> brainstate.nn.one_hot(jnp.array([-1, 3]), 3).tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    if isinstance(num_classes, bool):
        raise TypeError(f"one_hot: num_classes must be a positive int, got {num_classes!r}.")
    try:
        n = operator.index(num_classes)
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise TypeError(
            f"one_hot: num_classes must be a positive int known before tracing (it sets the "
            f"output shape), got {num_classes!r} ({type(num_classes).__name__})."
        ) from None
    if n < 1:
        raise ValueError(f"one_hot: num_classes must be a positive int, got {n}.")
    if _is_quantity(x):
        x = _unitless(x, "one_hot")
    x = jnp.asarray(x)
    # axis places the new class axis, so it indexes the output, one dimension more than x.
    _norm_axes(axis, x.ndim + 1, "one_hot", f"the output of an input of shape {x.shape}")
    dtype = environ.dftype() if dtype is None else dtype
    return jax.nn.one_hot(x, n, dtype=dtype, axis=axis)
