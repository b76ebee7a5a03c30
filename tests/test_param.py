"""``nn.Param`` / ``nn.Const``: values, cache, hooks, graph, errors."""

from __future__ import annotations

import copy
import logging
import pickle
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import ParamState, StateSignatureError, graph
from brainstate.nn import (
    Const,
    GaussianReg,
    IdentityT,
    L1Reg,
    L2Reg,
    Module,
    Param,
    SigmoidT,
    SimplexT,
    SoftplusT,
    Transform,
)
from brainstate.nn._param import _are_broadcastable_shapes, _expand_params_to_match_sizes, _to_size
from brainstate.transform import grad, jit

F32 = jnp.float32


def arr(*v):
    return jnp.asarray(v, F32)


def invalidators(st):
    return [h for h in st.list_hooks("write_after") if h.name == "param_cache_invalidator"]


class Square(Transform):
    """A user transform without range information: inverse undefined below 0."""

    def forward(self, x):
        return x * x

    def inverse(self, y):
        return jnp.sqrt(y)


# --- construction and values ------------------------------------------------------------------


class TestConstruction:
    def test_identity_default_and_dtype(self):
        p = Param([1, 2, 3])
        assert p.fit and isinstance(p.val, ParamState)
        assert p.value().dtype == jnp.result_type(float)
        np.testing.assert_array_equal(p.value(), [1.0, 2.0, 3.0])

    def test_default_dtype_follows_the_environment_precision(self):
        with brainstate.environ.context(precision=16):
            p = Param([1, 2, 3])
        assert p.value().dtype == jnp.float16 and p.val.value.dtype == jnp.float16

    def test_stores_the_unconstrained_value(self):
        p = Param(arr(1.0, 2.0), t=SoftplusT(0.0))
        np.testing.assert_allclose(p.val.value, SoftplusT(0.0).inverse(arr(1.0, 2.0)))
        np.testing.assert_allclose(p.value(), [1.0, 2.0], rtol=1e-6)

    def test_simplex_stores_n_minus_1(self):
        p = Param(arr(0.2, 0.3, 0.5), t=SimplexT())
        assert p.val.value.shape == (2,)
        np.testing.assert_allclose(p.value(), [0.2, 0.3, 0.5], rtol=1e-5)

    def test_precompute_applied_after_transform(self):
        p = Param(arr(1.0, 2.0), t=SoftplusT(0.0), precompute=lambda y: y + 10.0)
        np.testing.assert_allclose(p.value(), [11.0, 12.0], rtol=1e-6)

    def test_identity_accepts_nan_and_inf(self):
        p = Param(arr(1.0, np.nan, np.inf))
        v = p.value()
        assert np.isnan(v[1]) and np.isinf(v[2])

    def test_bad_arguments(self):
        with pytest.raises(AssertionError, match="callable"):
            Param(arr(1.0), precompute="nope")
        with pytest.raises(ValueError, match="instance of Regularization"):
            Param(arr(1.0), reg=[1, 2])
        with pytest.raises(TypeError, match="instance of Transform"):
            Param(arr(1.0), t="softplus")
        with pytest.raises(TypeError, match="number or an array"):
            Param("abc")

    def test_value_outside_range_is_rejected(self):
        with pytest.raises(ValueError) as err:
            Param(arr(1.0, -1.0), t=SoftplusT(0.0), name="tau")
        msg = str(err.value)
        assert "Param 'tau'" in msg and "outside the range" in msg
        assert "(0.0, inf)" in msg and "-1.0" in msg
        with pytest.raises(ValueError, match=r"\(0.0, 1.0\)"):
            Param(arr(1.5), t=SigmoidT(0.0, 1.0))

    def test_boundary_value_has_no_finite_preimage(self):
        with pytest.raises(ValueError, match="not finite at 1 of 2 entries"):
            Param(arr(0.0, 1.0), t=SoftplusT(0.0))

    def test_inverse_undefined_for_user_transform(self):
        with pytest.raises(ValueError, match=r"inverse of Square\(\) is not finite .*-4.0"):
            Param(arr(4.0, -4.0), t=Square())

    def test_inverse_that_raises_names_the_param(self):
        class NoInverse(Square):
            def inverse(self, y):
                raise ArithmeticError("no inverse here")

        with pytest.raises(ArithmeticError, match="no inverse here") as err:
            Param(arr(0.5), t=NoInverse(), name="w")
        assert any("Param 'w'" in n for n in getattr(err.value, "__notes__", []))

    def test_scalar_for_a_vector_transform(self):
        with pytest.raises(ValueError, match="SimplexT"):
            Param(jnp.float32(0.5), t=SimplexT())

    def test_repr_hides_cache_internals(self):
        p = Param(arr(1.0), t=SoftplusT(0.0), precompute=lambda y: y, name="g")
        p.cache()
        text = repr(p)
        assert "name='g'" in text and "t=SoftplusT" in text and "val=ParamState" in text
        for hidden in ("lock", "cache", "precompute", "enable"):
            assert hidden not in text


