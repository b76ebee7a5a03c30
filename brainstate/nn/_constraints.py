"""Constraint transforms: bijections from an unconstrained array onto a constrained range.

A :class:`Transform` maps the unconstrained array ``x`` that an optimizer updates onto the
constrained value ``y = T(x)`` a model reads (``forward``), and back (``inverse``). ``nn.Param``
stores ``x = T.inverse(value)`` and exposes ``T.forward(x)``. Transforms are plain Python
objects over :mod:`jax.numpy`: not Modules, not pytrees, safe to call inside ``jit``/``grad``.

Numerical contract shared by every built-in transform:

- ``forward`` of a finite input lands inside the transform's range wherever floating point
  can represent such a value. Where the exact result would round onto an open bound (a
  saturated sigmoid, an underflowed softplus), the output is moved to the nearest normal
  float inside the range, so ``inverse`` of it stays finite.
- ``inverse`` uses cancellation-free formulas (``z + log(-expm1(-z))`` for softplus, logits
  from the distances to both bounds), so ``inverse(forward(x))`` is as accurate as the
  conditioning of ``forward`` allows.
- Gradients of ``forward`` are finite for finite inputs (``jnp.where`` branches are both
  finite, ``MaskedT`` feeds masked-out entries a safe value).
- :meth:`Transform.check_in_range` and :meth:`Transform.domain_error` tell whether a
  constrained value can be produced by ``forward`` (used by ``nn.Param`` to reject an initial
  value outside the range).

Units: bounds are plain numbers or arrays. Unit-carrying bounds (``brainunit`` Quantities) are
not supported yet; passing one raises ``TypeError``. Pass the bare number in the unit the
parameter is stored in.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "save_exp",
    "Transform",
    "IdentityT",
    "SoftplusT",
    "NegSoftplusT",
    "ExpT",
    "LogT",
    "SigmoidT",
    "ScaledSigmoidT",
    "TanhT",
    "SoftsignT",
    "ClipT",
    "AffineT",
    "ChainT",
    "MaskedT",
    "ReluT",
    "PositiveT",
    "NegativeT",
    "PowerT",
    "OrderedT",
    "SimplexT",
    "UnitVectorT",
]

#: Exponent cap of :func:`save_exp` as used by the exponential transforms.
_EXP_MAX = 20.0
#: ``AffineT`` scales at or below this magnitude count as zero (upstream's ``allclose`` atol).
_AFFINE_ZERO_ATOL = 1e-8
#: ``PowerT`` treats ``|lmbda|`` below this as the ``log`` limit of Box-Cox.
_POWER_LOG_ATOL = 1e-10
#: ``UnitVectorT`` adds this to the squared norm so the zero vector has a finite gradient.
_UNIT_NORM_EPS = 1e-8


def save_exp(x: Any, max_value: float = _EXP_MAX) -> jax.Array:
    """Compute ``exp(min(x, max_value))``, an exponential that cannot overflow.

    Parameters
    ----------
    x : array_like
        Input.
    max_value : float, optional
        Exponent cap, by default 20.0 (``exp(20) ~ 4.85e8``). Inputs above it saturate, so
        the map is not invertible there.

    Returns
    -------
    jax.Array
        ``exp(min(x, max_value))``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> float(save_exp(jnp.float32(1000.0))) == float(jnp.exp(jnp.float32(20.0)))
    True
    """
    return jnp.exp(jnp.minimum(x, max_value))


# --- helpers -------------------------------------------------------------------------------


def _is_tracer(v: Any) -> bool:
    return isinstance(v, jax.core.Tracer)


def _as_float(x: Any) -> jax.Array:
    # Integer or bool input would either fail under strict promotion or truncate; the
    # constrained value of a parameter is always floating.
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


def _reject_units(owner: str, name: str, v: Any) -> None:
    if hasattr(v, "mantissa") and hasattr(v, "unit"):
        raise TypeError(
            f"{owner}: {name} carries a physical unit ({type(v).__name__} {v!r}); unit-carrying "
            f"bounds are not supported yet. Pass the bare number in the unit your parameter is "
            f"stored in, e.g. {name}=value.mantissa."
        )


def _as_param(owner: str, name: str, v: Any) -> Any:
    """Normalise a bound/hyper-parameter: Python float (stays weakly typed) or float array."""
    _reject_units(owner, name, v)
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be a number or an array of numbers, got {v!r}.")
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    if _is_tracer(v):
        return v if jnp.issubdtype(v.dtype, jnp.inexact) else v.astype(jnp.result_type(float))
    try:
        arr = jnp.asarray(v)
    except TypeError as exc:
        raise TypeError(
            f"{owner}: {name} must be a number or an array of numbers, got "
            f"{type(v).__name__} {v!r}."
        ) from exc
    if jnp.issubdtype(arr.dtype, jnp.complexfloating) or arr.dtype == jnp.bool_:
        raise TypeError(f"{owner}: {name} must be real-valued, got dtype {arr.dtype}.")
    if not jnp.issubdtype(arr.dtype, jnp.inexact):
        arr = arr.astype(jnp.result_type(float))
    return arr


def _concrete(v: Any) -> np.ndarray | None:
    """A float64 numpy view of ``v``, or ``None`` while ``v`` is traced (validation skipped)."""
    if _is_tracer(v):
        return None
    return np.asarray(v, dtype=np.float64)


def _require_finite(owner: str, name: str, v: Any) -> None:
    c = _concrete(v)
    if c is not None and not np.all(np.isfinite(c)):
        raise ValueError(
            f"{owner}: {name} must be finite, got {name}={_fmt(v)}. Pass a finite number."
        )


def _require_not_nan(owner: str, name: str, v: Any) -> None:
    c = _concrete(v)
    if c is not None and np.any(np.isnan(c)):
        raise ValueError(f"{owner}: {name} must not be NaN, got {name}={_fmt(v)}.")


def _require_ordered(owner: str, lower: Any, upper: Any, *, allow_equal: bool = False) -> None:
    lo, hi = _concrete(lower), _concrete(upper)
    if lo is None or hi is None:
        return
    try:
        ok = np.all(lo <= hi) if allow_equal else np.all(lo < hi)
    except ValueError as exc:  # shapes that do not broadcast
        raise ValueError(
            f"{owner}: lower and upper must broadcast against each other, got shapes "
            f"{lo.shape} and {hi.shape}."
        ) from exc
    if not ok:
        rel = "<=" if allow_equal else "<"
        raise ValueError(
            f"{owner}: expected lower {rel} upper (elementwise), got lower={_fmt(lower)}, "
            f"upper={_fmt(upper)}. Swap the bounds or widen the interval."
        )


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    if _is_tracer(v):
        return f"<traced {v.dtype}{list(v.shape)}>"
    if isinstance(v, (int, np.integer, np.floating)):
        return repr(float(v))
    arr = np.asarray(v)
    if arr.ndim == 0:
        return str(arr[()])
    return np.array2string(arr, separator=", ", threshold=8)


def _cast(v: Any, dtype: Any) -> Any:
    # Python floats stay weakly typed and adopt the input's dtype; arrays are cast so a
    # float32 bound does not break strict promotion against a float16/float64 input.
    if isinstance(v, float) or v.dtype == dtype:
        return v
    return v.astype(dtype)


def _above(bound: Any, dtype: Any) -> jax.Array:
    """Smallest float of ``dtype`` above ``bound`` whose distance to ``bound`` is normal."""
    # XLA on CPU flushes subnormals to zero: the float right after ``bound`` can sit a
    # subnormal distance away, and ``y - bound`` (what every inverse takes a log of) would
    # flush to 0. Stepping at least ``tiny`` keeps that distance a normal number.
    b = jnp.asarray(bound, dtype)
    tiny = jnp.asarray(jnp.finfo(dtype).tiny, dtype)
    return jnp.maximum(jnp.nextafter(b, jnp.asarray(jnp.inf, dtype)), b + tiny)


def _below(bound: Any, dtype: Any) -> jax.Array:
    """Largest float of ``dtype`` below ``bound`` whose distance to ``bound`` is normal."""
    b = jnp.asarray(bound, dtype)
    tiny = jnp.asarray(jnp.finfo(dtype).tiny, dtype)
    return jnp.minimum(jnp.nextafter(b, jnp.asarray(-jnp.inf, dtype)), b - tiny)


def _dev(v: Any) -> Any:
    """Kernel-argument form of a parameter: a Python float becomes a weak 0-d device array."""
    # jit converts a Python float argument on every call (~2.5 us each); converting once
    # keeps the weak type (the input's dtype still wins) and skips that cost. Evaluated
    # outside any surrounding trace so the cached array is concrete, never a leaked tracer.
    if isinstance(v, float):
        with jax.ensure_compile_time_eval():
            return jnp.asarray(v)
    return v


def _input(x: Any) -> Any:
    # jit accepts arrays and scalars but not nested sequences, which jnp.asarray does.
    return jnp.asarray(x) if isinstance(x, (list, tuple)) else x


def _float(x: jax.Array) -> jax.Array:
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.result_type(float))


def _exp_cap(lower: Any, dtype: Any) -> jax.Array:
    """Largest value the exponential transforms produce, ``lower + exp(20)``, plus slack."""
    # A few ulps of slack so exp(20) rounded by another library (numpy, a literal) passes.
    cap = lower + save_exp(jnp.asarray(_EXP_MAX, dtype))
    return cap + 8 * jnp.finfo(dtype).eps * jnp.abs(cap)


def _softplus_inv(z: Any) -> jax.Array:
    # log(expm1(z)) rewritten so neither the exp overflows (large z) nor 1 - exp(-z) cancels
    # (small z): -expm1(-z) is accurate for small z and tends to 1 for large z.
    return z + jnp.log(-jnp.expm1(-z))


def _event_sum(v: jax.Array, x: Any) -> jax.Array:
    """Sum a per-element log-derivative over the last (event) axis; scalars pass through."""
    shape = jnp.shape(x)
    v = jnp.broadcast_to(v, shape)
    return jnp.sum(v, axis=-1) if len(shape) > 0 else v


def _fit_mask(ok: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Bring a range flag array to ``shape``: elementwise if it matches, else all-or-nothing."""
    ok = jnp.asarray(ok, dtype=bool)
    if ok.shape == tuple(shape):
        return ok
    return jnp.broadcast_to(jnp.all(ok), shape)


