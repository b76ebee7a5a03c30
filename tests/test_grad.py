"""grad, vector_grad, fwd_grad and GradientTransform over states and arguments."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import GradientTransform, grad, jit, vector_grad, vmap
from brainstate.transform._grad import fwd_grad


def f32(*xs):
    return jnp.asarray(xs, jnp.float32)


@pytest.fixture
def w():
    return brainstate.ParamState(f32(1, 2), name="w")


def test_grad_of_a_single_state_has_its_shape(w):
    g = grad(lambda x: jnp.sum(w.value * x), grad_states=w)
    assert g(f32(3, 4)).tolist() == [3.0, 4.0]


def test_grad_states_containers(w):
    b = brainstate.ParamState(f32(0.5))
    loss = lambda x: jnp.sum(w.value * x) + jnp.sum(b.value)  # noqa: E731
    gl = grad(loss, grad_states=[w, b])(f32(3, 4))
    assert isinstance(gl, list) and gl[1].tolist() == [1.0]
    gd = grad(loss, grad_states={"w": w, "b": b})(f32(3, 4))
    assert set(gd) == {"w", "b"} and gd["w"].tolist() == [3.0, 4.0]


def test_grad_states_from_module_style_mapping(w):
    from brainstate.util import FlattedDict

    mapping = FlattedDict({("w",): w})
    g = grad(lambda x: jnp.sum(w.value * x), grad_states=mapping)(f32(1, 1))
    assert list(g) == [("w",)]


def test_argnums_and_combinations(w):
    def loss(x, y):
        return jnp.sum(w.value * x * y)

    gx = grad(loss)(f32(1, 1), f32(2, 3))  # argnums defaults to 0
    assert gx.tolist() == [2.0, 6.0]
    gs, ga = grad(loss, grad_states=w, argnums=1)(f32(1, 1), f32(2, 3))
    assert gs.tolist() == [2.0, 3.0] and ga.tolist() == [1.0, 2.0]
    gs, (g0, g1) = grad(loss, grad_states=w, argnums=(0, 1))(f32(1, 1), f32(2, 3))
    assert g1.tolist() == [1.0, 2.0]


def test_return_value_and_has_aux(w):
    def loss(x):
        v = jnp.sum(w.value * x)
        return v, {"double": v * 2}

    g, value, aux = grad(loss, grad_states=w, has_aux=True, return_value=True)(f32(1, 1))
    assert float(value) == 3.0 and float(aux["double"]) == 6.0
    g, aux = grad(loss, grad_states=w, has_aux=True)(f32(1, 1))
    assert float(aux["double"]) == 6.0
    g, value = grad(lambda x: jnp.sum(w.value * x), grad_states=w, return_value=True)(f32(1, 1))
    assert float(value) == 3.0


def test_has_aux_needs_a_pair(w):
    with pytest.raises(TypeError, match="has_aux"):
        grad(lambda x: jnp.sum(w.value * x), grad_states=w, has_aux=True)(f32(1, 1))


def test_bad_argnums_and_grad_states(w):
    for bad in (-1, True, 1.5, (0, -2)):
        with pytest.raises(ValueError):
            grad(lambda x: x, argnums=bad)
    with pytest.raises(TypeError, match="All grad_states must be State instances"):
        grad(lambda x: x, grad_states=[w, jnp.ones(2)])


def test_unused_grad_state(w):
    other = brainstate.ParamState(f32(5))
    loss = lambda x: jnp.sum(w.value * x)  # noqa: E731
    with pytest.raises(ValueError, match="not used"):
        grad(loss, grad_states=[w, other])(f32(1, 1))
    g = grad(loss, grad_states=[w, other], check_states=False)(f32(1, 1))
    assert g[1].tolist() == [0.0]


def test_writes_of_the_loss_are_written_back_once_per_call(w):
    counter = brainstate.State(jnp.zeros((), jnp.int32))

    def loss(x):
        counter.value = counter.value + 1
        return jnp.sum(w.value * x)

    g = grad(loss, grad_states=w)
    g(f32(1, 1))
    g(f32(1, 1))
    assert int(counter.value) == 2
    assert w.value.tolist() == [1.0, 2.0]  # the gradient is never applied


def test_grad_under_jit_and_a_training_loop(w):
    target = f32(3, -1)

    def loss():
        return jnp.sum((w.value - target) ** 2)

    @jit
    def step():
        g = grad(loss, grad_states=w)()
        w.value = w.value - 0.25 * g
        return loss()

    losses = [float(step()) for _ in range(20)]
    assert losses[-1] < 1e-6 < losses[0]
    assert jnp.allclose(w.value, target)


def test_vector_grad_non_scalar_output(w):
    g = vector_grad(lambda x: w.value * x, grad_states=w)(f32(3, 4))
    assert g.tolist() == [3.0, 4.0]
    g, value = vector_grad(lambda x: w.value * x, grad_states=w, return_value=True)(f32(3, 4))
    assert value.tolist() == [3.0, 8.0]


def test_grad_of_non_scalar_refused(w):
    with pytest.raises(TypeError):
        grad(lambda x: w.value * x, grad_states=w)(f32(1, 1))


def test_decorator_forms(w):
    @grad(grad_states=w)
    def loss(x):
        return jnp.sum(w.value * x)

    assert loss(f32(1, 1)).tolist() == [1.0, 1.0]
    assert jax.tree.leaves(vector_grad(grad_states=w)(lambda x: w.value * x)(f32(1, 1)))


# --- the shared engine: GradientTransform with any jax.grad-like transform -------------------


def _scaled_grad(fun, argnums=0, has_aux=False, scale=1.0):
    g = jax.grad(fun, argnums=argnums, has_aux=has_aux)

    def run(*args):
        grads, aux = g(*args)
        return jax.tree.map(lambda t: t * scale, grads), aux

    return run


def test_gradient_transform_takes_a_callable_with_params(w):
    def loss(x, y):
        return jnp.sum(w.value * x * y)

    x, y = f32(1, 2), f32(3, 4)
    gt = GradientTransform(loss, _scaled_grad, grad_states=w, argnums=1,
                           transform_params={"scale": 10.0})
    gs, gy = gt(x, y)
    np.testing.assert_allclose(gs, 10.0 * x * y)
    np.testing.assert_allclose(gy, 10.0 * w.value * x)
    # jax.grad itself, with value and aux
    gt = GradientTransform(lambda x: (loss(x, y), x), jax.grad, grad_states=[w],
                           return_value=True, has_aux=True)
    (g,), value, aux = gt(x)
    np.testing.assert_allclose(g, x * y)
    assert float(value) == float(loss(x, y)) and aux.tolist() == x.tolist()


def test_gradient_transform_refuses_bad_transforms_and_shows_its_setup(w):
    with pytest.raises(ValueError, match="unknown transform 'gradient'"):
        GradientTransform(lambda: w.value, "gradient")
    with pytest.raises(TypeError, match="transform must be a jax.grad-like callable"):
        GradientTransform(lambda: w.value, 3)
    with pytest.raises(TypeError, match="needs a callable target"):
        GradientTransform(None, "grad")
    text = repr(GradientTransform(lambda: jnp.sum(w.value), jax.grad, grad_states=w))
    assert "transform=grad" in text and "grad_states=" in text and "return_value=False" in text


def test_grad_matches_jax_on_the_pure_function_with_states_and_args(w):
    b = brainstate.ParamState(f32(0.5), name="b")

    def pure(wv, bv, x, y):
        return jnp.sum(jnp.tanh(wv * x + bv) * y)

    x, y = f32(0.3, -0.7), f32(2, 3)
    want = jax.grad(pure, argnums=(0, 1, 2, 3))(w.value, b.value, x, y)
    got = grad(lambda x, y: pure(w.value, b.value, x, y), grad_states={"w": w, "b": b},
               argnums=(0, 1))(x, y)
    assert jax.tree.structure(got) == jax.tree.structure(({"w": 0, "b": 0}, (0, 0)))
    for a, e in zip(jax.tree.leaves(got), [want[1], want[0], want[2], want[3]]):
        np.testing.assert_allclose(a, e, rtol=1e-6)


def test_grad_and_vector_grad_under_vmap(w):
    xs = jnp.stack([f32(1, 2), f32(-1, 0.5), f32(3, 3)])
    got = vmap(grad(lambda x: jnp.sum(jnp.sin(w.value * x)), grad_states=w))(xs)
    want = jax.vmap(jax.grad(lambda wv, x: jnp.sum(jnp.sin(wv * x))), in_axes=(None, 0))(
        w.value, xs)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    got = vmap(vector_grad(lambda x: jnp.sin(w.value * x)))(xs)
    np.testing.assert_allclose(got, w.value * jnp.cos(w.value * xs), rtol=1e-6)


def test_argnums_and_grad_states_errors(w):
    with pytest.raises(ValueError, match="names an argument twice"):
        grad(lambda x, y: x, argnums=(1, 1))
    with pytest.raises(ValueError, match="argnums contains 1, but only 1 positional"):
        grad(lambda x: jnp.sum(x), argnums=1)(f32(1))
    with pytest.raises(ValueError, match="more than once"):
        grad(lambda: jnp.sum(w.value), grad_states={"a": w, "b": w})
    with pytest.raises(TypeError, match=r"grad\(\) got unexpected keyword arguments \['nan'\]"):
        grad(lambda x: x, nan=True)
    with pytest.raises(TypeError, match=r"vector_grad\(\) got unexpected keyword"):
        vector_grad(grad_states=w, debug=True)


def test_debug_nan_eager_and_under_jit():
    g = vector_grad(jnp.sqrt, debug_nan=True)
    assert g(f32(4.0)).tolist() == [0.25]
    with pytest.raises(FloatingPointError, match="vector_grad contains NaN or Inf"):
        g(f32(-1.0))
    np.testing.assert_allclose(jit(g)(f32(4.0)), [0.25])
    with pytest.raises(Exception, match="vector_grad contains NaN or Inf"):
        jax.block_until_ready(jit(g)(f32(-1.0)))


def test_debug_nan_failure_leaves_the_written_states_as_they_were():
    n = brainstate.State(f32(0.0))

    def loss(x):
        n.value = n.value + 1.0
        return jnp.sum(jnp.sqrt(x))

    g = grad(loss, debug_nan=True)
    g(f32(4.0))
    assert float(n.value[0]) == 1.0
    with pytest.raises(FloatingPointError, match="contains NaN or Inf"):
        g(f32(-1.0))
    assert float(n.value[0]) == 1.0  # the failed call wrote nothing back


def test_unit_aware_grads():
    u = pytest.importorskip("brainunit")
    x = f32(1, 2, 3) * u.ms
    g = grad(lambda x: u.math.sum(x ** 2), unit_aware=True)(x)
    assert u.get_unit(g) == u.ms
    np.testing.assert_allclose(u.get_mantissa(g), [2.0, 4.0, 6.0])
    g = vector_grad(lambda x: x ** 3, unit_aware=True)(x)
    assert u.get_unit(g) == u.ms ** 2
    np.testing.assert_allclose(u.get_mantissa(g), [3.0, 12.0, 27.0])


def test_unit_aware_without_brainunit(monkeypatch):
    from brainstate import _units

    monkeypatch.setattr(_units, "_module", None)  # as if brainunit were not installed
    for transform in (grad, vector_grad):
        with pytest.raises(ImportError, match="needs the optional package brainunit"):
            transform(lambda x: x, unit_aware=True)


# --- fwd_grad ---------------------------------------------------------------------------------

def _direction_outer(key, n):
    """``v v^T`` of fwd_grad's direction for ``key``: row j is the estimate for f(x) = x[j]."""
    return jnp.stack([fwd_grad(lambda x, j=j: x[j], key=key)(jnp.zeros(n, jnp.float32))
                      for j in range(n)])


