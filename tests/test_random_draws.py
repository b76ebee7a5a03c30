"""The numpy-like draws: shapes, dtypes, supports, moments, parameter checks and units."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate.random as br
from brainstate.random._draws import DRAW_NAMES

N = 40_000  # samples for moment checks: standard errors ~0.5% of a unit-variance mean


@pytest.fixture
def rng():
    return br.RandomState(2024)


def _moments(x):
    x = np.asarray(x, dtype=np.float64)
    return x.mean(), x.var()


def _close(value, expected, rel=0.05, abs_=0.02):
    assert abs(value - expected) <= max(abs_, rel * abs(expected)), (value, expected)


# --- every draw: module function == method on DEFAULT -------------------------------------------


def test_every_draw_has_a_module_function_with_the_methods_signature():
    import inspect

    for name in DRAW_NAMES:
        fn = getattr(br, name)
        method = getattr(br.RandomState, name)
        assert list(inspect.signature(fn).parameters) == \
            list(inspect.signature(method).parameters)[1:], name
        assert fn.__doc__ and fn.__doc__.splitlines()[0].endswith("."), name


def test_module_functions_draw_from_default():
    br.seed(5)
    a = br.normal(1.0, 2.0, size=(3,))
    b = br.DEFAULT.normal(1.0, 2.0, size=(3,))
    br.seed(5)
    np.testing.assert_allclose(br.DEFAULT.normal(1.0, 2.0, size=(3,)), a, rtol=1e-6)
    np.testing.assert_allclose(br.normal(1.0, 2.0, size=(3,)), b, rtol=1e-6)


# --- size semantics -----------------------------------------------------------------------------


@pytest.mark.parametrize("size, shape", [(None, ()), (3, (3,)), ((2, 3), (2, 3)), ([4], (4,)),
                                         (np.int64(2), (2,)), ((), ())])
def test_size_is_the_numpy_output_shape(rng, size, shape):
    assert rng.random(size).shape == shape
    assert rng.normal(size=size).shape == shape
    assert rng.randint(3, size=size).shape == shape


def test_size_none_broadcasts_the_parameters(rng):
    assert rng.normal(jnp.zeros(3), jnp.ones((2, 1))).shape == (2, 3)
    assert rng.uniform(0.0, [1.0, 2.0]).shape == (2,)
    assert rng.randint([1, 5, 7], 10).shape == (3,)
    assert rng.poisson([1.0, 2.0]).shape == (2,)


@pytest.mark.parametrize("size", [-1, (2, -3), 1.5, (2.0,), "3", (True,)])
def test_bad_size_raises(rng, size):
    before = rng.value
    with pytest.raises((TypeError, ValueError), match="size"):
        rng.normal(size=size)
    np.testing.assert_array_equal(rng.value, before)  # a rejected call does not advance


def test_parameters_that_do_not_broadcast_raise(rng):
    with pytest.raises(ValueError, match="normal: the parameter shapes"):
        rng.normal(jnp.zeros(3), jnp.ones(4))


def test_rand_and_randn_take_dimensions(rng):
    assert rng.rand().shape == ()
    assert rng.rand(3, 2).shape == (3, 2)
    assert rng.randn(4).shape == (4,)
    with pytest.raises(TypeError, match="size"):
        rng.rand((3, 2))


# --- distributions: shape, dtype, support, moments ------------------------------------------------


CONTINUOUS = [
    # name, call, mean, var
    ("rand", lambda r: r.rand(N), 0.5, 1 / 12),
    ("random", lambda r: r.random(N), 0.5, 1 / 12),
    ("random_sample", lambda r: r.random_sample(N), 0.5, 1 / 12),
    ("ranf", lambda r: r.ranf(N), 0.5, 1 / 12),
    ("sample", lambda r: r.sample(N), 0.5, 1 / 12),
    ("uniform", lambda r: r.uniform(2.0, 4.0, N), 3.0, 4 / 12),
    ("randn", lambda r: r.randn(N), 0.0, 1.0),
    ("normal", lambda r: r.normal(1.0, 2.0, N), 1.0, 4.0),
    ("standard_normal", lambda r: r.standard_normal(N), 0.0, 1.0),
    ("gumbel", lambda r: r.gumbel(1.0, 2.0, N), 1.0 + 2.0 * 0.5772157, (math.pi * 2.0) ** 2 / 6),
    ("laplace", lambda r: r.laplace(1.0, 2.0, N), 1.0, 8.0),
    ("logistic", lambda r: r.logistic(1.0, 2.0, N), 1.0, (math.pi * 2.0) ** 2 / 3),
    ("lognormal", lambda r: r.lognormal(0.0, 0.5, N), math.exp(0.125),
     (math.exp(0.25) - 1) * math.exp(0.25)),
    ("truncated_normal", lambda r: r.truncated_normal(-1.0, 1.0, N), 0.0, 0.2911),
    ("exponential", lambda r: r.exponential(2.0, N), 2.0, 4.0),
    ("standard_exponential", lambda r: r.standard_exponential(N), 1.0, 1.0),
    ("gamma", lambda r: r.gamma(2.0, 3.0, N), 6.0, 18.0),
    ("standard_gamma", lambda r: r.standard_gamma(3.0, N), 3.0, 3.0),
    ("rayleigh", lambda r: r.rayleigh(2.0, N), 2.0 * math.sqrt(math.pi / 2),
     (4 - math.pi) / 2 * 4.0),
    ("weibull", lambda r: r.weibull(2.0, N), math.gamma(1.5), math.gamma(2) - math.gamma(1.5) ** 2),
    ("weibull_min", lambda r: r.weibull_min(2.0, 3.0, N), 3.0 * math.gamma(1.5),
     9.0 * (1 - math.gamma(1.5) ** 2)),
    ("maxwell", lambda r: r.maxwell(N), 2 * math.sqrt(2 / math.pi), (3 * math.pi - 8) / math.pi),
    ("pareto", lambda r: r.pareto(5.0, N), 5.0 / 4.0, 5.0 / (16 * 3)),
    ("power", lambda r: r.power(3.0, N), 0.75, 3.0 / (16 * 5)),
    ("beta", lambda r: r.beta(2.0, 3.0, N), 0.4, 6.0 / (25 * 6)),
    ("chisquare", lambda r: r.chisquare(3.0, N), 3.0, 6.0),
    ("t", lambda r: r.t(5.0, N), 0.0, 5.0 / 3.0),
    ("standard_t", lambda r: r.standard_t(5.0, N), 0.0, 5.0 / 3.0),
    ("f", lambda r: r.f(5.0, 10.0, N), 10.0 / 8.0, 2 * 100 * 13 / (5 * 64 * 6)),
    ("noncentral_chisquare", lambda r: r.noncentral_chisquare(3.0, 2.0, N), 5.0, 14.0),
    ("noncentral_chisquare df<1", lambda r: r.noncentral_chisquare(0.5, 2.0, N), 2.5, 9.0),
    ("noncentral_f", lambda r: r.noncentral_f(3.0, 10.0, 2.0, N), 10 * 5 / (3 * 8), None),
    ("wald", lambda r: r.wald(2.0, 3.0, N), 2.0, 8.0 / 3.0),
    ("loggamma", lambda r: jnp.exp(r.loggamma(2.0, N)), 2.0, 2.0),
]


@pytest.mark.parametrize("name, call, mean, var", CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_draws(rng, name, call, mean, var):
    x = call(rng)
    assert x.shape == (N,) and x.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(x)))
    m, v = _moments(x)
    _close(m, mean)
    if var is not None:
        _close(v, var, rel=0.1)


DISCRETE = [
    ("randint", lambda r: r.randint(2, 8, N), 4.5, 35 / 12, 2, 7),
    ("random_integers", lambda r: r.random_integers(1, 6, N), 3.5, 35 / 12, 1, 6),
    ("poisson", lambda r: r.poisson(3.0, N), 3.0, 3.0, 0, None),
    ("binomial", lambda r: r.binomial(10, 0.3, N), 3.0, 2.1, 0, 10),
    ("negative_binomial", lambda r: r.negative_binomial(3.0, 0.4, N), 4.5, 11.25, 0, None),
    ("geometric", lambda r: r.geometric(0.25, N), 4.0, 12.0, 1, None),
    ("hypergeometric", lambda r: r.hypergeometric(7, 13, 9, N), 3.15, 3.15 * 13 / 20 * 11 / 19,
     0, 7),
    ("logseries", lambda r: r.logseries(0.6, N), -0.6 / (0.4 * math.log(0.4)), None, 1, None),
    ("zipf", lambda r: r.zipf(3.0, N), 1.6449341 / 1.2020569, None, 1, None),  # zeta(2)/zeta(3)
    ("triangular", lambda r: r.triangular(N), 0.0, 1.0, -1, 1),
]


@pytest.mark.parametrize("name, call, mean, var, lo, hi", DISCRETE, ids=[c[0] for c in DISCRETE])
def test_discrete_draws(rng, name, call, mean, var, lo, hi):
    x = call(rng)
    assert x.shape == (N,) and x.dtype == jnp.int32
    assert int(x.min()) >= lo
    if hi is not None:
        assert int(x.max()) <= hi
    m, v = _moments(x)
    _close(m, mean)
    if var is not None:
        _close(v, var, rel=0.1)


def test_bernoulli(rng):
    x = rng.bernoulli(0.3, N)
    assert x.dtype == jnp.bool_ and x.shape == (N,)
    _close(float(x.mean()), 0.3)
    assert rng.bernoulli(jnp.array([0.0, 1.0])).tolist() == [False, True]


def test_vonmises_concentrates_around_mu(rng):
    x = np.asarray(rng.vonmises(1.0, 4.0, N), dtype=np.float64)
    assert np.all((x >= -math.pi) & (x < math.pi))
    z = np.exp(1j * x).mean()
    _close(float(np.angle(z)), 1.0)
    _close(abs(z), 0.8635226, abs_=0.01)  # I1(4) / I0(4)
    flat = np.asarray(rng.vonmises(0.0, 0.0, N), dtype=np.float64)
    assert abs(np.exp(1j * flat).mean()) < 0.03  # kappa 0: uniform on the circle


def test_multinomial_counts(rng):
    x = rng.multinomial(10, [0.2, 0.3, 0.5], size=N)
    assert x.shape == (N, 3) and x.dtype == jnp.int32
    assert bool(jnp.all(x.sum(-1) == 10))
    np.testing.assert_allclose(np.asarray(x, float).mean(0), [2.0, 3.0, 5.0], atol=0.05)
    assert rng.multinomial(100, (0.5, 0.2, 0.3)).shape == (3,)
    assert rng.multinomial(100, (0.5, 0.2, 0.3), size=[4, 2]).shape == (4, 2, 3)


def test_dirichlet_rows_sum_to_one(rng):
    x = rng.dirichlet([1.0, 2.0, 3.0], size=N)
    assert x.shape == (N, 3)
    np.testing.assert_allclose(np.asarray(x.sum(-1)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(x, float).mean(0), [1 / 6, 2 / 6, 3 / 6], atol=0.01)


def test_multivariate_normal(rng):
    cov = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    x = rng.multivariate_normal(jnp.array([1.0, -1.0]), cov, size=N)
    assert x.shape == (N, 2)
    np.testing.assert_allclose(np.asarray(x, float).mean(0), [1.0, -1.0], atol=0.05)
    np.testing.assert_allclose(np.cov(np.asarray(x, float).T), np.asarray(cov), atol=0.06)
    assert rng.multivariate_normal(jnp.zeros(2), jnp.eye(2), method="svd").shape == (2,)


def test_orthogonal_matrices(rng):
    q = rng.orthogonal(3, size=2)
    assert q.shape == (2, 3, 3)
    np.testing.assert_allclose(np.asarray(q @ jnp.swapaxes(q, -1, -2)),
                               np.broadcast_to(np.eye(3), (2, 3, 3)), atol=1e-5)


def test_categorical(rng):
    logits = jnp.log(jnp.array([0.1, 0.2, 0.7]))
    x = rng.categorical(logits, size=N)
    assert x.shape == (N,)
    np.testing.assert_allclose(np.bincount(np.asarray(x), minlength=3) / N, [0.1, 0.2, 0.7],
                               atol=0.01)
    assert rng.categorical(jnp.zeros((2, 5))).shape == (2,)
    assert rng.categorical(jnp.zeros((2, 5)), axis=0).shape == (5,)


def test_choice(rng):
    x = rng.choice(5, size=N)
    assert set(np.asarray(x).tolist()) == {0, 1, 2, 3, 4}
    unique = rng.choice(10, size=10, replace=False)
    assert sorted(np.asarray(unique).tolist()) == list(range(10))
    weighted = rng.choice(jnp.array([10.0, 20.0]), size=N, p=[0.25, 0.75])
    _close(float(weighted.mean()), 17.5)
    letters = rng.choice(["a", "b", "c"], size=6)
    assert letters.shape == (6,) and set(letters.tolist()) <= {"a", "b", "c"}
    assert rng.choice(jnp.arange(4)).shape == ()


def test_choice_errors(rng):
    with pytest.raises(ValueError, match="p must be a 1-D vector of 3"):
        rng.choice(3, p=[0.5, 0.5])
    with pytest.raises(ValueError, match="summing to 1"):
        rng.choice(3, p=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="without replacement"):
        rng.choice(3, size=4, replace=False)
    with pytest.raises(ValueError, match="non-negative"):
        rng.choice(-1)


def test_permutation_and_shuffle(rng):
    p = rng.permutation(10)
    assert sorted(np.asarray(p).tolist()) == list(range(10))
    x = jnp.arange(12).reshape(4, 3)
    y = rng.permutation(x)
    assert sorted(np.asarray(y[:, 0]).tolist()) == [0, 3, 6, 9]
    cols = rng.permutation(x, axis=1)
    assert sorted(np.asarray(cols[0]).tolist()) == [0, 1, 2]
    s = rng.shuffle(jnp.arange(6))
    assert sorted(np.asarray(s).tolist()) == list(range(6))


def test_like_draws(rng):
    ref = jnp.zeros((2, 3), jnp.float16)
    assert rng.rand_like(ref).shape == (2, 3) and rng.rand_like(ref).dtype == jnp.float16
    assert rng.randn_like(ref, dtype=jnp.float32).dtype == jnp.float32
    assert rng.rand_like(jnp.zeros(2, jnp.int32)).dtype == jnp.float32
    ints = rng.randint_like(jnp.array([3, 7, 5]))
    assert ints.shape == (3,) and ints.dtype == jnp.int32
    assert int(ints.max()) < 7 and int(ints.min()) >= 0


def test_explicit_dtypes(rng):
    assert rng.normal(size=2, dtype=jnp.float16).dtype == jnp.float16
    assert rng.uniform(size=2, dtype=np.dtype("float16")).dtype == jnp.float16
    assert rng.randint(4, size=2, dtype=jnp.int8).dtype == jnp.int8
    assert rng.poisson(2.0, 3, dtype=jnp.int16).dtype == jnp.int16


def test_normal_with_plain_array_parameters(rng):
    loc = np.array([0.0, 100.0])  # float64 numpy data under strict promotion
    x = rng.normal(loc, np.float64(0.1))
    assert x.dtype == jnp.float32
    assert abs(float(x[1]) - 100.0) < 1.0


# --- parameter checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda r: r.bernoulli(1.5), r"bernoulli: p must lie in \[0, 1\]"),
    (lambda r: r.bernoulli(jnp.array([0.5, -0.1])), r"bernoulli: p must lie in \[0, 1\]"),
    (lambda r: r.binomial(5, 2.0), r"binomial: p must lie in \[0, 1\]"),
    (lambda r: r.binomial(-1, 0.5), "binomial: n must be non-negative"),
    (lambda r: r.multinomial(3, [0.8, 0.8, 0.1]), r"sum\(pvals\[:-1\]\) must not exceed 1"),
    (lambda r: r.multinomial(3, 0.5), "pvals must have at least one axis"),
    (lambda r: r.poisson(-1.0), "lam must be non-negative"),
    (lambda r: r.geometric(0.0), r"p must lie in \(0, 1\]"),
    (lambda r: r.negative_binomial(2.0, 1.5), r"p must lie in \(0, 1\]"),
    (lambda r: r.logseries(1.0), r"p must lie in \[0, 1\)"),
    (lambda r: r.zipf(1.0), "a must be greater than 1"),
    (lambda r: r.power(0.0), "a must be positive"),
    (lambda r: r.vonmises(0.0, -1.0), "kappa must be non-negative"),
    (lambda r: r.wald(-1.0, 1.0), "mean and scale must be positive"),
    (lambda r: r.hypergeometric(-1, 3, 1), "ngood and nbad must be non-negative"),
    (lambda r: r.hypergeometric(2, 3, 6), r"nsample must lie in \[0, ngood \+ nbad\]"),
    (lambda r: r.truncated_normal(1.0, -1.0), "lower must not exceed upper"),
    (lambda r: r.truncated_normal(-1.0, 1.0, scale=0.0), "scale must be positive"),
    (lambda r: r.multivariate_normal(jnp.zeros(2), jnp.eye(3)), r"cov of shape \(\.\.\., n, n\)"),
    (lambda r: r.multivariate_normal(jnp.zeros(2), jnp.eye(2), method="qr"),
     "method must be 'svd', 'eigh' or 'cholesky'"),
    (lambda r: r.dirichlet(1.0), "alpha must have at least one axis"),
    (lambda r: r.orthogonal(0), "n must be a positive int"),
    (lambda r: r.categorical(1.0), "logits must have at least one axis"),
])
def test_bad_parameters_raise_before_the_key_advances(rng, call, match):
    before = rng.value
    with pytest.raises(ValueError, match=match):
        call(rng)
    np.testing.assert_array_equal(rng.value, before)


def test_check_valid_false_skips_the_probability_check(rng):
    assert rng.bernoulli(1.5, check_valid=False).shape == ()
    assert rng.binomial(3, 1.5, check_valid=False).shape == ()


def test_traced_probability_check_raises_at_run_time():
    from brainstate.transform import jit

    rng = br.RandomState(0)
    draw = jit(lambda p: rng.bernoulli(p, size=3))
    assert draw(jnp.float32(0.5)).shape == (3,)
    with pytest.raises(Exception, match=r"bernoulli: p must lie in \[0, 1\]"):
        jax.block_until_ready(draw(jnp.float32(1.5)))


# --- quantities -----------------------------------------------------------------------------------


def test_quantities_in_location_scale_draws(rng):
    u = pytest.importorskip("brainunit")
    x = rng.normal(0.0 * u.mV, 2.0 * u.mV, size=N)
    assert isinstance(x, u.Quantity) and x.unit == u.mV
    _close(float(x.mantissa.std()), 2.0)
    y = rng.normal(1.0 * u.volt, 10.0 * u.mV, size=3)  # scale converted to loc's unit
    assert y.unit == u.volt and bool(jnp.all(jnp.abs(y.mantissa - 1.0) < 0.1))
    z = rng.normal(scale=2.0 * u.mV, size=2)
    assert z.unit == u.mV
    assert rng.laplace(1.0 * u.second, size=2).unit == u.second
    with pytest.raises(ValueError, match="cannot be converted"):
        rng.normal(1.0 * u.mV, 1.0 * u.second)


def test_quantities_in_uniform_choice_permutation(rng):
    u = pytest.importorskip("brainunit")
    x = rng.uniform(1.0 * u.mV, 3.0 * u.mV, size=N)
    assert x.unit == u.mV
    assert float(x.mantissa.min()) >= 1.0 and float(x.mantissa.max()) < 3.0
    mixed = rng.uniform(0.0 * u.volt, 500.0 * u.mV, size=N)
    assert mixed.unit == u.volt and float(mixed.mantissa.max()) < 0.5
    c = rng.choice(jnp.arange(3.0) * u.ms, size=4)
    assert c.unit == u.ms
    p = rng.permutation(jnp.arange(4.0) * u.ms)
    assert p.unit == u.ms and sorted(np.asarray(p.mantissa).tolist()) == [0.0, 1.0, 2.0, 3.0]


def test_quantities_in_scale_draws_and_truncated_normal(rng):
    u = pytest.importorskip("brainunit")
    e = rng.exponential(2.0 * u.ms, size=N)
    assert e.unit == u.ms
    _close(float(e.mantissa.mean()), 2.0)
    assert rng.gamma(2.0, 1.0 * u.ms, size=2).unit == u.ms
    assert rng.rayleigh(1.0 * u.mV, size=2).unit == u.mV
    t = rng.truncated_normal(-1.0 * u.mV, 1.0 * u.mV, size=N, loc=0.0 * u.mV, scale=1.0 * u.mV)
    assert t.unit == u.mV and float(jnp.abs(t.mantissa).max()) <= 1.0
    mv = rng.multivariate_normal(jnp.zeros(2) * u.mV, jnp.eye(2) * u.mV ** 2, size=3)
    assert mv.unit == u.mV and mv.shape == (3, 2)


def test_dimensional_quantity_where_a_number_is_needed_raises(rng):
    u = pytest.importorskip("brainunit")
    with pytest.raises(ValueError, match="Parameter 'high' must be dimensionless"):
        rng.randint(0, 5 * u.ms)
    with pytest.raises(ValueError, match="Parameter 'p' must be dimensionless"):
        rng.bernoulli(0.5 * u.ms)
    with pytest.raises(ValueError, match="Parameter 'mean' must be dimensionless"):
        rng.lognormal(1.0 * u.mV)
    with pytest.raises(ValueError, match="cannot be converted"):
        rng.multivariate_normal(jnp.zeros(2) * u.mV, jnp.eye(2) * u.mV)
    assert rng.poisson(u.Quantity(2.0), size=2).shape == (2,)  # dimensionless is fine
