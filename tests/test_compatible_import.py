"""Tests of ``brainstate._compatible_import``: JAX internals re-exported under one name."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate._compatible_import as C


def test_all_names_resolve():
    for name in C.__all__:
        assert getattr(C, name) is not None, name
    assert set(C.__all__) <= set(dir(C))


def test_ir_types_are_jax_types():
    closed = jax.make_jaxpr(lambda x: jnp.sin(x) * 2)(1.0)
    assert isinstance(closed, C.ClosedJaxpr)
    assert isinstance(closed.jaxpr, C.Jaxpr)
    eqn = closed.jaxpr.eqns[0]
    assert isinstance(eqn, C.JaxprEqn)
    assert isinstance(eqn.invars[0], C.Var)
    assert any(isinstance(v, C.Literal) for e in closed.jaxpr.eqns for v in e.invars)
    assert float(C.jaxpr_as_fun(closed)(0.5)[0]) == pytest.approx(2 * np.sin(0.5), rel=1e-6)


def test_primitive_can_be_defined_and_bound():
    p = C.Primitive("brainstate_test_double")
    p.def_impl(lambda x: x * 2)
    p.def_abstract_eval(lambda x: x)
    assert float(p.bind(jnp.float32(3.0))) == pytest.approx(6.0)
    closed = jax.make_jaxpr(lambda x: p.bind(x))(jnp.ones(3, jnp.float32))
    assert closed.jaxpr.eqns[0].primitive is p
    assert closed.out_avals[0].shape == (3,)


def test_tracer_and_get_aval():
    seen = []

    @jax.jit
    def f(x):
        seen.append(isinstance(x, C.Tracer))
        seen.append(C.get_aval(x).shape)
        return x

    f(jnp.ones(3))
    assert seen == [True, (3,)]
    assert C.get_aval(np.ones((2, 2), np.float32)).shape == (2, 2)
    assert not isinstance(jnp.ones(1), C.Tracer)


def test_to_concrete_aval():
    assert C.to_concrete_aval(np.float32(1.0)).shape == ()
    out = []
    jax.jit(lambda x: out.append(C.to_concrete_aval(x)) or x)(jnp.ones(2))
    assert out[0].shape == (2,)  # no concrete value under jit: the abstract value


def test_batching_internals_load_lazily():
    seen = []
    jax.vmap(lambda x: seen.append(isinstance(x, C.BatchTracer)) or x)(jnp.ones(3))
    assert seen == [True]
    assert isinstance(C.BatchTrace, type)
    assert callable(C.make_iota) and callable(C.to_elt)


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'not_a_name'"):
        C.not_a_name


def test_is_jit_primitive():
    closed = jax.make_jaxpr(lambda x: jax.jit(jnp.sin)(x) + 1.0)(1.0)
    flags = [C.is_jit_primitive(e) for e in closed.jaxpr.eqns]
    assert flags.count(True) == 1 and flags[0]
    with pytest.raises(TypeError, match="expects a JaxprEqn, got str"):
        C.is_jit_primitive("jit")


def test_extend_axis_env_nd_binds_named_axis():
    with C.extend_axis_env_nd([("i", 4)]):
        closed = jax.make_jaxpr(lambda x: jax.lax.psum(x, "i"))(1.0)
    assert "psum" in str(closed)
    with pytest.raises(NameError, match="unbound axis name"):
        jax.make_jaxpr(lambda x: jax.lax.psum(x, "i"))(1.0)


def test_backend_device_opaque_trace():
    backend = C.get_backend()
    assert backend.platform == jax.default_backend()
    assert isinstance(jax.devices()[0], C.Device)
    outer = C.get_opaque_trace_state()
    inner = []
    jax.jit(lambda x: inner.append(C.get_opaque_trace_state()) or x)(1.0)
    assert outer == C.get_opaque_trace_state() and inner[0] != outer


def test_wrap_init_gives_wrapped_fun():
    wrapped = C.wrap_init(lambda x: x + 1, debug_info=jax.api_util.debug_info(
        "test", lambda x: x, (1,), {}))
    assert wrapped.call_wrapped(1) == 2


def test_safe_map_and_zip():
    assert C.safe_map(lambda a, b: a + b, [1, 2], (10, 20)) == [11, 22]
    assert C.safe_zip([1, 2], "ab") == [(1, "a"), (2, "b")]
    assert C.safe_zip() == []
    with pytest.raises(ValueError, match=r"safe_zip: arguments have different lengths \[2, 3\]"):
        C.safe_zip([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=r"safe_map: arguments have different lengths \[1, 2\]"):
        C.safe_map(lambda a, b: a, [1], [1, 2])


def test_unzip2():
    assert C.unzip2([(1, "a"), (2, "b")]) == ((1, 2), ("a", "b"))
    assert C.unzip2([]) == ((), ())
    assert C.unzip2(iter([(0, 1)])) == ((0,), (1,))
    with pytest.raises(ValueError):
        C.unzip2([(1, 2, 3)])


def test_wraps_and_fun_name():
    def base(x: int) -> int:
        """Base doc."""
        return x

    base.tag = "kept"

    @C.wraps(base, namestr="jit({fun})", docstr="Jitted {fun}: {doc} ({extra})", extra="e")
    def wrapper(*args):
        return base(*args)

    assert wrapper.__name__ == "jit(base)"
    assert wrapper.__doc__ == "Jitted base: Base doc. (e)"
    assert wrapper.__wrapped__ is base and wrapper.tag == "kept"
    assert wrapper.__annotations__ == base.__annotations__
    plain = C.wraps(base)(lambda: None)
    assert plain.__name__ == "base" and plain.__qualname__ == base.__qualname__
    assert C.fun_name(functools.partial(base, 1)) == "base"
    assert C.fun_name(object()) == "<unnamed function>"
    assert C.wraps(base)(len) is len  # read-only builtins are returned unchanged
