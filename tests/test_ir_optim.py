"""Jaxpr optimisation passes: each keeps the program's meaning and does its job."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from jax import lax
from jax.extend.core import check_jaxpr

import brainstate
from brainstate.transform import (
    algebraic_simplification,
    common_subexpression_elimination,
    constant_fold,
    copy_propagation,
    dead_code_elimination,
    optimize_jaxpr,
)
from brainstate.transform import _ir_optim
from brainstate.transform._ir_optim import apply_ir_optimizations
from brainstate.transform._ir_utils import CLOSED_JAXPR_IS_JAXPR, IRValidationError

PASSES = [constant_fold, dead_code_elimination, common_subexpression_elimination,
          copy_propagation, algebraic_simplification]


def _arith(x, y):
    a = x * 1.0 + 0.0
    b = jnp.sin(x) * y
    c = jnp.sin(x) * y  # duplicate of b
    jnp.exp(y) * 3.0  # dead code
    k = jnp.exp(2.0) + 1.0  # constant subexpression
    return a + b + c * k, x - 0.0


def _control(x, y):
    z = jax.lax.cond(jnp.sum(x) > 0, lambda a: a * 1.0 + jnp.cos(a), lambda a: a - 2.0, x)
    c, ys = jax.lax.scan(lambda c, e: (c + e * 1.0, c * (2.0 + 3.0)), jnp.float32(0.0), y)
    n, w = jax.lax.while_loop(lambda s: s[0] < 3, lambda s: (s[0] + 1, s[1] * 1.5 + 0.0), (0, z))
    return z, c, ys, w


def _nested(x, y):
    inner = jax.jit(lambda a, b: (jnp.tanh(a) * 1.0 + jnp.tanh(a), jnp.exp(b) + 0.0))
    p, q = inner(x, y)
    return p + inner(x, y)[0], q


def _literals(x, y):
    return jnp.float32(2.0) * jnp.float32(3.0), x + (4.0 - 1.0)


def _unused_outputs(x, y):
    a, _ = jnp.linalg.eigh(jnp.outer(x, x) + jnp.eye(x.shape[0]))
    return a.sum() + 0.0 * y.sum()


FUNCS = [_arith, _control, _nested, _literals, _unused_outputs]


def _inputs(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=3), rng.normal(size=3)
    # A signed zero among the inputs catches rewrites that turn -0.0 into +0.0 (x + 0.0).
    x[seed % 3], y[seed % 3] = -0.0, abs(y[seed % 3]) + 0.5
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def _run(closed, *args):
    return jax.core.eval_jaxpr(closed.jaxpr, closed.consts, *args)


def _assert_value(g, w):
    """Same shape, dtype, weak type and values; zeros must also agree in sign."""
    tg, tw = jax.typeof(g), jax.typeof(w)
    assert (tg.shape, tg.dtype, tg.weak_type) == (tw.shape, tw.dtype, tw.weak_type)
    g, w = np.asarray(g), np.asarray(w)
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, equal_nan=True)
    if np.issubdtype(w.dtype, np.floating):
        zero = w == 0
        np.testing.assert_array_equal(np.signbit(g[zero]), np.signbit(w[zero]))


def _assert_same(closed, new, args):
    check_jaxpr(new.jaxpr)
    got, want = _run(new, *args), _run(closed, *args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        _assert_value(g, w)


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("opt", PASSES + [None], ids=lambda p: getattr(p, "__name__", "all"))
def test_passes_preserve_semantics_and_interface(fn, opt):
    closed = jax.make_jaxpr(fn)(*_inputs(0))
    if opt is None:
        new = optimize_jaxpr(closed)
    else:
        new = jax.extend.core.ClosedJaxpr(opt(closed.jaxpr), closed.consts)
    assert new.jaxpr.invars == closed.jaxpr.invars
    assert new.jaxpr.outvars == closed.jaxpr.outvars
    for seed in range(3):
        _assert_same(closed, new, _inputs(seed))


def test_optimize_reduces_equations():
    closed = jax.make_jaxpr(_arith)(*_inputs(0))
    new = optimize_jaxpr(closed)
    names = [e.primitive.name for e in new.eqns]
    assert len(new.eqns) < len(closed.eqns)
    assert names.count("sin") == 1  # cse
    assert "exp" not in names  # exp(2.0) folded, exp(y) dead


def test_constant_fold_folds_literals_and_binds_literal_outputs():
    closed = jax.make_jaxpr(_literals)(*_inputs(0))
    folded = constant_fold(closed.jaxpr)
    # the constant output is bound by one identity equation; x + 3.0 stays
    assert [e.primitive.name for e in folded.eqns] == ["add", "convert_element_type"]
    assert float(folded.eqns[0].invars[1].val) == 3.0
    assert float(folded.eqns[1].invars[0].val) == 6.0
    _assert_same(closed, jax.extend.core.ClosedJaxpr(folded, closed.consts), _inputs(1))


def test_constant_fold_leaves_broadcasts_and_big_results():
    closed = jax.make_jaxpr(lambda x: x + jnp.ones((64, 64)) * 2.0)(jnp.ones((64, 64)))
    names = [e.primitive.name for e in constant_fold(closed.jaxpr).eqns]
    assert "broadcast_in_dim" in names


def test_constant_fold_inside_nested_jaxprs():
    closed = jax.make_jaxpr(lambda x: jax.jit(lambda a: a * jnp.exp(1.0))(x))(1.0)
    inner = constant_fold(closed.jaxpr).eqns[0].params["jaxpr"]
    assert [e.primitive.name for e in inner.eqns] == ["mul"]


def test_dce_removes_dead_code_but_keeps_effects():
    seen = []

    def f(x):
        jnp.cos(x)  # dead
        jax.debug.callback(lambda v: seen.append(float(v)), x)  # effect, no outputs
        return jnp.sin(x)

    closed = jax.make_jaxpr(f)(1.0)
    out = dead_code_elimination(closed.jaxpr)
    names = [e.primitive.name for e in out.eqns]
    assert "cos" not in names and "debug_callback" in names
    jax.core.eval_jaxpr(out, closed.consts, 2.0)
    assert seen == [2.0]


def test_dce_inside_jit_body():
    closed = jax.make_jaxpr(lambda x: jax.jit(lambda a: (jnp.cos(a), jnp.sin(a)))(x)[0])(1.0)
    out = dead_code_elimination(closed.jaxpr)
    # the body keeps both outputs (its interface), so both stay; only outer dead code goes
    assert len(out.eqns) == 1


def test_cse_merges_duplicates_not_effects():
    def f(x):
        jax.debug.callback(lambda v: None, x)
        jax.debug.callback(lambda v: None, x)
        return jnp.sin(x) + jnp.sin(x)

    closed = jax.make_jaxpr(f)(1.0)
    names = [e.primitive.name for e in common_subexpression_elimination(closed.jaxpr).eqns]
    assert names.count("sin") == 1
    assert names.count("debug_callback") == 2


def test_cse_output_duplicate_gets_identity():
    closed = jax.make_jaxpr(lambda x: (jnp.sin(x), jnp.sin(x)))(1.0)
    out = common_subexpression_elimination(closed.jaxpr)
    assert [e.primitive.name for e in out.eqns] == ["sin", "convert_element_type"]
    assert out.outvars == closed.jaxpr.outvars


def test_cse_compares_literals_by_value():
    closed = jax.make_jaxpr(lambda x: (x + 1.0) * (x + 1.0) + (x + 2.0))(1.0)
    names = [e.primitive.name for e in common_subexpression_elimination(closed.jaxpr).eqns]
    assert [e.primitive.name for e in closed.eqns].count("add") == 4
    assert names.count("add") == 3  # x+1 once, x+2 kept (other literal), final add


def test_copy_propagation():
    closed = jax.make_jaxpr(lambda x: jnp.asarray(x, jnp.float32) * 2.0)(jnp.ones(3))
    assert [e.primitive.name for e in copy_propagation(closed.jaxpr).eqns] == ["mul"]
    # a copy producing an output is kept
    closed = jax.make_jaxpr(lambda x: jnp.array(x, copy=True))(jnp.ones(3))
    kept = copy_propagation(closed.jaxpr)
    assert len(kept.eqns) == len(closed.eqns)


def _names(jaxpr):
    return [e.primitive.name for e in jaxpr.eqns]


def test_algebraic_identities():
    closed = jax.make_jaxpr(lambda x: jnp.sin((x * 1.0 - 0.0) / 1.0))(1.0)
    assert _names(algebraic_simplification(closed.jaxpr)) == ["sin"]
    closed = jax.make_jaxpr(lambda i: -((0 + i) * 1 - 0 + 0))(jnp.int32(3))
    assert _names(algebraic_simplification(closed.jaxpr)) == ["neg"]


def test_algebraic_float_add_zero_keeps_the_sign_of_zero():
    for fn in (lambda x: x + 0.0, lambda x: 0.0 + x, lambda x: lax.sub(x, jnp.float32(-0.0))):
        closed = jax.make_jaxpr(fn)(jnp.float32(1.0))
        out = algebraic_simplification(closed.jaxpr)
        assert len(out.eqns) == 1
        _assert_same(closed, jax.extend.core.ClosedJaxpr(out, closed.consts),
                     (jnp.float32(-0.0),))
    # adding -0.0 and subtracting +0.0 are exact for every float, -0.0 included
    for fn in (lambda x: lax.add(x, jnp.float32(-0.0)), lambda x: x - 0.0):
        closed = jax.make_jaxpr(fn)(jnp.float32(1.0))
        out = algebraic_simplification(closed.jaxpr)
        assert out.eqns == [] and out.outvars[0] is out.invars[0] or \
            _names(out) == ["convert_element_type"]
        _assert_same(closed, jax.extend.core.ClosedJaxpr(out, closed.consts),
                     (jnp.float32(-0.0),))


def test_weak_type_is_not_forwarded():
    # jnp.asarray(python float, float32) only drops the weak type; removing it makes the
    # result promote like a Python scalar
    g = lambda x, y: jnp.asarray(x, jnp.float32) + y  # noqa: E731
    for opt in ("copy_propagation", "all"):
        out = brainstate.transform.StatefulFunction(g, ir_optimizations=opt).jaxpr_call(
            [], 1.0, 2.0)[1]
        assert not jax.typeof(out).weak_type
        with jax.numpy_dtype_promotion("standard"):  # a weak f32 would give float16 here
            assert (out + jnp.float16(1)).dtype == jnp.float32
    closed = jax.make_jaxpr(lambda x: jnp.asarray(x, jnp.float32) + 2.0)(1.0)
    assert "convert_element_type" in _names(copy_propagation(closed.jaxpr))
    # mul(weak x, f32 1) is a strong f32: forwarding x would make the output weak
    closed = jax.make_jaxpr(lambda x: lax.mul(x, jnp.float32(1.0)) * 2.0)(1.0)
    out = algebraic_simplification(closed.jaxpr)
    assert _names(out) == ["mul", "mul"]
    _assert_same(closed, jax.extend.core.ClosedJaxpr(out, closed.consts), (1.5,))
    for new in (optimize_jaxpr(closed), optimize_jaxpr(jax.make_jaxpr(g)(1.0, 2.0))):
        assert not new.jaxpr.outvars[0].aval.weak_type
        check_jaxpr(new.jaxpr)


def test_output_listed_twice_is_bound_once():
    f = lambda x: (lambda y: (y, y))(x * 1.0)  # noqa: E731
    closed = jax.make_jaxpr(f)(1.0)
    for new in (optimize_jaxpr(closed),
                jax.extend.core.ClosedJaxpr(algebraic_simplification(closed.jaxpr), []),
                jax.extend.core.ClosedJaxpr(constant_fold(
                    jax.make_jaxpr(lambda x: (lambda y: (y, y, x))(jnp.exp(1.0)))(1.0).jaxpr),
                    [])):
        check_jaxpr(new.jaxpr)
        assert _names(new) == ["convert_element_type"]
    _assert_same(closed, optimize_jaxpr(closed), (-0.0,))  # traced with a weak float
    closed = jax.make_jaxpr(lambda x: (jnp.sin(x), jnp.sin(x), jnp.sin(x))[1:] * 2)(1.0)
    new = optimize_jaxpr(closed)
    # outputs (s2, s3, s2, s3): each duplicate of s1 bound once
    assert _names(new) == ["sin", "convert_element_type", "convert_element_type"]
    _assert_same(closed, new, (0.5,))


def _already_optimal(x, y):
    z = jax.lax.cond(jnp.sum(x) > 0, lambda a: jnp.cos(a), lambda a: a - 2.0, x)
    c, ys = jax.lax.scan(lambda c, e: (c + e, c * 2.0), jnp.float32(0.0), y)
    n, w = jax.lax.while_loop(lambda s: s[0] < 3, lambda s: (s[0] + 1, s[1] * 1.5), (0, z))
    return jax.jit(lambda a: jnp.tanh(a) * a)(w), c, ys


@pytest.mark.parametrize("opt", PASSES, ids=lambda p: p.__name__)
def test_pass_that_changes_nothing_returns_its_input(opt):
    closed = jax.make_jaxpr(_already_optimal)(*_inputs(0))
    assert opt(closed.jaxpr) is closed.jaxpr
    once = opt(jax.make_jaxpr(_control)(*_inputs(0)).jaxpr)  # nested bodies rewritten
    assert opt(once) is once


def test_optimize_stops_after_a_round_that_changes_nothing(monkeypatch):
    calls = []
    for name, fn in list(_ir_optim._PASSES.items()):
        monkeypatch.setitem(_ir_optim._PASSES, name,
                            lambda j, fn=fn, name=name: calls.append(name) or fn(j))
    closed = jax.make_jaxpr(_already_optimal)(*_inputs(0))
    assert optimize_jaxpr(closed, max_iterations=5) is closed
    assert len(calls) == 5  # one round of the five passes
    calls.clear()
    new = optimize_jaxpr(jax.make_jaxpr(_control)(*_inputs(0)), max_iterations=10)
    assert 5 < len(calls) < 50  # converged before the bound
    calls.clear()
    assert optimize_jaxpr(new, max_iterations=10) is new
    assert len(calls) == 5


def test_apply_ir_optimizations_parses_the_pass_list_once(monkeypatch):
    seen = []
    real = _ir_optim._pipeline
    monkeypatch.setattr(_ir_optim, "_pipeline", lambda *a: seen.append(a) or real(*a))
    closed = jax.make_jaxpr(_arith)(*_inputs(0))
    new = apply_ir_optimizations(closed, ["cse", "dead_code_elimination"])
    assert len(seen) == 1
    assert len(new.eqns) < len(closed.eqns)
    _assert_same(closed, new, _inputs(1))


def test_algebraic_float_x_minus_x_kept_for_inf():
    closed = jax.make_jaxpr(lambda x: x - x)(1.0)
    out = algebraic_simplification(closed.jaxpr)
    assert np.isnan(jax.core.eval_jaxpr(out, [], jnp.float32(np.inf))[0])
    closed = jax.make_jaxpr(lambda x: x * 0.0)(1.0)
    out = algebraic_simplification(closed.jaxpr)
    assert np.isnan(jax.core.eval_jaxpr(out, [], jnp.float32(np.inf))[0])


def test_algebraic_int_x_minus_x_folds():
    closed = jax.make_jaxpr(lambda x: (x - x) * 5 + x * 0)(jnp.int32(3))
    out = optimize_jaxpr(closed)
    assert int(_run(out, jnp.int32(7))[0]) == 0
    assert [e.primitive.name for e in out.eqns] == ["convert_element_type"]


def test_optimize_options_and_verbose(capsys):
    closed = jax.make_jaxpr(_arith)(*_inputs(0))
    a = optimize_jaxpr(closed, optimizations="all")
    b = optimize_jaxpr(closed, optimizations=["constant_fold", "algebraic_simplification",
                                              "copy_propagation",
                                              "common_subexpression_elimination",
                                              "dead_code_elimination"])
    assert len(a.eqns) == len(b.eqns)
    only_dce = optimize_jaxpr(closed, optimizations="dce")
    assert "exp" in [e.primitive.name for e in only_dce.eqns]  # exp(2.0) not folded
    bare = optimize_jaxpr(closed.jaxpr, max_iterations=1, verbose=True)
    assert isinstance(bare, jax.extend.core.Jaxpr)
    out = capsys.readouterr().out
    assert "optimize_jaxpr:" in out and "round 1" in out


def test_optimize_errors():
    closed = jax.make_jaxpr(_arith)(*_inputs(0))
    with pytest.raises(IRValidationError, match="Invalid optimization 'fold' given to optimize_jaxpr"):
        optimize_jaxpr(closed, optimizations=["fold"])
    with pytest.raises(ValueError, match="max_iterations must be a positive int, got 0"):
        optimize_jaxpr(closed, max_iterations=0)
    with pytest.raises(ValueError, match="max_iterations must be a positive int, got True"):
        optimize_jaxpr(closed, max_iterations=True)
    with pytest.raises(TypeError, match="Expected Jaxpr or ClosedJaxpr, got function"):
        optimize_jaxpr(_arith)
    with pytest.raises(IRValidationError, match="must be None, 'all', a pass name"):
        optimize_jaxpr(closed, optimizations=3)


@pytest.mark.parametrize("opt", PASSES, ids=lambda p: p.__name__)
def test_pass_given_closed_jaxpr(opt):
    """Before JAX 0.12 a ``ClosedJaxpr`` is a type of its own and a pass refuses it with a hint.
    JAX 0.12 made ``ClosedJaxpr`` an alias of ``Jaxpr`` (a jaxpr carries its constants), so no
    pass can tell them apart: there it takes the jaxpr and keeps its constants."""
    w = np.linspace(0.5, 1.5, 3, dtype=np.float32)
    closed = jax.make_jaxpr(lambda x, y: _arith(x * jnp.asarray(w), y))(*_inputs(0))
    assert closed.consts
    if not CLOSED_JAXPR_IS_JAXPR:
        with pytest.raises(IRValidationError, match="for a ClosedJaxpr pass closed.jaxpr"):
            opt(closed)
        return
    new = opt(closed)
    assert len(new.consts) == len(closed.consts)
    assert all(a is b for a, b in zip(new.consts, closed.consts))
    assert new.constvars == closed.constvars and new.invars == closed.invars
    assert new.outvars == closed.outvars
    _assert_same(closed, new, _inputs(1))


def test_stateful_function_jaxpr():
    w = brainstate.State(jnp.arange(3.0, dtype=jnp.float32))
    acc = brainstate.State(jnp.zeros(3, jnp.float32))

    def step(x):
        acc.value = acc.value + (w.value * 1.0 + 0.0) * x + jnp.exp(0.0)
        return jnp.sum(acc.value) + jnp.sum(w.value * x) * 0.0

    sf = brainstate.transform.StatefulFunction(step)
    closed = sf.get_jaxpr(jnp.ones(3, jnp.float32))
    states = sf.get_states(jnp.ones(3, jnp.float32))
    new = apply_ir_optimizations(closed, "all")
    assert len(new.eqns) < len(closed.eqns)
    x = jnp.asarray([0.5, -1.0, 2.0], jnp.float32)
    vals = [s.value for s in states]
    for g, r in zip(jax.core.eval_jaxpr(new.jaxpr, new.consts, x, *vals),
                    jax.core.eval_jaxpr(closed.jaxpr, closed.consts, x, *vals)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-6)
    assert apply_ir_optimizations(closed, None) is closed
    with pytest.raises(IRValidationError, match="Invalid optimization 'nope' given to ir_optimizations"):
        apply_ir_optimizations(closed, ("dce", "nope"))


def test_passes_inside_transforms():
    # the passes run on jaxprs traced inside jit / grad / vmap and for_loop
    def loss(x):
        closed = jax.make_jaxpr(_arith)(x, x)
        return jax.extend.core.jaxpr_as_fun(optimize_jaxpr(closed))(x, x)[0].sum()

    x = _inputs(2)[0]
    g = brainstate.transform.jit(brainstate.transform.grad(loss))(x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(jax.grad(
        lambda v: _arith(v, v)[0].sum())(x)), rtol=1e-5)
    v = brainstate.transform.vmap(loss)(jnp.stack([x, x + 1.0]))
    np.testing.assert_allclose(np.asarray(v), np.asarray(jax.vmap(
        lambda v: _arith(v, v)[0].sum())(jnp.stack([x, x + 1.0]))), rtol=1e-5)


# --- generated programs -------------------------------------------------------------------------

_UN = [jnp.sin, jnp.tanh, lambda a: a * 1.0, lambda a: a + 0.0, lambda a: a - a,
       lambda a: jnp.asarray(a, jnp.float32), lambda a: a * 0.0]
_BIN = [jnp.add, jnp.subtract, jnp.multiply, jnp.maximum]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6), st.integers(0, 20),
                          st.integers(0, 20), st.floats(-2, 2, width=32)),
                min_size=1, max_size=12),
       st.floats(-3, 3, width=32))
def test_generated_programs(prog, xval):
    def f(x):
        vals = [x, jnp.float32(1.5)]
        for kind, op, i, j, c in prog:
            a, b = vals[i % len(vals)], vals[j % len(vals)]
            if kind == 0:
                vals.append(_UN[op](a))
            else:
                vals.append(_BIN[op % 4](a, b) + jnp.float32(c))
        return vals[-1], vals[len(vals) // 2]

    closed = jax.make_jaxpr(f)(jnp.float32(0.0))
    new = optimize_jaxpr(closed)
    assert len(new.eqns) <= len(closed.eqns) + 2
    for x in (jnp.float32(xval), jnp.float32(-0.0)):
        _assert_same(closed, new, (x,))


# --- StatefulFunction(ir_optimizations=...) ---------------------------------------------------


def test_stateful_function_runs_the_named_passes_on_its_jaxpr():
    s = brainstate.State(jnp.zeros(3))

    def step(x):
        y = x * 1.0 + 0.0
        s.value = s.value + y
        return s.value * 1.0

    x = jnp.arange(3.0)
    plain = brainstate.transform.StatefulFunction(step).make_jaxpr(x)
    opt = brainstate.transform.StatefulFunction(step, ir_optimizations="all").make_jaxpr(x)
    assert len(opt.get_jaxpr(x).eqns) < len(plain.get_jaxpr(x).eqns)
    out = opt(x)
    np.testing.assert_allclose(out, np.arange(3.0))
    np.testing.assert_allclose(s.value, np.arange(3.0))


def test_stateful_function_refuses_an_unknown_pass_at_construction():
    with pytest.raises(ValueError, match="Invalid optimization 'bogus'.*ir_optimizations"):
        brainstate.transform.StatefulFunction(lambda x: x, ir_optimizations="bogus")
