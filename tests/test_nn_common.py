"""``nn.ElementWiseBlock``, ``nn.Sequential``, ``nn.EnvironContext``, ``nn.Vmap`` and ``nn.Map``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate._state import NonBatchState

nn = brainstate.nn


class Scale(nn.Module):
    """A size-preserving layer with one parameter."""

    def __init__(self, in_size, factor=2.0):
        super().__init__()
        self.in_size = self.out_size = in_size
        self.w = brainstate.ParamState(jnp.full(self.in_size, factor))

    def update(self, x):
        return x * self.w.value


class Double(nn.ElementWiseBlock):
    def update(self, x):
        return 2 * x


class Boom(nn.Module):
    def update(self, x):
        raise KeyError("boom")


# --- ElementWiseBlock ------------------------------------------------------------------------


def test_elementwise_block_is_a_plain_module():
    layer = Double()
    assert isinstance(layer, nn.Module)
    assert nn.ElementWiseBlock.__module__ == "brainstate.nn"
    assert layer.in_size is None and layer.out_size is None
    np.testing.assert_allclose(layer(jnp.ones(2)), [2.0, 2.0])


# --- Sequential ------------------------------------------------------------------------------


def test_sequential_chains_layers_and_sizes():
    brainstate.random.seed(0)
    net = nn.Sequential(nn.Linear(4, 3), jax.nn.relu, Double(), nn.Linear.desc(out_size=2))
    assert net.in_size == (4,) and net.out_size == (2,)
    assert isinstance(net.layers[3], nn.Linear) and net.layers[3].in_size == (3,)
    x = brainstate.random.normal(size=(5, 4))
    expected = net.layers[3](2 * jax.nn.relu(net.layers[0](x)))
    np.testing.assert_allclose(net(x), expected, rtol=1e-6)
    assert len(net.states(brainstate.ParamState)) == 2


def test_sequential_runs_inside_jit_and_grad():
    net = nn.Sequential(Scale(3, 2.0), Scale.desc(factor=3.0))
    x = jnp.asarray([1.0, 2.0, 3.0])
    np.testing.assert_allclose(brainstate.transform.jit(net)(x), 6 * x)
    params = net.states(brainstate.ParamState)
    grads = brainstate.transform.grad(lambda: net(x).sum(), params)()
    np.testing.assert_allclose(grads[("layers", 0, "w")], 3 * x)


def test_sequential_indexing():
    a, b, c = Scale(2), Double(), Scale(2, 3.0)
    net = nn.Sequential(a, b, c)
    assert net[0] is a and net[-1] is c
    tail = net[1:]
    assert isinstance(tail, nn.Sequential) and tail.layers == [b, c]
    picked = net[[0, 2]]
    assert isinstance(picked, nn.Sequential) and picked.layers == [a, c]
    assert picked.in_size == (2,) and picked.out_size == (2,)
    empty = net[5:]
    assert isinstance(empty, nn.Sequential) and empty.layers == []
    np.testing.assert_allclose(empty(jnp.ones(2)), jnp.ones(2))
    assert list(net) == [a, b, c]
    with pytest.raises(TypeError, match="Sequential indices must be an int, a slice"):
        net["a"]


def test_sequential_append_extend_insert():
    net = nn.Sequential(Scale(2))
    net.append(Double())
    net.extend([Scale.desc(factor=5.0), jax.nn.relu])
    assert len(net.layers) == 4 and net.out_size == (2,)
    np.testing.assert_allclose(net(jnp.ones(2)), [20.0, 20.0])
    net.insert(1, jnp.negative)
    assert net.layers[1] is jnp.negative
    np.testing.assert_allclose(net(jnp.ones(2)), [0.0, 0.0])
    net.insert(-1, Double())  # before the last layer, as list.insert
    assert isinstance(net.layers[-2], Double)
    first = Scale(2, 10.0)
    net.insert(0, first)
    assert net[0] is first
    empty = net[9:]
    empty.append(Scale(3))
    assert empty.in_size == (3,) and empty.out_size == (3,)


def test_sequential_error_in_layer_keeps_its_type_and_names_the_layer():
    net = nn.Sequential(Scale(2), Boom())
    with pytest.raises(KeyError, match="boom") as info:
        net(jnp.ones(2))
    assert any("layer 1 (Boom)" in note for note in info.value.__notes__)


def test_sequential_empty_is_refused():
    with pytest.raises(ValueError, match="Sequential needs at least one layer"):
        nn.Sequential()


def test_sequential_first_layer_must_be_a_module():
    with pytest.raises(TypeError, match="first layer must be a brainstate.nn.Module"):
        nn.Sequential(jax.nn.relu)
    with pytest.raises(TypeError, match="first layer must be a brainstate.nn.Module"):
        nn.Sequential(Scale.desc(in_size=2))
    with pytest.raises(TypeError, match="The first layer of a Sequential must be a Module|"
                                        "first layer must be a brainstate.nn.Module"):
        nn.Sequential(Scale(2)).insert(0, jax.nn.relu)


def test_sequential_size_mismatch_names_both_layers():
    with pytest.raises(ValueError, match=r"layer Linear expects in_size=\(5,\), but the layer "
                                         r"before it, Scale, gives out_size=\(3,\)"):
        nn.Sequential(Scale(3), nn.Linear(5, 2))
    net = nn.Sequential(Scale(3))
    with pytest.raises(ValueError, match="expects in_size"):
        net.append(nn.Linear(4, 2))
    assert len(net.layers) == 1  # a refused append leaves the chain unchanged
    # trailing dimensions agreeing is enough
    nn.Sequential(Scale((4, 3)), nn.Linear(3, 2))


def test_sequential_describer_needs_a_known_size():
    with pytest.raises(ValueError, match=r"cannot build .*Scale.*the layer before it, Boom, "
                                         "has no out_size"):
        nn.Sequential(Boom(), Scale.desc())


def test_sequential_bad_layers():
    with pytest.raises(TypeError, match="Modules, describers .* or callables, got 3"):
        nn.Sequential(Scale(2), 3)
    not_module = brainstate.mixin.ParamDescriber(lambda in_size: "text")
    with pytest.raises(TypeError, match="built a str, not a brainstate.nn.Module"):
        nn.Sequential(Scale(2), not_module)
    net = nn.Sequential(Scale(2), Double())
    with pytest.raises(IndexError, match="index 7 is out of range for 2 layers"):
        net.insert(7, Double())
    with pytest.raises(TypeError, match="insert index must be an int"):
        net.insert("0", Double())


# --- EnvironContext --------------------------------------------------------------------------


class ReadEnv(nn.Module):
    def update(self, x):
        return x * brainstate.environ.get_dt(), brainstate.environ.get("fit", None)


def test_environ_context_applies_stored_and_call_values():
    wrapped = nn.EnvironContext(ReadEnv(), dt=0.5, fit=True)
    y, fit = wrapped(jnp.asarray(2.0))
    np.testing.assert_allclose(y, 1.0)
    assert fit is True
    y, fit = wrapped(jnp.asarray(2.0), context={"fit": False})
    assert fit is False
    wrapped.add_context(dt=0.25)
    np.testing.assert_allclose(wrapped(jnp.asarray(2.0))[0], 0.5)
    assert brainstate.environ.get("fit", None) is None  # nothing leaks out


def test_environ_context_needs_a_module():
    with pytest.raises(TypeError, match="EnvironContext wraps a brainstate.nn.Module, got "
                                        "function"):
        nn.EnvironContext(lambda x: x, fit=True)


# --- Vmap ------------------------------------------------------------------------------------


class Acc(nn.Module):
    def init_state(self, n=3):
        self.v = brainstate.HiddenState(jnp.zeros(n))
        self.shared = NonBatchState(jnp.ones(n))

    def update(self, x, scale=1.0):
        self.v.value = self.v.value + x * scale
        return self.v.value.sum()

    def total(self, x):
        return jnp.sum(self.v.value) + x


def test_vmap_maps_states_created_after_construction():
    acc = Acc()
    mapped = nn.Vmap(acc, vmap_states=brainstate.HiddenState)
    acc.init_state((4, 2))
    out = mapped(jnp.ones((4, 2)))
    np.testing.assert_allclose(out, jnp.full(4, 2.0))
    np.testing.assert_allclose(acc.v.value, jnp.ones((4, 2)))
    out = mapped(jnp.ones((4, 2)), scale=jnp.arange(4.0))  # keywords mapped along axis 0
    np.testing.assert_allclose(out, 2 + 2 * jnp.arange(4.0))


def test_vmap_declaration_forms_and_in_axes():
    acc = Acc()
    acc.init_state((3, 2))
    by_filter = nn.Vmap(acc, in_axes=(1,), vmap_states={brainstate.HiddenState: 0})
    np.testing.assert_allclose(by_filter(jnp.ones((2, 3))), jnp.full(3, 2.0))
    by_axis = nn.Vmap(acc, in_axes=[None], vmap_states={0: brainstate.HiddenState})
    np.testing.assert_allclose(by_axis(jnp.ones(2)), jnp.full(3, 4.0))
    assert acc.v.value.shape == (3, 2)


def test_vmap_out_states_gain_the_axis():
    acc = Acc()
    acc.init_state(2)
    mapped = nn.Vmap(acc, vmap_out_states=brainstate.HiddenState)
    mapped(jnp.ones((5, 2)))
    assert acc.v.value.shape == (5, 2)


def test_vmap_under_jit():
    acc = Acc()
    acc.init_state((4, 2))
    mapped = nn.Vmap(acc, vmap_states=brainstate.HiddenState)
    f = brainstate.transform.jit(lambda x: mapped(x))
    f(jnp.ones((4, 2)))
    f(jnp.ones((4, 2)))
    np.testing.assert_allclose(acc.v.value, jnp.full((4, 2), 2.0))


def test_vmap_errors():
    with pytest.raises(TypeError, match="Vmap wraps a brainstate.nn.Module"):
        nn.Vmap(jax.nn.relu)
    with pytest.raises(ValueError, match="Vmap in_axes must be an int, None, or a tuple"):
        nn.Vmap(Acc(), in_axes="0")
    with pytest.raises(ValueError, match="Vmap in_axes must be an int"):
        nn.Vmap(Acc(), in_axes=(0, 1.5))
    with pytest.raises(TypeError, match="Vmap vmap_states must be a state filter, a dict"):
        nn.Vmap(Acc(), vmap_states={brainstate.HiddenState: "zero"})
    acc = Acc()
    acc.init_state(2)
    mapped = nn.Vmap(acc, in_axes=(0, None))
    with pytest.raises(ValueError, match="Vmap in_axes has 2 entries but it was called with 1"):
        mapped(jnp.ones((3, 2)))


# --- Map -------------------------------------------------------------------------------------


def test_map_creates_one_state_per_lane_and_runs():
    pop = nn.Map(Acc(), init_map_size=4)
    pop.init_all_states(n=3)
    assert pop.module.v.value.shape == (4, 3)
    assert pop.module.shared.value.shape == (3,)  # NonBatchState keeps one value
    assert [st.value.shape for st in pop.dict_vmap_states[0]] == [(4, 3)]
    out = pop(jnp.ones((4, 3)))
    np.testing.assert_allclose(out, jnp.full(4, 3.0))
    np.testing.assert_allclose(pop.map("total")(jnp.arange(4.0)), 3 + jnp.arange(4.0))
    doubled = pop.map(lambda x: 2 * pop.module.total(x), in_axes=None, out_axes=0)
    np.testing.assert_allclose(doubled(jnp.asarray(1.0)), jnp.full(4, 8.0))


def test_map_random_initialisation_differs_per_lane():
    class Noisy(nn.Module):
        def init_state(self):
            self.w = brainstate.ParamState(brainstate.random.normal(size=(2,)))

        def update(self, x):
            return x * self.w.value

    brainstate.random.seed(1)
    pop = nn.Map(Noisy(), init_map_size=3, state_tag="lanes")
    pop.init_all_states()
    w = pop.module.w.value
    assert w.shape == (3, 2)
    assert not np.allclose(w[0], w[1])
    assert "lanes" in pop.module.w.tag
    np.testing.assert_allclose(pop(jnp.ones((3, 2))), w)


def test_map_call_state_axes_adds_states():
    class WithBuffer(Acc):
        def __init__(self):
            super().__init__()
            self.buf = brainstate.LongTermState(jnp.zeros((4, 3)))

        def update(self, x, scale=1.0):
            self.buf.value = self.buf.value + x
            return super().update(x, scale)

    pop = nn.Map(WithBuffer(), init_map_size=4, call_state_axes={0: brainstate.LongTermState})
    pop.init_all_states(n=3)
    pop(jnp.ones((4, 3)))
    np.testing.assert_allclose(pop.module.buf.value, jnp.ones((4, 3)))


def test_map_errors():
    with pytest.raises(TypeError, match="Map wraps a brainstate.nn.Module"):
        nn.Map(jax.nn.relu, init_map_size=2)
    with pytest.raises(TypeError, match="init_map_size must be an int"):
        nn.Map(Acc(), init_map_size=2.5)
    with pytest.raises(ValueError, match="init_map_size must be positive, got 0"):
        nn.Map(Acc(), init_map_size=0)
    with pytest.raises(NotImplementedError, match="behavior='pmap'"):
        nn.Map(Acc(), init_map_size=2, behavior="pmap")
    with pytest.raises(ValueError, match="behavior must be 'vmap' or 'pmap', got 'bogus'"):
        nn.Map(Acc(), init_map_size=2, behavior="bogus")
    with pytest.raises(NotImplementedError, match="init_state_axes is not supported"):
        nn.Map(Acc(), init_map_size=2, init_state_axes={1: brainstate.HiddenState})
    pop = nn.Map(Acc(), init_map_size=4)
    with pytest.raises(RuntimeError, match="called before its states exist. Call "
                                           "init_all_states"):
        pop(jnp.ones((4, 3)))
    with pytest.raises(RuntimeError, match="before its states exist"):
        pop.map("total")
    pop.init_all_states(n=3)
    with pytest.raises(ValueError, match="inconsistent sizes for the mapped axis.*size 5.*"
                                         "size 4"):
        pop(jnp.ones((5, 3)))
    with pytest.raises(AttributeError, match="Acc has no method named 'nope'"):
        pop.map("nope")
    with pytest.raises(TypeError, match="needs a method name or a callable"):
        pop.map(3)
