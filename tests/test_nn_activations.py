"""Functional activations of ``brainstate.nn``: values, gradients, dtypes, units and errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import brainstate
from brainstate import nn

# Points away from every kink (0, +-0.5, +-1, +-3, 6) so finite differences are meaningful.
X = np.array([-4.2, -2.7, -1.3, -0.8, -0.3, 0.2, 0.7, 1.6, 2.4, 4.1, 7.3], dtype=np.float64)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.log1p(np.exp(x))


def _erf(x):
    return np.vectorize(math.erf)(x)


# name -> (function, numpy reference in float64)
REFERENCES = {
    "tanh": (nn.tanh, np.tanh),
    "relu": (nn.relu, lambda x: np.maximum(x, 0.0)),
    "squareplus": (nn.squareplus, lambda x: (x + np.sqrt(x * x + 4.0)) / 2),
    "squareplus_b1": (lambda x: nn.squareplus(x, b=1.0), lambda x: (x + np.sqrt(x * x + 1)) / 2),
    "softplus": (nn.softplus, _softplus),
    "soft_sign": (nn.soft_sign, lambda x: x / (np.abs(x) + 1)),
    "sigmoid": (nn.sigmoid, _sigmoid),
    "silu": (nn.silu, lambda x: x * _sigmoid(x)),
    "swish": (nn.swish, lambda x: x * _sigmoid(x)),
    "log_sigmoid": (nn.log_sigmoid, lambda x: -np.log1p(np.exp(-x))),
    "elu": (nn.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    "elu_a2": (lambda x: nn.elu(x, alpha=2.0), lambda x: np.where(x > 0, x, 2 * np.expm1(x))),
    "leaky_relu": (nn.leaky_relu, lambda x: np.where(x >= 0, x, 0.01 * x)),
    "leaky_relu_03": (lambda x: nn.leaky_relu(x, 0.3), lambda x: np.where(x >= 0, x, 0.3 * x)),
    "hard_tanh": (nn.hard_tanh, lambda x: np.clip(x, -1, 1)),
    "hard_tanh_02": (lambda x: nn.hard_tanh(x, 0.0, 2.0), lambda x: np.clip(x, 0, 2)),
    "celu": (nn.celu, lambda x: np.where(x > 0, x, np.expm1(x))),
    "celu_a2": (lambda x: nn.celu(x, 2.0), lambda x: np.where(x > 0, x, 2 * np.expm1(x / 2))),
    "selu": (nn.selu, lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))),
    "gelu_exact": (lambda x: nn.gelu(x, approximate=False),
                   lambda x: x / 2 * (1 + _erf(x / np.sqrt(2)))),
    "gelu_tanh": (nn.gelu, lambda x: x / 2 * (1 + np.tanh(np.sqrt(2 / np.pi)
                                                          * (x + 0.044715 * x ** 3)))),
    "relu6": (nn.relu6, lambda x: np.clip(x, 0, 6)),
    "hard_sigmoid": (nn.hard_sigmoid, lambda x: np.clip(x + 3, 0, 6) / 6),
    "hard_silu": (nn.hard_silu, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "hard_swish": (nn.hard_swish, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "hard_shrink": (nn.hard_shrink, lambda x: np.where(np.abs(x) > 0.5, x, 0.0)),
    "hard_shrink_1": (lambda x: nn.hard_shrink(x, 1.0), lambda x: np.where(np.abs(x) > 1, x, 0.0)),
    "soft_shrink": (nn.soft_shrink,
                    lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0))),
    "soft_shrink_1": (lambda x: nn.soft_shrink(x, 1.0),
                      lambda x: np.where(x > 1, x - 1, np.where(x < -1, x + 1, 0.0))),
    "mish": (nn.mish, lambda x: x * np.tanh(_softplus(x))),
    "prelu": (nn.prelu, lambda x: np.where(x >= 0, x, 0.25 * x)),
    "prelu_a": (lambda x: nn.prelu(x, 0.7), lambda x: np.where(x >= 0, x, 0.7 * x)),
    "tanh_shrink": (nn.tanh_shrink, lambda x: x - np.tanh(x)),
    "sparse_plus": (nn.sparse_plus,
                    lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4))),
    "sparse_sigmoid": (nn.sparse_sigmoid, lambda x: np.clip((x + 1) / 2, 0, 1)),
}

# Functions that keep a quantity's unit (the rest need dimensionless input).
KEEP_UNIT = {"relu", "leaky_relu", "prelu", "hard_tanh", "hard_shrink", "soft_shrink", "rrelu"}
UNITLESS = ["tanh", "squareplus", "softplus", "soft_sign", "sigmoid", "silu", "log_sigmoid",
            "elu", "celu", "selu", "gelu", "relu6", "hard_sigmoid", "hard_silu", "mish",
            "tanh_shrink", "sparse_plus", "sparse_sigmoid", "softmax", "log_softmax", "softmin",
            "logsumexp", "glu"]

UPSTREAM_ALL = [
    "tanh", "relu", "squareplus", "softplus", "soft_sign", "sigmoid", "silu", "swish",
    "log_sigmoid", "elu", "leaky_relu", "hard_tanh", "celu", "selu", "gelu", "glu", "logsumexp",
    "log_softmax", "softmax", "standardize", "one_hot", "relu6", "hard_sigmoid", "hard_silu",
    "hard_swish", "hard_shrink", "rrelu", "mish", "soft_shrink", "prelu", "tanh_shrink",
    "softmin", "sparse_plus", "sparse_sigmoid",
]


def test_every_upstream_name_is_exported():
    from brainstate.nn import _activations

    assert sorted(_activations.__all__) == sorted(UPSTREAM_ALL)
    for name in UPSTREAM_ALL:
        assert callable(getattr(brainstate.nn, name)), name
    assert nn.swish is nn.silu
    assert nn.hard_swish is nn.hard_silu


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_values_match_reference(name):
    fn, ref = REFERENCES[name]
    out = fn(jnp.asarray(X, dtype=jnp.float32))
    assert out.shape == X.shape and out.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out), ref(X), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_on_a_batch_and_a_scalar(name):
    fn, ref = REFERENCES[name]
    batch = np.stack([X, -X, X / 3])
    np.testing.assert_allclose(np.asarray(fn(jnp.asarray(batch, jnp.float32))), ref(batch),
                               rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(float(fn(0.7)), float(ref(np.array(0.7))), rtol=2e-5)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_python_lists_are_accepted(name):
    fn, ref = REFERENCES[name]
    values = [-1.5, 0.25, 2.0]
    np.testing.assert_allclose(np.asarray(fn(values)), ref(np.array(values)), rtol=2e-5,
                               atol=2e-6)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gradients_match_finite_differences(name):
    fn, _ = REFERENCES[name]
    with jax.enable_x64(True):
        check_grads(lambda x: fn(x), (jnp.asarray(X, jnp.float64),), order=1, modes=["rev"],
                    atol=1e-5, rtol=1e-5)


def test_gradients_at_kinks_follow_convention():
    g = jax.grad(lambda x: nn.relu(x).sum())(jnp.array([0.0, 1.0, -1.0]))
    np.testing.assert_array_equal(np.asarray(g), [0.0, 1.0, 0.0])
    g6 = jax.grad(lambda x: nn.relu6(x).sum())(jnp.array([0.0, 6.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(g6), [0.0, 0.0, 1.0])
    # hard_tanh: gradient 1 on the closed linear region, 0 outside it
    gt = jax.grad(lambda x: nn.hard_tanh(x).sum())(jnp.array([-1.0, 1.0, 1.5, -2.0]))
    np.testing.assert_array_equal(np.asarray(gt), [1.0, 1.0, 0.0, 0.0])


def test_prelu_gradient_wrt_slope():
    x = jnp.array([-2.0, -1.0, 3.0])
    g = jax.grad(lambda a: nn.prelu(x, a).sum())(jnp.float32(0.25))
    np.testing.assert_allclose(float(g), -3.0)


def test_sparse_sigmoid_is_derivative_of_sparse_plus():
    x = jnp.asarray(X, jnp.float32)
    g = jax.vmap(jax.grad(nn.sparse_plus))(x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(nn.sparse_sigmoid(x)), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_float16_stays_float16(name):
    fn, _ = REFERENCES[name]
    assert fn(jnp.asarray(X, jnp.float16)).dtype == jnp.float16


@pytest.mark.parametrize("name", sorted(set(REFERENCES) - {"relu"}))
def test_integer_input_gives_default_float(name):
    fn, ref = REFERENCES[name]
    xi = np.array([-3, -1, 0, 2, 5])
    out = fn(jnp.asarray(xi, jnp.int32))
    assert out.dtype == brainstate.environ.dftype()
    np.testing.assert_allclose(np.asarray(out), ref(xi.astype(np.float64)), rtol=2e-5, atol=2e-6)


def test_relu_keeps_integers():
    out = nn.relu(jnp.array([-2, 3], jnp.int32))
    assert out.dtype == jnp.int32
    assert out.tolist() == [0, 3]


def test_parameter_arrays_follow_input_dtype():
    x = jnp.asarray(X, jnp.float16)
    assert nn.elu(x, jnp.float32(2.0)).dtype == jnp.float16
    assert nn.leaky_relu(x, jnp.asarray(0.2, jnp.float32)).dtype == jnp.float16
    assert nn.prelu(x, jnp.ones(1, jnp.float32)).dtype == jnp.float16


# --- hyper-parameter checks ----------------------------------------------------------------


def test_hard_tanh_rejects_swapped_bounds():
    with pytest.raises(ValueError, match=r"hard_tanh: min_val \(1.0\) must not exceed max_val"):
        nn.hard_tanh(jnp.ones(3), 1.0, -1.0)


@pytest.mark.parametrize("fn", [nn.hard_shrink, nn.soft_shrink])
def test_shrink_rejects_negative_lambda(fn):
    with pytest.raises(ValueError, match=r"lambd must be non-negative, got -0.5"):
        fn(jnp.ones(3), -0.5)


def test_shrink_with_zero_lambda_is_identity():
    x = jnp.asarray(X, jnp.float32)
    np.testing.assert_array_equal(np.asarray(nn.soft_shrink(x, 0.0)), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(nn.hard_shrink(x, 0.0)), np.asarray(x))


# --- rrelu ---------------------------------------------------------------------------------


def test_rrelu_slopes_lie_in_bounds_and_positives_pass():
    x = -jnp.ones(2000)
    y = nn.rrelu(x, 0.2, 0.4, key=3)
    assert float(y.min()) >= -0.4 and float(y.max()) <= -0.2
    assert 0.28 < -float(y.mean()) < 0.32  # mean slope 0.3
    pos = jnp.asarray([0.0, 1.5, 3.0])
    np.testing.assert_array_equal(np.asarray(nn.rrelu(pos, key=0)), np.asarray(pos))


def test_rrelu_key_is_honoured():
    x = -jnp.ones(50)
    a, b, c = nn.rrelu(x, key=7), nn.rrelu(x, key=7), nn.rrelu(x, key=8)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    k = jax.random.PRNGKey(5)
    np.testing.assert_array_equal(np.asarray(nn.rrelu(x, key=k)), np.asarray(nn.rrelu(x, key=k)))


def test_rrelu_draws_from_the_default_state():
    x = -jnp.ones(50)
    brainstate.random.seed(11)
    a, b = nn.rrelu(x), nn.rrelu(x)
    assert not np.array_equal(np.asarray(a), np.asarray(b))  # the state advances
    brainstate.random.seed(11)
    np.testing.assert_array_equal(np.asarray(nn.rrelu(x)), np.asarray(a))


def test_rrelu_under_jit():
    brainstate.random.seed(0)
    f = brainstate.transform.jit(lambda x: nn.rrelu(x, 0.1, 0.2))
    y1, y2 = f(-jnp.ones(100)), f(-jnp.ones(100))
    assert float(y1.min()) >= -0.2 and float(y1.max()) <= -0.1
    assert not np.array_equal(np.asarray(y1), np.asarray(y2))


def test_rrelu_equal_bounds_is_leaky_relu():
    x = jnp.asarray(X, jnp.float32)
    np.testing.assert_allclose(np.asarray(nn.rrelu(x, 0.3, 0.3, key=0)),
                               np.asarray(nn.leaky_relu(x, 0.3)), rtol=1e-6)


def test_rrelu_rejects_swapped_bounds():
    with pytest.raises(ValueError, match=r"rrelu: lower \(0.5\) must not exceed upper \(0.1\)"):
        nn.rrelu(jnp.ones(2), 0.5, 0.1)


# --- axis functions ------------------------------------------------------------------------


def test_softmax_family():
    x = jnp.asarray(np.random.RandomState(0).randn(3, 4, 5), jnp.float32)
    s = nn.softmax(x)
    np.testing.assert_allclose(np.asarray(s.sum(-1)), 1.0, rtol=1e-6)
    ref = np.exp(np.asarray(x, np.float64))
    np.testing.assert_allclose(np.asarray(s), ref / ref.sum(-1, keepdims=True), rtol=1e-5)
    s1 = nn.softmax(x, axis=1)
    np.testing.assert_allclose(np.asarray(s1.sum(1)), 1.0, rtol=1e-6)
    s01 = nn.softmax(x, axis=(0, 2))
    np.testing.assert_allclose(np.asarray(s01.sum((0, 2))), 1.0, rtol=1e-5)
    sall = nn.softmax(x, axis=None)
    np.testing.assert_allclose(float(sall.sum()), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(nn.log_softmax(x, axis=1)), np.log(np.asarray(s1)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(nn.softmin(x, axis=0)),
                               np.asarray(nn.softmax(-x, axis=0)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(nn.softmax(x, axis=-2)), np.asarray(s1), rtol=1e-6)


def test_softmax_where_masks_elements():
    x = jnp.array([1.0, 2.0, 3.0])
    where = jnp.array([True, False, True])
    s = nn.softmax(x, where=where)
    assert float(s[1]) == 0.0
    np.testing.assert_allclose(float(s[0] + s[2]), 1.0, rtol=1e-6)
    ls = nn.log_softmax(x, where=where)
    np.testing.assert_allclose(float(ls[2]), float(jnp.log(s[2])), rtol=1e-6)


def test_softmax_gradient_is_finite_and_sums_to_zero():
    x = jnp.array([0.3, -1.2, 2.0])
    g = jax.grad(lambda x: nn.softmax(x)[0])(x)
    np.testing.assert_allclose(float(g.sum()), 0.0, atol=1e-6)
    with jax.enable_x64(True):
        check_grads(lambda x: nn.log_softmax(x), (jnp.asarray(X),), order=1, modes=["rev"])
        check_grads(lambda x: nn.softmin(x), (jnp.asarray(X),), order=1, modes=["rev"])


def test_logsumexp():
    a = jnp.asarray(np.random.RandomState(1).randn(4, 3), jnp.float32)
    ref = np.log(np.exp(np.asarray(a, np.float64)).sum(1))
    np.testing.assert_allclose(np.asarray(nn.logsumexp(a, axis=1)), ref, rtol=1e-5)
    assert nn.logsumexp(a, axis=1, keepdims=True).shape == (4, 1)
    np.testing.assert_allclose(float(nn.logsumexp(a)),
                               np.log(np.exp(np.asarray(a, np.float64)).sum()), rtol=1e-5)
    val, sign = nn.logsumexp(jnp.array([0.0, 0.0]), b=jnp.array([1.0, -2.0]), return_sign=True)
    np.testing.assert_allclose(float(val), 0.0, atol=1e-6)
    assert float(sign) == -1.0


def test_standardize():
    x = jnp.asarray(np.random.RandomState(2).randn(5, 40) * 3 + 7, jnp.float32)
    y = nn.standardize(x)
    np.testing.assert_allclose(np.asarray(y.mean(-1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(y.var(-1)), 1.0, rtol=1e-3)
    y0 = nn.standardize(x, axis=0)
    np.testing.assert_allclose(np.asarray(y0.mean(0)), 0.0, atol=1e-5)
    var = jnp.full((5, 1), 4.0)
    yv = nn.standardize(x, variance=var, epsilon=0.0)
    np.testing.assert_allclose(np.asarray(yv), np.asarray((x - x.mean(-1, keepdims=True)) / 2),
                               rtol=1e-5, atol=1e-5)


def test_glu():
    x = jnp.asarray(np.random.RandomState(3).randn(3, 6), jnp.float32)
    y = nn.glu(x)
    assert y.shape == (3, 3)
    np.testing.assert_allclose(np.asarray(y), np.asarray(x[:, :3] * jax.nn.sigmoid(x[:, 3:])),
                               rtol=1e-6)
    y0 = nn.glu(x[:2], axis=0)
    np.testing.assert_allclose(np.asarray(y0), np.asarray(x[0:1] * jax.nn.sigmoid(x[1:2])),
                               rtol=1e-6)


def test_glu_rejects_odd_size():
    with pytest.raises(ValueError, match=r"glu: the size along axis -1 must be even.*\(2, 3\)"):
        nn.glu(jnp.ones((2, 3)))


@pytest.mark.parametrize("fn", [nn.softmax, nn.log_softmax, nn.softmin, nn.standardize,
                                nn.glu, nn.logsumexp])
def test_out_of_range_axis_is_reported(fn):
    name = fn.__name__
    with pytest.raises(ValueError, match=rf"{name}: axis 2 is out of range for an input of "
                                         rf"shape \(4,\) \(1 dimensions\)"):
        fn(jnp.ones(4), axis=2)
    with pytest.raises(ValueError, match=rf"{name}: axis -3 is out of range"):
        fn(jnp.ones((2, 4)), axis=-3)


@pytest.mark.parametrize("fn", [nn.softmax, nn.log_softmax, nn.softmin, nn.standardize])
def test_bad_axis_type_and_repeats(fn):
    name = fn.__name__
    with pytest.raises(TypeError, match=rf"{name}: axis must be an int or a tuple of ints"):
        fn(jnp.ones((2, 4)), axis=1.0)
    with pytest.raises(TypeError, match=rf"{name}: axis must be an int"):
        fn(jnp.ones((2, 4)), axis=True)
    with pytest.raises(ValueError, match=rf"{name}: axis \(1, -1\) names the same dimension"):
        fn(jnp.ones((2, 4)), axis=(1, -1))


# --- one_hot -------------------------------------------------------------------------------


def test_one_hot_basic():
    y = nn.one_hot(jnp.array([0, 2, 1]), 3)
    np.testing.assert_array_equal(np.asarray(y), np.eye(3)[[0, 2, 1]])
    assert y.dtype == brainstate.environ.dftype()


def test_one_hot_out_of_range_indices_are_zero_rows():
    y = nn.one_hot(jnp.array([-1, 3, 100, 1]), 3)
    np.testing.assert_array_equal(np.asarray(y), [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 1, 0]])


def test_one_hot_axis_dtype_and_shapes():
    idx = jnp.array([[0, 1], [2, 0]])
    assert nn.one_hot(idx, 3).shape == (2, 2, 3)
    y0 = nn.one_hot(idx, 3, axis=0)
    assert y0.shape == (3, 2, 2)
    np.testing.assert_array_equal(np.asarray(jnp.moveaxis(y0, 0, -1)),
                                  np.asarray(nn.one_hot(idx, 3)))
    assert nn.one_hot(idx, 3, axis=1).shape == (2, 3, 2)
    assert nn.one_hot(idx, 4, dtype=jnp.int32).dtype == jnp.int32
    assert nn.one_hot(jnp.array(2), 4).tolist() == [0.0, 0.0, 1.0, 0.0]  # scalar index
    assert nn.one_hot(jnp.array([1]), np.int64(2)).shape == (1, 2)  # numpy int accepted


def test_one_hot_default_dtype_follows_environ():
    with brainstate.environ.context(precision=16):
        assert nn.one_hot(jnp.array([1]), 2).dtype == jnp.float16


def test_one_hot_under_jit():
    f = brainstate.transform.jit(lambda i: nn.one_hot(i, 5))
    np.testing.assert_array_equal(np.asarray(f(jnp.array([4, 0]))), np.eye(5)[[4, 0]])


@pytest.mark.parametrize("bad", [0, -2])
def test_one_hot_rejects_non_positive_num_classes(bad):
    with pytest.raises(ValueError,
                       match=rf"one_hot: num_classes must be a positive int, got {bad}"):
        nn.one_hot(jnp.array([0]), bad)


@pytest.mark.parametrize("bad", [2.0, "3", None, True])
def test_one_hot_rejects_non_integer_num_classes(bad):
    with pytest.raises(TypeError, match=r"one_hot: num_classes must be a positive int"):
        nn.one_hot(jnp.array([0]), bad)


def test_one_hot_rejects_traced_num_classes():
    with pytest.raises(TypeError, match=r"known before tracing"):
        jax.jit(lambda n: nn.one_hot(jnp.array([0]), n))(3)


def test_one_hot_rejects_bad_axis():
    with pytest.raises(ValueError, match=r"one_hot: axis 2 is out of range for the output of "
                                         r"an input of shape \(3,\) \(2 dimensions\)"):
        nn.one_hot(jnp.array([0, 1, 2]), 3, axis=2)
    with pytest.raises(TypeError, match=r"one_hot: axis must be an int"):
        nn.one_hot(jnp.array([0]), 3, axis="last")


# --- units ---------------------------------------------------------------------------------


@pytest.fixture
def u():
    return pytest.importorskip("brainunit")


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "prelu", "hard_shrink", "soft_shrink"])
def test_scaling_functions_keep_units(u, name):
    fn, ref = REFERENCES[name]
    x = jnp.asarray(X, jnp.float32)
    if name in ("hard_shrink", "soft_shrink"):
        out = fn(x * u.mV, 0.5 * u.mV)
    else:
        out = fn(x * u.mV)
    assert isinstance(out, u.Quantity) and out.unit == u.mV
    np.testing.assert_allclose(np.asarray(out.mantissa), ref(X), rtol=2e-5, atol=2e-6)


def test_thresholds_convert_between_units(u):
    x = jnp.asarray(X, jnp.float32) * u.mV
    a = nn.soft_shrink(x, 0.0005 * u.volt)
    b = nn.soft_shrink(x, 0.5 * u.mV)
    np.testing.assert_allclose(np.asarray(a.mantissa), np.asarray(b.mantissa), rtol=1e-5)
    t = nn.hard_tanh(x, -2 * u.mV, 0.003 * u.volt)
    assert t.unit == u.mV
    np.testing.assert_allclose(np.asarray(t.mantissa), np.clip(X, -2, 3), rtol=1e-6)


def test_rrelu_keeps_units(u):
    out = nn.rrelu(-jnp.ones(10) * u.mV, 0.2, 0.3, key=0)
    assert out.unit == u.mV
    assert float(out.mantissa.min()) >= -0.3


def test_plain_threshold_with_dimensional_input_fails(u):
    x = jnp.ones(3) * u.mV
    with pytest.raises(u.UnitMismatchError,
                       match=r"hard_shrink: x has unit mV, so lambd must have the same dimension"):
        nn.hard_shrink(x)
    with pytest.raises(u.UnitMismatchError, match=r"hard_tanh: x has unit mV, so min_val"):
        nn.hard_tanh(x)
    with pytest.raises(u.UnitMismatchError, match=r"soft_shrink: x has unit mV.*lambd"):
        nn.soft_shrink(x, 1 * u.second)
    with pytest.raises(u.UnitMismatchError, match=r"soft_shrink: x is a plain array, but lambd"):
        nn.soft_shrink(jnp.ones(3), 1 * u.mV)


@pytest.mark.parametrize("name", UNITLESS)
def test_dimensional_input_is_rejected(u, name):
    fn = getattr(nn, name)
    with pytest.raises(TypeError, match=rf"{name} needs a dimensionless input, but x has unit mV"):
        fn(jnp.ones(4) * u.mV)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus", "gelu", "mish"])
def test_dimensionless_quantity_is_read_as_a_number(u, name):
    fn = getattr(nn, name)
    q = u.Quantity(jnp.asarray(X * 1000, jnp.float32), unit=u.mV / u.volt)  # = X
    out = fn(q)
    assert not isinstance(out, u.Quantity)
    np.testing.assert_allclose(np.asarray(out), np.asarray(fn(jnp.asarray(X, jnp.float32))),
                               rtol=1e-5, atol=1e-6)


def test_standardize_divides_out_the_unit(u):
    x = jnp.asarray(np.random.RandomState(4).randn(3, 10), jnp.float32)
    out = nn.standardize(x * u.mV)
    assert not isinstance(out, u.Quantity)
    np.testing.assert_allclose(np.asarray(out), np.asarray(nn.standardize(x)), rtol=1e-6)
    var = jnp.full((3, 1), 4.0)
    a = nn.standardize(x * u.mV, variance=var * u.mV ** 2, epsilon=0.0)
    b = nn.standardize(x, variance=var, epsilon=0.0)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    with pytest.raises(u.UnitMismatchError, match=r"standardize: x has unit mV.*variance"):
        nn.standardize(x * u.mV, variance=var)


def test_one_hot_rejects_dimensional_indices(u):
    with pytest.raises(TypeError, match=r"one_hot needs a dimensionless input"):
        nn.one_hot(jnp.array([0, 1]) * u.mV, 3)
