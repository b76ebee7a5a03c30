"""Training with constrained parameters: jit + grad over ``states(ParamState)``.

A small leaky-integrator model with a positive rate (``SoftplusT``), a mixing coefficient in
(0, 1) (``SigmoidT``), an L2 prior on the input weights and a ``Const`` gain is fitted to
targets made by a known parameter set. The loss falls, the constraints hold at every step and
the ``Const`` never changes. Also: the compiled loop reading ``param.value()`` is the raw JAX
program op for op (with and without ``param_precompute``).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import ParamState
from brainstate.nn import Const, L2Reg, Module, Param, SigmoidT, SoftplusT
from brainstate.transform import for_loop, grad, jit

F32 = jnp.float32
T_STEPS = 20


class Integrator(Module):
    """``h <- mix * h + (1 - mix) * tanh(w * x) * gain / rate``; reads out ``sum(h)`` per step."""

    def __init__(self, rate=2.0, mix=0.5, w=(0.1, -0.1, 0.2)):
        super().__init__()
        self.rate = Param(jnp.asarray(rate, F32), t=SoftplusT(0.0))
        self.mix = Param(jnp.asarray(mix, F32), t=SigmoidT(0.0, 1.0))
        self.w = Param(jnp.asarray(w, F32), reg=L2Reg(1e-3))
        self.gain = Const(jnp.asarray([1.0, 2.0, 3.0], F32))

    def run(self, xs):
        h = jnp.zeros(3, F32)
        rate, mix, w, gain = self.rate.value(), self.mix.value(), self.w.value(), self.gain.value()
        outs = []
        for t in range(xs.shape[0]):
            h = mix * h + (1.0 - mix) * jnp.tanh(w * xs[t]) * gain / rate
            outs.append(jnp.sum(h))
        return jnp.stack(outs)


def make_data():
    xs = jnp.sin(jnp.linspace(0.0, 6.0, T_STEPS * 3, dtype=F32)).reshape(T_STEPS, 3) * 2.0
    teacher = Integrator(rate=0.7, mix=0.85, w=(0.9, -0.6, 0.4))
    return xs, teacher.run(xs)


@pytest.mark.parametrize("precompute", [False, True], ids=["plain", "param_precompute"])
def test_training_loss_falls_and_constraints_hold(precompute):
    xs, ys = make_data()
    model = Integrator()
    params = model.states(ParamState)
    assert {p[0] for p in params} == {"rate", "mix", "w"}  # Const is not trainable
    gain_before = model.gain.val

    def loss_fn():
        if precompute:
            with model.param_precompute():
                pred = model.run(xs)
                return jnp.mean((pred - ys) ** 2) + model.reg_loss()
        pred = model.run(xs)
        return jnp.mean((pred - ys) ** 2) + model.reg_loss()

    grad_fn = grad(loss_fn, grad_states=params, return_value=True)

    @jit
    def train_step(lr):
        grads, loss = grad_fn()
        for k, st in params.items():
            st.value = st.value - lr * grads[k]
        return loss

    losses = []
    for _ in range(150):
        losses.append(float(train_step(jnp.float32(0.1))))
        rate, mix = float(model.rate.value()), float(model.mix.value())
        assert rate > 0.0 and 0.0 < mix < 1.0
        assert model.gain.val is gain_before
        assert not any(p.cache_stats["valid"] for p in model.param_modules())
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])
    np.testing.assert_array_equal(model.gain.value(), [1.0, 2.0, 3.0])
    # The trained model really moved towards the teacher.
    assert abs(float(model.mix.value()) - 0.85) < abs(0.5 - 0.85)


@pytest.mark.parametrize("theta", [-1e30, -1e4, -50.0, 0.0, 50.0, 1e4, 1e30])
def test_constraints_hold_wherever_the_optimizer_moves_val(theta):
    model = Integrator()
    model.rate.val.value = jnp.asarray(theta, F32)
    model.mix.val.value = jnp.asarray(theta, F32)
    rate, mix = float(model.rate.value()), float(model.mix.value())
    assert 0.0 < rate < np.inf and 0.0 < mix < 1.0


def test_reg_loss_gradient_reaches_only_regularized_params():
    model = Integrator()
    params = model.states(ParamState)
    g = grad(lambda: model.reg_loss(), grad_states=params, check_states=False)()
    np.testing.assert_allclose(g[("w", "val")], 2e-3 * np.array([0.1, -0.1, 0.2]), rtol=1e-5)
    assert float(g[("rate", "val")]) == 0.0 and float(g[("mix", "val")]) == 0.0


# --- compiled program: no work added by Param ------------------------------------------------------

@pytest.mark.parametrize("precompute", [False, True], ids=["plain", "param_precompute"])
def test_compiled_loop_matches_raw_jax(precompute, hlo_op_counts):
    t = SoftplusT(0.0)
    m = Module()
    m.p = Param(jnp.full((8,), 0.5, F32), t=t)
    m.h = brainstate.ShortTermState(jnp.zeros(8, F32))

    def step(x):
        m.h.value = m.h.value * 0.9 + m.p.value() * x
        return jnp.sum(m.h.value)

    def run(xs):
        if precompute:
            with m.param_precompute():
                return for_loop(step, xs)
        return for_loop(step, xs)

    def raw(theta, h0, xs):
        def f(h, x):
            h = h * 0.9 + t.forward(theta) * x
            return h, jnp.sum(h)

        h, ys = jax.lax.scan(f, h0, xs)
        return ys, h

    xs = jnp.ones((100, 8), F32)
    ours = jit(run).lower(xs).compile().as_text()
    ref = jax.jit(raw).lower(m.p.val.value, m.h.value, xs).compile().as_text()
    assert hlo_op_counts(ours) == hlo_op_counts(ref)
    assert not m.p.cache_stats["valid"]
