"""Jaxpr -> Python source: the generated code, exec'd, computes what the function computes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.core import Primitive

import brainstate
from brainstate.transform import fn_to_python_code, jaxpr_to_python_code, register_prim_handler
from brainstate.transform import _ir_tocode
from brainstate.transform._ir_utils import (CLOSED_JAXPR_IS_JAXPR, IRError, IRValidationError,
                                           UnsupportedPrimitiveError, scan_split)

X = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3)), jnp.float32)


def _exec(src, name):
    ns = {}  # the source imports what it needs
    exec(src, ns)
    return ns[name]


def _roundtrip(f, *args, name=None):
    src = fn_to_python_code(f, *args)
    got = _exec(src, name or f.__name__)(*args)
    want = f(*args)
    gl, wl = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(gl) == len(wl), src
    for g, w in zip(gl, wl):
        assert jnp.asarray(g).dtype == jnp.asarray(w).dtype, src
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6,
                                   err_msg=src)
    return src


def arith(x):
    return (x + 1.0) * x / (x + 2.0) - jnp.exp(-x), x ** 3, jnp.maximum(x, 0.5)


def ints(x):
    i = x.astype(jnp.int32)
    return i // 2, i % 3, (i * 7) - 1, jnp.round(x * 2.5), -i


def shapes(x):
    return (jnp.sum(x, axis=0), jnp.argmax(x, axis=1), x.T, x.reshape(3, 2),
            jnp.concatenate([x, x]), x[:, 1], jnp.where(x > 0, x, 0.0),
            jnp.cumsum(x, axis=1), jnp.sort(-x, axis=1), jnp.max(x), jnp.prod(x),
            x[jnp.array([1, 0])], jnp.expand_dims(x, 0), jnp.pad(x, 1), x @ x.T,
            jnp.zeros((2, 2)) + jnp.arange(2.0), jnp.all(x > -10), jnp.any(x > 10))


def control(x):
    c, ys = jax.lax.scan(lambda c, e: (c + e.sum(), c * 2.0), jnp.float32(0.0), x)
    n, w = jax.lax.while_loop(lambda s: s[0] < 5, lambda s: (s[0] + 1, s[1] * 1.5 + x), (0, x))
    z = jax.lax.cond(x.sum() > 0, lambda a: a + 1.0, lambda a: a * 3.0, x)
    k = jax.lax.switch(1, [jnp.sin, jnp.cos, jnp.tanh], x)
    (a, b), _ = jax.lax.scan(lambda cb, e: ((cb[0] + e, cb[1] * e), None), (x[0], x[1]),
                             jnp.stack([x[0]] * 4))
    ms = jax.lax.map(lambda r: r * 2.0, x)
    # constants (x closed over), a two-part carry, two scanned arrays and two stacked results
    (p, q), (us, vs) = jax.lax.scan(
        lambda pq, e: ((pq[0] + e[0] * x[0], pq[1] - e[1]), (pq[0] * x[1], e[1] + 1.0)),
        (x[0], x[1]), (x[::-1], x * 3.0), reverse=True)
    return c, ys, n, w, z, k, a, b, ms, p, q, us, vs


def calls(x):
    y = jax.jit(lambda a: jnp.sin(a) * 2)(x) + jax.checkpoint(lambda a: a ** 3)(x)
    return y + jax.nn.relu(x) + jax.grad(lambda a: jnp.sum(jnp.tanh(a) * a))(x)


def constants(x):
    big = np.arange(600, dtype=np.float32).reshape(2, 300)[:, :3]
    return (x * jnp.asarray(np.arange(6.0, dtype=np.float32).reshape(2, 3))
            + jnp.asarray(big), jnp.minimum(x, np.float32(np.inf)),
            jnp.where(jnp.isnan(x), np.float32(np.nan), x))


def dyn(x, i):
    return (jax.lax.dynamic_slice(x, (i, 0), (1, 2)),
            jax.lax.dynamic_update_slice(x, jnp.zeros((1, 2)), (i, 1)))


@pytest.mark.parametrize("f", [arith, ints, shapes, control, calls, constants],
                         ids=lambda f: f.__name__)
def test_roundtrip(f):
    _roundtrip(f, X)


def test_roundtrip_dynamic_indices_and_bools():
    _roundtrip(dyn, X, jnp.int32(1))
    _roundtrip(lambda b: (~b, b & True, b | False, b ^ True), X > 0, name="generated_function")


def test_big_constants_are_exact():
    big = np.random.default_rng(1).normal(size=(40, 40)).astype(np.float32)

    def f(x):
        return x + jnp.asarray(big)

    src = _roundtrip(f, jnp.ones((40, 40), jnp.float32))
    assert "bytes.fromhex" in src


def test_pytree_args_are_flattened():
    def tree(d, t):
        return d["a"] * t[0] + d["b"] - t[1]

    args = ({"a": X, "b": X + 1.0}, (X, X * 2.0))
    src = fn_to_python_code(tree, *args)
    assert "tree_leaves" in src
    np.testing.assert_allclose(np.asarray(_exec(src, "tree")(*args)),
                               np.asarray(tree(*args)), rtol=1e-6)


def test_lambda_and_keyword_names():
    src = fn_to_python_code(lambda x: x + 1.0, X)
    assert "def generated_function(" in src
    np.testing.assert_allclose(np.asarray(_exec(src, "generated_function")(X)), X + 1.0)


def test_many_variables_do_not_shadow_modules():
    def chain(x):
        for _ in range(800):  # the namer passes 'np', 'if', 'in', ... on the way
            x = x * 1.0001 + 0.0001
        return x

    src = _roundtrip(chain, jnp.float32(1.0))
    names = {ln.split(" = ")[0].strip() for ln in src.splitlines() if " = " in ln}
    assert not names & {"np", "jax", "if", "in", "is", "or", "as", "def"}


def test_jaxpr_entry_point():
    closed = jax.make_jaxpr(lambda x, y: jnp.dot(x, y) + 1.0)(X, X.T)
    src = jaxpr_to_python_code(closed, fn_name="mm")
    np.testing.assert_allclose(np.asarray(_exec(src, "mm")(X, X.T)),
                               np.asarray(X @ X.T + 1.0), rtol=1e-5)
    assert "def generated_function(" in jaxpr_to_python_code(closed.jaxpr)


def test_scan_split_unknown_layout():
    with pytest.raises(UnsupportedPrimitiveError, match="neither num_consts/num_carry nor ft_in"):
        scan_split({"jaxpr": None, "length": 3})


def test_bare_jaxpr_constvars_become_parameters():
    """A jaxpr whose constants have no values takes them as leading parameters. Before JAX 0.12
    ``closed.jaxpr`` is such a jaxpr; JAX 0.12 made ``ClosedJaxpr`` an alias of ``Jaxpr`` and
    ``closed.jaxpr`` is ``closed`` itself, whose constant values are written into the source."""
    w = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    closed = jax.make_jaxpr(lambda x: x * jnp.asarray(w))(X)
    inner = closed.jaxpr
    assert inner.constvars
    bare = brainstate.transform.eqns_to_jaxpr(inner.eqns, invars=inner.invars,
                                              outvars=inner.outvars, constvars=inner.constvars)
    src = jaxpr_to_python_code(bare, "g")
    np.testing.assert_allclose(np.asarray(_exec(src, "g")(w, X)), np.asarray(X * w))
    src = jaxpr_to_python_code(inner, "g")
    args = (X,) if CLOSED_JAXPR_IS_JAXPR else (w, X)
    np.testing.assert_allclose(np.asarray(_exec(src, "g")(*args)), np.asarray(X * w))


def test_unused_argument_stays_a_parameter():
    src = fn_to_python_code(lambda x, y: x * 2.0, X, X)
    np.testing.assert_allclose(np.asarray(_exec(src, "generated_function")(X, X + 5.0)), X * 2.0)


def test_stateful_function():
    acc = brainstate.State(jnp.zeros(3, jnp.float32))
    scale = brainstate.State(jnp.float32(2.0))

    def step(x):
        acc.value = acc.value + x * scale.value
        return acc.value.sum()

    src = fn_to_python_code(step, jnp.ones(3, jnp.float32))
    assert src.startswith("# Inputs:") and "State" in src
    total, new_acc = _exec(src, "step")(jnp.ones(3, jnp.float32), jnp.zeros(3, jnp.float32),
                                        jnp.float32(3.0))
    assert float(total) == 9.0
    np.testing.assert_allclose(np.asarray(new_acc), [3.0, 3.0, 3.0])
    np.testing.assert_allclose(np.asarray(acc.value), 0.0)  # tracing wrote nothing back


def test_package_transforms_jaxpr():
    w = brainstate.State(jnp.ones(3, jnp.float32))

    def f(x):
        return brainstate.transform.for_loop(lambda i: jnp.sum(w.value * x) + i,
                                             jnp.arange(4.0, dtype=jnp.float32))

    closed, states = brainstate.transform.make_jaxpr(f)(X[0])
    assert states == (w,)
    src = jaxpr_to_python_code(closed, "h")
    out, w_out = _exec(src, "h")(X[0], w.value)  # make_jaxpr also returns read states' values
    np.testing.assert_allclose(np.asarray(w_out), np.asarray(w.value))
    np.testing.assert_allclose(np.asarray(out),
                               np.asarray(f(X[0])), rtol=1e-6)


# --- printers -----------------------------------------------------------------------------------

_double_p = Primitive("test_ir_double")
_double_p.def_impl(lambda x: x * 2)
_double_p.def_abstract_eval(lambda x: x)


@pytest.fixture
def clean_double():
    yield
    _ir_tocode.prim_to_python.pop("test_ir_double", None)


def test_unknown_primitive_raises_and_can_be_registered(clean_double):
    def f(x):
        return _double_p.bind(x) + 1.0

    with pytest.raises(UnsupportedPrimitiveError,
                       match=r"No code printer for primitive 'test_ir_double'.*register_prim"):
        fn_to_python_code(f, X)
    register_prim_handler("test_ir_double",
                          lambda state, eqn: f"{state.targets(eqn.outvars)} = "
                                             f"{state.atom(eqn.invars[0])} * 2")
    _roundtrip(f, X)


def test_register_ast_handler_and_overwrite_warning(clean_double):
    import ast

    def handler(state, eqn):
        return ast.Assign(targets=[state.name(eqn.outvars[0], ast.Store())],
                          value=ast.BinOp(state.name(eqn.invars[0]), ast.Add(),
                                          state.name(eqn.invars[0])))

    register_prim_handler("test_ir_double", handler)
    _roundtrip(lambda x: _double_p.bind(x), X, name="generated_function")
    with pytest.warns(UserWarning, match="Overwriting the code printer of primitive"):
        register_prim_handler("test_ir_double", handler)


def test_register_errors(clean_double):
    with pytest.raises(TypeError, match="prim_name must be a non-empty str"):
        register_prim_handler("", lambda s, e: "")
    with pytest.raises(TypeError, match="handler for 'x' must be callable"):
        register_prim_handler("x", 3)
    register_prim_handler("test_ir_double", lambda s, e: 42)
    with pytest.raises(IRError, match="returned int; expected a str"):
        fn_to_python_code(lambda x: _double_p.bind(x), X)
    _ir_tocode.prim_to_python["test_ir_double"] = lambda s, e: "a = = 1"
    with pytest.raises(IRError, match="Generated source does not parse"):
        fn_to_python_code(lambda x: _double_p.bind(x), X)


def test_generic_printer_rejects_unknown_params():
    p = Primitive("exp")  # jax.lax.exp exists but takes no 'bogus' parameter
    p.def_impl(lambda x, bogus: x)
    p.def_abstract_eval(lambda x, bogus: x)
    with pytest.raises(UnsupportedPrimitiveError, match="does not take its parameter 'bogus'"):
        fn_to_python_code(lambda x: p.bind(x, bogus=object()), X)


def test_entry_errors():
    with pytest.raises(IRValidationError, match="expects a jax Jaxpr or ClosedJaxpr, got int"):
        jaxpr_to_python_code(3)
    closed = jax.make_jaxpr(jnp.sin)(1.0)
    with pytest.raises(IRValidationError, match="fn_name must be a Python identifier"):
        jaxpr_to_python_code(closed, "not valid")
    with pytest.raises(TypeError, match="fn_to_python_code needs a callable, got int"):
        fn_to_python_code(3)


def test_value_source():
    vs = _ir_tocode.value_source
    assert vs(np.float32(np.inf)) == "np.float32(float('inf'))"
    assert eval(vs(jnp.float32(-np.inf)), {"np": np}) == -np.inf
    assert eval(vs((1, (2.5,), None)), {}) == (1, (2.5,), None)
    assert eval(vs(jax.lax.Precision.HIGHEST), {"jax": jax}) is jax.lax.Precision.HIGHEST
    assert eval(vs(np.dtype("bfloat16")), {"np": np}) == jnp.bfloat16
    with pytest.raises(IRError, match="cannot write a value of type object"):
        vs(object())
