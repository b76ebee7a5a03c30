"""Module-level draws: each calls the method of the same name on ``DEFAULT``.

``brainstate.random.normal(size=3)`` is ``brainstate.random.DEFAULT.normal(size=3)``: it
advances the process-wide key (``key=`` draws with an explicit key instead and leaves it alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from brainstate.random._state import DEFAULT

if TYPE_CHECKING:
    from brainstate.typing import DTypeLike, SeedOrKey, Size

__all__ = [
    "bernoulli",
    "beta",
    "binomial",
    "categorical",
    "chisquare",
    "choice",
    "dirichlet",
    "exponential",
    "f",
    "gamma",
    "geometric",
    "gumbel",
    "hypergeometric",
    "laplace",
    "loggamma",
    "logistic",
    "lognormal",
    "logseries",
    "maxwell",
    "multinomial",
    "multivariate_normal",
    "negative_binomial",
    "noncentral_chisquare",
    "noncentral_f",
    "normal",
    "orthogonal",
    "pareto",
    "permutation",
    "poisson",
    "power",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randn",
    "randn_like",
    "random",
    "random_integers",
    "random_sample",
    "ranf",
    "rayleigh",
    "sample",
    "shuffle",
    "standard_cauchy",
    "standard_exponential",
    "standard_gamma",
    "standard_normal",
    "standard_t",
    "t",
    "triangular",
    "truncated_normal",
    "uniform",
    "vonmises",
    "wald",
    "weibull",
    "weibull_min",
    "zipf",
]


def bernoulli(p: Any = 0.5, size: Size | None = None, key: SeedOrKey | None = None,
              check_valid: bool = True) -> Any:
    """Boolean samples that are True with probability ``p``.

    Draws from ``DEFAULT``; see :meth:`RandomState.bernoulli` for the parameters.
    """
    return DEFAULT.bernoulli(p, size, key, check_valid)


def beta(a: Any, b: Any, size: Size | None = None, key: SeedOrKey | None = None,
         dtype: DTypeLike | None = None) -> Any:
    """Beta samples with shapes ``a`` and ``b``.

    Draws from ``DEFAULT``; see :meth:`RandomState.beta` for the parameters.
    """
    return DEFAULT.beta(a, b, size, key, dtype)


def binomial(n: Any, p: Any, size: Size | None = None, key: SeedOrKey | None = None,
             dtype: DTypeLike | None = None, check_valid: bool = True) -> Any:
    """Successes in ``n`` trials of probability ``p`` (integers, default ``ditype()``).

    Draws from ``DEFAULT``; see :meth:`RandomState.binomial` for the parameters.
    """
    return DEFAULT.binomial(n, p, size, key, dtype, check_valid)


def categorical(logits: Any, axis: int = -1, size: Size | None = None,
                key: SeedOrKey | None = None) -> Any:
    """Category indices drawn with log-probabilities ``logits`` along ``axis``.

    Draws from ``DEFAULT``; see :meth:`RandomState.categorical` for the parameters.
    """
    return DEFAULT.categorical(logits, axis, size, key)


def chisquare(df: Any, size: Size | None = None, key: SeedOrKey | None = None,
              dtype: DTypeLike | None = None) -> Any:
    """Chi-square samples with ``df`` degrees of freedom.

    Draws from ``DEFAULT``; see :meth:`RandomState.chisquare` for the parameters.
    """
    return DEFAULT.chisquare(df, size, key, dtype)


def choice(a: Any, size: Size | None = None, replace: bool = True, p: Any = None,
           key: SeedOrKey | None = None) -> Any:
    """Samples from the entries of ``a`` (or from ``range(a)`` for an int ``a``).

    Draws from ``DEFAULT``; see :meth:`RandomState.choice` for the parameters.
    """
    return DEFAULT.choice(a, size, replace, p, key)


def dirichlet(alpha: Any, size: Size | None = None, key: SeedOrKey | None = None,
              dtype: DTypeLike | None = None) -> Any:
    """Dirichlet samples: shape ``size + alpha.shape[-1:]``, each summing to 1.

    Draws from ``DEFAULT``; see :meth:`RandomState.dirichlet` for the parameters.
    """
    return DEFAULT.dirichlet(alpha, size, key, dtype)


def exponential(scale: Any = None, size: Size | None = None,
                key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Exponential samples with mean ``scale`` (the inverse rate; in ``scale``'s unit).

    Draws from ``DEFAULT``; see :meth:`RandomState.exponential` for the parameters.
    """
    return DEFAULT.exponential(scale, size, key, dtype)