def _per_event(ok_event: jax.Array, y: jax.Array) -> jax.Array:
    """Broadcast one flag per last-axis event back over the event's entries."""
    return jnp.broadcast_to(ok_event[..., None], y.shape)


def _need_vector(owner: str, method: str, x: jax.Array, what: str) -> None:
    if x.ndim == 0:
        raise ValueError(
            f"{owner}.{method} needs at least one axis ({what} run along the last axis); got a "
            f"scalar. Pass an array of shape (..., n)."
        )


# --- kernels --------------------------------------------------------------------------------
# Each forward/inverse is one jitted function of (input, parameters): eager calls cost one
# dispatch instead of one per jnp op (SoftplusT.forward on 100 floats: ~80 us -> ~10 us), and
# inside a user's jit they inline like any other function.


@jax.jit
def _softplus_fwd(x, lower):
    x = _float(x)
    lower = _cast(lower, x.dtype)
    return jnp.maximum(jax.nn.softplus(x) + lower, _above(lower, x.dtype))


@jax.jit
def _softplus_bwd(y, lower):
    y = _float(y)
    return _softplus_inv(y - _cast(lower, y.dtype))


@jax.jit
def _negsoftplus_fwd(x, upper):
    x = _float(x)
    upper = _cast(upper, x.dtype)
    return jnp.minimum(upper - jax.nn.softplus(-x), _below(upper, x.dtype))


@jax.jit
def _negsoftplus_bwd(y, upper):
    y = _float(y)
    return -_softplus_inv(_cast(upper, y.dtype) - y)


@jax.jit
def _exp_fwd(x, lower):
    x = _float(x)
    lower = _cast(lower, x.dtype)
    return jnp.maximum(lower + save_exp(x), _above(lower, x.dtype))


@jax.jit
def _exp_bwd(y, lower):
    y = _float(y)
    return jnp.log(y - _cast(lower, y.dtype))


@jax.jit
def _positive_fwd(x):
    x = _float(x)
    return jnp.maximum(save_exp(x), _above(0.0, x.dtype))


@jax.jit
def _negative_fwd(x):
    x = _float(x)
    return jnp.minimum(-jax.nn.softplus(-x), _below(0.0, x.dtype))


@jax.jit
def _negative_bwd(y):
    return -_softplus_inv(-_float(y))


@jax.jit
def _interval_fwd(x, lower, upper, width, scale):
    x = _float(x)
    dt = x.dtype
    lower, upper, width, scale = (_cast(v, dt) for v in (lower, upper, width, scale))
    t = scale * x
    # lower + width * sigmoid(t), evaluated from the nearer bound: near ``upper`` the small
    # quantity width * sigmoid(-t) is subtracted from ``upper`` instead of adding a fraction
    # that rounds to 1, so the upper half is as accurate as the lower half.
    y = jnp.where(
        t < 0,
        lower + width * jax.nn.sigmoid(t),
        upper - width * jax.nn.sigmoid(-t),
    )
    return jnp.clip(y, _above(lower, dt), _below(upper, dt))


@jax.jit
def _interval_bwd(y, lower, upper, scale):
    y = _float(y)
    dt = y.dtype
    # logit((y - lower) / width) from the two distances, so neither 1 - z nor 1/z - 1
    # cancels near a bound.
    return (jnp.log(y - _cast(lower, dt)) - jnp.log(_cast(upper, dt) - y)) / _cast(scale, dt)


@jax.jit
def _softsign_fwd(x, lower, upper, width):
    x = _float(x)
    dt = x.dtype
    lower, upper, width = (_cast(v, dt) for v in (lower, upper, width))
    # (x/(1+|x|) + 1)/2 is 0.5/(1+|x|) away from the nearer bound; evaluating that distance
    # directly avoids rounding the fraction onto 0 or 1.
    d = width * (0.5 / (1 + jnp.abs(x)))
    y = jnp.where(x < 0, lower + d, upper - d)
    # Softsign approaches its bounds like 1/|x|: the pre-image of a value one ``tiny`` from
    # a bound is ~width/tiny, which overflows once width > ~4. Staying width * tiny away
    # keeps 0.5 * width / distance below max(float). (Not width / max: XLA rewrites that as
    # width * (1/max), and 1/max is subnormal, i.e. flushed to 0.)
    step = width * jnp.finfo(dt).tiny
    lo = jnp.maximum(_above(lower, dt), lower + step)
    hi = jnp.minimum(_below(upper, dt), upper - step)
    return jnp.clip(y, lo, hi)


