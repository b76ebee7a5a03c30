"""Random numbers drawn from ``RandomState`` keys: the default stream and numpy-like draws.

A :class:`RandomState` is a ``State`` whose value is a PRNG key. Each draw splits the key once,
writes the new key back through ``.value`` and samples with the other half, so transforms
carry the key like any other state: every ``jit`` call and every loop iteration draws fresh
numbers, ``vmap`` gives each lane its own stream, and a seed reproduces the same numbers eagerly
and compiled. The module-level functions draw from :data:`DEFAULT`, the process-wide state.

Examples
--------
>>> import brainstate.random as br
>>> br.seed(42)
>>> x = br.normal(0.0, 2.0, size=(3,))
>>> with br.seed_context(0):
...     y = br.rand(2)
"""

from brainstate.random._functions import (
    bernoulli,
    beta,
    binomial,
    categorical,
    chisquare,
    choice,
    dirichlet,
    exponential,
    f,
    gamma,
    geometric,
    gumbel,
    hypergeometric,
    laplace,
    loggamma,
    logistic,
    lognormal,
    logseries,
    maxwell,
    multinomial,
    multivariate_normal,
    negative_binomial,
    noncentral_chisquare,
    noncentral_f,
    normal,
    orthogonal,
    pareto,
    permutation,
    poisson,
    power,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    random,
    random_integers,
    random_sample,
    ranf,
    rayleigh,
    sample,
    shuffle,
    standard_cauchy,
    standard_exponential,
    standard_gamma,
    standard_normal,
    standard_t,
    t,
    triangular,
    truncated_normal,
    uniform,
    vonmises,
    wald,
    weibull,
    weibull_min,
    zipf,
)
from brainstate.random._seed import (
    clone_rng,
    default_rng,
    get_key,
    get_key_data,
    restore_key,
    seed,
    seed_context,
    self_assign_multi_keys,
    set_key,
    split_key,
    split_keys,
)
from brainstate.random._state import DEFAULT, RandomState

from brainstate.random import _functions, _seed  # noqa: E402  (their __all__ lists)

__all__ = ["RandomState", "DEFAULT", *_seed.__all__, *_functions.__all__]
