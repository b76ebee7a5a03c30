"""Initializers (``nn.init``): arrays drawn from ``brainstate.random`` for parameters and states.

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
import operator
from typing import TYPE_CHECKING, Any, Callable, Sequence, overload

import jax
import jax.numpy as jnp
import numpy as np

from brainstate import environ, random
from brainstate._state import State
from brainstate._units import attach as _attach, brainunit as _brainunit
from brainstate._units import is_quantity as _is_quantity, split as _split
from brainstate.typing import DTypeLike, SeedOrKey, Size
from brainstate.util import PrettyAttr, PrettyRepr, PrettyType

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

_MODULE = "brainstate.nn.init"

# Standard deviation of a standard normal truncated to [-2, 2]: dividing by it makes the
# truncated draw of VarianceScaling have the requested variance.
_TRUNC_STD = 0.87962566103423978


# ---------------------------------------------------------------------------------------------
# optional units
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------------


@overload
def to_size(x: None) -> None: ...
@overload
def to_size(x: Size) -> tuple[int, ...]: ...


def to_size(x: Any) -> tuple[int, ...] | None:
    """Normalise a size to a tuple of ints (``None`` stays ``None``).

    Parameters
    ----------
    x : int, sequence of int or None
        The size.

    Returns
    -------
    tuple of int or None

    Raises
    ------
    ValueError
        When ``x`` is neither an int, a sequence of ints nor None, or holds a negative entry.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.to_size(3), init.to_size([2, 4]), init.to_size(None)
    ((3,), (2, 4), None)
    """
    if x is None:
        return None
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        dims: Sequence[Any] = (x,)
    elif isinstance(x, (tuple, list)):
        dims = x
    else:
        raise ValueError(
            f"Cannot make a size from {type(x).__name__}: {x!r}; give an int or a sequence "
            "of ints."
        )
    out = []
    for d in dims:
        if isinstance(d, (bool, np.bool_)):
            raise ValueError(f"Cannot make a size from {x!r}: {d!r} is not an int.")
        try:
            d = operator.index(d)
        except TypeError:
            raise ValueError(f"Cannot make a size from {x!r}: {d!r} is not an int.") from None
        if d < 0:
            raise ValueError(f"Cannot make a size from {x!r}: dimensions must be >= 0.")
        out.append(d)
    return tuple(out)


def are_broadcastable_shapes(shape1: Sequence[int], shape2: Sequence[int]) -> bool:
    """Whether two shapes broadcast against each other (NumPy rules).

    Trailing dimensions are compared pairwise: each pair must be equal or contain a 1.
    Leading dimensions present in only one shape are not compared.

    Examples
    --------
    >>> from brainstate.nn import init
    >>> init.are_broadcastable_shapes((1, 3), (4, 3)), init.are_broadcastable_shapes((2,), (3,))
    (True, False)
    """
    for d1, d2 in zip(tuple(shape1)[::-1], tuple(shape2)[::-1]):
        if d1 != d2 and d1 != 1 and d2 != 1:
            return False
    return True


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether an array of ``shape`` broadcasts to exactly ``target`` (no extra axes)."""
    return len(shape) <= len(target) and all(
        d == t or d == 1 for d, t in zip(shape[::-1], target[::-1])
    )


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


# ---------------------------------------------------------------------------------------------
# initializers
# ---------------------------------------------------------------------------------------------


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