@jax.jit
def _softsign_bwd(y, lower, upper, width):
    y = _float(y)
    dt = y.dtype
    a = y - _cast(lower, dt)
    b = _cast(upper, dt) - y
    half = 0.5 * _cast(width, dt)
    # The branch not taken always has the larger distance (>= width/2), so neither division
    # can produce inf/NaN there.
    return jnp.where(a < b, 1 - half / a, half / b - 1)


@jax.jit
def _affine_fwd(x, a, b):
    x = _float(x)
    return _cast(a, x.dtype) * x + _cast(b, x.dtype)


@jax.jit
def _affine_bwd(y, a, b):
    y = _float(y)
    return (y - _cast(b, y.dtype)) / _cast(a, y.dtype)


@jax.jit
def _relu_fwd(x, lower_bound):
    x = _float(x)
    return jax.nn.relu(x) + _cast(lower_bound, x.dtype)


@jax.jit
def _relu_bwd(y, lower_bound):
    y = _float(y)
    return jax.nn.relu(y - _cast(lower_bound, y.dtype))


@jax.jit
def _clip(v, lower, upper):
    v = _float(v)
    return jnp.minimum(jnp.maximum(v, _cast(lower, v.dtype)), _cast(upper, v.dtype))


@functools.partial(jax.jit, static_argnames="mode")
def _power_fwd(x, lmbda, mode):
    x = _float(x)
    if mode == "log":
        return jnp.log(x)
    lmbda = _cast(lmbda, x.dtype)
    # expm1 form: exact as lmbda -> 0, where (x**l - 1) / l cancels.
    y = jnp.expm1(lmbda * jnp.log(x)) / lmbda
    edge = -1 / lmbda
    if mode == "pos":
        return jnp.maximum(y, _above(edge, y.dtype))
    return jnp.minimum(y, _below(edge, y.dtype))


@functools.partial(jax.jit, static_argnames="mode")
def _power_bwd(y, lmbda, mode):
    y = _float(y)
    if mode == "log":
        return jnp.exp(y)
    lmbda = _cast(lmbda, y.dtype)
    return jnp.exp(jnp.log1p(lmbda * y) / lmbda)


@jax.jit
def _ordered_fwd(x):
    x = _float(x)
    _need_vector("OrderedT", "forward", x, "the ordered coordinates")
    first = x[..., :1]
    return jnp.concatenate(
        [first, first + jnp.cumsum(jax.nn.softplus(x[..., 1:]), axis=-1)], axis=-1
    )


@jax.jit
def _ordered_bwd(y):
    y = _float(y)
    _need_vector("OrderedT", "inverse", y, "the ordered coordinates")
    return jnp.concatenate([y[..., :1], _softplus_inv(jnp.diff(y, axis=-1))], axis=-1)


@jax.jit
def _simplex_fwd(x):
    x = _float(x)
    _need_vector("SimplexT", "forward", x, "the n-1 stick-breaking logits")
    log_z = jax.nn.log_sigmoid(x)
    log_left = jax.nn.log_sigmoid(-x)
    log_rest = jnp.cumsum(log_left, axis=-1)
    # log of the stick left before each break: 0 for the first, then the running sum.
    before = jnp.concatenate([jnp.zeros_like(log_rest[..., :1]), log_rest[..., :-1]], -1)
    head = jnp.exp(log_z + before)
    tail = jnp.exp(jnp.sum(log_left, axis=-1, keepdims=True))
    return jnp.concatenate([head, tail], axis=-1)


@jax.jit
def _simplex_bwd(y):
    y = _float(y)
    _need_vector("SimplexT", "inverse", y, "the simplex coordinates")
    info = jnp.finfo(y.dtype)
    # Stick left after break i is the tail sum of y: no 1 - cumsum cancellation.
    rest = jnp.flip(jnp.cumsum(jnp.flip(y, -1), axis=-1), -1)[..., 1:]
    tiny = jnp.asarray(info.tiny, y.dtype)
    x = jnp.log(jnp.maximum(y[..., :-1], tiny)) - jnp.log(jnp.maximum(rest, tiny))
    eps = jnp.asarray(info.eps, y.dtype)
    limit = jnp.log1p(-eps) - jnp.log(eps)
    return jnp.clip(x, -limit, limit)


@jax.jit
def _unit_fwd(x):
    x = _float(x)
    _need_vector("UnitVectorT", "forward", x, "the vector coordinates")
    return x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + _UNIT_NORM_EPS)


# --- base class ----------------------------------------------------------------------------


class Transform(ABC):
    """Abstract bijection between an unconstrained array and a constrained range.

    Subclasses implement :meth:`forward` (unconstrained -> constrained) and :meth:`inverse`
    (constrained -> unconstrained); ``t(x)`` calls ``t.forward(x)``. Transforms are plain
    objects, neither Modules nor pytrees; ``nn.Param`` holds one as a static attribute.

    Subclasses that know their range override :meth:`check_in_range` (and ``_range_str``) so
    :meth:`domain_error` can reject values ``forward`` can never produce. The default accepts
    every value, which is right for a transform onto all of R.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> class Square(Transform):
    ...     def forward(self, x):
    ...         return x ** 2
    ...     def inverse(self, y):
    ...         return jnp.sqrt(y)
    >>> Square()
    Square()
    >>> float(Square()(jnp.float32(3.0)))
    9.0
    """

    __module__ = "brainstate.nn"

    #: Attribute names passed, in order, to the subclass's jitted kernels (see ``_kargs``).
    _kernel_params: tuple[str, ...] = ()

    def __init__(self) -> None:
        pass

    def _kargs(self) -> tuple[Any, ...]:
        """The kernel arguments named by ``_kernel_params``, as cached device arrays."""
        srcs = tuple(getattr(self, n) for n in self._kernel_params)
        hit = self.__dict__.get("_kargs_cache")
        # Reused only while the attributes are the very objects it was built from, so
        # rebinding ``t.lower`` takes effect on the next call.
        if hit is not None and all(a is b for a, b in zip(hit[0], srcs)):
            return hit[1]
        vals = tuple(_dev(v) for v in srcs)
        if not any(_is_tracer(v) for v in srcs):
            self.__dict__["_kargs_cache"] = (srcs, vals)
        return vals

    def __call__(self, x: Any) -> jax.Array:
        """Apply :meth:`forward` (so ``__call__`` follows a subclass's override)."""
        return self.forward(x)

    @abstractmethod
    def forward(self, x: Any) -> jax.Array:
        """Map an unconstrained array ``x`` onto the constrained range, ``y = T(x)``."""

    @abstractmethod
    def inverse(self, y: Any) -> jax.Array:
        """Map a constrained value ``y`` back to the unconstrained array, ``x = T^{-1}(y)``."""

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``log|det dT/dx|`` at ``x`` (``y = T(x)``), summed over the last axis.

        Parameters
        ----------
        x : array_like
            Unconstrained input.
        y : array_like
            ``forward(x)``, passed so subclasses may reuse it.

        Returns
        -------
        jax.Array
            Shape ``x.shape[:-1]`` for arrays, ``()`` for scalars.

        Raises
        ------
        NotImplementedError
            In the base class; subclasses with a tractable Jacobian override it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement log_abs_det_jacobian. Override it in "
            f"your subclass, or use a transform that provides it (IdentityT, SoftplusT, ExpT, "
            f"SigmoidT, AffineT, ChainT, PositiveT, ...)."
        )

    # -- range checks ----------------------------------------------------------------------

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """Flag the entries of a constrained value that ``forward`` can produce.

        Parameters
        ----------
        y : array_like
            A candidate constrained value (what a user passes to ``nn.Param``).
        strict : bool, optional
            ``False`` (default) accepts the closure of the range: boundary values that
            ``forward`` only approaches as ``x -> +-inf`` (``inverse`` maps them to ``+-inf``
            and ``forward`` maps that back), and infinities on unbounded sides. ``True``
            accepts only values with a finite pre-image (the open range, finite).

        Returns
        -------
        jax.Array
            Boolean array of ``y``'s shape (after ``jnp.asarray``). Transforms acting on
            whole vectors (``OrderedT``, ``SimplexT``, ``UnitVectorT``) flag every entry of an
            offending last-axis vector. NaN is outside every restricted range. Works under
            ``jit`` (returns a traced array).
        """
        y = jnp.asarray(y)
        return jnp.isfinite(y) if strict else jnp.ones(y.shape, dtype=bool)

    def _range_str(self) -> str:
        return "all values"

    def domain_error(self, y: Any, *, strict: bool = False) -> str | None:
        """Describe why ``y`` is outside this transform's range, or return ``None``.

        Contract for callers such as ``nn.Param``: call it on the constrained value *before*
        ``inverse``; if it returns a string, raise ``ValueError`` with it (optionally prefixed
        by the caller's name). It returns ``None`` when every entry passes
        :meth:`check_in_range` (same ``strict`` meaning) and also when ``y`` or the check is
        traced, since a traced value cannot be inspected; it never raises for a value
        ``jnp.asarray`` accepts.

        Parameters
        ----------
        y : array_like
            Candidate constrained value.
        strict : bool, optional
            Forwarded to :meth:`check_in_range`.

        Returns
        -------
        str or None
            A message naming the transform, its range, how many entries fall outside and
            the first offending ones, ending with how to fix it.

        Examples
        --------
        >>> SoftplusT(0.0).domain_error(1.0) is None
        True
        >>> print(SoftplusT(0.0).domain_error(-1.0))  # doctest: +ELLIPSIS
        SoftplusT(lower=0.0) cannot produce 1 of 1 entries of the given value; its range is ...
        """
        if _is_tracer(y):
            return None
        arr = jnp.asarray(y)
        in_range = self.check_in_range(arr, strict=strict)
        if _is_tracer(in_range):
            return None
        ok = np.asarray(in_range, dtype=bool)
        if ok.all():
            return None
        vals = np.asarray(arr)
        try:
            vals, ok = np.broadcast_arrays(vals, ok)
        except ValueError:
            vals, ok = vals.reshape(-1), np.broadcast_to(ok.all(), vals.size)
        bad = vals[~ok]
        shown = ", ".join(str(v) for v in bad.reshape(-1)[:5])
        more = ", ..." if bad.size > 5 else ""
        rng = self._range_str()
        return (
            f"{self!r} cannot produce {bad.size} of {ok.size} entries of the given value; its "
            f"range is {rng}, got offending entries [{shown}{more}]. Pass a value inside that "
            f"range, or choose a transform whose range contains it."
        )

    # -- repr ------------------------------------------------------------------------------

    def _repr_args(self) -> list[str]:
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_args())})"


