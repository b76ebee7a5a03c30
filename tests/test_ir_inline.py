"""inline_jit, and building jaxprs from equations (eqns_to_jaxpr / eqns_to_closed_jaxpr)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.core import ClosedJaxpr, Jaxpr

import brainstate
from brainstate.transform import eqns_to_closed_jaxpr, eqns_to_jaxpr, inline_jit
from brainstate.transform._ir_utils import CLOSED_JAXPR_IS_JAXPR, IRValidationError

X = jnp.asarray(np.random.default_rng(0).normal(size=3), jnp.float32)
small = jax.jit(lambda a: a + 1.0)
big = jax.jit(lambda a: jnp.sin(jnp.cos(jnp.exp(a))))


def _prims(j):
    return [e.primitive.name for e in j.eqns]


def _eval(j, *args):
    if isinstance(j, ClosedJaxpr):
        return jax.core.eval_jaxpr(j.jaxpr, j.consts, *args)
    return jax.core.eval_jaxpr(j, [], *args)


def _same(a, b, *args):
    for g, w in zip(_eval(a, *args), _eval(b, *args)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)


def test_inline_all_and_values():
    closed = jax.make_jaxpr(lambda x: small(x) * big(x))(X)
    out = inline_jit(closed)
    assert isinstance(out, ClosedJaxpr)
    assert "jit" not in _prims(out)
    _same(out, closed, X)
    bare = inline_jit(closed.jaxpr)
    assert isinstance(bare, Jaxpr) and "jit" not in _prims(bare)


def test_predicate_selects_calls():
    closed = jax.make_jaxpr(lambda x: small(x) * big(x))(X)
    out = inline_jit(closed, lambda eqn: len(eqn.params["jaxpr"].eqns) > 1)
    assert _prims(out) == ["jit", "exp", "cos", "sin", "mul"]
    _same(out, closed, X)
    assert _prims(inline_jit(closed, lambda eqn: False)) == _prims(closed)


def test_nested_jits_expand_recursively():
    outer = jax.jit(lambda a: small(a) * 2.0)
    closed = jax.make_jaxpr(lambda x: outer(x) - 1.0)(X)
    out = inline_jit(closed)
    assert _prims(out) == ["add", "mul", "sub"]
    _same(out, closed, X)
    # an unexpanded call is not searched
    kept = inline_jit(closed, lambda eqn: eqn.params["name"] != "<lambda>")
    assert _prims(kept) == _prims(closed)


def test_same_body_twice_gets_unique_binders():
    closed = jax.make_jaxpr(lambda x: big(x) + big(x * 2.0))(X)
    out = inline_jit(closed)
    produced = [id(v) for e in out.eqns for v in e.outvars]
    assert len(produced) == len(set(produced))
    _same(out, closed, X)
    jax.extend.core.check_jaxpr(out.jaxpr)


def test_body_constants_are_lifted():
    w = np.arange(3.0, dtype=np.float32)
    body = jax.make_jaxpr(lambda a: a * jnp.asarray(w))(X)
    assert body.consts
    closed = jax.make_jaxpr(lambda x: small(x) + 1.0)(X)
    eqn = closed.eqns[0]
    closed = ClosedJaxpr(closed.jaxpr.replace(eqns=[eqn.replace(params={**eqn.params,
                                                                        "jaxpr": body})]
                                              + list(closed.eqns[1:])), closed.consts)
    out = inline_jit(closed.jaxpr)  # bare input, but constants appear: closed result
    assert isinstance(out, ClosedJaxpr) and len(out.consts) == 1
    np.testing.assert_allclose(np.asarray(_eval(out, X)[0]), np.asarray(X * w + 1.0))


def test_inline_package_jaxpr():
    s = brainstate.State(jnp.ones(3, jnp.float32))

    def f(x):
        s.value = brainstate.transform.jit(lambda a: a * s.value)(x)
        return s.value.sum()

    sf = brainstate.transform.StatefulFunction(f)
    closed = sf.get_jaxpr(X)
    out = inline_jit(closed)
    assert "jit" not in _prims(out)
    _same(out, closed, X, s.value)


def test_inline_errors():
    with pytest.raises(IRValidationError, match="inline_jit expects a jax Jaxpr or ClosedJaxpr"):
        inline_jit(lambda x: x)
    closed = jax.make_jaxpr(small)(X)
    with pytest.raises(IRValidationError, match="should_expand must be a callable"):
        inline_jit(closed, should_expand=True)


# --- eqns_to_jaxpr ------------------------------------------------------------------------------


def test_eqns_to_jaxpr_infers_binders():
    closed = jax.make_jaxpr(lambda x, y: (jnp.sin(x) * y, x + 1.0))(X, X)
    j = eqns_to_jaxpr(closed.eqns)
    assert j.invars == closed.jaxpr.invars
    assert j.outvars == closed.jaxpr.outvars
    _same(j, closed, X, X * 2.0)


def test_eqns_to_jaxpr_explicit_and_ordering():
    closed = jax.make_jaxpr(lambda x, y: jnp.sin(y) + x)(X, X)
    a, b = closed.jaxpr.invars
    j = eqns_to_jaxpr(closed.eqns, invars=[b, a], outvars=[closed.eqns[0].outvars[0]])
    np.testing.assert_allclose(np.asarray(_eval(j, X, X * 0.0)[0]), np.asarray(jnp.sin(X)))
    # free variables split into invars and constvars
    j2 = eqns_to_jaxpr(closed.eqns, constvars=[a])
    if CLOSED_JAXPR_IS_JAXPR:  # JAX >= 0.12: constvars without values are the leading invars
        assert j2.constvars == [] and j2.invars == [a, b]
    else:
        assert j2.constvars == [a] and j2.invars == [b]
    np.testing.assert_allclose(np.asarray(jax.core.eval_jaxpr(j2, [X], X * 2.0)[0]),
                               np.asarray(jnp.sin(X * 2.0) + X), rtol=1e-6)


def test_eqns_to_closed_jaxpr_with_consts():
    w = np.arange(3.0, dtype=np.float32)
    closed = jax.make_jaxpr(lambda x: x * jnp.asarray(w))(X)
    inner = closed.jaxpr
    cj = eqns_to_closed_jaxpr(inner.eqns, invars=inner.invars, constvars=inner.constvars,
                              consts=closed.consts)
    np.testing.assert_allclose(np.asarray(jax.extend.core.jaxpr_as_fun(cj)(X)[0]),
                               np.asarray(X * w))
    empty = eqns_to_closed_jaxpr([])
    assert empty.jaxpr.invars == [] and empty.jaxpr.outvars == []


def test_eqns_to_jaxpr_effects_kept():
    closed = jax.make_jaxpr(lambda x: jax.debug.callback(lambda v: None, x) or x * 2.0)(X)
    assert eqns_to_jaxpr(closed.eqns).effects == closed.jaxpr.effects


def test_eqns_to_jaxpr_errors():
    closed = jax.make_jaxpr(lambda x, y: jnp.sin(x) * y)(X, X)
    a, b = closed.jaxpr.invars
    with pytest.raises(IRValidationError, match=r"used before any equation produces them"):
        eqns_to_jaxpr(closed.eqns, invars=[a], constvars=[])
    with pytest.raises(IRValidationError, match=r"eqns\[0\] must be a JaxprEqn, got int"):
        eqns_to_jaxpr([1])
    with pytest.raises(IRValidationError, match=r"invars\[0\] must be a jaxpr Var, got str"):
        eqns_to_jaxpr(closed.eqns, invars=["a"])
    with pytest.raises(IRValidationError, match=r"outvars\[0\] .* is neither produced"):
        other = jax.make_jaxpr(jnp.cos)(X).jaxpr.outvars[0]
        eqns_to_jaxpr(closed.eqns, outvars=[other])
    with pytest.raises(ValueError, match=r"got 0 const value\(s\) for 1 constvar"):
        eqns_to_closed_jaxpr(closed.eqns, invars=[b], constvars=[a])
    with pytest.raises(IRValidationError, match=r"consts\[0\] has shape \(2,\)"):
        eqns_to_closed_jaxpr(closed.eqns, invars=[b], constvars=[a], consts=[np.ones(2)])
