"""``checkpoint`` / ``remat``: values, gradients and saved residuals against ``jax.checkpoint``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import (
    checkpoint,
    checkpointed_for_loop,
    checkpointed_scan,
    for_loop,
    grad,
    jit,
    remat,
    scan,
    vmap,
)

X = jnp.array([0.3, -1.2, 2.0])
W0 = jnp.array([0.5, 1.5, -0.7])


def _pure(w, x):
    return jnp.sum(jnp.sin(jnp.sin(w * x)) * jnp.cos(x))


def _inner_primitives(closed):
    """Primitive names inside each ``remat`` equation of a jaxpr (recursively)."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name.startswith("remat"):
                found.append([e.primitive.name for e in eqn.params["jaxpr"].eqns])
            for v in eqn.params.values():
                if hasattr(v, "jaxpr") and hasattr(v.jaxpr, "eqns"):
                    walk(v.jaxpr)
                elif hasattr(v, "eqns"):
                    walk(v)

    walk(closed.jaxpr)
    return found


class TestValuesAndGrads:
    def test_alias(self):
        assert remat is checkpoint

    def test_value_matches_pure(self):
        w = brainstate.ParamState(W0)
        f = checkpoint(lambda x: _pure(w.value, x))
        np.testing.assert_allclose(f(X), _pure(W0, X), rtol=1e-6)

    def test_state_grad_matches_jax_checkpoint(self):
        w = brainstate.ParamState(W0)
        f = checkpoint(lambda x: _pure(w.value, x))
        g, v = grad(f, grad_states=w, return_value=True)(X)
        g_ref, v_ref = jax.grad(jax.checkpoint(_pure), has_aux=False)(W0, X), _pure(W0, X)
        np.testing.assert_allclose(g, g_ref, rtol=1e-6)
        np.testing.assert_allclose(v, v_ref, rtol=1e-6)

    def test_arg_and_state_grads_under_jit(self):
        w = brainstate.ParamState(W0)
        f = checkpoint(lambda x: _pure(w.value, x), policy=jax.checkpoint_policies.nothing_saveable)
        gw, gx = jit(grad(f, grad_states=w, argnums=0))(X)
        rw, rx = jax.grad(jax.checkpoint(_pure), argnums=(0, 1))(W0, X)
        np.testing.assert_allclose(gw, rw, rtol=1e-6)
        np.testing.assert_allclose(gx, rx, rtol=1e-6)

    def test_raw_jax_grad_of_read_only_function(self):
        w = brainstate.ParamState(W0)
        f = checkpoint(lambda x: _pure(w.value, x))
        np.testing.assert_allclose(jax.grad(f)(X), jax.grad(lambda x: _pure(W0, x))(X),
                                   rtol=1e-6)

    def test_written_state_is_written_back(self):
        count = brainstate.State(jnp.zeros(()))
        w = brainstate.ParamState(W0)

        def f(x):
            count.value = count.value + 1.0
            return _pure(w.value, x)

        cf = checkpoint(f)
        g = grad(cf, grad_states=w)(X)
        np.testing.assert_allclose(g, jax.grad(_pure)(W0, X), rtol=1e-6)
        assert float(count.value) == 1.0
        jit(lambda x: cf(x))(X)
        assert float(count.value) == 2.0

    def test_static_argnums_control_flow(self):
        calls = []

        @checkpoint(static_argnums=1)
        def f(x, mode):
            calls.append(mode)
            return jnp.sin(x) if mode == "sin" else jnp.cos(x)

        np.testing.assert_allclose(f(X, "sin"), jnp.sin(X), rtol=1e-6)
        np.testing.assert_allclose(f(X, "cos"), jnp.cos(X), rtol=1e-6)
        f(X, "sin")
        assert calls == ["sin", "cos"]  # traced once per static value

    def test_static_argnames(self):
        f = checkpoint(lambda x, *, k: x * k, static_argnames="k")
        np.testing.assert_allclose(f(X, k=3), X * 3, rtol=1e-6)

    def test_module_and_random_state(self):
        brainstate.random.seed(0)
        lin = brainstate.nn.Linear(3, 2)
        y = remat(lin)(jnp.ones((1, 3)))
        np.testing.assert_allclose(y, lin(jnp.ones((1, 3))), rtol=1e-6)

    def test_inside_vmap(self):
        w = brainstate.ParamState(W0)
        f = checkpoint(lambda x: _pure(w.value, x))
        xs = jnp.stack([X, 2 * X])
        np.testing.assert_allclose(vmap(f)(xs), jax.vmap(lambda x: _pure(W0, x))(xs),
                                   rtol=1e-6)

    def test_state_created_inside(self):
        def f(x):
            tmp = brainstate.State(x * 2)
            tmp.value = tmp.value + 1
            return jnp.sum(tmp.value)

        np.testing.assert_allclose(jax.grad(checkpoint(f))(X), 2 * jnp.ones(3), rtol=1e-6)