# --- unbounded ------------------------------------------------------------------------------


class IdentityT(Transform):
    """Identity transform, ``y = x``; the default of ``nn.Param``.

    Its range is everything, NaN and infinities included, so a parameter may hold them.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> IdentityT()(jnp.float32(2.5)).item()
    2.5
    """

    __module__ = "brainstate.nn"

    def forward(self, x: Any) -> jax.Array:
        """Return ``x`` unchanged."""
        return x

    def inverse(self, y: Any) -> jax.Array:
        """Return ``y`` unchanged."""
        return y

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return zeros of shape ``x.shape[:-1]`` (``det I = 1``)."""
        x = _as_float(x)
        return jnp.zeros(x.shape[:-1], dtype=x.dtype)


class AffineT(Transform):
    """Affine transform ``y = scale * x + shift``.

    Parameters
    ----------
    scale : float or array_like
        Non-zero scale ``a`` (elementwise).
    shift : float or array_like
        Shift ``b``.

    Raises
    ------
    ValueError
        If any ``|scale| <= 1e-8`` (``'a cannot be zero, must be invertible'``) or a
        parameter is not finite.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> AffineT(2.0, 1.0)(jnp.float32(3.0)).item()
    7.0
    """

    __module__ = "brainstate.nn"

    def __init__(self, scale: Any, shift: Any) -> None:
        super().__init__()
        a = _as_param("AffineT", "scale", scale)
        b = _as_param("AffineT", "shift", shift)
        _require_finite("AffineT", "scale", a)
        _require_finite("AffineT", "shift", b)
        c = _concrete(a)
        if c is not None and np.any(np.abs(c) <= _AFFINE_ZERO_ATOL):
            raise ValueError(
                f"AffineT: a cannot be zero, must be invertible; got scale={_fmt(a)} (entries "
                f"with |scale| <= {_AFFINE_ZERO_ATOL:g} count as zero). Pass a non-zero scale."
            )
        self.a = a
        self.b = b

    _kernel_params = ("a", "b")

    @property
    def scale(self) -> Any:
        """The scale ``a``."""
        return self.a

    @property
    def shift(self) -> Any:
        """The shift ``b``."""
        return self.b

    def _repr_args(self) -> list[str]:
        return [f"scale={_fmt(self.a)}", f"shift={_fmt(self.b)}"]

    def forward(self, x: Any) -> jax.Array:
        """Return ``scale * x + shift``."""
        return _affine_fwd(_input(x), *self._kargs())

    def inverse(self, y: Any) -> jax.Array:
        """Return ``(y - shift) / scale``."""
        return _affine_bwd(_input(y), *self._kargs())

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(log|scale|)`` over the last axis (scale broadcast against ``x``)."""
        x = _as_float(x)
        log_a = jnp.log(jnp.abs(_cast(self.a, x.dtype)))
        if x.ndim == 0:
            return jnp.sum(log_a).astype(x.dtype)
        return _event_sum(log_a, x)


# --- half-bounded ---------------------------------------------------------------------------


