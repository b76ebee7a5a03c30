"""The initializer classes of ``brainstate.nn.init`` (which re-exports them; its docstring says
how they draw, cast and take units)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from brainstate import environ, random
from brainstate._units import attach as _attach, brainunit as _brainunit
from brainstate._units import is_quantity as _is_quantity, split as _split
from brainstate.nn._sizes import _broadcasts_to, to_size
from brainstate.typing import DTypeLike, SeedOrKey, Size
from brainstate.util import PrettyAttr, PrettyRepr, PrettyType

if TYPE_CHECKING:  # annotations only: brainstate.typing.ArrayLike is built lazily
    from brainstate.typing import ArrayLike

__all__ = [
    "Initializer", "ZeroInit", "Constant", "Identity", "Normal", "TruncatedNormal", "Uniform",
    "Gamma", "Exponential", "VarianceScaling", "KaimingUniform", "KaimingNormal",
    "XavierUniform", "XavierNormal", "LecunUniform", "LecunNormal", "Orthogonal",
    "DeltaOrthogonal",
]

_MODULE = "brainstate.nn.init"  # where the classes are documented and pickled

# Standard deviation of a standard normal truncated to [-2, 2]: dividing by it makes the
# truncated draw of VarianceScaling have the requested variance.
_TRUNC_STD = 0.87962566103423978


def _check_unit(owner: str, unit: Any) -> Any:
    if unit is None:
        return None
    bu = _brainunit()
    if bu is None or not isinstance(unit, bu.Unit):
        raise TypeError(
            f"{owner}: unit must be a brainunit Unit (e.g. brainunit.mV) or None, got "
            f"{type(unit).__name__}: {unit!r}."
        )
    return unit


def _check_unit_once(owner: str, unit: Any, **values: Any) -> None:
    """Refuse a ``unit=`` beside Quantity parameters: two sources for one unit."""
    if unit is None:
        return
    for name, value in values.items():
        if _is_quantity(value):
            raise ValueError(
                f"{owner}: {name} is a Quantity and unit={unit} was given too. Give the unit "
                f"once: either plain numbers with unit=..., or Quantities without unit."
            )


def _positive(owner: str, name: str, value: Any) -> None:
    """Refuse a concrete non-positive ``value`` (traced values cannot be checked here)."""
    m, _ = _split(value)
    if isinstance(m, jax.core.Tracer):
        return
    if not np.all(np.asarray(m) > 0):
        raise ValueError(f"{owner}: {name} must be positive, got {value!r}.")


class Initializer(PrettyRepr):
    """Base class of initializers: ``init(shape, dtype=None, rng=None, key=None)`` -> array.

    Subclasses implement :meth:`__call__`. The ``repr`` lists the public attributes.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from brainstate.nn import init
    >>> class Twos(init.Initializer):
    ...     def __call__(self, shape, dtype=None, rng=None, key=None):
    ...         return jnp.full(init.to_size(shape), 2.0, dtype=dtype or jnp.float32)
    >>> init.param(Twos(), (2,))
    Array([2., 2.], dtype=float32)
    """

    __module__ = _MODULE

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must implement __call__(shape, dtype=None, rng=None, "
            "key=None)."
        )

    def __pretty_repr__(self):
        yield PrettyType(type=type(self))
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            yield PrettyAttr(name, repr(value))


class _RandomInit(Initializer):
    """An initializer drawing from ``brainstate.random`` (``seed`` at construction)."""

    def __init__(self, seed: SeedOrKey | None) -> None:
        self.seed = seed
        # None: the global DEFAULT state, looked up at each draw.
        self._rng = None if seed is None else random.default_rng(seed)

    @property
    def rng(self) -> random.RandomState:
        """The random state drawn from: the seeded one, else the global ``DEFAULT``."""
        return random.DEFAULT if self._rng is None else self._rng

    def _draw_args(self, rng: Any, key: SeedOrKey | None) -> tuple[Any, Any]:
        if rng is None:
            rng = self.rng
        elif not isinstance(rng, random.RandomState):
            raise TypeError(
                f"{type(self).__name__}: rng must be a brainstate.random.RandomState, got "
                f"{type(rng).__name__}. Pass a seed or PRNG key as key=... instead."
            )
        return rng, key


def _dtype(dtype: DTypeLike | None) -> Any:
    return environ.dftype() if dtype is None else dtype


class ZeroInit(Initializer):
    """Zeros.

    Parameters
    ----------
    unit : brainunit Unit, optional
        Unit of the result (plain arrays when None).

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.ZeroInit()((2, 2))
    Array([[0., 0.],
           [0., 0.]], dtype=float32)
    """

    __module__ = _MODULE

    def __init__(self, unit: Any = None) -> None:
        self.unit = _check_unit("ZeroInit", unit)

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        return _attach(jnp.zeros(to_size(shape), dtype=_dtype(dtype)), self.unit)


class Constant(Initializer):
    """A constant value (a scalar, or an array broadcast to the shape).

    Parameters
    ----------
    value : float, array or Quantity, default 1.0
        The value; a Quantity gives a Quantity in its unit.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.Constant(0.5)((3,))
    Array([0.5, 0.5, 0.5], dtype=float32)
    """

    __module__ = _MODULE

    def __init__(self, value: ArrayLike = 1.0) -> None:
        self.value = value

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        shape = to_size(shape)
        m, unit = _split(self.value)
        if not _broadcasts_to(tuple(np.shape(m)), shape):
            raise ValueError(
                f"Constant: the value of shape {np.shape(m)} does not broadcast to the "
                f"requested shape {shape}."
            )
        return _attach(jnp.full(shape, m, dtype=_dtype(dtype)), unit)


class Identity(Initializer):
    """The identity matrix scaled by ``value`` (Le et al., 2015, for ReLU recurrent nets).

    Parameters
    ----------
    value : float or array, default 1.0
        The diagonal (a scalar, or one entry per diagonal element).
    unit : brainunit Unit, optional
        Unit of the result.

    Notes
    -----
    A 2-D shape ``(n, m)`` gives an ``n x m`` matrix with ones on the main diagonal; a 1-D
    shape ``(n,)`` gives the square ``n x n`` identity (as upstream). More dimensions raise.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.Identity(2.0)((2, 3))
    Array([[2., 0., 0.],
           [0., 2., 0.]], dtype=float32)
    """

    __module__ = _MODULE

    def __init__(self, value: ArrayLike = 1.0, unit: Any = None) -> None:
        self.value = value
        self.unit = _check_unit("Identity", unit)

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        shape = to_size(shape)
        if len(shape) not in (1, 2):
            raise ValueError(
                f"Identity: only 1-D or 2-D shapes are supported, got {shape}."
            )
        n, m = (shape[0], shape[0]) if len(shape) == 1 else shape
        k = min(n, m)
        dtype = _dtype(dtype)
        diag = jnp.broadcast_to(jnp.asarray(self.value, dtype=dtype), (k,))
        idx = jnp.arange(k)
        out = jnp.zeros((n, m), dtype=dtype).at[idx, idx].set(diag)
        return _attach(out, self.unit)


class Normal(_RandomInit):
    """Normal draws with mean ``mean`` and standard deviation ``scale``.

    Parameters
    ----------
    mean : float, array or Quantity, default 0.0
    scale : float, array or Quantity, default 1.0
        Must be positive.
    unit : brainunit Unit, optional
        Unit of the result (not together with Quantity ``mean``/``scale``).
    seed : int or PRNG key, optional
        Draw from a state of its own seeded by it (else from the global state).

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.Normal(0.0, 0.1, seed=0)((3, 2)).shape
    (3, 2)
    """

    __module__ = _MODULE

    def __init__(self, mean: ArrayLike = 0.0, scale: ArrayLike = 1.0, unit: Any = None,
                 seed: SeedOrKey | None = None) -> None:
        _positive("Normal", "scale", scale)
        self.mean = mean
        self.scale = scale
        self.unit = _check_unit("Normal", unit)
        _check_unit_once("Normal", self.unit, mean=mean, scale=scale)
        super().__init__(seed)

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        rng, key = self._draw_args(rng, key)
        w = rng.normal(self.mean, self.scale, size=to_size(shape), key=key, dtype=_dtype(dtype))
        return _attach(w, self.unit)


class TruncatedNormal(_RandomInit):
    """Normal draws (mean ``loc``, std ``scale``) truncated to ``[lower, upper]``.

    Parameters
    ----------
    loc : float, array or Quantity, default 0.0
        Mean before truncation.
    scale : float, array or Quantity, default 1.0
        Standard deviation before truncation; must be positive.
    unit : brainunit Unit, optional
        Unit of the result.
    lower, upper : float, array or Quantity, default -2.0, 2.0
        The bounds, in the same scale as the samples (absolute values, not multiples of
        ``scale``).
    seed : int or PRNG key, optional

    Notes
    -----
    Differs from upstream: a non-positive ``scale`` or ``lower >= upper`` raise ``ValueError``
    (upstream used an ``assert``); upstream's docstring called the bounds multiples of the
    standard deviation while its code used them as absolute bounds, which is kept here.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> w = init.TruncatedNormal(scale=1.0, lower=-1.0, upper=1.0, seed=0)((100,))
    >>> bool((abs(w) <= 1.0).all())
    True
    """

    __module__ = _MODULE

    def __init__(self, loc: ArrayLike = 0.0, scale: ArrayLike = 1.0, unit: Any = None,
                 lower: ArrayLike = -2.0, upper: ArrayLike = 2.0,
                 seed: SeedOrKey | None = None) -> None:
        _positive("TruncatedNormal", "scale", scale)
        lo, hi = _split(lower)[0], _split(upper)[0]
        if not isinstance(lo, jax.core.Tracer) and not isinstance(hi, jax.core.Tracer) \
                and _split(lower)[1] == _split(upper)[1] and not np.all(np.less(lo, hi)):
            raise ValueError(
                f"TruncatedNormal: lower must be below upper, got lower={lower!r}, "
                f"upper={upper!r}."
            )
        self.loc = loc
        self.scale = scale
        self.lower = lower
        self.upper = upper
        self.unit = _check_unit("TruncatedNormal", unit)
        _check_unit_once("TruncatedNormal", self.unit, loc=loc, scale=scale, lower=lower,
                         upper=upper)
        super().__init__(seed)

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        rng, key = self._draw_args(rng, key)
        w = rng.truncated_normal(self.lower, self.upper, size=to_size(shape), loc=self.loc,
                                 scale=self.scale, key=key, dtype=_dtype(dtype))
        return _attach(w, self.unit)


class Uniform(_RandomInit):
    """Uniform draws on ``[min_val, max_val)``.

    Parameters
    ----------
    min_val, max_val : float, array or Quantity, default 0.0, 1.0
    seed : int or PRNG key, optional
    unit : brainunit Unit, optional

    Examples
    --------
    >>> from brainstate.nn import init
    >>> w = init.Uniform(-1.0, 1.0, seed=0)((50,))
    >>> bool(((w >= -1.0) & (w < 1.0)).all())
    True
    """

    __module__ = _MODULE

    def __init__(self, min_val: ArrayLike = 0.0, max_val: ArrayLike = 1.0,
                 seed: SeedOrKey | None = None, unit: Any = None) -> None:
        lo, hi = _split(min_val)[0], _split(max_val)[0]
        if not isinstance(lo, jax.core.Tracer) and not isinstance(hi, jax.core.Tracer) \
                and _split(min_val)[1] == _split(max_val)[1] and not np.all(np.less(lo, hi)):
            raise ValueError(
                f"Uniform: min_val must be below max_val, got min_val={min_val!r}, "
                f"max_val={max_val!r}."
            )
        self.min_val = min_val
        self.max_val = max_val
        self.unit = _check_unit("Uniform", unit)
        _check_unit_once("Uniform", self.unit, min_val=min_val, max_val=max_val)
        super().__init__(seed)

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        rng, key = self._draw_args(rng, key)
        w = rng.uniform(self.min_val, self.max_val, size=to_size(shape), key=key,
                        dtype=_dtype(dtype))
        return _attach(w, self.unit)


class Gamma(_RandomInit):
    """Gamma draws with shape parameter ``shape`` and scale ``scale`` (mean ``shape*scale``).

    Parameters
    ----------
    shape : float or array
        The (positive) shape parameter.
    unit : brainunit Unit, optional
    scale : float, array or Quantity, optional
        The scale (default 1).
    seed : int or PRNG key, optional

    Examples
    --------
    >>> from brainstate.nn import init
    >>> w = init.Gamma(2.0, scale=0.5, seed=0)((10,))
    >>> bool((w > 0).all())
    True
    """

    __module__ = _MODULE

    def __init__(self, shape: ArrayLike, unit: Any = None, scale: ArrayLike | None = None,
                 seed: SeedOrKey | None = None) -> None:
        _positive("Gamma", "shape", shape)
        if scale is not None:
            _positive("Gamma", "scale", scale)
        self.shape = shape
        self.scale = scale
        self.unit = _check_unit("Gamma", unit)
        _check_unit_once("Gamma", self.unit, scale=scale)
        super().__init__(seed)

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        rng, key = self._draw_args(rng, key)
        w = rng.gamma(self.shape, self.scale, size=to_size(shape), key=key, dtype=_dtype(dtype))
        return _attach(w, self.unit)


class Exponential(_RandomInit):
    """Exponential draws with mean ``scale`` (the inverse rate).

    Parameters
    ----------
    scale : float, array or Quantity, optional
        The mean (default 1).
    seed : int or PRNG key, optional
    unit : brainunit Unit, optional

    Examples
    --------
    >>> from brainstate.nn import init
    >>> w = init.Exponential(2.0, seed=0)((10,))
    >>> bool((w >= 0).all())
    True
    """

    __module__ = _MODULE

    def __init__(self, scale: ArrayLike | None = None, seed: SeedOrKey | None = None,
                 unit: Any = None) -> None:
        if scale is not None:
            _positive("Exponential", "scale", scale)
        self.scale = scale
        self.unit = _check_unit("Exponential", unit)
        _check_unit_once("Exponential", self.unit, scale=scale)
        super().__init__(seed)

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        rng, key = self._draw_args(rng, key)
        w = rng.exponential(self.scale, size=to_size(shape), key=key, dtype=_dtype(dtype))
        return _attach(w, self.unit)


def _axis(owner: str, name: str, axis: int, ndim: int, shape: tuple) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{owner}: {name}={axis} is out of range for the shape {shape} ({ndim} dims)."
        )
    return axis % ndim


def _compute_fans(shape: tuple, in_axis: int = -2, out_axis: int = -1,
                  owner: str = "VarianceScaling") -> tuple[float, float]:
    """``(fan_in, fan_out)``: the in/out axis sizes times the receptive field (other axes)."""
    if len(shape) < 2:
        raise ValueError(
            f"{owner}: fans need a shape of at least 2 dims (in and out axes), got {shape}."
        )
    i = _axis(owner, "in_axis", in_axis, len(shape), shape)
    o = _axis(owner, "out_axis", out_axis, len(shape), shape)
    if i == o:
        raise ValueError(f"{owner}: in_axis and out_axis name the same axis {i} of {shape}.")
    receptive = math.prod(d for k, d in enumerate(shape) if k not in (i, o))
    return float(shape[i] * receptive), float(shape[o] * receptive)


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")


class VarianceScaling(_RandomInit):
    r"""Draws with variance ``scale / n``, ``n`` a fan of the weight shape.

    ``n`` is ``fan_in``, ``fan_out`` or their mean (``mode``), where ``fan_in`` is the size of
    ``in_axis`` and ``fan_out`` the size of ``out_axis``, both times the product of the other
    axes (the receptive field). The draw is

    - ``"truncated_normal"``: a standard normal truncated to ``[-2, 2]``, divided by the
      truncated distribution's standard deviation (0.8796...) and multiplied by
      :math:`\sqrt{\text{variance}}`;
    - ``"normal"``: a standard normal times :math:`\sqrt{\text{variance}}`;
    - ``"uniform"``: uniform on :math:`[-\sqrt{3\,\text{variance}}, \sqrt{3\,\text{variance}})`.

    Parameters
    ----------
    scale : float
        Positive variance scale.
    mode : {'fan_in', 'fan_out', 'fan_avg'}
    distribution : {'truncated_normal', 'normal', 'uniform'}
    in_axis, out_axis : int, default -2, -1
    seed : int or PRNG key, optional
    unit : brainunit Unit, optional

    Notes
    -----
    Differs from upstream: bad ``mode``/``distribution`` raise ``ValueError`` naming the choices
    (upstream: a bare ``assert``); shapes with fewer than 2 dims, out-of-range or equal axes
    and empty fans raise ``ValueError`` (upstream failed with an ``IndexError`` or divided by
    zero).

    Examples
    --------
    >>> from brainstate.nn import init
    >>> w = init.VarianceScaling(2.0, 'fan_in', 'normal', seed=0)((400, 300))
    >>> round(float(w.std()) ** 2 * 400, 1)
    2.0
    """

    __module__ = _MODULE

    def __init__(self, scale: float, mode: str, distribution: str, in_axis: int = -2,
                 out_axis: int = -1, seed: SeedOrKey | None = None, unit: Any = None) -> None:
        owner = type(self).__name__
        if mode not in _MODES:
            raise ValueError(f"{owner}: mode must be one of {list(_MODES)}, got {mode!r}.")
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"{owner}: distribution must be one of {list(_DISTRIBUTIONS)}, got "
                f"{distribution!r}."
            )
        _positive(owner, "scale", scale)
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.in_axis = in_axis
        self.out_axis = out_axis
        self.unit = _check_unit(owner, unit)
        super().__init__(seed)

    def _std(self, shape: tuple) -> float:
        fan_in, fan_out = _compute_fans(shape, self.in_axis, self.out_axis, type(self).__name__)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        if n == 0:
            raise ValueError(
                f"{type(self).__name__}: the {self.mode} of shape {shape} is 0 (an empty axis)."
            )
        return math.sqrt(float(self.scale) / n)

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        rng, key = self._draw_args(rng, key)
        shape = to_size(shape)
        dtype = _dtype(dtype)
        std = self._std(shape)
        if self.distribution == "truncated_normal":
            z = rng.truncated_normal(-2.0, 2.0, size=shape, key=key, dtype=dtype)
            w = z * jnp.asarray(std / _TRUNC_STD, dtype=dtype)
        elif self.distribution == "normal":
            w = rng.normal(size=shape, key=key, dtype=dtype) * jnp.asarray(std, dtype=dtype)
        else:
            bound = math.sqrt(3.0) * std
            w = rng.uniform(-1.0, 1.0, size=shape, key=key, dtype=dtype) * jnp.asarray(
                bound, dtype=dtype)
        return _attach(w, self.unit)


class KaimingUniform(VarianceScaling):
    """He uniform: :class:`VarianceScaling` with ``scale=2``, ``fan_in``, ``uniform``.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.KaimingUniform(seed=0)((8, 4)).shape
    (8, 4)
    """

    __module__ = _MODULE

    def __init__(self, scale: float = 2.0, mode: str = "fan_in", distribution: str = "uniform",
                 in_axis: int = -2, out_axis: int = -1, seed: SeedOrKey | None = None,
                 unit: Any = None) -> None:
        super().__init__(scale, mode, distribution, in_axis, out_axis, seed, unit)


class KaimingNormal(VarianceScaling):
    """He normal: :class:`VarianceScaling` with ``scale=2``, ``fan_in``, ``truncated_normal``.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.KaimingNormal(seed=0)((8, 4)).shape
    (8, 4)
    """

    __module__ = _MODULE

    def __init__(self, scale: float = 2.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", in_axis: int = -2, out_axis: int = -1,
                 seed: SeedOrKey | None = None, unit: Any = None) -> None:
        super().__init__(scale, mode, distribution, in_axis, out_axis, seed, unit)


class XavierUniform(VarianceScaling):
    """Glorot uniform: :class:`VarianceScaling` with ``scale=1``, ``fan_avg``, ``uniform``.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.XavierUniform(seed=0)((8, 4)).shape
    (8, 4)
    """

    __module__ = _MODULE

    def __init__(self, scale: float = 1.0, mode: str = "fan_avg", distribution: str = "uniform",
                 in_axis: int = -2, out_axis: int = -1, seed: SeedOrKey | None = None,
                 unit: Any = None) -> None:
        super().__init__(scale, mode, distribution, in_axis, out_axis, seed, unit)


class XavierNormal(VarianceScaling):
    """Glorot normal: :class:`VarianceScaling` with ``scale=1``, ``fan_avg``, ``truncated_normal``.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.XavierNormal(seed=0)((8, 4)).shape
    (8, 4)
    """

    __module__ = _MODULE

    def __init__(self, scale: float = 1.0, mode: str = "fan_avg",
                 distribution: str = "truncated_normal", in_axis: int = -2, out_axis: int = -1,
                 seed: SeedOrKey | None = None, unit: Any = None) -> None:
        super().__init__(scale, mode, distribution, in_axis, out_axis, seed, unit)


class LecunUniform(VarianceScaling):
    """LeCun uniform: :class:`VarianceScaling` with ``scale=1``, ``fan_in``, ``uniform``.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.LecunUniform(seed=0)((8, 4)).shape
    (8, 4)
    """

    __module__ = _MODULE

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "uniform",
                 in_axis: int = -2, out_axis: int = -1, seed: SeedOrKey | None = None,
                 unit: Any = None) -> None:
        super().__init__(scale, mode, distribution, in_axis, out_axis, seed, unit)


class LecunNormal(VarianceScaling):
    """LeCun normal: :class:`VarianceScaling` with ``scale=1``, ``fan_in``, ``truncated_normal``.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.LecunNormal(seed=0)((8, 4)).shape
    (8, 4)
    """

    __module__ = _MODULE

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", in_axis: int = -2, out_axis: int = -1,
                 seed: SeedOrKey | None = None, unit: Any = None) -> None:
        super().__init__(scale, mode, distribution, in_axis, out_axis, seed, unit)


class Orthogonal(_RandomInit):
    """Uniformly distributed (Haar) orthogonal matrices, times ``scale``.

    The array is seen as a matrix with ``shape[axis]`` rows and the product of the other axes
    as columns; the smaller side gets orthonormal vectors (orthonormal columns when there are
    more rows, orthonormal rows otherwise).

    Parameters
    ----------
    scale : float, default 1.0
    axis : int, default -1
        The axis whose entries index the rows.
    seed : int or PRNG key, optional
    unit : brainunit Unit, optional

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from brainstate.nn import init
    >>> q = init.Orthogonal(seed=0)((4, 4))
    >>> bool(jnp.allclose(q.T @ q, jnp.eye(4), atol=1e-5))
    True
    """

    __module__ = _MODULE

    def __init__(self, scale: ArrayLike = 1.0, axis: int = -1, seed: SeedOrKey | None = None,
                 unit: Any = None) -> None:
        self.scale = scale
        self.axis = axis
        self.unit = _check_unit(type(self).__name__, unit)
        super().__init__(seed)

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        rng, key = self._draw_args(rng, key)
        shape = to_size(shape)
        dtype = _dtype(dtype)
        if not shape:
            raise ValueError(f"{type(self).__name__}: needs a shape of at least 1 dim, got ().")
        axis = _axis(type(self).__name__, "axis", self.axis, len(shape), shape)
        n_rows = shape[axis]
        n_cols = math.prod(shape) // n_rows if n_rows else 0
        tall = (max(n_rows, n_cols), min(n_rows, n_cols))
        a = rng.normal(size=tall, key=key, dtype=dtype)
        q, r = jnp.linalg.qr(a)
        # Multiplying column j by sign(r_jj) makes the QR factor unique, hence Haar-distributed.
        q = q * jnp.sign(jnp.diagonal(r))[None, :]
        if n_rows < n_cols:
            q = q.T
        rest = tuple(d for k, d in enumerate(shape) if k != axis)
        q = jnp.moveaxis(jnp.reshape(q, (n_rows,) + rest), 0, axis)
        m, unit = _split(self.scale)
        return _attach(jnp.asarray(m, dtype=dtype) * q, unit if unit is not None else self.unit)


class DeltaOrthogonal(_RandomInit):
    """Delta-orthogonal convolution kernels (Xiao et al., 2018, arXiv:1806.05393).

    A kernel of shape ``(*spatial, in, out)`` (1 to 3 spatial dims) is zero except at the
    spatial centre, which holds an orthogonal ``in x out`` matrix times ``scale``.

    Parameters
    ----------
    scale : float, default 1.0
    axis : int, default -1
        Passed to :class:`Orthogonal` for the centre matrix.
    seed : int or PRNG key, optional
    unit : brainunit Unit, optional

    Notes
    -----
    Differs from upstream: ``dtype``, ``rng`` and ``key`` given to the call reach the centre
    matrix (upstream drew it with the default dtype and its own state).

    Examples
    --------
    >>> from brainstate.nn import init
    >>> w = init.DeltaOrthogonal(seed=0)((3, 4, 4))
    >>> float(abs(w[0]).sum()), w.shape
    (0.0, (3, 4, 4))
    """

    __module__ = _MODULE

    def __init__(self, scale: ArrayLike = 1.0, axis: int = -1, seed: SeedOrKey | None = None,
                 unit: Any = None) -> None:
        self.scale = scale
        self.axis = axis
        self.unit = _check_unit(type(self).__name__, unit)
        super().__init__(seed)
        self._orthogonal = Orthogonal(scale=scale, axis=axis)

    def __call__(self, shape: Size, dtype: DTypeLike | None = None, rng: Any = None,
                 key: SeedOrKey | None = None) -> Any:
        rng, key = self._draw_args(rng, key)
        shape = to_size(shape)
        dtype = _dtype(dtype)
        if len(shape) not in (3, 4, 5):
            raise ValueError(
                f"DeltaOrthogonal: needs a 3-D, 4-D or 5-D kernel shape, got {shape}."
            )
        if shape[-2] > shape[-1]:
            raise ValueError(
                f"DeltaOrthogonal: the input channels ({shape[-2]}) must not exceed the output "
                f"channels ({shape[-1]}) of the shape {shape}."
            )
        centre = self._orthogonal(shape[-2:], dtype=dtype, rng=rng, key=key)
        m, unit = _split(centre)
        mid = tuple((k - 1) // 2 for k in shape[:-2])
        w = jnp.zeros(shape, dtype=dtype).at[mid].set(m)
        return _attach(w, unit if unit is not None else self.unit)
