"""The numpy-like draws of ``RandomState``: one method per distribution.

Every method takes ``size`` (the output shape, numpy style: None, an int or a tuple; None means
the broadcast shape of the parameters), ``key`` (an explicit seed or key: the state is then
left untouched) and, where it makes sense, ``dtype`` (default ``brainstate.environ.dftype()``
for floats, ``ditype()`` for integers, read at draw time). Parameters are validated and the
shape is worked out *before* the key is taken, so a rejected call does not advance the state.

Without ``key``, a draw takes one fresh key from the state (``key, sub = split(key)``, the new
``key`` written back through ``.value``) and calls ``jax.random`` with ``sub``: eagerly it
dispatches exactly the ops of that hand-written pair, and under a transform the state is an
ordinary read-and-written state.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import jax.random as jr
import numpy as np

from brainstate.random import _samplers
from brainstate.random._params import (
    as_shape,
    broadcast,
    dftype,
    ditype,
    in_unit,
    is_concrete,
    loc_scale_unit,
    no_unit,
    param,
    shape_of,
    split_unit,
    with_unit,
)

if TYPE_CHECKING:
    from brainstate.typing import DTypeLike, SeedOrKey, Size

__all__ = ["DrawMethods", "DRAW_NAMES"]


def _check(name: str, what: str, bad: Any, *xs: Any, traced: bool = False) -> None:
    """Raise ``ValueError`` where ``bad(*xs)`` holds for concrete parameters.

    Traced parameters are checked only with ``traced`` (the draws with ``check_valid``): the
    check then becomes a runtime error in the compiled program (``jit_error_if``). The others
    keep compiled programs free of checks, as ``jax.random`` does.
    """
    if any(x is None for x in xs):
        return
    if all(is_concrete(x) for x in xs):
        arrs = [np.asarray(x) for x in xs]
        if bool(np.any(bad(*arrs))):
            got = arrs[0] if len(arrs) == 1 else None
            shown = "" if got is None else f", got {got.tolist() if got.size <= 8 else got}"
            raise ValueError(f"{name}: {what}{shown}.")
        return
    if traced:
        from brainstate.transform._error_if import jit_error_if

        jit_error_if(jnp.any(bad(*[jnp.asarray(x) for x in xs])), f"{name}: {what}.")


def _prob(name: str, p: Any, check_valid: bool) -> None:
    if check_valid:
        _check(name, "p must lie in [0, 1] (pass check_valid=False to skip this check)",
               lambda a: ~((a >= 0) & (a <= 1)), p, traced=True)


def _float(dtype: Any) -> Any:
    return dftype() if dtype is None else dtype


def _int(dtype: Any) -> Any:
    return ditype() if dtype is None else dtype


def _scaled(r: Any, scale: Any, dtype: Any) -> Any:
    """``r * scale`` in the unit of ``scale`` (no op when ``scale`` is None)."""
    scale, unit = split_unit(scale)
    if scale is None:
        return r
    return with_unit(r * param(scale, dtype), unit)


def _population(a: Any) -> tuple:
    """``(what jax.random.choice samples, host items or None, unit)`` of ``choice``'s ``a``.

    Non-numeric sequences (strings, objects) cannot be JAX arrays: their indices are sampled
    and the items picked on the host.
    """
    if isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)):
        if a < 0:
            raise ValueError(f"choice: a must be non-negative when it is an int, got {a}.")
        return int(a), None, None
    a, unit = split_unit(a)
    if not hasattr(a, "dtype"):
        arr = np.asarray(a)
        if arr.dtype.kind not in "biufc" and arr.ndim:
            return arr.shape[0], arr, None
        a = jnp.asarray(arr)
    if a.ndim == 0:
        raise ValueError("choice: a must be an int or an array with at least one axis.")
    return a, None, unit


class DrawMethods:
    """Mixin of the distribution methods; the host class provides ``_take`` and ``_take_n``."""

    __slots__ = ()

    if TYPE_CHECKING:
        def _take(self, key: Any) -> Any: ...

        def _take_n(self, key: Any, n: int) -> Any: ...

    # --- uniform and integers ---

    def rand(self, *dn: int, key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Uniform samples on ``[0, 1)`` of shape ``dn`` (``rand(3, 2)``: shape ``(3, 2)``)."""
        shape = as_shape(dn)
        return jr.uniform(self._take(key), shape, _float(dtype))

    def randn(self, *dn: int, key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Standard normal samples of shape ``dn`` (``randn(3, 2)``: shape ``(3, 2)``)."""
        shape = as_shape(dn)
        return jr.normal(self._take(key), shape, _float(dtype))

    def random(self, size: Size | None = None, key: SeedOrKey | None = None,
               dtype: DTypeLike | None = None) -> Any:
        """Uniform samples on ``[0, 1)`` of shape ``size``."""
        shape = as_shape(size)
        return jr.uniform(self._take(key), shape, _float(dtype))

    def random_sample(self, size: Size | None = None, key: SeedOrKey | None = None,
                      dtype: DTypeLike | None = None) -> Any:
        """Uniform samples on ``[0, 1)`` (alias of :meth:`random`)."""
        return self.random(size, key=key, dtype=dtype)

    def ranf(self, size: Size | None = None, key: SeedOrKey | None = None,
             dtype: DTypeLike | None = None) -> Any:
        """Uniform samples on ``[0, 1)`` (alias of :meth:`random`)."""
        return self.random(size, key=key, dtype=dtype)

    def sample(self, size: Size | None = None, key: SeedOrKey | None = None,
               dtype: DTypeLike | None = None) -> Any:
        """Uniform samples on ``[0, 1)`` (alias of :meth:`random`)."""
        return self.random(size, key=key, dtype=dtype)

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Size | None = None,
                key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Uniform samples on ``[low, high)``; quantities give samples in ``low``'s unit."""
        low, unit = split_unit(low)
        if unit is None:
            high, unit = split_unit(high)
        else:
            high = in_unit("high", high, unit)
        dtype = _float(dtype)
        low, high = param(low, dtype), param(high, dtype)
        shape = as_shape(size, broadcast("uniform", low, high))
        r = jr.uniform(self._take(key), shape, dtype, low, high)
        return with_unit(r, unit)

    def randint(self, low: Any, high: Any = None, size: Size | None = None,
                dtype: DTypeLike | None = None, key: SeedOrKey | None = None) -> Any:
        """Integers from ``[low, high)`` (from ``[0, low)`` when ``high`` is None)."""
        if high is None:
            low, high = 0, low
        low, high = param(no_unit("low", low)), param(no_unit("high", high))
        shape = as_shape(size, broadcast("randint", low, high))
        return jr.randint(self._take(key), shape, low, high, _int(dtype))

    def random_integers(self, low: Any, high: Any = None, size: Size | None = None,
                        key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Integers from the closed interval ``[low, high]`` (``[1, low]`` without ``high``)."""
        if high is None:
            low, high = 1, low
        low, high = param(no_unit("low", low)), param(no_unit("high", high))
        shape = as_shape(size, broadcast("random_integers", low, high))
        return jr.randint(self._take(key), shape, low, high + 1, _int(dtype))

    def choice(self, a: Any, size: Size | None = None, replace: bool = True, p: Any = None,
               key: SeedOrKey | None = None) -> Any:
        """Samples from the entries of ``a`` (or from ``range(a)`` for an int ``a``).

        Notes
        -----
        Differs from upstream: a concrete ``p`` is checked (1-D, one entry per element of
        ``a``, non-negative, summing to 1) and a bad one raises ``ValueError``.
        """
        shape = as_shape(size)
        population, items, unit = _population(a)
        n = population if isinstance(population, int) else population.shape[0]
        p = param(p)
        if p is not None and is_concrete(p):
            parr = np.asarray(p, dtype=float)
            if parr.shape != (n,) or np.any(parr < 0) or not np.isclose(parr.sum(), 1.0,
                                                                         atol=1e-5):
                raise ValueError(
                    f"choice: p must be a 1-D vector of {n} non-negative probabilities summing "
                    f"to 1, got shape {parr.shape} summing to {parr.sum():.6g}."
                )
        if not replace and math.prod(shape) > n:
            raise ValueError(
                f"choice: cannot take {math.prod(shape)} samples without replacement from "
                f"{n} elements. Use replace=True or a smaller size."
            )
        r = jr.choice(self._take(key), population, shape, replace, p)
        if items is not None:
            return items[np.asarray(r)]
        return with_unit(r, unit)

    def permutation(self, x: Any, axis: int = 0, independent: bool = False,
                    key: SeedOrKey | None = None) -> Any:
        """A permuted copy of ``x`` along ``axis`` (a permutation of ``range(x)`` for an int)."""
        x, unit = split_unit(x)
        x = param(x)
        if not isinstance(x, (int, np.integer)):
            x = jnp.asarray(x)
        r = jr.permutation(self._take(key), x, axis, independent=independent)
        return with_unit(r, unit)

    def shuffle(self, x: Any, axis: int = 0, key: SeedOrKey | None = None) -> Any:
        """A shuffled copy of ``x`` along ``axis``.

        Notes
        -----
        Unlike ``numpy.random.shuffle`` nothing changes in place (JAX arrays are immutable):
        use the returned array, as upstream.
        """
        return self.permutation(x, axis=axis, independent=False, key=key)

    def rand_like(self, input: Any, dtype: DTypeLike | None = None,
                  key: SeedOrKey | None = None) -> Any:
        """Uniform samples on ``[0, 1)`` shaped like ``input`` (its float dtype by default)."""
        return jr.uniform(self._take(key), shape_of(input), _like_float(input, dtype))

    def randn_like(self, input: Any, dtype: DTypeLike | None = None,
                   key: SeedOrKey | None = None) -> Any:
        """Standard normal samples shaped like ``input`` (its float dtype by default)."""
        return jr.normal(self._take(key), shape_of(input), _like_float(input, dtype))

    def randint_like(self, input: Any, low: Any = 0, high: Any = None,
                     dtype: DTypeLike | None = None, key: SeedOrKey | None = None) -> Any:
        """Integers from ``[low, high)`` shaped like ``input`` (``high`` defaults to its max)."""
        if high is None:
            high = jnp.max(jnp.asarray(input))
        if dtype is None:
            dt = getattr(input, "dtype", None)
            dtype = dt if dt is not None and jnp.issubdtype(dt, jnp.integer) else ditype()
        return self.randint(low, high, size=shape_of(input), dtype=dtype, key=key)

    # --- location-scale families ---

    def _loc_scale(self, sampler: Any, name: str, loc: Any, scale: Any, size: Any, key: Any,
                   dtype: Any) -> Any:
        if dtype is None:
            dtype = dftype()
        if loc is None and scale is None:  # the common case: no ops beyond jax.random's
            shape = as_shape(size)
            return sampler(self._take(key), shape, dtype)
        loc, scale, unit = loc_scale_unit(loc, scale)
        loc, scale = param(loc, dtype), param(scale, dtype)
        shape = as_shape(size, broadcast(name, loc, scale))
        r = sampler(self._take(key), shape, dtype)
        if scale is not None:
            r = r * scale
        if loc is not None:
            r = r + loc
        return with_unit(r, unit)

    def normal(self, loc: Any = None, scale: Any = None, size: Size | None = None,
               key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Normal samples with mean ``loc`` and standard deviation ``scale``.

        Parameters
        ----------
        loc, scale : array_like or Quantity, optional
            Mean (default 0) and standard deviation (default 1). Quantities give samples in
            ``loc``'s unit (else ``scale``'s); a plain number beside a Quantity is read in its
            unit.
        size : int or tuple of ints, optional
            Output shape; default: the broadcast shape of ``loc`` and ``scale``.
        key : int or PRNG key, optional
            Draw with this key instead of the state's (which is then left untouched).
        dtype : dtype, optional
            Float dtype of the samples (default ``brainstate.environ.dftype()``).

        Examples
        --------
        >>> import brainstate.random as br
        >>> br.normal(size=(2, 3)).shape
        (2, 3)
        """
        return self._loc_scale(jr.normal, "normal", loc, scale, size, key, dtype)

    def gumbel(self, loc: Any = None, scale: Any = None, size: Size | None = None,
               key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Gumbel samples with location ``loc`` and scale ``scale`` (units as :meth:`normal`)."""
        return self._loc_scale(jr.gumbel, "gumbel", loc, scale, size, key, dtype)

    def laplace(self, loc: Any = None, scale: Any = None, size: Size | None = None,
                key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Laplace samples with location ``loc`` and scale ``scale`` (units as :meth:`normal`)."""
        return self._loc_scale(jr.laplace, "laplace", loc, scale, size, key, dtype)

    def logistic(self, loc: Any = None, scale: Any = None, size: Size | None = None,
                 key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Logistic samples with location ``loc`` and scale ``scale`` (units as :meth:`normal`)."""
        return self._loc_scale(jr.logistic, "logistic", loc, scale, size, key, dtype)

    def standard_normal(self, size: Size | None = None, key: SeedOrKey | None = None,
                        dtype: DTypeLike | None = None) -> Any:
        """Standard normal samples of shape ``size``."""
        shape = as_shape(size)
        return jr.normal(self._take(key), shape, _float(dtype))

    def standard_cauchy(self, size: Size | None = None, key: SeedOrKey | None = None,
                        dtype: DTypeLike | None = None) -> Any:
        """Standard Cauchy samples of shape ``size``."""
        shape = as_shape(size)
        return jr.cauchy(self._take(key), shape, _float(dtype))

    def standard_exponential(self, size: Size | None = None, key: SeedOrKey | None = None,
                             dtype: DTypeLike | None = None) -> Any:
        """Exponential samples with scale 1 of shape ``size``."""
        shape = as_shape(size)
        return jr.exponential(self._take(key), shape, _float(dtype))

    def truncated_normal(self, lower: Any, upper: Any, size: Size | None = None, loc: Any = 0.0,
                         scale: Any = 1.0, key: SeedOrKey | None = None,
                         dtype: DTypeLike | None = None, check_valid: bool = True) -> Any:
        """Normal samples (mean ``loc``, std ``scale``) truncated to ``[lower, upper]``.

        Quantities give samples in ``lower``'s unit; every bound and ``loc``/``scale`` must then
        be convertible to it.

        Notes
        -----
        Differs from upstream: ``check_valid`` checks ``lower <= upper`` and ``scale > 0``
        (upstream raised when ``loc`` lay more than two ``scale`` from the interval, a valid
        distribution).
        """
        lower, unit = split_unit(lower)
        upper = in_unit("upper", upper, unit)
        loc = in_unit("loc", loc, unit)
        scale = in_unit("scale", scale, unit)
        dtype = _float(dtype)
        lower, upper, loc, scale = (param(x, dtype) for x in (lower, upper, loc, scale))
        shape = as_shape(size, broadcast("truncated_normal", lower, upper, loc, scale))
        if check_valid:
            _check("truncated_normal", "lower must not exceed upper", lambda lo, hi: lo > hi,
                   lower, upper, traced=True)
            _check("truncated_normal", "scale must be positive", lambda sc: ~(sc > 0), scale,
                   traced=True)
        a = (lower - loc) / scale
        b = (upper - loc) / scale
        z = jr.truncated_normal(self._take(key), a, b, shape, dtype)
        return with_unit(z * scale + loc, unit)

    def lognormal(self, mean: Any = None, sigma: Any = None, size: Size | None = None,
                  key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Log-normal samples: ``exp(normal(mean, sigma))`` (dimensionless parameters).

        Notes
        -----
        Differs from upstream: a dimensional ``mean`` or ``sigma`` raises ``ValueError``
        (upstream attached ``mean``'s unit to ``exp`` of its mantissa).
        """
        mean, sigma = no_unit("mean", mean), no_unit("sigma", sigma)
        r = self._loc_scale(jr.normal, "lognormal", mean, sigma, size, key, dtype)
        return jnp.exp(r)

    # --- scale families ---

    def exponential(self, scale: Any = None, size: Size | None = None,
                    key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Exponential samples with mean ``scale`` (the inverse rate; in ``scale``'s unit).

        Notes
        -----
        Differs from upstream, which *divided* by ``scale``: here ``scale`` is NumPy's
        ``scale = 1 / rate``, so ``exponential(2.0)`` has mean 2.
        """
        dtype = _float(dtype)
        shape = as_shape(size, shape_of(split_unit(scale)[0]))
        return _scaled(jr.exponential(self._take(key), shape, dtype), scale, dtype)

    def gamma(self, shape: Any, scale: Any = None, size: Size | None = None,
              key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Gamma samples with shape ``shape`` and scale ``scale`` (in ``scale``'s unit)."""
        dtype = _float(dtype)
        a = param(no_unit("shape", shape), dtype)
        out = as_shape(size, broadcast("gamma", a, split_unit(scale)[0]))
        return _scaled(jr.gamma(self._take(key), a, out, dtype), scale, dtype)

    def standard_gamma(self, shape: Any, size: Size | None = None, key: SeedOrKey | None = None,
                       dtype: DTypeLike | None = None) -> Any:
        """Gamma samples with shape ``shape`` and scale 1."""
        return self.gamma(shape, None, size, key=key, dtype=dtype)

    def rayleigh(self, scale: Any = 1.0, size: Size | None = None, key: SeedOrKey | None = None,
                 dtype: DTypeLike | None = None) -> Any:
        """Rayleigh samples with scale ``scale`` (in ``scale``'s unit)."""
        dtype = _float(dtype)
        shape = as_shape(size, shape_of(split_unit(scale)[0]))
        return _scaled(jr.rayleigh(self._take(key), 1.0, shape, dtype), scale, dtype)

    def weibull(self, a: Any, size: Size | None = None, key: SeedOrKey | None = None,
                dtype: DTypeLike | None = None) -> Any:
        """Weibull samples with shape ``a`` and scale 1 (NumPy's ``weibull``)."""
        dtype = _float(dtype)
        a = param(no_unit("a", a), dtype)
        shape = as_shape(size, shape_of(a))
        return jr.weibull_min(self._take(key), 1.0, a, shape, dtype)

    def weibull_min(self, a: Any, scale: Any = None, size: Size | None = None,
                    key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Weibull samples with shape ``a`` and scale ``scale`` (in ``scale``'s unit).

        Notes
        -----
        Differs from upstream, which divided by ``scale``: samples are multiplied by it (the
        scale of SciPy's ``weibull_min``).
        """
        dtype = _float(dtype)
        a = param(no_unit("a", a), dtype)
        shape = as_shape(size, broadcast("weibull_min", a, split_unit(scale)[0]))
        return _scaled(jr.weibull_min(self._take(key), 1.0, a, shape, dtype), scale, dtype)

    def maxwell(self, size: Size | None = None, key: SeedOrKey | None = None,
                dtype: DTypeLike | None = None) -> Any:
        """Maxwell-Boltzmann samples (scale 1) of shape ``size``."""
        shape = as_shape(size)
        return jr.maxwell(self._take(key), shape, _float(dtype))

    def pareto(self, a: Any, size: Size | None = None, key: SeedOrKey | None = None,
               dtype: DTypeLike | None = None) -> Any:
        """Pareto samples with shape ``a`` and minimum 1 (``jax.random.pareto``, as upstream).

        Notes
        -----
        NumPy's ``pareto`` is the Lomax form (minimum 0): subtract 1 for it.
        """
        dtype = _float(dtype)
        a = param(no_unit("a", a), dtype)
        shape = as_shape(size, shape_of(a))
        return jr.pareto(self._take(key), a, shape, dtype)

    def power(self, a: Any, size: Size | None = None, key: SeedOrKey | None = None,
              dtype: DTypeLike | None = None) -> Any:
        """Samples on ``[0, 1]`` from the power distribution with exponent ``a - 1``."""
        dtype = _float(dtype)
        a = param(no_unit("a", a), dtype)
        _check("power", "a must be positive", lambda x: ~(x > 0), a)
        shape = as_shape(size, shape_of(a))
        u = jr.uniform(self._take(key), shape, dtype)
        return jnp.power(u, 1.0 / a)

    # --- shape-parameter families ---

    def beta(self, a: Any, b: Any, size: Size | None = None, key: SeedOrKey | None = None,
             dtype: DTypeLike | None = None) -> Any:
        """Beta samples with shapes ``a`` and ``b``."""
        dtype = _float(dtype)
        a, b = param(no_unit("a", a), dtype), param(no_unit("b", b), dtype)
        shape = as_shape(size, broadcast("beta", a, b))
        return jr.beta(self._take(key), a, b, shape, dtype)

    def chisquare(self, df: Any, size: Size | None = None, key: SeedOrKey | None = None,
                  dtype: DTypeLike | None = None) -> Any:
        """Chi-square samples with ``df`` degrees of freedom."""
        dtype = _float(dtype)
        df = param(no_unit("df", df), dtype)
        shape = as_shape(size, shape_of(df))
        return jr.chisquare(self._take(key), df, shape, dtype)

    def standard_t(self, df: Any, size: Size | None = None, key: SeedOrKey | None = None,
                   dtype: DTypeLike | None = None) -> Any:
        """Student's t samples with ``df`` degrees of freedom."""
        return self.t(df, size, key=key, dtype=dtype)

    def t(self, df: Any, size: Size | None = None, key: SeedOrKey | None = None,
          dtype: DTypeLike | None = None) -> Any:
        """Student's t samples with ``df`` degrees of freedom."""
        dtype = _float(dtype)
        df = param(no_unit("df", df), dtype)
        shape = as_shape(size, shape_of(df))
        return jr.t(self._take(key), df, shape, dtype)

    def f(self, dfnum: Any, dfden: Any, size: Size | None = None,
          key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """F samples with ``dfnum`` and ``dfden`` degrees of freedom."""
        dtype = _float(dtype)
        dfnum, dfden = param(no_unit("dfnum", dfnum), dtype), param(no_unit("dfden", dfden), dtype)
        shape = as_shape(size, broadcast("f", dfnum, dfden))
        return jr.f(self._take(key), dfnum, dfden, shape, dtype)

    def loggamma(self, a: Any, size: Size | None = None, key: SeedOrKey | None = None,
                 dtype: DTypeLike | None = None) -> Any:
        """Logarithms of gamma samples with shape ``a`` (accurate for small ``a``)."""
        dtype = _float(dtype)
        a = param(no_unit("a", a), dtype)
        shape = as_shape(size, shape_of(a))
        return jr.loggamma(self._take(key), a, shape, dtype)

    def dirichlet(self, alpha: Any, size: Size | None = None, key: SeedOrKey | None = None,
                  dtype: DTypeLike | None = None) -> Any:
        """Dirichlet samples: shape ``size + alpha.shape[-1:]``, each summing to 1."""
        dtype = _float(dtype)
        alpha = jnp.asarray(no_unit("alpha", alpha), dtype)
        if alpha.ndim < 1:
            raise ValueError(f"dirichlet: alpha must have at least one axis, got shape "
                             f"{alpha.shape}.")
        shape = as_shape(size, alpha.shape[:-1])
        return jr.dirichlet(self._take(key), alpha, shape, dtype)

    def noncentral_chisquare(self, df: Any, nonc: Any, size: Size | None = None,
                             key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Noncentral chi-square samples (``df`` degrees of freedom, noncentrality ``nonc``)."""
        dtype = _float(dtype)
        df, nonc = param(no_unit("df", df), dtype), param(no_unit("nonc", nonc), dtype)
        shape = as_shape(size, broadcast("noncentral_chisquare", df, nonc))
        return _samplers.noncentral_chisquare(self._take(key), df, nonc, shape, dtype, ditype())

    def noncentral_f(self, dfnum: Any, dfden: Any, nonc: Any, size: Size | None = None,
                     key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Noncentral F samples (``dfnum``/``dfden`` degrees of freedom, noncentrality ``nonc``)."""
        dtype = _float(dtype)
        dfnum, dfden, nonc = (param(no_unit(n, x), dtype) for n, x in
                              (("dfnum", dfnum), ("dfden", dfden), ("nonc", nonc)))
        shape = as_shape(size, broadcast("noncentral_f", dfnum, dfden, nonc))
        k1, k2 = self._take_n(key, 2)
        num = _samplers.noncentral_chisquare(k1, dfnum, nonc, shape, dtype, ditype())
        den = jr.chisquare(k2, dfden, shape, dtype)
        return (num * dfden) / (den * dfnum)

    def vonmises(self, mu: Any, kappa: Any, size: Size | None = None,
                 key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Von Mises angles on ``[-pi, pi)`` with mode ``mu`` and concentration ``kappa``."""
        dtype = _float(dtype)
        mu, kappa = param(no_unit("mu", mu), dtype), param(no_unit("kappa", kappa), dtype)
        _check("vonmises", "kappa must be non-negative", lambda k: k < 0, kappa)
        shape = as_shape(size, broadcast("vonmises", mu, kappa))
        return _samplers.von_mises(self._take(key), mu, kappa, shape, dtype)

    def wald(self, mean: Any, scale: Any, size: Size | None = None,
             key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Wald (inverse Gaussian) samples with mean ``mean`` and shape parameter ``scale``."""
        dtype = _float(dtype)
        mean, scale = param(no_unit("mean", mean), dtype), param(no_unit("scale", scale), dtype)
        _check("wald", "mean and scale must be positive", lambda m, s: ~((m > 0) & (s > 0)),
               mean, scale)
        shape = as_shape(size, broadcast("wald", mean, scale))
        return _samplers.wald(self._take(key), mean, scale, shape, dtype)

    def multivariate_normal(self, mean: Any, cov: Any, size: Size | None = None,
                            method: str = "cholesky", key: SeedOrKey | None = None,
                            dtype: DTypeLike | None = None) -> Any:
        """Multivariate normal samples: shape ``size + mean.shape[-1:]``.

        A Quantity ``mean`` needs ``cov`` in the square of its unit; samples are in ``mean``'s.
        """
        if method not in ("svd", "eigh", "cholesky"):
            raise ValueError(f"multivariate_normal: method must be 'svd', 'eigh' or "
                             f"'cholesky', got {method!r}.")
        dtype = _float(dtype)
        mean, unit = split_unit(mean)
        cov = in_unit("cov", cov, None if unit is None else unit ** 2)
        mean, cov = jnp.asarray(mean, dtype), jnp.asarray(cov, dtype)
        if mean.ndim < 1 or cov.ndim < 2 or cov.shape[-2:] != mean.shape[-1:] * 2:
            raise ValueError(
                f"multivariate_normal: need mean of shape (..., n) and cov of shape (..., n, n), "
                f"got mean {mean.shape} and cov {cov.shape}."
            )
        batch = broadcast("multivariate_normal", mean[..., 0], cov[..., 0, 0])
        shape = as_shape(size, batch)
        r = jr.multivariate_normal(self._take(key), mean, cov, shape, dtype, method)
        return with_unit(r, unit)

    def orthogonal(self, n: int, size: Size | None = None, key: SeedOrKey | None = None,
                   dtype: DTypeLike | None = None) -> Any:
        """Haar-random orthogonal ``n x n`` matrices: shape ``size + (n, n)``."""
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"orthogonal: n must be a positive int, got {n!r}.")
        shape = as_shape(size)
        return jr.orthogonal(self._take(key), int(n), shape, _float(dtype))

    # --- discrete ---

    def bernoulli(self, p: Any = 0.5, size: Size | None = None, key: SeedOrKey | None = None,
                  check_valid: bool = True) -> Any:
        """Boolean samples that are True with probability ``p``.

        Parameters
        ----------
        p : array_like
            Probabilities in ``[0, 1]``.
        size : int or tuple of ints, optional
            Output shape; default ``p``'s shape.
        key : int or PRNG key, optional
            Draw with this key instead of the state's.
        check_valid : bool
            Check ``p`` (``ValueError`` eagerly; a runtime error under ``jit``).
        """
        p = param(no_unit("p", p))
        _prob("bernoulli", p, check_valid)
        shape = as_shape(size, shape_of(p))
        return jr.bernoulli(self._take(key), p, shape)

    def binomial(self, n: Any, p: Any, size: Size | None = None, key: SeedOrKey | None = None,
                 dtype: DTypeLike | None = None, check_valid: bool = True) -> Any:
        """Successes in ``n`` trials of probability ``p`` (integers, default ``ditype()``)."""
        fdtype = dftype()
        n, p = param(no_unit("n", n), fdtype), param(no_unit("p", p), fdtype)
        _prob("binomial", p, check_valid)
        if check_valid:
            _check("binomial", "n must be non-negative", lambda x: x < 0, n, traced=True)
        shape = as_shape(size, broadcast("binomial", n, p))
        r = jr.binomial(self._take(key), n, p, shape, fdtype)
        return r.astype(_int(dtype))

    def negative_binomial(self, n: Any, p: Any, size: Size | None = None,
                          key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Failures before the ``n``-th success with success probability ``p``."""
        fdtype = dftype()
        n, p = param(no_unit("n", n), fdtype), param(no_unit("p", p), fdtype)
        _check("negative_binomial", "p must lie in (0, 1]", lambda x: ~((x > 0) & (x <= 1)), p)
        shape = as_shape(size, broadcast("negative_binomial", n, p))
        return _samplers.negative_binomial(self._take(key), n, p, shape, _int(dtype), fdtype)

    def poisson(self, lam: Any = 1.0, size: Size | None = None, key: SeedOrKey | None = None,
                dtype: DTypeLike | None = None) -> Any:
        """Poisson samples with rate ``lam`` (integers, default ``ditype()``)."""
        lam = param(no_unit("lam", lam), dftype())
        _check("poisson", "lam must be non-negative", lambda x: ~(x >= 0), lam)
        shape = as_shape(size, shape_of(lam))
        return jr.poisson(self._take(key), lam, shape, _int(dtype))

    def geometric(self, p: Any, size: Size | None = None, key: SeedOrKey | None = None,
                  dtype: DTypeLike | None = None) -> Any:
        """Trials up to and including the first success (integers >= 1, as NumPy).

        Notes
        -----
        Differs from upstream, which counted failures (from 0) and returned floats.
        """
        p = param(no_unit("p", p), dftype())
        _check("geometric", "p must lie in (0, 1]", lambda x: ~((x > 0) & (x <= 1)), p)
        shape = as_shape(size, shape_of(p))
        return jr.geometric(self._take(key), p, shape, _int(dtype))

    def hypergeometric(self, ngood: Any, nbad: Any, nsample: Any, size: Size | None = None,
                       key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
        """Good items among ``nsample`` drawn without replacement from ``ngood + nbad``."""
        itype = _int(dtype)
        ngood, nbad, nsample = (param(no_unit(n, x), itype) for n, x in
                                (("ngood", ngood), ("nbad", nbad), ("nsample", nsample)))
        _check("hypergeometric", "ngood and nbad must be non-negative",
               lambda g, b: (g < 0) | (b < 0), ngood, nbad)
        _check("hypergeometric", "nsample must lie in [0, ngood + nbad]",
               lambda g, b, k: (k < 0) | (k > g + b), ngood, nbad, nsample)
        shape = as_shape(size, broadcast("hypergeometric", ngood, nbad, nsample))
        return _samplers.hypergeometric(self._take(key), ngood, nbad, nsample, shape, itype)

    def logseries(self, p: Any, size: Size | None = None, key: SeedOrKey | None = None,
                  dtype: DTypeLike | None = None) -> Any:
        """Logarithmic series samples (integers >= 1) with parameter ``p`` in ``[0, 1)``."""
        fdtype = dftype()
        p = param(no_unit("p", p), fdtype)
        _check("logseries", "p must lie in [0, 1)", lambda x: ~((x >= 0) & (x < 1)), p)
        shape = as_shape(size, shape_of(p))
        return _samplers.logseries(self._take(key), p, shape, _int(dtype), fdtype)

    def zipf(self, a: Any, size: Size | None = None, key: SeedOrKey | None = None,
             dtype: DTypeLike | None = None) -> Any:
        """Zipf samples (integers >= 1) with exponent ``a > 1``."""
        fdtype = dftype()
        a = param(no_unit("a", a), fdtype)
        _check("zipf", "a must be greater than 1", lambda x: ~(x > 1), a)
        shape = as_shape(size, shape_of(a))
        return _samplers.zipf(self._take(key), a, shape, _int(dtype), fdtype)

    def multinomial(self, n: Any, pvals: Any, size: Size | None = None,
                    key: SeedOrKey | None = None, dtype: DTypeLike | None = None,
                    check_valid: bool = True) -> Any:
        """Category counts of ``n`` draws with probabilities ``pvals``: shape ``size + (k,)``."""
        fdtype = dftype()
        n = param(no_unit("n", n), fdtype)
        pvals = jnp.asarray(no_unit("pvals", pvals), fdtype)
        if pvals.ndim < 1:
            raise ValueError(f"multinomial: pvals must have at least one axis, got shape "
                             f"{pvals.shape}.")
        _prob("multinomial", pvals, check_valid)
        if check_valid:
            _check("multinomial", "sum(pvals[:-1]) must not exceed 1",
                   lambda pv: pv[..., :-1].sum(-1) > 1 + 1e-6, pvals, traced=True)
        batch = as_shape(size, broadcast("multinomial", n, pvals[..., 0]))
        # Broadcast the parameters instead of passing shape=: JAX 0.12 reads shape= without the
        # category axis, earlier releases with it.
        pvals = jnp.broadcast_to(pvals, batch + pvals.shape[-1:])
        r = jr.multinomial(self._take(key), jnp.broadcast_to(n, batch), pvals, dtype=fdtype)
        return r.astype(_int(dtype))

    def categorical(self, logits: Any, axis: int = -1, size: Size | None = None,
                    key: SeedOrKey | None = None) -> Any:
        """Category indices drawn with log-probabilities ``logits`` along ``axis``."""
        logits = jnp.asarray(no_unit("logits", logits))
        if logits.ndim < 1:
            raise ValueError("categorical: logits must have at least one axis.")
        batch = list(logits.shape)
        batch.pop(axis)
        shape = as_shape(size, tuple(batch))
        return jr.categorical(self._take(key), logits, axis, shape)

    def triangular(self, size: Size | None = None, key: SeedOrKey | None = None) -> Any:
        """Samples of -1 or +1 with equal probability (upstream's ``triangular``).

        Notes
        -----
        This is upstream's contract (a Rademacher variable), not NumPy's
        ``triangular(left, mode, right)``: use ``jax.random.triangular`` for that one.
        """
        shape = as_shape(size)
        return jr.rademacher(self._take(key), shape, ditype())


def _like_float(input: Any, dtype: Any) -> Any:
    if dtype is not None:
        return dtype
    dt = getattr(input, "dtype", None)
    if dt is not None and jnp.issubdtype(dt, jnp.floating):
        return dt
    return dftype()


#: Every public draw method (the module-level functions mirror them one to one).
DRAW_NAMES = tuple(sorted(
    name for name, v in vars(DrawMethods).items()
    if callable(v) and not name.startswith("_")
))
