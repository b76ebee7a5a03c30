"""State-aware loops: scan, for_loop, while_loop and bounded variants."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import StateSignatureError, TraceContextError
from brainstate.transform import grad, jit
from brainstate.transform._cond import cond
from brainstate.transform._loop import (
    bounded_while_loop,
    checkpointed_for_loop,
    checkpointed_scan,
    for_loop,
    scan,
    while_loop,
)
from brainstate.transform._progress import ProgressBar

F32 = jnp.float32


def _scan_counts(eqn):
    """(number of constants, number of carried values) of a scan equation, on any JAX."""
    p = eqn.params
    if "num_carry" in p:
        return p["num_consts"], p["num_carry"]
    consts, carry, _ = p["ft_in"].unpack()  # JAX 0.12: flat trees of (consts, carry, xs)
    return len(list(consts.vals)), len(list(carry.vals))


def _scans(jaxpr):
    """Every scan equation of a (closed) jaxpr, nested jit/pjit bodies included."""
    found = []

    def walk(jx):
        for eqn in jx.eqns:
            if eqn.primitive.name == "scan":
                found.append(eqn)
            for p in eqn.params.values():
                inner = getattr(p, "jaxpr", None)
                if inner is not None:
                    walk(getattr(inner, "jaxpr", inner))

    walk(getattr(jaxpr, "jaxpr", jaxpr))
    return found


# --- scan -----------------------------------------------------------------------------------


class TestScan:
    def test_carry_ys_and_written_state(self):
        total = brainstate.State(jnp.zeros((), F32))

        def step(c, x):
            total.value = total.value + x
            return c + 1, total.value

        c, ys = scan(step, 0, jnp.arange(4.0))
        assert int(c) == 4
        np.testing.assert_allclose(ys, [0.0, 1.0, 3.0, 6.0])
        assert float(total.value) == 6.0

    def test_read_only_state_is_invariant_and_unchanged(self):
        w = brainstate.ParamState(jnp.full((3,), 2.0, F32))

        def step(c, x):
            return c + w.value * x, c

        c, _ = scan(step, jnp.zeros(3, F32), jnp.arange(3.0))
        np.testing.assert_allclose(c, [6.0, 6.0, 6.0])
        np.testing.assert_allclose(w.value, [2.0, 2.0, 2.0])

    def test_reverse(self):
        log = brainstate.State(jnp.zeros((), F32))

        def step(c, x):
            log.value = log.value * 10 + x
            return c, log.value

        _, ys = scan(step, None, jnp.array([1.0, 2.0, 3.0]), reverse=True)
        # processed 3, 2, 1; ys stay aligned with xs
        np.testing.assert_allclose(ys, [321.0, 32.0, 3.0])
        assert float(log.value) == 321.0

    def test_length_without_xs_and_unroll(self):
        n = brainstate.State(jnp.zeros((), jnp.int32))

        def step(c, _):
            n.value = n.value + 1
            return c * 2, n.value

        c, ys = scan(step, 1, None, length=5, unroll=2)
        assert int(c) == 32
        assert ys.tolist() == [1, 2, 3, 4, 5]
        assert int(n.value) == 5

    def test_pytree_xs_and_carry(self):
        xs = {"a": jnp.ones((3, 2), F32), "b": (jnp.arange(3.0),)}

        def step(c, x):
            return {"s": c["s"] + x["a"].sum() + x["b"][0]}, x["b"][0] * 2

        c, ys = scan(step, {"s": jnp.zeros((), F32)}, xs)
        assert float(c["s"]) == 9.0
        np.testing.assert_allclose(ys, [0.0, 2.0, 4.0])

    def test_body_traced_once(self):
        calls = []

        def step(c, x):
            calls.append(1)
            return c + x, c

        scan(step, jnp.zeros((), F32), jnp.arange(100.0))
        assert len(calls) == 1

    def test_written_states_are_carry_read_states_are_consts(self):
        v = brainstate.HiddenState(jnp.zeros(5, F32))
        b = brainstate.ParamState(jnp.ones(5, F32))

        def run(xs):
            def step(x):
                v.value = v.value * 0.9 + b.value + x
                return v.value

            return for_loop(step, xs)

        jaxpr = jit(run).stateful_fun.get_jaxpr(jnp.ones((7, 5), F32))
        (eqn,) = _scans(jaxpr)
        # only v is carried; b is closed over, never copied per step
        assert _scan_counts(eqn) == (1, 1)

    def test_body_matches_hand_written_scan(self):
        v = brainstate.HiddenState(jnp.zeros(4, F32))

        def body(x):
            nv = v.value + 0.1 * (x - v.value)
            spike = nv >= 1.0
            v.value = jnp.where(spike, 0.0, nv)
            return spike

        ours = jit(lambda xs: for_loop(body, xs)).stateful_fun.get_jaxpr(jnp.ones((3, 4), F32))

        def raw_body(v, x):
            nv = v + 0.1 * (x - v)
            spike = nv >= 1.0
            return jnp.where(spike, 0.0, nv), spike

        raw = jax.make_jaxpr(lambda v, xs: jax.lax.scan(raw_body, v, xs))(
            jnp.zeros(4, F32), jnp.ones((3, 4), F32))
        (a,), (b,) = _scans(ours), _scans(raw)
        prims = lambda e: [q.primitive.name for q in e.params["jaxpr"].jaxpr.eqns]  # noqa: E731
        assert prims(a) == prims(b)

    @pytest.mark.parametrize("bad", [None, 3, "f"])
    def test_non_callable(self, bad):
        with pytest.raises(TypeError, match="callable"):
            scan(bad, 0, jnp.ones(3))

    def test_leaf_without_leading_axis(self):
        with pytest.raises(ValueError, match="no leading axis"):
            scan(lambda c, x: (c, x), 0, [1.0, 2.0])
        with pytest.raises(ValueError, match="no leading axis"):
            scan(lambda c, x: (c, x), 0, jnp.ones(()))

    def test_length_disagrees(self):
        with pytest.raises(ValueError, match="disagrees"):
            scan(lambda c, x: (c, x), 0, jnp.ones(3), length=4)

    def test_different_sizes(self):
        with pytest.raises(ValueError, match="different leading axis sizes"):
            scan(lambda c, x: (c, x), 0, (jnp.ones(3), jnp.ones(4)))

    def test_no_xs_no_length(self):
        with pytest.raises(ValueError, match="length"):
            scan(lambda c, x: (c, x), 0, None)

    @pytest.mark.parametrize("bad", ["10", 1.5, object()])
    def test_pbar_type(self, bad):
        with pytest.raises(TypeError, match="pbar"):
            scan(lambda c, x: (c, x), 0, jnp.ones(3), pbar=bad)

    def test_pbar_non_positive_int(self):
        with pytest.raises(ValueError, match="pbar"):
            for_loop(lambda x: x, jnp.ones(3), pbar=0)

    def test_body_not_returning_pair(self):
        with pytest.raises(TypeError, match="pair"):
            scan(lambda c, x: c, 0.0, jnp.ones(3))

    def test_carry_type_change(self):
        with pytest.raises(TypeError, match="carry"):
            scan(lambda c, x: (c + x, x), 0, jnp.ones(3, F32))  # int carry becomes float
        with pytest.raises(TypeError, match="carry"):
            scan(lambda c, x: ((c, c), x), jnp.zeros(()), jnp.ones(3))

    def test_disable_jit_runs_python(self):
        seen = []
        total = brainstate.State(jnp.zeros((), F32))

        def step(c, x):
            seen.append(float(x))  # concrete under disable_jit
            total.value = total.value + x
            return c + x, c

        with jax.disable_jit():
            c, ys = scan(step, jnp.zeros((), F32), jnp.array([1.0, 2.0, 3.0]), reverse=True)
        assert seen == [3.0, 2.0, 1.0]
        assert float(c) == 6.0 and float(total.value) == 6.0
        np.testing.assert_allclose(ys, [5.0, 3.0, 0.0])

    def test_disable_jit_zero_length(self):
        with jax.disable_jit(), pytest.raises(ValueError, match="zero-length"):
            scan(lambda c, x: (c, x), 0.0, jnp.ones((0,)))

    def test_zero_length_compiled(self):
        c, ys = scan(lambda c, x: (c + x, x * 2), jnp.zeros((), F32), jnp.ones((0,), F32))
        assert float(c) == 0.0 and ys.shape == (0,)


# --- for_loop -------------------------------------------------------------------------------


class TestForLoop:
    def test_basic(self):
        v = brainstate.HiddenState(jnp.zeros(3, F32))

        def step(i):
            v.value = v.value + i
            return v.value.sum()

        np.testing.assert_allclose(for_loop(step, jnp.arange(3.0)), [0.0, 3.0, 9.0])
        np.testing.assert_allclose(v.value, [3.0, 3.0, 3.0])

    def test_several_xs_and_length_only(self):
        out = for_loop(lambda a, b: a * b, jnp.arange(3.0), jnp.arange(3.0) + 1)
        np.testing.assert_allclose(out, [0.0, 2.0, 6.0])
        n = brainstate.State(jnp.zeros((), jnp.int32))

        def tick():
            n.value = n.value + 1

        assert for_loop(tick, length=4) is None
        assert int(n.value) == 4

    def test_non_callable(self):
        with pytest.raises(TypeError, match="for_loop"):
            for_loop(42, jnp.ones(3))

    def test_inside_jit_advances_per_call(self):
        a = brainstate.State(jnp.zeros(3, F32))
        w = brainstate.ParamState(jnp.ones(3, F32))

        @jit
        def run(xs):
            def body(x):
                a.value = a.value + w.value * x
                return a.value.sum()

            return for_loop(body, xs)

        np.testing.assert_allclose(run(jnp.arange(4.0)), [0.0, 3.0, 9.0, 18.0])
        np.testing.assert_allclose(run(jnp.arange(4.0)), [18.0, 21.0, 27.0, 36.0])
        np.testing.assert_allclose(a.value, [12.0, 12.0, 12.0])
        assert run.stateful_fun.get_cache_stats()["compilation_cache"]["size"] == 1

    def test_jit_closure_over_outer_tracer(self):
        a = brainstate.State(jnp.zeros((), F32))

        @jit
        def run(scale):
            def body(x):
                a.value = a.value + scale * x
                return a.value

            return for_loop(body, jnp.ones(3, F32))

        np.testing.assert_allclose(run(2.0), [2.0, 4.0, 6.0])
        assert float(a.value) == 6.0

    def test_nested_for_loops(self):
        c = brainstate.State(jnp.zeros((), F32))

        def outer(x):
            def inner(y):
                c.value = c.value + y * x
                return c.value

            return for_loop(inner, jnp.arange(3.0))

        out = for_loop(outer, jnp.arange(2.0))
        np.testing.assert_allclose(out, [[0.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
        assert float(c.value) == 3.0
        out = jit(lambda xs: for_loop(outer, xs))(jnp.arange(2.0))
        assert float(c.value) == 6.0

    def test_cond_inside_for_loop(self):
        cnt = brainstate.State(jnp.zeros((), jnp.int32))

        def body(x):
            def hit():
                cnt.value = cnt.value + 1

            cond(x > 1, hit, lambda: None)
            return cnt.value

        out = jit(lambda xs: for_loop(body, xs))(jnp.arange(5.0))
        assert out.tolist() == [0, 0, 1, 2, 3]
        assert int(cnt.value) == 3

    def test_enclosing_trace_records_loop_states(self):
        v = brainstate.State(jnp.zeros((), F32))
        r = brainstate.State(jnp.ones((), F32))

        def body(x):
            v.value = v.value + r.value * x

        with brainstate.StateTraceStack() as trace:
            for_loop(body, jnp.ones(3, F32))
        assert [s is v for s in trace.get_write_states()] == [True]
        assert [s is r for s in trace.get_read_states()] == [True]

    def test_grad_through_for_loop(self):
        w = brainstate.ParamState(jnp.ones(3, F32))

        def loss(xs):
            h = brainstate.State(jnp.zeros(3, F32))

            def body(x):
                h.value = h.value * 0.5 + w.value * x
                return h.value.sum()

            return for_loop(body, xs).sum()

        g = grad(loss, grad_states=w)(jnp.arange(3.0))
        np.testing.assert_allclose(g, [3.5, 3.5, 3.5])

    def test_raw_vmap_with_read_only_state(self):
        w = brainstate.ParamState(jnp.ones(3, F32))
        out = jax.vmap(lambda s: for_loop(lambda y: w.value * y * s, jnp.arange(2.0)))(
            jnp.arange(3.0))
        assert out.shape == (3, 2, 3)
        np.testing.assert_allclose(out[2, 1], [2.0, 2.0, 2.0])

    def test_raw_jax_jit_write_is_refused(self):
        a = brainstate.State(jnp.zeros((), F32))

        def body(x):
            a.value = a.value + x

        with pytest.raises(TraceContextError, match="raw"):
            jax.jit(lambda xs: for_loop(body, xs))(jnp.ones(3, F32))
        assert float(a.value) == 0.0
        assert not isinstance(a.value, jax.core.Tracer)

    def test_with_progress_bar_int(self, capsys):
        a = brainstate.State(jnp.zeros((), F32))

        def body(x):
            a.value = a.value + x
            return a.value

        out = for_loop(body, jnp.ones(10, F32), pbar=5)
        jax.effects_barrier()
        np.testing.assert_allclose(out, np.arange(1.0, 11.0))
        assert "10/10" in capsys.readouterr().err


# --- states created inside, rollback, signatures ----------------------------------------


class TestStateLifecycle:
    def test_state_created_in_body_is_not_carried_and_poisoned(self):
        a = brainstate.State(jnp.zeros((), F32))
        box = {}

        def body(x):
            st = brainstate.State(jnp.zeros((), F32))
            st.value = st.value + x
            box["st"] = st
            a.value = a.value + st.value
            return st.value

        np.testing.assert_allclose(for_loop(body, jnp.ones(3, F32)), [1.0, 1.0, 1.0])
        assert float(a.value) == 3.0
        with pytest.raises(TraceContextError):
            box["st"].value

    def test_state_created_in_jit_is_tracked_by_inner_loop(self):
        @jit
        def run(xs):
            st = brainstate.State(jnp.zeros((), F32))

            def body(x):
                st.value = st.value + x

            for_loop(body, xs)
            return st.value

        assert float(run(jnp.arange(4.0))) == 6.0
        assert run.stateful_fun.get_states(jnp.arange(4.0)) == ()

    def test_failed_trace_rolls_back_and_recovers(self):
        a = brainstate.State(jnp.zeros((), F32))
        fail = [True]

        def body(x):
            a.value = a.value + x
            if fail[0]:
                raise RuntimeError("boom")
            return a.value

        with pytest.raises(RuntimeError, match="boom"):
            for_loop(body, jnp.ones(3, F32))
        assert float(a.value) == 0.0 and not isinstance(a.value, jax.core.Tracer)
        fail[0] = False
        np.testing.assert_allclose(for_loop(body, jnp.ones(3, F32)), [1.0, 2.0, 3.0])

    def test_signature_change_in_body(self):
        a = brainstate.State(jnp.zeros((), F32))

        def body(x):
            a.value = jnp.zeros(3, F32)

        with pytest.raises(StateSignatureError):
            for_loop(body, jnp.ones(3, F32))
        assert a.value.shape == ()

    def test_state_as_xs_rejected(self):
        a = brainstate.State(jnp.zeros(3, F32))
        with pytest.raises(ValueError, match="cannot be an instance of State"):
            scan(lambda c, x: (c, x), a, jnp.ones(3))


# --- hooks ----------------------------------------------------------------------------------


class TestHooks:
    def test_write_after_fires_once_with_final_concrete_value(self):
        s = brainstate.State(jnp.zeros((), F32))

        def body(x):
            s.value = s.value + x

        for_loop(body, jnp.ones(3, F32))  # trace once without hooks
        seen = []
        s.register_hook("write_after", lambda ctx: seen.append(ctx.value))
        for_loop(body, jnp.ones(5, F32))
        concrete = [v for v in seen if not isinstance(v, jax.core.Tracer)]
        assert len(concrete) == 1
        assert float(concrete[0]) == 8.0

    def test_write_before_not_reapplied_at_write_back(self):
        t = brainstate.State(jnp.zeros((), F32))
        concrete_before = []

        def add_ten(ctx):
            if not isinstance(ctx.value, jax.core.Tracer):
                concrete_before.append(ctx.value)
            ctx.transformed_value = ctx.value + 10

        t.register_hook("write_before", add_ten)

        def body(x):
            t.value = t.value + x
            return t.value

        out = for_loop(body, jnp.ones(2, F32))
        # applied once per iteration inside the loop, never again at write-back
        np.testing.assert_allclose(out, [11.0, 22.0])
        assert float(t.value) == 22.0
        assert concrete_before == []

    def test_write_back_inside_jit_is_outer_tracer_then_concrete_once(self):
        s = brainstate.State(jnp.zeros((), F32))
        seen = []
        s.register_hook("write_after", lambda ctx: seen.append(ctx.value))

        @jit
        def run(xs):
            def body(x):
                s.value = s.value + x

            for_loop(body, xs)

        run(jnp.ones(4, F32))
        seen.clear()
        run(jnp.ones(4, F32))
        assert len(seen) == 1 and float(seen[0]) == 8.0


# --- while_loop -----------------------------------------------------------------------------


class TestWhileLoop:
    def test_basic_with_state(self):
        n = brainstate.State(jnp.zeros((), jnp.int32))

        def body(x):
            n.value = n.value + 1
            return x * 2.0

        assert float(while_loop(lambda x: x < 100.0, body, 1.0)) == 128.0
        assert int(n.value) == 7

    def test_cond_reads_state_written_by_body(self):
        n = brainstate.State(jnp.zeros((), jnp.int32))
        limit = brainstate.State(jnp.asarray(5, jnp.int32))

        def body(x):
            n.value = n.value + 1
            return x + 1

        out = while_loop(lambda x: n.value < limit.value, body, 0)
        assert int(out) == 5 and int(n.value) == 5 and int(limit.value) == 5

    def test_cond_writing_state(self):
        a = brainstate.State(jnp.zeros((), F32))

        def c(x):
            a.value = a.value + 1
            return x < 3

        with pytest.raises(ValueError,
                           match="while_loop: cond_fun should not have any write states."):
            while_loop(c, lambda x: x + 1, 0)
        assert float(a.value) == 0.0

    def test_non_callable(self):
        with pytest.raises(TypeError, match="callable"):
            while_loop(1, lambda x: x, 0)
        with pytest.raises(TypeError, match="callable"):
            while_loop(lambda x: x < 1, None, 0)

    def test_body_changes_type(self):
        with pytest.raises(TypeError, match="body_fun"):
            while_loop(lambda x: x < 3, lambda x: (x, x), 0)

    def test_disable_jit_runs_python(self):
        seen = []

        def body(x):
            seen.append(int(x))
            return x + 1

        with jax.disable_jit():
            assert int(while_loop(lambda x: x < 3, body, 0)) == 3
        assert seen == [0, 1, 2]

    def test_disable_jit_falls_back_under_vmap(self):
        with jax.disable_jit():
            out = jax.vmap(lambda v: while_loop(lambda x: x < v, lambda x: x + 1, 0))(
                jnp.arange(3))
        assert out.tolist() == [0, 1, 2]

    def test_disable_jit_fallback_rolls_back_python_iterations(self):
        n = brainstate.State(jnp.zeros((), jnp.int32))

        def body(x):
            n.value = n.value + 1  # concrete: allowed in the Python attempt
            return x + 1

        def c(x, v):
            # Python ints in the eager attempt: iteration 2 compares with the batched v
            return True if isinstance(x, int) and x < 1 else x < v

        with jax.disable_jit(), pytest.raises(TraceContextError):
            # the Python attempt is undone; the primitive then refuses to leak batched
            # tracers into n (raw vmap)
            jax.vmap(lambda v: while_loop(lambda x: c(x, v), body, 0))(jnp.arange(3))
        assert int(n.value) == 0

    def test_inside_jit_and_for_loop(self):
        n = brainstate.State(jnp.zeros((), jnp.int32))

        def body(x):
            n.value = n.value + 1
            return x + 1

        @jit
        def run(xs):
            return for_loop(lambda lim: while_loop(lambda x: x < lim, body, 0), xs)

        assert run(jnp.array([1, 2, 3])).tolist() == [1, 2, 3]
        assert int(n.value) == 6


# --- bounded_while_loop ---------------------------------------------------------------------


class TestBoundedWhileLoop:
    def test_caps_steps(self):
        assert int(bounded_while_loop(lambda v: v < 1000, lambda v: v + 1, 0,
                                      max_steps=37)) == 37
        assert int(bounded_while_loop(lambda v: v < 1000, lambda v: v + 1, 0,
                                      max_steps=37, base=2)) == 37
        assert int(bounded_while_loop(lambda v: v < 5, lambda v: v + 1, 0,
                                      max_steps=100)) == 5

    def test_zero_steps_returns_arrays(self):
        out = bounded_while_loop(lambda v: v < 5, lambda v: v + 1, (1, 2.0), max_steps=0)
        assert all(isinstance(x, jax.Array) for x in out)

    @pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
    def test_bad_max_steps(self, bad):
        with pytest.raises(ValueError, match="max_steps"):
            bounded_while_loop(lambda v: v < 5, lambda v: v + 1, 0, max_steps=bad)

    @pytest.mark.parametrize("bad", [1, 0, 2.0, None])
    def test_bad_base(self, bad):
        with pytest.raises(ValueError, match="base"):
            bounded_while_loop(lambda v: v < 5, lambda v: v + 1, 0, max_steps=3, base=bad)

    def test_reverse_mode_differentiable(self):
        def f(x):
            return bounded_while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x, max_steps=100)

        assert float(f(1.0)) == 16.0
        assert float(jax.grad(f)(1.0)) == 16.0
        assert float(jax.grad(f)(3.0)) == 4.0

    def test_per_lane_exit_under_vmap(self):
        f = lambda x: bounded_while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x,  # noqa
                                         max_steps=100)
        np.testing.assert_allclose(jax.vmap(f)(jnp.array([1.0, 3.0, 20.0])), [16.0, 12.0, 20.0])

    def test_states_threaded(self):
        n = brainstate.State(jnp.zeros((), jnp.int32))

        def body(v):
            n.value = n.value + 1
            return v + 1

        assert int(bounded_while_loop(lambda v: v < 5, body, 0, max_steps=100)) == 5
        assert int(n.value) == 5

    def test_cond_writing_state(self):
        a = brainstate.State(jnp.zeros((), F32))

        def c(x):
            a.value = a.value + 1
            return x < 3

        with pytest.raises(ValueError, match="cond_fun should not have any write states"):
            bounded_while_loop(c, lambda x: x + 1, 0, max_steps=4)


# --- checkpointed scan / for_loop ---------------------------------------------------------


class TestCheckpointed:
    def test_matches_scan_values_and_grads(self):
        w = brainstate.ParamState(jnp.asarray(0.5, F32))
        h = brainstate.State(jnp.zeros((), F32))

        def body(c, x):
            h.value = h.value + c
            return c * w.value + x, c

        xs = jnp.arange(37.0) / 37

        def loss_ckpt(xs):
            c, ys = checkpointed_scan(body, jnp.ones((), F32), xs, base=4)
            return c + ys.sum()

        def loss_scan(xs):
            c, ys = scan(body, jnp.ones((), F32), xs)
            return c + ys.sum()

        g1 = grad(loss_ckpt, grad_states=w)(xs)
        h1 = float(h.value)
        g2 = grad(loss_scan, grad_states=w)(xs)
        np.testing.assert_allclose(g1, g2, rtol=1e-5)
        np.testing.assert_allclose(float(h.value), 2 * h1, rtol=1e-5)

    def test_for_loop(self):
        a = brainstate.State(jnp.zeros((), F32))

        def body(x):
            a.value = a.value + x
            return a.value

        np.testing.assert_allclose(checkpointed_for_loop(body, jnp.arange(5.0)),
                                   [0.0, 1.0, 3.0, 6.0, 10.0])
        assert float(a.value) == 10.0

    def test_errors(self):
        with pytest.raises(ValueError, match="length"):
            checkpointed_scan(lambda c, x: (c, x), 0.0, jnp.ones((0,)))
        with pytest.raises(ValueError, match="base"):
            checkpointed_scan(lambda c, x: (c, x), 0.0, jnp.ones(3), base=1)
        with pytest.raises(ValueError, match="pair"):
            checkpointed_scan(lambda c, x: c, 0.0, jnp.ones(3))
        with pytest.raises(TypeError, match="callable"):
            checkpointed_for_loop(None, jnp.ones(3))

    def test_with_progress_bar(self):
        import io

        buf = io.StringIO()
        out = checkpointed_for_loop(lambda x: x * 2, jnp.arange(6.0),
                                    pbar=ProgressBar(freq=3, use_tqdm=False, file=buf,
                                                     min_interval=0.0))
        jax.effects_barrier()
        np.testing.assert_allclose(out, np.arange(6.0) * 2)
        assert "3/6" in buf.getvalue() and "6/6" in buf.getvalue()


def test_lif_for_loop_compiles_to_the_raw_scan_program(hlo_op_counts):
    # bench_loops.py compares a LIF network in for_loop inside jit with a hand-written
    # jax.lax.scan; this pins that both compile to the same program (op for op), so any
    # timing difference is the per-call path, not the loop.
    n, steps = 64, 50
    drive = jnp.linspace(0.5, 1.5, steps * n, dtype=jnp.float32).reshape(steps, n)
    bias = jnp.linspace(0.0, 0.2, n, dtype=jnp.float32)

    def lif(v, b, current):
        v = v + 0.1 * (b + current - v)
        spike = v >= 1.0
        return jnp.where(spike, 0.0, v), spike

    v_state = brainstate.HiddenState(jnp.zeros(n, jnp.float32))
    b_state = brainstate.ParamState(bias)

    def step(current):
        v_state.value, spike = lif(v_state.value, b_state.value, current)
        return spike

    def raw(v, b, xs):
        return jax.lax.scan(lambda v, x: lif(v, b, x), v, xs)

    ours = jit(lambda xs: for_loop(step, xs)).lower(drive).compile().as_text()
    ref = jax.jit(raw).lower(v_state.value, bias, drive).compile().as_text()
    counts = hlo_op_counts(ours)
    assert counts["while"] == 1 and counts == hlo_op_counts(ref)