def test_fwd_grad_is_the_directional_estimate():
    a = f32(1.0, -2.0, 0.5)
    m = _direction_outer(7, 3)
    got = fwd_grad(lambda x: jnp.dot(a, x), key=7)(jnp.ones(3, jnp.float32))
    np.testing.assert_allclose(got, m @ a, rtol=1e-5, atol=1e-6)
    # clipping the directional derivative d = v.a scales v d by clip(d) / d
    d = float(jnp.sqrt(a @ m @ a))
    got = fwd_grad(lambda x: jnp.dot(a, x), key=7, drct_der_clip=0.1)(jnp.ones(3, jnp.float32))
    np.testing.assert_allclose(got, m @ a * min(1.0, 0.1 / d), rtol=1e-4, atol=1e-6)


def test_fwd_grad_averages_to_the_gradient():
    x = f32(0.5, -1.0, 2.0)
    est = fwd_grad(lambda x: jnp.sum(jnp.sin(x) * x), tangent_size=40000, key=3)(x)
    np.testing.assert_allclose(est, jnp.sin(x) + x * jnp.cos(x), atol=0.1)


def test_fwd_grad_states_aux_value_and_fresh_keys_under_jit(w):
    brainstate.random.seed(11)
    calls = brainstate.State(jnp.zeros((), jnp.int32))

    @jit
    def step(x):
        def loss(x):
            calls.value = calls.value + 1
            v = jnp.sum(w.value ** 2 * x)
            return v, v * 2

        return fwd_grad(loss, grad_states=w, argnums=0, has_aux=True, return_value=True)(x)

    (gw, gx), value, aux = step(f32(1, 1))
    assert gw.shape == (2,) and gx.shape == (2,)
    assert float(value) == 5.0 and float(aux) == 10.0 and int(calls.value) == 1
    (gw2, _), _, _ = step(f32(1, 1))
    assert not np.allclose(gw, gw2)  # the global key advanced: new directions


def test_fwd_grad_errors():
    with pytest.raises(ValueError, match="scalar output, got an output of shape \\(2,\\)"):
        fwd_grad(lambda x: x ** 2, key=0)(f32(1, 2))
    with pytest.raises(ValueError, match="scalar output"):
        fwd_grad(lambda x: x ** 2, key=0, tangent_size=3)(f32(1, 2))
    with pytest.raises(TypeError, match="inexact"):
        fwd_grad(lambda x: jnp.sum(x.astype(jnp.float32)), key=0)(jnp.arange(2))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="tangent_size must be a positive int"):
            fwd_grad(lambda x: x, tangent_size=bad)
    with pytest.raises(ValueError, match="argnums must be a non-negative int"):
        fwd_grad(lambda x: x, argnums=-1, key=0)
