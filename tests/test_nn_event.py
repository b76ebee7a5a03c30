"""Event-driven projections: event vs dense agreement, gradients, batching, overflow, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import for_loop, jit

nn = brainstate.nn
N_PRE, N_POST, K = 60, 45, 7


def _dense_matrix(layer) -> np.ndarray:
    """The ``(n_pre, n_post)`` matrix of a fixed-number layer, built by explicit loops."""
    idx = np.asarray(layer.indices)
    rows = np.arange(idx.shape[0]) if layer.row_ids is None else np.asarray(layer.row_ids)
    w = np.asarray(layer.weight.value, np.float64)
    w = np.broadcast_to(w.reshape(-1) if w.ndim else w, (idx.size,)).reshape(idx.shape)
    mat = np.zeros((layer.n_pre, layer.n_post))
    for r in range(idx.shape[0]):
        for k in range(idx.shape[1]):
            if layer.efferent_target == "post":
                mat[rows[r], idx[r, k]] += w[r, k]
            else:
                mat[idx[r, k], rows[r]] += w[r, k]
    return mat


def _pair(target="post", ratio=1.0, homo=True, max_events=6, **kw):
    weight = 0.6 if homo else nn.init.Normal(seed=5)
    dense = nn.FixedNumConn(N_PRE, N_POST, K, weight, efferent_target=target,
                            afferent_ratio=ratio, seed=1, **kw)
    event = nn.EventFixedNumConn(N_PRE, N_POST, K, dense.weight.value, efferent_target=target,
                                 afferent_ratio=ratio, seed=1, max_events=max_events, **kw)
    return dense, event


def _spikes(p, shape=(N_PRE,), seed=3):
    return jax.random.uniform(jax.random.PRNGKey(seed), shape) < p


CASES = [(t, r, h) for t in ("post", "pre") for r in (1.0, 0.6) for h in (True, False)]


@pytest.mark.parametrize("target,ratio,homo", CASES)
def test_event_matches_dense_and_matrix(target, ratio, homo):
    dense, event = _pair(target, ratio, homo)
    for p in (0.05, 0.6):  # event path, and the overflow (dense) path
        x = _spikes(p)
        assert (int(x.sum()) > event.max_events) == (p > 0.5)
        expect = np.asarray(x, np.float64) @ _dense_matrix(dense)
        np.testing.assert_allclose(dense(x), expect, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(event(x), expect, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(event(x.astype(jnp.float32)), expect, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("target", ["post", "pre"])
def test_homogeneous_weight_is_bit_identical_to_dense_gather(target):
    dense, event = _pair(target, max_events=60)
    for p in (0.05, 0.3, 1.0):  # event path, and all spiking
        x = _spikes(p)
        assert bool((event(x) == dense(x)).all())
    pre_layer = nn.EventFixedNumConn(N_PRE, N_POST, K, 0.6, efferent_target="pre", seed=2)
    x = _spikes(0.1)
    oracle = 0.6 * x.astype(jnp.float32)[pre_layer.indices].sum(1)
    assert bool((pre_layer(x) == oracle).all())


@pytest.mark.parametrize("target", ["post", "pre"])
def test_overflow_all_spiking_is_exact(target):
    dense, event = _pair(target, homo=False, max_events=4)
    x = jnp.ones(N_PRE, bool)
    np.testing.assert_allclose(event(x), x.astype(jnp.float32) @ _dense_matrix(dense),
                               rtol=1e-5, atol=1e-5)


def test_float_values_with_float_as_event_false():
    dense = nn.FixedNumConn(N_PRE, N_POST, K, nn.init.Normal(seed=1), seed=4)
    event = nn.EventFixedNumConn(N_PRE, N_POST, K, dense.weight.value, seed=4,
                                 float_as_event=False, max_events=10)
    as_ev = nn.EventFixedNumConn(N_PRE, N_POST, K, dense.weight.value, seed=4, max_events=10)
    x = _spikes(0.1).astype(jnp.float32) * 0.5
    np.testing.assert_allclose(event(x), dense(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(as_ev(x), dense(x != 0), rtol=1e-5, atol=1e-6)


# the event path everywhere, the overflow (dense) path with afferent_ratio=1
GRAD_CASES = [c + (0.05,) for c in CASES] + [c + (0.6,) for c in CASES if c[1] == 1.0]


@pytest.mark.parametrize("target,ratio,homo,p", GRAD_CASES)
def test_gradients_match_dense(target, ratio, homo, p):
    dense, event = _pair(target, ratio, homo)
    x = _spikes(p).astype(jnp.float32)
    proj = jnp.arange(N_POST, dtype=jnp.float32)

    def loss(layer):
        def f(x, w):
            layer.weight.value = w
            return (layer(x) * proj).sum()
        return brainstate.transform.grad(f, argnums=(0, 1))

    gd = loss(dense)(x, dense.weight.value)
    ge = loss(event)(x, event.weight.value)
    np.testing.assert_allclose(ge[0], gd[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ge[1], gd[1], rtol=1e-5, atol=1e-4)
    # d/dx is W @ g at every input, spiking or not
    np.testing.assert_allclose(ge[0], _dense_matrix(dense) @ np.asarray(proj), rtol=1e-5,
                               atol=1e-4)


def test_weight_gradient_uses_events_for_float_spikes():
    dense, event = _pair(homo=False)
    x = _spikes(0.05).astype(jnp.float32) * 0.5  # events of size 1

    def f(layer, x):
        def g(w):
            layer.weight.value = w
            return layer(x).sum()
        return brainstate.transform.grad(g)(layer.weight.value)

    np.testing.assert_allclose(f(event, x), f(dense, (x != 0).astype(jnp.float32)), rtol=1e-6)


@pytest.mark.parametrize("target", ["post", "pre"])
def test_batched_input_jit_and_vmap(target):
    dense, event = _pair(target, homo=False)
    xs = _spikes(0.05, (4, N_PRE))
    xs = xs.at[2].set(True)  # one sample overflows
    expect = jnp.stack([dense(x) for x in xs])
    np.testing.assert_allclose(event(xs), expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jit(event)(xs), expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(brainstate.transform.vmap(event)(xs), expect, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(event(xs.reshape(2, 2, N_PRE)).reshape(4, N_POST), expect,
                               rtol=1e-5, atol=1e-5)


def test_for_loop_under_jit_matches_dense():
    dense, event = _pair("pre")
    xs = _spikes(0.05, (20, N_PRE))

    def run(layer):
        g = brainstate.HiddenState(jnp.zeros(N_POST, jnp.float32))

        def step(x):
            g.value = g.value * 0.9 + layer(x)
            return g.value

        return jit(lambda xs: for_loop(step, xs))(xs)

    assert bool((run(event) == run(dense)).all())  # homogeneous: exact counts


def test_seed_reproducibility():
    a = nn.EventFixedProb(30, 40, 0.2, 1.0, seed=7, allow_multi_conn=False)
    b = nn.EventFixedProb(30, 40, 0.2, 1.0, seed=7, allow_multi_conn=False)
    c = nn.EventFixedProb(30, 40, 0.2, 1.0, seed=8, allow_multi_conn=False)
    assert a.conn_num == 8
    assert bool((a.indices == b.indices).all()) and not bool((a.indices == c.indices).all())
    brainstate.random.seed(3)
    d = nn.FixedNumConn(30, 40, 5, 1.0)
    brainstate.random.seed(3)
    e = nn.FixedNumConn(30, 40, 5, 1.0)
    assert bool((d.indices == e.indices).all())


@pytest.mark.parametrize("k,n", [(8, 40), (30, 40), (40, 40)])
def test_without_replacement_rows_are_distinct(k, n):
    layer = nn.FixedNumConn(25, n, k, 1.0, allow_multi_conn=False, seed=0)
    idx = np.asarray(layer.indices)
    assert idx.shape == (25, k) and idx.min() >= 0 and idx.max() < n
    assert all(len(set(row)) == k for row in idx.tolist())


def test_zero_connections_give_zeros():
    layer = nn.EventFixedNumConn(10, 20, 0.01, 0.5, seed=0)
    assert layer.conn_num == 0
    np.testing.assert_array_equal(layer(jnp.ones(10, bool)), np.zeros(20))


def test_units():
    bu = pytest.importorskip("brainunit")
    layer = nn.EventFixedNumConn(20, 10, 3, 0.5 * bu.mS, seed=0)
    y = layer(_spikes(0.2, (20,)))
    assert isinstance(y, bu.Quantity) and y.unit == bu.mS
    dense = nn.FixedNumConn(20, 10, 3, 0.5 * bu.mS, seed=0)
    np.testing.assert_allclose(y.mantissa, dense(_spikes(0.2, (20,))).mantissa)
    lin = nn.EventLinear(20, 10, jnp.ones((20, 10)) * bu.mV)
    assert lin(_spikes(0.2, (20,))).unit == bu.mV


# -- EventLinear ------------------------------------------------------------------------------


@pytest.mark.parametrize("homo", [True, False])
@pytest.mark.parametrize("float_as_event", [True, False])
@pytest.mark.parametrize("p", [0.05, 0.8])
def test_event_linear_matches_matmul(homo, float_as_event, p):
    w = 1.5 if homo else nn.init.Normal(seed=2)
    layer = nn.EventLinear(N_PRE, N_POST, w, float_as_event=float_as_event, max_events=8)
    x = _spikes(p).astype(jnp.float32) * 0.5
    events = (x != 0).astype(jnp.float32) if float_as_event else x
    wm = jnp.broadcast_to(layer.weight.value, (N_PRE, N_POST))
    np.testing.assert_allclose(layer(x), events @ wm, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer(x != 0), (x != 0).astype(jnp.float32) @ wm, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(layer(jnp.stack([x, x])), jnp.stack([events @ wm] * 2),
                               rtol=1e-5, atol=1e-5)

    def f(x, w):
        layer.weight.value = w
        return (layer(x) * jnp.arange(N_POST, dtype=jnp.float32)).sum()

    gx, gw = brainstate.transform.grad(f, argnums=(0, 1))(x, layer.weight.value)
    gy = jnp.arange(N_POST, dtype=jnp.float32)
    np.testing.assert_allclose(gx, wm @ gy, rtol=1e-5, atol=1e-4)
    expect_w = jnp.outer(events, gy)
    np.testing.assert_allclose(gw, expect_w.sum() if homo else expect_w, rtol=1e-5, atol=1e-4)


# -- errors -----------------------------------------------------------------------------------


def test_errors():
    with pytest.raises(ValueError, match="FixedNumConn: in_size must be an int >= 1, got 0"):
        nn.FixedNumConn(0, 10, 2, 1.0, seed=0)
    with pytest.raises(ValueError, match="EventFixedNumConn: out_size"):
        nn.EventFixedNumConn(10, "a", 2, 1.0, seed=0)
    with pytest.raises(ValueError, match="efferent_target must be 'post' or 'pre'"):
        nn.FixedNumConn(10, 10, 2, 1.0, efferent_target="both", seed=0)
    with pytest.raises(ValueError, match="conn_init must be 'vmap' or 'for_loop'"):
        nn.FixedNumConn(10, 10, 2, 1.0, conn_init="scan", seed=0)
    with pytest.raises(ValueError, match="afferent_ratio must be a number in"):
        nn.FixedNumConn(10, 10, 2, 1.0, afferent_ratio=1.5, seed=0)
    with pytest.raises(ValueError, match="a float conn_num is a probability"):
        nn.FixedNumConn(10, 10, 1.5, 1.0, seed=0)
    with pytest.raises(TypeError, match="conn_num must be an int or a float"):
        nn.FixedNumConn(10, 10, "3", 1.0, seed=0)
    with pytest.raises(ValueError, match="conn_num must be an int >= 0"):
        nn.FixedNumConn(10, 10, -1, 1.0, seed=0)
    with pytest.raises(ValueError, match="impossible with allow_multi_conn=False"):
        nn.FixedNumConn(10, 10, 11, 1.0, allow_multi_conn=False, seed=0)
    with pytest.raises(TypeError, match="seed must be None or an int"):
        nn.FixedNumConn(10, 10, 2, 1.0, seed=1.5)
    with pytest.raises(ValueError, match=r"conn_weight must be a scalar or of shape \(10, 2\)"):
        nn.FixedNumConn(10, 10, 2, jnp.ones(2), seed=0)
    with pytest.raises(ValueError, match="FixedNumConn: bad conn_weight"):
        nn.FixedNumConn(10, 10, 2, jnp.ones((3, 3)), seed=0)
    with pytest.raises(ValueError, match="max_events must be an int >= 1"):
        nn.EventFixedNumConn(10, 10, 2, 1.0, seed=0, max_events=0)
    with pytest.raises(TypeError, match="max_events must be an int"):
        nn.EventLinear(10, 10, 1.0, max_events=2.5)
    with pytest.raises(ValueError, match=r"EventLinear: weight must be a scalar or of shape"):
        nn.EventLinear(10, 5, jnp.ones(5))
    with pytest.raises(ValueError, match="EventLinear: bad weight"):
        nn.EventLinear(10, 5, jnp.ones((3, 3)))
    layer = nn.EventFixedNumConn(10, 10, 2, 1.0, seed=0)
    with pytest.raises(ValueError, match=r"EventFixedNumConn: expected an input whose last "
                                         r"dimension is 10"):
        layer(jnp.ones(9))
    with pytest.raises(ValueError, match="EventLinear: expected an input whose last"):
        nn.EventLinear(10, 5, 1.0)(jnp.ones(()))


def test_seed_none_inside_jit_is_refused():
    with pytest.raises(ValueError, match="with seed=None the connectivity is drawn from"):
        jit(lambda: nn.FixedNumConn(10, 10, 2, 1.0).indices)()
