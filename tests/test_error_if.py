"""``jit_error_if``: eager, jit, vmap, loops; message formatting."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import jit
from brainstate.transform._error_if import (
    _error_msg,
    jit_error_if,
    unvmap_all,
    unvmap_any,
    unvmap_first,
)
from brainstate.transform._loop import for_loop


def _err(x):
    raise ValueError(f"error: {x}")


class TestEager:
    def test_true_string_raises_value_error(self):
        with pytest.raises(ValueError, match="^error$"):
            jit_error_if(True, "error")

    def test_false_is_silent(self):
        jit_error_if(False, "error")
        jit_error_if(jnp.asarray(False), _err, 1.0)
        jit_error_if(jnp.zeros(3) > 1, "never")

    def test_callable_gets_args(self):
        with pytest.raises(ValueError, match="error: 1.0"):
            jit_error_if(True, _err, 1.0)

    def test_array_pred_is_any(self):
        with pytest.raises(ValueError, match="negative"):
            jit_error_if(jnp.array([1.0, -1.0]) < 0, "negative")

    def test_bad_error_type(self):
        with pytest.raises(TypeError, match="error must be"):
            jit_error_if(True, 42)


class TestCompiled:
    def test_jit_true_raises_with_message(self):
        @jax.jit
        def f(x):
            jit_error_if(x > 1, "too big: {x}", x=x)
            return x

        assert float(f(0.5)) == 0.5
        with pytest.raises(Exception, match="too big: 2.0"):
            jax.block_until_ready(f(2.0))

    def test_brainstate_jit_with_states(self):
        s = brainstate.State(jnp.zeros((), jnp.float32))

        @jit
        def f(x):
            s.value = s.value + x
            jit_error_if(s.value > 3, "state grew to %s", s.value)
            return s.value

        f(1.0)
        f(1.0)
        with pytest.raises(Exception, match="state grew to 4.0"):
            jax.block_until_ready(f(2.0))

    def test_callable_under_jit(self):
        with pytest.raises(Exception, match="error: 3"):
            jax.block_until_ready(jax.jit(lambda x: jit_error_if(x > 2, _err, x))(3))

    def test_non_array_args_are_passed_through(self):
        with pytest.raises(Exception, match="layer dense: 5"):
            jax.block_until_ready(jax.jit(
                lambda x: jit_error_if(x > 2, "layer {name}: {v}", name="dense", v=x))(5))

    def test_vmap_any_lane(self):
        def f(x):
            jit_error_if(x, "error: {x}", x=x)

        jax.vmap(f)(jnp.array([False, False, False]))
        with pytest.raises(Exception, match="error: True"):
            jax.vmap(f)(jnp.array([False, True, False]))

    def test_vmap_message_shows_the_offending_lane(self):
        f = jax.jit(jax.vmap(lambda x: jit_error_if(x > 4, "bad {x}", x=x)))
        with pytest.raises(Exception, match="bad 5.0"):
            jax.block_until_ready(f(jnp.array([1.0, 5.0, 2.0])))

    def test_vmap_inside_loop(self):
        def body(x):
            jit_error_if(x > 2, "lane value {v}", v=x)
            return x

        run = jax.vmap(lambda xs: for_loop(body, xs))
        run(jnp.zeros((3, 4)))
        with pytest.raises(Exception, match="lane value 2.25"):
            jax.block_until_ready(run(jnp.arange(12.0).reshape(3, 4) / 4))

    def test_vmap_vmap(self):
        def f(x):
            jit_error_if(x, "error: {x}", x=x)

        jax.vmap(jax.vmap(f))(jnp.zeros((2, 3), bool))
        with pytest.raises(Exception):
            jax.vmap(jax.vmap(f))(jnp.array([[False, False, False], [True, False, False]]))

    def test_jit_of_vmap(self):
        f = jax.jit(jax.vmap(lambda x: jit_error_if(x > 0, "positive lane")))
        f(jnp.zeros(4))
        with pytest.raises(Exception, match="positive lane"):
            jax.block_until_ready(f(jnp.array([0.0, 1.0])))

    def test_inside_for_loop(self):
        acc = brainstate.State(jnp.zeros((), jnp.float32))

        def body(x):
            acc.value = acc.value + x
            jit_error_if(acc.value > 5, "overflow at {v}", v=acc.value)
            return acc.value

        for_loop(body, jnp.ones(5))
        with pytest.raises(Exception, match="overflow at 6.0"):
            jax.block_until_ready(for_loop(body, jnp.ones(5)))

    def test_under_grad(self):
        def loss(x):
            jit_error_if(x < 0, "negative input %s", x)
            return x * x

        assert float(jax.grad(loss)(3.0)) == 6.0
        with pytest.raises(Exception, match="negative input"):
            jax.block_until_ready(jax.jit(jax.grad(loss))(-3.0))

    def test_unvmap_reductions(self):
        any_ = jax.vmap(lambda x: unvmap_any(x))(jnp.array([False, True]))
        all_ = jax.vmap(lambda x: unvmap_all(x))(jnp.array([False, True]))
        first = jax.vmap(lambda x: unvmap_first(x))(jnp.array([[1.0, 2.0], [3.0, 4.0]]))
        assert any_.tolist() == [True, True]
        assert all_.tolist() == [False, False]
        assert first.tolist() == [[1.0, 2.0], [1.0, 2.0]]
        assert bool(unvmap_any(jnp.array([False, True])))


class TestErrorMsg:
    def test_percent_style(self):
        with pytest.raises(ValueError, match="value is 42"):
            _error_msg("value is %d", 42)

    def test_format_kwargs(self):
        with pytest.raises(ValueError, match="value is 99"):
            _error_msg("value is {x}", x=99)

    def test_plain(self):
        with pytest.raises(ValueError, match="plain message"):
            _error_msg("plain message")

    def test_brace_positional(self):
        with pytest.raises(ValueError, match="bad value 5"):
            _error_msg("bad value {}", 5)
        with pytest.raises(ValueError, match="1 vs 2"):
            _error_msg("{} vs {}", 1, 2)

    def test_percent_then_kwargs(self):
        with pytest.raises(ValueError, match="a=1 b=2"):
            _error_msg("a=%d b={b}", 1, b=2)

    def test_brace_positional_under_jit(self):
        with pytest.raises(Exception) as info:
            jax.block_until_ready(
                jax.jit(lambda v: jit_error_if(v > 0, "bad value {}", v))(jnp.asarray(5)))
        assert "bad value 5" in str(info.value)
        assert "not all arguments converted" not in str(info.value)