class SoftplusT(Transform):
    """Softplus transform onto ``(lower, inf)``: ``y = softplus(x) + lower``.

    Parameters
    ----------
    lower : float or array_like
        Finite lower bound (exclusive).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> t = SoftplusT(0.0)
    >>> round(t(jnp.float32(0.0)).item(), 4)
    0.6931
    >>> round(t.inverse(t(jnp.float32(-3.0))).item(), 4)
    -3.0
    """

    __module__ = "brainstate.nn"

    _kernel_params = ("lower",)

    def __init__(self, lower: Any) -> None:
        super().__init__()
        self.lower = _as_param("SoftplusT", "lower", lower)
        _require_finite("SoftplusT", "lower", self.lower)

    def _repr_args(self) -> list[str]:
        return [f"lower={_fmt(self.lower)}"]

    def _range_str(self) -> str:
        return f"({_fmt(self.lower)}, inf)"

    def forward(self, x: Any) -> jax.Array:
        """Return ``softplus(x) + lower``, kept strictly above ``lower``."""
        return _softplus_fwd(_input(x), *self._kargs())

    def inverse(self, y: Any) -> jax.Array:
        """Return ``z + log(-expm1(-z))`` with ``z = y - lower``."""
        return _softplus_bwd(_input(y), *self._kargs())

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(log_sigmoid(x))`` over the last axis."""
        x = _as_float(x)
        return _event_sum(jax.nn.log_sigmoid(x), x)

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """See :meth:`Transform.check_in_range`; the range is ``(lower, inf)``."""
        y = _as_float(y)
        lower = _cast(self.lower, y.dtype)
        if strict:
            return (y > lower) & jnp.isfinite(y)
        return y >= lower


class NegSoftplusT(Transform):
    """Mirrored softplus onto ``(-inf, upper)``: ``y = upper - softplus(-x)``.

    Parameters
    ----------
    upper : float or array_like
        Finite upper bound (exclusive).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> round(NegSoftplusT(0.0)(jnp.float32(0.0)).item(), 4)
    -0.6931
    """

    __module__ = "brainstate.nn"

    _kernel_params = ("upper",)

    def __init__(self, upper: Any) -> None:
        super().__init__()
        self.upper = _as_param("NegSoftplusT", "upper", upper)
        _require_finite("NegSoftplusT", "upper", self.upper)

    def _repr_args(self) -> list[str]:
        return [f"upper={_fmt(self.upper)}"]

    def _range_str(self) -> str:
        return f"(-inf, {_fmt(self.upper)})"

    def forward(self, x: Any) -> jax.Array:
        """Return ``upper - softplus(-x)``, kept strictly below ``upper``."""
        return _negsoftplus_fwd(_input(x), *self._kargs())

    def inverse(self, y: Any) -> jax.Array:
        """Return ``-softplus_inv(upper - y)``."""
        return _negsoftplus_bwd(_input(y), *self._kargs())

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(log_sigmoid(-x))`` over the last axis."""
        x = _as_float(x)
        return _event_sum(jax.nn.log_sigmoid(-x), x)

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """See :meth:`Transform.check_in_range`; the range is ``(-inf, upper)``."""
        y = _as_float(y)
        upper = _cast(self.upper, y.dtype)
        if strict:
            return (y < upper) & jnp.isfinite(y)
        return y <= upper


class _ExpBase(Transform):
    # Shared by ExpT and LogT, which upstream defines as two names for one map.

    _kernel_params = ("lower",)

    def __init__(self, lower: Any) -> None:
        super().__init__()
        name = type(self).__name__
        self.lower = _as_param(name, "lower", lower)
        _require_finite(name, "lower", self.lower)

    def _repr_args(self) -> list[str]:
        return [f"lower={_fmt(self.lower)}"]

    def _range_str(self) -> str:
        return f"({_fmt(self.lower)}, {_fmt(self.lower)} + exp({_EXP_MAX:g})]"

    def forward(self, x: Any) -> jax.Array:
        """Return ``lower + save_exp(x)``, kept strictly above ``lower``.

        ``save_exp`` caps the exponent at 20, so inputs above 20 saturate at
        ``lower + exp(20)`` and do not round-trip.
        """
        return _exp_fwd(_input(x), *self._kargs())

    def inverse(self, y: Any) -> jax.Array:
        """Return ``log(y - lower)``."""
        return _exp_bwd(_input(y), *self._kargs())

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(x)`` over the last axis (exact where ``x <= 20``, i.e. uncapped)."""
        x = _as_float(x)
        return _event_sum(x, x)

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """See :meth:`Transform.check_in_range`; the range is ``(lower, lower + exp(20)]``."""
        y = _as_float(y)
        lower = _cast(self.lower, y.dtype)
        above = (y > lower) if strict else (y >= lower)
        return above & (y <= _exp_cap(lower, y.dtype))


class ExpT(_ExpBase):
    """Exponential transform onto ``(lower, lower + exp(20)]``: ``y = lower + save_exp(x)``.

    Parameters
    ----------
    lower : float or array_like
        Finite lower bound (exclusive).

    Notes
    -----
    ``save_exp`` caps the exponent at 20: inputs above 20 saturate and do not round-trip,
    and constrained values above ``lower + exp(20)`` are outside the range.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> ExpT(1.0)(jnp.float32(0.0)).item()
    2.0
    """

    __module__ = "brainstate.nn"


class LogT(_ExpBase):
    """Same map as :class:`ExpT` under the upstream name ``LogT`` (inverse is a log).

    Parameters
    ----------
    lower : float or array_like
        Finite lower bound (exclusive).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> LogT(0.0).inverse(jnp.float32(1.0)).item()
    0.0
    """

    __module__ = "brainstate.nn"


class ReluT(Transform):
    """ReLU transform onto ``[lower_bound, inf)``: ``y = relu(x) + lower_bound``.

    Not bijective: every ``x <= 0`` maps to ``lower_bound``; ``inverse`` returns
    ``relu(y - lower_bound)``.

    Parameters
    ----------
    lower_bound : float or array_like, optional
        Finite lower bound (inclusive), by default 0.0.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> ReluT(1.0)(jnp.asarray([-2.0, 2.0], dtype=jnp.float32)).tolist()
    [1.0, 3.0]
    """

    __module__ = "brainstate.nn"

    _kernel_params = ("lower_bound",)

    def __init__(self, lower_bound: Any = 0.0) -> None:
        super().__init__()
        self.lower_bound = _as_param("ReluT", "lower_bound", lower_bound)
        _require_finite("ReluT", "lower_bound", self.lower_bound)

    def _repr_args(self) -> list[str]:
        return [f"lower_bound={_fmt(self.lower_bound)}"]

    def _range_str(self) -> str:
        return f"[{_fmt(self.lower_bound)}, inf)"

    def forward(self, x: Any) -> jax.Array:
        """Return ``relu(x) + lower_bound``."""
        return _relu_fwd(_input(x), *self._kargs())

    def inverse(self, y: Any) -> jax.Array:
        """Return ``relu(y - lower_bound)``."""
        return _relu_bwd(_input(y), *self._kargs())

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """See :meth:`Transform.check_in_range`; the range is ``[lower_bound, inf)``."""
        y = _as_float(y)
        ok = y >= _cast(self.lower_bound, y.dtype)
        return ok & jnp.isfinite(y) if strict else ok


class PositiveT(Transform):
    """Positive transform onto ``(0, exp(20)]``: ``y = save_exp(x)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> PositiveT()(jnp.float32(0.0)).item()
    1.0
    """

    __module__ = "brainstate.nn"

    def _range_str(self) -> str:
        return f"(0, exp({_EXP_MAX:g})]"

    def forward(self, x: Any) -> jax.Array:
        """Return ``save_exp(x)``, kept strictly positive."""
        return _positive_fwd(_input(x))

    def inverse(self, y: Any) -> jax.Array:
        """Return ``log(y)``."""
        return jnp.log(_as_float(y))

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(x)`` over the last axis (exact where ``x <= 20``)."""
        x = _as_float(x)
        return _event_sum(x, x)

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """See :meth:`Transform.check_in_range`; the range is ``(0, exp(20)]``."""
        y = _as_float(y)
        return ((y > 0) if strict else (y >= 0)) & (y <= _exp_cap(0.0, y.dtype))


