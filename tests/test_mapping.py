"""vmap2, pmap2, StatefulMapping: state axes chosen by selectors; vmap2_new_states."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import brainstate
from brainstate import BatchAxisError, StateSignatureError
from brainstate._state import NonBatchState
from brainstate.transform import (
    StatefulMapping,
    for_loop,
    grad,
    in_new_state_probe,
    jit,
    pmap2,
    pmap2_new_states,
    vmap,
    vmap2,
    vmap2_new_states,
)
from brainstate.util.filter import All, Not, OfType, WithTag


def f32(*xs):
    return jnp.asarray(xs, jnp.float32)


def ar(*shape):
    return jnp.arange(float(np.prod(shape)), dtype=jnp.float32).reshape(shape)


# --- selectors -------------------------------------------------------------------------------


class TestSelectors:
    def _run(self, spec, a, b):
        seen = {}

        @vmap2(state_in_axes=spec)
        def f(x):
            seen["a"], seen["b"] = a.value.shape, b.value.shape
            a.value = a.value + x
            return x

        f(f32(1, 2, 3))
        return seen

    @pytest.mark.parametrize("form", ["type", "bare_state", "list", "set", "mapping", "tag",
                                      "withtag", "dict", "mixed"])
    def test_each_selector_form_maps_a_at_axis_0(self, form):
        a = brainstate.ParamState(jnp.zeros(3), tag="fast")
        b = brainstate.ShortTermState(jnp.zeros(3))
        spec = {"type": brainstate.ParamState, "bare_state": a, "list": [a], "set": {a},
                "mapping": {"a": a}, "tag": "fast", "withtag": WithTag("fast"),
                "dict": {0: brainstate.ParamState},
                "mixed": [a, OfType(NonBatchState)]}[form]
        assert self._run(spec, a, b) == {"a": (), "b": (3,)}
        np.testing.assert_allclose(a.value, [1, 2, 3])
        np.testing.assert_allclose(b.value, [0, 0, 0])

    def test_ellipsis_maps_every_touched_state(self):
        a = brainstate.ParamState(jnp.zeros(3))
        b = brainstate.ShortTermState(jnp.ones(3))
        assert self._run(..., a, b) == {"a": (), "b": ()}
        np.testing.assert_allclose(b.value, [1, 1, 1])

    def test_states_at_different_axes(self):
        a = brainstate.ParamState(jnp.zeros(3))
        b = brainstate.ShortTermState(ar(2, 3))

        @vmap2(state_in_axes={0: brainstate.ParamState, 1: brainstate.ShortTermState})
        def f(x):
            a.value = a.value + x
            b.value = b.value * x
            return b.value.sum()

        out = f(f32(1, 2, 3))
        np.testing.assert_allclose(a.value, [1, 2, 3])
        np.testing.assert_allclose(b.value, ar(2, 3) * f32(1, 2, 3))
        np.testing.assert_allclose(out, (ar(2, 3) * f32(1, 2, 3)).sum(0))

    def test_none_axis_broadcasts_and_wins_over_ints(self):
        a = brainstate.ParamState(jnp.ones(3))

        @vmap2(state_in_axes={0: ..., None: brainstate.ParamState})
        def f(x):
            return a.value * x  # a whole: (3,) per lane

        assert f(f32(1, 2)).shape == (2, 3)

    def test_selected_at_two_axes_raises_naming_state_and_axes(self):
        a = brainstate.ParamState(jnp.zeros((3, 3)), tag="fast")
        f = vmap2(lambda x: a.value + x,
                  state_in_axes={0: brainstate.ParamState, 1: "fast"})
        with pytest.raises(BatchAxisError, match=r"ParamState.*axes \[0, 1\].*disjoint"):
            f(f32(1, 2, 3))

    def test_in_and_out_axes_disagree(self):
        a = brainstate.ParamState(jnp.zeros((3, 3)))

        def g(x):
            a.value = a.value + x
            return x

        f = vmap2(g, state_in_axes={0: a}, state_out_axes={1: a})
        with pytest.raises(BatchAxisError, match=r"axis 0 by state_in_axes but at axis 1"):
            f(f32(1, 2, 3))
        np.testing.assert_allclose(a.value, np.zeros((3, 3)))

    def test_invalid_selector_and_key(self):
        with pytest.raises(TypeError, match=r"state_in_axes\[0\] must be a filter"):
            vmap2(lambda x: x, state_in_axes={0: 3.5})
        with pytest.raises(TypeError, match=r"state_out_axes keys must be axes.*'w'"):
            vmap2(lambda x: x, state_out_axes={"w": brainstate.ParamState})

    def test_attributes_follow_upstream(self):
        sm = StatefulMapping(lambda x: x, static_argnums=2, static_argnames=["m"],
                             state_in_axes=brainstate.ParamState)
        assert sm.static_argnums == (2,) and sm.static_argnames == ("m",)
        assert list(sm.state_in_axes) == [0] and sm.state_out_axes == {}
        assert StatefulMapping(lambda x: x, static_argnums=None).static_argnums == ()
        assert sm.mapping_fn is jax.vmap and sm.unexpected_out_state_mapping == "auto"

    def test_constructor_errors(self):
        with pytest.raises(ValueError, match="unexpected_out_state_mapping must be one of"):
            vmap2(lambda x: x, unexpected_out_state_mapping="loud")
        with pytest.raises(TypeError, match="needs a callable"):
            StatefulMapping(3)
        with pytest.raises(ValueError, match="axis_size must be a non-negative int"):
            StatefulMapping(lambda x: x, axis_size=-1)
        with pytest.raises(TypeError, match="static_argnames entries must be strs"):
            StatefulMapping(lambda x: x, static_argnames=[1])
        with pytest.raises(TypeError, match=r"mapping_kwargs \['devices'\]"):
            StatefulMapping(lambda x: x, mapping_kwargs={"devices": None})
        with pytest.raises(TypeError, match="mapping_fn must be callable"):
            StatefulMapping(lambda x: x, mapping_fn=3)


# --- undeclared writes ------------------------------------------------------------------------


def _rmw(st):
    def f(x):
        st.value = st.value + x
        return st.value

    return f


class TestPolicies:
    def test_raise_names_state_and_fix(self):
        w = brainstate.ShortTermState(jnp.zeros(3))
        f = vmap2(_rmw(w), unexpected_out_state_mapping="raise")
        with pytest.raises(BatchAxisError, match=r"ShortTermState.*state_out_axes.*'raise'"):
            f(f32(1, 2, 3))
        np.testing.assert_allclose(w.value, np.zeros(3))

    @pytest.mark.parametrize("policy", ["auto", "ignore"])
    def test_auto_and_ignore_keep_one_value_per_lane_at_axis_0(self, policy):
        w = brainstate.ShortTermState(jnp.zeros(2))
        out = vmap2(_rmw(w), unexpected_out_state_mapping=policy)(f32(1, 2, 3))
        expected = np.zeros(2)[None] + np.asarray([1, 2, 3.])[:, None]
        np.testing.assert_allclose(out, expected)
        np.testing.assert_allclose(w.value, expected)  # re-bound to (3, 2)

    def test_warn_warns_and_keeps_per_lane(self):
        w = brainstate.ShortTermState(jnp.zeros(()))
        with pytest.warns(UserWarning, match=r"ShortTermState.*one value per lane"):
            vmap2(_rmw(w), unexpected_out_state_mapping="warn")(f32(1, 2, 3))
        np.testing.assert_allclose(w.value, [1, 2, 3])

    def test_lane_independent_write_keeps_one_value(self):
        w = brainstate.ShortTermState(jnp.zeros(2))

        @vmap2(unexpected_out_state_mapping="raise")
        def f(x):
            w.value = w.value + 1.0
            return x

        f(f32(1, 2, 3))
        np.testing.assert_allclose(w.value, [1, 1])

    def test_out_selected_at_none_must_be_lane_independent(self):
        w = brainstate.ShortTermState(jnp.zeros(()))
        f = vmap2(_rmw(w), state_out_axes={None: brainstate.ShortTermState})
        with pytest.raises(BatchAxisError, match=r"selected by state_out_axes at None"):
            f(f32(1, 2, 3))

    def test_in_selected_at_none_is_pinned_too(self):
        w = brainstate.ShortTermState(jnp.zeros(()))
        f = vmap2(_rmw(w), state_in_axes={None: w})
        with pytest.raises(BatchAxisError, match=r"at None"):
            f(f32(1, 2, 3))

    def test_pure_write_to_lane_sized_state_stays_in_place(self):
        s = brainstate.ShortTermState(jnp.zeros(3))
        w = brainstate.ShortTermState(jnp.zeros(()))

        def f(x):
            s.value = x * 2.0
            w.value = x * 3.0
            return x

        g = vmap2(f, state_out_axes=s)
        g(f32(1, 2, 3))
        np.testing.assert_allclose(s.value, [2, 4, 6])  # selected: written back in place
        np.testing.assert_allclose(w.value, [3, 6, 9])  # undeclared ('auto'): gained the axis
        g(f32(2, 3, 4))  # now lane-sized too: written in place, no new axis
        np.testing.assert_allclose(s.value, [4, 6, 8])
        np.testing.assert_allclose(w.value, [6, 9, 12])

    def test_read_then_per_lane_write_of_out_selected_state_is_refused(self):
        s = brainstate.ShortTermState(jnp.zeros(3))

        def f(x):
            s.value = s.value.sum() + x
            return x

        with pytest.raises(StateSignatureError, match="ShortTermState"):
            vmap2(f, state_out_axes=s)(f32(1, 2, 3))
        np.testing.assert_allclose(s.value, np.zeros(3))

    def test_pure_write_rebinds_for_another_batch_size(self):
        w = brainstate.ShortTermState(jnp.zeros(()))  # undeclared ('auto')
        s = brainstate.ShortTermState(jnp.zeros(5))  # selected, lane-sized for n=5

        def f(x):
            w.value = x * 2.0
            s.value = x * 3.0
            return x

        g = vmap2(f, state_out_axes=s)
        g(ar(5))
        np.testing.assert_allclose(w.value, np.arange(5.0) * 2)
        np.testing.assert_allclose(s.value, np.arange(5.0) * 3)
        g(ar(3))  # another batch size: both re-bound to 3 values
        np.testing.assert_allclose(w.value, np.arange(3.0) * 2)
        np.testing.assert_allclose(s.value, np.arange(3.0) * 3)
        g(ar(5) + 1)  # and back
        np.testing.assert_allclose(w.value, (np.arange(5.0) + 1) * 2)
        np.testing.assert_allclose(s.value, (np.arange(5.0) + 1) * 3)

    def test_pure_out_selected_write_of_another_shape_is_rebound(self):
        s = brainstate.ShortTermState(jnp.zeros(2))
        vmap2(lambda x: (setattr(s, "value", x.sum()), x)[1], state_out_axes=s)(ar(3, 4))
        np.testing.assert_allclose(s.value, ar(3, 4).sum(1))

    def test_out_selected_read_modify_write_refuses_a_second_axis(self):
        h = brainstate.HiddenState(jnp.zeros(2))
        f = vmap2(_rmw(h), state_out_axes={0: brainstate.HiddenState})
        f(f32(1, 2, 3))
        assert h.value.shape == (3, 2)
        for x in (f32(1, 2, 3), f32(1, 2)):  # same or another batch size
            with pytest.raises(BatchAxisError,
                               match=r"HiddenState.*state_out_axes at axis 0 only.*second "
                                     r"mapped axis.*state_in_axes=\{0: \.\.\.\} as well"):
                f(x)
            assert h.value.shape == (3, 2)
        with brainstate.check_state_value_tree(False):  # reset: one value again
            h.value = jnp.ones(2)
        f(f32(1, 2, 3))
        np.testing.assert_allclose(h.value, 1 + np.ones((1, 2)) * f32(1, 2, 3)[:, None])

    def test_in_and_out_selected_read_modify_write_keeps_its_shape(self):
        h = brainstate.HiddenState(jnp.zeros(2))
        f = vmap2(_rmw(h), state_in_axes={0: h}, state_out_axes={0: brainstate.HiddenState})
        with brainstate.check_state_value_tree(False):
            h.value = jnp.zeros((3, 2))
        for _ in range(3):
            f(f32(1, 2, 3))
        np.testing.assert_allclose(h.value, 3 * np.ones((1, 2)) * f32(1, 2, 3)[:, None])

    @pytest.mark.parametrize("policy", ["auto", "ignore"])
    def test_undeclared_read_modify_write_refuses_a_second_axis(self, policy):
        w = brainstate.ShortTermState(jnp.zeros(2))
        f = vmap2(_rmw(w), unexpected_out_state_mapping=policy)
        f(f32(1, 2, 3))
        with pytest.raises(BatchAxisError, match=r"ShortTermState.*covered by no selector.*"
                                                 r"second mapped axis"):
            f(f32(1, 2, 3))
        assert w.value.shape == (3, 2)

    def test_warn_points_at_the_callers_line(self):
        w = brainstate.ShortTermState(jnp.zeros(()))
        f = vmap2(_rmw(w), unexpected_out_state_mapping="warn")
        with pytest.warns(UserWarning, match="one value per lane") as rec:
            f(f32(1, 2, 3))
        assert rec[0].filename == __file__

    def test_out_selected_state_gains_axis_at_its_axis(self):
        h = brainstate.HiddenState(jnp.zeros(2))

        @vmap2(state_out_axes={1: brainstate.HiddenState})
        def f(x):
            h.value = h.value + x
            return x

        f(f32(1, 2, 3))
        np.testing.assert_allclose(h.value, np.ones((2, 1)) * f32(1, 2, 3))


# --- random states ----------------------------------------------------------------------------


class TestRandom:
    def test_split_per_lane_and_advance_once_like_vmap(self):
        rng = brainstate.random.RandomState(0)

        def f(x):
            return x + rng.normal(size=(2,))

        out2 = vmap2(f)(jnp.zeros((4, 2)))
        k2 = np.asarray(rng.value)
        rng.seed(0)
        out1 = vmap(f)(jnp.zeros((4, 2)))
        np.testing.assert_allclose(out2, out1)
        np.testing.assert_array_equal(k2, np.asarray(rng.value))
        assert not np.allclose(out2[0], out2[1])

    def test_selected_batch_of_keys_is_mapped(self):
        rng = brainstate.random.RandomState(1)
        rng.self_assign_multi_keys(3)
        keys = np.asarray(rng.value)

        @vmap2(state_in_axes={0: OfType(brainstate.random.RandomState)})
        def f(x):
            return x + rng.uniform()

        out = f(jnp.zeros(3))
        for i in range(3):
            lane = brainstate.random.RandomState(keys[i])
            np.testing.assert_allclose(out[i], lane.uniform(), rtol=1e-6)


# --- the property: vmap2 == a Python loop over lanes ---------------------------------------


class Model(brainstate.nn.Module):
    def __init__(self, w_in, w_out, h):
        super().__init__()
        self.w_in = brainstate.ParamState(w_in)  # (n, d)   mapped at 0
        self.w_out = brainstate.ParamState(w_out, tag="out")  # (d, n)   mapped at 1
        self.h = brainstate.HiddenState(h)  # (d,)  written per lane

    def __call__(self, x):
        self.h.value = jnp.tanh(self.h.value + self.w_in.value * x)
        return (self.h.value * self.w_out.value).sum()


@settings(max_examples=15, deadline=None)
@given(n=hst.integers(1, 4), d=hst.integers(1, 3), seed=hst.integers(0, 2 ** 16))
def test_property_vmap2_equals_python_loop(n, d, seed):
    r = np.random.RandomState(seed)
    w_in, w_out = r.randn(n, d).astype(np.float32), r.randn(d, n).astype(np.float32)
    h0, xs = r.randn(d).astype(np.float32), r.randn(n).astype(np.float32)
    m = Model(jnp.asarray(w_in), jnp.asarray(w_out), jnp.asarray(h0))
    f = vmap2(m, state_in_axes={0: All(OfType(brainstate.ParamState), Not(WithTag("out"))),
                                1: "out"},
              state_out_axes={0: brainstate.HiddenState})
    outs = f(jnp.asarray(xs))
    hs = []
    for i in range(n):
        h = np.tanh(h0 + w_in[i] * xs[i])
        hs.append(h)
        np.testing.assert_allclose(outs[i], (h * w_out[:, i]).sum(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.h.value, np.stack(hs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.w_in.value, w_in)  # read only: unchanged


# --- arguments --------------------------------------------------------------------------------


class TestArguments:
    def test_kwargs_are_mapped_at_axis_0_like_jax(self):
        def f(x, *, scale):
            return x * scale

        x, s = ar(3), f32(2, 3, 4)
        np.testing.assert_allclose(vmap2(f)(x, scale=s), jax.vmap(f)(x, scale=s))

    def test_static_argnames_broadcast(self):
        sm = StatefulMapping(lambda x, *, scale: x * scale, static_argnames="scale")
        np.testing.assert_allclose(sm(ar(3), scale=2.0), ar(3) * 2)
        np.testing.assert_allclose(sm(ar(3), scale=3.0), ar(3) * 3)

    def test_static_argnums_closed_over_and_keyed(self):
        calls = []

        def f(x, flag, y):
            calls.append(flag)
            return (x + y) * (2.0 if flag else 1.0)

        sm = StatefulMapping(f, in_axes=(0, None, 0), static_argnums=-2)
        np.testing.assert_allclose(sm(ar(3), True, jnp.ones(3)), (ar(3) + 1) * 2)
        np.testing.assert_allclose(sm(ar(3), False, jnp.ones(3)), ar(3) + 1)
        n = len(calls)
        sm(ar(3), True, jnp.ones(3))  # warm: no Python call
        assert len(calls) == n

    def test_static_argnums_out_of_range(self):
        sm = StatefulMapping(lambda x, f: x, static_argnums=5)
        with pytest.raises(ValueError, match=r"static_argnums=\(5,\) refers to positional"):
            sm(ar(3), True)

    def test_unhashable_static_value(self):
        sm = StatefulMapping(lambda x, f: x, static_argnums=1)
        with pytest.raises(TypeError, match="Static arguments must be hashable"):
            sm(ar(3), np.ones(2))

    @pytest.mark.parametrize("static", [False, True])
    def test_in_axes_length_mismatch(self, static):
        sm = StatefulMapping(lambda x, y: x, in_axes=(0,), static_argnums=(1,) if static else ())
        with pytest.raises(ValueError, match="in_axes has 1 entries but .* 2 positional"):
            sm(ar(3), ar(3))

    def test_mapped_state_rank_too_small(self):
        a = brainstate.ParamState(jnp.zeros(3))
        f = vmap2(lambda x: a.value + x, state_in_axes={1: a})
        with pytest.raises(ValueError, match=r"cannot map axis 1 of ParamState.*shape \(3,\)"):
            f(ar(3))

    def test_inconsistent_sizes(self):
        a = brainstate.ParamState(jnp.zeros(4))
        f = vmap2(lambda x: a.value + x, state_in_axes=a)
        with pytest.raises(ValueError, match=r"^vmap2 got inconsistent sizes.*ParamState.*"
                                             r"mapped by state_in_axes") as exc:
            f(ar(3))
        assert "in_states" not in str(exc.value).replace("state_in_axes", "")

    def test_axis_size_conflict_names_the_transform(self):
        with pytest.raises(ValueError, match=r"^vmap2 axis_size=5 conflicts with the mapped "
                                             r"axis size 3 of args\[0\]"):
            vmap2(lambda x: x, axis_size=5)(ar(3))

    def test_nothing_mapped_needs_axis_size(self):
        with pytest.raises(ValueError, match="Specify axis_size"):
            vmap2(lambda x: x, in_axes=None)(f32(1))
        assert vmap2(lambda x: x, in_axes=None, axis_size=2)(f32(1)).shape == (2, 1)

    def test_pytree_prefix_in_axes_and_out_axes(self):
        f = lambda d: jnp.stack([d["a"] + d["b"], d["a"]])
        arg = {"a": ar(3), "b": jnp.float32(10)}
        in_axes = ({"a": 0, "b": None},)
        np.testing.assert_allclose(vmap2(f, in_axes=in_axes, out_axes=1)(arg),
                                   jax.vmap(f, in_axes=in_axes, out_axes=1)(arg))


# --- caching and re-resolution ----------------------------------------------------------------


class TestCaching:
    def test_warm_call_traces_nothing_and_probe_flag(self):
        flags = []

        @vmap2
        def f(x):
            flags.append(in_new_state_probe())
            return x * 2

        f(ar(3))
        assert flags == [True, False]
        f(ar(3) + 1)
        assert flags == [True, False]
        f(ar(4))  # a new signature: probe + trace again
        assert flags == [True, False, True, False]
        assert not in_new_state_probe()

    def test_reprobe_after_rebind(self):
        a = brainstate.ParamState(jnp.zeros(3))
        f = vmap2(_rmw(a), state_in_axes=a)
        f(f32(1, 2, 3))
        with brainstate.check_state_value_tree(False):
            a.value = jnp.zeros(4)
        np.testing.assert_allclose(f(f32(1, 2, 3, 4)), [1, 2, 3, 4])
        assert a.value.shape == (4,)

    def test_clear_cache(self):
        calls = []
        f = vmap2(lambda x: calls.append(1) or x)
        f(ar(2))
        f.clear_cache()
        f(ar(2))
        assert len(calls) == 4

    def test_probe_rolls_back_and_poisons_inner_states(self):
        a = brainstate.ParamState(jnp.zeros(3))
        made = []

        @vmap2(state_in_axes=a)
        def f(x):
            made.append(brainstate.State(x))
            a.value = a.value + x
            return x

        f(f32(1, 2, 3))
        np.testing.assert_allclose(a.value, [1, 2, 3])
        with pytest.raises(Exception, match="poison|invalid|trace"):
            made[0].value

    def test_failing_function_leaves_states_untouched(self):
        a = brainstate.ParamState(jnp.zeros(3))

        @vmap2(state_in_axes=a)
        def f(x):
            a.value = a.value + x
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            f(f32(1, 2, 3))
        np.testing.assert_allclose(a.value, np.zeros(3))
        assert not isinstance(a.value, jax.core.Tracer)


# --- composition ------------------------------------------------------------------------------


class TestComposition:
    def test_jit_of_vmap2(self):
        counter = brainstate.ShortTermState(jnp.zeros(3))
        f = jit(vmap2(_rmw(counter), state_in_axes=brainstate.ShortTermState))
        f(f32(1, 2, 3))
        f(f32(1, 2, 3))
        np.testing.assert_allclose(counter.value, [2, 4, 6])

    def test_grad_through_vmap2_matches_jax(self):
        w = brainstate.ParamState(f32(1, 2, 3))

        def loss(xs):
            return vmap2(lambda x: (w.value * x) ** 2, state_in_axes=w)(xs).sum()

        g = grad(loss, grad_states=w)(f32(3, 4, 5))
        np.testing.assert_allclose(
            g, jax.grad(lambda wv: (jax.vmap(lambda a, b: (a * b) ** 2)(wv, f32(3, 4, 5))).sum())(
                f32(1, 2, 3)), rtol=1e-6)

    def test_per_lane_grad_inside_vmap2(self):
        # the state is first seen inside the nested grad trace
        w = brainstate.ParamState(jnp.float32(2.0))
        per_lane = lambda x: grad(lambda y: (y ** 2) * w.value, grad_states=w)(x)
        np.testing.assert_allclose(vmap2(per_lane)(f32(1, 2, 3)), [1, 4, 9])

    def test_vmap2_inside_for_loop(self):
        h = brainstate.HiddenState(jnp.zeros(3))
        step = vmap2(_rmw(h), state_in_axes=h)
        for_loop(lambda x: step(x), jnp.ones((4, 3)))
        np.testing.assert_allclose(h.value, [4, 4, 4])

    def test_nested_vmap2(self):
        a = brainstate.ParamState(ar(2, 3))

        @vmap2(state_in_axes=a)
        def outer(x):
            return vmap2(lambda y: a.value * y, state_in_axes=a)(x)

        np.testing.assert_allclose(outer(ar(2, 3)), ar(2, 3) * ar(2, 3))

    def test_new_states_inside_are_local(self):
        @jit
        @vmap2
        def f(x):
            s = brainstate.ShortTermState(jnp.zeros(()))
            s.value = s.value + x
            return s.value * 2

        np.testing.assert_allclose(f(ar(3)), ar(3) * 2)

    def test_psum_and_axis_index(self):
        s = brainstate.ShortTermState(jnp.zeros(4))

        def f(x):
            s.value = x / jax.lax.psum(x, "i") + jax.lax.axis_index("i").astype(x.dtype)
            return s.value

        out = vmap2(f, axis_name="i", state_out_axes=s)(f32(1, 2, 3, 4))
        expected = jax.vmap(lambda x: x / jax.lax.psum(x, "i")
                            + jax.lax.axis_index("i").astype(x.dtype),
                            axis_name="i")(f32(1, 2, 3, 4))
        np.testing.assert_allclose(out, expected, rtol=1e-6)
        np.testing.assert_allclose(s.value, expected, rtol=1e-6)

    def test_axis_name_sized_by_states_only(self):
        a = brainstate.ParamState(f32(1, 2, 3))
        f = vmap2(lambda: a.value / jax.lax.psum(a.value, "i"), in_axes=(), axis_name="i",
                  state_in_axes=a)
        np.testing.assert_allclose(f(), f32(1, 2, 3) / 6, rtol=1e-6)


# --- pmap2 (one CPU device: axis size 1) ---------------------------------------------------


class TestPmap2:
    def test_pmap2_maps_states_over_devices(self):
        n = jax.local_device_count()
        p = brainstate.ParamState(jnp.ones((n, 2)))

        @pmap2(axis_name="d", state_in_axes=p)
        def f(x):
            p.value = p.value + jax.lax.psum(x, "d")
            return p.value

        out = f(jnp.ones((n, 2)))
        np.testing.assert_allclose(out, np.full((n, 2), 1.0 + n))
        np.testing.assert_allclose(p.value, out)

    def test_pmap2_with_nothing_mapped_and_random(self):
        n = jax.local_device_count()
        out = pmap2(lambda x: x + brainstate.random.uniform(), in_axes=None,
                    axis_size=n)(jnp.float32(0))
        assert out.shape == (n,)

    def test_pmap2_decorator_and_refusals(self):
        deco = pmap2(in_axes=0)
        assert isinstance(deco, functools.partial)
        assert isinstance(deco(lambda x: x), StatefulMapping)
        with pytest.raises(NotImplementedError, match="static_broadcasted_argnums"):
            pmap2(lambda x: x, static_broadcasted_argnums=0)
        with pytest.raises(NotImplementedError, match="donate_argnums"):
            pmap2(static_broadcasted_argnums=(), donate_argnums=(0,))(lambda x: x)


# --- new states -------------------------------------------------------------------------------


class Ensemble(brainstate.nn.Module):
    def init_state(self, k=3):
        self.w = brainstate.ParamState(brainstate.random.randn(k))
        self.b = brainstate.ShortTermState(self.w.value * 2.0)
        self.c = NonBatchState(jnp.ones(()))


class TestNewStates:
    def test_vmap2_new_states_batches_and_returns_groups(self):
        brainstate.random.seed(0)
        m = Ensemble()
        made = vmap2_new_states(m, {"k": 2}, axis_size=4, state_tag="ens")
        assert m.w.value.shape == (4, 2) and m.b.value.shape == (4, 2)
        assert m.c.value.shape == ()
        np.testing.assert_allclose(m.b.value, m.w.value * 2.0)
        assert not np.allclose(m.w.value[0], m.w.value[1])
        assert [st is m.w for st in made[0]] == [True, False]
        assert made[None] == [m.c] and "ens" in m.w.tag

    def test_state_out_axes_routes_to_axis_1(self):
        m = Ensemble()
        made = vmap2_new_states(m, {}, axis_size=5,
                                state_out_axes={1: brainstate.ShortTermState})
        assert m.w.value.shape == (5, 3) and m.b.value.shape == (3, 5)
        np.testing.assert_allclose(m.b.value, (m.w.value * 2.0).T)
        assert made[1] == [m.b]

    def test_none_selected_lane_dependent_raises(self):
        brainstate.random.seed(0)
        key = np.asarray(brainstate.random.DEFAULT.value)
        with pytest.raises(BatchAxisError, match=r"ParamState.*selected at None"):
            vmap2_new_states(Ensemble(), {}, axis_size=3,
                             state_out_axes={None: brainstate.ParamState})
        np.testing.assert_array_equal(np.asarray(brainstate.random.DEFAULT.value), key)

    def test_argument_errors(self):
        with pytest.raises(ValueError, match="requires axis_size"):
            vmap2_new_states(Ensemble(), {})
        with pytest.raises(ValueError, match="positive int"):
            vmap2_new_states(Ensemble(), {}, axis_size=0)
        with pytest.raises(TypeError, match="init_all_states method"):
            vmap2_new_states(object(), {}, axis_size=2)
        with pytest.raises(TypeError, match="init_kwargs must be a mapping"):
            vmap2_new_states(Ensemble(), [1], axis_size=2)

    def test_pmap2_new_states_default_axis_size(self):
        m = Ensemble()
        made = pmap2_new_states(m, None)
        n = jax.local_device_count()
        assert m.w.value.shape == (n, 3) and m.c.value.shape == ()
        assert set(made) == {0, None}

    def test_initialiser_runs_once(self):
        calls = []

        class M(brainstate.nn.Module):
            def init_state(self):
                calls.append(in_new_state_probe())
                self.x = brainstate.ShortTermState(jnp.zeros(2))

        vmap2_new_states(M(), {}, axis_size=3)
        assert calls == [False]



# --- inspection: cache keys and the compiled computation's jaxpr ------------------------------


def test_cache_key_and_jaxpr_of_a_called_mapping():
    s = brainstate.State(jnp.zeros(2))

    def f(x):
        s.value = s.value + x
        return x * 2

    m = vmap2(f, state_in_axes={0: brainstate.State})
    x = jnp.ones(2)
    key = m.get_arg_cache_key(x)
    with pytest.raises(ValueError, match="no traced computation for this cache key"):
        m.get_jaxpr_by_cache(key)
    m(x)
    assert m.get_arg_cache_key(x) == key
    jaxpr = m.get_jaxpr_by_cache(key)
    assert len(jaxpr.in_avals) == 2 and len(jaxpr.out_avals) == 2  # x, s -> out, s
    assert "mul" in str(jaxpr) and "add" in str(jaxpr)


def test_compile_if_miss_traces_without_running():
    s = brainstate.State(jnp.zeros(3))
    calls = []

    def f(x):
        calls.append(1)
        s.value = s.value + x
        return x

    m = vmap2(f, state_in_axes={0: brainstate.State})
    x = jnp.ones(3)
    key = m.get_arg_cache_key(x, compile_if_miss=True)
    np.testing.assert_array_equal(s.value, np.zeros(3))  # nothing ran
    assert m.get_jaxpr_by_cache(key).out_avals[1].shape == (3,)
    n = len(calls)
    m(x)  # warm: the traced computation is reused
    assert len(calls) == n
    np.testing.assert_array_equal(s.value, np.ones(3))


def test_get_jaxpr_with_static_arguments():
    m = StatefulMapping(lambda x, k: x * k, in_axes=(0, None), static_argnums=1)
    x = jnp.ones(4)
    j2, j3 = m.get_jaxpr(x, 2.0), m.get_jaxpr(x, 3.0)
    assert "2.0" in str(j2) and "3.0" in str(j3)
    assert m.get_arg_cache_key(x, 2.0) != m.get_arg_cache_key(x, 3.0)



@pytest.mark.parametrize("make, extra", [
    (lambda f: brainstate.transform.vmap(f), ()),
    (lambda f: brainstate.transform.vmap2(f, in_axes=0), ()),
    (lambda f: StatefulMapping(lambda x, k: f(x), in_axes=(0, None), static_argnums=1), (1,)),
], ids=["vmap", "vmap2", "static-argument"])
def test_a_plan_is_not_reused_under_the_other_64_bit_setting(make, extra):
    # as jit: a plan traced with x64 off makes float32 constants, so x64 needs its own plan
    mapped = make(lambda x: jnp.zeros(x.shape))
    args = (jnp.ones(3, jnp.float32), *extra)
    for precision, dtype in ((32, jnp.float32), (64, jnp.float64), (32, jnp.float32)):
        with brainstate.environ.context(precision=precision):
            assert mapped(*args).dtype == dtype
            assert brainstate.transform.jit(mapped, static_argnums=1 if extra else ())(
                *args).dtype == dtype