class TestSetValue:
    def test_round_trip_and_dtype(self):
        p = Param(arr(1.0, 2.0), t=SoftplusT(0.0))
        p.set_value([3, 4])
        np.testing.assert_allclose(p.value(), [3.0, 4.0], rtol=1e-6)
        assert p.val.value.dtype == F32

    @pytest.mark.parametrize("bad, match", [
        (arr(1.0, -2.0), "outside the range"),
        (arr(0.0, 1.0), "not finite"),
        (arr(1.0, 2.0, 3.0), r"shape \(3,\).*\(2,\)"),
    ])
    def test_bad_write_leaves_state_and_cache_unchanged(self, bad, match):
        p = Param(arr(1.0, 2.0), t=SoftplusT(0.0), name="rate")
        before = p.val.value
        cached = p.cache()
        with pytest.raises(ValueError, match=match):
            p.set_value(bad)
        assert p.val.value is before
        assert p.cache_stats["valid"] and p.value() is cached

    def test_direct_wrong_shape_write_is_a_signature_error(self):
        p = Param(arr(1.0, 2.0))
        with pytest.raises(StateSignatureError):
            p.val.value = jnp.zeros(3, F32)
        np.testing.assert_array_equal(p.value(), [1.0, 2.0])

    def test_clip(self):
        p = Param(arr(1.0, 5.0, 10.0))
        p.clip(min_val=2.0, max_val=8.0)
        np.testing.assert_array_equal(p.value(), [2.0, 5.0, 8.0])


class TestRegLossAndPrior:
    def test_prior_on_constrained_value(self):
        p = Param(arr(1.0, 2.0), t=SoftplusT(0.0), reg=L2Reg(0.1))
        np.testing.assert_allclose(p.reg_loss(), 0.5, rtol=1e-5)
        q = Param(arr(1.0, -2.0), reg=L1Reg(0.1))
        np.testing.assert_allclose(q.reg_loss(), 0.3, rtol=1e-6)

    def test_prior_sees_precomputed_value(self):
        p = Param(arr(1.0), reg=L2Reg(1.0), precompute=lambda y: 3.0 * y)
        np.testing.assert_allclose(p.reg_loss(), 9.0)

    def test_zero_without_reg_or_fit(self):
        assert Param(arr(1.0)).reg_loss() == 0.0
        assert Param(arr(1.0), reg=L2Reg(0.1), fit=False).reg_loss() == 0.0

    def test_reset_to_prior_keeps_the_signature(self):
        p = Param(arr(5.0, 6.0, 7.0), reg=L2Reg(0.1))
        sig = p.val._signature
        p.reset_to_prior()
        np.testing.assert_array_equal(p.value(), [0.0, 0.0, 0.0])
        assert p.val.value.shape == (3,) and p.val._signature == sig

    def test_reset_to_prior_gaussian_mean_through_transform(self):
        p = Param(arr(5.0, 6.0), t=SoftplusT(0.0), reg=GaussianReg(mean=2.0, std=1.0))
        p.reset_to_prior()
        np.testing.assert_allclose(p.value(), [2.0, 2.0], rtol=1e-5)

    def test_reset_to_prior_on_the_boundary_is_a_clear_error(self):
        p = Param(arr(5.0), t=SoftplusT(0.0), reg=L2Reg(0.1))
        with pytest.raises(ValueError, match="not finite"):
            p.reset_to_prior()
        np.testing.assert_allclose(p.value(), [5.0], rtol=1e-6)

    def test_reset_to_prior_without_reg_is_a_no_op(self):
        p = Param(arr(5.0))
        p.reset_to_prior()
        np.testing.assert_array_equal(p.value(), [5.0])


