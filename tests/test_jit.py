"""StatefulFunction, make_jaxpr and jit."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import brainstate
from brainstate.transform import StatefulFunction, jit, make_jaxpr


def f32(*xs):
    return jnp.asarray(xs, jnp.float32)


class TestJitBasics:
    def test_reads_and_writes_are_threaded_through(self):
        a, b = brainstate.State(f32(0, 0)), brainstate.State(f32(1, 2))

        @jit
        def step(x):
            a.value = a.value + x * b.value
            return a.value.sum()

        assert float(step(1.0)) == 3.0
        assert a.value.tolist() == [1.0, 2.0]
        assert float(step(1.0)) == 6.0
        assert b.value.tolist() == [1.0, 2.0]

    def test_traces_once_per_signature(self):
        a = brainstate.State(f32(0))
        calls = []

        @jit
        def step(x):
            calls.append(1)
            a.value = a.value + x
            return x

        step(jnp.float32(1))
        step(jnp.float32(2))
        assert len(calls) == 1
        step(f32(1, 2)[:1] * 0 + 1)  # same abstract signature again (shape (1,))
        assert len(calls) == 2
        all_stats = step.stateful_fun.get_cache_stats()
        stats = all_stats["compilation_cache"]
        assert stats["size"] == 2 and stats["hits"] >= 1
        # the per-kind keys of older releases report the one cache
        for k in ("jaxpr_cache", "out_shapes_cache", "jaxpr_out_tree_cache", "state_trace_cache"):
            assert all_stats[k] == stats

    def test_static_argnums_retrace_on_new_value(self):
        a = brainstate.State(f32(0))

        @jit(static_argnums=1)
        def step(x, k):
            a.value = a.value + x * k
            return a.value

        step(1.0, 2)
        step(1.0, 3)
        assert a.value.tolist() == [5.0]

    def test_negative_static_or_donate_argnums_are_refused(self):
        with pytest.raises(ValueError):
            jit(lambda x: x, static_argnums=-1)
        with pytest.raises(ValueError):
            jit(lambda x: x, donate_argnums=(-1,))

    def test_in_shardings_must_be_a_sequence(self):
        with pytest.raises(NotImplementedError):
            jit(lambda x: x, in_shardings=object())

    def test_donation_does_not_touch_state_buffers(self):
        a = brainstate.State(jnp.ones(4))

        @jit(donate_argnums=0)
        def step(x):
            a.value = a.value + x
            return x * 2

        out = step(jnp.ones(4))
        assert out.tolist() == [2.0] * 4
        assert a.value.tolist() == [2.0] * 4

    def test_disable_jit_runs_python(self):
        a = brainstate.State(f32(0))
        seen = []

        @jit
        def step(x):
            seen.append(type(x))
            a.value = a.value + x
            return a.value

        with jax.disable_jit():
            step(jnp.float32(1))
        assert seen == [type(jnp.float32(1))]
        assert a.value.tolist() == [1.0]

    def test_nesting(self):
        a = brainstate.State(f32(1))

        @jit
        def inner(x):
            a.value = a.value * x
            return a.value

        outer = jit(jit(lambda x: inner(x) + 1))
        assert outer(2.0).tolist() == [3.0]
        assert a.value.tolist() == [2.0]
        trace = outer.stateful_fun.get_state_trace(2.0)
        assert trace.states == [a] and trace.been_writen == [True]

    def test_clear_cache_retraces(self):
        calls = []
        a = brainstate.State(f32(0))

        @jit
        def step(x):
            calls.append(1)
            a.value = a.value + x
            return x

        step(1.0)
        step.clear_cache()
        step(1.0)
        assert len(calls) == 2


class TestTraceSafety:
    def test_signature_checked_at_trace_time_and_state_untouched(self):
        a = brainstate.State(f32(1, 2))

        @jit
        def bad(x):
            a.value = jnp.zeros(3)
            return x

        with pytest.raises(brainstate.StateSignatureError, match="shape=\\(2,\\)"):
            bad(1.0)
        assert a.value.tolist() == [1.0, 2.0]

    def test_failed_trace_rolls_back_and_recovers(self):
        a = brainstate.State(f32(1))
        fail = [True]

        @jit
        def step(x):
            a.value = a.value + x
            if fail[0]:
                raise RuntimeError("boom")
            return a.value

        with pytest.raises(RuntimeError, match="boom"):
            step(1.0)
        assert a.value.tolist() == [1.0]
        assert not isinstance(a.value, jax.core.Tracer)
        fail[0] = False
        assert step(1.0).tolist() == [2.0]

    def test_states_created_inside_are_not_tracked_and_get_poisoned(self):
        kept = []

        @jit
        def step(x):
            st = brainstate.State(x * 2)
            kept.append(st)
            return st.value

        assert float(step(1.0)) == 2.0
        assert step.stateful_fun.get_states(1.0) == ()
        with pytest.raises(brainstate.TraceContextError, match="created inside a traced"):
            kept[0].value
        repr(kept[0])  # never raises
        kept[0].value = jnp.float32(1.0)  # a concrete write un-poisons
        assert float(kept[0].value) == 1.0

    def test_temporary_state_inside_is_harmless(self):
        @jit
        def step(x):
            tmp = brainstate.State(x)
            tmp.value = tmp.value + 1
            return tmp.value

        assert float(step(1.0)) == 2.0

    def test_state_in_args_or_result_refused(self):
        a = brainstate.State(f32(1))
        f = jit(lambda x: x)
        with pytest.raises(ValueError, match="cannot be an instance of State"):
            f(a)
        with pytest.raises(ValueError, match="cannot be an instance of State"):
            f({"k": [a]})
        with pytest.raises(ValueError, match="cannot be an instance of State"):
            jit(lambda x: a)(1.0)
        with pytest.raises(ValueError, match="cannot be an instance of State"):
            jit(lambda x, y=None: x)(1.0, y=a)

    def test_state_as_static_argument_is_allowed(self):
        a = brainstate.State(f32(1))

        @jit(static_argnums=0)
        def step(st, x):
            st.value = st.value + x
            return st.value

        assert step(a, 1.0).tolist() == [2.0]

    def test_raw_jax_jit_write_still_refused(self):
        a = brainstate.State(f32(1))
        with pytest.raises(brainstate.TraceContextError):
            jax.jit(lambda x: setattr(a, "value", a.value + x))(1.0)
        assert a.value.tolist() == [1.0]

    def test_rebound_signature_retraces(self):
        a = brainstate.State(f32(1))
        calls = []

        @jit
        def step(x):
            calls.append(1)
            return a.value.sum() + x

        step(1.0)
        with brainstate.check_state_value_tree(False):
            a.value = f32(1, 2, 3)
        assert float(step(1.0)) == 7.0
        assert len(calls) == 2


class TestAot:
    def test_aot_methods_do_not_write_states(self):
        a = brainstate.State(f32(1))

        @jit
        def step(x):
            a.value = a.value + x
            return a.value * 2

        with brainstate.StateTraceStack() as outer:
            step.lower(1.0)
            step.compile(1.0)
            step.trace(1.0)
            shapes = step.eval_shape(1.0)
        assert outer.get_write_states() == ()
        assert shapes.shape == (1,)
        assert a.value.tolist() == [1.0]
        assert step.lower(1.0).compile() is not None


class TestStatefulFunction:
    def test_accessors_and_return_only_write(self):
        a, b = brainstate.State(f32(1)), brainstate.State(f32(2))

        def f(x):
            a.value = a.value + b.value * x
            return x

        sf = StatefulFunction(f).make_jaxpr(1.0)
        assert sf.get_states(1.0) == (a, b)
        assert sf.get_write_states(1.0) == (a,)
        assert sf.get_read_states(1.0) == (b,)
        out_shapes, state_shapes = sf.get_out_shapes(1.0)
        assert state_shapes[1] is None  # read-only slot
        key = sf.get_arg_cache_key(1.0)
        assert sf.get_states_by_cache(key) == (a, b)
        assert sf.get_jaxpr_by_cache(key) is sf.get_jaxpr(1.0)

    def test_by_cache_miss_message(self):
        sf = StatefulFunction(lambda x: x)
        key = sf.get_arg_cache_key(1.0)
        with pytest.raises(ValueError) as info:
            sf.get_jaxpr_by_cache(key)
        msg = str(info.value)
        assert "Requested key:" in msg and "Available" in msg and "make_jaxpr()" in msg

    def test_static_argnums_beyond_args(self):
        sf = StatefulFunction(lambda x, k: x, static_argnums=(1,))
        with pytest.raises(ValueError, match="static_argnums contains index 1"):
            sf.make_jaxpr(1.0)

    def test_static_argnames_must_be_strings(self):
        with pytest.raises(TypeError, match="argument is not a string"):
            StatefulFunction(lambda x: x, static_argnames=(1,))

    def test_unhashable_static_argument(self):
        class Unhashable:
            __hash__ = None

        sf = StatefulFunction(lambda x, k: x, static_argnums=1)
        with pytest.raises(TypeError, match="tatic argument"):
            sf.make_jaxpr(1.0, Unhashable())

    def test_jaxpr_call(self):
        a = brainstate.State(f32(1))

        def f(x):
            a.value = a.value + x
            return a.value * 10

        sf = StatefulFunction(f).make_jaxpr(1.0)
        new_vals, out = sf.jaxpr_call([f32(5)], 1.0)
        assert new_vals[0].tolist() == [6.0] and out.tolist() == [60.0]
        assert a.value.tolist() == [1.0]
        with pytest.raises(ValueError, match="State length mismatch"):
            sf.jaxpr_call([], 1.0)
        with pytest.raises(ValueError, match="None"):
            sf.jaxpr_call([None], 1.0)

    def test_make_jaxpr_function(self):
        a = brainstate.State(f32(1))

        def f(x):
            a.value = a.value + x
            return x * 2

        jaxpr, states = make_jaxpr(f)(1.0)
        assert states == (a,)
        assert len(jaxpr.jaxpr.invars) == 2
        jaxpr, states, shapes = make_jaxpr(f, return_shape=True)(1.0)
        assert shapes.shape == ()
        assert make_jaxpr(f).__name__ == "make_jaxpr(f)"


class TestHooksUnderJit:
    def test_write_before_applied_once(self):
        a = brainstate.State(f32(1))
        a.register_hook("write_before", lambda ctx: setattr(ctx, "transformed_value",
                                                            ctx.value + 10))

        @jit
        def step(x):
            a.value = a.value + x
            return a.value

        out = step(1.0)
        assert out.tolist() == [12.0]
        assert a.value.tolist() == [12.0]  # upstream: 22 (the hook applied twice)

    def test_write_after_fires_once_per_call_with_concrete_value(self):
        a = brainstate.State(f32(1))
        seen = []
        a.register_hook("write_after", lambda ctx: seen.append(ctx.value))

        @jit
        def step(x):
            a.value = a.value + x
            return x

        step(1.0)
        seen.clear()
        step(1.0)
        assert len(seen) == 1 and not isinstance(seen[0], jax.core.Tracer)
        assert seen[0].tolist() == [3.0]


class TestFastPath:
    def test_changed_argument_shape_after_warm_calls_retraces(self):
        a = brainstate.State(jnp.zeros((), jnp.float32))
        traces = []

        @jit
        def step(x):
            traces.append(x.shape)
            a.value = a.value + x.sum()
            return x * 2

        for _ in range(3):
            step(jnp.ones(2))
        assert step(jnp.ones(3)).tolist() == [2.0, 2.0, 2.0]
        assert traces == [(2,), (3,)]
        assert float(a.value) == 9.0
        step(jnp.ones(2))  # back to the first signature: cached, no trace
        assert traces == [(2,), (3,)]

    def test_alternating_signatures_do_not_retrace_the_compiled_function(self, monkeypatch):
        # The fast path calls the last entry's compiled function; with another signature JAX
        # retraces it to find out (_Stale, milliseconds). After one such miss the avals are
        # compared first, so alternating calls stay on cached lookups.
        import brainstate.transform._make_jaxpr as mj

        stale = []

        class Counting(mj._Stale):
            def __init__(self):
                stale.append(1)
                super().__init__()

        monkeypatch.setattr(mj, "_Stale", Counting)
        a = brainstate.State(jnp.zeros((), jnp.float32))

        @jit
        def step(x):
            a.value = a.value + x.sum()
            return x * 2

        x2, x3 = jnp.ones(2), jnp.ones(3)
        for _ in range(10):
            assert step(x2).shape == (2,)
            assert step(x3).shape == (3,)
        assert len(stale) <= 1
        assert float(a.value) == 50.0

    def test_dtype_and_weak_type_changes_are_distinct(self):
        @jit
        def step(x):
            return x + 1

        step(jnp.ones(2, jnp.float32))
        assert step(jnp.ones(2, jnp.int32)).dtype == jnp.int32
        assert step(jnp.float32(1)).dtype == jnp.float32

    def test_a_trace_is_not_reused_under_the_other_64_bit_setting(self):
        # a trace made with x64 off makes float32 constants: under x64 the function must be
        # traced again (as jax.jit does), by the cache lookup and by the fast path alike
        traces = []

        @jit
        def zeros(x):
            traces.append(1)
            return jnp.zeros(3)

        x = jnp.ones(2, jnp.float32)
        with brainstate.environ.context(precision=32):
            assert zeros(x).dtype == jnp.float32 and zeros(x).dtype == jnp.float32
        with brainstate.environ.context(precision=64):
            assert zeros(x).dtype == jnp.float64 and zeros(x).dtype == jnp.float64
            key64 = zeros.stateful_fun.get_arg_cache_key(x)
        with brainstate.environ.context(precision=32):
            assert zeros(x).dtype == jnp.float32 and zeros(x).dtype == jnp.float32
            key32 = zeros.stateful_fun.get_arg_cache_key(x)
        assert len(traces) == 2  # one per setting; switching back finds the first
        assert key32 != key64
        assert zeros.stateful_fun.get_jaxpr_by_cache(key64).out_avals[0].dtype == jnp.float64

    def test_state_argument_after_warm_calls_still_refused(self):
        a = brainstate.State(f32(1))
        f = jit(lambda x: x + 1)
        f(f32(1))
        f(f32(1))
        with pytest.raises(ValueError, match="cannot be an instance of State"):
            f(a)


class TestRepeatCallArgumentShapes:
    """The repeat-call fast path skips flattening only when every argument is one array; any
    other argument structure must go through the full key (and give the right result)."""

    @pytest.mark.parametrize("make_args", [
        lambda a: (a, None),
        lambda a: ((a,),),
        lambda a: (a, ()),
        lambda a: ({"x": a},),
        lambda a: (a, a),
    ])
    def test_repeat_calls_see_their_arguments(self, make_args):
        st = brainstate.State(jnp.zeros(3))

        @jit
        def f(*args):
            total = sum(jnp.sum(x) for x in jax.tree.leaves(args))
            st.value = st.value + total
            return total

        for k in range(1, 4):
            a = jnp.full(3, float(k))
            leaves = jax.tree.leaves(make_args(a))
            assert float(f(*make_args(a))) == pytest.approx(sum(3.0 * k for _ in leaves))
        assert float(st.value[0]) == pytest.approx(sum(3.0 * k * len(leaves) for k in (1, 2, 3)))


class TestAsMethod:
    def test_a_jitted_function_on_a_class_binds_like_a_function(self):
        class Counter:
            def __init__(self):
                self.n = brainstate.State(jnp.zeros(()))

            @jit(static_argnums=0)  # self is hashable by identity: static
            def add(self, x):
                self.n.value = self.n.value + x
                return self.n.value

        c = Counter()
        assert float(c.add(2.0)) == 2.0 and float(c.add(3.0)) == 5.0
        assert isinstance(Counter.add, brainstate.transform.JittedFunction)  # unbound: itself
        assert float(Counter.add(c, 1.0)) == 6.0

    def test_decorator_forms_take_upstreams_missing_marker(self):
        from brainstate.typing import Missing

        for make in (brainstate.transform.jit, brainstate.transform.grad,
                     brainstate.transform.vmap, brainstate.transform.checkpoint):
            deco = make(Missing())
            assert callable(deco) and not hasattr(deco, "stateful_fun")
        f = jit(Missing())(lambda x: x + 1)
        assert float(f(1.0)) == 2.0


class TestPerLeafOptions:
    """Donation and input shardings map to flat leaves with the spans of the call compiled."""

    @staticmethod
    def _shardings():
        dev = jax.devices()[0]
        mesh = Mesh(np.array([dev]), ("i",))
        # JAX 0.12 deprecates the SingleDeviceSharding class for this factory
        make = getattr(jax.sharding, "make_single_device_sharding", None)
        single = make(dev) if make is not None else jax.sharding.SingleDeviceSharding(dev)
        return NamedSharding(mesh, PartitionSpec("i")), single

    @staticmethod
    def _leaf_shardings(jf, args):
        # input 0 of the compiled program is the (here empty) list of state values
        return [type(s) for s in jf.lower(*args).compile().input_shardings[0][1:]]

    def test_threads_compiling_different_argument_structures_get_their_own_spans(self):
        # Each thread's trace waits for the other's, so both calls are in flight when either
        # compiles: with the spans kept on the instance, the last call's would reach both.
        named, single = self._shardings()
        x = jnp.ones(2)
        calls = {"a": ((x, x), x), "b": (x, (x, x))}
        one = type(single)
        want = {"a": [NamedSharding, NamedSharding, one], "b": [NamedSharding, one, one]}
        for _ in range(3):
            barrier = threading.Barrier(2, timeout=60)

            def f(a, b):
                barrier.wait()
                return sum(jax.tree_util.tree_leaves((a, b)))  # every leaf an input

            jf = jit(f, in_shardings=(named, single))
            errors: list = []

            def run(name, jf=jf, errors=errors):
                try:
                    jax.block_until_ready(jf(*calls[name]))
                except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(n,)) for n in calls]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert not errors, errors
            for name, args in calls.items():
                assert self._leaf_shardings(jf, args) == want[name], name

    def test_lower_before_any_call_maps_donation(self):
        f = jit(lambda x, y: x * 2 + y, donate_argnums=0)
        info = f.lower(jnp.ones(3), jnp.ones(3)).args_info
        assert [a.donated for a in jax.tree_util.tree_leaves(info)] == [True, False]

    def test_lower_uses_its_own_call_structure(self):
        f = jit(lambda *a: jax.tree_util.tree_leaves(a)[0], donate_argnums=1)
        x = jnp.ones(3)
        f(x, x, x)  # compiled with argument 1 at leaf 1
        info = f.lower(x, (x, x)).args_info  # argument 1 now spans leaves 1 and 2
        assert [a.donated for a in jax.tree_util.tree_leaves(info)] == [False, True, True]

    def test_donation_by_name_follows_the_keyword(self):
        f = jit(lambda x, *, y: x + y[0], donate_argnames="y")
        x = jnp.ones(3)
        info = f.lower(x, y=(x, x)).args_info
        assert [a.donated for a in jax.tree_util.tree_leaves(info)] == [False, True, True]
