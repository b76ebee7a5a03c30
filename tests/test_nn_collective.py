"""Collective state operations of ``brainstate.nn``: call order, init/reset/vmap, assignment."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import HiddenState, ParamState, ShortTermState
from brainstate._state import NonBatchState
from brainstate.nn import (
    MAX_ORDER,
    Module,
    assign_state_values,
    call_all_fns,
    call_order,
    init_all_states,
    reset_all_states,
    vmap_call_all_fns,
    vmap_init_all_states,
    vmap_reset_all_states,
)
from brainstate.transform import BatchAxisError


class Recorder(Module):
    """Appends ``(tag, args, kwargs)`` to a shared log from ``init_state``/``reset_state``."""

    def __init__(self, tag, log, n=3):
        super().__init__()
        self.tag, self.log, self.n = tag, log, n

    def init_state(self, *args, **kwargs):
        self.log.append(("init", self.tag, args, kwargs))
        self.h = HiddenState(jnp.ones(self.n))

    def reset_state(self, *args, **kwargs):
        self.log.append(("reset", self.tag, args, kwargs))
        self.h.value = jnp.zeros_like(self.h.value)


class Ordered(Recorder):
    @call_order(1)
    def init_state(self, *args, **kwargs):
        super().init_state(*args, **kwargs)


class Early(Recorder):
    @call_order(0)
    def init_state(self, *args, **kwargs):
        super().init_state(*args, **kwargs)


class Net(Module):
    def __init__(self, log):
        super().__init__()
        self.log = log
        self.late = Ordered("late", log)
        self.early = Early("early", log)
        self.plain = Recorder("plain", log)

    def init_state(self, *args, **kwargs):
        self.log.append(("init", "net", args, kwargs))


class TestCallOrder:
    def test_sets_the_level(self):
        @call_order(3)
        def f():
            pass

        assert f.call_order == 3 and MAX_ORDER == 10
        assert Ordered("x", []).init_state.call_order == 1

    @pytest.mark.parametrize("level", [-1, MAX_ORDER])
    def test_boundary(self, level):
        with pytest.raises(ValueError, match=r"must be an integer in \[0, 10\)"):
            call_order(level)
        assert call_order(level, check_order_boundary=False)(lambda: 0).call_order == level

    @pytest.mark.parametrize("level", [1.5, "2", True])
    def test_level_must_be_int(self, level):
        with pytest.raises(TypeError, match="call_order level must be an integer"):
            call_order(level)


class TestCallAllFns:
    def test_order_unordered_first_then_by_level(self):
        log = []
        net = Net(log)
        assert call_all_fns(net, "init_state", (1,), {"k": 2}) is net
        tags = [entry[1] for entry in log]
        # Unordered ones in walk order (children first, root last), then levels 0, 1.
        assert tags == ["plain", "net", "early", "late"]
        assert all(entry[2:] == ((1,), {"k": 2}) for entry in log)

    def test_non_tuple_args_is_one_argument(self):
        log = []
        call_all_fns(Recorder("r", log), "init_state", args=[1, 2])
        assert log[0][2] == ([1, 2],)

    def test_shared_module_called_once(self):
        log = []
        net = Net(log)
        net.alias = net.plain
        init_all_states(net)
        assert [e[1] for e in log].count("plain") == 1

    def test_node_to_exclude(self):
        log = []
        net = Net(log)
        call_all_fns(net, "init_state", node_to_exclude=Net)
        assert "net" not in [e[1] for e in log] and len(log) == 3
        log.clear()
        call_all_fns(net, "init_state", node_to_exclude=lambda path, node: path == ("late",))
        assert "late" not in [e[1] for e in log] and len(log) == 3

    def test_missing_method_policies(self):
        log = []
        net = Net(log)
        with pytest.raises(AttributeError, match="Module Early with the path \\('early',\\) does "
                                                 "not have method 'only_leaves'"):
            call_all_fns(net, "only_leaves")
        call_all_fns(net, "only_leaves", fn_if_not_exist="pass")
        call_all_fns(net, "only_leaves", fn_if_not_exist="none")
        with pytest.warns(UserWarning, match="does not have method 'only_leaves'. Skipping"):
            call_all_fns(net, "only_leaves", fn_if_not_exist="warn")

    def test_bad_arguments(self):
        m = Recorder("r", [])
        with pytest.raises(TypeError, match="fn_name must be a string"):
            call_all_fns(m, 3)
        with pytest.raises(TypeError, match="kwargs must be a mapping"):
            call_all_fns(m, "init_state", kwargs=[1])
        with pytest.raises(ValueError, match="fn_if_not_exist must be one of"):
            call_all_fns(m, "init_state", fn_if_not_exist="ignore")
        m.not_callable = 3
        with pytest.raises(TypeError, match="'not_callable' of Recorder at path \\(\\) must be "
                                            "callable"):
            call_all_fns(m, "not_callable")


class TestInitReset:
    def test_init_and_reset_forward_arguments(self):
        log = []
        net = Net(log)
        assert init_all_states(net, 4, batch_size=2) is net
        assert np.all(net.plain.h.value == 1) and ("init", "net", (4,), {"batch_size": 2}) in log
        log.clear()
        assert reset_all_states(net, 7, flag=True) is net
        assert {e[1] for e in log} == {"plain", "early", "late"}
        assert all(e[2:] == ((7,), {"flag": True}) for e in log)
        assert np.all(net.late.h.value == 0)

    def test_reset_node_to_exclude(self):
        net = Net([])
        init_all_states(net)
        reset_all_states(net, node_to_exclude=Early)
        assert np.all(net.early.h.value == 1) and np.all(net.plain.h.value == 0)

    def test_module_method_respects_call_order(self):
        log = []
        catcher = Net(log).init_all_states(state_tag="t")
        assert [e[1] for e in log] == ["plain", "net", "early", "late"]
        assert len(catcher) == 3 and all(st.tag == {"t"} for st in catcher)


class Ensemble(Module):
    def init_state(self, k=3):
        self.w = ParamState(jnp.arange(k, dtype=jnp.float32))
        self.shared = NonBatchState(jnp.zeros(2))

    def reset_state(self, value=0.0):
        self.w.value = jnp.full_like(self.w.value, value)


class TestVmap:
    def test_vmap_init_all_states_batches_new_states(self):
        m = vmap_init_all_states(Ensemble(), axis_size=4, k=3, state_tag="ens")
        assert m.w.value.shape == (4, 3) and m.shared.value.shape == (2,)
        np.testing.assert_allclose(m.w.value, np.tile(np.arange(3.0), (4, 1)))
        assert m.w.tag == {"ens"}

    def test_vmap_init_state_to_exclude(self):
        class Two(Module):
            def init_state(self):
                self.a = ParamState(jnp.ones(3))
                self.b = ShortTermState(jnp.zeros(3))

        m = vmap_init_all_states(Two(), axis_size=2, state_to_exclude=ShortTermState)
        assert m.a.value.shape == (2, 3) and m.b.value.shape == (3,)
        m = vmap_init_all_states(Two(), axis_size=2,
                                 state_to_exclude=lambda path, st: isinstance(st, ParamState))
        assert m.a.value.shape == (3,) and m.b.value.shape == (2, 3)

    def test_vmap_init_refuses_in_out_states(self):
        with pytest.raises(ValueError, match="does not take in_states/out_states"):
            vmap_init_all_states(Ensemble(), axis_size=2, in_states={})

    def test_vmap_reset_after_vmap_init(self):
        m = vmap_init_all_states(Ensemble(), axis_size=4)
        assert vmap_reset_all_states(m, 2.5, axis_size=4) is m
        assert m.w.value.shape == (4, 3)
        np.testing.assert_allclose(m.w.value, np.full((4, 3), 2.5))

    def test_vmap_call_all_fns_maps_lane_states(self):
        class Lanes(Module):
            def __init__(self):
                super().__init__()
                self.x = ShortTermState(jnp.arange(4.0))  # one value per lane

            def bump(self):
                self.x.value = self.x.value * 10 + 1

        m = Lanes()
        vmap_call_all_fns(m, "bump", axis_size=4)
        np.testing.assert_allclose(m.x.value, np.arange(4.0) * 10 + 1)

    def test_vmap_call_all_fns_creates_batched_states(self):
        m = vmap_call_all_fns(Ensemble(), "init_state", kwargs={"k": 2}, axis_size=3,
                              state_tag="new")
        assert m.w.value.shape == (3, 2) and m.w.tag == {"new"}
        assert m.shared.value.shape == (2,)  # NonBatchState: one value for all lanes
        m.w.value = m.w.value + 1  # a committed, usable state (no leaked tracer)
        np.testing.assert_allclose(m.w.value, np.tile(np.arange(2.0) + 1, (3, 1)))

    def test_vmap_call_all_fns_lane_dependent_non_batch_state_raises(self):
        class Bad(Module):
            def __init__(self):
                super().__init__()
                self.lane = ShortTermState(jnp.arange(3.0))

            def init_state(self):
                self.nb = NonBatchState(self.lane.value * 2)

        with pytest.raises(BatchAxisError, match="differs across lanes.*NonBatchState"):
            vmap_call_all_fns(Bad(), "init_state", axis_size=3)

    def test_vmap_call_all_fns_shared_state_written_per_lane_raises(self):
        class Shared(Module):
            def __init__(self):
                super().__init__()
                self.lane = ShortTermState(jnp.arange(3.0))
                self.total = ShortTermState(jnp.zeros(2))  # not lane-shaped: shared

            def mix(self):
                self.total.value = self.total.value + self.lane.value

        with pytest.raises(BatchAxisError, match="not declared in out_states"):
            vmap_call_all_fns(Shared(), "mix", axis_size=3)

    @pytest.mark.parametrize("size", [None, 0, -2, 2.0, True])
    def test_axis_size_checked(self, size):
        with pytest.raises(ValueError, match="axis_size must be a positive integer"):
            vmap_call_all_fns(Ensemble(), "init_state", axis_size=size)
        with pytest.raises(ValueError, match="axis_size must be a positive integer"):
            vmap_init_all_states(Ensemble(), axis_size=size)
        with pytest.raises(ValueError, match="axis_size must be a positive integer"):
            vmap_reset_all_states(Ensemble(), axis_size=size)

    def test_vmap_call_all_fns_bad_kwargs(self):
        with pytest.raises(TypeError, match="kwargs must be a mapping"):
            vmap_call_all_fns(Ensemble(), "init_state", kwargs=[1], axis_size=2)


class Pair(Module):
    def __init__(self):
        super().__init__()
        self.w = ParamState(jnp.ones(3))
        self.sub = Module()
        self.sub.b = ParamState(jnp.zeros(2))


class TestAssignStateValues:
    def test_round_trip(self):
        net = Pair()
        snapshot = {path: st.value * 2 for path, st in net.states().items()}
        assert assign_state_values(net, snapshot) == ([], [])
        np.testing.assert_allclose(net.w.value, 2 * np.ones(3))

    def test_unexpected_and_missing(self):
        net = Pair()
        unexpected, missing = assign_state_values(net, {("w",): np.full(3, 9.0),
                                                        ("nope",): 1.0, "also.nope": 2.0})
        assert unexpected == [("nope",), "also.nope"] and missing == [("sub", "b")]
        np.testing.assert_allclose(net.w.value, np.full(3, 9.0))
        assert isinstance(net.w.value, type(jnp.zeros(1)))  # converted to a jax array

    def test_dotted_keys_and_last_wins(self):
        net = Pair()
        assign_state_values(net, {"sub.b": jnp.ones(2)}, {("sub", "b"): jnp.full(2, 7.0)})
        np.testing.assert_allclose(net.sub.b.value, np.full(2, 7.0))

    def test_failures(self):
        net = Pair()
        with pytest.raises(TypeError, match="argument 2 must be a mapping"):
            assign_state_values(net, {}, [("w", 1)])
        with pytest.raises(ValueError, match="shape"):
            assign_state_values(net, {"w": jnp.ones(4)})

    def test_quantity_values(self):
        u = pytest.importorskip("brainunit")

        class Volt(Module):
            def __init__(self):
                super().__init__()
                self.v = brainstate.State(jnp.zeros(2) * u.mV)

        net = Volt()
        assign_state_values(net, {"v": jnp.ones(2) * u.mV})
        assert u.math.allclose(net.v.value, jnp.ones(2) * u.mV)
