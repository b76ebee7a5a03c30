"""Samplers ``jax.random`` does not provide, as pure functions of an explicit key.

Each takes ``(key, *params, shape, dtype)`` and returns an array of ``shape``; parameters are
broadcast to ``shape``. Rejection samplers run one vectorised ``lax.while_loop`` over all
elements (not one loop per element), so they batch and compile like any other draw.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax import lax

__all__ = [
    "von_mises",
    "hypergeometric",
    "logseries",
    "zipf",
    "wald",
    "noncentral_chisquare",
    "negative_binomial",
]

# Bound on rejection rounds: every sampler below accepts with probability > 1/2 per round for
# valid parameters, so 1000 rounds fail with probability < 2**-1000; the bound only stops a
# loop fed invalid (traced, unchecked) parameters from spinning forever.
_MAX_ROUNDS = 1000


def _bcast(x: Any, shape: tuple, dtype: Any) -> Any:
    return jnp.broadcast_to(jnp.asarray(x, dtype), shape)


def von_mises(key: Any, mu: Any, kappa: Any, shape: tuple, dtype: Any) -> Any:
    """Von Mises angles in ``[-pi, pi)`` (Best and Fisher's wrapped-Cauchy rejection).

    ``kappa == 0`` gives the uniform distribution on the circle.
    """
    mu = _bcast(mu, shape, dtype)
    kappa = _bcast(kappa, shape, dtype)
    tiny = np.finfo(np.dtype(dtype)).eps ** 0.5
    safe = jnp.where(kappa > tiny, kappa, jnp.ones_like(kappa))
    tau = 1.0 + jnp.sqrt(1.0 + 4.0 * safe * safe)
    rho = (tau - jnp.sqrt(2.0 * tau)) / (2.0 * safe)
    # the closed form cancels catastrophically for small kappa, where r -> 1 / kappa
    r = jnp.where(safe > 1e-2, (1.0 + rho * rho) / (2.0 * rho), 1.0 / safe)
    key, k_uniform = jr.split(key)

    def body(carry):
        i, k, done, theta = carry
        k, k1, k2, k3 = jr.split(k, 4)
        z = jnp.cos(jnp.pi * jr.uniform(k1, shape, dtype))
        f = (1.0 + r * z) / (r + z)
        c = safe * (r - f)
        v = jr.uniform(k2, shape, dtype)
        ok = (c * (2.0 - c) - v > 0) | (jnp.log(c / v) + 1.0 - c >= 0)
        sign = jnp.where(jr.uniform(k3, shape, dtype) < 0.5, -1.0, 1.0).astype(dtype)
        new = sign * jnp.arccos(jnp.clip(f, -1.0, 1.0))
        return i + 1, k, done | ok, jnp.where(done, theta, new)

    def cond(carry):
        i, _, done, _ = carry
        return (i < _MAX_ROUNDS) & ~jnp.all(done)

    init = (jnp.int32(0), key, jnp.zeros(shape, bool), jnp.zeros(shape, dtype))
    _, _, _, theta = lax.while_loop(cond, body, init)
    theta = jnp.where(kappa > tiny, theta, jr.uniform(k_uniform, shape, dtype, -jnp.pi, jnp.pi))
    return jnp.mod(theta + mu + jnp.pi, 2.0 * jnp.pi) - jnp.pi


def hypergeometric(key: Any, ngood: Any, nbad: Any, nsample: Any, shape: tuple,
                   dtype: Any) -> Any:
    """Good items among ``nsample`` drawn without replacement from ``ngood + nbad``.

    One draw per round for every element at once; the loop runs ``max(nsample)`` rounds.
    """
    good = _bcast(ngood, shape, dtype)
    bad = _bcast(nbad, shape, dtype)
    nsample = _bcast(nsample, shape, dtype)
    fdtype = jnp.promote_types(jnp.float32, jnp.result_type(float))

    def body(carry):
        i, g, b, hits = carry
        active = i < nsample
        total = (g + b).astype(fdtype)
        p = jnp.where(total > 0, g.astype(fdtype) / jnp.maximum(total, 1), 0.0)
        success = active & (jr.uniform(jr.fold_in(key, i), shape, fdtype) < p)
        failure = active & ~success
        one = jnp.ones_like(g)
        return (i + 1, g - jnp.where(success, one, 0), b - jnp.where(failure, one, 0),
                hits + jnp.where(success, one, 0))

    def cond(carry):
        return carry[0] < jnp.max(nsample, initial=0)

    zero = jnp.zeros((), dtype)
    _, _, _, hits = lax.while_loop(cond, body, (zero, good, bad, jnp.zeros(shape, dtype)))
    return hits


def logseries(key: Any, p: Any, shape: tuple, dtype: Any, fdtype: Any) -> Any:
    """Logarithmic series variates (Kemp's second accelerated generator, as NumPy)."""
    p = _bcast(p, shape, fdtype)
    k_v, k_u = jr.split(key)
    v = jr.uniform(k_v, shape, fdtype)
    u = jr.uniform(k_u, shape, fdtype)
    q = -jnp.expm1(jnp.log1p(-p) * u)
    tail = jnp.floor(1.0 + jnp.log(v) / jnp.log(q))
    out = jnp.where(v >= p, 1.0, jnp.where(v <= q * q, tail, jnp.where(v >= q, 1.0, 2.0)))
    return jnp.maximum(out, 1.0).astype(dtype)


def zipf(key: Any, a: Any, shape: tuple, dtype: Any, fdtype: Any) -> Any:
    """Zipf (zeta) variates for ``a > 1`` (Devroye's rejection method, as NumPy)."""
    a = _bcast(a, shape, fdtype)
    am1 = a - 1.0
    b = jnp.power(2.0, am1)
    limit = float(np.iinfo(np.dtype(dtype)).max)

    def body(carry):
        i, k, done, x = carry
        k, k_u, k_v = jr.split(k, 3)
        u = 1.0 - jr.uniform(k_u, shape, fdtype)
        v = jr.uniform(k_v, shape, fdtype)
        cand = jnp.floor(jnp.power(u, -1.0 / am1))
        t = jnp.power(1.0 + 1.0 / cand, am1)
        ok = (cand >= 1) & (cand < limit) & (v * cand * (t - 1.0) / (b - 1.0) <= t / b)
        return i + 1, k, done | ok, jnp.where(done, x, cand)

    def cond(carry):
        i, _, done, _ = carry
        return (i < _MAX_ROUNDS) & ~jnp.all(done)

    init = (jnp.int32(0), key, jnp.zeros(shape, bool), jnp.ones(shape, fdtype))
    _, _, _, x = lax.while_loop(cond, body, init)
    return x.astype(dtype)


def wald(key: Any, mean: Any, scale: Any, shape: tuple, dtype: Any) -> Any:
    """Inverse Gaussian (Wald) variates with the given mean and shape parameter ``scale``."""
    mean = _bcast(mean, shape, dtype)
    scale = _bcast(scale, shape, dtype)
    k_n, k_u = jr.split(key)
    y = jnp.square(jr.normal(k_n, shape, dtype)) * mean
    x = mean + mean / (2.0 * scale) * (y - jnp.sqrt(4.0 * scale * y + y * y))
    u = jr.uniform(k_u, shape, dtype)
    return jnp.where(u <= mean / (mean + x), x, mean * mean / x)


def noncentral_chisquare(key: Any, df: Any, nonc: Any, shape: tuple, dtype: Any,
                         itype: Any) -> Any:
    """Noncentral chi-square variates (NumPy's decomposition by ``df > 1``)."""
    df = _bcast(df, shape, dtype)
    nonc = _bcast(nonc, shape, dtype)
    k_p, k_n, k_c = jr.split(key, 3)
    i = jr.poisson(k_p, 0.5 * nonc, shape, dtype=itype).astype(dtype)
    n = jr.normal(k_n, shape, dtype) + jnp.sqrt(nonc)
    big = df > 1.0
    chi2 = jr.chisquare(k_c, jnp.where(big, df - 1.0, df + 2.0 * i), shape, dtype)
    return jnp.where(big, chi2 + n * n, chi2)


def negative_binomial(key: Any, n: Any, p: Any, shape: tuple, dtype: Any, fdtype: Any) -> Any:
    """Failures before the ``n``-th success (a gamma-Poisson mixture, as NumPy)."""
    n = _bcast(n, shape, fdtype)
    p = _bcast(p, shape, fdtype)
    k_g, k_p = jr.split(key)
    rate = jr.gamma(k_g, n, shape, fdtype) * ((1.0 - p) / p)
    return jr.poisson(k_p, rate, shape, dtype=dtype)
