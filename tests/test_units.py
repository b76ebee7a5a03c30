"""States holding physical quantities (``brainunit.Quantity``).

A Quantity is a pytree node whose aux data is its unit, so the unit is part of a state's
signature: writes in another unit are refused with a message naming both units. The rest
checks that quantities travel through the transforms, the graph and checkpoints.
"""

from __future__ import annotations

import os
import pickle
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import HiddenState, ParamState, State, StateSignatureError
from brainstate._signature import leaf_units
from brainstate.transform import (
    cond,
    eval_shape,
    for_loop,
    grad,
    jit,
    scan,
    vmap,
    vmap_new_states,
    while_loop,
)

u = pytest.importorskip("brainunit")


@pytest.fixture(autouse=True)
def _no_global_hooks():
    yield
    brainstate.clear_state_hooks()


def q(x, unit):
    return jnp.asarray(x, dtype=jnp.float32) * unit


# (first value, rejected value, fragments the message must contain, in order)
MISMATCHES = {
    "incompatible unit": (
        q([0, 0, 0], u.mV), q([1, 1, 1], u.mS),
        ["leaf <root> has the wrong unit: expected mV, got mS",
         "physical dimensions differ (mV: m^2 kg s^-3 A^-1, mS: m^-2 kg^-1 s^3 A^2)",
         "no conversion exists"]),
    "compatible unit, smaller": (
        q([0, 0, 0], u.mV), q([1, 1, 1], u.volt),
        ["expected mV, got V (the same physical dimension at another scale)",
         "never converts on write", "`value.in_unit(u.mV)` (or `value.to(u.mV)`)"]),
    "compatible unit, larger": (
        q([0, 0], u.volt), q([1, 1], u.mV),
        ["expected V, got mV", "`value.in_unit(u.volt)`"]),
    "compatible composite unit": (
        q([0, 0], u.mV / u.ms), q([1, 1], u.mV / u.second),
        ["expected mV / ms, got mV / s (the same physical dimension",
         "with `value.in_unit(<the unit mV / ms>)`"]),
    "plain array into quantity": (
        q([0, 0, 0], u.mV), jnp.ones(3),
        ["leaf <root> has no unit: expected a Quantity in mV, got a plain value "
         "(shape=(3,) dtype=float32)", "`value * u.mV`", "u.Quantity(value, unit=u.mV)"]),
    "numpy array into quantity": (
        q([0, 0], u.nS), np.ones(2),
        ["has no unit: expected a Quantity in nS", "`value * u.nS`"]),
    "python float into scalar quantity": (
        10.0 * u.ms, 5.0, ["has no unit: expected a Quantity in ms", "shape=() dtype=float32"]),
    "dimensionless quantity into unitful": (
        q([0, 0, 0], u.mV), u.Quantity(jnp.ones(3)),
        ["expected mV, got 1 (dimensionless)", "1: dimensionless",
         "`value.mantissa * u.mV`"]),
    "quantity into plain array": (
        jnp.zeros(3), q([1, 1, 1], u.mV),
        ["leaf <root> has a unit the state does not: expected a plain value (no unit), "
         "got a Quantity in mV", "`value.to_decimal(u.mV)`"]),
    "shape inside quantity": (
        q([0, 0, 0], u.mV), q([0, 0, 0, 0], u.mV),
        ["leaf <root> differs: expected shape=(3,) dtype=float32 in mV, "
         "got shape=(4,) dtype=float32 in mV"]),
    "dtype inside quantity": (
        q([0, 0], u.mV), jnp.zeros(2, jnp.int32) * u.mV,
        ["expected shape=(2,) dtype=float32 in mV, got shape=(2,) dtype=int32 in mV"]),
    "nested unit": (
        {"a": jnp.zeros(2), "b": [q([0, 0], u.nS)]},
        {"a": jnp.zeros(2), "b": [q([0, 0], u.siemens)]},
        ["leaf ['b'][0] has the wrong unit: expected nS, got S", "`value.in_unit(u.nS)`"]),
    "nested unit added": (
        {"a": jnp.zeros(2), "b": [q([0, 0], u.nS)]},
        {"a": q([0, 0], u.mV), "b": [q([0, 0], u.nS)]},
        ["leaf ['a'] has a unit the state does not"]),
    "nested plain leaf after quantities": (
        {"a": q([0, 0], u.mV), "b": jnp.zeros(2)},
        {"a": q([0, 0], u.mV), "b": jnp.zeros(3)},
        ["leaf ['b'] differs: expected shape=(2,) dtype=float32, got shape=(3,) dtype=float32"]),
    "structure around quantities": (
        {"b": [q([0, 0], u.nS)]}, {"b": [q([0, 0], u.nS), q([0, 0], u.nS)]},
        ["tree structure differs", "expected PyTreeDef({'b': [CustomNode(Quantity[nS], [*])]})"]),
}

