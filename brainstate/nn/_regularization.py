"""Regularizers: priors attached to ``nn.Param`` whose penalty travels with the parameter.

A :class:`Regularization` is an ``nn.Module`` with three methods: ``loss(value)`` (the penalty,
a negative log prior density up to constants, evaluated by ``Param.reg_loss()`` on the
*constrained* value), ``sample_init(shape, key=None)`` (a draw from the implied prior) and
``reset_value()`` (the prior's mode or centre, used by ``Param.reset_to_prior()``).

Hyper-parameters are stored as arrays of the default float dtype. With ``fit_hyper=True`` the
learnable ones become :class:`~brainstate.ParamState`\\ s, so ``model.states(ParamState)`` finds
them and an optimizer trains them together with the parameters (the overall ``weight`` never
becomes trainable). ``loss`` casts hyper-parameters to the value's dtype, so a float64 value
(with ``jax_enable_x64``) works under strict dtype promotion.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from brainstate._state import ParamState, State
from brainstate.nn._module import Module

__all__ = [
    "Regularization",
    "L1Reg",
    "L2Reg",
    "GaussianReg",
    "ElasticNetReg",
    "HuberReg",
    "ChainedReg",
    "GroupLassoReg",
    "TotalVariationReg",
    "MaxNormReg",
    "EntropyReg",
    "OrthogonalReg",
    "SpectralNormReg",
    "StudentTReg",
    "CauchyReg",
    "UniformReg",
    "LogNormalReg",
    "ExponentialReg",
    "GammaReg",
    "BetaReg",
    "HorseshoeReg",
    "InverseGammaReg",
    "LogUniformReg",
    "SpikeAndSlabReg",
    "DirichletReg",
]

#: Floor added to scale-like hyper-parameters after ``relu`` (upstream's numerical guard).
_EPS = 1e-8


# --- helpers --------------------------------------------------------------------------------


def _dftype() -> Any:
    """The default float dtype: float32, or float64 under ``jax_enable_x64``."""
    return jnp.result_type(float)


def get_value(x: Any) -> Any:
    """``x.value`` for a ``State`` (a trainable hyper-parameter), ``x`` otherwise."""
    return x.value if isinstance(x, State) else x


def _hyper(owner: str, name: str, v: Any) -> jax.Array:
    """A hyper-parameter as an array of the default float dtype; rejects non-numbers."""
    if isinstance(v, State):
        raise TypeError(
            f"{owner}: {name} must be a number or an array, got a {type(v).__name__}. Pass "
            f"the value and use fit_hyper=True to make it trainable."
        )
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be a number or an array of numbers, got {v!r}.")
    try:
        arr = jnp.asarray(v)
    except TypeError as exc:
        raise TypeError(
            f"{owner}: {name} must be a number or an array of numbers, got "
            f"{type(v).__name__} {v!r}."
        ) from exc
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise TypeError(f"{owner}: {name} must be real-valued, got dtype {arr.dtype}.")
    return arr.astype(_dftype())


def _concrete(v: Any) -> np.ndarray | None:
    return None if isinstance(v, jax.core.Tracer) else np.asarray(v, dtype=np.float64)


def _require(owner: str, name: str, v: Any, ok: Any, what: str) -> None:
    c = _concrete(v)
    if c is not None and not np.all(ok(c)):
        raise ValueError(
            f"{owner}: {name} must be {what}, got {name}={np.array2string(c, threshold=8)}. "
            f"Pass a value that is {what}."
        )


def _positive(owner: str, name: str, v: Any) -> None:
    _require(owner, name, v, lambda c: np.isfinite(c) & (c > 0), "finite and > 0")


def _finite(owner: str, name: str, v: Any) -> None:
    _require(owner, name, v, np.isfinite, "finite")


def _value(v: Any) -> jax.Array:
    """The value a loss is evaluated on, as a floating array."""
    v = jnp.asarray(v)
    if not jnp.issubdtype(v.dtype, jnp.inexact):
        v = v.astype(_dftype())
    return v


def _h(x: Any, dtype: Any) -> jax.Array:
    """A (possibly trainable) hyper-parameter read and cast to the value's dtype."""
    x = get_value(x)
    return x if x.dtype == dtype else x.astype(dtype)


def _pos(x: Any, dtype: Any = None) -> jax.Array:
    """A positive hyper-parameter as used by losses and samplers: ``relu(x) + eps``.

    Trainable hyper-parameters may be moved below zero by an optimizer; the clamp keeps
    every density well defined. ``dtype`` casts to the value's dtype (losses).
    """
    x = get_value(x) if dtype is None else _h(x, dtype)
    return jax.nn.relu(x) + _EPS


