"""``unvmap``: reductions over elements and lanes, 'none' stacking, nesting, gradients, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainstate.transform import unvmap

X = np.array([[1.0, -2.0, 0.5], [-3.0, 4.0, -1.0]], np.float32)


class TestOutsideVmap:
    @pytest.mark.parametrize("op, ref", [("any", np.any), ("all", np.all)])
    def test_boolean(self, op, ref):
        for v in ([False, True], [True, True], [False, False]):
            out = unvmap(jnp.asarray(v), op=op)
            assert out.shape == () and out.dtype == jnp.bool_ and bool(out) == bool(ref(v))

    @pytest.mark.parametrize("op, ref", [("max", np.max), ("min", np.min), ("sum", np.sum)])
    def test_numeric(self, op, ref):
        out = unvmap(X, op=op)
        assert out.shape == () and out.dtype == jnp.float32
        np.testing.assert_allclose(out, ref(X), rtol=1e-6)

    def test_none_is_identity(self):
        np.testing.assert_array_equal(unvmap(X, op="none"), X)

    def test_default_op_is_any(self):
        assert bool(unvmap(jnp.asarray([0.0, 2.0]))) is True

    def test_numbers_are_truthy_for_any_all(self):
        assert bool(unvmap(jnp.asarray([0, 3]), op="all")) is False


class TestUnderVmap:
    @pytest.mark.parametrize("op, ref", [("max", np.max), ("min", np.min), ("sum", np.sum)])
    def test_reduces_over_every_lane(self, op, ref):
        out = jax.vmap(lambda row: unvmap(row, op=op))(X)
        np.testing.assert_allclose(out, np.full(2, ref(X)), rtol=1e-6)

    def test_any_all_over_lanes(self):
        rows = X > 0  # each row has a true element; not all are true
        assert jax.vmap(lambda r: unvmap(r, op="any"))(rows).tolist() == [True, True]
        assert jax.vmap(lambda r: unvmap(r, op="all"))(rows).tolist() == [False, False]
        only_first = jnp.asarray([[True], [False]])
        assert jax.vmap(lambda r: unvmap(r, op="any"))(only_first).tolist() == [True, True]

    def test_nested_vmaps_reduce_every_level(self):
        cube = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        out = jax.vmap(jax.vmap(lambda r: unvmap(r, op="sum")))(cube)
        np.testing.assert_allclose(out, np.full((2, 3), cube.sum()), rtol=1e-6)

    def test_mapped_axis_not_leading(self):
        out = jax.vmap(lambda c: unvmap(c, op="max"), in_axes=1)(X)
        np.testing.assert_allclose(out, np.full(3, X.max()))

    def test_none_stacks_lanes_on_the_leading_axis(self):
        # Each lane sees all lanes' values, lanes first, whatever the mapped axis was.
        out = jax.vmap(lambda c: unvmap(c, op="none"), in_axes=1)(X)
        np.testing.assert_array_equal(out, np.broadcast_to(X.T, (3, 3, 2)))

    def test_none_nested_outermost_first(self):
        cube = np.arange(6, dtype=np.float32).reshape(2, 3)
        out = jax.vmap(jax.vmap(lambda v: unvmap(v, op="none")))(cube)
        assert out.shape == (2, 3, 2, 3)
        np.testing.assert_array_equal(out[1, 2], cube)

    def test_cond_on_unvmapped_predicate_stays_a_branch(self):
        def f(row):
            return jax.lax.cond(unvmap(row > 3.0, op="any"), lambda: row * 0, lambda: row)

        jaxpr = jax.make_jaxpr(jax.vmap(f))(X)
        assert "cond" in str(jaxpr) and "select_n" not in str(jaxpr)
        np.testing.assert_array_equal(jax.vmap(f)(X), np.zeros_like(X))

    def test_inside_a_vmapped_scan(self):
        def f(row):
            def body(c, x):
                return c + unvmap(x, op="sum"), None
            return jax.lax.scan(body, jnp.zeros(()), row)[0]

        np.testing.assert_allclose(jax.vmap(f)(X), np.full(2, X.sum()), rtol=1e-6)

    def test_under_jit(self):
        out = jax.jit(jax.vmap(lambda r: unvmap(r, op="min")))(X)
        np.testing.assert_allclose(out, np.full(2, X.min()))


class TestGradients:
    def test_sum_outside_vmap(self):
        g = jax.grad(lambda x: unvmap(x, op="sum"))(X)
        np.testing.assert_allclose(g, np.ones_like(X))

    def test_max_matches_jnp_max(self):
        g = jax.grad(lambda x: 2.0 * unvmap(x, op="max"))(X)
        np.testing.assert_allclose(g, jax.grad(lambda x: 2.0 * jnp.max(x))(X))

    def test_max_ties_share_the_gradient(self):
        x = jnp.asarray([3.0, 1.0, 3.0])
        np.testing.assert_allclose(jax.grad(lambda v: unvmap(v, op="max"))(x),
                                   jax.grad(jnp.max)(x))

    def test_grad_per_lane_of_global_max(self):
        # d(max over all lanes)/d(lane's values): 1 at the global maximum only.
        g = jax.vmap(jax.grad(lambda r: unvmap(r, op="max")))(X)
        ref = np.zeros_like(X)
        ref[np.unravel_index(X.argmax(), X.shape)] = 1.0
        np.testing.assert_allclose(g, ref)

    def test_grad_per_lane_of_global_sum(self):
        g = jax.vmap(jax.grad(lambda r: unvmap(r, op="sum")))(X)
        np.testing.assert_allclose(g, np.ones_like(X))

    def test_grad_through_vmapped_min(self):
        g = jax.grad(lambda x: jax.vmap(lambda r: unvmap(r, op="min"))(x).sum())(X)
        np.testing.assert_allclose(g, jax.grad(lambda x: 2.0 * jnp.min(x))(X))

    def test_any_all_block_gradients(self):
        g = jax.grad(lambda x: jnp.where(unvmap(x > 0, op="any"), x, 0.0).sum())(X)
        np.testing.assert_allclose(g, np.ones_like(X))

    def test_jvp_of_sum(self):
        _, t = jax.jvp(lambda x: unvmap(x, op="sum"), (X,), (np.ones_like(X),))
        np.testing.assert_allclose(t, X.size)

    def test_any_rule_gives_a_zero_tangent(self):
        # unvmap itself stops the gradient before 'any'/'all'; the primitive's own JVP rule
        # (reached by a tangent bound to it directly) answers a symbolic zero tangent.
        from brainstate.transform._unvmap import _reduce_p

        y, t = jax.jvp(lambda x: _reduce_p.bind(x, op="any"), (X,), (np.ones_like(X),))
        np.testing.assert_array_equal(y, X)
        np.testing.assert_array_equal(t, np.zeros_like(X))

    def test_none_refuses_differentiation(self):
        with pytest.raises(NotImplementedError, match="op='none'.*stop_gradient"):
            jax.grad(lambda x: unvmap(x, op="none").sum())(X)


class TestErrors:
    def test_unknown_op(self):
        with pytest.raises(ValueError, match="unknown op 'mean'.*'any'.*'none'"):
            unvmap(X, op="mean")

    def test_pytree(self):
        with pytest.raises(TypeError, match="one array, got a dict.*jax.tree.map"):
            unvmap({"a": X}, op="any")


def test_single_op_shorthands():
    from brainstate.transform._unvmap import unvmap_all, unvmap_any, unvmap_max

    rows = X > 0
    assert jax.vmap(unvmap_any)(rows).tolist() == [True, True]
    assert jax.vmap(unvmap_all)(rows).tolist() == [False, False]
    np.testing.assert_allclose(jax.vmap(unvmap_max)(X), np.full(2, X.max()))