ACCEPTED = {
    "same unit": (q([0, 0, 0], u.mV), q([1, 2, 3], u.mV)),
    "numpy mantissa": (q([0, 0, 0], u.mV), np.ones(3) * u.mV),
    "equal unit under another name": (q([0, 0], u.mV), q([1, 1], u.mvolt)),
    "equal composite unit": (q([0, 0], u.mV / u.ms), q([1, 1], u.volt / u.second)),
    "python float into scalar quantity": (10.0 * u.ms, jnp.float32(5.0) * u.ms),
    "nested": ({"V": q([0], u.mV), "g": [q([0], u.nS)]}, {"V": q([1], u.mV), "g": [q([2], u.nS)]}),
}


def _ids(table):
    return list(table)


def _match_all(fragments):
    return ".*".join(re.escape(f) for f in fragments)


class TestSignatureMessages:
    @pytest.mark.parametrize("kind", _ids(MISMATCHES))
    def test_write_refused(self, kind):
        first, bad, fragments = MISMATCHES[kind]
        st = State(first, name="v")
        with pytest.raises(StateSignatureError, match="(?s)^Cannot write State 'v' .*"
                                                      + _match_all(fragments)):
            st.value = bad
        assert st._value is first and st._been_writen is False

    @pytest.mark.parametrize("kind", _ids(MISMATCHES))
    def test_restore_refused(self, kind):
        first, bad, fragments = MISMATCHES[kind]
        st = State(first, name="v")
        with pytest.raises(StateSignatureError, match="(?s)^Cannot restore State 'v'.*"
                                                      + _match_all(fragments)):
            st.restore_value(bad)
        assert st._value is first

    @pytest.mark.parametrize("kind", _ids(ACCEPTED))
    def test_accepted(self, kind):
        first, good = ACCEPTED[kind]
        st = State(first)
        st.value = good
        assert st.value is good
        st.restore_value(first)
        assert st.value is first

    def test_is_a_value_error_naming_the_state_and_its_site(self):
        st = HiddenState(q([0, 0], u.mV), name="V")
        with pytest.raises(ValueError) as info:
            st.value = q([1, 1], u.mS)
        text = str(info.value)
        assert isinstance(info.value, StateSignatureError)
        assert text.startswith("Cannot write HiddenState 'V' (created at ")
        assert os.path.basename(__file__) in text
        assert "check_state_value_tree(False)" in text

    def test_converted_value_is_accepted_with_the_right_numbers(self):
        st = State(q([0.0, 0.0], u.mV))
        st.value = q([1.0, 0.5], u.volt).in_unit(u.mV)
        assert st.value.unit == u.mV
        np.testing.assert_allclose(st.value.mantissa, [1000.0, 500.0], rtol=1e-6)
        st.value = q([0.25, 0.0], u.volt).to(u.mV)
        np.testing.assert_allclose(st.value.to_decimal(u.mV), [250.0, 0.0], rtol=1e-6)

    def test_rebinding_to_another_unit_on_purpose(self):
        st = State(q([0, 0], u.mV), name="v")
        with brainstate.check_state_value_tree(False):
            st.value = q([1, 1], u.volt)
        st.value = q([2, 2], u.volt)
        with pytest.raises(StateSignatureError, match=re.escape("expected V, got mV")):
            st.value = q([1, 1], u.mV)

    def test_copy_from_names_both_units(self):
        a = HiddenState(q([0, 0], u.mV), name="a")
        b = HiddenState(q([1, 1], u.volt), name="b")
        with pytest.raises(StateSignatureError,
                           match=r"(?s)^Cannot copy from .*expected mV, got V"):
            a.copy_from(b)
        assert a.value.unit == u.mV

    def test_numel_and_repr(self):
        st = State({"V": q(np.zeros((2, 3)), u.mV), "g": q([0.0], u.nS)}, name="s")
        assert st.numel() == 7
        assert 'Quantity(ShapeDtypeStruct(shape=(2, 3), dtype=float32), "mV")' in repr(st)

    def test_pickle_keeps_unit_and_signature(self):
        st = HiddenState(q([1, 2], u.mV), name="V")
        back = pickle.loads(pickle.dumps(st))
        assert back.value.unit == u.mV
        np.testing.assert_array_equal(back.value.mantissa, [1, 2])
        with pytest.raises(StateSignatureError, match=re.escape("expected mV, got mS")):
            back.value = q([1, 2], u.mS)


