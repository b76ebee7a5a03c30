"""``map``: sequential and chunked mapping against ``jax.lax.map``, states, composition, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import for_loop, grad, jit, map as bmap, vmap

XS = jnp.arange(14.0, dtype=jnp.float32).reshape(7, 2)


def _pure(x):
    return {"s": jnp.sin(x).sum(), "v": x * 2.0 + 1.0}


def _assert_tree_close(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-6), a, b)


class TestAgainstLaxMap:
    @pytest.mark.parametrize("batch_size", [None, 1, 2, 3, 7, 10])
    def test_pure_function(self, batch_size):
        _assert_tree_close(bmap(_pure, XS, batch_size=batch_size), jax.lax.map(_pure, XS))

    @pytest.mark.parametrize("batch_size", [None, 3])
    def test_several_pytree_inputs(self, batch_size):
        ys = {"a": jnp.ones((7, 3)), "b": jnp.arange(7, dtype=jnp.int32)}

        def f(x, y):
            return x.sum() + y["a"].sum() * y["b"].astype(jnp.float32)

        ref = jax.lax.map(lambda xy: f(*xy), (XS, ys))
        np.testing.assert_allclose(bmap(f, XS, ys, batch_size=batch_size), ref, rtol=1e-6)

    def test_batched_runs_chunks_under_vmap_and_a_loop(self):
        # Seven lanes in chunks of 3: a loop of two steps over [2, 3, 2] (three lanes side by
        # side per step), then the last lane as one more vmapped call outside the loop.
        eqns = jax.make_jaxpr(lambda x: bmap(_pure, x, batch_size=3))(XS).jaxpr.eqns
        (loop,) = [e for e in eqns if e.primitive.name == "scan"]
        assert loop.params["length"] == 2
        assert [v.aval.shape for v in loop.invars] == [(2, 3, 2)]
        assert [v.aval.shape for v in loop.params["jaxpr"].jaxpr.invars] == [(3, 2)]
        tail = [e for e in eqns if e.primitive.name not in ("scan", "slice", "reshape",
                                                             "concatenate")]
        assert [[v.aval.shape for v in e.invars] for e in tail] == [[(1, 2)]]

    @pytest.mark.parametrize("batch_size, n", [(None, 7), (3, 7), (7, 7), (2, 0)])
    def test_traced_once_per_call(self, batch_size, n):
        # The refusal of state writes is checked inside the loop's own trace, not by an
        # extra one.
        calls = []
        w = brainstate.ParamState(jnp.asarray([1.0, 2.0]))

        def f(x):
            calls.append(1)
            return x @ w.value

        bmap(f, XS[:n], batch_size=batch_size)
        assert len(calls) == 1

    def test_empty_leading_axis(self):
        for k in (None, 2):
            out = bmap(_pure, jnp.zeros((0, 2)), batch_size=k)
            assert out["v"].shape == (0, 2) and out["s"].shape == (0,)


class TestStates:
    def test_sequential_threads_written_state_lane_by_lane(self):
        acc = brainstate.ShortTermState(jnp.zeros(2))

        def f(x):
            acc.value = acc.value + x
            return acc.value.sum()

        out = bmap(f, XS)
        np.testing.assert_allclose(out, np.cumsum(np.asarray(XS), axis=0).sum(1))
        np.testing.assert_allclose(acc.value, np.asarray(XS).sum(0))

    @pytest.mark.parametrize("batch_size", [None, 3])
    def test_read_states_are_constants(self, batch_size):
        w = brainstate.ParamState(jnp.asarray([2.0, -1.0]))
        out = bmap(lambda x: x @ w.value, XS, batch_size=batch_size)
        np.testing.assert_allclose(out, np.asarray(XS) @ np.asarray([2.0, -1.0]))

    def test_batched_refuses_writes_and_names_the_state(self):
        acc = brainstate.ShortTermState(jnp.zeros(()), name="acc")

        def f(x):
            acc.value = acc.value + x.sum()
            return x

        with pytest.raises(ValueError, match=r"batch_size=.*writes a State: it wrote .*acc"):
            bmap(f, XS, batch_size=2)
        assert float(acc.value) == 0.0

    def test_batched_refuses_writes_on_empty_input(self):
        acc = brainstate.ShortTermState(jnp.zeros(()))

        def f(x):
            acc.value = acc.value + x.sum()
            return x

        with pytest.raises(ValueError, match="writes a State"):
            bmap(f, jnp.zeros((0, 2)), batch_size=2)

    @pytest.mark.parametrize("k, n", [(3, 6), (2, 5), (8, 5)])
    def test_batched_random_draws_distinct_and_reproducible(self, k, n):
        def f(x):
            return x + brainstate.random.normal()

        brainstate.random.seed(7)
        a = bmap(f, jnp.zeros(n), batch_size=k)
        key_after = brainstate.random.DEFAULT.value
        brainstate.random.seed(7)
        b = bmap(f, jnp.zeros(n), batch_size=k)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(key_after, brainstate.random.DEFAULT.value)
        assert len(set(np.asarray(a).round(6).tolist())) == n
        brainstate.random.seed(8)
        assert not np.allclose(bmap(f, jnp.zeros(n), batch_size=k), a)


class TestComposition:
    @pytest.mark.parametrize("batch_size", [None, 3])
    def test_inside_jit_with_states(self, batch_size):
        w = brainstate.ParamState(jnp.asarray(3.0))
        run = jit(lambda xs: bmap(lambda x: x * w.value, xs, batch_size=batch_size))
        np.testing.assert_allclose(run(XS), np.asarray(XS) * 3.0)
        w.value = jnp.asarray(4.0)
        np.testing.assert_allclose(run(XS), np.asarray(XS) * 4.0)

    @pytest.mark.parametrize("batch_size", [None, 3])
    def test_grad_matches_raw_jax(self, batch_size):
        w = brainstate.ParamState(jnp.asarray([0.5, -1.5]))

        def loss():
            return bmap(lambda x: jnp.tanh(x @ w.value), XS, batch_size=batch_size).sum()

        g = grad(loss, grad_states=w)()
        ref = jax.grad(lambda v: jax.lax.map(lambda x: jnp.tanh(x @ v), XS).sum())(w.value)
        np.testing.assert_allclose(g, ref, rtol=1e-5)

    @pytest.mark.parametrize("batch_size", [None, 2])
    def test_under_vmap(self, batch_size):
        scales = jnp.arange(3.0)
        out = vmap(lambda s: bmap(lambda x: (x * s).sum(), XS, batch_size=batch_size))(scales)
        np.testing.assert_allclose(out, np.outer(np.arange(3.0), np.asarray(XS).sum(1)))

    def test_inside_for_loop_writes_carried(self):
        acc = brainstate.State(jnp.zeros(()))

        def step(x):
            def lane(v):
                acc.value = acc.value + v.sum()
                return acc.value
            return bmap(lane, x)[-1]

        out = for_loop(step, jnp.stack([XS, XS]))
        total = float(np.asarray(XS).sum())
        np.testing.assert_allclose(out, [total, 2 * total], rtol=1e-6)

    def test_new_states_inside_are_not_outputs(self):
        def f(x):
            tmp = brainstate.State(x)
            tmp.value = tmp.value * 2.0
            return tmp.value

        np.testing.assert_allclose(bmap(f, XS, batch_size=3), np.asarray(XS) * 2.0)


class TestErrors:
    def test_not_callable(self):
        with pytest.raises(TypeError, match="map: f must be callable"):
            bmap(3, XS)

    @pytest.mark.parametrize("bad", [0, -2])
    def test_batch_size_not_positive(self, bad):
        with pytest.raises(ValueError, match=f"batch_size must be a positive int, got {bad}"):
            bmap(_pure, XS, batch_size=bad)

    @pytest.mark.parametrize("bad", [2.0, True, "2"])
    def test_batch_size_not_int(self, bad):
        with pytest.raises(TypeError, match="batch_size must be a positive int or None"):
            bmap(_pure, XS, batch_size=bad)

    def test_no_inputs(self):
        with pytest.raises(ValueError, match="at least one array.*no leaves"):
            bmap(lambda: 1.0)

    def test_scalar_input(self):
        with pytest.raises(ValueError, match=r"xs\[1\]\['b'\]: it is 0-d"):
            bmap(lambda a, b: a, XS, {"b": jnp.asarray(1.0)})

    def test_lengths_differ(self):
        with pytest.raises(ValueError, match=r"xs\[0\] has 7, xs\[1\] has 3"):
            bmap(lambda a, b: a, XS, jnp.ones(3))
