"""Large arrays a compiled function captures become inputs of the program, small ones constants."""

from __future__ import annotations

import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import (
    for_loop,
    get_jit_const_threshold,
    grad,
    jit,
    set_jit_const_threshold,
)

MIB = 1 << 20


@pytest.fixture(autouse=True)
def _default_threshold():
    set_jit_const_threshold()
    yield
    set_jit_const_threshold()


def _big(n_bytes: int = 2 * MIB, seed: int = 0) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).integers(0, 1000, n_bytes // 4), jnp.int32)


def _entry(f):
    """The cache entry of the last traced signature of a ``jit`` function."""
    cache = f.stateful_fun._cache
    assert len(cache) == 1
    return next(iter(cache.values()))


def _hlo_size(f, *args) -> int:
    return len(f.lower(*args).as_text())


class TestSplit:
    def test_default_threshold_is_one_mebibyte(self):
        assert get_jit_const_threshold() == MIB

    def test_large_captured_array_is_an_input(self):
        table = _big()
        f = jit(lambda i: table[i] * 2)
        i = jnp.arange(5)
        out = f(i)
        entry = _entry(f)
        assert len(entry.hoisted) == 1 and entry.hoisted[0] is table
        np.testing.assert_array_equal(out, np.asarray(table)[:5] * 2)
        # the program holds no copy of the 2 MiB of data
        assert _hlo_size(f, i) < 20_000

    def test_embedded_when_the_threshold_is_none(self):
        table = _big()
        i = jnp.arange(5)
        hoisted = jit(lambda i: table[i] * 2)
        set_jit_const_threshold(None)
        embedded = jit(lambda i: table[i] * 2)
        embedded(i)
        entry = _entry(embedded)
        assert entry.hoisted == ()  # the table stays a constant of the traced program
        assert any(c is table for c in entry.jaxpr.consts)
        set_jit_const_threshold()
        np.testing.assert_array_equal(hoisted(i), embedded(i))

    def test_small_captured_array_stays_a_constant(self):
        small = jnp.arange(16, dtype=jnp.float32)
        f = jit(lambda x: x + small)
        x = jnp.ones(16, jnp.float32)
        np.testing.assert_array_equal(f(x), np.arange(16) + 1.0)
        entry = _entry(f)
        assert entry.hoisted == ()
        assert any(c is small for c in entry.jaxpr.consts)
        assert "dense<" in f.lower(x).as_text()

    def test_only_arrays_above_the_threshold_move(self):
        big, small = _big(), jnp.arange(8, dtype=jnp.int32)
        f = jit(lambda i: big[i] + small[i])
        i = jnp.arange(8)
        np.testing.assert_array_equal(f(i), np.asarray(big)[:8] + np.arange(8))
        assert [a is big for a in _entry(f).hoisted] == [True]
        assert len(_entry(f).jaxpr.consts) >= 2  # the traced jaxpr itself keeps both

    def test_numpy_array_is_put_on_the_device_once(self):
        table = np.arange(MIB, dtype=np.float32)  # 4 MiB on the host
        f = jit(lambda i: jnp.take(table, i))
        i = jnp.arange(3)
        np.testing.assert_array_equal(f(i), [0.0, 1.0, 2.0])
        (h,) = _entry(f).hoisted
        assert isinstance(h, jax.Array) and h.dtype == jnp.float32
        assert _hlo_size(f, i) < 20_000


class TestThresholdSetting:
    def test_zero_hoists_small_arrays(self):
        set_jit_const_threshold(0)
        assert get_jit_const_threshold() == 0
        small = jnp.arange(4, dtype=jnp.float32)
        f = jit(lambda x: x * small)
        np.testing.assert_array_equal(f(jnp.ones(4, jnp.float32)), np.arange(4.0))
        assert [a is small for a in _entry(f).hoisted] == [True]

    def test_larger_threshold_keeps_the_array_embedded(self):
        set_jit_const_threshold(8 * MIB)
        table = _big(2 * MIB)
        f = jit(lambda i: table[i])
        f(jnp.arange(2))
        assert _entry(f).hoisted == ()

    def test_threshold_is_strict(self):
        table = _big(MIB)  # exactly the threshold: stays a constant
        f = jit(lambda i: table[i])
        f(jnp.arange(2))
        assert _entry(f).hoisted == ()

    def test_compiled_entries_keep_their_split(self):
        table = _big()
        f = jit(lambda i: table[i])
        i = jnp.arange(2)
        f(i)
        set_jit_const_threshold(None)
        f(i)
        assert len(_entry(f).hoisted) == 1
        f.clear_cache()
        f(i)
        assert _entry(f).hoisted == ()

    @pytest.mark.parametrize("bad", [1.5, "1M", True, [1]])
    def test_non_int_is_refused(self, bad):
        with pytest.raises(TypeError, match=r"size in bytes \(an int\) or None, got"):
            set_jit_const_threshold(bad)
        assert get_jit_const_threshold() == MIB

    def test_negative_is_refused(self):
        with pytest.raises(ValueError, match="size in bytes >= 0, got -1"):
            set_jit_const_threshold(-1)
        assert get_jit_const_threshold() == MIB

    def test_numpy_integer_is_accepted(self):
        set_jit_const_threshold(np.int64(4096))
        assert get_jit_const_threshold() == 4096 and type(get_jit_const_threshold()) is int


class TestCalls:
    def test_no_retrace_on_repeated_calls(self):
        table = _big()
        traces = []

        def f(i):
            traces.append(1)
            return table[i]

        jf = jit(f)
        i = jnp.arange(4)
        outs = [jf(i) for _ in range(5)]
        assert len(traces) == 1
        stats = jf.stateful_fun.get_cache_stats()["compilation_cache"]
        assert stats["misses"] == 1 and stats["hits"] == 4
        for o in outs:
            np.testing.assert_array_equal(o, np.asarray(table)[:4])

    def test_states_are_threaded_with_hoisted_arrays(self):
        w = jnp.asarray(np.random.default_rng(1).normal(size=(1024, 512)), jnp.float32)
        acc = brainstate.State(jnp.zeros(512, jnp.float32))

        @jit
        def step(x):
            acc.value = acc.value + x @ w
            return acc.value.sum()

        x = jnp.ones(1024, jnp.float32)
        step(x)
        step(x)
        assert len(_entry(step).hoisted) == 1
        np.testing.assert_allclose(acc.value, 2 * (np.ones(1024) @ np.asarray(w)), rtol=1e-4)

    def test_module_attribute_is_hoisted(self):
        class Net(brainstate.nn.Module):
            def __init__(self):
                super().__init__()
                self.pre = _big()
                self.v = brainstate.HiddenState(jnp.zeros(8, jnp.int32))

            def update(self, i):
                self.v.value = self.v.value + self.pre[i]
                return self.v.value

        net = Net()
        f = jit(net.update)
        i = jnp.arange(8)
        f(i)
        out = f(i)
        assert [a is net.pre for a in _entry(f).hoisted] == [True]
        np.testing.assert_array_equal(out, 2 * np.asarray(net.pre)[:8])

    def test_aot_lower_and_compile(self):
        table = _big()
        f = jit(lambda i: table[i] + 1)
        i = jnp.arange(3)
        compiled = f.compile(i)
        np.testing.assert_array_equal(compiled([], i, table)[0], np.asarray(table)[:3] + 1)
        np.testing.assert_array_equal(f(i), np.asarray(table)[:3] + 1)

    def test_donated_argument_with_hoisted_array(self):
        table = _big()
        f = jit(lambda x: x + table[:4], donate_argnums=0)
        out = f(jnp.zeros(4, jnp.int32))
        np.testing.assert_array_equal(out, np.asarray(table)[:4])
        assert table.is_deleted() is False

    def test_in_shardings_with_hoisted_array(self):
        table = _big()
        make = getattr(jax.sharding, "make_single_device_sharding", None)  # JAX 0.12's spelling
        dev = jax.devices()[0]
        sharding = make(dev) if make is not None else jax.sharding.SingleDeviceSharding(dev)
        f = jit(lambda i: table[i], in_shardings=(sharding,))
        np.testing.assert_array_equal(f(jnp.arange(3)), np.asarray(table)[:3])

    def test_the_entry_keeps_the_array_alive(self):
        def make():
            table = _big()
            ref = weakref.ref(table)
            return jit(lambda i: table[i]), ref, np.array(table[:3])  # no view

        f, ref, expected = make()
        i = jnp.arange(3)
        f(i)
        gc.collect()
        assert ref() is not None
        np.testing.assert_array_equal(f(i), expected)
        f.clear_cache()
        del f
        gc.collect()
        assert ref() is None


class TestNested:
    def test_for_loop_inside_jit(self):
        table = _big()

        class Acc(brainstate.nn.Module):
            def __init__(self):
                super().__init__()
                self.total = brainstate.HiddenState(jnp.zeros((), jnp.int32))

            def update(self, t):
                self.total.value = self.total.value + table[t]
                return self.total.value

        def run(n_hoist):
            set_jit_const_threshold(n_hoist)
            acc = Acc()
            f = jit(lambda ts: for_loop(acc.update, ts))
            out = f(jnp.arange(10))
            return f, out, acc.total.value

        f, out, total = run(MIB)
        assert len(_entry(f).hoisted) == 1
        assert _hlo_size(f, jnp.arange(10)) < 50_000
        _, out_c, total_c = run(None)
        np.testing.assert_array_equal(out, out_c)
        assert int(total) == int(total_c) == int(np.asarray(table)[:10].sum())

    def test_grad_inside_jit(self):
        w_fixed = jnp.asarray(np.random.default_rng(2).normal(size=(1024, 512)), jnp.float32)
        param = brainstate.ParamState(jnp.ones(512, jnp.float32))

        def loss(x):
            return jnp.sum((x @ w_fixed) * param.value) ** 2

        x = jnp.full(1024, 0.01, jnp.float32)
        g_hoisted = jit(lambda x: grad(loss, grad_states=param)(x))
        set_jit_const_threshold(None)
        g_embedded = jit(lambda x: grad(loss, grad_states=param)(x))
        set_jit_const_threshold()
        out_h = g_hoisted(x)
        assert len(_entry(g_hoisted).hoisted) >= 1
        np.testing.assert_allclose(out_h, g_embedded(x), rtol=1e-5)
        expected = jax.grad(lambda p: jnp.sum((x @ w_fixed) * p) ** 2)(jnp.ones(512))
        np.testing.assert_allclose(out_h, expected, rtol=1e-4)

    def test_nested_jit_inside_jit(self):
        table = _big()
        inner = jit(lambda i: table[i] * 3)
        outer = jit(lambda i: inner(i) + 1)
        i = jnp.arange(4)
        np.testing.assert_array_equal(outer(i), np.asarray(table)[:4] * 3 + 1)
        assert [a is table for a in _entry(outer).hoisted] == [True]
        assert _hlo_size(outer, i) < 20_000

    def test_tracer_of_an_outer_trace_is_not_hoisted(self):
        set_jit_const_threshold(0)

        @jax.jit
        def outer(y):
            f = jit(lambda x: x + y)  # y is a tracer of the jax.jit trace
            r = f(jnp.ones(4, jnp.float32))
            for c in _entry(f).jaxpr.consts:
                assert not isinstance(c, jax.Array) or isinstance(c, jax.core.Tracer)
            assert _entry(f).hoisted == ()
            return r

        np.testing.assert_array_equal(outer(jnp.full(4, 2.0, jnp.float32)), np.full(4, 3.0))

    def test_state_held_array_is_not_a_constant(self):
        table = brainstate.State(_big())
        f = jit(lambda i: table.value[i])
        np.testing.assert_array_equal(f(jnp.arange(2)), np.asarray(table.value)[:2])
        assert _entry(f).hoisted == ()
        assert _entry(f).states == (table,)