class TestLeafUnits:
    def test_units_follow_leaf_order(self):
        value = {"a": jnp.zeros(2), "b": [q([0], u.nS), None, 1.0 * u.ms], "c": q([0], u.mV)}
        assert len(leaf_units(value)) == len(jax.tree_util.tree_leaves(value))
        assert leaf_units(value) == [None, "nS", "ms", "mV"]

    def test_plain_values(self):
        assert leaf_units(jnp.zeros(3)) == [None]
        assert leaf_units({}) == []


# --- both cores: the same words --------------------------------------------------------------


@pytest.fixture(scope="session")
def cfg_core(core):
    brainstate._wiring.configure_core(core)
    return core


def _core_message(core_mod, first, bad) -> str:
    class S(core_mod.StateCore):
        pass

    st = S(first, name="w")
    with pytest.raises(StateSignatureError) as info:
        st.value = bad
    assert st._value is first
    return str(info.value)


class TestBothCores:
    @pytest.mark.parametrize("kind", _ids(MISMATCHES))
    def test_core_message(self, cfg_core, kind):
        first, bad, fragments = MISMATCHES[kind]
        text = _core_message(cfg_core, first, bad)
        assert re.search("(?s)^Cannot write S 'w'.*" + _match_all(fragments), text), text

    @pytest.mark.c_extension
    @pytest.mark.parametrize("kind", _ids(MISMATCHES))
    def test_identical_messages(self, kind):
        import brainstate._core as c_core
        import brainstate._core_py as py_core

        for mod in (c_core, py_core):
            brainstate._wiring.configure_core(mod)
        first, bad, _ = MISMATCHES[kind]
        assert _core_message(c_core, first, bad) == _core_message(py_core, first, bad)


# --- HiddenState -----------------------------------------------------------------------------


class TestHiddenState:
    @pytest.mark.parametrize("value, shape", [
        (q(np.zeros((2, 3)), u.mV), (2, 3)),
        (np.zeros(4) * u.mV, (4,)),
        (u.Quantity(np.float32(1.0), unit=u.mV), ()),
    ])
    def test_accepts_quantities(self, value, shape):
        st = HiddenState(value, name="V")
        assert st.varshape == shape and st.num_state == 1
        assert st.value.unit == u.mV

    def test_group_state_shape(self):
        st = brainstate.HiddenGroupState(q(np.zeros((4, 2)), u.mV))
        assert st.varshape == (4,) and st.num_state == 2
        assert st.get_value(1).unit == u.mV

    def test_rejects_non_arrays(self):
        with pytest.raises(TypeError, match="only supports numpy.ndarray, jax.Array or "
                                            "brainunit.Quantity, got list"):
            HiddenState([1.0 * u.mV])

    def test_group_state_set_value(self):
        st = brainstate.HiddenGroupState(q(np.zeros((4, 2)), u.mV))
        st.set_value({0: q(np.ones(4), u.volt)})
        np.testing.assert_allclose(st.get_value(0).to_decimal(u.mV), np.full(4, 1000.0))

    def test_tree_state_with_units(self):
        st = brainstate.HiddenTreeState({"V": q([0, 1], u.mV), "g": q([2, 3], u.nS)})
        assert st.get_value("V").unit == u.mV and st.get_value("g").unit == u.nS
        np.testing.assert_allclose(st.get_value("g").mantissa, [2.0, 3.0])

    def test_tree_state_set_value_converts_each_entry_to_its_own_unit(self):
        st = brainstate.HiddenTreeState({"V": q([0, 1], u.mV), "g": q([2, 3], u.nS)})
        st.set_value({"V": q([0.5, 1.0], u.volt), "g": q([1, 1], u.uS)})
        np.testing.assert_allclose(st.get_value("V").to_decimal(u.mV), [500.0, 1000.0])
        np.testing.assert_allclose(st.get_value("g").to_decimal(u.nS), [1000.0, 1000.0])

    def test_group_and_tree_states_refuse_a_value_without_its_unit(self):
        group = brainstate.HiddenGroupState(q(np.zeros((4, 2)), u.mV), name="grp")
        with pytest.raises(TypeError, match=r"Sub-state 0 of .*grp.* is in mV, got a plain"):
            group.set_value({0: jnp.ones(4)})
        tree = brainstate.HiddenTreeState({"V": q([0, 1], u.mV), "n": jnp.zeros(2)})
        with pytest.raises(TypeError, match=r"Sub-state 'n' .* plain numbers, got a value in mV"):
            tree.set_value({"n": q([1, 1], u.mV)})
        before = tree.value
        with pytest.raises(u.UnitMismatchError):
            tree.set_value({"V": q([1, 1], u.nS)})
        np.testing.assert_array_equal(tree.value, before)