# --- cache and its invalidation -----------------------------------------------------------------


class CountingT(Transform):
    def __init__(self):
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return 2.0 * x

    def inverse(self, y):
        return y / 2.0


class TestCache:
    def test_value_does_not_cache_cache_does(self):
        t = CountingT()
        p = Param(arr(1.0), t=t)
        p.value(), p.value()
        assert t.calls == 2 and p.cache_stats == {"valid": False, "has_cached_value": False}
        y = p.cache()
        assert p.cache_stats == {"valid": True, "has_cached_value": True}
        assert p.value() is y and p.value() is y and t.calls == 3

    def test_every_write_path_invalidates(self):
        p = Param(arr(1.0, 2.0), t=SoftplusT(0.0))
        p.cache()
        p.set_value(arr(3.0, 4.0))
        assert not p.cache_stats["valid"]
        p.cache()
        p.val.value = p.t.inverse(arr(5.0, 6.0))
        assert not p.cache_stats["valid"]
        np.testing.assert_allclose(p.value(), [5.0, 6.0], rtol=1e-6)
        p.cache()
        p.clear_cache()
        assert not p.cache_stats["valid"]

    def test_rebinding_t_or_precompute_invalidates(self):
        p = Param(arr(1.0))
        p.cache()
        p.precompute = lambda y: y + 1.0
        assert not p.cache_stats["valid"]
        np.testing.assert_array_equal(p.value(), [2.0])

    def test_failing_transform_does_not_cache(self):
        t = CountingT()
        p = Param(arr(1.0), t=t)

        def boom(x):
            raise ValueError("Transformation failed")

        t.forward = boom
        with pytest.raises(ValueError, match="Transformation failed"):
            p.value()
        with pytest.raises(ValueError):
            p.cache()
        assert p.cache_stats == {"valid": False, "has_cached_value": False}

    def test_invalidator_hook(self):
        p = Param(arr(1.0))
        (hook,) = invalidators(p.val)
        assert hook.priority == 100
        assert p._cache_invalidation_hook_handle is not None
        assert type(p._cache_lock).__name__ in ("RLock", "_RLock")

    def test_const_has_no_state_and_no_hook(self):
        c = Const(arr(1.0, 2.0), t=SoftplusT(0.0), reg=L2Reg(0.1))
        assert not c.fit and not isinstance(c.val, brainstate.State)
        assert c._cache_invalidation_hook_handle is None and c._cache_lock is not None
        assert c.reg_loss() == 0.0 and isinstance(c.reg, L2Reg)
        np.testing.assert_allclose(c.value(), [1.0, 2.0], rtol=1e-6)
        c.cache()
        c.set_value(arr(3.0, 4.0))
        assert not c.cache_stats["valid"]
        np.testing.assert_allclose(c.value(), [3.0, 4.0], rtol=1e-6)
        assert isinstance(c, Param) and len(graph.states(c)) == 0

    def test_const_refuses_fit(self):
        with pytest.raises(ValueError, match="non-trainable"):
            Const(arr(1.0), fit=True)
        assert not Const(arr(1.0), fit=False).fit

    def test_logging(self, caplog):
        p = Param(arr(1.0), enable_cache_logging=True, name="lg")
        assert p._cache_logger is None
        with caplog.at_level(logging.INFO, logger="brainstate.nn.Param.lg"):
            p.cache()
            p.value()
            p.set_value(arr(2.0))
        text = caplog.text
        assert "HIT" in text and "INVALIDATED" in text and "set_value" in text
        assert isinstance(p._cache_logger, logging.Logger)
        assert not Param(arr(1.0))._enable_cache_logging

    def test_threads(self):
        p = Param(arr(1.0), t=SoftplusT(0.0))
        errors = []

        def reader():
            try:
                for _ in range(100):
                    assert p.cache() is not None
                    assert p.value() is not None
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        def writer(k):
            try:
                for i in range(30):
                    p.set_value(arr(float(k * 100 + i + 1)))
            except Exception as e:  # pragma: no cover
                errors.append(e)

        threads = [threading.Thread(target=reader) for _ in range(4)]
        threads += [threading.Thread(target=writer, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        # No stale cache survives: the cached value (if any) matches the state.
        expected = p.t.forward(p.val.value)
        np.testing.assert_allclose(p.value(), expected)


# --- graph: clone, merge, copy, pickle ------------------------------------------------------------


class TestRebuild:
    @pytest.mark.parametrize("rebuild", ["clone", "merge", "deepcopy", "pickle"])
    def test_rebuilt_param_owns_lock_cache_and_invalidator(self, rebuild):
        p = Param(arr(1.0, 2.0), t=SoftplusT(0.0), reg=L2Reg(0.1))
        p.cache()
        if rebuild == "clone":
            q = graph.clone(p)
        elif rebuild == "merge":
            q = graph.treefy_merge(*graph.treefy_split(p))
        elif rebuild == "deepcopy":
            q = copy.deepcopy(p)
        else:
            q = pickle.loads(pickle.dumps(p))
        assert q.val is not p.val and q._cache_lock is not p._cache_lock
        assert q.cache_stats["valid"] is False
        assert len(invalidators(q.val)) == 1 and len(invalidators(p.val)) == 1
        np.testing.assert_allclose(q.value(), p.value())
        q.cache()
        p.cache()
        q.val.value = q.t.inverse(arr(7.0, 8.0))
        assert not q.cache_stats["valid"]
        assert p.cache_stats["valid"]
        np.testing.assert_allclose(q.value(), [7.0, 8.0], rtol=1e-6)
        np.testing.assert_allclose(p.value(), [1.0, 2.0], rtol=1e-6)
        p.set_value(arr(3.0, 4.0))
        assert q.cache_stats is not None and not p.cache_stats["valid"]

    def test_merge_with_copied_hooks_does_not_touch_the_original(self):
        p = Param(arr(1.0))
        q = graph.treefy_merge(*graph.treefy_split(p), copy_hooks=True)
        p.cache()
        q.cache()
        q.val.value = arr(5.0)
        assert p.cache_stats["valid"] and not q.cache_stats["valid"]

    def test_repeated_cached_rebuilds_do_not_stack_hooks(self):
        m = Module()
        m.p = Param(arr(1.0))
        gd, mapping = graph.flatten(m)
        index_ref: dict = {}
        first = graph.unflatten(gd, mapping, index_ref=index_ref)
        for _ in range(3):  # rebuilds into the same shells and states (index_ref_cache)
            again = graph.unflatten(gd, mapping, index_ref_cache=index_ref)
            assert again.p is first.p
        assert len(invalidators(first.p.val)) == 1
        first.p.cache()
        first.p.val.value = arr(2.0)
        assert not first.p.cache_stats["valid"]
        np.testing.assert_array_equal(first.p.value(), [2.0])

    def test_shallow_copy_shares_val_and_both_caches_follow_it(self):
        p = Param(arr(1.0))
        q = copy.copy(p)
        assert q.val is p.val and q._cache_lock is not p._cache_lock
        p.cache()
        q.cache()
        p.val.value = arr(2.0)
        assert not p.cache_stats["valid"] and not q.cache_stats["valid"]

    def test_rebinding_val_moves_the_invalidator(self):
        p = Param(arr(1.0))
        old = p.val
        p.val = ParamState(arr(3.0))
        assert invalidators(old) == [] and len(invalidators(p.val)) == 1
        p.cache()
        old.value = arr(9.0)
        assert p.cache_stats["valid"]
        p.val.value = arr(4.0)
        assert not p.cache_stats["valid"]

    def test_cache_fields_are_not_in_the_graph(self):
        p = Param(arr(1.0), t=SoftplusT(0.0))
        p.cache()
        gd, _ = graph.treefy_split(p)
        text = repr(gd)
        for name in ("_cache_lock", "_cache_entry", "_cache_invalidation_hook_handle", "RLock"):
            assert name not in text


# --- inside transforms ------------------------------------------------------------------------------


class TestUnderTransforms:
    def test_jit_and_grad_reach_val(self):
        p = Param(arr(1.0, 2.0), t=SoftplusT(0.0))
        f = jit(lambda x: jnp.sum(p.value() * x))
        np.testing.assert_allclose(f(arr(1.0, 1.0)), 3.0, rtol=1e-6)
        g = grad(lambda: jnp.sum(p.value()), grad_states=p.val)()
        np.testing.assert_allclose(g, jax.nn.sigmoid(p.val.value), rtol=1e-6)

    def test_cache_inside_jit_never_leaks_a_tracer(self):
        p = Param(arr(1.0, 2.0), t=SoftplusT(0.0))

        @jit
        def f(x):
            p.cache()  # left behind on purpose
            return p.value() * x

        np.testing.assert_allclose(f(arr(1.0, 1.0)), [1.0, 2.0], rtol=1e-6)
        v = p.value()
        assert not isinstance(v, jax.core.Tracer)
        np.testing.assert_allclose(v, [1.0, 2.0], rtol=1e-6)
        assert not p.cache_stats["valid"]

    def test_write_inside_jit_invalidates(self):
        p = Param(arr(1.0), t=SoftplusT(0.0))
        p.cache()

        @jit
        def step():
            p.val.value = p.val.value + 1.0

        step()
        assert not p.cache_stats["valid"]
        np.testing.assert_allclose(p.value(), SoftplusT(0.0).forward(p.val.value))


# --- Module helpers against real Params ------------------------------------------------------------


class Inner(Module):
    def __init__(self):
        super().__init__()
        self.w = Param(arr(1.0, 2.0), reg=L2Reg(1.0))  # reg_loss 5


class Outer(Module):
    def __init__(self):
        super().__init__()
        self.a = Param(arr(3.0), t=SoftplusT(0.0), reg=L1Reg(2.0))  # reg_loss 6
        self.c = Const(arr(4.0), reg=L2Reg(1.0))  # 0
        self.inner = Inner()
        self.deep = Module()
        self.deep.deeper = Inner()  # depth 3 params: 5
        self.alias = self.inner.w  # shared: counted once


class TestModuleHelpers:
    def test_named_param_modules(self):
        m = Outer()
        names = dict(m.named_param_modules())
        assert set(names) == {"a", "c", "alias", "deep.deeper.w"}
        assert names["alias"] is m.inner.w
        assert list(m.param_modules()) == [p for _, p in m.named_param_modules()]
        assert {n for n, _ in m.named_param_modules(allowed_hierarchy=(1, 1))} == \
            {"a", "c", "alias"}
        assert [n for n, _ in m.named_param_modules(allowed_hierarchy=(0, 0))] == []

    def test_reg_loss_recurses_once_per_param(self):
        np.testing.assert_allclose(Outer().reg_loss(), 16.0, rtol=1e-5)
        assert Module().reg_loss() == 0.0

    def test_states_exclude_const(self):
        m = Outer()
        paths = set(m.states(ParamState))
        assert ("c", "val") not in {p[:2] for p in paths}
        assert ("a", "val") in paths

    def test_param_precompute_scope(self):
        m = Outer()
        t = CountingT()
        m.b = Param(arr(1.0), t=t)
        with m.param_precompute():
            assert all(p.cache_stats["valid"] for p in m.param_modules())
            calls = t.calls
            for _ in range(3):
                m.b.value()
            assert t.calls == calls
        assert not any(p.cache_stats["valid"] for p in m.param_modules())

    def test_param_precompute_hierarchy(self):
        m = Outer()
        with m.param_precompute(allowed_hierarchy=(1, 1)):
            assert m.a.cache_stats["valid"] and m.inner.w.cache_stats["valid"]
            assert not m.deep.deeper.w.cache_stats["valid"]
        with m.param_precompute(allowed_hierarchy=(0, 0)):
            assert not m.a.cache_stats["valid"]

    def test_param_precompute_clears_on_exception(self):
        m = Outer()
        with pytest.raises(RuntimeError, match="inside"):
            with m.param_precompute():
                raise RuntimeError("inside")
        assert not any(p.cache_stats["valid"] for p in m.param_modules())

    def test_param_precompute_clears_when_a_transform_fails(self):
        m = Module()
        m.a = Param(arr(1.0))
        t = CountingT()
        m.b = Param(arr(1.0), t=t)

        def boom(x):
            raise FloatingPointError("bad")

        t.forward = boom
        with pytest.raises(FloatingPointError):
            with m.param_precompute():
                pass  # pragma: no cover
        assert not m.a.cache_stats["valid"] and not m.b.cache_stats["valid"]

    def test_param_precompute_inside_jit_grad(self):
        m = Outer()

        def loss():
            with m.param_precompute():
                return jnp.sum(m.a.value() ** 2) + m.reg_loss()

        params = m.states(ParamState)
        g_pre = jit(grad(loss, grad_states=params))()

        def loss_plain():
            return jnp.sum(m.a.value() ** 2) + m.reg_loss()

        g_plain = jit(grad(loss_plain, grad_states=params))()
        for k in params:
            np.testing.assert_allclose(g_pre[k], g_plain[k], rtol=1e-6)
        assert all(float(jnp.max(jnp.abs(v))) > 0 for v in g_pre.values())
        assert not any(p.cache_stats["valid"] for p in m.param_modules())


# --- Param.init ------------------------------------------------------------------------------------


class TestInit:
    def test_values_become_const(self):
        c = Param.init(1.0, sizes=(3,))
        assert isinstance(c, Const)
        np.testing.assert_allclose(jnp.broadcast_to(c.value(), (3,)), [1.0, 1.0, 1.0])
        a = Param.init(np.ones((2, 3)), sizes=[2, 3])
        assert isinstance(a, Const) and a.value().shape == (2, 3)
        assert Param.init(jnp.ones(5), sizes=5).value().shape == (5,)

    def test_callable_and_existing_param(self):
        c = Param.init(lambda s, fill=0.0: jnp.full(s, fill, F32), sizes=(2, 2), fill=5.0)
        np.testing.assert_array_equal(c.value(), np.full((2, 2), 5.0))
        p = Param(arr(1.0, 2.0))
        assert Param.init(p, sizes=(2,)) is p

    def test_errors(self):
        assert Param.init(None) is None
        with pytest.raises(ValueError, match="Expect a parameter.*we got None"):
            Param.init(None, allow_none=False)
        with pytest.raises(AssertionError, match="size"):
            Param.init(lambda s: jnp.ones(s))
        with pytest.raises(ValueError, match="Cannot make a size"):
            Param.init(jnp.ones(3), sizes="3")
        with pytest.raises(TypeError, match="Unknown parameter type"):
            Param.init({"k": 1}, sizes=(2,))
        with pytest.raises(TypeError, match="Unknown parameter type"):
            Param.init("abc", sizes=(3,))
        with pytest.raises(ValueError, match=r"\(2, 3\) does not match .*\(4, 5\)"):
            Param.init(jnp.ones((2, 3)), sizes=(4, 5))

    def test_helpers(self):
        assert _to_size(3) == (3,) and _to_size([1, 2]) == (1, 2) and _to_size(None) is None
        assert _are_broadcastable_shapes((1, 3), (2, 3))
        assert _are_broadcastable_shapes((3,), (2, 3))
        assert not _are_broadcastable_shapes((3, 4), (5, 6))
        assert _expand_params_to_match_sizes(jnp.ones(3), (2, 4, 3)).shape == (1, 1, 3)


def test_public_names():
    assert brainstate.nn.Param is Param and brainstate.nn.Const is Const
    assert Param.__module__ == Const.__module__ == "brainstate.nn"
    assert isinstance(IdentityT(), Transform)
