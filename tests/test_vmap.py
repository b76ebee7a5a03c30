"""vmap and vmap_new_states, per-lane views and re-binds."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import BatchAxisError, StateSignatureError, TraceContextError
from brainstate._state import NonBatchState
from brainstate.transform import jit
from brainstate.transform._vmap import INIT_NO_BATCHING, vmap, vmap_new_states
from brainstate.util import FlattedDict
from brainstate.util.filter import OfType


def f32(*xs):
    return jnp.asarray(xs, jnp.float32)


def ar(n, *shape):
    return jnp.arange(float(n * int(np.prod(shape or (1,)))), dtype=jnp.float32).reshape(
        (n,) + shape)


# --- declarations ------------------------------------------------------------------------------


class TestDeclarations:
    def test_axis_dict_maps_each_state_at_its_axis(self):
        a = brainstate.State(jnp.zeros(3))
        b = brainstate.State(jnp.zeros((2, 3)))
        seen = {}

        @vmap(in_states={0: {"a": a}, 1: {"b": b}})
        def f(x):
            seen["a"], seen["b"] = a.value.shape, b.value.shape
            a.value = a.value + x
            b.value = b.value + x
            return x

        f(f32(1, 2, 3))
        assert seen == {"a": (), "b": (2,)}
        assert a.value.tolist() == [1, 2, 3]
        assert b.value.tolist() == [[1, 2, 3], [1, 2, 3]]

    @pytest.mark.parametrize("form", ["single", "list", "tuple", "dict", "flatted", "set"])
    def test_state_containers_are_all_axis_zero(self, form):
        a = brainstate.State(jnp.zeros(2))
        spec = {"single": a, "list": [a], "tuple": (a,), "dict": {"a": a},
                "flatted": FlattedDict({("a",): a}), "set": {a}}[form]

        @vmap(in_states=spec)
        def f(x):
            assert a.value.shape == ()
            a.value = a.value + x
            return x

        f(f32(5, 6))
        assert a.value.tolist() == [5, 6]

    def test_non_state_in_declaration_is_refused(self):
        with pytest.raises(TypeError, match="State instances only"):
            vmap(lambda x: x, in_states=[jnp.zeros(2)])

    def test_conflicting_in_and_out_axes(self):
        a = brainstate.State(jnp.zeros((2, 2)), name="a")
        with pytest.raises(BatchAxisError) as info:
            vmap(lambda x: x, in_states={0: {"a": a}}, out_states={1: {"a": a}})
        msg = str(info.value)
        assert "mapped to axis 0 in in_states" in msg and "axis 1 in out_states" in msg
        assert "'a'" in msg

    def test_same_axis_in_and_out_is_fine(self):
        a = brainstate.State(jnp.zeros(2))

        @vmap(in_states={0: {"a": a}}, out_states={0: {"a": a}})
        def f(x):
            a.value = a.value + x
            return x

        f(f32(1, 2))
        assert a.value.tolist() == [1, 2]

    def test_state_declared_twice_at_two_axes(self):
        a = brainstate.State(jnp.zeros((2, 2)))
        with pytest.raises(BatchAxisError, match="declared twice in in_states"):
            vmap(lambda x: x, in_states={0: {"a": a}, 1: {"b": a}})


# --- declared states ---------------------------------------------------------------------------


class TestInStates:
    def test_per_lane_write_with_wrong_shape_is_refused(self):
        a = brainstate.State(jnp.zeros(3))

        @vmap(in_states=a)
        def f(x):
            a.value = jnp.zeros(3)  # the per-lane shape is ()
            return x

        with pytest.raises(StateSignatureError):
            f(f32(1, 2, 3))
        assert a.value.tolist() == [0, 0, 0]
        assert a.value.shape == (3,)

    def test_batch_independent_write_is_broadcast(self):
        a = brainstate.State(jnp.zeros(3))

        @vmap(in_states=a)
        def f(x):
            a.value = jnp.ones(())
            return x

        f(f32(1, 2, 3))
        assert a.value.tolist() == [1, 1, 1]

    def test_read_only_in_state_is_mapped_and_left_alone(self):
        a = brainstate.State(f32(1, 2, 3))
        before = a.value

        @vmap(in_states=a)
        def f(x):
            return a.value * x

        assert f(f32(1, 1, 2)).tolist() == [1, 2, 6]
        assert a.value is before

    def test_pytree_state_and_axis_one(self):
        a = brainstate.State({"p": jnp.zeros((2, 3)), "q": jnp.ones((4, 3))})

        @vmap(in_states={1: {"a": a}})
        def f(x):
            v = a.value
            assert v["p"].shape == (2,) and v["q"].shape == (4,)
            a.value = {"p": v["p"] + x, "q": v["q"] * x}
            return x

        f(f32(1, 2, 3))
        assert a.value["p"].tolist() == [[1, 2, 3]] * 2
        assert a.value["q"].tolist() == [[1, 2, 3]] * 4

    def test_declared_state_untouched_by_function(self):
        a = brainstate.State(jnp.zeros(3))
        f = vmap(lambda x: x * 2, in_states=a)
        assert f(f32(1, 2, 3)).tolist() == [2, 4, 6]
        assert a.value.tolist() == [0, 0, 0]


class TestOutStates:
    def test_out_only_state_becomes_batched_and_is_rebound(self):
        o = brainstate.State(jnp.zeros(()), name="o")

        @vmap(out_states=o)
        def f(x):
            o.value = o.value + x * 3
            return x

        f(f32(0, 1, 2, 3))
        assert o.value.shape == (4,)
        assert o.value.tolist() == [0, 3, 6, 9]
        o.value = jnp.ones(4)  # the batched shape is now the signature
        with pytest.raises(StateSignatureError):
            o.value = jnp.ones(())

    def test_out_only_state_at_axis_one_with_constant_value(self):
        o = brainstate.State(jnp.zeros(2))

        @vmap(out_states={1: {"o": o}})
        def f(x):
            o.value = jnp.ones(2)
            return x

        f(f32(1, 2, 3))
        assert o.value.shape == (2, 3)
        assert o.value.tolist() == [[1, 1, 1], [1, 1, 1]]

    def test_out_only_state_not_written_is_unchanged(self):
        o = brainstate.State(f32(7))
        f = vmap(lambda x: x + o.value, out_states=o)
        assert f(f32(1, 2)).tolist() == [[8], [9]]
        assert o.value.tolist() == [7]

    def test_out_only_state_then_declared_in_in_states(self):
        o = brainstate.State(jnp.zeros(()))
        vmap(lambda x: setattr(o, "value", x), out_states=o)(f32(1, 2))

        @vmap(in_states=o)
        def g(x):
            o.value = o.value + x
            return x

        g(f32(1, 1))
        assert o.value.tolist() == [2, 3]

    def test_out_only_state_written_again_explains_in_states(self):
        o = brainstate.State(jnp.zeros(()))
        f = vmap(lambda x: setattr(o, "value", x), out_states=o)
        f(f32(1, 2))
        with pytest.raises(StateSignatureError) as info:
            f(f32(1, 2))
        assert "in_states" in "".join(getattr(info.value, "__notes__", []))
        assert o.value.tolist() == [1, 2]


class TestUndeclaredStates:
    def test_read_only_state_is_broadcast(self):
        r = brainstate.State(f32(10, 20))

        @vmap
        def f(x):
            return x + r.value

        assert f(f32(1, 2)).tolist() == [[11, 21], [12, 22]]
        assert r.value.tolist() == [10, 20]
        r.value = f32(0, 0)  # an input of the computation, not a baked-in constant
        assert f(f32(1, 2)).tolist() == [[1, 1], [2, 2]]

    def test_batch_independent_write_is_restored_from_one_lane(self):
        r = brainstate.State(jnp.ones(()))
        u = brainstate.State(jnp.zeros(()))

        @vmap
        def f(x):
            u.value = r.value + 1
            return x

        f(f32(1, 2, 3))
        assert u.value.shape == () and float(u.value) == 2.0
        f(f32(1, 2, 3))  # warm call, same plan
        assert float(u.value) == 2.0

    def test_batched_write_raises_with_vmap_vocabulary(self):
        u = brainstate.State(jnp.zeros(()), name="u")
        d = brainstate.State(jnp.zeros(3))

        @vmap(in_states=d)
        def f(x):
            d.value = d.value + x
            u.value = x
            return x

        with pytest.raises(BatchAxisError) as info:
            f(f32(1, 2, 3))
        msg = str(info.value)
        assert "out_states" in msg and "'u'" in msg
        for word in ("state_out_axes", "unexpected_out_state_mapping", "BatchTracer",
                     "batch_dim", "policy"):
            assert word not in msg
        # nothing was written: neither the offending state nor the declared one
        assert float(u.value) == 0.0 and d.value.tolist() == [0, 0, 0]


# --- arguments and sizes -----------------------------------------------------------------------


class TestArguments:
    def test_call_kwargs_are_refused(self):
        f = vmap(lambda x, y=1.0: x + y)
        with pytest.raises(NotImplementedError, match="keyword"):
            f(f32(1, 2), y=f32(1, 2))

    def test_tuple_in_axes_length_mismatch(self):
        f = vmap(lambda x: x, in_axes=(0, 0))
        with pytest.raises(ValueError, match="2 entries .* 1 positional"):
            f(f32(1, 2))

    def test_list_in_axes_and_none_entries(self):
        f = vmap(lambda x, y: x * y, in_axes=[0, None])
        assert f(f32(1, 2), jnp.float32(3)).tolist() == [3, 6]

    def test_pytree_prefix_in_axes(self):
        f = vmap(lambda d: d["a"] + d["b"], in_axes=({"a": 0, "b": None},))
        assert f({"a": f32(1, 2), "b": jnp.float32(10)}).tolist() == [11, 12]

    def test_in_axes_must_be_int_none_or_tuple(self):
        with pytest.raises(TypeError, match="in_axes"):
            vmap(lambda x: x, in_axes={"x": 0})

    def test_negative_axis_and_out_axes(self):
        f = vmap(lambda x: x * 2, in_axes=-1, out_axes=1)
        x = ar(2, 3).T  # (3, 2), mapped over the last axis
        out = f(x)
        assert out.shape == (3, 2) and out.tolist() == (x * 2).tolist()

    def test_unmapped_output_with_out_axes_none(self):
        f = vmap(lambda x: (x * 2, jnp.float32(5)), out_axes=(0, None))
        a, b = f(f32(1, 2))
        assert a.tolist() == [2, 4] and b.shape == ()

    def test_size_cannot_be_determined(self):
        f = vmap(lambda x: x, in_axes=None)
        with pytest.raises(ValueError, match=r"Unable to determine the mapped axis size.*"
                                             r"Specify axis_size\."):
            f(f32(1, 2))

    def test_axis_size_with_nothing_mapped(self):
        c = brainstate.State(jnp.zeros(()))

        @vmap(in_axes=None, axis_size=3, out_states=c)
        def f(x):
            c.value = x
            return x + 1

        assert f(jnp.float32(2)).tolist() == [3, 3, 3]
        assert c.value.tolist() == [2, 2, 2]

    def test_inconsistent_argument_sizes(self):
        f = vmap(lambda x, y: x + y)
        with pytest.raises(ValueError, match="inconsistent sizes"):
            f(f32(1, 2), f32(1, 2, 3))

    def test_argument_and_state_sizes_disagree(self):
        a = brainstate.State(jnp.zeros(4), name="a")
        f = vmap(lambda x: x, in_states=a)
        with pytest.raises(ValueError, match="inconsistent sizes.*'a'"):
            f(f32(1, 2, 3))
        assert a.value.shape == (4,)

    def test_axis_size_contradicting_inputs(self):
        f = vmap(lambda x: x, axis_size=5)
        with pytest.raises(ValueError, match="axis_size=5 conflicts with the mapped axis size 3 "):
            f(f32(1, 2, 3))

    def test_size_from_in_state_alone(self):
        a = brainstate.State(f32(1, 2, 3))
        f = vmap(lambda: a.value * 2, in_states=a)
        assert f().tolist() == [2, 4, 6]

    @pytest.mark.parametrize("leaf", [1.5, "text"])
    def test_mapping_a_non_array_leaf(self, leaf):
        f = vmap(lambda x: x)
        with pytest.raises(ValueError, match="not an array"):
            f(leaf)

    def test_out_of_range_axis(self):
        f = vmap(lambda x: x, in_axes=1)
        with pytest.raises(ValueError, match=r"shape \(3,\)"):
            f(f32(1, 2, 3))

    def test_out_of_range_state_axis(self):
        a = brainstate.State(jnp.zeros(3), name="a")
        f = vmap(lambda x: x, in_states={2: {"a": a}})
        with pytest.raises(ValueError, match="'a'"):
            f(f32(1, 2, 3))

    def test_numpy_float64_inputs_and_state(self):
        s = brainstate.State(np.zeros(3))

        @vmap(in_axes=(0, None), in_states=s)
        def f(x, y):
            s.value = s.value + x * y
            return s.value

        assert f(np.arange(3.0), np.float64(2.0)).tolist() == [0, 2, 4]
        assert s.value.dtype == jnp.float32 and s.value.tolist() == [0, 2, 4]

    def test_state_as_argument_is_refused(self):
        a = brainstate.State(jnp.zeros(3))
        with pytest.raises(ValueError, match="cannot be an instance of State"):
            vmap(lambda s: s)(a)


# --- tracing, caching and nesting --------------------------------------------------------------


class TestCaching:
    def test_warm_call_traces_nothing_and_runs_one_computation(self):
        a = brainstate.State(jnp.zeros(3))
        calls = []

        @vmap(in_states=a)
        def f(x):
            calls.append(1)
            a.value = a.value + x
            return a.value

        for _ in range(3):
            f(f32(1, 2, 3))
        assert len(calls) == 1
        assert a.value.tolist() == [3, 6, 9]
        (plan,) = f._cache.values()
        assert plan.compiled._cache_size() == 1

    def test_new_batch_size_reuses_the_per_lane_trace(self):
        calls = []

        @vmap
        def f(x):
            calls.append(1)
            return x + 1

        f(f32(1, 2))
        f(f32(1, 2, 3))
        assert len(calls) == 1
        assert len(f._cache) == 2

    def test_unrelated_rebind_does_not_retrace(self):
        a = brainstate.State(jnp.zeros(2))
        calls = []

        @vmap(in_states=a)
        def f(x):
            calls.append(1)
            a.value = a.value + x
            return x

        f(f32(1, 2))
        other = brainstate.State(jnp.zeros(()))
        with brainstate.check_state_value_tree(False):
            other.value = jnp.zeros(5)
        f(f32(1, 2))
        assert len(calls) == 1 and a.value.tolist() == [2, 4]

    def test_rebound_in_state_replans(self):
        a = brainstate.State(jnp.zeros(2))

        @vmap(in_states=a)
        def f(x):
            a.value = a.value + x
            return x

        f(f32(1, 2))
        with brainstate.check_state_value_tree(False):
            a.value = jnp.zeros(3)
        f(f32(1, 2, 3))
        assert a.value.tolist() == [1, 2, 3]

    def test_failed_trace_restores_declared_states(self):
        a = brainstate.State(f32(1, 2))

        @vmap(in_states=a)
        def f(x):
            a.value = a.value + x
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            f(f32(1, 2))
        assert a.value.tolist() == [1, 2] and a.value.shape == (2,)
        a.value = f32(3, 4)  # still writable with its full signature


class TestNesting:
    def test_vmap_inside_jit(self):
        a = brainstate.State(jnp.zeros(3))
        u = brainstate.State(jnp.zeros(()))
        calls = []

        @vmap(in_states=a)
        def lane(x):
            calls.append(1)
            a.value = a.value + x
            u.value = u.value + 1
            return a.value * 2

        @jit
        def step(x):
            return lane(x).sum()

        assert float(step(f32(1, 2, 3))) == 12.0
        assert float(step(f32(1, 2, 3))) == 24.0
        assert a.value.tolist() == [2, 4, 6] and float(u.value) == 2.0
        assert len(calls) == 1

    def test_jit_inside_vmap(self):
        a = brainstate.State(jnp.zeros(3))
        r = brainstate.State(jnp.float32(10))

        @jit
        def inner(x):
            a.value = a.value + x + r.value
            return a.value

        f = vmap(inner, in_states=a)
        assert f(f32(1, 2, 3)).tolist() == [11, 12, 13]
        assert f(f32(1, 2, 3)).tolist() == [22, 24, 26]
        assert a.value.tolist() == [22, 24, 26]

    def test_vmap_inside_vmap(self):
        a = brainstate.State(jnp.zeros((2, 3)))

        @vmap(in_states=a)
        def row(xs):
            @vmap(in_states=a)
            def col(x):
                a.value = a.value + x
                return a.value

            return col(xs)

        xs = ar(2, 3)
        assert row(xs).tolist() == xs.tolist()
        assert a.value.tolist() == xs.tolist()

    def test_out_states_rebind_inside_jit(self):
        o = brainstate.State(jnp.zeros(()))

        @jit
        def step(x):
            return vmap(lambda y: setattr(o, "value", y * 2), out_states=o)(x)

        step(f32(1, 2, 3))
        assert o.value.tolist() == [2, 4, 6]


class TestAxisName:
    def test_collectives_use_the_mapped_size(self):
        f = vmap(lambda x: x - jax.lax.psum(x, "i") / jax.lax.psum(1, "i"), axis_name="i")
        assert f(f32(1, 2, 3)).tolist() == [-1, 0, 1]
        assert f(f32(1, 3)).tolist() == [-1, 1]

    def test_probe_sees_axis_index_as_batched_and_psum_as_not(self):
        u = brainstate.State(jnp.zeros(()), name="u")
        t = brainstate.State(jnp.zeros(()))

        @vmap(axis_name="i")
        def total(x):
            t.value = jax.lax.psum(x, "i")
            return x

        total(f32(1, 2, 3))
        assert float(t.value) == 6.0

        @vmap(axis_name="i")
        def index(x):
            u.value = jax.lax.axis_index("i").astype(jnp.float32)
            return x

        with pytest.raises(BatchAxisError, match="out_states"):
            index(f32(1, 2, 3))


class TestHooks:
    def test_write_hooks_fire_once_per_call(self):
        a = brainstate.State(jnp.zeros(3))
        before, after = [], []
        a.register_hook("write_before", lambda ctx: before.append(ctx.value))
        a.register_hook("write_after", lambda ctx: after.append(ctx.value))

        @vmap(in_states=a)
        def f(x):
            a.value = a.value + x
            return x

        f(f32(1, 2, 3))
        assert len(before) == 1  # once, while tracing one lane
        last = after[-1]
        assert not isinstance(last, jax.core.Tracer)
        assert last.shape == (3,) and last.tolist() == [1, 2, 3]
        n_after = len(after)
        f(f32(1, 2, 3))
        assert len(before) == 1  # warm call: no write_before at all, never twice
        assert len(after) == n_after + 1 and after[-1].tolist() == [2, 4, 6]

    def test_transforming_write_before_applies_once(self):
        a = brainstate.State(jnp.zeros(2))
        a.register_hook("write_before",
                        lambda ctx: setattr(ctx, "transformed_value", ctx.value + 10))

        @vmap(in_states=a)
        def f(x):
            a.value = a.value + x
            return a.value

        assert f(f32(1, 2)).tolist() == [11, 12]
        assert a.value.tolist() == [11, 12]


# --- a model ----------------------------------------------------------------------------------


class LIF:
    """A tiny leaky integrate-and-fire layer: one hidden state, one parameter."""

    def __init__(self, n):
        self.n = n
        self.tau = brainstate.ParamState(jnp.full((n,), 2.0, jnp.float32))

    def init_state(self):
        self.V = brainstate.HiddenState(jnp.zeros(self.n, jnp.float32))

    def states(self):
        return FlattedDict({("V",): self.V})

    def update(self, x):
        v = self.V.value + (x - self.V.value) / self.tau.value
        spike = (v > 0.6).astype(jnp.float32)
        self.V.value = v * (1.0 - spike)
        return spike


class TestModel:
    def test_batched_lif_matches_per_sample_runs(self):
        batch, n, steps = 4, 3, 5
        layer = LIF(n)
        vmap_new_states(layer.init_state, axis_size=batch)()
        assert isinstance(layer.V, brainstate.HiddenState)
        assert layer.V.value.shape == (batch, n)

        step = jit(vmap(layer.update, in_states=layer.states()))
        rng = np.random.default_rng(0)
        inputs = jnp.asarray(rng.uniform(0, 2, (steps, batch, n)), jnp.float32)
        spikes = [step(inputs[t]) for t in range(steps)]

        ref = LIF(n)
        for b in range(batch):
            ref.init_state()
            ref_step = jit(ref.update)
            for t in range(steps):
                np.testing.assert_allclose(ref_step(inputs[t, b]), spikes[t][b])
            np.testing.assert_allclose(ref.V.value, layer.V.value[b], rtol=1e-6)
        assert layer.tau.value.shape == (n,)  # undeclared, read-only: broadcast


# --- vmap_new_states ---------------------------------------------------------------------------


class TestVmapNewStates:
    def test_new_states_get_a_leading_batch_axis(self):
        made = {}

        @vmap_new_states
        def init(x):
            made["const"] = brainstate.State(jnp.zeros(2))
            made["dep"] = brainstate.ShortTermState(x * 2)
            made["dep"].value = made["dep"].value + 1
            return made["dep"].value

        out = init(f32(1, 2, 3))
        assert out.tolist() == [3, 5, 7]
        assert made["const"].value.shape == (3, 2)
        assert made["dep"].value.tolist() == [3, 5, 7]
        made["const"].value = jnp.ones((3, 2))  # signature re-bound to the batched shape
        with pytest.raises(StateSignatureError):
            made["const"].value = jnp.ones(2)

    def test_non_batch_states_are_replicated(self):
        made = {}

        @vmap_new_states(axis_size=3)
        def init():
            made["nb"] = NonBatchState(jnp.ones(2))
            made["tagged"] = brainstate.State(jnp.ones(2), tag=INIT_NO_BATCHING)
            made["batched"] = brainstate.State(jnp.ones(2))

        init()
        assert made["nb"].value.shape == (2,)
        assert made["tagged"].value.shape == (2,)
        assert made["batched"].value.shape == (3, 2)

    def test_non_batch_state_with_lane_dependent_value(self):
        @vmap_new_states
        def init(x):
            NonBatchState(x)

        with pytest.raises(BatchAxisError, match="NonBatchState"):
            init(f32(1, 2))

    def test_state_tag_and_state_to_exclude(self):
        made = {}

        @vmap_new_states(axis_size=2, state_tag="new", state_to_exclude=OfType(DelayState))
        def init(x):
            made["kept"] = brainstate.State(jnp.zeros(()))
            made["excl_const"] = brainstate.DelayState(jnp.ones(3))
            made["excl_dep"] = brainstate.DelayState(x)

        init(f32(1, 2))
        assert made["kept"].tag == {"new"} and made["kept"].value.shape == (2,)
        assert made["excl_const"].tag is None
        assert made["excl_const"].value.tolist() == [1, 1, 1]  # per-lane, same in every lane
        with pytest.raises(TraceContextError):
            made["excl_dep"].value  # noqa: B018  (lane-dependent: left out, unusable)

    def test_new_states_are_ordinary_outer_states(self):
        made = {}

        @vmap_new_states(axis_size=3)
        def init():
            made["s"] = brainstate.State(jnp.zeros(()))

        init()
        s = made["s"]
        assert s.stack_level == 0 and s._trace_is_valid()

        @jit
        def bump():
            s.value = s.value + 1

        bump()
        bump()
        assert s.value.tolist() == [2, 2, 2]
        assert jit(lambda: s.value * 2).stateful_fun.get_states() == (s,)

    def test_in_or_out_states_are_refused(self):
        a = brainstate.State(jnp.zeros(2))
        with pytest.raises(ValueError, match="in_states/out_states"):
            vmap_new_states(lambda: None, in_states=a)
        with pytest.raises(ValueError, match="in_states/out_states"):
            vmap_new_states(lambda: None, out_states=a)

    @pytest.mark.parametrize("size", [0, -1])
    def test_non_positive_axis_size(self, size):
        with pytest.raises(ValueError, match="positive"):
            vmap_new_states(lambda: None, axis_size=size)

    def test_call_kwargs_are_refused(self):
        f = vmap_new_states(lambda x, y=1: x, axis_size=2)
        with pytest.raises(NotImplementedError):
            f(f32(1, 2), y=f32(1, 2))

    def test_size_cannot_be_determined(self):
        with pytest.raises(ValueError, match="Specify axis_size"):
            vmap_new_states(lambda: None)()

    def test_existing_states_follow_undeclared_rules(self):
        r = brainstate.State(jnp.float32(3))
        u = brainstate.State(jnp.zeros(()))
        made = {}

        @vmap_new_states
        def init(x):
            made["s"] = brainstate.State(x + r.value)
            u.value = r.value * 2

        init(f32(1, 2))
        assert made["s"].value.tolist() == [4, 5] and float(u.value) == 6.0

        @vmap_new_states
        def bad(x):
            u.value = x

        with pytest.raises(BatchAxisError, match="out_states"):
            bad(f32(1, 2))
        assert float(u.value) == 6.0

    def test_failure_inside_propagates_and_leaves_existing_states(self):
        u = brainstate.State(f32(1))

        @vmap_new_states(axis_size=2)
        def init():
            brainstate.State(jnp.zeros(()))
            u.value = u.value + 1
            raise KeyError("nope")

        with pytest.raises(KeyError):
            init()
        assert u.value.tolist() == [1]

    def test_every_call_creates_fresh_states(self):
        made = []

        @vmap_new_states
        def init(x):
            made.append(brainstate.State(x))

        init(f32(1, 2))
        init(f32(3, 4, 5))
        assert made[0] is not made[1]
        assert made[0].value.tolist() == [1, 2] and made[1].value.tolist() == [3, 4, 5]


DelayState = brainstate.DelayState
