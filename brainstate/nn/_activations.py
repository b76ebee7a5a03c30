"""Activation functions (``nn.relu`` ... ``nn.sparse_sigmoid``): the whole catalogue.

The element-wise functions live here; the functions along an axis (``softmax``, ``logsumexp``,
``standardize``, ``one_hot``, ...) in ``_activations_axis.py`` and are re-exported; how both
take their inputs in ``_activation_inputs.py``.

Plain arrays go straight to :mod:`jax.nn` (or a short ``jax.numpy`` formula where ``jax.nn``
has no equivalent). brainunit quantities (an optional dependency) are handled on the side:

* functions that scale with their input (``relu``, ``leaky_relu``, ``prelu``, ``rrelu``,
  ``hard_tanh``, ``hard_shrink``, ``soft_shrink``) keep the input's unit, and their thresholds
  are read in that unit;
* every other function needs a dimensionless input (``sigmoid`` of a voltage has no meaning)
  and raises ``TypeError`` for a quantity with a physical dimension;
* ``standardize`` divides out the unit and returns a plain array.

Integer and boolean inputs are converted to the default float dtype
(:func:`brainstate.environ.dftype`) where the formula needs floats, so every function works
under jax's strict dtype promotion; ``relu`` alone keeps integer inputs integer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from brainstate import random
from brainstate._units import split as _split
from brainstate.nn._activation_inputs import (
    _as_float, _cast, _check_axis, _concrete, _in_unit, _join, _unitless,
)
from brainstate.nn._activations_axis import (
    log_softmax, logsumexp, one_hot, softmax, softmin, standardize,
)

if TYPE_CHECKING:  # annotations only: brainstate.typing.ArrayLike is built lazily
    from brainstate.typing import ArrayLike

__all__ = [
    "tanh",
    "relu",
    "squareplus",
    "softplus",
    "soft_sign",
    "sigmoid",
    "silu",
    "swish",
    "log_sigmoid",
    "elu",
    "leaky_relu",
    "hard_tanh",
    "celu",
    "selu",
    "gelu",
    "glu",
    "logsumexp",
    "log_softmax",
    "softmax",
    "standardize",
    "one_hot",
    "relu6",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_shrink",
    "rrelu",
    "mish",
    "soft_shrink",
    "prelu",
    "tanh_shrink",
    "softmin",
    "sparse_plus",
    "sparse_sigmoid",
]


# ---------------------------------------------------------------------------------------------
# element-wise activations
# ---------------------------------------------------------------------------------------------


def tanh(x: ArrayLike) -> jax.Array:
    r"""Hyperbolic tangent, :math:`\tanh(x) = (e^x - e^{-x}) / (e^x + e^{-x})`.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.tanh(jnp.array([0.0])).tolist()
    [0.0]
    """
    return jnp.tanh(_unitless(x, "tanh"))


def relu(x: ArrayLike) -> Any:
    r"""Rectified linear unit, :math:`\max(x, 0)`; its gradient at 0 is taken as 0.

    Parameters
    ----------
    x : ArrayLike
        Input; integer inputs stay integer and a quantity keeps its unit.

    Returns
    -------
    jax.Array or Quantity
        An array (a quantity for a quantity input) of the input's shape.

    See Also
    --------
    relu6, leaky_relu, prelu

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.relu(jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0])).tolist()
    [0.0, 0.0, 0.0, 0.5, 2.0]
    """
    m, unit = _split(x)
    return _join(jax.nn.relu(jnp.asarray(m)), unit)


def squareplus(x: ArrayLike, b: ArrayLike = 4) -> jax.Array:
    r"""Squareplus, :math:`(x + \sqrt{x^2 + b}) / 2`: a smooth, algebraic relative of ReLU.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).
    b : ArrayLike, default 4
        Smoothness (``b = 0`` gives ReLU); must be non-negative.

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.squareplus(jnp.array([0.0])).tolist()
    [1.0]
    """
    x = _unitless(x, "squareplus")
    return jax.nn.squareplus(x, _cast(b, x))


def softplus(x: ArrayLike) -> jax.Array:
    r"""Softplus, :math:`\log(1 + e^x)`, computed without overflow for large ``x``.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> round(float(brainstate.nn.softplus(jnp.array(0.0))), 4)
    0.6931
    """
    return jax.nn.softplus(_unitless(x, "softplus"))


def soft_sign(x: ArrayLike) -> jax.Array:
    r"""Soft sign, :math:`x / (|x| + 1)`.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape, with values in ``(-1, 1)``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.soft_sign(jnp.array([-1.0, 3.0])).tolist()
    [-0.5, 0.75]
    """
    return jax.nn.soft_sign(_unitless(x, "soft_sign"))


def sigmoid(x: ArrayLike) -> jax.Array:
    r"""Logistic sigmoid, :math:`1 / (1 + e^{-x})`.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape, with values in ``(0, 1)``.

    See Also
    --------
    log_sigmoid, hard_sigmoid, sparse_sigmoid

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.sigmoid(jnp.array([0.0])).tolist()
    [0.5]
    """
    return jax.nn.sigmoid(_unitless(x, "sigmoid"))


def silu(x: ArrayLike) -> jax.Array:
    r"""SiLU (also called swish), :math:`x \cdot \mathrm{sigmoid}(x)`.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Notes
    -----
    ``swish`` is the same function.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.silu(jnp.array([0.0])).tolist()
    [0.0]
    >>> brainstate.nn.swish is brainstate.nn.silu
    True
    """
    return jax.nn.silu(_unitless(x, "silu"))


swish = silu


def log_sigmoid(x: ArrayLike) -> jax.Array:
    r"""Log of the sigmoid, :math:`-\log(1 + e^{-x})`, computed stably.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape, with values below 0.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> round(float(brainstate.nn.log_sigmoid(jnp.array(0.0))), 4)
    -0.6931
    """
    return jax.nn.log_sigmoid(_unitless(x, "log_sigmoid"))


def elu(x: ArrayLike, alpha: ArrayLike = 1.0) -> jax.Array:
    r"""Exponential linear unit: ``x`` for ``x > 0``, :math:`\alpha (e^x - 1)` otherwise.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).
    alpha : ArrayLike, default 1.0
        The value approached for large negative ``x`` is ``-alpha``.

    Returns
    -------
    jax.Array
        An array of the input's shape.

    See Also
    --------
    celu, selu

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.elu(jnp.array([2.0, 0.0])).tolist()
    [2.0, 0.0]
    """
    x = _unitless(x, "elu")
    return jax.nn.elu(x, _cast(alpha, x))


def leaky_relu(x: ArrayLike, negative_slope: ArrayLike = 1e-2) -> Any:
    r"""Leaky ReLU: ``x`` for ``x >= 0``, ``negative_slope * x`` otherwise.

    Parameters
    ----------
    x : ArrayLike
        Input; a quantity keeps its unit.
    negative_slope : ArrayLike, default 0.01
        The (dimensionless) slope for negative inputs.

    Returns
    -------
    jax.Array or Quantity
        An array (a quantity for a quantity input) of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.leaky_relu(jnp.array([-2.0, 3.0]), negative_slope=0.5).tolist()
    [-1.0, 3.0]
    """
    m, unit = _split(x)
    m = _as_float(m)
    return _join(jax.nn.leaky_relu(m, _cast(negative_slope, m)), unit)


def hard_tanh(x: ArrayLike, min_val: float = -1.0, max_val: float = 1.0) -> Any:
    r"""Hard tanh: ``x`` clipped to ``[min_val, max_val]`` (gradient 1 inside, 0 outside).

    Parameters
    ----------
    x : ArrayLike
        Input; a quantity keeps its unit.
    min_val, max_val : float or Quantity, default -1.0 and 1.0
        The ends of the linear region, in ``x``'s unit (a quantity ``x`` with a physical
        dimension needs quantities here).

    Returns
    -------
    jax.Array or Quantity
        An array (a quantity for a quantity input) of the input's shape.

    Raises
    ------
    ValueError
        If both ends are concrete numbers and ``min_val > max_val``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.hard_tanh(jnp.array([-3.0, 0.5, 3.0])).tolist()
    [-1.0, 0.5, 1.0]
    >>> brainstate.nn.hard_tanh(jnp.array([-3.0, 3.0]), min_val=0.0, max_val=2.0).tolist()
    [0.0, 2.0]
    """
    m, unit = _split(x)
    m = _as_float(m)
    lo = _in_unit(min_val, unit, "min_val", "hard_tanh")
    hi = _in_unit(max_val, unit, "max_val", "hard_tanh")
    lo_c, hi_c = _concrete(lo), _concrete(hi)
    if lo_c is not None and hi_c is not None and lo_c > hi_c:
        raise ValueError(
            f"hard_tanh: min_val ({min_val!r}) must not exceed max_val ({max_val!r}); swap them."
        )
    lo, hi = _cast(lo, m), _cast(hi, m)
    # where() rather than clip(): the gradient is exactly 1 on the closed linear region.
    return _join(jnp.where(m > hi, hi, jnp.where(m < lo, lo, m)), unit)


def celu(x: ArrayLike, alpha: ArrayLike = 1.0) -> jax.Array:
    r"""Continuously differentiable ELU: ``x`` if ``x > 0``, else :math:`\alpha (e^{x/\alpha} - 1)`.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).
    alpha : ArrayLike, default 1.0
        Scale of the negative part.

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.celu(jnp.array([1.0])).tolist()
    [1.0]
    """
    x = _unitless(x, "celu")
    return jax.nn.celu(x, _cast(alpha, x))


def selu(x: ArrayLike) -> jax.Array:
    r"""Scaled ELU, :math:`\lambda\,\mathrm{elu}(x, \alpha)` with the self-normalising constants.

    :math:`\lambda \approx 1.0507` and :math:`\alpha \approx 1.6733` (Klambauer et al., 2017).

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> round(float(brainstate.nn.selu(jnp.array(1.0))), 4)
    1.0507
    """
    return jax.nn.selu(_unitless(x, "selu"))


def gelu(x: ArrayLike, approximate: bool = True) -> jax.Array:
    r"""Gaussian error linear unit, :math:`x\,\Phi(x)`.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).
    approximate : bool, default True
        Use the tanh approximation
        :math:`\tfrac{x}{2}(1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`; ``False`` gives the
        exact form :math:`\tfrac{x}{2}(1 + \mathrm{erf}(x/\sqrt{2}))`.

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> round(float(brainstate.nn.gelu(jnp.array(1.0), approximate=False)), 4)
    0.8413
    """
    return jax.nn.gelu(_unitless(x, "gelu"), approximate=approximate)


def glu(x: ArrayLike, axis: int = -1) -> jax.Array:
    r"""Gated linear unit: ``a * sigmoid(b)`` for the halves ``a, b`` of ``x`` along ``axis``.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless); its size along ``axis`` must be even.
    axis : int, default -1
        The axis to split.

    Returns
    -------
    jax.Array
        The input's shape with the ``axis`` dimension halved.

    Raises
    ------
    ValueError
        If ``axis`` is out of range or the size along it is odd.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.glu(jnp.array([2.0, 0.0])).tolist()
    [1.0]
    """
    x = _unitless(x, "glu")
    ax = _check_axis(axis, x, "glu")
    if x.shape[ax] % 2:
        raise ValueError(
            f"glu: the size along axis {axis} must be even to split into two halves, but x has "
            f"shape {x.shape}. Pad or slice x, or choose another axis."
        )
    return jax.nn.glu(x, axis=ax)


def relu6(x: ArrayLike) -> jax.Array:
    r"""ReLU capped at 6, :math:`\min(\max(x, 0), 6)`; gradients at 0 and 6 are taken as 0.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless: the cap 6 is a pure number).

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.relu6(jnp.array([-1.0, 3.0, 9.0])).tolist()
    [0.0, 3.0, 6.0]
    """
    return jax.nn.relu6(_unitless(x, "relu6"))


def hard_sigmoid(x: ArrayLike) -> jax.Array:
    r"""Hard sigmoid, :math:`\mathrm{relu6}(x + 3) / 6`.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape, with values in ``[0, 1]``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.hard_sigmoid(jnp.array([-4.0, 0.0, 4.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    return jax.nn.hard_sigmoid(_unitless(x, "hard_sigmoid"))


def hard_silu(x: ArrayLike) -> jax.Array:
    r"""Hard SiLU (also called hard swish), :math:`x \cdot \mathrm{hard\_sigmoid}(x)`.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Notes
    -----
    ``hard_swish`` is the same function.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.hard_silu(jnp.array([-4.0, 0.0, 4.0])).tolist()
    [-0.0, 0.0, 4.0]
    """
    return jax.nn.hard_silu(_unitless(x, "hard_silu"))


hard_swish = hard_silu


def _check_lambd(lam: Any, given: Any, fn: str) -> Any:
    """``lam`` (a shrinkage threshold), checked to be non-negative when concrete."""
    c = _concrete(lam)
    if c is not None and c < 0:
        raise ValueError(f"{fn}: lambd must be non-negative, got {given!r}.")
    return lam


def hard_shrink(x: ArrayLike, lambd: float = 0.5) -> Any:
    r"""Hard shrinkage: ``x`` where :math:`|x| > \lambda`, 0 elsewhere.

    Parameters
    ----------
    x : ArrayLike
        Input; a quantity keeps its unit.
    lambd : float or Quantity, default 0.5
        The threshold :math:`\lambda \ge 0`, in ``x``'s unit.

    Returns
    -------
    jax.Array or Quantity
        An array (a quantity for a quantity input) of the input's shape.

    Raises
    ------
    ValueError
        If ``lambd`` is a concrete negative number.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.hard_shrink(jnp.array([-1.0, 0.25, 0.75])).tolist()
    [-1.0, 0.0, 0.75]
    """
    m, unit = _split(x)
    m = _as_float(m)
    lam = _cast(_check_lambd(_in_unit(lambd, unit, "lambd", "hard_shrink"), lambd,
                              "hard_shrink"), m)
    return _join(jnp.where(jnp.abs(m) > lam, m, jnp.zeros_like(m)), unit)


def soft_shrink(x: ArrayLike, lambd: float = 0.5) -> Any:
    r"""Soft shrinkage: move ``x`` towards 0 by :math:`\lambda`, stopping at 0.

    :math:`x - \lambda` above :math:`\lambda`, :math:`x + \lambda` below :math:`-\lambda`, 0
    between.

    Parameters
    ----------
    x : ArrayLike
        Input; a quantity keeps its unit.
    lambd : float or Quantity, default 0.5
        The threshold :math:`\lambda \ge 0`, in ``x``'s unit.

    Returns
    -------
    jax.Array or Quantity
        An array (a quantity for a quantity input) of the input's shape.

    Raises
    ------
    ValueError
        If ``lambd`` is a concrete negative number.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.soft_shrink(jnp.array([-1.0, 0.25, 2.0])).tolist()
    [-0.5, 0.0, 1.5]
    """
    m, unit = _split(x)
    m = _as_float(m)
    lam = _cast(_check_lambd(_in_unit(lambd, unit, "lambd", "soft_shrink"), lambd,
                              "soft_shrink"), m)
    out = jnp.where(m > lam, m - lam, jnp.where(m < -lam, m + lam, jnp.zeros_like(m)))
    return _join(out, unit)


def rrelu(
    x: ArrayLike,
    lower: float = 0.125,
    upper: float = 0.3333333333333333,
    *,
    key: Any = None,
) -> Any:
    r"""Randomised leaky ReLU: ``x`` for ``x >= 0``, else ``a * x`` with a random slope ``a``.

    :math:`a \sim U(\text{lower}, \text{upper})`.

    A fresh slope is drawn for every element on every call (Xu et al., 2015).

    Parameters
    ----------
    x : ArrayLike
        Input; a quantity keeps its unit.
    lower, upper : float, default 1/8 and 1/3
        Bounds of the uniform distribution of the negative slope; ``lower <= upper``.
    key : jax PRNG key or int, optional
        Key for the draw; without it the slopes come from ``brainstate.random``'s default state.

    Returns
    -------
    jax.Array or Quantity
        An array (a quantity for a quantity input) of the input's shape.

    Raises
    ------
    ValueError
        If ``lower > upper`` (both concrete).

    Notes
    -----
    Differs from upstream: takes ``key=`` for reproducible draws, and checks the bounds.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> y = brainstate.nn.rrelu(jnp.array([-1.0, 2.0]), key=0)
    >>> bool(-1 / 3 <= y[0] <= -1 / 8), float(y[1])
    (True, 2.0)
    """
    lo_c, hi_c = _concrete(lower), _concrete(upper)
    if lo_c is not None and hi_c is not None and lo_c > hi_c:
        raise ValueError(f"rrelu: lower ({lower!r}) must not exceed upper ({upper!r}).")
    m, unit = _split(x)
    m = _as_float(m)
    a = random.uniform(_cast(lower, m), _cast(upper, m), size=m.shape, key=key, dtype=m.dtype)
    return _join(jnp.where(m >= 0, m, a * m), unit)


def prelu(x: ArrayLike, a: ArrayLike = 0.25) -> Any:
    r"""Parametric ReLU: ``x`` for ``x >= 0``, ``a * x`` otherwise, with a (learnable) slope ``a``.

    Parameters
    ----------
    x : ArrayLike
        Input; a quantity keeps its unit.
    a : ArrayLike, default 0.25
        The dimensionless slope; an array broadcasts against ``x`` (a per-channel slope has
        the size of ``x``'s last axis).

    Returns
    -------
    jax.Array or Quantity
        An array (a quantity for a quantity input) of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.prelu(jnp.array([-2.0, 2.0])).tolist()
    [-0.5, 2.0]
    """
    m, unit = _split(x)
    m = _as_float(m)
    return _join(jnp.where(m >= 0, m, _cast(a, m) * m), unit)


def mish(x: ArrayLike) -> jax.Array:
    r"""Mish, :math:`x \tanh(\mathrm{softplus}(x))` (Misra, 2019).

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> round(float(brainstate.nn.mish(jnp.array(1.0))), 4)
    0.8651
    """
    return jax.nn.mish(_unitless(x, "mish"))


def tanh_shrink(x: ArrayLike) -> jax.Array:
    r"""Tanh shrink, :math:`x - \tanh(x)`.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.tanh_shrink(jnp.array([0.0])).tolist()
    [0.0]
    """
    x = _unitless(x, "tanh_shrink")
    return x - jnp.tanh(x)


def sparse_plus(x: ArrayLike) -> jax.Array:
    r"""Sparse plus: 0 up to -1, :math:`(x + 1)^2 / 4` on :math:`(-1, 1)`, ``x`` from 1 on.

    A smooth, convex, monotone twin of softplus that is exactly zero (sparse) below -1.

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape.

    See Also
    --------
    sparse_sigmoid : its derivative.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.sparse_plus(jnp.array([-2.0, 0.0, 2.0])).tolist()
    [0.0, 0.25, 2.0]
    """
    return jax.nn.sparse_plus(_unitless(x, "sparse_plus"))


def sparse_sigmoid(x: ArrayLike) -> jax.Array:
    r"""Sparse sigmoid: 0 up to -1, :math:`(x + 1) / 2` on :math:`(-1, 1)`, 1 from 1 on.

    The derivative of :func:`sparse_plus` (Martins & Astudillo, 2016).

    Parameters
    ----------
    x : ArrayLike
        Input (a quantity must be dimensionless).

    Returns
    -------
    jax.Array
        An array of the input's shape, with values in ``[0, 1]``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.sparse_sigmoid(jnp.array([-2.0, 0.0, 2.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    return jax.nn.sparse_sigmoid(_unitless(x, "sparse_sigmoid"))
