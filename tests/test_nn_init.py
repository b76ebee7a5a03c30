"""Tests of ``brainstate.nn.init``: initializers, fans, ``param`` and the size helpers."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.nn import init

RANDOM_INITS = [
    lambda **kw: init.Normal(**kw),
    lambda **kw: init.TruncatedNormal(**kw),
    lambda **kw: init.Uniform(**kw),
    lambda **kw: init.Gamma(2.0, **kw),
    lambda **kw: init.Exponential(**kw),
    lambda **kw: init.KaimingNormal(**kw),
    lambda **kw: init.KaimingUniform(**kw),
    lambda **kw: init.XavierNormal(**kw),
    lambda **kw: init.XavierUniform(**kw),
    lambda **kw: init.LecunNormal(**kw),
    lambda **kw: init.LecunUniform(**kw),
    lambda **kw: init.VarianceScaling(1.0, "fan_out", "normal", **kw),
    lambda **kw: init.Orthogonal(**kw),
]
ALL_INITS = RANDOM_INITS + [
    lambda **kw: init.ZeroInit(),
    lambda **kw: init.Constant(0.5),
    lambda **kw: init.Identity(),
]


# --------------------------------------------------------------------------------------------
# shapes, dtypes, determinism
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ALL_INITS)
@pytest.mark.parametrize("shape", [(6, 5), [6, 5]])
def test_shape_and_default_dtype(make, shape):
    w = make()(shape)
    assert w.shape == tuple(shape)
    assert w.dtype == brainstate.environ.dftype()


# Orthogonal: no bfloat16 QR kernel; Gamma: its sampler compiles slowly for each new dtype.
@pytest.mark.parametrize("make", [m for i, m in enumerate(ALL_INITS) if i not in (3, 12)])
def test_dtype_argument(make):
    w = make()((6, 5), dtype=jnp.bfloat16)
    assert w.dtype == jnp.bfloat16


def test_int_shape_accepted():
    assert init.Normal()(7).shape == (7,)
    assert init.ZeroInit()(3).shape == (3,)


@pytest.mark.parametrize("make", RANDOM_INITS)
def test_seed_makes_draws_repeatable(make):
    a = make(seed=3)((6, 5))
    b = make(seed=3)((6, 5))
    c = make(seed=4)((6, 5))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


@pytest.mark.parametrize("make", RANDOM_INITS)
def test_key_argument_leaves_default_state_alone(make):
    brainstate.random.seed(0)
    before = np.asarray(brainstate.random.DEFAULT.value)
    ini = make()
    a = ini((6, 5), key=jax.random.PRNGKey(7))
    b = ini((6, 5), key=jax.random.PRNGKey(7))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(brainstate.random.DEFAULT.value), before)


@pytest.mark.parametrize("make", RANDOM_INITS)
def test_unseeded_draws_from_global_state(make):
    ini = make()
    brainstate.random.seed(11)
    a = ini((6, 5))
    b = ini((6, 5))
    brainstate.random.seed(11)
    a2 = ini((6, 5))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(a2))
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_rng_argument_is_used():
    ini = init.Normal()
    a = ini((4,), rng=brainstate.random.RandomState(5))
    b = ini((4,), rng=brainstate.random.RandomState(5))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert isinstance(init.Normal(seed=1).rng, brainstate.random.RandomState)
    assert init.Normal().rng is brainstate.random.DEFAULT


def test_rng_argument_bad_type():
    with pytest.raises(TypeError, match="Normal: rng must be a brainstate.random.RandomState"):
        init.Normal()((3,), rng=0)


def test_repr_lists_parameters():
    text = repr(init.Normal(0.5, 2.0, seed=1))
    assert text.startswith("Normal(")
    assert "mean=0.5" in text and "scale=2.0" in text and "seed=1" in text
    assert "_rng" not in text
    assert "mode='fan_in'" in repr(init.KaimingNormal())


def test_base_initializer_is_abstract():
    with pytest.raises(NotImplementedError, match="Initializer must implement __call__"):
        init.Initializer()((2,))


def test_inside_jit():
    @brainstate.transform.jit
    def f():
        return init.KaimingNormal()((4, 3)), init.Orthogonal()((3, 3))

    brainstate.random.seed(0)
    w, q = f()
    assert w.shape == (4, 3)
    np.testing.assert_allclose(np.asarray(q.T @ q), np.eye(3), atol=1e-5)


# --------------------------------------------------------------------------------------------
# statistics (fixed seeds, tolerances of several standard errors)
# --------------------------------------------------------------------------------------------

N = (200, 250)


def _moments(w):
    w = np.asarray(w, dtype=np.float64)
    return w.mean(), w.std()


def test_normal_statistics():
    m, s = _moments(init.Normal(1.5, 0.5, seed=0)(N))
    assert abs(m - 1.5) < 5 * 0.5 / math.sqrt(np.prod(N))
    np.testing.assert_allclose(s, 0.5, rtol=0.02)


def test_truncated_normal_bounds_and_statistics():
    w = np.asarray(init.TruncatedNormal(1.0, 2.0, lower=0.0, upper=3.0, seed=0)(N))
    assert w.min() >= 0.0 and w.max() <= 3.0
    # a symmetric truncation around the mean keeps the mean
    m, s = _moments(init.TruncatedNormal(0.0, 1.0, seed=1)(N))
    assert abs(m) < 0.01
    np.testing.assert_allclose(s, 0.8796256610342398, rtol=0.02)


def test_uniform_statistics():
    w = np.asarray(init.Uniform(-2.0, 4.0, seed=0)(N))
    assert w.min() >= -2.0 and w.max() < 4.0
    m, s = _moments(w)
    assert abs(m - 1.0) < 0.02
    np.testing.assert_allclose(s, 6.0 / math.sqrt(12.0), rtol=0.02)


def test_gamma_statistics():
    m, s = _moments(init.Gamma(3.0, scale=0.5, seed=0)((6, 5000)))
    np.testing.assert_allclose(m, 1.5, rtol=0.02)
    np.testing.assert_allclose(s, math.sqrt(3.0) * 0.5, rtol=0.03)


def test_exponential_statistics():
    m, s = _moments(init.Exponential(2.0, seed=0)(N))
    np.testing.assert_allclose(m, 2.0, rtol=0.02)
    np.testing.assert_allclose(s, 2.0, rtol=0.03)


def test_constant_zero_identity_values():
    np.testing.assert_array_equal(np.asarray(init.ZeroInit()((2, 3))), np.zeros((2, 3)))
    np.testing.assert_array_equal(np.asarray(init.Constant(2.5)((2, 3))), np.full((2, 3), 2.5))
    row = jnp.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.asarray(init.Constant(row)((2, 3))), np.tile(row, (2, 1)))
    np.testing.assert_array_equal(np.asarray(init.Identity()((3, 3))), np.eye(3))
    np.testing.assert_array_equal(np.asarray(init.Identity(2.0)((2, 4))), 2 * np.eye(2, 4))
    np.testing.assert_array_equal(np.asarray(init.Identity()(3)), np.eye(3))
    diag = init.Identity(jnp.array([1.0, 2.0, 3.0]))((3, 3))
    np.testing.assert_array_equal(np.asarray(diag), np.diag([1.0, 2.0, 3.0]))


def test_constant_bad_shape():
    with pytest.raises(ValueError, match=r"Constant: the value of shape \(2,\) does not broadcast"):
        init.Constant(jnp.ones(2))((3,))


def test_identity_bad_shape():
    with pytest.raises(ValueError, match=r"Identity: only 1-D or 2-D shapes .* got \(2, 2, 2\)"):
        init.Identity()((2, 2, 2))


# --------------------------------------------------------------------------------------------
# variance scaling: fans, modes and distributions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_variance(mode, distribution):
    shape = N
    n = {"fan_in": 200.0, "fan_out": 250.0, "fan_avg": 225.0}[mode]
    var = 2.0 / n
    w = np.asarray(init.VarianceScaling(2.0, mode, distribution, seed=0)(shape), np.float64)
    np.testing.assert_allclose(w.var(), var, rtol=0.04)
    assert abs(w.mean()) < 5 * math.sqrt(var / w.size)
    if distribution == "uniform":
        assert np.abs(w).max() <= math.sqrt(3 * var) + 1e-6
    if distribution == "truncated_normal":
        assert np.abs(w).max() <= 2 * math.sqrt(var) / 0.87962566103423978 + 1e-6


def test_fans_of_a_conv_kernel():
    # (kh, kw, in, out): receptive field 9 -> fan_in 9*16, fan_out 9*32
    shape = (3, 3, 16, 32)
    w = np.asarray(init.VarianceScaling(1.0, "fan_in", "normal", seed=0)(shape), np.float64)
    np.testing.assert_allclose(w.var(), 1.0 / 144, rtol=0.05)
    w = np.asarray(init.VarianceScaling(1.0, "fan_out", "normal", seed=0)(shape), np.float64)
    np.testing.assert_allclose(w.var(), 1.0 / 288, rtol=0.05)


def test_fans_follow_in_and_out_axes():
    ini = init.VarianceScaling(1.0, "fan_in", "normal", in_axis=-1, out_axis=-2, seed=0)
    w = np.asarray(ini(N), np.float64)
    np.testing.assert_allclose(w.var(), 1.0 / 250, rtol=0.04)


@pytest.mark.parametrize("cls, scale, n", [
    (init.KaimingNormal, 2.0, 200.0), (init.KaimingUniform, 2.0, 200.0),
    (init.XavierNormal, 1.0, 225.0), (init.XavierUniform, 1.0, 225.0),
    (init.LecunNormal, 1.0, 200.0), (init.LecunUniform, 1.0, 200.0),
])
def test_named_schemes(cls, scale, n):
    w = np.asarray(cls(seed=0)(N), np.float64)
    np.testing.assert_allclose(w.var(), scale / n, rtol=0.04)


def test_variance_scaling_errors():
    with pytest.raises(ValueError, match=r"VarianceScaling: mode must be one of .*got 'fan'"):
        init.VarianceScaling(1.0, "fan", "normal")
    with pytest.raises(ValueError, match="VarianceScaling: distribution must be one of"):
        init.VarianceScaling(1.0, "fan_in", "cauchy")
    with pytest.raises(ValueError, match="KaimingNormal: scale must be positive"):
        init.KaimingNormal(scale=0.0)
    with pytest.raises(ValueError, match=r"KaimingNormal: fans need a shape of at least 2 dims"):
        init.KaimingNormal()((5,))
    with pytest.raises(ValueError, match=r"in_axis=3 is out of range for the shape \(2, 3\)"):
        init.VarianceScaling(1.0, "fan_in", "normal", in_axis=3)((2, 3))
    with pytest.raises(ValueError, match="in_axis and out_axis name the same axis"):
        init.VarianceScaling(1.0, "fan_in", "normal", in_axis=0, out_axis=-2)((2, 3))
    with pytest.raises(ValueError, match=r"the fan_in of shape \(0, 3\) is 0"):
        init.LecunNormal()((0, 3))


# --------------------------------------------------------------------------------------------
# orthogonal initializers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 5), (8, 3), (3, 8)])
def test_orthogonal_matrices(shape):
    q = np.asarray(init.Orthogonal(seed=0)(shape), np.float64)
    k = min(shape)
    gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
    np.testing.assert_allclose(gram, np.eye(k), atol=1e-5)


def test_orthogonal_scale_axis_and_nd():
    q = np.asarray(init.Orthogonal(scale=2.0, seed=0)((2, 3, 8)), np.float64)
    mat = np.moveaxis(q, -1, 0).reshape(8, -1)  # 8 rows x 6 columns: orthonormal columns
    np.testing.assert_allclose(mat.T @ mat, 4.0 * np.eye(6), atol=1e-4)
    q = np.asarray(init.Orthogonal(axis=0, seed=0)((3, 2, 2)), np.float64)
    mat = q.reshape(3, 4)  # 3 rows of 4: orthonormal rows
    np.testing.assert_allclose(mat @ mat.T, np.eye(3), atol=1e-5)


def test_orthogonal_errors():
    with pytest.raises(ValueError, match=r"Orthogonal: axis=2 is out of range"):
        init.Orthogonal(axis=2)((3, 3))
    with pytest.raises(ValueError, match=r"Orthogonal: needs a shape of at least 1 dim"):
        init.Orthogonal()(())


@pytest.mark.parametrize("shape", [(3, 4, 6), (3, 3, 4, 4), (3, 3, 3, 2, 5)])
def test_delta_orthogonal(shape):
    w = np.asarray(init.DeltaOrthogonal(seed=0)(shape), np.float64)
    assert w.shape == shape
    mid = tuple((k - 1) // 2 for k in shape[:-2])
    centre = w[mid]
    np.testing.assert_allclose(centre @ centre.T, np.eye(shape[-2]), atol=1e-5)
    rest = w.copy()
    rest[mid] = 0.0
    assert not rest.any()


def test_delta_orthogonal_errors():
    with pytest.raises(ValueError, match=r"DeltaOrthogonal: needs a 3-D, 4-D or 5-D .*\(4, 4\)"):
        init.DeltaOrthogonal()((4, 4))
    with pytest.raises(ValueError, match=r"input channels \(5\) must not exceed the output"):
        init.DeltaOrthogonal()((3, 5, 4))


# --------------------------------------------------------------------------------------------
# construction errors
# --------------------------------------------------------------------------------------------


def test_construction_errors():
    with pytest.raises(ValueError, match="Normal: scale must be positive, got -1.0"):
        init.Normal(scale=-1.0)
    with pytest.raises(ValueError, match="TruncatedNormal: scale must be positive"):
        init.TruncatedNormal(scale=0.0)
    with pytest.raises(ValueError, match="TruncatedNormal: lower must be below upper"):
        init.TruncatedNormal(lower=1.0, upper=1.0)
    with pytest.raises(ValueError, match="Uniform: min_val must be below max_val"):
        init.Uniform(2.0, 1.0)
    with pytest.raises(ValueError, match="Gamma: shape must be positive"):
        init.Gamma(0.0)
    with pytest.raises(ValueError, match="Gamma: scale must be positive"):
        init.Gamma(1.0, scale=-2.0)
    with pytest.raises(ValueError, match="Exponential: scale must be positive"):
        init.Exponential(0.0)
    with pytest.raises(TypeError, match="Normal: unit must be a brainunit Unit"):
        init.Normal(unit="mV")


# --------------------------------------------------------------------------------------------
# calculate_init_gain
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, gain", [
    ("linear", 1.0), ("conv2d", 1.0), ("conv_transpose3d", 1.0), ("sigmoid", 1.0),
    ("tanh", 5.0 / 3.0), ("relu", math.sqrt(2.0)), ("selu", 0.75),
    ("leaky_relu", math.sqrt(2.0 / (1 + 0.01 ** 2))),
])
def test_calculate_init_gain(name, gain):
    assert init.calculate_init_gain(name) == pytest.approx(gain)


def test_calculate_init_gain_leaky_slope_and_errors():
    assert init.calculate_init_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_init_gain("leaky_relu", 1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="negative slope of leaky_relu must be a number"):
        init.calculate_init_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_init_gain("swish")


# --------------------------------------------------------------------------------------------
# size helpers
# --------------------------------------------------------------------------------------------


def test_to_size():
    assert init.to_size(3) == (3,)
    assert init.to_size(np.int64(2)) == (2,)
    assert init.to_size([2, np.int32(3)]) == (2, 3)
    assert init.to_size(()) == ()
    assert init.to_size(None) is None
    with pytest.raises(ValueError, match="Cannot make a size from str"):
        init.to_size("3")
    with pytest.raises(ValueError, match=r"2.5 is not an int"):
        init.to_size((2.5,))
    with pytest.raises(ValueError, match="dimensions must be >= 0"):
        init.to_size((2, -1))
    with pytest.raises(ValueError, match="True is not an int"):
        init.to_size((True,))


def test_are_broadcastable_shapes():
    assert init.are_broadcastable_shapes((3,), (2, 3))
    assert init.are_broadcastable_shapes((1, 3), (4, 1))
    assert init.are_broadcastable_shapes((), (4, 5))
    assert not init.are_broadcastable_shapes((2, 3), (3, 3))


# --------------------------------------------------------------------------------------------
# param
# --------------------------------------------------------------------------------------------


def test_param_none():
    assert init.param(None, (3,)) is None
    with pytest.raises(ValueError, match="param: got None, but allow_none=False"):
        init.param(None, (3,), allow_none=False)


@pytest.mark.parametrize("scalar", [0.5, 2, jnp.asarray(1.5), np.float32(3.0)])
def test_param_scalar(scalar):
    assert init.param(scalar, (3, 4)) is scalar
    with pytest.raises(ValueError, match="but allow_scalar=False"):
        init.param(scalar, (3, 4), allow_scalar=False)


def test_param_initializer_and_callable():
    w = init.param(init.Constant(2.0), (3, 4))
    np.testing.assert_array_equal(np.asarray(w), np.full((3, 4), 2.0))
    assert init.param(init.Normal(), 5, batch_size=2).shape == (2, 5)
    calls = []

    def fn(shape):
        calls.append(shape)
        return jnp.zeros(shape)

    assert init.param(fn, (2, 3), batch_size=4).shape == (4, 2, 3)
    assert calls == [(4, 2, 3)]


def test_param_callable_wrong_shape():
    with pytest.raises(ValueError, match=r"returned shape \(5,\), which does not broadcast to "
                                         r"the requested shape \(3,\)"):
        init.param(lambda shape: jnp.zeros(5), (3,))


@pytest.mark.parametrize("value", [np.ones((2, 3)), jnp.ones((2, 3)), jnp.ones(3), jnp.ones((1, 3))])
def test_param_array(value):
    out = init.param(value, (2, 3))
    assert out is value


def test_param_array_batch():
    out = init.param(jnp.arange(3.0), (3,), batch_size=2)
    np.testing.assert_array_equal(np.asarray(out), np.tile(np.arange(3.0), (2, 1)))
    # padded to len(sizes) dims before the batch axis
    assert init.param(jnp.ones(3), (2, 3), batch_size=4).shape == (4, 1, 3)
    already = jnp.ones((4, 3))
    assert init.param(already, (3,), batch_size=4) is already


def test_param_array_bad_shapes():
    with pytest.raises(ValueError, match=r"the parameter's shape \(4,\) does not match the given "
                                         r"size \(3,\)"):
        init.param(jnp.ones(4), (3,))
    with pytest.raises(ValueError, match=r"shape \(2, 3\) does not match the given size \(3,\)"):
        init.param(jnp.ones((2, 3)), (3,))
    with pytest.raises(ValueError, match=r"leading \(batch\) axis has size 5, but batch_size=4"):
        init.param(jnp.ones((5, 3)), (3,), batch_size=4)
    with pytest.raises(ValueError, match=r"shape \(4, 2\) does not match the given size \(4, 3\)"):
        init.param(jnp.ones((4, 2)), (3,), batch_size=4)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        init.param(jnp.ones(3), (3,), batch_size=0)
    with pytest.raises(ValueError, match="got a scalar \\(shape \\(\\)\\), but allow_scalar=False"):
        init.param(brainstate.State(jnp.asarray(1.0)), (3,), allow_scalar=False)


@pytest.mark.parametrize("value", [[1.0, 2.0], "abc", {"a": 1}])
def test_param_wrong_type(value):
    with pytest.raises(TypeError, match="param: expected an initializer, a callable, an array"):
        init.param(value, (2,))


def test_param_state():
    st = brainstate.ParamState(jnp.ones(3))
    assert init.param(st, (3,)) is st
    batched = init.param(st, (3,), batch_size=2)
    assert type(batched) is brainstate.ParamState
    assert batched.value.shape == (2, 3)
    with pytest.raises(ValueError, match=r"shape \(3,\) does not match the given size \(4,\)"):
        init.param(st, (4,))


def test_param_inside_jit():
    @brainstate.transform.jit
    def f(x):
        return init.param(x, (3,), batch_size=2), init.param(init.ZeroInit(), (3,), batch_size=2)

    a, b = f(jnp.arange(3.0))
    np.testing.assert_array_equal(np.asarray(a), np.tile(np.arange(3.0), (2, 1)))
    assert b.shape == (2, 3)

    @brainstate.transform.jit
    def g(x):
        return init.param(x, (4,))

    with pytest.raises(ValueError, match=r"shape \(3,\) does not match the given size \(4,\)"):
        g(jnp.ones(3))


# --------------------------------------------------------------------------------------------
# units (optional brainunit)
# --------------------------------------------------------------------------------------------


def test_units():
    u = pytest.importorskip("brainunit")
    w = init.Normal(0.0, 1.0, unit=u.mV, seed=0)((3,))
    assert isinstance(w, u.Quantity) and w.unit == u.mV
    w = init.KaimingNormal(unit=u.mS)((4, 3))
    assert w.unit == u.mS
    assert init.ZeroInit(unit=u.mV)((2,)).unit == u.mV
    assert init.Orthogonal(unit=u.mV)((2, 2)).unit == u.mV
    assert init.Identity(unit=u.mV)((2, 2)).unit == u.mV
    w = init.Constant(2.0 * u.mV)((3,))
    assert w.unit == u.mV
    np.testing.assert_allclose(np.asarray(w.mantissa), 2.0)
    w = init.Normal(1.0 * u.mV, 0.1 * u.mV, seed=0)((1000,))
    assert w.unit == u.mV
    np.testing.assert_allclose(float(w.mantissa.mean()), 1.0, atol=0.02)
    w = init.Uniform(0.0 * u.mV, 1.0 * u.mV, seed=0)((5,))
    assert w.unit == u.mV
    # unitless units give plain arrays
    assert not isinstance(init.Normal(unit=u.UNITLESS)((2,)), u.Quantity)
    with pytest.raises(ValueError, match="Normal: mean is a Quantity and unit=mV was given too"):
        init.Normal(1.0 * u.mV, unit=u.mV)


def test_param_with_quantities():
    u = pytest.importorskip("brainunit")
    q = jnp.arange(3.0) * u.mV
    assert init.param(q, (3,)) is q
    out = init.param(q, (3,), batch_size=2)
    assert out.unit == u.mV and out.shape == (2, 3)
    s = 1.0 * u.mV
    assert init.param(s, (3,)) is s
    with pytest.raises(ValueError, match=r"shape \(3,\) does not match the given size \(2,\)"):
        init.param(q, (2,))
