"""jacrev, jacfwd, hessian, vjp and jvp over states and arguments, against raw JAX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import for_loop, hessian, jacfwd, jacobian, jacrev, jit, jvp, vjp, vmap


def f32(*xs):
    return jnp.asarray(xs, jnp.float32)


def assert_tree_close(got, want, rtol=1e-5, atol=1e-6):
    assert jax.tree.structure(got) == jax.tree.structure(want), (got, want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert jnp.shape(a) == jnp.shape(b)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


@pytest.fixture
def model():
    """Two ParamStates, a stateful vector function and its pure twin ``pure(w, b, x, y)``."""
    w = brainstate.ParamState(f32(0.5, -1.0, 2.0), name="w")
    b = brainstate.ParamState(f32(0.3), name="b")

    def pure(wv, bv, x, y):
        return jnp.tanh(wv * x) * bv + jnp.sin(x * y)

    def fun(x, y):
        return pure(w.value, b.value, x, y)

    return w, b, fun, pure


X = f32(0.1, 0.7, -0.4)
Y = f32(1.5, -0.5, 2.0)


@pytest.mark.parametrize("transform,raw", [(jacrev, jax.jacrev), (jacfwd, jax.jacfwd)])
def test_jacobians_match_jax_for_every_argument_layout(model, transform, raw):
    w, b, fun, pure = model
    wv, bv = w.value, b.value
    # arguments only: argnums defaults to 0
    assert_tree_close(transform(fun)(X, Y), raw(pure, argnums=2)(wv, bv, X, Y))
    assert_tree_close(transform(fun, argnums=(0, 1))(X, Y),
                      raw(pure, argnums=(2, 3))(wv, bv, X, Y))
    # states only, in the container shape of grad_states
    want_w, want_b = raw(pure, argnums=(0, 1))(wv, bv, X, Y)
    assert_tree_close(transform(fun, grad_states=[w, b])(X, Y), [want_w, want_b])
    assert_tree_close(transform(fun, grad_states={"w": w, "b": b})(X, Y),
                      {"w": want_w, "b": want_b})
    assert_tree_close(transform(fun, grad_states=w)(X, Y), want_w)
    # both: (state_jacs, arg_jacs)
    full = raw(pure, argnums=(0, 1, 2, 3))(wv, bv, X, Y)
    assert_tree_close(transform(fun, grad_states=[w, b], argnums=1)(X, Y),
                      ([full[0], full[1]], full[3]))
    assert_tree_close(transform(fun, grad_states=[w, b], argnums=(0, 1))(X, Y),
                      ([full[0], full[1]], (full[2], full[3])))


def test_jacobian_is_jacrev():
    assert jacobian is jacrev


@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_has_aux_and_return_value(model, transform):
    w, b, fun, pure = model

    def with_aux(x, y):
        out = fun(x, y)
        return out, {"mean": jnp.mean(out)}

    want = jax.jacrev(pure, argnums=0)(w.value, b.value, X, Y)
    value = pure(w.value, b.value, X, Y)
    g, aux = transform(with_aux, grad_states=w, has_aux=True)(X, Y)
    assert_tree_close(g, want)
    np.testing.assert_allclose(aux["mean"], jnp.mean(value), rtol=1e-6)
    g, v = transform(fun, grad_states=w, return_value=True)(X, Y)
    assert_tree_close(v, value)
    g, v, aux = transform(with_aux, grad_states=w, has_aux=True, return_value=True)(X, Y)
    assert_tree_close((g, v), (want, value))
    with pytest.raises(TypeError, match="has_aux=True the function must return a pair"):
        transform(fun, grad_states=w, has_aux=True)(X, Y)


@pytest.mark.parametrize("transform,raw", [(jacrev, jax.jacrev), (jacfwd, jax.jacfwd)])
def test_pytree_output_nests_output_outside_input(model, transform, raw):
    w, b, fun, pure = model

    def tree_fun(x):
        return {"v": fun(x, Y), "s": jnp.sum(x) * b.value[0]}

    def tree_pure(wv, bv, x):
        return {"v": pure(wv, bv, x, Y), "s": jnp.sum(x) * bv[0]}

    full = raw(tree_pure, argnums=(0, 1, 2))(w.value, b.value, X)
    want = {k: ([full[k][0], full[k][1]], full[k][2]) for k in full}
    assert_tree_close(transform(tree_fun, grad_states=[w, b], argnums=0)(X), want)


def test_hessian_layouts_match_jax():
    a = brainstate.ParamState(f32(0.4, -0.3), name="a")
    c = brainstate.ParamState(jnp.float32(1.5), name="c")

    def pure(av, cv, x):
        return jnp.sum(jnp.tanh(av * x) ** 2) * cv + jnp.sum(x ** 3) * cv ** 2

    def loss(x):
        return pure(a.value, c.value, x)

    x = f32(0.2, 0.9)
    h = jax.hessian(pure, argnums=(0, 1, 2))(a.value, c.value, x)
    assert_tree_close(hessian(loss)(x), h[2][2])
    assert_tree_close(hessian(loss, grad_states=a)(x), h[0][0])
    assert_tree_close(hessian(loss, grad_states=[a, c])(x),
                      [[h[0][0], h[0][1]], [h[1][0], h[1][1]]])
    assert_tree_close(hessian(loss, grad_states={"a": a, "c": c})(x),
                      {"a": {"a": h[0][0], "c": h[0][1]}, "c": {"a": h[1][0], "c": h[1][1]}})
    # states and an argument: jax.hessian's layout over (state values, x): the rows are
    # (states, x), each state row a pair (w.r.t. the states, w.r.t. x)
    assert_tree_close(hessian(loss, grad_states=[a, c], argnums=0)(x),
                      ([([h[0][0], h[0][1]], h[0][2]), ([h[1][0], h[1][1]], h[1][2])],
                       ([h[2][0], h[2][1]], h[2][2])))
    hv, v = hessian(loss, grad_states=a, return_value=True)(x)
    np.testing.assert_allclose(v, loss(x), rtol=1e-6)
    hv, aux = hessian(lambda x: (loss(x), x * 2), grad_states=a, has_aux=True)(x)
    assert_tree_close((hv, aux), (h[0][0], x * 2))


def test_hessian_with_a_sequence_of_arguments():
    def pure(x, y):
        return jnp.sum(x ** 2 * y) + jnp.sum(jnp.sin(x)) * jnp.sum(y ** 2)

    x, y = f32(0.2, 0.5), f32(1.0, -1.0)
    assert_tree_close(hessian(pure, argnums=(0, 1))(x, y),
                      jax.hessian(pure, argnums=(0, 1))(x, y))
    w = brainstate.ParamState(f32(2.0, 3.0))
    h = jax.hessian(lambda wv, x, y: pure(x * wv, y), argnums=(0, 1, 2))(w.value, x, y)
    got = hessian(lambda x, y: pure(x * w.value, y), grad_states=w, argnums=(0, 1))(x, y)
    assert_tree_close(got, ((h[0][0], (h[0][1], h[0][2])),
                            ((h[1][0], (h[1][1], h[1][2])), (h[2][0], (h[2][1], h[2][2])))))


def test_nested_jacfwd_of_jacrev_is_the_hessian(model):
    w, b, _, _ = model

    def loss(x):
        return jnp.sum(jnp.tanh(w.value * x) ** 2) * b.value[0]

    nested = jacfwd(jacrev(loss, grad_states=[w, b]), grad_states=[w, b])(X)
    assert_tree_close(nested, hessian(loss, grad_states=[w, b])(X))
    # and inside jit
    assert_tree_close(jit(jacfwd(jacrev(loss, grad_states=w), grad_states=w))(X),
                      hessian(loss, grad_states=w)(X))


@pytest.mark.parametrize("transform", [jacrev, jacfwd, hessian])
def test_inside_jit_and_written_states_written_back_once(model, transform):
    w, b, _, pure = model
    calls = brainstate.State(jnp.zeros((), jnp.int32))

    def loss(x):
        calls.value = calls.value + 1
        return jnp.sum(pure(w.value, b.value, x, Y) ** 2)

    f = jit(transform(loss, grad_states=w, argnums=0))
    want = transform(lambda x: jnp.sum(pure(w.value, b.value, x, Y) ** 2),
                     grad_states=w, argnums=0)(X)
    assert_tree_close(f(X), want, rtol=1e-4)
    f(X)
    assert int(calls.value) == 2
    assert w.value.tolist() == pytest.approx([0.5, -1.0, 2.0])  # never applied


def test_under_vmap_and_for_loop(model):
    w, b, fun, pure = model
    xs = jnp.stack([X, 2 * X, -X])
    got = vmap(jacrev(lambda x: fun(x, Y), grad_states=w))(xs)
    want = jax.vmap(lambda x: jax.jacrev(pure)(w.value, b.value, x, Y))(xs)
    assert_tree_close(got, want)
    got = jit(lambda: for_loop(lambda x: jacfwd(lambda x: fun(x, Y), grad_states=w)(x), xs))()
    assert_tree_close(got, want)


def test_states_created_inside_the_function(model):
    w, _, _, _ = model

    def loss(x):
        tmp = brainstate.State(x * 2.0)
        tmp.value = tmp.value + w.value
        return tmp.value ** 2

    want = jax.jacrev(lambda wv: (X * 2.0 + wv) ** 2)(w.value)
    assert_tree_close(jacrev(loss, grad_states=w)(X), want)
    assert_tree_close(jit(jacfwd(loss, grad_states=w))(X), want)


@pytest.mark.parametrize("transform", [jacrev, jacfwd, hessian])
def test_argument_and_state_errors(model, transform):
    w, b, fun, _ = model
    for bad in (-1, True, 0.5, "0", (0, -1)):
        with pytest.raises(ValueError, match="argnums must be a non-negative int"):
            transform(fun, argnums=bad)
    with pytest.raises(ValueError, match="names an argument twice"):
        transform(fun, argnums=(1, 1))
    with pytest.raises(ValueError, match="argnums contains 2, but only 2 positional"):
        transform(fun, argnums=2)(X, Y)
    with pytest.raises(TypeError, match="All grad_states must be State instances"):
        transform(fun, grad_states=[w, w.value])
    with pytest.raises(ValueError, match="more than once"):
        transform(fun, grad_states=[w, b, w])
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['bogus'\\]"):
        transform(fun, bogus=1)


@pytest.mark.parametrize("transform", [jacrev, jacfwd])
def test_check_states(model, transform):
    w, b, _, _ = model
    unused = brainstate.ParamState(f32(1.0, 2.0), name="unused")

    def fun(x):
        return w.value * x

    with pytest.raises(ValueError, match="grad state .*unused.* is not used by the function"):
        transform(fun, grad_states=[w, unused])(X)
    jw, ju = transform(fun, grad_states=[w, unused], check_states=False)(X)
    assert_tree_close(jw, jnp.diag(X))
    assert_tree_close(ju, jnp.zeros((3, 2), jnp.float32))


def test_unit_aware_jacobians():
    u = pytest.importorskip("brainunit")
    x = f32(1.0, 2.0, 3.0) * u.ms
    jac = jacrev(lambda x: x ** 2, unit_aware=True)(x)
    assert u.get_unit(jac) == u.ms
    np.testing.assert_allclose(u.get_mantissa(jac), jnp.diag(2 * jnp.arange(1.0, 4.0)))
    h = hessian(lambda x: u.math.sum(x ** 3), unit_aware=True)(x)
    np.testing.assert_allclose(u.get_mantissa(h), jnp.diag(6 * jnp.arange(1.0, 4.0)))
    jf = jacfwd(lambda x: x ** 2, unit_aware=True)(x)
    np.testing.assert_allclose(u.get_mantissa(jf), u.get_mantissa(jac))


def test_unit_aware_without_brainunit(monkeypatch):
    from brainstate import _units

    monkeypatch.setattr(_units, "_module", None)  # as if brainunit were not installed
    for transform in (jacrev, jacfwd, hessian):
        with pytest.raises(ImportError, match="unit_aware=True needs the optional package"):
            transform(lambda x: x, unit_aware=True)


# --- vjp ------------------------------------------------------------------------------------

def test_vjp_matches_jax_on_the_pure_function(model):
    w, b, fun, pure = model
    ct = f32(1.0, -2.0, 0.5)
    out, pull = vjp(fun, X, Y)
    jout, jpull = jax.vjp(lambda x: pure(w.value, b.value, x, Y), X)
    assert_tree_close((out, pull(ct)), (jout, jpull(ct)[0]))
    out, pull = vjp(fun, X, Y, argnums=(0, -1), grad_states=[w, b])
    _, jpull = jax.vjp(lambda wv, bv, x, y: pure(wv, bv, x, y), w.value, b.value, X, Y)
    jw, jb, jx, jy = jpull(ct)
    assert_tree_close(pull(ct), ([jw, jb], (jx, jy)))
    assert_tree_close(pull(2 * ct), ([2 * jw, 2 * jb], (2 * jx, 2 * jy)))  # reusable
    out, pull = vjp(fun, X, Y, grad_states={"w": w}, argnums=None)
    assert_tree_close(pull(ct), {"w": jw})


def test_vjp_states_only_without_primals_and_under_jit(model):
    w, b, _, pure = model

    def loss():
        return jnp.sum(pure(w.value, b.value, X, Y) ** 2)

    want = jax.grad(lambda wv: jnp.sum(pure(wv, b.value, X, Y) ** 2))(w.value)
    out, pull = vjp(loss, grad_states=w)
    assert_tree_close(pull(jnp.float32(1.0)), want)

    @jit
    def run():
        out, pull = vjp(loss, grad_states=w)
        return pull(jnp.ones_like(out))

    assert_tree_close(run(), want)


def test_vjp_has_aux_writes_and_read_then_written_state():
    w = brainstate.ParamState(f32(2.0, 3.0))
    calls = brainstate.State(jnp.zeros((), jnp.int32))

    def f(x):
        calls.value = calls.value + 1
        old = w.value
        w.value = w.value + 1.0
        return jnp.sum(old * x), {"n": calls.value}

    out, pull, aux = vjp(f, f32(5.0, 7.0), grad_states=w, has_aux=True)
    assert float(out) == 31.0 and int(aux["n"]) == 1
    dw, dx = pull(jnp.float32(1.0))
    assert dw.tolist() == [5.0, 7.0] and dx.tolist() == [2.0, 3.0]  # at the value on entry
    pull(jnp.float32(1.0))
    assert w.value.tolist() == [3.0, 4.0] and int(calls.value) == 1  # written back once


def test_vjp_errors():
    w = brainstate.ParamState(f32(1.0))
    f = lambda x, y: jnp.sum(x * y)  # noqa: E731
    x = f32(1.0, 2.0)
    with pytest.raises(ValueError, match="vjp has nothing to differentiate"):
        vjp(lambda: jnp.float32(1.0))
    with pytest.raises(ValueError, match="argnums 2 is out of range for a call with 2"):
        vjp(f, x, x, argnums=2)
    with pytest.raises(ValueError, match="argnums -3 is out of range"):
        vjp(f, x, x, argnums=-3)
    with pytest.raises(ValueError, match="names an argument twice"):
        vjp(f, x, x, argnums=(1, -1))
    with pytest.raises(ValueError, match="argnums must be an int"):
        vjp(f, x, x, argnums=1.0)
    with pytest.raises(TypeError, match="All grad_states must be State instances"):
        vjp(f, x, x, grad_states=[1.0])
    with pytest.raises(ValueError, match="is not used by the function"):
        vjp(f, x, x, grad_states=w)
    with pytest.raises(TypeError, match="has_aux=True the function must return a pair"):
        vjp(f, x, x, has_aux=True)
    with pytest.raises(ValueError, match=r"argnums=\(0, 1\) selects positional arguments, but "
                                         "none were given"):
        vjp(lambda: w.value * 2.0, grad_states=w, argnums=(0, 1))


# --- jvp ------------------------------------------------------------------------------------

def test_jvp_matches_jax_states_constant(model):
    w, b, fun, pure = model
    calls = brainstate.State(jnp.zeros((), jnp.int32))

    def counted(x, y):
        calls.value = calls.value + 1
        return fun(x, y)

    tx, ty = f32(1.0, 0.0, -1.0), f32(0.5, 0.5, 0.5)
    got = jvp(counted, (X, Y), (tx, ty))
    want = jax.jvp(lambda x, y: pure(w.value, b.value, x, y), (X, Y), (tx, ty))
    assert_tree_close(got, want)
    assert int(calls.value) == 1
    assert_tree_close(jit(lambda x: jvp(counted, (x, Y), (tx, ty)))(X), want)
    assert int(calls.value) == 2


def test_jvp_along_states_and_has_aux(model):
    w, b, fun, pure = model
    tw, tb, tx = f32(1.0, 2.0, 3.0), f32(-1.0), f32(0.0, 1.0, 0.0)
    want = jax.jvp(lambda wv, bv, x: pure(wv, bv, x, Y), (w.value, b.value, X), (tw, tb, tx))
    got = jvp(lambda x: fun(x, Y), (X,), (tx,), grad_states={"w": w, "b": b},
              state_tangents={"w": tw, "b": tb})
    assert_tree_close(got, want)
    out, t, aux = jvp(lambda x: (fun(x, Y), x * 3.0), [X], [tx], has_aux=True)
    want = jax.jvp(lambda x: pure(w.value, b.value, x, Y), (X,), (tx,))
    assert_tree_close((out, t, aux), want + (X * 3.0,))


def test_jvp_errors(model):
    w, _, fun, _ = model
    with pytest.raises(TypeError, match="primals must be a tuple or list"):
        jvp(fun, X, (X,))
    with pytest.raises(TypeError, match="tangents must be a tuple or list"):
        jvp(fun, (X, Y), X)
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        jvp(fun, (X, Y), (X,))
    with pytest.raises(ValueError, match="without state_tangents"):
        jvp(fun, (X, Y), (X, Y), grad_states=w)
    with pytest.raises(ValueError, match="state_tangents were given without grad_states"):
        jvp(fun, (X, Y), (X, Y), state_tangents=X)
    with pytest.raises(ValueError, match="container shape of grad_states"):
        jvp(fun, (X, Y), (X, Y), grad_states=[w], state_tangents={"w": X})
