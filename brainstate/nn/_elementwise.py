"""Element-wise modules: the module forms of the activations (``ReLU`` ... ``SpikeBitwise``).

Each module stores its hyper-parameters and applies the matching function of
:mod:`brainstate.nn` (see ``nn.relu`` and friends) in :meth:`update`, so ``m(x)``, ``m.update(x)``
and ``x >> m`` all give the functional result. Only :class:`PReLU` holds a state (its learnable
slope, a :class:`~brainstate.ParamState`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax.numpy as jnp

from brainstate import environ
from brainstate._state import ParamState
from brainstate.nn import _activations as F
from brainstate.nn._common import ElementWiseBlock

if TYPE_CHECKING:  # annotations only: brainstate.typing.ArrayLike is built lazily
    from brainstate.typing import ArrayLike

__all__ = [
    # activation functions
    "Threshold",
    "ReLU",
    "RReLU",
    "Hardtanh",
    "ReLU6",
    "Sigmoid",
    "Hardsigmoid",
    "Tanh",
    "SiLU",
    "Mish",
    "Hardswish",
    "ELU",
    "CELU",
    "SELU",
    "GLU",
    "GELU",
    "Hardshrink",
    "LeakyReLU",
    "LogSigmoid",
    "Softplus",
    "Softshrink",
    "PReLU",
    "Softsign",
    "Tanhshrink",
    "Softmin",
    "Softmax",
    "Softmax2d",
    "LogSoftmax",
    # others
    "Identity",
    "SpikeBitwise",
]


class Threshold(ElementWiseBlock):
    r"""Replace every element not above a threshold: ``y = x`` if ``x > threshold`` else ``value``.

    Parameters
    ----------
    threshold : float or Quantity
        The threshold, in the input's unit.
    value : float or Quantity
        The replacement, in the input's unit.

    Notes
    -----
    A quantity input keeps its unit; ``threshold`` and ``value`` must then be quantities of
    the same dimension (plain numbers are accepted for dimensionless inputs).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> m = brainstate.nn.Threshold(0.5, 20.0)
    >>> m(jnp.array([0.2, 1.0])).tolist()
    [20.0, 1.0]
    """

    __module__ = "brainstate.nn"

    def __init__(self, threshold: float, value: float) -> None:
        super().__init__()
        self.threshold = threshold
        self.value = value

    def update(self, x: ArrayLike) -> Any:
        m, unit = F._split(x)
        m = F._as_float(m)
        threshold = F._cast(F._in_unit(self.threshold, unit, "threshold", "Threshold"), m)
        value = F._cast(F._in_unit(self.value, unit, "value", "Threshold"), m)
        return F._join(jnp.where(m > threshold, m, value), unit)


class ReLU(ElementWiseBlock):
    r"""Rectified linear unit, :math:`\max(0, x)` (see :func:`brainstate.nn.relu`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.ReLU()(jnp.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.relu(x)


class RReLU(ElementWiseBlock):
    r"""Randomised leaky ReLU with slopes :math:`a \sim U(\text{lower}, \text{upper})`.

    See :func:`brainstate.nn.rrelu`.

    Parameters
    ----------
    lower : float, default 1/8
        Lower bound of the slope distribution.
    upper : float, default 1/3
        Upper bound of the slope distribution.

    Raises
    ------
    ValueError
        If ``lower > upper``.

    Notes
    -----
    A fresh slope is drawn from ``brainstate.random`` for every element on every call; there
    is no separate evaluation mode with a fixed slope. Use ``lower == upper`` for a fixed slope.
    Differs from upstream: the bounds are checked.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> m = brainstate.nn.RReLU(0.1, 0.3)
    >>> y = m(jnp.array([-1.0, 2.0]))
    >>> bool(-0.3 <= y[0] <= -0.1), float(y[1])
    (True, 2.0)
    """

    __module__ = "brainstate.nn"

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3) -> None:
        super().__init__()
        if lower > upper:
            raise ValueError(f"RReLU: lower ({lower!r}) must not exceed upper ({upper!r}).")
        self.lower = lower
        self.upper = upper

    def update(self, x: ArrayLike) -> Any:
        return F.rrelu(x, self.lower, self.upper)


class Hardtanh(ElementWiseBlock):
    r"""Clip to ``[min_val, max_val]`` (see :func:`brainstate.nn.hard_tanh`).

    Parameters
    ----------
    min_val : float or Quantity, default -1.0
        Lower end of the linear region.
    max_val : float or Quantity, default 1.0
        Upper end of the linear region.

    Raises
    ------
    ValueError
        If ``max_val <= min_val``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Hardtanh(-2.0, 2.0)(jnp.array([-3.0, 1.0, 3.0])).tolist()
    [-2.0, 1.0, 2.0]
    """

    __module__ = "brainstate.nn"

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        if max_val <= min_val:
            raise ValueError(
                f"{type(self).__name__}: max_val ({max_val!r}) must be greater than min_val "
                f"({min_val!r})."
            )
        self.min_val = min_val
        self.max_val = max_val

    def update(self, x: ArrayLike) -> Any:
        return F.hard_tanh(x, self.min_val, self.max_val)


class ReLU6(Hardtanh):
    r"""ReLU capped at 6, :math:`\min(\max(0, x), 6)` (see :func:`brainstate.nn.relu6`).

    Notes
    -----
    A :class:`Hardtanh` on ``[0, 6]``; it computes :func:`brainstate.nn.relu6`, so its gradient
    at 0 and 6 is 0 and a quantity input must be dimensionless.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.ReLU6()(jnp.array([-1.0, 3.0, 9.0])).tolist()
    [0.0, 3.0, 6.0]
    """

    __module__ = "brainstate.nn"

    def __init__(self) -> None:
        super().__init__(0.0, 6.0)

    def update(self, x: ArrayLike) -> Any:
        return F.relu6(x)


class Sigmoid(ElementWiseBlock):
    r"""Logistic sigmoid, :math:`1 / (1 + e^{-x})` (see :func:`brainstate.nn.sigmoid`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Sigmoid()(jnp.array([0.0])).tolist()
    [0.5]
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.sigmoid(x)


class Hardsigmoid(ElementWiseBlock):
    r"""Hard sigmoid, :math:`\mathrm{relu6}(x + 3) / 6` (see :func:`brainstate.nn.hard_sigmoid`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Hardsigmoid()(jnp.array([-4.0, 0.0, 4.0])).tolist()
    [0.0, 0.5, 1.0]
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.hard_sigmoid(x)


class Tanh(ElementWiseBlock):
    r"""Hyperbolic tangent (see :func:`brainstate.nn.tanh`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Tanh()(jnp.array([0.0])).tolist()
    [0.0]
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.tanh(x)


class SiLU(ElementWiseBlock):
    r"""SiLU / swish, :math:`x \cdot \mathrm{sigmoid}(x)` (see :func:`brainstate.nn.silu`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.SiLU()(jnp.array([0.0])).tolist()
    [0.0]
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.silu(x)


class Mish(ElementWiseBlock):
    r"""Mish, :math:`x \tanh(\mathrm{softplus}(x))` (see :func:`brainstate.nn.mish`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Mish()(jnp.array([0.0])).tolist()
    [0.0]
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.mish(x)


class Hardswish(ElementWiseBlock):
    r"""Hard swish, :math:`x \cdot \mathrm{relu6}(x + 3) / 6` (see ``nn.hard_swish``).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Hardswish()(jnp.array([-4.0, 4.0])).tolist()
    [-0.0, 4.0]
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.hard_swish(x)


class ELU(ElementWiseBlock):
    r"""Exponential linear unit (see :func:`brainstate.nn.elu`).

    Parameters
    ----------
    alpha : float, default 1.0
        Scale of the negative part.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.ELU()(jnp.array([2.0, 0.0])).tolist()
    [2.0, 0.0]
    """

    __module__ = "brainstate.nn"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def update(self, x: ArrayLike) -> Any:
        return F.elu(x, self.alpha)


class CELU(ElementWiseBlock):
    r"""Continuously differentiable ELU (see :func:`brainstate.nn.celu`).

    Parameters
    ----------
    alpha : float, default 1.0
        Scale of the negative part.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.CELU()(jnp.array([1.0])).tolist()
    [1.0]
    """

    __module__ = "brainstate.nn"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def update(self, x: ArrayLike) -> Any:
        return F.celu(x, self.alpha)


class SELU(ElementWiseBlock):
    r"""Scaled ELU with the self-normalising constants (see :func:`brainstate.nn.selu`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> round(float(brainstate.nn.SELU()(jnp.array(1.0))), 4)
    1.0507
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.selu(x)


class GLU(ElementWiseBlock):
    r"""Gated linear unit: ``a * sigmoid(b)`` for the halves ``a, b`` of the input along ``dim``.

    Parameters
    ----------
    dim : int, default -1
        The axis to split; its size must be even.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.GLU()(jnp.ones((4, 2))).shape
    (4, 1)
    """

    __module__ = "brainstate.nn"

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def update(self, x: ArrayLike) -> Any:
        return F.glu(x, self.dim)


class GELU(ElementWiseBlock):
    r"""Gaussian error linear unit, :math:`x\,\Phi(x)` (see :func:`brainstate.nn.gelu`).

    Parameters
    ----------
    approximate : bool, default False
        Use the tanh approximation. (The functional ``gelu`` defaults to ``True``; the module
        defaults to the exact form, as upstream does.)

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> round(float(brainstate.nn.GELU()(jnp.array(1.0))), 4)
    0.8413
    """

    __module__ = "brainstate.nn"

    def __init__(self, approximate: bool = False) -> None:
        super().__init__()
        self.approximate = approximate

    def update(self, x: ArrayLike) -> Any:
        return F.gelu(x, approximate=self.approximate)


class Hardshrink(ElementWiseBlock):
    r"""Hard shrinkage: ``x`` where :math:`|x| > \lambda`, else 0 (see ``nn.hard_shrink``).

    Parameters
    ----------
    lambd : float or Quantity, default 0.5
        The threshold, in the input's unit.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Hardshrink()(jnp.array([-1.0, 0.25])).tolist()
    [-1.0, 0.0]
    """

    __module__ = "brainstate.nn"

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def update(self, x: ArrayLike) -> Any:
        return F.hard_shrink(x, self.lambd)


class LeakyReLU(ElementWiseBlock):
    r"""Leaky ReLU: ``x`` for ``x >= 0``, ``negative_slope * x`` otherwise.

    Parameters
    ----------
    negative_slope : float, default 0.01
        Slope for negative inputs.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.LeakyReLU(0.5)(jnp.array([-2.0, 2.0])).tolist()
    [-1.0, 2.0]
    """

    __module__ = "brainstate.nn"

    def __init__(self, negative_slope: float = 1e-2) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def update(self, x: ArrayLike) -> Any:
        return F.leaky_relu(x, self.negative_slope)


class LogSigmoid(ElementWiseBlock):
    r"""Log of the sigmoid, :math:`-\log(1 + e^{-x})` (see :func:`brainstate.nn.log_sigmoid`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> round(float(brainstate.nn.LogSigmoid()(jnp.array(0.0))), 4)
    -0.6931
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.log_sigmoid(x)


class Softplus(ElementWiseBlock):
    r"""Softplus, :math:`\log(1 + e^x)` (see :func:`brainstate.nn.softplus`).

    Notes
    -----
    Like upstream, it takes no ``beta``/``threshold`` arguments: it is the plain softplus,
    computed without overflow.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> round(float(brainstate.nn.Softplus()(jnp.array(0.0))), 4)
    0.6931
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.softplus(x)


class Softshrink(ElementWiseBlock):
    r"""Soft shrinkage towards 0 by :math:`\lambda` (see :func:`brainstate.nn.soft_shrink`).

    Parameters
    ----------
    lambd : float or Quantity, default 0.5
        The threshold (non-negative), in the input's unit.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Softshrink()(jnp.array([-1.0, 0.25, 2.0])).tolist()
    [-0.5, 0.0, 1.5]
    """

    __module__ = "brainstate.nn"

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def update(self, x: ArrayLike) -> Any:
        return F.soft_shrink(x, self.lambd)


class PReLU(ElementWiseBlock):
    r"""Parametric ReLU with a learnable slope: ``x`` for ``x >= 0``, ``a * x`` otherwise.

    Parameters
    ----------
    num_parameters : int, default 1
        The number of slopes: 1 (shared by all elements) or the size of the input's last
        (channel) axis.
    init : float, default 0.25
        The initial slope.
    dtype : dtype, optional
        The slope's dtype; default :func:`brainstate.environ.dftype`.

    Attributes
    ----------
    weight : ParamState
        The slopes, shape ``(num_parameters,)``.

    Raises
    ------
    ValueError
        If ``num_parameters`` is not a positive int, or (when calling) the input's last axis
        does not have ``num_parameters`` elements.

    Notes
    -----
    The slopes broadcast against the input's last axis (the channel-last convention). Weight
    decay on ``weight`` usually hurts. Differs from upstream: a channel-size mismatch raises a
    ``ValueError`` naming both sizes.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> m = brainstate.nn.PReLU(2, init=0.5)
    >>> m(jnp.array([[-2.0, -4.0]])).tolist()
    [[-1.0, -2.0]]
    >>> m.weight.value.shape
    (2,)
    """

    __module__ = "brainstate.nn"

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) \
                or num_parameters < 1:
            raise ValueError(
                f"PReLU: num_parameters must be a positive int (1, or the number of channels), "
                f"got {num_parameters!r}."
            )
        self.num_parameters = num_parameters
        dtype = environ.dftype() if dtype is None else dtype
        self.weight = ParamState(jnp.full((num_parameters,), init, dtype=dtype))

    def update(self, x: ArrayLike) -> Any:
        shape = jnp.shape(F._split(x)[0])
        if self.num_parameters > 1 and (not shape or shape[-1] != self.num_parameters):
            raise ValueError(
                f"PReLU: the input's last axis must have num_parameters={self.num_parameters} "
                f"elements (one slope per channel), but the input has shape {shape}."
            )
        return F.prelu(x, self.weight.value)


class Softsign(ElementWiseBlock):
    r"""Soft sign, :math:`x / (1 + |x|)` (see :func:`brainstate.nn.soft_sign`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Softsign()(jnp.array([-1.0, 3.0])).tolist()
    [-0.5, 0.75]
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.soft_sign(x)


class Tanhshrink(ElementWiseBlock):
    r"""Tanh shrink, :math:`x - \tanh(x)` (see :func:`brainstate.nn.tanh_shrink`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Tanhshrink()(jnp.array([0.0])).tolist()
    [0.0]
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        return F.tanh_shrink(x)


class Softmin(ElementWiseBlock):
    r"""Softmin along ``dim``: :math:`e^{-x_i} / \sum_j e^{-x_j}` (see ``nn.softmin``).

    Parameters
    ----------
    dim : int, optional
        The axis that sums to 1; the last one when ``None``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Softmin(dim=1)(jnp.zeros((2, 4))).tolist()[0]
    [0.25, 0.25, 0.25, 0.25]
    """

    __module__ = "brainstate.nn"

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def update(self, x: ArrayLike) -> Any:
        return F.softmin(x, -1 if self.dim is None else self.dim)


class Softmax(ElementWiseBlock):
    r"""Softmax along ``dim``: :math:`e^{x_i} / \sum_j e^{x_j}` (see :func:`brainstate.nn.softmax`).

    Parameters
    ----------
    dim : int, optional
        The axis that sums to 1; the last one when ``None``.

    Notes
    -----
    For a classification loss prefer :class:`LogSoftmax`, which is more accurate than the log
    of this module's output.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.nn.Softmax(dim=1)(jnp.zeros((2, 4))).tolist()[0]
    [0.25, 0.25, 0.25, 0.25]
    """

    __module__ = "brainstate.nn"

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def update(self, x: ArrayLike) -> Any:
        return F.softmax(x, -1 if self.dim is None else self.dim)


class Softmax2d(ElementWiseBlock):
    r"""Softmax over the channels at every location of a ``(N, C, H, W)`` or ``(C, H, W)`` input.

    The channel axis is axis ``-3`` (channel-first images, as upstream).

    Raises
    ------
    ValueError
        If the input is not 3- or 4-dimensional.

    Notes
    -----
    Differs from upstream: a wrong input rank raises ``ValueError`` (upstream: ``assert``).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> y = brainstate.nn.Softmax2d()(jnp.zeros((2, 4, 5, 5)))
    >>> float(y.sum(axis=-3)[0, 0, 0])
    1.0
    """

    __module__ = "brainstate.nn"

    def update(self, x: ArrayLike) -> Any:
        ndim = jnp.ndim(F._split(x)[0])
        if ndim not in (3, 4):
            raise ValueError(
                f"Softmax2d needs a 3D (C, H, W) or 4D (N, C, H, W) input, but got a {ndim}D "
                f"input of shape {jnp.shape(F._split(x)[0])}. Use Softmax(dim=...) otherwise."
            )
        return F.softmax(x, -3)


class LogSoftmax(ElementWiseBlock):
    r"""Log-softmax along ``dim`` (see :func:`brainstate.nn.log_softmax`).

    Parameters
    ----------
    dim : int, optional
        The axis of the normalisation; the last one when ``None``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> y = brainstate.nn.LogSoftmax(dim=1)(jnp.zeros((1, 2)))
    >>> [round(v, 4) for v in y[0].tolist()]
    [-0.6931, -0.6931]
    """

    __module__ = "brainstate.nn"

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def update(self, x: ArrayLike) -> Any:
        return F.log_softmax(x, -1 if self.dim is None else self.dim)


class Identity(ElementWiseBlock):
    r"""Return the input unchanged (a placeholder layer).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> x = jnp.arange(3.0)
    >>> brainstate.nn.Identity()(x) is x
    True
    """

    __module__ = "brainstate.nn"

    def update(self, x: Any) -> Any:
        return x


def _spike_add(x: Any, y: Any) -> Any:
    return x + y


def _spike_and(x: Any, y: Any) -> Any:
    return x * y


def _spike_iand(x: Any, y: Any) -> Any:
    return (1 - x) * y


def _spike_or(x: Any, y: Any) -> Any:
    return x + y - x * y


def _spike_xor(x: Any, y: Any) -> Any:
    return x + y - 2 * x * y


def _spike_ixor(x: Any, y: Any) -> Any:
    return x * (1 - y) + (1 - x) * y


_SPIKE_OPS = {
    "add": _spike_add,
    "and": _spike_and,
    "iand": _spike_iand,
    "or": _spike_or,
    "xor": _spike_xor,
    "ixor": _spike_ixor,
}


def _as_spikes(x: Any) -> Any:
    """Boolean spikes as 0/1 floats (the formulas are arithmetic); other arrays unchanged."""
    x = jnp.asarray(x)
    return x.astype(environ.dftype()) if x.dtype == jnp.bool_ else x


class SpikeBitwise(ElementWiseBlock):
    r"""Combine two spike trains (0/1 arrays) element-wise with a logic operation.

    * ``'add'``: the sum, :math:`x + y`;
    * ``'and'``: :math:`x \wedge y`, computed as :math:`x y`;
    * ``'iand'``: :math:`\neg x \wedge y`, computed as :math:`(1 - x) y`;
    * ``'or'``: :math:`x \vee y`, computed as :math:`x + y - x y`;
    * ``'xor'``: :math:`x \oplus y`, computed as :math:`x + y - 2 x y`;
    * ``'ixor'``: :math:`x \oplus y`, computed as :math:`x (1 - y) + (1 - x) y`.

    The formulas are arithmetic, so surrogate-gradient spikes stay differentiable.

    Parameters
    ----------
    op : str, default 'add'
        One of ``'add'``, ``'and'``, ``'iand'``, ``'or'``, ``'xor'``, ``'ixor'``
        (case-insensitive).
    name : str, optional
        The module's name.

    Raises
    ------
    ValueError
        If ``op`` is not one of the operations above.

    Notes
    -----
    Boolean inputs are read as 0/1 floats of the default float dtype. Differs from upstream:
    the operations are computed here (upstream delegates to braintools, which lacks the
    default ``'add'``), and an unknown ``op`` fails at construction with ``ValueError``
    instead of at call time with ``NotImplementedError``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> x, y = jnp.array([0.0, 1.0, 1.0]), jnp.array([1.0, 1.0, 0.0])
    >>> brainstate.nn.SpikeBitwise("and")(x, y).tolist()
    [0.0, 1.0, 0.0]
    >>> brainstate.nn.SpikeBitwise("or")(x, y).tolist()
    [1.0, 1.0, 1.0]
    """

    __module__ = "brainstate.nn"

    def __init__(self, op: str = "add", name: str | None = None) -> None:
        super().__init__(name=name)
        if not isinstance(op, str) or op.lower() not in _SPIKE_OPS:
            raise ValueError(
                f"SpikeBitwise: unknown op {op!r}; choose one of {sorted(_SPIKE_OPS)}."
            )
        self.op = op.lower()

    def update(self, x: ArrayLike, y: ArrayLike) -> Any:
        return _SPIKE_OPS[self.op](_as_spikes(x), _as_spikes(y))