# --- transforms ------------------------------------------------------------------------------


class Neuron(brainstate.nn.Module):
    def __init__(self, n: int = 3, unit=u.mV):
        super().__init__()
        self.V = HiddenState(q(np.zeros(n), unit), name="V")
        self.g = ParamState(q(np.ones(n), u.nS), name="g")

    def update(self, current):
        self.V.value = self.V.value + current
        return self.V.value


class TestTransforms:
    def test_jit(self):
        net = Neuron()
        f = jit(net.update)
        for k in range(1, 4):
            out = f(q(np.ones(3), u.mV))
            assert out.unit == u.mV and net.V.value.unit == u.mV
            np.testing.assert_allclose(net.V.value.mantissa, np.full(3, float(k)))

    def test_jit_write_in_another_unit(self):
        net = Neuron()

        @jit
        def f(x):
            net.V.value = x

        with pytest.raises(StateSignatureError,
                           match=r"(?s)^Cannot write HiddenState 'V'.*expected mV, got mS"):
            f(q(np.ones(3), u.mS))
        with pytest.raises(StateSignatureError, match=re.escape("`value.in_unit(u.mV)`")):
            f(q(np.ones(3), u.volt))
        assert net.V.value.unit == u.mV
        np.testing.assert_array_equal(net.V.value.mantissa, np.zeros(3))
        f(q(np.full(3, 2.0), u.volt).in_unit(u.mV))
        np.testing.assert_allclose(net.V.value.mantissa, np.full(3, 2000.0))

    def test_grad_wrt_quantity_param(self):
        net = Neuron()
        x = jnp.arange(3.0)

        def loss(x):
            return jnp.sum(net.g.value.to_decimal(u.nS) ** 2 * x)

        g_state, value = grad(loss, grad_states=net.g, return_value=True)(x)
        # jax differentiates the mantissa; the cotangent keeps the primal's pytree (its unit)
        assert jax.tree_util.tree_structure(g_state) == jax.tree_util.tree_structure(net.g.value)
        np.testing.assert_allclose(g_state.mantissa, 2.0 * np.asarray(x), rtol=1e-6)
        np.testing.assert_allclose(value, 3.0, rtol=1e-6)
        np.testing.assert_array_equal(net.g.value.mantissa, np.ones(3))

    def test_grad_wrt_quantity_argument_and_state(self):
        net = Neuron()

        def loss(v):
            return jnp.sum(net.g.value.to_decimal(u.nS) * v.to_decimal(u.mV))

        g_state, g_arg = grad(loss, grad_states=net.g, argnums=0)(q([1.0, 2.0, 3.0], u.mV))
        assert g_arg.unit == u.mV and g_state.unit == u.nS
        np.testing.assert_allclose(g_arg.mantissa, np.ones(3), rtol=1e-6)
        np.testing.assert_allclose(g_state.mantissa, [1.0, 2.0, 3.0], rtol=1e-6)

    def test_vmap_over_a_quantity_state(self):
        w = State(q(np.zeros((4, 3)), u.mV), name="w")

        def per_lane(x):
            w.value = w.value + x
            return w.value.sum()

        out = vmap(per_lane, in_states=w)(q(np.arange(4.0), u.mV))
        assert out.unit == u.mV and w.value.unit == u.mV
        np.testing.assert_allclose(w.value.mantissa, np.repeat(np.arange(4.0)[:, None], 3, 1))
        np.testing.assert_allclose(out.mantissa, 3 * np.arange(4.0))

    def test_vmap_write_in_another_unit(self):
        w = State(q(np.zeros((4, 3)), u.mV), name="w")

        def per_lane(x):
            w.value = x

        with pytest.raises(StateSignatureError,
                           match=r"(?s)Cannot write State 'w'.*expected mV, got mS"):
            vmap(per_lane, in_states=w)(q(np.ones((4, 3)), u.mS))
        np.testing.assert_array_equal(w.value.mantissa, np.zeros((4, 3)))

    def test_vmap_new_states(self):
        made = []

        @vmap_new_states(axis_size=4)
        def init():
            made.append(Neuron())

        init()
        assert made[0].V.value.shape == (4, 3) and made[0].V.value.unit == u.mV
        made[0].V.value = q(np.ones((4, 3)), u.mV)
        with pytest.raises(StateSignatureError, match=re.escape("expected mV, got V")):
            made[0].V.value = q(np.ones((4, 3)), u.volt)

    def test_for_loop_writes_each_step(self):
        net = Neuron()

        def step(i):
            net.V.value = net.V.value + 1.0 * u.mV
            return net.V.value

        trace = for_loop(step, jnp.arange(5))
        assert trace.unit == u.mV and trace.shape == (5, 3)
        np.testing.assert_allclose(trace.mantissa[:, 0], np.arange(1.0, 6.0))
        np.testing.assert_allclose(net.V.value.mantissa, np.full(3, 5.0))

    def test_for_loop_write_in_another_unit(self):
        net = Neuron()

        def step(i):
            net.V.value = q(np.ones(3), u.volt)

        with pytest.raises(StateSignatureError, match=re.escape("expected mV, got V")):
            for_loop(step, jnp.arange(3))
        np.testing.assert_array_equal(net.V.value.mantissa, np.zeros(3))

    def test_scan_with_quantity_inputs(self):
        net = Neuron()

        def body(carry, x):
            net.V.value = net.V.value + x
            return carry + 1, net.V.value

        n, trace = scan(body, 0, q(np.ones((4, 3)), u.mV))
        assert int(n) == 4 and trace.unit == u.mV
        np.testing.assert_allclose(trace.mantissa[-1], np.full(3, 4.0))

    def test_while_loop_and_cond(self):
        net = Neuron()

        def body(c):
            net.V.value = net.V.value + 2.0 * u.mV
            return c + 1

        assert int(while_loop(lambda c: c < 3, body, 0)) == 3
        cond(True, lambda: setattr(net.V, "value", net.V.value * 2), lambda: None)
        assert net.V.value.unit == u.mV
        np.testing.assert_allclose(net.V.value.mantissa, np.full(3, 12.0))

    def test_eval_shape_of_a_model(self):
        model = eval_shape(lambda: Neuron())
        v = model.V.value
        assert v.unit == u.mV and isinstance(v.mantissa, jax.ShapeDtypeStruct)
        assert v.mantissa.shape == (3,)


