"""grad and vector_grad over states and arguments (spec transforms.md §3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import grad, jit, vector_grad


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
