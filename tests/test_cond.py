"""State-aware conditionals: cond, switch, ifelse."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import TraceContextError
from brainstate.transform import grad, jit
from brainstate.transform._cond import cond, ifelse, switch
from brainstate.transform._loop import for_loop

F32 = jnp.float32


class TestCond:
    def test_branches_and_states(self):
        hits = brainstate.State(jnp.zeros((), jnp.int32))

        def yes(x):
            hits.value = hits.value + 1
            return x

        def no(x):
            return -x

        assert float(cond(True, yes, no, 2.0)) == 2.0
        assert int(hits.value) == 1
        assert float(cond(False, yes, no, 2.0)) == -2.0
        assert int(hits.value) == 1  # passed through by the branch that does not write it

    def test_state_written_by_each_branch(self):
        a = brainstate.State(jnp.zeros(2, F32))
        b = brainstate.State(jnp.ones(2, F32))
        r = brainstate.ParamState(jnp.full((2,), 3.0, F32))

        def t():
            a.value = a.value + r.value

        def f():
            b.value = b.value * r.value

        cond(True, t, f)
        np.testing.assert_allclose(a.value, [3.0, 3.0])
        np.testing.assert_allclose(b.value, [1.0, 1.0])
        cond(False, t, f)
        np.testing.assert_allclose(a.value, [3.0, 3.0])
        np.testing.assert_allclose(b.value, [3.0, 3.0])
        np.testing.assert_allclose(r.value, [3.0, 3.0])

    def test_numeric_pred_means_nonzero(self):
        assert int(cond(jnp.asarray(0.0), lambda: 1, lambda: 0)) == 0
        assert int(cond(jnp.asarray(-2), lambda: 1, lambda: 0)) == 1
        assert int(cond(np.uint8(3), lambda: 1, lambda: 0)) == 1

    def test_both_branches_traced_once(self):
        calls = []

        def t(x):
            calls.append("t")
            return x

        def f(x):
            calls.append("f")
            return x

        cond(True, t, f, 1.0)
        assert sorted(calls) == ["f", "t"]

    def test_traced_pred_under_jit(self):
        n = brainstate.State(jnp.zeros((), jnp.int32))

        def t():
            n.value = n.value + 1

        run = jit(lambda p: cond(p, t, lambda: None))
        run(True)
        run(False)
        run(jnp.asarray(True))
        assert int(n.value) == 2

    def test_disable_jit_runs_only_the_chosen_branch(self):
        calls = []
        with jax.disable_jit():
            out = cond(True, lambda: calls.append("t") or 1, lambda: calls.append("f") or 0)
        assert out == 1 and calls == ["t"]

    def test_grad_through_cond(self):
        w = brainstate.ParamState(jnp.asarray(2.0, F32))

        def loss(x):
            return cond(x > 0, lambda: w.value * x, lambda: w.value * w.value)

        assert float(grad(loss, grad_states=w)(3.0)) == 3.0
        assert float(grad(loss, grad_states=w)(-3.0)) == 4.0

    def test_in_for_loop(self):
        acc = brainstate.State(jnp.zeros((), F32))

        def body(x):
            cond(x > 2, lambda: setattr(acc, "value", acc.value + x), lambda: None)
            return acc.value

        np.testing.assert_allclose(for_loop(body, jnp.arange(5.0)), [0, 0, 0, 3, 7])

    @pytest.mark.parametrize("pair", [(None, lambda: 0), (lambda: 0, 1)])
    def test_non_callable(self, pair):
        with pytest.raises(TypeError, match="callable"):
            cond(True, *pair)

    def test_pred_none(self):
        with pytest.raises(TypeError, match="cond predicate is None"):
            cond(None, lambda: 0, lambda: 1)

    @pytest.mark.parametrize("pred", [[True], (True, False), jnp.ones(2, bool)])
    def test_pred_not_scalar(self, pred):
        with pytest.raises(TypeError, match="Pred must be a scalar"):
            cond(pred, lambda: 0, lambda: 1)

    @pytest.mark.parametrize("pred", [object(), jnp.asarray(1 + 1j)])
    def test_pred_bad_dtype(self, pred):
        with pytest.raises(TypeError, match="Pred type must be either boolean or number"):
            cond(pred, lambda: 0, lambda: 1)

    def test_branch_types_differ(self):
        with pytest.raises(TypeError, match="false_fun"):
            cond(True, lambda: jnp.zeros(2), lambda: jnp.zeros(3))

    def test_failed_branch_trace_rolls_back(self):
        a = brainstate.State(jnp.zeros((), F32))

        def t():
            a.value = a.value + 1

        def f():
            a.value = a.value + 2
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            cond(True, t, f)
        assert float(a.value) == 0.0 and not isinstance(a.value, jax.core.Tracer)

    def test_raw_jit_write_refused(self):
        a = brainstate.State(jnp.zeros((), F32))

        def t():
            a.value = a.value + 1

        with pytest.raises(TraceContextError):
            jax.jit(lambda p: cond(p, t, lambda: None))(True)
        assert float(a.value) == 0.0


class TestSwitch:
    BRANCHES = (lambda x: x - 1, lambda x: x, lambda x: x + 1)

    @pytest.mark.parametrize("index,expected", [(0, 2), (1, 3), (2, 4), (7, 4), (-3, 2)])
    def test_clamped(self, index, expected):
        assert int(switch(index, self.BRANCHES, 3)) == expected
        assert int(jit(lambda i: switch(i, self.BRANCHES, 3))(index)) == expected

    def test_states(self):
        counts = [brainstate.State(jnp.zeros((), jnp.int32)) for _ in range(3)]

        def make(i):
            def b():
                counts[i].value = counts[i].value + 1
                return i

            return b

        for i in (2, 0, 2, 5):
            switch(i, [make(k) for k in range(3)])
        assert [int(c.value) for c in counts] == [1, 0, 3]

    def test_single_branch_called_directly(self):
        calls = []
        assert switch(0, [lambda: calls.append(1) or "py"]) == "py"
        assert calls == [1]

    def test_empty(self):
        with pytest.raises(ValueError, match="Empty branch sequence"):
            switch(0, [])

    def test_non_callable(self):
        with pytest.raises(TypeError, match="callables"):
            switch(0, [lambda: 1, 2])

    def test_index_not_scalar(self):
        with pytest.raises(TypeError, match="scalar"):
            switch(jnp.zeros(2, jnp.int32), self.BRANCHES, 1)

    @pytest.mark.parametrize("index", [1.0, jnp.asarray(True), "1"])
    def test_index_not_integer(self, index):
        with pytest.raises(TypeError, match="integer"):
            switch(index, self.BRANCHES, 1)

    def test_disable_jit_runs_only_the_chosen_branch(self):
        calls = []
        bs = [lambda k=k: calls.append(k) or k for k in range(3)]
        with jax.disable_jit():
            assert switch(9, bs) == 2
        assert calls == [2]


class TestIfElse:
    def test_first_true(self):
        def describe(a):
            return ifelse([a > 5, (a > 0) & (a <= 5), a <= 0],
                          [lambda: 2, lambda: 1, lambda: 0])

        assert int(describe(7)) == 2
        assert int(describe(3)) == 1
        assert int(describe(-1)) == 0
        assert int(jit(describe)(3)) == 1

    def test_with_operands_and_states(self):
        n = brainstate.State(jnp.zeros((), F32))

        def add(x):
            n.value = n.value + x
            return x

        def sub(x):
            n.value = n.value - x
            return -x

        assert float(ifelse([False, True], [add, sub], 2.0)) == -2.0
        assert float(n.value) == -2.0

    def test_length_mismatch(self):
        with pytest.raises(ValueError, match="number of conditions"):
            ifelse([True], [lambda: 1, lambda: 2])

    def test_check_cond_eager(self):
        with pytest.raises(ValueError, match="exactly one condition"):
            ifelse([True, True], [lambda: 1, lambda: 2])
        with pytest.raises(ValueError, match="exactly one condition"):
            ifelse([False, False], [lambda: 1, lambda: 2])

    def test_check_cond_under_jit(self):
        f = jit(lambda a: ifelse([a > 0, a > 1], [lambda: 1, lambda: 2]))
        assert int(f(1)) == 1
        with pytest.raises(Exception, match="exactly one condition"):
            jax.block_until_ready(f(2))

    def test_no_check(self):
        bs = [lambda: 1, lambda: 2, lambda: 3]
        assert int(ifelse([False, True, True], bs, check_cond=False)) == 2
        assert int(ifelse([False, False, False], bs, check_cond=False)) == 3

    def test_array_conditions(self):
        assert int(ifelse(jnp.array([False, True]), [lambda: 1, lambda: 2])) == 2

    def test_non_callable(self):
        with pytest.raises(TypeError, match="callables"):
            ifelse([True, False], [lambda: 1, None])