# --- graph -----------------------------------------------------------------------------------


class TestGraph:
    def test_split_merge_round_trip(self):
        net = Neuron()
        net.V.value = q([1, 2, 3], u.mV)
        gdef, refs = brainstate.graph.treefy_split(net)
        assert refs["V"].value.unit == u.mV and refs["g"].value.unit == u.nS
        back = brainstate.graph.treefy_merge(gdef, refs)
        assert back.V.value.unit == u.mV
        np.testing.assert_array_equal(back.V.value.mantissa, [1, 2, 3])
        with pytest.raises(StateSignatureError, match=re.escape("expected mV, got mS")):
            back.V.value = q(np.zeros(3), u.mS)

    def test_states_and_filters(self):
        net = Neuron()
        hidden = net.states(HiddenState)
        assert list(hidden.keys()) == [("V",)] and hidden[("V",)].value.unit == u.mV
        units = {k: v.value.unit for k, v in net.states().items()}
        assert units == {("V",): u.mV, ("g",): u.nS}

    def test_merge_refuses_a_value_in_another_unit(self):
        gdef, refs = brainstate.graph.treefy_split(Neuron())
        refs["V"] = refs["V"].replace(q(np.zeros(3), u.mS))
        with pytest.raises(StateSignatureError,
                           match=r"(?s)^Cannot rebuild the HiddenState at path V.*"
                                 r"expected mV, got mS"):
            brainstate.graph.treefy_merge(gdef, refs)

    def test_update_states_refuses_and_changes_nothing(self):
        net = Neuron()
        _, refs = brainstate.graph.treefy_split(net)
        refs["g"] = refs["g"].replace(q(np.full(3, 7.0), u.nS))
        refs["V"] = refs["V"].replace(q(np.ones(3), u.volt))
        with pytest.raises(StateSignatureError,
                           match=r"(?s)^Cannot update the HiddenState at path V.*"
                                 r"expected mV, got V.*in_unit\(u\.mV\)"):
            brainstate.graph.update_states(net, refs)
        np.testing.assert_array_equal(net.g.value.mantissa, np.ones(3))
        refs["V"] = refs["V"].replace(q(np.ones(3), u.volt).in_unit(u.mV))
        brainstate.graph.update_states(net, refs)
        np.testing.assert_allclose(net.V.value.mantissa, np.full(3, 1000.0))
        np.testing.assert_allclose(net.g.value.mantissa, np.full(3, 7.0))

    def test_clone_keeps_units(self):
        net = Neuron()
        twin = brainstate.graph.clone(net)
        assert twin.V is not net.V and twin.V.value.unit == u.mV