class TestPolicy:
    def _residual_prims(self, f, *args):
        return _inner_primitives(jax.make_jaxpr(jax.grad(f))(*args))

    @pytest.mark.parametrize("policy", [None, jax.checkpoint_policies.nothing_saveable,
                                        jax.checkpoint_policies.everything_saveable])
    def test_backward_jaxpr_matches_jax_checkpoint(self, policy):
        w = brainstate.ParamState(W0)
        ours = self._residual_prims(checkpoint(lambda x: _pure(w.value, x), policy=policy), X)
        ref = self._residual_prims(jax.checkpoint(lambda x: _pure(W0, x), policy=policy), X)
        assert ours == ref

    def test_nothing_saveable_recomputes_forward(self):
        w = brainstate.ParamState(W0)
        f = checkpoint(lambda x: _pure(w.value, x),
                       policy=jax.checkpoint_policies.nothing_saveable)
        (inner,) = self._residual_prims(f, X)
        assert "sin" in inner  # the forward sin is recomputed in the backward pass

    def test_everything_saveable_saves_forward(self):
        w = brainstate.ParamState(W0)
        f = checkpoint(lambda x: _pure(w.value, x),
                       policy=jax.checkpoint_policies.everything_saveable)
        (inner,) = self._residual_prims(f, X)
        assert "sin" not in inner

    def test_prevent_cse_param(self):
        f = checkpoint(jnp.sin, prevent_cse=False)
        jaxpr = jax.make_jaxpr(jax.grad(lambda x: f(x)))(1.0)
        remats = [e for e in jaxpr.jaxpr.eqns if e.primitive.name.startswith("remat")]
        assert remats and all(e.params["prevent_cse"] is False for e in remats)


class TestCheckpointedLoops:
    """The checkpointed loops agree with plain loops of checkpointed bodies (values, grads)."""

    def test_checkpointed_for_loop(self):
        w = brainstate.ParamState(jnp.array(0.9))
        h = brainstate.State(jnp.array(0.1))

        def step(x):
            h.value = jnp.tanh(w.value * h.value + x)
            return h.value

        def run(loop, body):
            def loss(xs):
                h.value = jnp.array(0.1)
                return jnp.sum(loop(body, xs))
            return grad(loss, grad_states=w, return_value=True)

        xs = jnp.linspace(-1.0, 1.0, 20)
        g1, v1 = run(lambda f, xs: checkpointed_for_loop(f, xs, base=4), step)(xs)
        g2, v2 = run(for_loop, checkpoint(step))(xs)
        np.testing.assert_allclose(v1, v2, rtol=1e-5)
        np.testing.assert_allclose(g1, g2, rtol=1e-5)

    def test_checkpointed_scan(self):
        w = brainstate.ParamState(jnp.array([0.5, -0.3]))

        def body(c, x):
            c = jnp.sin(c * w.value + x)
            return c, jnp.sum(c)

        def loss(loop, f, xs):
            c, ys = loop(f, jnp.zeros(2), xs)
            return jnp.sum(c) + jnp.sum(ys)

        xs = jnp.linspace(0.0, 1.0, 17)
        g1 = grad(lambda xs: loss(lambda f, i, x: checkpointed_scan(f, i, x, base=3), body, xs),
                  grad_states=w)(xs)
        g2 = grad(lambda xs: loss(scan, checkpoint(body, prevent_cse=False), xs),
                  grad_states=w)(xs)
        np.testing.assert_allclose(g1, g2, rtol=1e-5)


class TestErrors:
    def test_not_callable(self):
        with pytest.raises(TypeError, match="checkpoint needs a callable, got int"):
            checkpoint(3)

    def test_negative_static_argnums(self):
        with pytest.raises(ValueError, match="negative static_argnums are not supported"):
            checkpoint(lambda x, n: x * n, static_argnums=-1)

    def test_non_int_static_argnums(self):
        with pytest.raises(TypeError, match="static_argnums must contain ints, got 'a'"):
            checkpoint(lambda x: x, static_argnums=("a",))
        with pytest.raises(TypeError, match="must be an int or a sequence of ints"):
            checkpoint(lambda x: x, static_argnums=1.5)

    def test_bad_policy(self):
        with pytest.raises(TypeError, match="policy must be a callable"):
            checkpoint(lambda x: x, policy="dots")

    def test_static_argnum_out_of_range(self):
        f = checkpoint(lambda x: x, static_argnums=2)
        with pytest.raises(ValueError, match="static_argnums contains index 2"):
            f(1.0)

    def test_state_as_argument(self):
        s = brainstate.State(jnp.zeros(()))
        with pytest.raises(ValueError, match="cannot be an instance of State"):
            checkpoint(lambda x: x)(s)