def _size(shape: Any) -> tuple:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        return (int(shape),)
    if isinstance(shape, (tuple, list)):
        return tuple(int(s) for s in shape)
    raise TypeError(
        f"shape must be an int or a sequence of ints, got {type(shape).__name__} {shape!r}."
    )


# Regularizers draw from a process-wide stream when no key is given: brainstate has no global
# RNG yet, and a fixed seed keeps runs reproducible. Pass ``key=`` to control the draw.
_KEY_LOCK = threading.Lock()
_KEY_COUNTER = itertools.count()


def _key(key: Any) -> jax.Array:
    if key is not None:
        return key
    with _KEY_LOCK:
        n = next(_KEY_COUNTER)
    return jax.random.fold_in(jax.random.key(0), n)


def _keys(key: Any, n: int) -> tuple:
    return tuple(jax.random.split(_key(key), n))


def _softmax_flat(v: jax.Array) -> jax.Array:
    # One distribution over all entries (upstream semantics), not one per row.
    return jax.nn.softmax(jnp.reshape(v, (-1,)))


def _as_matrix(v: jax.Array) -> jax.Array:
    """A 2-D view: a perfect-square vector becomes square, another vector a column."""
    if v.ndim == 1:
        n = int(math.isqrt(v.shape[0]))
        return jnp.reshape(v, (n, n)) if n * n == v.shape[0] else jnp.reshape(v, (-1, 1))
    if v.ndim > 2:
        return jnp.reshape(v, (v.shape[0], -1))
    return v


# --- base -----------------------------------------------------------------------------------


class Regularization(Module):
    """Abstract base of the regularizers: a prior whose penalty is added to the training loss.

    Subclasses implement :meth:`loss`, :meth:`sample_init` and :meth:`reset_value`.

    Parameters
    ----------
    fit_hyper : bool, default False
        Store the learnable hyper-parameters as ``ParamState``\\ s so they are trained too.
    """

    __module__ = "brainstate.nn"

    def __init__(self, fit_hyper: bool = False) -> None:
        super().__init__()
        self.fit_hyper = bool(fit_hyper)

    def _positive_hyper(self, name: str, v: Any) -> jax.Array:
        """``v`` as a hyper-parameter array, refused unless finite and > 0."""
        arr = _hyper(type(self).__name__, name, v)
        _positive(type(self).__name__, name, arr)
        return arr

    def _learnable(self, v: jax.Array) -> Any:
        return ParamState(v) if self.fit_hyper else v

    def loss(self, value: Any) -> jax.Array:
        """The penalty of ``value`` (a scalar)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement loss(value): the scalar penalty of a "
            "constrained parameter value."
        )

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        """Draw an initial value of ``shape`` from the implied prior.

        Parameters
        ----------
        shape : int or sequence of int
            The shape of the draw.
        key : jax.random key, optional
            Without one, a process-wide stream (seed 0) is used.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement sample_init(shape, key=None)."
        )

    def reset_value(self) -> Any:
        """The value ``Param.reset_to_prior()`` writes (the prior's mode or centre)."""
        raise NotImplementedError(f"{type(self).__name__} must implement reset_value().")


# --- core -----------------------------------------------------------------------------------


class L1Reg(Regularization):
    """L1 (Laplace prior) penalty ``weight * sum(|v|)``.

    The weight is not clamped (a negative weight rewards large values, as upstream);
    ``fit_hyper`` has no effect.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> float(brainstate.nn.L1Reg(0.1).loss(jnp.array([1.0, -2.0])))
    0.30000001192092896
    """

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("L1Reg", "weight", weight)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        return _h(self.weight, v.dtype) * jnp.sum(jnp.abs(v))

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        # exp(-w|x|) is a Laplace density of scale 1/w.
        scale = 1.0 / (jax.nn.relu(self.weight) + _EPS)
        return scale * jax.random.laplace(_key(key), _size(shape), _dftype())

    def reset_value(self) -> float:
        return 0.0


