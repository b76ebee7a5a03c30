"""``debug_nan``, ``debug_nan_if``, ``breakpoint_if`` and ``StatefulFunction.debug_call``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import (
    StatefulFunction,
    breakpoint_if,
    debug_nan,
    debug_nan_if,
    for_loop,
    jit,
    vmap,
)
from brainstate.transform._debug import DebugNan, _has_nan_flag


def _log_twice(x):
    y = jnp.log(x)  # the NaN source
    return y * 2.0


class TestHasNanFlag:
    @pytest.mark.parametrize("values, expected", [
        ([jnp.array([1.0, 2.0])], False),
        ([jnp.array([1.0, jnp.nan])], True),
        ([jnp.array([-jnp.inf])], True),
        ([jnp.array([1, 2])], False),
        ([], False),
        ([jnp.array([jnp.nan + 0j], dtype=jnp.complex64)], True),
    ])
    def test_flag(self, values, expected):
        assert bool(_has_nan_flag(values)) is expected


class TestDebugNanEager:
    def test_clean_is_silent(self):
        debug_nan(lambda x: x * 2.0 + 1.0, jnp.array([1.0, 2.0]))

    def test_reports_primitive_and_user_line(self):
        with pytest.raises(RuntimeError) as info:
            debug_nan(_log_twice, jnp.array([-1.0, 1.0]), phase="forward")
        msg = str(info.value)
        assert "debug_nan [forward]: NaN/Inf detected in the output of _log_twice" in msg
        assert "Introduced by primitive: `log`" in msg
        assert f'File "{__file__}"' in msg and "in _log_twice" in msg
        assert "returned leaf 0: shape=(2,) float32: 1 NaN, 0 Inf" in msg
        assert "_make_jaxpr.py" not in msg

    def test_masked_nan_is_silent(self):
        xs = jnp.array([0.0, -1.0, 1.0])
        debug_nan(lambda x: jnp.where(x > 0, jnp.log(x), 0.0), xs)

    def test_unmasked_lane_raises(self):
        with pytest.raises(RuntimeError, match="`log`"):
            debug_nan(lambda x: jnp.where(x > 0, 0.0, jnp.log(x)), jnp.array([-1.0, 1.0]))

    def test_inf_not_localised(self):
        with pytest.raises(RuntimeError, match="could not be located") as info:
            debug_nan(jnp.exp, jnp.array([1e30]))
        assert "0 NaN, 1 Inf" in str(info.value)

    def test_division_by_zero(self):
        with pytest.raises(RuntimeError, match="division by zero"):
            debug_nan(lambda x: 1.0 / x, jnp.array([0.0, 1.0]))

    def test_state_write_named(self):
        s = brainstate.State(jnp.array([1.0]), name="membrane")

        def f(x):
            s.value = jnp.log(x)
            return jnp.zeros(())

        with pytest.raises(RuntimeError, match="written State 'membrane'"):
            debug_nan(f, jnp.array([-1.0]))
        np.testing.assert_array_equal(s.value, [1.0])  # never written

    def test_state_read_source(self):
        w = brainstate.State(jnp.array([1.0, -1.0]))
        with pytest.raises(RuntimeError, match="`log`"):
            debug_nan(lambda x: jnp.log(w.value) + x, jnp.array([1.0, 2.0]))

    @pytest.mark.parametrize("fn, x", [
        (jax.grad(lambda x: jnp.sum(jnp.log(x))), jnp.array([1.0, 2.0])),
        (jax.vmap(lambda x: jax.lax.cond(x > 0, jnp.log, lambda y: y * 2, x)),
         jnp.array([1.0, -1.0])),
        (lambda xs: jax.lax.scan(lambda c, x: (c + x, c), 0.0, xs)[0], jnp.arange(3.0)),
        (jax.checkpoint(lambda x: x * 2.0), jnp.array([1.0])),
        (jax.nn.softmax, jnp.array([1.0, 2.0])),
    ])
    def test_clean_higher_order_primitives(self, fn, x):
        debug_nan(fn, x)

    @pytest.mark.parametrize("fn", [
        jax.checkpoint(jnp.log),
        lambda xs: jax.lax.scan(lambda c, x: (c + jnp.log(x), c), 0.0, xs)[0],
        lambda x: jax.lax.cond(x[0] > 0, jnp.log, lambda y: y, x),
        jit(jnp.log),
    ])
    def test_nan_inside_higher_order_primitives(self, fn):
        with pytest.raises(RuntimeError, match="Introduced by primitive: `log`"):
            debug_nan(fn, jnp.array([1.0, -1.0]))

    def test_nan_input_flagged(self):
        with pytest.raises(RuntimeError, match="1 NaN"):
            debug_nan(lambda x: x * 2.0, jnp.array([1.0, jnp.nan]))


class TestDebugNanTraced:
    def test_inside_jit_clean(self):
        @jit
        def g(x):
            debug_nan(lambda y: y * 2.0, x)
            return x * 2.0

        assert float(g(jnp.asarray(1.5))) == 3.0

    def test_inside_jit_raises_at_run_time(self):
        @jit
        def g(x):
            debug_nan(_log_twice, x)
            return x

        with pytest.raises(Exception, match="Introduced by primitive: `log`"):
            jax.block_until_ready(g(jnp.asarray(-1.0)))

    def test_inside_for_loop(self):
        def body(x):
            debug_nan(jnp.sqrt, x)
            return x

        for_loop(body, jnp.arange(3.0))
        with pytest.raises(Exception, match="NaN/Inf detected"):
            jax.block_until_ready(for_loop(body, jnp.array([1.0, -1.0])))


class TestDebugNanIf:
    def test_false_is_silent(self):
        debug_nan_if(False, jnp.log, jnp.array([-1.0]))
        debug_nan_if(jnp.array(False), jnp.log, jnp.array([-1.0]))

    def test_true_raises(self):
        with pytest.raises(RuntimeError, match="`log`"):
            debug_nan_if(jnp.array(True), jnp.log, jnp.array([-1.0]))

    def test_traced_predicate(self):
        @jax.jit
        def f(x, trigger):
            debug_nan_if(trigger, jnp.log, x)
            return x

        jax.block_until_ready(f(jnp.array([-1.0]), jnp.array(False)))
        with pytest.raises(Exception, match="NaN/Inf detected"):
            jax.block_until_ready(f(jnp.array([-1.0]), jnp.array(True)))

    def test_vmapped_predicate_any_lane(self):
        def f(x, trigger):
            debug_nan_if(trigger, jnp.log, x)
            return x

        vmap(f)(jnp.array([-1.0, 1.0]), jnp.array([False, False]))
        with pytest.raises(Exception, match="NaN/Inf detected"):
            jax.block_until_ready(vmap(f)(jnp.array([-1.0, 1.0]), jnp.array([True, False])))

    def test_class_interface(self):
        d = DebugNan(jnp.log, jnp.array([-1.0]), phase="p")
        d.check_if(False)
        with pytest.raises(RuntimeError, match=r"\[p\]"):
            d.check()


class TestDebugNanErrors:
    def test_not_callable(self):
        with pytest.raises(TypeError, match="debug_nan needs a callable, got int"):
            debug_nan(3, jnp.ones(1))

    def test_phase_type(self):
        with pytest.raises(TypeError, match="phase must be a str, got int"):
            debug_nan(jnp.log, jnp.ones(1), phase=1)


@pytest.fixture
def recorder():
    """A JAX debugger backend that records calls instead of opening a prompt."""
    core = pytest.importorskip("jax._src.debugger.core")
    calls = []
    name = "brainstate-test-recorder"
    if name not in core._debugger_registry:
        core.register_debugger(name, lambda frames, thread_id, **kw: calls.append(frames), -100)
    core._debugger_registry[name] = (-100, lambda frames, thread_id, **kw: calls.append(frames))
    return name, calls


class TestBreakpointIf:
    def test_jaxpr_has_breakpoint_under_cond(self):
        jaxpr = jax.make_jaxpr(lambda x: breakpoint_if(x < 0))(1.0)
        conds = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "cond"]
        assert len(conds) == 1
        false_b, true_b = conds[0].params["branches"]
        assert not false_b.jaxpr.eqns
        assert [e.primitive.name for e in true_b.jaxpr.eqns] == ["debug_callback"]

    def test_false_returns_token(self):
        assert breakpoint_if(jnp.array(False)) is None

    def test_fires_only_when_true(self, recorder):
        backend, calls = recorder

        @jax.jit
        def f(x):
            breakpoint_if(x > 0, backend=backend)
            return x

        jax.block_until_ready(f(jnp.array(-1.0)))
        assert calls == []
        jax.block_until_ready(f(jnp.array(1.0)))
        assert len(calls) == 1

    def test_vmap_any_lane(self, recorder):
        backend, calls = recorder

        def f(x):
            breakpoint_if(x > 0, backend=backend)
            return x

        jax.block_until_ready(vmap(f)(jnp.array([-1.0, -2.0])))
        assert calls == []
        jax.block_until_ready(vmap(f)(jnp.array([-1.0, 2.0])))
        assert len(calls) == 2  # any lane true: JAX stops once per lane (each lane's locals)

    def test_non_scalar_pred(self):
        with pytest.raises(TypeError, match=r"pred must be a scalar, got shape \(2,\)"):
            breakpoint_if(jnp.array([True, False]))


class TestDebugCall:
    def test_matches_jaxpr_call_and_restores(self):
        acc = brainstate.State(jnp.array([0.0, 0.0]))
        w = brainstate.State(jnp.array(2.0))
        seen = []

        def f(x):
            seen.append(type(x))
            acc.value = acc.value + x * w.value
            return acc.value * 2

        sf = StatefulFunction(f)
        x = jnp.array([1.0, 3.0])
        vals = [jnp.array([1.0, 1.0]), jnp.array(3.0)]
        new1, out1 = sf.debug_call(vals, x)
        new2, out2 = sf.jaxpr_call(vals, x)
        for a, b in zip(new1, new2):
            np.testing.assert_allclose(a, b)
        np.testing.assert_allclose(out1, out2)
        np.testing.assert_allclose(out1, [8.0, 20.0])
        np.testing.assert_array_equal(acc.value, [0.0, 0.0])  # states put back
        assert float(w.value) == 2.0
        assert seen[-1] is type(x)  # the Python ran on concrete values

    def test_restores_on_error(self):
        s = brainstate.State(jnp.array(1.0))
        fail = [False]

        def f(x):
            s.value = s.value + x
            if fail[0]:
                raise RuntimeError("boom")
            return s.value

        sf = StatefulFunction(f)
        sf.make_jaxpr(1.0)
        fail[0] = True
        with pytest.raises(RuntimeError, match="boom"):
            sf.debug_call([jnp.array(5.0)], 1.0)
        assert float(s.value) == 1.0

    def test_length_mismatch(self):
        a, b = brainstate.State(jnp.ones(1)), brainstate.State(jnp.ones(1))

        def f(x):
            a.value = a.value + x
            b.value = b.value + x
            return a.value

        with pytest.raises(ValueError, match="State length mismatch: expected 2 states, got 1"):
            StatefulFunction(f).debug_call([jnp.ones(1)], jnp.ones(1))

    def test_none_value(self):
        a = brainstate.State(jnp.ones(1))
        with pytest.raises(ValueError, match=r"State values at indices \[0\] are None"):
            StatefulFunction(lambda: a.value).debug_call([None])

    def test_wrong_shape_refused(self):
        a = brainstate.State(jnp.ones(2))
        with pytest.raises(Exception, match="shape"):
            StatefulFunction(lambda: a.value * 2).debug_call([jnp.ones(3)])
        np.testing.assert_array_equal(a.value, jnp.ones(2))
