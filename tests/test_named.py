"""``named_scope`` and ``named_call``: names in jaxprs and HLO, states, ``ir_compilation``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import grad, jit, named_call, named_scope, vmap


def _stacks(closed):
    return {str(e.source_info.name_stack) for e in closed.jaxpr.eqns}


def _hlo(f, *args):
    return jax.jit(f).lower(*args).as_text(debug_info=True)


X = jnp.array([1.0, 2.0])


class TestNamedCall:
    def test_forms_and_names(self):
        @named_call
        def my_layer(x):
            return jnp.cos(x)

        @named_call(name="blk")
        def block(x):
            return jnp.sin(x)

        inc = named_call(lambda x: x + 1.0, name="inc")
        np.testing.assert_allclose(my_layer(X), jnp.cos(X))
        np.testing.assert_allclose(block(X), jnp.sin(X))
        assert _stacks(jax.make_jaxpr(my_layer)(X)) == {"my_layer"}
        assert _stacks(jax.make_jaxpr(block)(X)) == {"blk"}
        assert _stacks(jax.make_jaxpr(inc)(X)) == {"inc"}
        assert block.__name__ == "block"

    def test_name_in_hlo_metadata(self):
        f = named_call(jnp.sin, name="sine_block")
        assert 'sine_block/sin' in _hlo(f, X)

    def test_states_and_transforms(self):
        count = brainstate.State(jnp.zeros(()))
        w = brainstate.ParamState(jnp.array(3.0))

        @named_call(name="step")
        def step(x):
            count.value = count.value + 1.0
            return jnp.sum(w.value * x ** 2)

        np.testing.assert_allclose(grad(step, grad_states=w)(X), jnp.sum(X ** 2))
        np.testing.assert_allclose(jit(step)(X), 15.0)
        np.testing.assert_allclose(vmap(step)(jnp.stack([X, X])), [15.0, 15.0])
        assert float(count.value) == 3.0  # one write per call; under vmap the lanes agree
        stacks = _stacks(jit(step).stateful_fun.get_jaxpr(X))
        assert stacks == {"step"}

    def test_module_instance(self):
        lin = brainstate.nn.Linear(2, 2)
        f = named_call(lin, name="lin")
        np.testing.assert_allclose(f(X), lin(X))
        assert "lin" in {s.split("/")[0] for s in _stacks(jax.make_jaxpr(f)(X))}
        assert f.__dict__.get("l1") is None and "weight" not in f.__dict__

    def test_errors(self):
        with pytest.raises(TypeError, match="named_call: name must be a non-empty str, got 3"):
            named_call(jnp.sin, name=3)
        with pytest.raises(TypeError, match="named_call needs a callable, got int"):
            named_call(3)


class TestNamedScope:
    def test_direct_call_is_named(self):
        calls = []

        @named_scope("layer")
        def layer(x, y):
            calls.append(1)
            return x * y

        np.testing.assert_allclose(layer(X, X), X * X)
        assert _stacks(jax.make_jaxpr(layer)(X, X)) == {"layer"}
        assert "layer/mul" in _hlo(layer, X, X)
        assert layer.fn.__name__ == "layer" and layer.__name__ == "layer"

    def test_nested_names(self):
        @named_scope("inner")
        def inner(x):
            return x * 2

        @named_scope("outer")
        def outer(x):
            return inner(x) + 1

        assert _stacks(jax.make_jaxpr(outer)(X)) == {"outer/inner", "outer"}

    def test_ir_compilation_jits_once_per_static_config(self):
        seen = []

        @named_scope("power", static_argnums=-1)
        def power(x, n):
            seen.append(n)
            return x ** n

        with brainstate.environ.context(ir_compilation=True):
            np.testing.assert_allclose(power(X, 2), X ** 2)
            np.testing.assert_allclose(power(2 * X, 2), (2 * X) ** 2)
            np.testing.assert_allclose(power(X, 3), X ** 3)
            jaxpr = jax.make_jaxpr(lambda x: power(x, 2))(X)
        assert seen == [2, 3]  # compiled: traced once per static value
        assert list(power._jit_cache) == [((1,), ())]
        (eqn,) = jaxpr.jaxpr.eqns
        assert eqn.primitive.name in ("pjit", "jit") and str(eqn.source_info.name_stack) == "power"

    def test_ir_compilation_callable_static_and_names(self):
        @named_scope("dyn", static_argnums=lambda *a, **k: (1,),
                     static_argnames=lambda *a, **k: tuple(k))
        def fn(x, n, scale=1):
            return (x ** n) * scale

        with brainstate.environ.context(ir_compilation=True):
            np.testing.assert_allclose(fn(X, 2, scale=3), 3 * X ** 2)
            np.testing.assert_allclose(fn(X, 2), X ** 2)
        assert sorted(fn._jit_cache) == [((1,), ()), ((1,), ("scale",))]

    def test_ir_compilation_with_state(self):
        s = brainstate.State(jnp.zeros(2))

        @named_scope("acc")
        def acc(x):
            s.value = s.value + x
            return s.value

        with brainstate.environ.context(ir_compilation=True):
            acc(X)
            out = acc(X)
        np.testing.assert_allclose(out, 2 * X)
        np.testing.assert_allclose(s.value, 2 * X)

    def test_method_with_static_self(self):
        class M:
            def __init__(self, k):
                self.k = k

            @named_scope("compute", static_argnums=0)
            def compute(self, x):
                return x * self.k

        with brainstate.environ.context(ir_compilation=True):
            np.testing.assert_allclose(M(3.0).compute(X), 3 * X)
        np.testing.assert_allclose(M(2.0).compute(X), 2 * X)

    def test_errors(self):
        with pytest.raises(TypeError, match="named_scope: name must be a non-empty str"):
            named_scope("")
        with pytest.raises(TypeError, match=r"named_scope\('a'\) needs a callable, got int"):
            named_scope("a")(3)

        @named_scope("bad", static_argnums=5)
        def f(x):
            return x

        f(X)  # without ir_compilation the static indices are not used
        with brainstate.environ.context(ir_compilation=True):
            with pytest.raises(ValueError, match="static_argnums index 5 is out of range"):
                f(X)

        @named_scope("bad2", static_argnums="x")
        def g(x):
            return x

        with brainstate.environ.context(ir_compilation=True):
            with pytest.raises(TypeError, match="static_argnums must be ints, got 'x'"):
                g(X)
