"""``eval_shape``: abstract evaluation of stateful functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import jit
from brainstate.transform._eval_shape import eval_shape

F32 = jnp.float32


class _Model:
    def __init__(self, n_in, n_out):
        self.w = brainstate.ParamState(jnp.ones((n_in, n_out), F32))
        self.h = brainstate.HiddenState(jnp.zeros(n_out, F32))
        self.name = "model"

    def __call__(self, x):
        self.h.value = x @ self.w.value
        return self.h.value


def test_simple():
    out = eval_shape(lambda x: x * 2.0, jnp.ones(3))
    assert out == jax.ShapeDtypeStruct((3,), F32)


def test_shape_dtype_struct_and_scalar_args():
    out = eval_shape(lambda x, s: (x.sum(axis=0) * s, x.astype(jnp.int32)),
                     jax.ShapeDtypeStruct((4, 5), F32), 2.0)
    assert out[0].shape == (5,) and out[0].dtype == F32
    assert out[1].shape == (4, 5) and out[1].dtype == jnp.int32


def test_pytree_args_and_kwargs():
    def f(d, *, scale):
        return {"sum": d["a"] + d["b"], "scaled": d["a"] * scale}

    out = eval_shape(f, {"a": jnp.ones((2, 3)), "b": jnp.ones((2, 3))}, scale=jnp.ones(()))
    assert out["sum"].shape == (2, 3) and out["scaled"].shape == (2, 3)
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(out))


def test_existing_state_not_mutated():
    st = brainstate.State(jnp.zeros((2, 3), F32))
    calls = []

    def f(x):
        calls.append(1)
        st.value = st.value + x
        return st.value.sum()

    before = st.value
    out = eval_shape(f, jnp.ones((2, 3)))
    assert out.shape == () and len(calls) == 1
    assert st.value is before
    assert not isinstance(st.value, (jax.ShapeDtypeStruct, jax.core.Tracer))


def test_return_state_shapes_read_and_written():
    s_read = brainstate.State(jnp.ones((2, 5), F32))
    s_write = brainstate.ShortTermState(jnp.zeros(4, F32))

    def f(x):
        s_write.value = s_write.value + 1.0
        return s_read.value.sum() + x

    shapes, out = eval_shape(f, jnp.ones(()), return_state_shapes=True)
    assert set(map(id, shapes)) == {id(s_read), id(s_write)}
    assert shapes[s_read] == jax.ShapeDtypeStruct((2, 5), F32)
    assert shapes[s_write] == jax.ShapeDtypeStruct((4,), F32)
    assert out.shape == ()


def test_object_output_with_abstract_new_states():
    m = eval_shape(lambda: _Model(3, 4))
    assert isinstance(m, _Model) and m.name == "model"
    assert m.w.value == jax.ShapeDtypeStruct((3, 4), F32)
    assert m.h.value == jax.ShapeDtypeStruct((4,), F32)
    assert m.w.stack_level == 0 and m.h.stack_level == 0


def test_abstract_model_usable_downstream():
    m = eval_shape(lambda: _Model(3, 4))
    out = eval_shape(lambda: m.w.value)
    assert out == jax.ShapeDtypeStruct((3, 4), F32)
    out = eval_shape(lambda model, x: model(x), m, jnp.ones(3))  # a model as an argument
    assert out == jax.ShapeDtypeStruct((4,), F32)
    assert m.h.value == jax.ShapeDtypeStruct((4,), F32)
    assert jit(lambda: m.w.value).eval_shape() == jax.ShapeDtypeStruct((3, 4), F32)


def test_concrete_new_state_keeps_its_value():
    box = {}

    def f():
        box["st"] = brainstate.State(np.arange(3.0, dtype=np.float32))
        return box["st"].value

    out = eval_shape(f)
    assert out == jax.ShapeDtypeStruct((3,), F32)
    np.testing.assert_allclose(box["st"].value, [0.0, 1.0, 2.0])


def test_mixed_outputs():
    out = eval_shape(lambda x: ("label", x + 1, None, 3), jnp.ones(2, jnp.int32))
    assert out[0] == "label" and out[2] is None
    assert out[1] == jax.ShapeDtypeStruct((2,), jnp.int32)
    assert out[3].shape == ()


def test_failure_unwinds_created_states():
    box = {}

    def f():
        box["st"] = brainstate.ShortTermState(jnp.zeros(3, F32))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        eval_shape(f)
    st = box["st"]
    assert st.stack_level == 0
    st.value = jnp.ones(3, F32)
    np.testing.assert_allclose(st.value, [1.0, 1.0, 1.0])


def test_inside_jit_trace():
    st = brainstate.State(jnp.zeros(3, F32))

    @jit
    def f(x):
        shape = eval_shape(lambda y: st.value + y, x)
        st.value = st.value + x
        return jnp.zeros(shape.shape, shape.dtype)

    assert f(jnp.ones(3)).shape == (3,)
    np.testing.assert_allclose(st.value, [1.0, 1.0, 1.0])


def test_non_callable():
    with pytest.raises(TypeError, match="callable"):
        eval_shape(3)