class NegativeT(Transform):
    """Negative transform onto ``(-inf, 0)``: ``y = -softplus(-x)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> round(NegativeT()(jnp.float32(0.0)).item(), 4)
    -0.6931
    """

    __module__ = "brainstate.nn"

    def _range_str(self) -> str:
        return "(-inf, 0)"

    def forward(self, x: Any) -> jax.Array:
        """Return ``-softplus(-x)``, kept strictly negative."""
        return _negative_fwd(_input(x))

    def inverse(self, y: Any) -> jax.Array:
        """Return ``-softplus_inv(-y)``."""
        return _negative_bwd(_input(y))

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(log_sigmoid(-x))`` over the last axis."""
        x = _as_float(x)
        return _event_sum(jax.nn.log_sigmoid(-x), x)

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """See :meth:`Transform.check_in_range`; the range is ``(-inf, 0)``."""
        y = _as_float(y)
        return ((y < 0) & jnp.isfinite(y)) if strict else (y <= 0)


# --- bounded intervals ----------------------------------------------------------------------


class _Interval(Transform):
    # Shared storage, validation, range checks and the sigmoid-shaped map
    # ``lower + width * sigmoid(scale * x)`` of the transforms onto (lower, upper).

    _kernel_params: tuple[str, ...] = ("lower", "upper", "width", "_scale")
    _scale = 1.0

    def __init__(self, lower: Any, upper: Any) -> None:
        super().__init__()
        name = type(self).__name__
        self.lower = _as_param(name, "lower", lower)
        upper = _as_param(name, "upper", upper)
        _require_finite(name, "lower", self.lower)
        _require_finite(name, "upper", upper)
        _require_ordered(name, self.lower, upper)
        self.upper = upper
        self.width = upper - self.lower

    def _repr_args(self) -> list[str]:
        return [f"lower={_fmt(self.lower)}", f"upper={_fmt(self.upper)}"]

    def _range_str(self) -> str:
        return f"({_fmt(self.lower)}, {_fmt(self.upper)})"

    def _bounds(self, dtype: Any) -> tuple[Any, Any, Any]:
        return _cast(self.lower, dtype), _cast(self.upper, dtype), _cast(self.width, dtype)

    def forward(self, x: Any) -> jax.Array:
        """Return ``lower + width * sigmoid(scale * x)``, strictly inside ``(lower, upper)``."""
        return _interval_fwd(_input(x), *self._kargs())

    def inverse(self, y: Any) -> jax.Array:
        """Return ``logit((y - lower) / width) / scale``."""
        lower, upper, _, scale = self._kargs()
        return _interval_bwd(_input(y), lower, upper, scale)

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """See :meth:`Transform.check_in_range`; the range is ``(lower, upper)``."""
        y = _as_float(y)
        lower, upper, _ = self._bounds(y.dtype)
        if strict:
            return (y > lower) & (y < upper)
        return (y >= lower) & (y <= upper)


class SigmoidT(_Interval):
    """Sigmoid transform onto ``(lower, upper)``: ``y = lower + (upper - lower) * sigmoid(x)``.

    Parameters
    ----------
    lower, upper : float or array_like
        Finite bounds with ``lower < upper`` elementwise.

    Notes
    -----
    Upstream evaluates ``1 / (1 + save_exp(-x))``, which saturates at
    ``lower + width / (1 + exp(20))`` for ``x < -20``. This version evaluates the logistic
    from the nearer bound instead: it agrees with upstream to float rounding for
    ``x >= -20`` and stays injective below (until the value rounds onto ``lower``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> SigmoidT(0.0, 2.0)(jnp.float32(0.0)).item()
    1.0
    """

    __module__ = "brainstate.nn"

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(log(width) + log_sigmoid(x) + log_sigmoid(-x))`` over the last axis."""
        x = _as_float(x)
        _, _, width = self._bounds(x.dtype)
        v = jnp.log(width) + jax.nn.log_sigmoid(x) + jax.nn.log_sigmoid(-x)
        return _event_sum(v, x)


class ScaledSigmoidT(_Interval):
    """Sigmoid with sharpness ``beta`` onto ``(lower, upper)``: ``lower + width*sigmoid(beta*x)``.

    Parameters
    ----------
    lower, upper : float or array_like
        Finite bounds with ``lower < upper`` elementwise.
    beta : float or array_like, optional
        Positive finite sharpness, by default 1.0.

    Raises
    ------
    ValueError
        If ``beta`` is not positive and finite, or the bounds are invalid.

    Examples
    --------
    >>> ScaledSigmoidT(0.0, 1.0, beta=2.0)
    ScaledSigmoidT(lower=0.0, upper=1.0, beta=2.0)
    """

    __module__ = "brainstate.nn"

    def __init__(self, lower: Any, upper: Any, beta: Any = 1.0) -> None:
        super().__init__(lower, upper)
        beta = _as_param("ScaledSigmoidT", "beta", beta)
        c = _concrete(beta)
        # beta == 0 collapses forward to a constant (inverse divides by zero); beta < 0
        # silently flips the monotonicity.
        if c is not None and not np.all(np.isfinite(c) & (c > 0)):
            raise ValueError(
                f"ScaledSigmoidT: beta must be a positive finite number, but got "
                f"beta={_fmt(beta)}. Pass beta > 0 (e.g. 1.0 for a plain sigmoid)."
            )
        self.beta = beta

    _kernel_params = ("lower", "upper", "width", "beta")

    def _repr_args(self) -> list[str]:
        return super()._repr_args() + [f"beta={_fmt(self.beta)}"]

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(log(width*beta) + log_sigmoid(bx) + log_sigmoid(-bx))``."""
        x = _as_float(x)
        _, _, width = self._bounds(x.dtype)
        beta = _cast(self.beta, x.dtype)
        bx = beta * x
        v = jnp.log(width * beta) + jax.nn.log_sigmoid(bx) + jax.nn.log_sigmoid(-bx)
        return _event_sum(v, x)


class TanhT(_Interval):
    """Tanh transform onto ``(lower, upper)``: ``y = lower + width * (tanh(x) + 1) / 2``.

    Evaluated as ``lower + width * sigmoid(2x)`` (the same function), which keeps precision
    on both saturated sides; the inverse is ``arctanh(2z - 1) = logit(z) / 2``.

    Parameters
    ----------
    lower, upper : float or array_like
        Finite bounds with ``lower < upper`` elementwise.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> TanhT(-1.0, 1.0)(jnp.float32(0.0)).item()
    0.0
    """

    __module__ = "brainstate.nn"

    _scale = 2.0

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(log(2 width) + log_sigmoid(2x) + log_sigmoid(-2x))``."""
        x = _as_float(x)
        _, _, width = self._bounds(x.dtype)
        v = jnp.log(2 * width) + jax.nn.log_sigmoid(2 * x) + jax.nn.log_sigmoid(-2 * x)
        return _event_sum(v, x)


class SoftsignT(_Interval):
    """Softsign transform onto ``(lower, upper)``: ``y = lower + width*(x/(1+|x|) + 1)/2``.

    Parameters
    ----------
    lower, upper : float or array_like
        Finite bounds with ``lower < upper`` elementwise.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> SoftsignT(0.0, 1.0)(jnp.float32(1.0)).item()
    0.75
    """

    __module__ = "brainstate.nn"

    _kernel_params = ("lower", "upper", "width")

    def forward(self, x: Any) -> jax.Array:
        """Return ``lower + width * (x / (1 + |x|) + 1) / 2``, strictly inside the interval."""
        return _softsign_fwd(_input(x), *self._kargs())

    def inverse(self, y: Any) -> jax.Array:
        """Return ``w / (1 - |w|)`` with ``w = 2 (y - lower) / width - 1``."""
        return _softsign_bwd(_input(y), *self._kargs())

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(log(width / 2) - 2 log1p(|x|))`` over the last axis."""
        x = _as_float(x)
        _, _, width = self._bounds(x.dtype)
        return _event_sum(jnp.log(0.5 * width) - 2 * jnp.log1p(jnp.abs(x)), x)


class ClipT(Transform):
    """Clipping transform onto ``[lower, upper]``: ``y = clip(x, lower, upper)``.

    Not bijective; ``inverse`` re-applies the clip (a pass-through inside the range).

    Parameters
    ----------
    lower, upper : float or array_like
        Bounds with ``lower <= upper`` elementwise; infinite bounds give a one-sided clip.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> ClipT(0.0, 1.0)(jnp.asarray([-0.5, 0.5, 1.5], dtype=jnp.float32)).tolist()
    [0.0, 0.5, 1.0]
    """

    __module__ = "brainstate.nn"

    def __init__(self, lower: Any, upper: Any) -> None:
        super().__init__()
        self.lower = _as_param("ClipT", "lower", lower)
        self.upper = _as_param("ClipT", "upper", upper)
        _require_not_nan("ClipT", "lower", self.lower)
        _require_not_nan("ClipT", "upper", self.upper)
        _require_ordered("ClipT", self.lower, self.upper, allow_equal=True)

    def _repr_args(self) -> list[str]:
        return [f"lower={_fmt(self.lower)}", f"upper={_fmt(self.upper)}"]

    def _range_str(self) -> str:
        return f"[{_fmt(self.lower)}, {_fmt(self.upper)}]"

    _kernel_params = ("lower", "upper")

    def forward(self, x: Any) -> jax.Array:
        """Return ``clip(x, lower, upper)``."""
        return _clip(_input(x), *self._kargs())

    def inverse(self, y: Any) -> jax.Array:
        """Return ``clip(y, lower, upper)`` (best-effort pseudo-inverse)."""
        return _clip(_input(y), *self._kargs())

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """See :meth:`Transform.check_in_range`; the range is ``[lower, upper]``."""
        y = _as_float(y)
        ok = (y >= _cast(self.lower, y.dtype)) & (y <= _cast(self.upper, y.dtype))
        return ok & jnp.isfinite(y) if strict else ok


class PowerT(Transform):
    """Box-Cox power transform ``y = (x**lmbda - 1) / lmbda`` (``log(x)`` when ``lmbda ~ 0``).

    The unconstrained input must be positive (``x**lmbda`` is NaN for ``x < 0``). The range is
    ``(-1/lmbda, inf)`` for ``lmbda > 0``, ``(-inf, -1/lmbda)`` for ``lmbda < 0`` and all of R
    for ``lmbda ~ 0``.

    Parameters
    ----------
    lmbda : float, optional
        Finite exponent, by default 0.5; ``|lmbda| < 1e-10`` selects the log limit.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> PowerT(0.5)(jnp.float32(4.0)).item()
    2.0
    """

    __module__ = "brainstate.nn"

    def __init__(self, lmbda: float = 0.5) -> None:
        super().__init__()
        _reject_units("PowerT", "lmbda", lmbda)
        try:
            value = float(lmbda)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"PowerT: lmbda must be a real scalar, got {type(lmbda).__name__} {lmbda!r}."
            ) from exc
        if not np.isfinite(value):
            raise ValueError(f"PowerT: lmbda must be finite, got lmbda={value!r}.")
        self.lmbda = value
        self._log = abs(value) < _POWER_LOG_ATOL
        self._mode = "log" if self._log else ("pos" if value > 0 else "neg")

    _kernel_params = ("lmbda",)

    def _repr_args(self) -> list[str]:
        return [f"lmbda={self.lmbda!r}"]

    def _range_str(self) -> str:
        if self._log:
            return "(-inf, inf)"
        edge = _fmt(-1.0 / self.lmbda)
        return f"({edge}, inf)" if self.lmbda > 0 else f"(-inf, {edge})"

    def forward(self, x: Any) -> jax.Array:
        """Return ``expm1(lmbda * log(x)) / lmbda`` (``log(x)`` in the log limit)."""
        return _power_fwd(_input(x), *self._kargs(), mode=self._mode)

    def inverse(self, y: Any) -> jax.Array:
        """Return ``exp(log1p(lmbda * y) / lmbda)`` (``exp(y)`` in the log limit)."""
        return _power_bwd(_input(y), *self._kargs(), mode=self._mode)

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum((lmbda - 1) * log(x))`` over the last axis."""
        x = _as_float(x)
        return _event_sum((self.lmbda - 1.0) * jnp.log(x), x)

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """See :meth:`Transform.check_in_range`."""
        y = _as_float(y)
        if self._log:
            return jnp.isfinite(y) if strict else ~jnp.isnan(y)
        edge = -1.0 / self.lmbda
        if self.lmbda > 0:
            return ((y > edge) & jnp.isfinite(y)) if strict else (y >= edge)
        return ((y < edge) & jnp.isfinite(y)) if strict else (y <= edge)


# --- composites -----------------------------------------------------------------------------


class ChainT(Transform):
    """Composition of transforms, applied left to right by ``forward``.

    ``ChainT(f1, f2).forward(x) == f2.forward(f1.forward(x))``; ``inverse`` undoes them right
    to left; the log-determinant is summed along the chain.

    Parameters
    ----------
    *transforms : Transform
        The steps, in forward order.

    Raises
    ------
    TypeError
        If a step is not a :class:`Transform`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> ChainT(AffineT(2.0, 0.0), AffineT(1.0, 3.0))(jnp.float32(1.0)).item()
    5.0
    """

    __module__ = "brainstate.nn"

    def __init__(self, *transforms: Transform) -> None:
        super().__init__()
        for i, t in enumerate(transforms):
            if not isinstance(t, Transform):
                raise TypeError(
                    f"ChainT: step {i} must be an instance of Transform, got "
                    f"{type(t).__name__} {t!r}. Wrap plain functions in a Transform subclass."
                )
        self.transforms: tuple[Transform, ...] = tuple(transforms)

    def _repr_args(self) -> list[str]:
        return [repr(t) for t in self.transforms]

    def _range_str(self) -> str:
        if not self.transforms:
            return "all values"
        steps = " then ".join(repr(t) for t in self.transforms)
        return f"(the values reachable by applying {steps})"

    def forward(self, x: Any) -> jax.Array:
        """Apply each step's ``forward``, first to last."""
        for t in self.transforms:
            x = t.forward(x)
        return x

    def inverse(self, y: Any) -> jax.Array:
        """Apply each step's ``inverse``, last to first."""
        for t in reversed(self.transforms):
            y = t.inverse(y)
        return y

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return the sum of the steps' log-determinants along the chain."""
        x = _as_float(x)
        total = jnp.zeros(x.shape[:-1], dtype=x.dtype)
        for t in self.transforms:
            nxt = t.forward(x)
            total = total + t.log_abs_det_jacobian(x, nxt)
            x = nxt
        return total

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """A value is in range if every step, walked backwards, accepts its pre-image."""
        if not self.transforms:
            return super().check_in_range(y, strict=strict)
        y = _as_float(y)
        ok = jnp.ones(y.shape, dtype=bool)
        cur = y
        for t in reversed(self.transforms):
            ok = ok & _fit_mask(t.check_in_range(cur, strict=strict), y.shape)
            cur = t.inverse(cur)
        return ok


class MaskedT(Transform):
    """Apply ``transform`` where ``mask`` is true and the identity elsewhere.

    Parameters
    ----------
    mask : array_like of bool
        Selects the transformed entries; broadcast against the input.
    transform : Transform
        An elementwise transform for the masked entries.
    safe_value : float, optional
        Finite unconstrained value fed to ``transform.forward`` at unmasked entries, by
        default 1.0, so their (discarded) branch cannot produce NaN gradients. ``inverse``
        feeds ``transform.forward(safe_value)`` there, which lies in the inner range whatever
        the transform.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> t = MaskedT(jnp.asarray([True, False]), ExpT(0.0))
    >>> t(jnp.asarray([0.0, -5.0], dtype=jnp.float32)).tolist()
    [1.0, -5.0]
    """

    __module__ = "brainstate.nn"

    def __init__(self, mask: Any, transform: Transform, safe_value: Any = 1.0) -> None:
        super().__init__()
        if not isinstance(transform, Transform):
            raise TypeError(
                f"MaskedT: transform must be an instance of Transform, got "
                f"{type(transform).__name__} {transform!r}."
            )
        self.mask = jnp.asarray(mask).astype(bool)
        self.transform = transform
        self.safe_value = _as_param("MaskedT", "safe_value", safe_value)
        _require_finite("MaskedT", "safe_value", self.safe_value)

    def _repr_args(self) -> list[str]:
        return ["mask=...", f"transform={self.transform!r}"]

    def _range_str(self) -> str:
        return f"{self.transform._range_str()} at masked entries, any value elsewhere"

    def forward(self, x: Any) -> jax.Array:
        """Return ``transform.forward(x)`` where masked, ``x`` elsewhere."""
        x = _as_float(x)
        safe = jnp.where(self.mask, x, _cast(self.safe_value, x.dtype))
        return jnp.where(self.mask, self.transform.forward(safe), x)

    def _safe_y(self, y: jax.Array) -> jax.Array:
        fill = self.transform.forward(jnp.asarray(self.safe_value, y.dtype))
        return jnp.where(self.mask, y, fill)

    def inverse(self, y: Any) -> jax.Array:
        """Return ``transform.inverse(y)`` where masked, ``y`` elsewhere."""
        y = _as_float(y)
        return jnp.where(self.mask, self.transform.inverse(self._safe_y(y)), y)

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """Masked entries must lie in the inner range; others are unrestricted."""
        y = _as_float(y)
        inner = self.transform.check_in_range(self._safe_y(y), strict=strict)
        shape = jnp.broadcast_shapes(self.mask.shape, y.shape)
        rest = jnp.isfinite(y) if strict else jnp.ones(y.shape, dtype=bool)
        return jnp.where(self.mask, _fit_mask(inner, shape), rest)


# --- vector-valued --------------------------------------------------------------------------


class OrderedT(Transform):
    """Map R^n onto increasing vectors: ``y = [x0, x0 + cumsum(softplus(x[1:]))]``.

    Acts along the last axis; the inverse takes successive differences through the stable
    softplus inverse.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> y = OrderedT()(jnp.asarray([0.0, -1.0, 2.0], dtype=jnp.float32))
    >>> bool(jnp.all(jnp.diff(y) > 0))
    True
    """

    __module__ = "brainstate.nn"

    def _range_str(self) -> str:
        return "(strictly increasing vectors along the last axis)"

    def forward(self, x: Any) -> jax.Array:
        """Return ``[x0, x0 + cumsum(softplus(x[1:]))]`` along the last axis."""
        return _ordered_fwd(_input(x))

    def inverse(self, y: Any) -> jax.Array:
        """Return ``[y0, softplus_inv(diff(y))]`` along the last axis."""
        return _ordered_bwd(_input(y))

    def log_abs_det_jacobian(self, x: Any, y: Any) -> jax.Array:
        """Return ``sum(log_sigmoid(x[1:]))`` (the Jacobian is lower triangular)."""
        x = _as_float(x)
        _need_vector("OrderedT", "log_abs_det_jacobian", x, "the ordered coordinates")
        return jnp.sum(jax.nn.log_sigmoid(x[..., 1:]), axis=-1)

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """Flag every entry of a last-axis vector that is not increasing (or not finite)."""
        y = _as_float(y)
        if y.ndim == 0:
            return jnp.isfinite(y)
        d = jnp.diff(y, axis=-1)
        inc = (d > 0) if strict else (d >= 0)
        event = jnp.all(jnp.isfinite(y), axis=-1) & jnp.all(inc, axis=-1)
        return _per_event(event, y)


class SimplexT(Transform):
    """Stick-breaking map from R^(n-1) onto the probability simplex in R^n.

    ``z_i = sigmoid(x_i)``, ``y_i = z_i * prod_{j<i}(1 - z_j)``, ``y_n = prod_j (1 - z_j)``:
    non-negative entries summing to 1. The last axis grows by one, so a ``nn.Param`` holding
    a length-``n`` simplex stores ``n - 1`` unconstrained values.

    Notes
    -----
    ``forward`` works in log space (``log_sigmoid``), so no ``1 - z`` cancels. ``inverse``
    computes each stick fraction's logit as ``log(y_i) - log(sum_{j>i} y_j)`` (exact, no
    ``1 - cumsum`` cancellation) and clips it to ``+-logit(1 - eps)`` of the dtype, so values
    on the simplex boundary map to finite, still trainable inputs. The inverse is invariant
    to rescaling ``y``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> SimplexT()(jnp.zeros(2, dtype=jnp.float32)).tolist()
    [0.5, 0.25, 0.25]
    """

    __module__ = "brainstate.nn"

    def _range_str(self) -> str:
        return "(the probability simplex: non-negative entries summing to 1 along the last axis)"

    def forward(self, x: Any) -> jax.Array:
        """Map ``(..., n-1)`` unconstrained values to a ``(..., n)`` simplex point."""
        return _simplex_fwd(_input(x))

    def inverse(self, y: Any) -> jax.Array:
        """Map a ``(..., n)`` simplex point to the ``(..., n-1)`` stick-breaking logits."""
        return _simplex_bwd(_input(y))

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """Flag every entry of a last-axis vector that is negative or does not sum to 1."""
        y = _as_float(y)
        if y.ndim == 0:
            return jnp.zeros((), dtype=bool)
        tol = float(np.sqrt(float(jnp.finfo(y.dtype).eps)))
        pos = (y > 0) if strict else (y >= 0)
        sums = jnp.abs(jnp.sum(y, axis=-1) - 1) <= tol
        return _per_event(jnp.all(pos, axis=-1) & sums, y)


class UnitVectorT(Transform):
    """Normalise along the last axis: ``y = x / sqrt(sum(x**2) + 1e-8)``.

    Not bijective (every positive multiple of ``x`` maps to the same ``y``); ``inverse``
    returns ``y`` unchanged. Any finite vector is accepted as a constrained value, since
    ``forward`` projects it onto the sphere.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> [round(v, 4) for v in UnitVectorT()(jnp.asarray([3.0, 4.0], dtype=jnp.float32)).tolist()]
    [0.6, 0.8]
    """

    __module__ = "brainstate.nn"

    def _range_str(self) -> str:
        return "(finite vectors, normalised along the last axis)"

    def forward(self, x: Any) -> jax.Array:
        """Return ``x / sqrt(sum(x**2, -1) + 1e-8)``."""
        return _unit_fwd(_input(x))

    def inverse(self, y: Any) -> jax.Array:
        """Return ``y`` unchanged."""
        return y

    def check_in_range(self, y: Any, *, strict: bool = False) -> jax.Array:
        """Flag every entry of a last-axis vector holding a non-finite value."""
        y = _as_float(y)
        if y.ndim == 0:
            return jnp.zeros((), dtype=bool)
        return _per_event(jnp.all(jnp.isfinite(y), axis=-1), y)