class L2Reg(Regularization):
    """L2 (zero-mean Gaussian prior) penalty ``relu(weight) * sum(v**2)``.

    ``fit_hyper`` has no effect.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> float(brainstate.nn.L2Reg(0.1).loss(jnp.array([1.0, 2.0])))
    0.5
    """

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("L2Reg", "weight", weight)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        return jax.nn.relu(_h(self.weight, v.dtype)) * jnp.sum(v * v)

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        # exp(-w x^2) is a Gaussian density of variance 1/(2w).
        std = 1.0 / jnp.sqrt(2.0 * jax.nn.relu(self.weight) + _EPS)
        return std * jax.random.normal(_key(key), _size(shape), _dftype())

    def reset_value(self) -> float:
        return 0.0


class GaussianReg(Regularization):
    """Gaussian prior: ``weight * (sum(p * (v - mean)**2) - sum(log p))``.

    ``p = relu(1 / (std**2 + 1e-8)) + 1e-6`` is the precision. With ``fit_hyper`` the mean and
    the precision are trainable (the log term keeps the precision from collapsing to 0).

    Parameters
    ----------
    mean, std : float or array_like
        Prior mean and standard deviation (``std > 0``).
    weight : float, default 1.0
    fit_hyper : bool, default False
    """

    __module__ = "brainstate.nn"

    def __init__(self, mean: Any, std: Any, weight: Any = 1.0, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        mean = _hyper("GaussianReg", "mean", mean)
        std = _hyper("GaussianReg", "std", std)
        _finite("GaussianReg", "mean", mean)
        _positive("GaussianReg", "std", std)
        self.mean = self._learnable(mean)
        self.precision = self._learnable(1.0 / (std * std + _EPS))
        self.weight = _hyper("GaussianReg", "weight", weight)

    def _prec(self, dtype: Any) -> jax.Array:
        return jax.nn.relu(_h(self.precision, dtype)) + 1e-6

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        p = self._prec(v.dtype)
        d = v - _h(self.mean, v.dtype)
        return _h(self.weight, v.dtype) * (jnp.sum(p * d * d) - jnp.sum(jnp.log(p)))

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        std = 1.0 / jnp.sqrt(_pos(self.precision))
        noise = jax.random.normal(_key(key), _size(shape), _dftype())
        return get_value(self.mean) + std * noise

    def reset_value(self) -> jax.Array:
        return get_value(self.mean)


# --- extended -------------------------------------------------------------------------------


class ElasticNetReg(Regularization):
    """Elastic net: ``alpha * l1_weight * sum|v| + (1 - alpha) * l2_weight * sum(v**2)``.

    ``alpha`` is clipped to ``[0, 1]``; with ``fit_hyper`` it is trainable.
    """

    __module__ = "brainstate.nn"

    def __init__(self, l1_weight: Any = 1.0, l2_weight: Any = 1.0, alpha: Any = 0.5,
                 fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.l1_weight = _hyper("ElasticNetReg", "l1_weight", l1_weight)
        self.l2_weight = _hyper("ElasticNetReg", "l2_weight", l2_weight)
        alpha = _hyper("ElasticNetReg", "alpha", alpha)
        _finite("ElasticNetReg", "alpha", alpha)
        self.alpha = self._learnable(alpha)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        a = jnp.clip(_h(self.alpha, v.dtype), 0.0, 1.0)
        l1 = _h(self.l1_weight, v.dtype) * jnp.sum(jnp.abs(v))
        l2 = _h(self.l2_weight, v.dtype) * jnp.sum(v * v)
        return a * l1 + (1.0 - a) * l2

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        k1, k2 = _keys(key, 2)
        size, dt = _size(shape), _dftype()
        a = jnp.clip(get_value(self.alpha), 0.0, 1.0)
        lap = jax.random.laplace(k1, size, dt) / (jax.nn.relu(self.l1_weight) + _EPS)
        gau = jax.random.normal(k2, size, dt) / jnp.sqrt(2.0 * jax.nn.relu(self.l2_weight) + _EPS)
        return a * lap + (1.0 - a) * gau

    def reset_value(self) -> float:
        return 0.0


class HuberReg(Regularization):
    """Huber penalty: ``weight * sum(h(v))``, quadratic ``v**2/2`` within ``|v| <= delta``, linear beyond.

    With ``fit_hyper`` ``delta`` is trainable.
    """

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, delta: Any = 1.0, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("HuberReg", "weight", weight)
        delta = self._positive_hyper("delta", delta)
        self.delta = self._learnable(delta)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        d = _pos(self.delta, v.dtype)
        a = jnp.abs(v)
        h = jnp.where(a <= d, 0.5 * v * v, d * (a - 0.5 * d))
        return _h(self.weight, v.dtype) * jnp.sum(h)

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        std = 1.0 / jnp.sqrt(jax.nn.relu(self.weight) + _EPS)
        return std * jax.random.normal(_key(key), _size(shape), _dftype())

    def reset_value(self) -> float:
        return 0.0


class ChainedReg(Regularization):
    """Several priors at once: ``weight * sum(reg.loss(v) for reg in regs)`` (``0.0`` if empty).

    ``reset_value`` and ``sample_init`` come from the first regularizer.
    """

    __module__ = "brainstate.nn"

    def __init__(self, *regularizations: Regularization, weight: Any = 1.0,
                 fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        for i, reg in enumerate(regularizations):
            if not isinstance(reg, Regularization):
                raise TypeError(
                    f"ChainedReg: argument {i} must be a Regularization, got "
                    f"{type(reg).__name__} {reg!r}. Pass regularizer instances, e.g. "
                    "ChainedReg(L1Reg(0.1), L2Reg(0.01))."
                )
        self.regularizations = tuple(regularizations)
        self.weight = _hyper("ChainedReg", "weight", weight)

    def loss(self, value: Any) -> Any:
        if not self.regularizations:
            return 0.0
        v = _value(value)
        total = self.regularizations[0].loss(v)
        for reg in self.regularizations[1:]:
            total = total + reg.loss(v)
        return _h(self.weight, v.dtype) * total

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        if not self.regularizations:
            return jnp.zeros(_size(shape), _dftype())
        return self.regularizations[0].sample_init(shape, key)

    def reset_value(self) -> Any:
        if not self.regularizations:
            return 0.0
        return self.regularizations[0].reset_value()


class GroupLassoReg(Regularization):
    """Group lasso: ``weight * sum_g ||g||_2`` over consecutive groups of the flattened value.

    The flattened value is zero-padded to a multiple of ``group_size``.
    """

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, group_size: int = 1, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)):
            raise TypeError(
                f"GroupLassoReg: group_size must be an int, got {type(group_size).__name__} "
                f"{group_size!r}."
            )
        if group_size <= 0:
            raise ValueError(
                f"GroupLassoReg: group_size must be a positive integer, got {group_size}."
            )
        self.weight = _hyper("GroupLassoReg", "weight", weight)
        self.group_size = int(group_size)

    def loss(self, value: Any) -> jax.Array:
        flat = jnp.reshape(_value(value), (-1,))
        pad = (-flat.shape[0]) % self.group_size
        if pad:
            flat = jnp.concatenate([flat, jnp.zeros((pad,), flat.dtype)])
        groups = jnp.reshape(flat, (-1, self.group_size))
        norms = jnp.sqrt(jnp.sum(groups * groups, axis=1) + _EPS)
        return _h(self.weight, flat.dtype) * jnp.sum(norms)

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        std = 1.0 / jnp.sqrt(jax.nn.relu(self.weight) + _EPS)
        return std * jax.random.normal(_key(key), _size(shape), _dftype())

    def reset_value(self) -> float:
        return 0.0


class TotalVariationReg(Regularization):
    """Total variation: ``weight * sum|diff^order(v)|`` on the flattened value (order 1 or 2)."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, order: int = 1, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        if isinstance(order, bool) or order not in (1, 2):
            raise ValueError(f"TotalVariationReg: order must be 1 or 2, got {order!r}.")
        self.weight = _hyper("TotalVariationReg", "weight", weight)
        self.order = int(order)

    def loss(self, value: Any) -> jax.Array:
        flat = jnp.reshape(_value(value), (-1,))
        d = jnp.diff(flat, n=self.order)
        return _h(self.weight, flat.dtype) * jnp.sum(jnp.abs(d))

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        size = _size(shape)
        n = max(int(np.prod(size)), 1)
        std = 1.0 / jnp.sqrt(jax.nn.relu(self.weight) + _EPS)
        steps = std * jax.random.normal(_key(key), (n,), _dftype())
        # A random walk: smooth, as the prior prefers.
        return jnp.reshape(jnp.cumsum(steps)[: int(np.prod(size))], size) / math.sqrt(n)

    def reset_value(self) -> float:
        return 0.0


class MaxNormReg(Regularization):
    """Soft norm bound: ``weight * relu(||v||_2 - max_value)**2``."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, max_value: Any = 1.0, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("MaxNormReg", "weight", weight)
        max_value = self._positive_hyper("max_value", max_value)
        self.max_value = self._learnable(max_value)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        m = _pos(self.max_value, v.dtype)
        norm = jnp.sqrt(jnp.sum(v * v) + _EPS)
        return _h(self.weight, v.dtype) * jax.nn.relu(norm - m) ** 2

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        m = _pos(self.max_value)
        x = jax.random.normal(_key(key), _size(shape), _dftype())
        norm = jnp.sqrt(jnp.sum(x * x) + _EPS)
        return x * (0.5 * m / norm)  # half the bound: safely inside the ball

    def reset_value(self) -> float:
        return 0.0


class EntropyReg(Regularization):
    """Entropy of ``softmax`` over all entries: ``-weight * H`` (``maximize=True``) or ``weight * H``."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, maximize: bool = True, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("EntropyReg", "weight", weight)
        self.maximize = bool(maximize)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        p = _softmax_flat(v)
        h = -jnp.sum(p * jnp.log(p + _EPS))
        w = _h(self.weight, v.dtype)
        return -w * h if self.maximize else w * h

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        if self.maximize:
            return jnp.zeros(_size(shape), _dftype())
        return jax.random.normal(_key(key), _size(shape), _dftype())

    def reset_value(self) -> float:
        return 0.0


class OrthogonalReg(Regularization):
    """Orthogonality: ``weight * ||W^T W - I||_F^2`` (``W`` the value as a matrix).

    A vector of perfect-square length is read as a square matrix, another vector as a column;
    a scalar is pushed towards ``|v| = 1``.
    """

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("OrthogonalReg", "weight", weight)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        w = _h(self.weight, v.dtype)
        if v.ndim == 0:
            return w * (jnp.abs(v) - 1.0) ** 2
        m = _as_matrix(v)
        d = m.T @ m - jnp.eye(m.shape[1], dtype=v.dtype)
        return w * jnp.sum(d * d)

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        size = _size(shape)
        k = _key(key)
        if len(size) == 1:
            side = int(math.ceil(math.sqrt(size[0]))) if size[0] else 0
            q, _ = jnp.linalg.qr(jax.random.normal(k, (side, side), _dftype()))
            return jnp.reshape(q, (-1,))[: size[0]]
        if len(size) == 2:
            m, n = size
            # Reduced QR of a tall matrix has orthonormal columns; a wide one gets
            # orthonormal rows from the QR of its transpose.
            q, _ = jnp.linalg.qr(jax.random.normal(k, (max(m, n), min(m, n)), _dftype()))
            return q if m >= n else q.T
        return 0.1 * jax.random.normal(k, size, _dftype())

    def reset_value(self) -> float:
        return 0.0


class SpectralNormReg(Regularization):
    """Soft spectral-norm bound: ``weight * relu(sigma_max(W) - max_value)**2``.

    ``sigma_max`` comes from an SVD (deterministic and differentiable); a vector uses its L2
    norm. ``n_power_iterations`` is kept for API compatibility.
    """

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, max_value: Any = 1.0, n_power_iterations: int = 1,
                 fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("SpectralNormReg", "weight", weight)
        max_value = self._positive_hyper("max_value", max_value)
        self.max_value = self._learnable(max_value)
        self.n_power_iterations = int(n_power_iterations)

    @staticmethod
    def _sigma(v: jax.Array) -> jax.Array:
        if v.ndim == 0:
            return jnp.abs(v)
        if v.ndim == 1:
            return jnp.sqrt(jnp.sum(v * v))
        m = v if v.ndim == 2 else jnp.reshape(v, (v.shape[0], -1))
        return jnp.linalg.svd(m, compute_uv=False)[0]

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        m = _pos(self.max_value, v.dtype)
        return _h(self.weight, v.dtype) * jax.nn.relu(self._sigma(v) - m) ** 2

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        m = _pos(self.max_value)
        x = jax.random.normal(_key(key), _size(shape), _dftype())
        return x * (m / (self._sigma(x) + _EPS))

    def reset_value(self) -> float:
        return 0.0


class StudentTReg(Regularization):
    """Student-t prior (negative log density, normalizer included so ``df``/``scale`` can be fit)."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, df: Any = 3.0, scale: Any = 1.0,
                 fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("StudentTReg", "weight", weight)
        df = _hyper("StudentTReg", "df", df)
        scale = _hyper("StudentTReg", "scale", scale)
        _positive("StudentTReg", "df", df)
        _positive("StudentTReg", "scale", scale)
        self.df = self._learnable(df)
        self.scale = self._learnable(scale)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        df = _pos(self.df, v.dtype)
        s = _pos(self.scale, v.dtype)
        z = v / s
        data = jnp.sum(0.5 * (df + 1.0) * jnp.log1p(z * z / df))
        norm = v.size * (jnp.log(s) + gammaln(df / 2.0) + 0.5 * jnp.log(df * math.pi)
                         - gammaln((df + 1.0) / 2.0))
        return _h(self.weight, v.dtype) * (data + norm)

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        df = _pos(self.df)
        s = _pos(self.scale)
        return s * jax.random.t(_key(key), df, _size(shape), _dftype())

    def reset_value(self) -> float:
        return 0.0


class CauchyReg(Regularization):
    """Cauchy prior: ``weight * (sum(log(1 + (v/scale)**2)) + n * log(scale))``."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, scale: Any = 1.0, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("CauchyReg", "weight", weight)
        scale = self._positive_hyper("scale", scale)
        self.scale = self._learnable(scale)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        s = _pos(self.scale, v.dtype)
        z = v / s
        return _h(self.weight, v.dtype) * (jnp.sum(jnp.log1p(z * z)) + v.size * jnp.log(s))

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        s = _pos(self.scale)
        return s * jax.random.cauchy(_key(key), _size(shape), _dftype())

    def reset_value(self) -> float:
        return 0.0


class UniformReg(Regularization):
    """Soft box ``[lower, upper]``: ``weight * sum(relu(lower - v)**2 + relu(v - upper)**2)``."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, lower: Any = -1.0, upper: Any = 1.0,
                 fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("UniformReg", "weight", weight)
        lower = _hyper("UniformReg", "lower", lower)
        upper = _hyper("UniformReg", "upper", upper)
        _finite("UniformReg", "lower", lower)
        _finite("UniformReg", "upper", upper)
        _require("UniformReg", "upper - lower", upper - lower, lambda c: c > 0, "> 0")
        self.lower = self._learnable(lower)
        self.upper = self._learnable(upper)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        lo, hi = _h(self.lower, v.dtype), _h(self.upper, v.dtype)
        return _h(self.weight, v.dtype) * jnp.sum(jax.nn.relu(lo - v) ** 2
                                                  + jax.nn.relu(v - hi) ** 2)

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        lo, hi = get_value(self.lower), get_value(self.upper)
        return jax.random.uniform(_key(key), _size(shape), _dftype(), lo, hi)

    def reset_value(self) -> jax.Array:
        return (get_value(self.lower) + get_value(self.upper)) / 2.0


class LogNormalReg(Regularization):
    """Log-normal prior for positive values (normalizer in ``sigma`` included)."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, mu: Any = 0.0, sigma: Any = 1.0,
                 fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("LogNormalReg", "weight", weight)
        mu = _hyper("LogNormalReg", "mu", mu)
        sigma = _hyper("LogNormalReg", "sigma", sigma)
        _finite("LogNormalReg", "mu", mu)
        _positive("LogNormalReg", "sigma", sigma)
        self.mu = self._learnable(mu)
        self.sigma = self._learnable(sigma)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        mu = _h(self.mu, v.dtype)
        s = _pos(self.sigma, v.dtype)
        lx = jnp.log(jax.nn.relu(v) + _EPS)
        data = jnp.sum((lx - mu) ** 2 / (2.0 * s * s) + lx)
        return _h(self.weight, v.dtype) * (data + v.size * jnp.log(s))

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        s = _pos(self.sigma)
        z = jax.random.normal(_key(key), _size(shape), _dftype())
        return jnp.exp(get_value(self.mu) + s * z)

    def reset_value(self) -> jax.Array:
        return jnp.exp(get_value(self.mu))  # the median


class ExponentialReg(Regularization):
    """Exponential prior for positive values: ``weight * rate * sum(relu(v))``."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, rate: Any = 1.0, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("ExponentialReg", "weight", weight)
        rate = self._positive_hyper("rate", rate)
        self.rate = self._learnable(rate)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        r = _pos(self.rate, v.dtype)
        return _h(self.weight, v.dtype) * r * jnp.sum(jax.nn.relu(v))

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        r = _pos(self.rate)
        return jax.random.exponential(_key(key), _size(shape), _dftype()) / r

    def reset_value(self) -> float:
        return 0.0


class GammaReg(Regularization):
    """Gamma(alpha, rate beta) prior for positive values (normalizer included)."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, alpha: Any = 2.0, beta: Any = 1.0,
                 fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("GammaReg", "weight", weight)
        alpha = _hyper("GammaReg", "alpha", alpha)
        beta = _hyper("GammaReg", "beta", beta)
        _positive("GammaReg", "alpha", alpha)
        _positive("GammaReg", "beta", beta)
        self.alpha = self._learnable(alpha)
        self.beta = self._learnable(beta)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        a = _pos(self.alpha, v.dtype)
        b = _pos(self.beta, v.dtype)
        x = jax.nn.relu(v) + _EPS
        data = jnp.sum(-(a - 1.0) * jnp.log(x) + b * x)
        norm = v.size * (-a * jnp.log(b) + gammaln(a))
        return _h(self.weight, v.dtype) * (data + norm)

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        a = _pos(self.alpha)
        b = _pos(self.beta)
        return jax.random.gamma(_key(key), a, _size(shape), _dftype()) / b

    def reset_value(self) -> jax.Array:
        a = _pos(self.alpha)
        b = _pos(self.beta)
        return jnp.maximum((a - 1.0) / b, _EPS)  # the mode


class BetaReg(Regularization):
    """Beta(a, b) prior for values in ``[0, 1]`` (normalizer included)."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, a: Any = 2.0, b: Any = 2.0,
                 fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("BetaReg", "weight", weight)
        a = _hyper("BetaReg", "a", a)
        b = _hyper("BetaReg", "b", b)
        _positive("BetaReg", "a", a)
        _positive("BetaReg", "b", b)
        self.a = self._learnable(a)
        self.b = self._learnable(b)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        a = _pos(self.a, v.dtype)
        b = _pos(self.b, v.dtype)
        x = jnp.clip(v, _EPS, 1.0 - _EPS)
        data = jnp.sum(-(a - 1.0) * jnp.log(x) - (b - 1.0) * jnp.log1p(-x))
        norm = v.size * (gammaln(a) + gammaln(b) - gammaln(a + b))
        return _h(self.weight, v.dtype) * (data + norm)

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        a = _pos(self.a)
        b = _pos(self.b)
        return jax.random.beta(_key(key), a, b, _size(shape), _dftype())

    def reset_value(self) -> jax.Array:
        a = _pos(self.a)
        b = _pos(self.b)
        return jnp.clip((a - 1.0) / (a + b - 2.0 + _EPS), 0.0, 1.0)  # the mode


class HorseshoeReg(Regularization):
    """Horseshoe-like shrinkage: ``weight * (sum(log(1 + (v/tau)**2)) + n * log(tau))``."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, tau: Any = 1.0, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("HorseshoeReg", "weight", weight)
        tau = self._positive_hyper("tau", tau)
        self.tau = self._learnable(tau)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        t = _pos(self.tau, v.dtype)
        z = v / t
        return _h(self.weight, v.dtype) * (jnp.sum(jnp.log1p(z * z)) + v.size * jnp.log(t))

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        k1, k2 = _keys(key, 2)
        size, dt = _size(shape), _dftype()
        t = _pos(self.tau)
        local = jnp.abs(jax.random.cauchy(k1, size, dt))  # half-Cauchy local scales
        return t * local * jax.random.normal(k2, size, dt)

    def reset_value(self) -> float:
        return 0.0


class InverseGammaReg(Regularization):
    """Inverse-Gamma(alpha, beta) prior for positive values (variances; normalizer included)."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, alpha: Any = 2.0, beta: Any = 1.0,
                 fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("InverseGammaReg", "weight", weight)
        alpha = _hyper("InverseGammaReg", "alpha", alpha)
        beta = _hyper("InverseGammaReg", "beta", beta)
        _positive("InverseGammaReg", "alpha", alpha)
        _positive("InverseGammaReg", "beta", beta)
        self.alpha = self._learnable(alpha)
        self.beta = self._learnable(beta)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        a = _pos(self.alpha, v.dtype)
        b = _pos(self.beta, v.dtype)
        x = jax.nn.relu(v) + _EPS
        data = jnp.sum((a + 1.0) * jnp.log(x) + b / x)
        norm = v.size * (-a * jnp.log(b) + gammaln(a))
        return _h(self.weight, v.dtype) * (data + norm)

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        a = _pos(self.alpha)
        b = _pos(self.beta)
        g = jax.random.gamma(_key(key), a, _size(shape), _dftype())
        return b / (g + _EPS)

    def reset_value(self) -> jax.Array:
        a = _pos(self.alpha)
        b = _pos(self.beta)
        return b / (a + 1.0)  # the mode


class LogUniformReg(Regularization):
    """Log-uniform (Jeffreys) prior on ``[lower, upper]``: ``weight * sum(log(clip(v)))``."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, lower: Any = 1e-3, upper: Any = 1e3,
                 fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("LogUniformReg", "weight", weight)
        lower = _hyper("LogUniformReg", "lower", lower)
        upper = _hyper("LogUniformReg", "upper", upper)
        _positive("LogUniformReg", "lower", lower)
        _positive("LogUniformReg", "upper", upper)
        _require("LogUniformReg", "upper - lower", upper - lower, lambda c: c > 0, "> 0")
        self.lower = self._learnable(lower)
        self.upper = self._learnable(upper)

    def _bounds(self, dtype: Any) -> tuple:
        return (_pos(self.lower, dtype),
                _pos(self.upper, dtype))

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        lo, hi = self._bounds(v.dtype)
        x = jnp.clip(jax.nn.relu(v) + _EPS, lo, hi)
        return _h(self.weight, v.dtype) * jnp.sum(jnp.log(x))

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        lo, hi = self._bounds(_dftype())
        u = jax.random.uniform(_key(key), _size(shape), _dftype())
        return jnp.exp(jnp.log(lo) + (jnp.log(hi) - jnp.log(lo)) * u)

    def reset_value(self) -> jax.Array:
        lo, hi = self._bounds(_dftype())
        return jnp.sqrt(lo * hi)  # the geometric mean


class SpikeAndSlabReg(Regularization):
    """Spike-and-slab mixture: ``-weight * sum(log(pi*N(v; spike) + (1-pi)*N(v; slab)))``."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, spike_scale: Any = 0.01, slab_scale: Any = 1.0,
                 pi: Any = 0.5, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("SpikeAndSlabReg", "weight", weight)
        spike = _hyper("SpikeAndSlabReg", "spike_scale", spike_scale)
        slab = _hyper("SpikeAndSlabReg", "slab_scale", slab_scale)
        pi = _hyper("SpikeAndSlabReg", "pi", pi)
        _positive("SpikeAndSlabReg", "spike_scale", spike)
        _positive("SpikeAndSlabReg", "slab_scale", slab)
        _require("SpikeAndSlabReg", "pi", pi, lambda c: (c >= 0) & (c <= 1), "in [0, 1]")
        self.spike_scale = self._learnable(spike)
        self.slab_scale = self._learnable(slab)
        self.pi = self._learnable(pi)

    def _params(self, dtype: Any) -> tuple:
        return (_pos(self.spike_scale, dtype),
                _pos(self.slab_scale, dtype),
                jnp.clip(_h(self.pi, dtype), _EPS, 1.0 - _EPS))

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        s1, s2, pi = self._params(v.dtype)
        spike = jnp.exp(-0.5 * (v / s1) ** 2) / s1
        slab = jnp.exp(-0.5 * (v / s2) ** 2) / s2
        return _h(self.weight, v.dtype) * jnp.sum(-jnp.log(pi * spike + (1.0 - pi) * slab + _EPS))

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        k1, k2 = _keys(key, 2)
        size, dt = _size(shape), _dftype()
        s1, s2, pi = self._params(dt)
        is_spike = jax.random.uniform(k1, size, dt) < pi
        z = jax.random.normal(k2, size, dt)
        return jnp.where(is_spike, s1 * z, s2 * z)

    def reset_value(self) -> float:
        return 0.0


class DirichletReg(Regularization):
    """Symmetric Dirichlet prior on ``softmax`` over all entries: ``-weight * sum((alpha-1) log p)``."""

    __module__ = "brainstate.nn"

    def __init__(self, weight: Any = 1.0, alpha: Any = 1.0, fit_hyper: bool = False) -> None:
        super().__init__(fit_hyper)
        self.weight = _hyper("DirichletReg", "weight", weight)
        alpha = self._positive_hyper("alpha", alpha)
        self.alpha = self._learnable(alpha)

    def loss(self, value: Any) -> jax.Array:
        v = _value(value)
        a = _pos(self.alpha, v.dtype)
        p = _softmax_flat(v)
        return _h(self.weight, v.dtype) * jnp.sum(-(a - 1.0) * jnp.log(p + _EPS))

    def sample_init(self, shape: Any, key: Any = None) -> jax.Array:
        size, dt = _size(shape), _dftype()
        a = _pos(self.alpha)
        g = jax.random.gamma(_key(key), a, size, dt)
        return jnp.log(g / (jnp.sum(g) + _EPS) + _EPS)  # logits of a Dirichlet draw

    def reset_value(self) -> float:
        return 0.0
