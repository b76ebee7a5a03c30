"""Recurrent cells: shapes, one step against the written equations, loops, gradients, resets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate

nn = brainstate.nn
CELLS = [nn.ValinaRNNCell, nn.GRUCell, nn.MGUCell, nn.LSTMCell, nn.URLSTMCell]
N_IN, N_OUT = 3, 4


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def lin(layer, x):
    p = {k: np.asarray(v, np.float64) for k, v in layer.weight.value.items()}
    y = x @ p["weight"]
    return y + p["bias"] if "bias" in p else y


def make(cls, **kw):
    brainstate.random.seed(0)
    # random initial states so that every term of the equations matters
    return cls(N_IN, N_OUT, state_init=nn.init.Normal(0.5), **kw)


def reference_step(cell, x, h, c):
    """One step of each cell, written out in numpy (float64)."""
    xh = np.concatenate([x, h], -1)
    if isinstance(cell, nn.ValinaRNNCell):
        return np.maximum(lin(cell.W, xh), 0), None
    if isinstance(cell, nn.GRUCell):
        rz = sig(lin(cell.Wrz, xh))
        r, z = rz[..., :N_OUT], rz[..., N_OUT:]
        cand = np.tanh(lin(cell.Wh, np.concatenate([x, r * h], -1)))
        return (1 - z) * h + z * cand, None
    if isinstance(cell, nn.MGUCell):
        f = sig(lin(cell.Wf, xh))
        cand = np.tanh(lin(cell.Wh, np.concatenate([x, f * h], -1)))
        return (1 - f) * h + f * cand, None
    gates = lin(cell.W, xh)
    q = [gates[..., k * N_OUT:(k + 1) * N_OUT] for k in range(4)]
    if isinstance(cell, nn.LSTMCell):
        i, g, f, o = q
        new_c = sig(f + 1) * c + sig(i) * np.tanh(g)
        return sig(o) * np.tanh(new_c), new_c
    f, r, u, o = q
    b = np.asarray(cell.bias.value, np.float64)
    fg, rg = sig(f + b), sig(r - b)
    g = 2 * rg * fg + (1 - 2 * rg) * fg ** 2
    new_c = g * c + (1 - g) * np.tanh(u)
    return sig(o) * np.tanh(new_c), new_c


def hidden(cell):
    h = np.asarray(cell.h.value, np.float64)
    c = np.asarray(cell.c.value, np.float64) if hasattr(cell, "c") else None
    return h, c


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("batch", [None, 2])
def test_one_step_matches_the_equations(cls, batch):
    cell = make(cls)
    nn.init_all_states(cell, batch_size=batch)
    shape = (N_IN,) if batch is None else (batch, N_IN)
    x = brainstate.random.normal(size=shape)
    h0, c0 = hidden(cell)
    assert h0.shape == shape[:-1] + (N_OUT,)
    for st in cell.states(brainstate.HiddenState).values():
        assert st.value.shape == shape[:-1] + (N_OUT,)
    out = cell(x)
    want_h, want_c = reference_step(cell, np.asarray(x, np.float64), h0, c0)
    assert out.shape == shape[:-1] + (N_OUT,) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, want_h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cell.h.value, want_h, rtol=1e-4, atol=1e-5)
    if want_c is not None:
        np.testing.assert_allclose(cell.c.value, want_c, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", CELLS)
def test_for_loop_inside_jit_matches_python_steps(cls):
    cell = make(cls)
    cell.init_state(batch_size=2)
    start = {k: v.value for k, v in cell.states(brainstate.HiddenState).items()}
    xs = brainstate.random.normal(size=(6, 2, N_IN))

    @brainstate.transform.jit
    def run(xs):
        return brainstate.transform.for_loop(cell, xs)

    ys = run(xs)
    assert ys.shape == (6, 2, N_OUT)
    end = cell.h.value
    for k, st in cell.states(brainstate.HiddenState).items():
        st.value = start[k]
    steps = jnp.stack([cell(x) for x in xs])
    np.testing.assert_allclose(ys, steps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(end, cell.h.value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", CELLS)
def test_gradients_reach_every_weight(cls):
    cell = make(cls)
    cell.init_state()
    params = cell.states(brainstate.ParamState)
    xs = brainstate.random.normal(size=(4, N_IN))

    def loss():
        return jnp.sum(brainstate.transform.for_loop(cell, xs) ** 2)

    grads = brainstate.transform.grad(loss, params)()
    assert set(grads) == set(params)
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(leaf))
        assert np.any(leaf != 0)


@pytest.mark.parametrize("cls", CELLS)
def test_reset_restores_the_initial_state(cls):
    cell = cls(N_IN, N_OUT)
    cell.init_state(batch_size=3)
    cell(jnp.ones((3, N_IN)))
    assert np.any(np.asarray(cell.h.value) != 0)
    cell.reset_state(batch_size=3)
    for st in cell.states(brainstate.HiddenState).values():
        np.testing.assert_array_equal(st.value, np.zeros((3, N_OUT)))
    nn.reset_all_states(cell)  # the collective form, unbatched: a new batch size re-binds
    for st in cell.states(brainstate.HiddenState).values():
        np.testing.assert_array_equal(st.value, np.zeros(N_OUT))


def test_layouts_and_custom_activation():
    gru = nn.GRUCell(N_IN, N_OUT)
    assert gru.Wrz.weight.value["weight"].shape == (N_IN + N_OUT, 2 * N_OUT)
    assert gru.Wh.weight.value["weight"].shape == (N_IN + N_OUT, N_OUT)
    lstm = nn.LSTMCell(N_IN, N_OUT)
    assert lstm.W.weight.value["weight"].shape == (N_IN + N_OUT, 4 * N_OUT)
    ur = nn.URLSTMCell(N_IN, N_OUT)
    assert "bias" not in ur.W.weight.value and ur.bias.value.shape == (N_OUT,)
    u = jax.nn.sigmoid(ur.bias.value)  # logit of Uniform(1/n, 1 - 1/n)
    assert np.all((u >= 1 / N_OUT - 1e-6) & (u <= 1 - 1 / N_OUT + 1e-6))
    np.testing.assert_array_equal(nn.URLSTMCell(2, 1).bias.value, [0.0])
    assert nn.ValinaRNNCell(2, 2).in_size == (2,) and nn.ValinaRNNCell(2, 2).out_size == (2,)
    cell = nn.ValinaRNNCell(2, 2, activation="tanh", w_init=nn.init.Constant(1.0))
    cell.init_state()
    np.testing.assert_allclose(cell(jnp.ones(2)), np.tanh([2.0, 2.0]), rtol=1e-6)
    ident = nn.MGUCell(2, 2, activation=lambda v: v)
    assert ident.activation(3) == 3


def test_integer_input_is_cast():
    cell = nn.LSTMCell(2, 3)
    cell.init_state()
    assert cell(jnp.ones(2, jnp.int32)).dtype == jnp.float32


@pytest.mark.parametrize("cls", CELLS)
def test_update_before_init_names_the_fix(cls):
    cell = cls(N_IN, N_OUT)
    with pytest.raises(RuntimeError, match=rf"{cls.__name__} has no hidden state 'h' yet.*"
                                           r"brainstate.nn.init_all_states\(cell\)"):
        cell(jnp.ones(N_IN))
    with pytest.raises(RuntimeError, match="has no hidden state"):
        cell.reset_state()


def test_bad_arguments():
    with pytest.raises(ValueError, match="GRUCell: num_in must be a positive int, got 0"):
        nn.GRUCell(0, 2)
    with pytest.raises(ValueError, match="LSTMCell: num_out must be a positive int, got 2.5"):
        nn.LSTMCell(2, 2.5)
    with pytest.raises(ValueError, match="ValinaRNNCell: unknown activation 'nope'"):
        nn.ValinaRNNCell(2, 2, activation="nope")
    with pytest.raises(TypeError, match="MGUCell: activation must be a str or a callable, got "
                                        "int"):
        nn.MGUCell(2, 2, activation=3)
    cell = nn.GRUCell(3, 2)
    with pytest.raises(ValueError, match="GRUCell: batch_size must be a positive int or None"):
        cell.init_state(batch_size=0)
    cell.init_state(batch_size=4)
    with pytest.raises(ValueError, match=r"last dimension must be num_in=3, got an input of "
                                         r"shape \(4, 5\)"):
        cell(jnp.ones((4, 5)))
    with pytest.raises(ValueError, match=r"input of shape \(2, 3\) does not match the hidden "
                                         r"state of shape \(4, 2\).*init_state\(batch_size"):
        cell(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="last dimension must be num_in=3"):
        cell(jnp.asarray(1.0))
