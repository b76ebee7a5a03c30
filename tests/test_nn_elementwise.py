"""Module forms of the activations (``brainstate.nn.ReLU`` ... ``SpikeBitwise``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import nn

UPSTREAM_ALL = [
    "Threshold", "ReLU", "RReLU", "Hardtanh", "ReLU6", "Sigmoid", "Hardsigmoid", "Tanh", "SiLU",
    "Mish", "Hardswish", "ELU", "CELU", "SELU", "GLU", "GELU", "Hardshrink", "LeakyReLU",
    "LogSigmoid", "Softplus", "Softshrink", "PReLU", "Softsign", "Tanhshrink", "Softmin",
    "Softmax", "Softmax2d", "LogSoftmax", "Identity", "SpikeBitwise",
]

X = jnp.asarray(np.random.RandomState(0).randn(3, 4, 6) * 3, jnp.float32)

# id -> (module factory, functional equivalent)
PAIRS = {
    "ReLU": (nn.ReLU, nn.relu),
    "Hardtanh": (nn.Hardtanh, nn.hard_tanh),
    "Hardtanh(-2,3)": (lambda: nn.Hardtanh(-2.0, 3.0), lambda x: nn.hard_tanh(x, -2.0, 3.0)),
    "ReLU6": (nn.ReLU6, nn.relu6),
    "Sigmoid": (nn.Sigmoid, nn.sigmoid),
    "Hardsigmoid": (nn.Hardsigmoid, nn.hard_sigmoid),
    "Tanh": (nn.Tanh, nn.tanh),
    "SiLU": (nn.SiLU, nn.silu),
    "Mish": (nn.Mish, nn.mish),
    "Hardswish": (nn.Hardswish, nn.hard_swish),
    "ELU": (nn.ELU, nn.elu),
    "ELU(0.5)": (lambda: nn.ELU(0.5), lambda x: nn.elu(x, 0.5)),
    "CELU": (nn.CELU, nn.celu),
    "CELU(2)": (lambda: nn.CELU(2.0), lambda x: nn.celu(x, 2.0)),
    "SELU": (nn.SELU, nn.selu),
    "GLU": (nn.GLU, nn.glu),
    "GLU(1)": (lambda: nn.GLU(1), lambda x: nn.glu(x, 1)),
    "GELU": (nn.GELU, lambda x: nn.gelu(x, approximate=False)),
    "GELU(approx)": (lambda: nn.GELU(approximate=True), nn.gelu),
    "Hardshrink": (nn.Hardshrink, nn.hard_shrink),
    "Hardshrink(2)": (lambda: nn.Hardshrink(2.0), lambda x: nn.hard_shrink(x, 2.0)),
    "LeakyReLU": (nn.LeakyReLU, nn.leaky_relu),
    "LeakyReLU(0.2)": (lambda: nn.LeakyReLU(0.2), lambda x: nn.leaky_relu(x, 0.2)),
    "LogSigmoid": (nn.LogSigmoid, nn.log_sigmoid),
    "Softplus": (nn.Softplus, nn.softplus),
    "Softshrink": (nn.Softshrink, nn.soft_shrink),
    "Softshrink(1)": (lambda: nn.Softshrink(1.0), lambda x: nn.soft_shrink(x, 1.0)),
    "PReLU": (nn.PReLU, nn.prelu),
    "PReLU(6, 0.1)": (lambda: nn.PReLU(6, 0.1), lambda x: nn.prelu(x, jnp.full(6, 0.1))),
    "Softsign": (nn.Softsign, nn.soft_sign),
    "Tanhshrink": (nn.Tanhshrink, nn.tanh_shrink),
    "Softmin": (nn.Softmin, nn.softmin),
    "Softmin(1)": (lambda: nn.Softmin(dim=1), lambda x: nn.softmin(x, 1)),
    "Softmax": (nn.Softmax, nn.softmax),
    "Softmax(0)": (lambda: nn.Softmax(dim=0), lambda x: nn.softmax(x, 0)),
    "Softmax2d": (nn.Softmax2d, lambda x: nn.softmax(x, -3)),
    "LogSoftmax": (nn.LogSoftmax, nn.log_softmax),
    "LogSoftmax(1)": (lambda: nn.LogSoftmax(dim=1), lambda x: nn.log_softmax(x, 1)),
    "Threshold": (lambda: nn.Threshold(0.5, -7.0), lambda x: jnp.where(x > 0.5, x, -7.0)),
    "Identity": (nn.Identity, lambda x: x),
}


def test_every_upstream_class_is_exported():
    from brainstate.nn import _elementwise

    assert sorted(_elementwise.__all__) == sorted(UPSTREAM_ALL)
    for name in UPSTREAM_ALL:
        cls = getattr(brainstate.nn, name)
        assert issubclass(cls, nn.ElementWiseBlock) and issubclass(cls, nn.Module), name
        assert cls.__module__ == "brainstate.nn"


@pytest.mark.parametrize("key", sorted(PAIRS))
def test_module_equals_functional_form(key):
    make, fn = PAIRS[key]
    m = make()
    want = np.asarray(fn(X))
    np.testing.assert_allclose(np.asarray(m(X)), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(m.update(X)), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(X >> m), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("key", sorted(PAIRS))
def test_module_under_jit(key):
    make, fn = PAIRS[key]
    m = make()
    f = brainstate.transform.jit(lambda x: m(x))
    # compiled code may fuse differently: compare with a float32-level tolerance
    np.testing.assert_allclose(np.asarray(f(X)), np.asarray(fn(X)), rtol=1e-5, atol=1e-5)


def test_identity_returns_its_input():
    x = jnp.arange(3.0)
    assert nn.Identity()(x) is x


def test_relu6_is_a_hardtanh_on_0_6():
    m = nn.ReLU6()
    assert isinstance(m, nn.Hardtanh)
    assert (m.min_val, m.max_val) == (0.0, 6.0)
    g = jax.grad(lambda x: m(x).sum())(jnp.array([0.0, 6.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(g), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("lo, hi", [(1.0, 1.0), (2.0, -2.0)])
def test_hardtanh_rejects_empty_range(lo, hi):
    with pytest.raises(ValueError, match=rf"Hardtanh: max_val \({hi}\) must be greater than "
                                         rf"min_val \({lo}\)"):
        nn.Hardtanh(lo, hi)


def test_gelu_module_defaults_to_exact():
    assert nn.GELU().approximate is False
    x = jnp.array([1.0])
    assert float(nn.GELU()(x)[0]) != float(nn.gelu(x)[0])  # functional default: approximate


def test_threshold_replaces_values_not_above():
    y = nn.Threshold(1.0, 20.0)(jnp.array([0.5, 1.0, 1.5]))
    assert y.tolist() == [20.0, 20.0, 1.5]
    yi = nn.Threshold(1, 0)(jnp.array([0, 2, 3]))
    assert yi.tolist() == [0.0, 2.0, 3.0]


def test_threshold_with_units():
    u = pytest.importorskip("brainunit")
    y = nn.Threshold(1.0 * u.mV, 0.0 * u.mV)(jnp.array([0.5, 2.0]) * u.mV)
    assert y.unit == u.mV and y.mantissa.tolist() == [0.0, 2.0]
    with pytest.raises(u.UnitMismatchError, match=r"Threshold: x has unit mV, so threshold"):
        nn.Threshold(1.0, 0.0)(jnp.array([0.5]) * u.mV)


# --- RReLU ---------------------------------------------------------------------------------


def test_rrelu_module_draws_in_bounds():
    brainstate.random.seed(1)
    m = nn.RReLU(0.1, 0.3)
    y = m(-jnp.ones(500))
    assert float(y.min()) >= -0.3 and float(y.max()) <= -0.1
    np.testing.assert_array_equal(np.asarray(m(jnp.array([2.0, 0.0]))), [2.0, 0.0])
    brainstate.random.seed(1)
    np.testing.assert_array_equal(np.asarray(m(-jnp.ones(500))), np.asarray(y))


def test_rrelu_module_rejects_swapped_bounds():
    with pytest.raises(ValueError, match=r"RReLU: lower \(0.4\) must not exceed upper \(0.2\)"):
        nn.RReLU(0.4, 0.2)


# --- PReLU ---------------------------------------------------------------------------------


def test_prelu_weight_is_a_param_state():
    m = nn.PReLU(4, init=0.3)
    assert isinstance(m.weight, brainstate.ParamState)
    assert m.weight.value.shape == (4,)
    assert m.weight.value.dtype == brainstate.environ.dftype()
    np.testing.assert_allclose(np.asarray(m.weight.value), 0.3)
    assert list(dict(m.named_parameters())) == ["weight"]
    assert nn.PReLU(dtype=jnp.float16).weight.value.dtype == jnp.float16


def test_prelu_gradient_reaches_its_param_state():
    m = nn.PReLU(3)
    x = jnp.array([[-1.0, 2.0, -3.0], [-2.0, -1.0, 1.0]])
    g = brainstate.transform.grad(lambda: m(x).sum(), grad_states=m.weight)()
    # d/da of sum(where(x >= 0, x, a x)) is the sum of the negative inputs, per channel
    np.testing.assert_allclose(np.asarray(g), [-3.0, -1.0, -3.0])
    m1 = nn.PReLU()
    g1 = brainstate.transform.grad(lambda: m1(x).sum(), grad_states=m1.weight)()
    np.testing.assert_allclose(np.asarray(g1), [-7.0])


def test_prelu_learns_its_slope():
    m = nn.PReLU(init=0.0)
    x = -jnp.arange(1.0, 5.0)
    target = 0.5 * x
    grad_fn = brainstate.transform.grad(lambda: ((m(x) - target) ** 2).mean(),
                                        grad_states=m.weight)
    for _ in range(50):
        m.weight.value = m.weight.value - 0.05 * grad_fn()
    np.testing.assert_allclose(np.asarray(m.weight.value), [0.5], rtol=1e-3)


def test_prelu_rejects_channel_mismatch():
    with pytest.raises(ValueError, match=r"PReLU: the input's last axis must have "
                                         r"num_parameters=3 elements.*shape \(2, 4\)"):
        nn.PReLU(3)(jnp.ones((2, 4)))


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_prelu_rejects_bad_num_parameters(bad):
    with pytest.raises(ValueError, match=r"PReLU: num_parameters must be a positive int"):
        nn.PReLU(bad)


# --- Softmax2d -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4, 5)])
def test_softmax2d_normalises_channels(shape):
    x = jnp.asarray(np.random.RandomState(1).randn(*shape), jnp.float32)
    y = nn.Softmax2d()(x)
    np.testing.assert_allclose(np.asarray(y.sum(-3)), 1.0, rtol=1e-6)


@pytest.mark.parametrize("shape", [(4, 5), (1, 2, 3, 4, 5)])
def test_softmax2d_rejects_other_ranks(shape):
    with pytest.raises(ValueError, match=rf"Softmax2d needs a 3D \(C, H, W\) or 4D \(N, C, H, W\) "
                                         rf"input, but got a {len(shape)}D input"):
        nn.Softmax2d()(jnp.ones(shape))


def test_axis_errors_surface_through_modules():
    with pytest.raises(ValueError, match=r"softmax: axis 3 is out of range"):
        nn.Softmax(dim=3)(jnp.ones((2, 2)))
    with pytest.raises(ValueError, match=r"glu: the size along axis -1 must be even"):
        nn.GLU()(jnp.ones((2, 3)))


# --- SpikeBitwise --------------------------------------------------------------------------

SX = jnp.array([0.0, 0.0, 1.0, 1.0])
SY = jnp.array([0.0, 1.0, 0.0, 1.0])
TRUTH = {
    "add": [0.0, 1.0, 1.0, 2.0],
    "and": [0.0, 0.0, 0.0, 1.0],
    "iand": [0.0, 1.0, 0.0, 0.0],
    "or": [0.0, 1.0, 1.0, 1.0],
    "xor": [0.0, 1.0, 1.0, 0.0],
    "ixor": [0.0, 1.0, 1.0, 0.0],
}


@pytest.mark.parametrize("op", sorted(TRUTH))
def test_spike_bitwise_truth_tables(op):
    m = nn.SpikeBitwise(op)
    assert m(SX, SY).tolist() == TRUTH[op]
    assert m(SX.astype(bool), SY.astype(bool)).tolist() == TRUTH[op]  # booleans read as 0/1


def test_spike_bitwise_default_and_case():
    assert nn.SpikeBitwise().op == "add"
    assert nn.SpikeBitwise().update(SX, SY).tolist() == TRUTH["add"]
    assert nn.SpikeBitwise("OR")(SX, SY).tolist() == TRUTH["or"]
    assert nn.SpikeBitwise("and", name="gate").name == "gate"


def test_spike_bitwise_is_differentiable():
    g = jax.grad(lambda x: nn.SpikeBitwise("or")(x, SY).sum())(SX)
    np.testing.assert_allclose(np.asarray(g), np.asarray(1 - SY))


@pytest.mark.parametrize("bad", ["nand", "", 3, None])
def test_spike_bitwise_rejects_unknown_op(bad):
    with pytest.raises(ValueError, match=r"SpikeBitwise: unknown op .*; choose one of "
                                         r"\['add', 'and', 'iand', 'ixor', 'or', 'xor'\]"):
        nn.SpikeBitwise(bad)