def f(dfnum: Any, dfden: Any, size: Size | None = None,
      key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """F samples with ``dfnum`` and ``dfden`` degrees of freedom.

    Draws from ``DEFAULT``; see :meth:`RandomState.f` for the parameters.
    """
    return DEFAULT.f(dfnum, dfden, size, key, dtype)


def gamma(shape: Any, scale: Any = None, size: Size | None = None,
          key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Gamma samples with shape ``shape`` and scale ``scale`` (in ``scale``'s unit).

    Draws from ``DEFAULT``; see :meth:`RandomState.gamma` for the parameters.
    """
    return DEFAULT.gamma(shape, scale, size, key, dtype)


def geometric(p: Any, size: Size | None = None, key: SeedOrKey | None = None,
              dtype: DTypeLike | None = None) -> Any:
    """Trials up to and including the first success (integers >= 1, as NumPy).

    Draws from ``DEFAULT``; see :meth:`RandomState.geometric` for the parameters.
    """
    return DEFAULT.geometric(p, size, key, dtype)


def gumbel(loc: Any = None, scale: Any = None, size: Size | None = None,
           key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Gumbel samples with location ``loc`` and scale ``scale`` (units as :meth:`normal`).

    Draws from ``DEFAULT``; see :meth:`RandomState.gumbel` for the parameters.
    """
    return DEFAULT.gumbel(loc, scale, size, key, dtype)


def hypergeometric(ngood: Any, nbad: Any, nsample: Any, size: Size | None = None,
                   key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Good items among ``nsample`` drawn without replacement from ``ngood + nbad``.

    Draws from ``DEFAULT``; see :meth:`RandomState.hypergeometric` for the parameters.
    """
    return DEFAULT.hypergeometric(ngood, nbad, nsample, size, key, dtype)


def laplace(loc: Any = None, scale: Any = None, size: Size | None = None,
            key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Laplace samples with location ``loc`` and scale ``scale`` (units as :meth:`normal`).

    Draws from ``DEFAULT``; see :meth:`RandomState.laplace` for the parameters.
    """
    return DEFAULT.laplace(loc, scale, size, key, dtype)


def loggamma(a: Any, size: Size | None = None, key: SeedOrKey | None = None,
             dtype: DTypeLike | None = None) -> Any:
    """Logarithms of gamma samples with shape ``a`` (accurate for small ``a``).

    Draws from ``DEFAULT``; see :meth:`RandomState.loggamma` for the parameters.
    """
    return DEFAULT.loggamma(a, size, key, dtype)


def logistic(loc: Any = None, scale: Any = None, size: Size | None = None,
             key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Logistic samples with location ``loc`` and scale ``scale`` (units as :meth:`normal`).

    Draws from ``DEFAULT``; see :meth:`RandomState.logistic` for the parameters.
    """
    return DEFAULT.logistic(loc, scale, size, key, dtype)


def lognormal(mean: Any = None, sigma: Any = None, size: Size | None = None,
              key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Log-normal samples: ``exp(normal(mean, sigma))`` (dimensionless parameters).

    Draws from ``DEFAULT``; see :meth:`RandomState.lognormal` for the parameters.
    """
    return DEFAULT.lognormal(mean, sigma, size, key, dtype)


def logseries(p: Any, size: Size | None = None, key: SeedOrKey | None = None,
              dtype: DTypeLike | None = None) -> Any:
    """Logarithmic series samples (integers >= 1) with parameter ``p`` in ``[0, 1)``.

    Draws from ``DEFAULT``; see :meth:`RandomState.logseries` for the parameters.
    """
    return DEFAULT.logseries(p, size, key, dtype)


def maxwell(size: Size | None = None, key: SeedOrKey | None = None,
            dtype: DTypeLike | None = None) -> Any:
    """Maxwell-Boltzmann samples (scale 1) of shape ``size``.

    Draws from ``DEFAULT``; see :meth:`RandomState.maxwell` for the parameters.
    """
    return DEFAULT.maxwell(size, key, dtype)


def multinomial(n: Any, pvals: Any, size: Size | None = None,
                key: SeedOrKey | None = None, dtype: DTypeLike | None = None,
                check_valid: bool = True) -> Any:
    """Category counts of ``n`` draws with probabilities ``pvals``: shape ``size + (k,)``.

    Draws from ``DEFAULT``; see :meth:`RandomState.multinomial` for the parameters.
    """
    return DEFAULT.multinomial(n, pvals, size, key, dtype, check_valid)


def multivariate_normal(mean: Any, cov: Any, size: Size | None = None,
                        method: str = "cholesky", key: SeedOrKey | None = None,
                        dtype: DTypeLike | None = None) -> Any:
    """Multivariate normal samples: shape ``size + mean.shape[-1:]``.

    Draws from ``DEFAULT``; see :meth:`RandomState.multivariate_normal` for the parameters.
    """
    return DEFAULT.multivariate_normal(mean, cov, size, method, key, dtype)


def negative_binomial(n: Any, p: Any, size: Size | None = None,
                      key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Failures before the ``n``-th success with success probability ``p``.

    Draws from ``DEFAULT``; see :meth:`RandomState.negative_binomial` for the parameters.
    """
    return DEFAULT.negative_binomial(n, p, size, key, dtype)


def noncentral_chisquare(df: Any, nonc: Any, size: Size | None = None,
                         key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Noncentral chi-square samples (``df`` degrees of freedom, noncentrality ``nonc``).

    Draws from ``DEFAULT``; see :meth:`RandomState.noncentral_chisquare` for the parameters.
    """
    return DEFAULT.noncentral_chisquare(df, nonc, size, key, dtype)


def noncentral_f(dfnum: Any, dfden: Any, nonc: Any, size: Size | None = None,
                 key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Noncentral F samples (``dfnum``, ``dfden`` degrees of freedom, noncentrality ``nonc``).

    Draws from ``DEFAULT``; see :meth:`RandomState.noncentral_f` for the parameters.
    """
    return DEFAULT.noncentral_f(dfnum, dfden, nonc, size, key, dtype)


def normal(loc: Any = None, scale: Any = None, size: Size | None = None,
           key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Normal samples with mean ``loc`` and standard deviation ``scale``.

    Draws from ``DEFAULT``; see :meth:`RandomState.normal` for the parameters.
    """
    return DEFAULT.normal(loc, scale, size, key, dtype)


def orthogonal(n: int, size: Size | None = None, key: SeedOrKey | None = None,
               dtype: DTypeLike | None = None) -> Any:
    """Haar-random orthogonal ``n x n`` matrices: shape ``size + (n, n)``.

    Draws from ``DEFAULT``; see :meth:`RandomState.orthogonal` for the parameters.
    """
    return DEFAULT.orthogonal(n, size, key, dtype)


def pareto(a: Any, size: Size | None = None, key: SeedOrKey | None = None,
           dtype: DTypeLike | None = None) -> Any:
    """Pareto samples with shape ``a`` and minimum 1 (``jax.random.pareto``, as upstream).

    Draws from ``DEFAULT``; see :meth:`RandomState.pareto` for the parameters.
    """
    return DEFAULT.pareto(a, size, key, dtype)


def permutation(x: Any, axis: int = 0, independent: bool = False,
                key: SeedOrKey | None = None) -> Any:
    """A permuted copy of ``x`` along ``axis`` (a permutation of ``range(x)`` for an int).

    Draws from ``DEFAULT``; see :meth:`RandomState.permutation` for the parameters.
    """
    return DEFAULT.permutation(x, axis, independent, key)


def poisson(lam: Any = 1.0, size: Size | None = None, key: SeedOrKey | None = None,
            dtype: DTypeLike | None = None) -> Any:
    """Poisson samples with rate ``lam`` (integers, default ``ditype()``).

    Draws from ``DEFAULT``; see :meth:`RandomState.poisson` for the parameters.
    """
    return DEFAULT.poisson(lam, size, key, dtype)


def power(a: Any, size: Size | None = None, key: SeedOrKey | None = None,
          dtype: DTypeLike | None = None) -> Any:
    """Samples on ``[0, 1]`` from the power distribution with exponent ``a - 1``.

    Draws from ``DEFAULT``; see :meth:`RandomState.power` for the parameters.
    """
    return DEFAULT.power(a, size, key, dtype)


def rand(*dn: int, key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Uniform samples on ``[0, 1)`` of shape ``dn`` (``rand(3, 2)``: shape ``(3, 2)``).

    Draws from ``DEFAULT``; see :meth:`RandomState.rand` for the parameters.
    """
    return DEFAULT.rand(*dn, key=key, dtype=dtype)


def rand_like(input: Any, dtype: DTypeLike | None = None,
              key: SeedOrKey | None = None) -> Any:
    """Uniform samples on ``[0, 1)`` shaped like ``input`` (its float dtype by default).

    Draws from ``DEFAULT``; see :meth:`RandomState.rand_like` for the parameters.
    """
    return DEFAULT.rand_like(input, dtype, key)


def randint(low: Any, high: Any = None, size: Size | None = None,
            dtype: DTypeLike | None = None, key: SeedOrKey | None = None) -> Any:
    """Integers from ``[low, high)`` (from ``[0, low)`` when ``high`` is None).

    Draws from ``DEFAULT``; see :meth:`RandomState.randint` for the parameters.
    """
    return DEFAULT.randint(low, high, size, dtype, key)


def randint_like(input: Any, low: Any = 0, high: Any = None, dtype: DTypeLike | None = None,
                 key: SeedOrKey | None = None) -> Any:
    """Integers from ``[low, high)`` shaped like ``input`` (``high`` defaults to its max).

    Draws from ``DEFAULT``; see :meth:`RandomState.randint_like` for the parameters.
    """
    return DEFAULT.randint_like(input, low, high, dtype, key)


def randn(*dn: int, key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Standard normal samples of shape ``dn`` (``randn(3, 2)``: shape ``(3, 2)``).

    Draws from ``DEFAULT``; see :meth:`RandomState.randn` for the parameters.
    """
    return DEFAULT.randn(*dn, key=key, dtype=dtype)


def randn_like(input: Any, dtype: DTypeLike | None = None,
               key: SeedOrKey | None = None) -> Any:
    """Standard normal samples shaped like ``input`` (its float dtype by default).

    Draws from ``DEFAULT``; see :meth:`RandomState.randn_like` for the parameters.
    """
    return DEFAULT.randn_like(input, dtype, key)


def random(size: Size | None = None, key: SeedOrKey | None = None,
           dtype: DTypeLike | None = None) -> Any:
    """Uniform samples on ``[0, 1)`` of shape ``size``.

    Draws from ``DEFAULT``; see :meth:`RandomState.random` for the parameters.
    """
    return DEFAULT.random(size, key, dtype)


def random_integers(low: Any, high: Any = None, size: Size | None = None,
                    key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Integers from the closed interval ``[low, high]`` (``[1, low]`` without ``high``).

    Draws from ``DEFAULT``; see :meth:`RandomState.random_integers` for the parameters.
    """
    return DEFAULT.random_integers(low, high, size, key, dtype)


def random_sample(size: Size | None = None, key: SeedOrKey | None = None,
                  dtype: DTypeLike | None = None) -> Any:
    """Uniform samples on ``[0, 1)`` (alias of :meth:`random`).

    Draws from ``DEFAULT``; see :meth:`RandomState.random_sample` for the parameters.
    """
    return DEFAULT.random_sample(size, key, dtype)


def ranf(size: Size | None = None, key: SeedOrKey | None = None,
         dtype: DTypeLike | None = None) -> Any:
    """Uniform samples on ``[0, 1)`` (alias of :meth:`random`).

    Draws from ``DEFAULT``; see :meth:`RandomState.ranf` for the parameters.
    """
    return DEFAULT.ranf(size, key, dtype)


def rayleigh(scale: Any = 1.0, size: Size | None = None, key: SeedOrKey | None = None,
             dtype: DTypeLike | None = None) -> Any:
    """Rayleigh samples with scale ``scale`` (in ``scale``'s unit).

    Draws from ``DEFAULT``; see :meth:`RandomState.rayleigh` for the parameters.
    """
    return DEFAULT.rayleigh(scale, size, key, dtype)


def sample(size: Size | None = None, key: SeedOrKey | None = None,
           dtype: DTypeLike | None = None) -> Any:
    """Uniform samples on ``[0, 1)`` (alias of :meth:`random`).

    Draws from ``DEFAULT``; see :meth:`RandomState.sample` for the parameters.
    """
    return DEFAULT.sample(size, key, dtype)


def shuffle(x: Any, axis: int = 0, key: SeedOrKey | None = None) -> Any:
    """A shuffled copy of ``x`` along ``axis``.

    Draws from ``DEFAULT``; see :meth:`RandomState.shuffle` for the parameters.
    """
    return DEFAULT.shuffle(x, axis, key)


def standard_cauchy(size: Size | None = None, key: SeedOrKey | None = None,
                    dtype: DTypeLike | None = None) -> Any:
    """Standard Cauchy samples of shape ``size``.

    Draws from ``DEFAULT``; see :meth:`RandomState.standard_cauchy` for the parameters.
    """
    return DEFAULT.standard_cauchy(size, key, dtype)


def standard_exponential(size: Size | None = None, key: SeedOrKey | None = None,
                         dtype: DTypeLike | None = None) -> Any:
    """Exponential samples with scale 1 of shape ``size``.

    Draws from ``DEFAULT``; see :meth:`RandomState.standard_exponential` for the parameters.
    """
    return DEFAULT.standard_exponential(size, key, dtype)


def standard_gamma(shape: Any, size: Size | None = None, key: SeedOrKey | None = None,
                   dtype: DTypeLike | None = None) -> Any:
    """Gamma samples with shape ``shape`` and scale 1.

    Draws from ``DEFAULT``; see :meth:`RandomState.standard_gamma` for the parameters.
    """
    return DEFAULT.standard_gamma(shape, size, key, dtype)


def standard_normal(size: Size | None = None, key: SeedOrKey | None = None,
                    dtype: DTypeLike | None = None) -> Any:
    """Standard normal samples of shape ``size``.

    Draws from ``DEFAULT``; see :meth:`RandomState.standard_normal` for the parameters.
    """
    return DEFAULT.standard_normal(size, key, dtype)


def standard_t(df: Any, size: Size | None = None, key: SeedOrKey | None = None,
               dtype: DTypeLike | None = None) -> Any:
    """Student's t samples with ``df`` degrees of freedom.

    Draws from ``DEFAULT``; see :meth:`RandomState.standard_t` for the parameters.
    """
    return DEFAULT.standard_t(df, size, key, dtype)


def t(df: Any, size: Size | None = None, key: SeedOrKey | None = None,
      dtype: DTypeLike | None = None) -> Any:
    """Student's t samples with ``df`` degrees of freedom.

    Draws from ``DEFAULT``; see :meth:`RandomState.t` for the parameters.
    """
    return DEFAULT.t(df, size, key, dtype)


def triangular(size: Size | None = None, key: SeedOrKey | None = None) -> Any:
    """Samples of -1 or +1 with equal probability (upstream's ``triangular``).

    Draws from ``DEFAULT``; see :meth:`RandomState.triangular` for the parameters.
    """
    return DEFAULT.triangular(size, key)


def truncated_normal(lower: Any, upper: Any, size: Size | None = None, loc: Any = 0.0,
                     scale: Any = 1.0, key: SeedOrKey | None = None,
                     dtype: DTypeLike | None = None, check_valid: bool = True) -> Any:
    """Normal samples (mean ``loc``, std ``scale``) truncated to ``[lower, upper]``.

    Draws from ``DEFAULT``; see :meth:`RandomState.truncated_normal` for the parameters.
    """
    return DEFAULT.truncated_normal(lower, upper, size, loc, scale, key, dtype, check_valid)


def uniform(low: Any = 0.0, high: Any = 1.0, size: Size | None = None,
            key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Uniform samples on ``[low, high)``; quantities give samples in ``low``'s unit.

    Draws from ``DEFAULT``; see :meth:`RandomState.uniform` for the parameters.
    """
    return DEFAULT.uniform(low, high, size, key, dtype)


def vonmises(mu: Any, kappa: Any, size: Size | None = None,
             key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Von Mises angles on ``[-pi, pi)`` with mode ``mu`` and concentration ``kappa``.

    Draws from ``DEFAULT``; see :meth:`RandomState.vonmises` for the parameters.
    """
    return DEFAULT.vonmises(mu, kappa, size, key, dtype)


def wald(mean: Any, scale: Any, size: Size | None = None,
         key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Wald (inverse Gaussian) samples with mean ``mean`` and shape parameter ``scale``.

    Draws from ``DEFAULT``; see :meth:`RandomState.wald` for the parameters.
    """
    return DEFAULT.wald(mean, scale, size, key, dtype)


def weibull(a: Any, size: Size | None = None, key: SeedOrKey | None = None,
            dtype: DTypeLike | None = None) -> Any:
    """Weibull samples with shape ``a`` and scale 1 (NumPy's ``weibull``).

    Draws from ``DEFAULT``; see :meth:`RandomState.weibull` for the parameters.
    """
    return DEFAULT.weibull(a, size, key, dtype)


def weibull_min(a: Any, scale: Any = None, size: Size | None = None,
                key: SeedOrKey | None = None, dtype: DTypeLike | None = None) -> Any:
    """Weibull samples with shape ``a`` and scale ``scale`` (in ``scale``'s unit).

    Draws from ``DEFAULT``; see :meth:`RandomState.weibull_min` for the parameters.
    """
    return DEFAULT.weibull_min(a, scale, size, key, dtype)


def zipf(a: Any, size: Size | None = None, key: SeedOrKey | None = None,
         dtype: DTypeLike | None = None) -> Any:
    """Zipf samples (integers >= 1) with exponent ``a > 1``.

    Draws from ``DEFAULT``; see :meth:`RandomState.zipf` for the parameters.
    """
    return DEFAULT.zipf(a, size, key, dtype)