# --- checkpoints -----------------------------------------------------------------------------


class Cell(brainstate.nn.Module):
    def __init__(self, unit=u.mV, plain: bool = False):
        super().__init__()
        self.V = HiddenState(jnp.zeros(3) if plain else q(np.zeros(3), unit))
        self.tau = brainstate.LongTermState(10.0 * u.ms)
        self.syn = State({"g": q(np.zeros(2), u.nS), "w": np.zeros(2, np.float32)})


def _saved_cell(tmp_path):
    from brainstate.checkpoint import save

    cell = Cell()
    cell.V.value = q([1.0, 2.0, 3.0], u.mV)
    cell.tau.value = 5.0 * u.ms
    cell.syn.value = {"g": q([0.5, 1.5], u.nS), "w": np.ones(2, np.float32)}
    path = os.path.join(tmp_path, "cell.ckpt")
    save(path, cell)
    return path


class TestCheckpoint:
    def test_round_trip_keeps_units(self, tmp_path):
        from brainstate.checkpoint import load

        path = _saved_cell(tmp_path)
        fresh = Cell()
        result = load(path, fresh)
        assert sorted(result.restored) == [("V",), ("syn",), ("tau",)]
        assert fresh.V.value.unit == u.mV and fresh.tau.value.unit == u.ms
        assert fresh.syn.value["g"].unit == u.nS
        np.testing.assert_array_equal(fresh.V.value.mantissa, [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(fresh.tau.value.mantissa, 5.0)
        np.testing.assert_array_equal(fresh.syn.value["g"].mantissa, [0.5, 1.5])
        np.testing.assert_array_equal(fresh.syn.value["w"], np.ones(2))
        with pytest.raises(StateSignatureError, match=re.escape("expected mV, got V")):
            fresh.V.value = q(np.zeros(3), u.volt)

    def test_unitless_target_is_refused(self, tmp_path):
        from brainstate.checkpoint import CheckpointMismatchError, load

        path = _saved_cell(tmp_path)
        target = Cell(plain=True)
        with pytest.raises(CheckpointMismatchError, match=r"(?s)1 mismatched.*V: "):
            load(path, target)
        np.testing.assert_array_equal(target.V.value, np.zeros(3))

    @pytest.mark.parametrize("unit", [u.volt, u.mS])
    def test_target_in_another_unit_is_refused(self, tmp_path, unit):
        from brainstate.checkpoint import CheckpointMismatchError, load

        path = _saved_cell(tmp_path)
        target = Cell(unit)
        with pytest.raises(CheckpointMismatchError, match=r"(?s)V: .*mV.*" + str(unit)):
            load(path, target)
        np.testing.assert_array_equal(target.V.value.mantissa, np.zeros(3))
