"""Tests of the linear layers: values against hand-written products, grads, jit, masks, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import nn
from brainstate.nn import init


@pytest.fixture(autouse=True)
def _seed():
    brainstate.random.seed(0)


def _x(*shape, seed=1):
    return jax.random.normal(jax.random.PRNGKey(seed), shape, jnp.float32)


def _np(x):
    return np.asarray(x, dtype=np.float64)


def _grads(layer, fn, x):
    params = layer.states(brainstate.ParamState)
    return brainstate.transform.grad(lambda inp: fn(layer(inp)), grad_states=params)(x)


# --------------------------------------------------------------------------------------------
# Linear
# --------------------------------------------------------------------------------------------


def test_linear_forward_matches_affine_map():
    layer = nn.Linear(4, 3, b_init=init.Normal(seed=2))
    w, b = layer.weight.value["weight"], layer.weight.value["bias"]
    assert w.shape == (4, 3) and b.shape == (3,)
    assert layer.in_size == (4,) and layer.out_size == (3,)
    x = _x(5, 4)
    np.testing.assert_allclose(_np(layer(x)), _np(x) @ _np(w) + _np(b), rtol=1e-5, atol=1e-6)
    # 1-D input and several batch axes
    np.testing.assert_allclose(_np(layer(x[0])), _np(x[0]) @ _np(w) + _np(b), rtol=1e-5,
                               atol=1e-6)
    x3 = _x(2, 5, 4)
    assert layer(x3).shape == (2, 5, 3)
    np.testing.assert_allclose(_np(layer(x3)), _np(x3) @ _np(w) + _np(b), rtol=1e-5, atol=1e-6)


def test_linear_default_inits_and_no_bias():
    layer = nn.Linear((4,), (3,))
    np.testing.assert_array_equal(_np(layer.weight.value["bias"]), np.zeros(3))
    layer = nn.Linear(4, 3, b_init=None)
    assert list(layer.weight.value) == ["weight"]
    x = _x(2, 4)
    np.testing.assert_allclose(_np(layer(x)), _np(x) @ _np(layer.weight.value["weight"]),
                               rtol=1e-5, atol=1e-6)


def test_linear_array_init_and_states():
    w = _x(4, 3)
    layer = nn.Linear(4, 3, w_init=w, b_init=jnp.ones(3))
    assert layer.weight.value["weight"] is w
    found = layer.states(brainstate.ParamState)
    assert list(found.keys()) == [("weight",)]
    assert found[("weight",)] is layer.weight


def test_linear_multidim_sizes():
    layer = nn.Linear((2, 4), (2, 3))
    assert layer.weight.value["weight"].shape == (4, 3)
    assert layer(_x(5, 2, 4)).shape == (5, 2, 3)


def test_linear_mask():
    mask = jnp.array([[1.0, 0.0, 1.0]] * 4)
    layer = nn.Linear(4, 3, w_mask=mask, b_init=None)
    x = _x(2, 4)
    expected = _np(x) @ (_np(layer.weight.value["weight"]) * _np(mask))
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-5, atol=1e-6)
    assert np.all(_np(layer(x))[:, 1] == 0.0)
    # masked entries get no gradient
    g = _grads(layer, jnp.sum, x)[("weight",)]["weight"]
    assert np.all(_np(g)[:, 1] == 0.0)
    # a per-output mask broadcasts
    layer = nn.Linear(4, 3, w_mask=jnp.array([1.0, 0.0, 1.0]))
    assert layer.w_mask.shape == (3,)


def test_linear_grad():
    layer = nn.Linear(4, 3)
    x = _x(5, 4)
    g = _grads(layer, lambda y: jnp.sum(y ** 2), x)[("weight",)]
    w, b = _np(layer.weight.value["weight"]), _np(layer.weight.value["bias"])
    y = _np(x) @ w + b
    np.testing.assert_allclose(_np(g["weight"]), _np(x).T @ (2 * y), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(g["bias"]), (2 * y).sum(0), rtol=1e-4, atol=1e-5)


def test_linear_jit_sees_weight_updates():
    layer = nn.Linear(2, 2, w_init=jnp.eye(2), b_init=None)
    f = brainstate.transform.jit(lambda x: layer(x))
    x = jnp.array([1.0, 2.0])
    np.testing.assert_allclose(_np(f(x)), [1.0, 2.0])
    layer.weight.value = {"weight": 2 * jnp.eye(2)}
    np.testing.assert_allclose(_np(f(x)), [2.0, 4.0])


def test_linear_construction_errors():
    with pytest.raises(ValueError, match=r"Linear: in_size and out_size must agree on all but "
                                         r"the last dimension, got in_size=\(2, 4\) and "
                                         r"out_size=\(3, 3\)"):
        nn.Linear((2, 4), (3, 3))
    with pytest.raises(ValueError, match="Linear: in_size must be a positive int or a non-empty"):
        nn.Linear((), 3)
    with pytest.raises(ValueError, match="Linear: in_size must be a positive int, got 0"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="Linear: out_size must be a positive int or a .*got 2.0"):
        nn.Linear(3, 2.0)
    with pytest.raises(ValueError, match=r"Linear: bad w_init for the weight of shape \(4, 3\)"):
        nn.Linear(4, 3, w_init=jnp.ones((3, 4)))
    with pytest.raises(ValueError, match=r"Linear: w_init gave a weight of shape \(1, 3\), "
                                         r"expected exactly \(4, 3\)"):
        nn.Linear(4, 3, w_init=jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="Linear: bad w_init .*got the scalar 1.0"):
        nn.Linear(4, 3, w_init=1.0)
    with pytest.raises(ValueError, match="Linear: bad w_init .*got None, but allow_none=False"):
        nn.Linear(4, 3, w_init=None)
    with pytest.raises(ValueError, match=r"Linear: bad b_init for the shape \(3,\)"):
        nn.Linear(4, 3, b_init=jnp.ones(4))
    with pytest.raises(ValueError, match=r"Linear: bad w_mask for the weight of shape \(4, 3\)"):
        nn.Linear(4, 3, w_mask=jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="Linear: bad w_mask .*got list"):
        nn.Linear(4, 3, w_mask=[1.0, 0.0, 1.0])


def test_linear_bad_input():
    layer = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"Linear: expected an input whose last dimension is 4 "
                                         r"\(in_size=\(4,\)\), got shape \(2, 5\)"):
        layer(jnp.ones((2, 5)))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        layer(jnp.asarray(1.0))
    f = brainstate.transform.jit(lambda x: layer(x))
    with pytest.raises(ValueError, match="Linear: expected an input whose last dimension is 4"):
        f(jnp.ones(3))


def test_linear_units():
    u = pytest.importorskip("brainunit")
    layer = nn.Linear(3, 2, w_init=init.Constant(2.0 * u.mS), b_init=init.ZeroInit(unit=u.uA))
    y = layer(jnp.ones(3) * u.mV)
    assert isinstance(y, u.Quantity)
    np.testing.assert_allclose(_np(y.to_decimal(u.uA)), [6.0, 6.0], rtol=1e-6)


# --------------------------------------------------------------------------------------------
# ScaledWSLinear
# --------------------------------------------------------------------------------------------


def _ws(w, eps, gain=None):
    w = _np(w)
    fan_in = w.shape[0]
    mean = w.mean(0, keepdims=True)
    var = w.var(0, keepdims=True)
    out = (w - mean) / np.sqrt(np.maximum(var * fan_in, eps))
    return out if gain is None else out * _np(gain)


def test_scaled_ws_linear_forward():
    layer = nn.ScaledWSLinear(5, 3, b_init=init.Normal(seed=3))
    p = layer.weight.value
    assert sorted(p) == ["bias", "gain", "weight"]
    assert p["gain"].shape == (1, 3)
    x = _x(4, 5)
    expected = _np(x) @ _ws(p["weight"], 1e-4, p["gain"]) + _np(p["bias"])
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-4, atol=1e-5)
    # each standardised column has zero mean and unit sum of squares
    w_hat = _ws(p["weight"], 1e-4)
    np.testing.assert_allclose(w_hat.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose((w_hat ** 2).sum(0), 1.0, rtol=1e-4)


def test_scaled_ws_linear_options_and_grad():
    mask = jnp.array([[1.0], [0.0], [1.0], [1.0], [1.0]])
    layer = nn.ScaledWSLinear(5, 3, ws_gain=False, b_init=None, w_mask=mask, eps=1e-3)
    p = layer.weight.value
    assert sorted(p) == ["weight"]
    x = _x(4, 5)
    expected = _np(x) @ (_ws(p["weight"], 1e-3) * _np(mask))
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-4, atol=1e-5)
    layer = nn.ScaledWSLinear(5, 3)
    g = _grads(layer, lambda y: jnp.sum(y ** 2), x)[("weight",)]
    assert sorted(g) == ["bias", "gain", "weight"]
    assert all(np.all(np.isfinite(_np(v))) for v in g.values())


def test_scaled_ws_linear_errors():
    with pytest.raises(ValueError, match="ScaledWSLinear: eps must be positive, got 0.0"):
        nn.ScaledWSLinear(4, 3, eps=0.0)
    with pytest.raises(ValueError, match="ScaledWSLinear: bad w_init .*got the scalar"):
        nn.ScaledWSLinear(4, 3, w_init=0.5)
    with pytest.raises(ValueError, match="ScaledWSLinear: in_size and out_size must agree"):
        nn.ScaledWSLinear((2, 4), (3,))
    with pytest.raises(ValueError, match="ScaledWSLinear: expected an input whose last dim"):
        nn.ScaledWSLinear(4, 3)(jnp.ones(3))


# --------------------------------------------------------------------------------------------
# SignedWLinear
# --------------------------------------------------------------------------------------------


def test_signed_w_linear():
    layer = nn.SignedWLinear(4, 3)
    w = layer.weight.value
    assert w.shape == (4, 3)  # the state holds the array itself
    x = _x(2, 4)
    np.testing.assert_allclose(_np(layer(x)), _np(x) @ np.abs(_np(w)), rtol=1e-5, atol=1e-6)
    sign = jnp.array([1.0, -1.0, 1.0])
    layer = nn.SignedWLinear(4, 3, w_sign=sign)
    w = layer.weight.value
    np.testing.assert_allclose(_np(layer(x)), _np(x) @ (np.abs(_np(w)) * _np(sign)), rtol=1e-5,
                               atol=1e-6)
    # positive inputs give outputs of the column's sign
    y = _np(layer(jnp.abs(x)))
    assert np.all(y[:, 1] <= 0) and np.all(y[:, 0] >= 0)
    g = _grads(layer, jnp.sum, x)[("weight",)]
    expected = _np(x).sum(0)[:, None] * np.sign(_np(w)) * _np(sign)
    np.testing.assert_allclose(_np(g), expected, rtol=1e-5, atol=1e-6)


def test_signed_w_linear_errors():
    with pytest.raises(ValueError, match=r"SignedWLinear: bad w_sign for the weight of shape "
                                         r"\(4, 3\)"):
        nn.SignedWLinear(4, 3, w_sign=jnp.ones(4))
    with pytest.raises(ValueError, match="SignedWLinear: expected an input whose last dim"):
        nn.SignedWLinear(4, 3)(jnp.ones(5))


# --------------------------------------------------------------------------------------------
# SparseLinear
# --------------------------------------------------------------------------------------------


DENSE = np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0], [4.0, 0.0, 0.0, 5.0]], np.float32)


@pytest.mark.parametrize("fmt", ["CSR", "CSC", "COO"])
def test_sparse_linear_matches_dense(fmt):
    u = pytest.importorskip("brainunit")
    mat = getattr(u.sparse, fmt).fromdense(jnp.asarray(DENSE))
    layer = nn.SparseLinear(mat, b_init=init.Constant(0.5))
    assert layer.in_size == (3,) and layer.out_size == (4,)
    assert sorted(layer.weight.value) == ["bias", "weight"]
    x = _x(5, 3)
    np.testing.assert_allclose(_np(layer(x)), _np(x) @ DENSE + 0.5, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(layer(x[0])), _np(x[0]) @ DENSE + 0.5, rtol=1e-5, atol=1e-6)
    x3 = _x(2, 5, 3)
    np.testing.assert_allclose(_np(layer(x3)), _np(x3) @ DENSE + 0.5, rtol=1e-5, atol=1e-6)
    f = brainstate.transform.jit(lambda v: layer(v))
    np.testing.assert_allclose(_np(f(x)), _np(x) @ DENSE + 0.5, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", ["CSR", "CSC", "COO"])
def test_sparse_linear_grad_and_update(fmt):
    u = pytest.importorskip("brainunit")
    mat = getattr(u.sparse, fmt).fromdense(jnp.asarray(DENSE))
    layer = nn.SparseLinear(mat)
    x = _x(5, 3)
    g = _grads(layer, jnp.sum, x)[("weight",)]["weight"]
    # d sum(x @ S) / d S_ij = sum over batch of x_i, at each stored entry (i, j); the row of
    # each entry is found from its position in the dense matrix
    flat = _np(mat.data)
    rows = [int(np.argwhere(DENSE == v)[0][0]) for v in flat]
    np.testing.assert_allclose(_np(g), _np(x).sum(0)[rows], rtol=1e-5, atol=1e-6)
    layer.weight.value = {"weight": 2 * layer.weight.value["weight"]}
    np.testing.assert_allclose(_np(layer(x)), _np(x) @ (2 * DENSE), rtol=1e-5, atol=1e-6)


def test_sparse_linear_errors():
    u = pytest.importorskip("brainunit")
    mat = u.sparse.CSR.fromdense(jnp.asarray(DENSE))
    with pytest.raises(TypeError, match="SparseLinear: spar_mat must be a brainunit.sparse"):
        nn.SparseLinear(jnp.asarray(DENSE))
    with pytest.raises(ValueError, match=r"SparseLinear: in_size=\(4,\) ends in 4, but spar_mat "
                                         r"has 3 rows"):
        nn.SparseLinear(mat, in_size=4)
    with pytest.raises(ValueError, match=r"SparseLinear: bad b_init for the shape \(4,\)"):
        nn.SparseLinear(mat, b_init=jnp.ones(3))
    with pytest.raises(ValueError, match="SparseLinear: expected an input whose last dimension "
                                         "is 3"):
        nn.SparseLinear(mat)(jnp.ones(4))
    assert nn.SparseLinear(mat, in_size=(2, 3)).out_size == (2, 4)


def test_sparse_linear_without_brainunit(monkeypatch):
    import brainstate.nn._linear as linear_mod

    monkeypatch.setattr(linear_mod, "_brainunit", lambda: None)
    with pytest.raises(ImportError, match="SparseLinear needs brainunit: pip install brainunit"):
        nn.SparseLinear(object())


# --------------------------------------------------------------------------------------------
# AllToAll
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_in, n_out", [(4, 4), (5, 3), (3, 5)])
@pytest.mark.parametrize("include_self", [True, False])
def test_all_to_all_matrix(n_in, n_out, include_self):
    layer = nn.AllToAll(n_in, n_out, include_self=include_self, b_init=init.Constant(0.25))
    w = _np(layer.weight.value["weight"])
    eff = w if include_self else w * (1 - np.eye(n_in, n_out))
    x = _x(2, n_in)
    np.testing.assert_allclose(_np(layer(x)), _np(x) @ eff + 0.25, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_in, n_out", [(4, 4), (5, 3), (3, 5)])
@pytest.mark.parametrize("include_self", [True, False])
def test_all_to_all_scalar_weight(n_in, n_out, include_self):
    layer = nn.AllToAll(n_in, n_out, w_init=1.5, include_self=include_self)
    eff = 1.5 * (np.ones((n_in, n_out)) - (0 if include_self else np.eye(n_in, n_out)))
    x = _x(2, n_in)
    np.testing.assert_allclose(_np(layer(x)), _np(x) @ eff, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(layer(x[0])), _np(x[0]) @ eff, rtol=1e-5, atol=1e-5)


def test_all_to_all_grad_and_jit():
    layer = nn.AllToAll(3, 3, include_self=False)
    x = _x(4, 3)
    g = _grads(layer, jnp.sum, x)[("weight",)]["weight"]
    expected = np.tile(_np(x).sum(0)[:, None], (1, 3)) * (1 - np.eye(3))
    np.testing.assert_allclose(_np(g), expected, rtol=1e-5, atol=1e-6)
    f = brainstate.transform.jit(lambda v: layer(v))
    np.testing.assert_allclose(_np(f(x)), _np(layer(x)), rtol=1e-6)


def test_all_to_all_errors():
    with pytest.raises(ValueError, match=r"AllToAll: w_init must give a scalar or a weight of "
                                         r"shape \(4, 3\), got shape \(1, 3\)"):
        nn.AllToAll(4, 3, w_init=jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="AllToAll: expected an input whose last dimension is 4"):
        nn.AllToAll(4, 3)(jnp.ones(3))
    with pytest.raises(ValueError, match="AllToAll: in_size and out_size must agree"):
        nn.AllToAll((2, 4), (4,))


def test_all_to_all_units():
    u = pytest.importorskip("brainunit")
    layer = nn.AllToAll(3, 3, w_init=2.0 * u.mS, include_self=False)
    y = layer(jnp.array([1.0, 2.0, 3.0]) * u.mV)
    np.testing.assert_allclose(_np(y.to_decimal(u.uA)), [10.0, 8.0, 6.0], rtol=1e-6)


# --------------------------------------------------------------------------------------------
# OneToOne
# --------------------------------------------------------------------------------------------


def test_one_to_one():
    layer = nn.OneToOne(4, b_init=init.Constant(1.0))
    assert layer.in_size == layer.out_size == (4,)
    w = _np(layer.weight.value["weight"])
    x = _x(3, 4)
    np.testing.assert_allclose(_np(layer(x)), _np(x) * w + 1.0, rtol=1e-6)
    g = _grads(layer, jnp.sum, x)[("weight",)]
    np.testing.assert_allclose(_np(g["weight"]), _np(x).sum(0), rtol=1e-5)
    np.testing.assert_allclose(_np(g["bias"]), np.full(4, 3.0), rtol=1e-6)
    layer = nn.OneToOne((2, 3), w_init=2.0)
    np.testing.assert_allclose(_np(layer(jnp.ones((5, 2, 3)))), np.full((5, 2, 3), 2.0))


def test_one_to_one_errors():
    with pytest.raises(ValueError, match=r"OneToOne: expected an input whose trailing dimensions "
                                         r"are \(4,\), got shape \(3, 5\)"):
        nn.OneToOne(4)(jnp.ones((3, 5)))
    with pytest.raises(ValueError, match=r"OneToOne: bad w_init for the weight of shape \(4,\)"):
        nn.OneToOne(4, w_init=jnp.ones(3))
    with pytest.raises(ValueError, match="OneToOne: in_size must be a positive int, got -2"):
        nn.OneToOne(-2)


# --------------------------------------------------------------------------------------------
# LoRA
# --------------------------------------------------------------------------------------------


def test_lora_standalone():
    layer = nn.LoRA(6, 2, 4)
    p = layer.weight.value
    assert p["lora_a"].shape == (6, 2) and p["lora_b"].shape == (2, 4)
    assert layer.in_size == (6,) and layer.out_size == (4,)
    assert layer.in_features == 6 and layer.out_features == 4
    x = _x(3, 6)
    expected = _np(x) @ _np(p["lora_a"]) @ _np(p["lora_b"])
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-4, atol=1e-5)
    # the low-rank update has rank <= lora_rank
    delta = _np(p["lora_a"]) @ _np(p["lora_b"])
    assert np.linalg.matrix_rank(delta, tol=1e-5) <= 2


def test_lora_wraps_base_module_and_trains_only_its_factors():
    base = nn.Linear(6, 4)
    layer = nn.LoRA(6, 2, 4, base_module=base)
    x = _x(3, 6)
    p = layer.weight.value
    expected = _np(base(x)) + _np(x) @ _np(p["lora_a"]) @ _np(p["lora_b"])
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-4, atol=1e-5)
    # gradients w.r.t. the LoRA factors only (the base weights stay frozen)
    g = brainstate.transform.grad(lambda v: jnp.sum(layer(v)), grad_states=layer.weight)(x)
    a, b = _np(p["lora_a"]), _np(p["lora_b"])
    ones = np.ones((3, 4))
    np.testing.assert_allclose(_np(g["lora_a"]), _np(x).T @ ones @ b.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(g["lora_b"]), (_np(x) @ a).T @ ones, rtol=1e-4, atol=1e-5)
    # both layers' params are found from the LoRA module
    assert set(layer.states(brainstate.ParamState).keys()) == {("weight",),
                                                               ("base_module", "weight")}


def test_lora_kernel_init_and_in_size():
    layer = nn.LoRA(3, 1, 2, kernel_init=init.Constant(1.0), in_size=(5, 3))
    assert layer.in_size == (5, 3) and layer.out_size == (5, 2)
    np.testing.assert_allclose(_np(layer(jnp.ones((5, 3)))), np.full((5, 2), 3.0))
    f = brainstate.transform.jit(lambda v: layer(v))
    np.testing.assert_allclose(_np(f(jnp.ones((5, 3)))), np.full((5, 2), 3.0))


def test_lora_errors():
    with pytest.raises(ValueError, match="LoRA: lora_rank must be a positive int, got 0"):
        nn.LoRA(3, 0, 2)
    with pytest.raises(TypeError, match="LoRA: base_module must be callable"):
        nn.LoRA(3, 1, 2, base_module=5)
    with pytest.raises(ValueError, match=r"LoRA: base_module has out_size=\(4,\), which does not "
                                         r"end in out_features=2"):
        nn.LoRA(3, 1, 2, base_module=nn.Linear(3, 4))
    with pytest.raises(ValueError, match=r"LoRA: in_size=\(5, 4\) must end in in_features=3"):
        nn.LoRA(3, 1, 2, in_size=(5, 4))
    with pytest.raises(ValueError, match=r"LoRA: bad kernel_init .*got the scalar"):
        nn.LoRA(3, 1, 2, kernel_init=1.0)
    with pytest.raises(ValueError, match="LoRA: expected an input whose last dimension is 3"):
        nn.LoRA(3, 1, 2)(jnp.ones(4))


def test_linear_lets_an_input_array_type_with_its_own_matmul_compute_the_product():
    # event arrays (brainevent's BinaryArray, say) implement ``@`` themselves
    calls = []

    class EventArray:
        def __init__(self, value):
            self.value = jnp.asarray(value)
            self.shape = self.value.shape

        def __matmul__(self, w):
            calls.append(w.shape)
            rows = jnp.nonzero(self.value, size=self.value.size, fill_value=-1)[0]
            return jnp.where((rows >= 0)[:, None], w[rows], 0.0).sum(0)

    layer = brainstate.nn.Linear(5, 3, b_init=None)
    spikes = jnp.array([1.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(layer(EventArray(spikes)), layer(spikes), rtol=1e-6)
    assert calls == [(5, 3)]
    with pytest.raises(ValueError, match="last dimension is 5"):
        layer(EventArray(jnp.ones(4)))


# --- weight_standardization -------------------------------------------------------------------


def test_weight_standardization_zero_mean_unit_sum_of_squares_per_output():
    w = jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)), jnp.float32)
    ws = nn.weight_standardization(w)
    np.testing.assert_allclose(ws.sum(axis=0), np.zeros(3), atol=1e-5)
    np.testing.assert_allclose((ws ** 2).sum(axis=0), np.ones(3), rtol=1e-4)
    gain = jnp.asarray([1.0, 2.0, 3.0], jnp.float32)
    np.testing.assert_allclose(nn.weight_standardization(w, gain=gain), ws * gain, rtol=1e-6)
    # out_axis=0: standardised along the other axis
    np.testing.assert_allclose(nn.weight_standardization(w.T, out_axis=0), ws.T, rtol=1e-6)


def test_weight_standardization_refuses_a_scalar_and_a_bad_axis():
    with pytest.raises(ValueError, match="at least one dimension"):
        nn.weight_standardization(jnp.float32(1.0))
    with pytest.raises(ValueError, match="out_axis=2 is not an axis of a weight with 2"):
        nn.weight_standardization(jnp.ones((2, 3)), out_axis=2)
    with pytest.raises(ValueError, match="out_axis=True"):
        nn.weight_standardization(jnp.ones((2, 3)), out_axis=True)
