"""``nn.Dynamics`` (sizes, update hooks, current/delta inputs, align_pre) and ``nn.Prefetch``."""

from __future__ import annotations

import pickle

import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import HiddenState, graph
from brainstate.nn import (
    Dynamics,
    Module,
    Prefetch,
    init_all_states,
    init_maybe_prefetch,
    not_receive_update_input,
    not_receive_update_output,
    receive_update_input,
    receive_update_output,
)


class Leaky(Dynamics):
    """v <- decay * v + current inputs; delta inputs added after."""

    def __init__(self, in_size, decay=0.5, name=None):
        super().__init__(in_size, name=name)
        self.decay = decay

    def init_state(self, *args, **kwargs):
        self.v = HiddenState(jnp.zeros(self.varshape))

    def update(self, x=0.0):
        v = self.decay * self.v.value + self.sum_current_inputs(x, self.v.value)
        self.v.value = self.sum_delta_inputs(v)
        return self.v.value


class Syn(Dynamics):
    def init_state(self, *args, **kwargs):
        self.g = HiddenState(jnp.zeros(self.varshape))

    def update(self, spk):
        self.g.value = self.g.value + spk
        return self.g.value


class Tap(Dynamics):
    """Logs its tag when updated (module level: pickled by a test)."""

    log: list = []

    def __init__(self, tag):
        super().__init__(1)
        self.tag = tag
        self.s = HiddenState(jnp.zeros(1))

    def update(self, x=None):
        Tap.log.append(self.tag)


class TestSizes:
    @pytest.mark.parametrize("given, expected", [(3, (3,)), ((2, 5), (2, 5)), ([4], (4,)),
                                                 (np.int64(6), (6,)), ((np.int32(2), 3), (2, 3)),
                                                 (0, (0,))])
    def test_in_size_normalised(self, given, expected):
        d = Dynamics(given)
        assert d.in_size == expected and d.out_size == expected and d.varshape == expected
        assert all(type(n) is int for n in d.in_size)

    @pytest.mark.parametrize("bad", ["3", (), [], (3, -1), (3, 2.0), True, -1, None, 2.5,
                                     (3, (2,))])
    def test_bad_in_size(self, bad):
        with pytest.raises(ValueError, match='"in_size" must be a non-negative int or a '
                                             'non-empty tuple/list'):
            Dynamics(bad)

    def test_keywords_name_and_public_path(self):
        d = Dynamics(in_size=(2, 2), name="pop")
        assert d.name == "pop" and Module(name="m").name == "m"
        assert Dynamics.__module__ == "brainstate.nn" and Prefetch.__module__ == "brainstate.nn"
        assert isinstance(d, Module) and isinstance(d, graph.Node)

    def test_a_bare_population_adds_only_its_sizes_to_the_graph(self):
        d = Dynamics(3)
        assert set(vars(d)) == {"_in_size", "_out_size"}
        assert repr(d) == "Dynamics(\n  in_size=(3,),\n  out_size=(3,),\n)"
        assert d.before_updates is None and d.after_updates is None
        assert d.current_inputs is None and d.delta_inputs is None

    def test_desc_builds_later(self):
        make = Leaky.desc(4, decay=0.1)
        a, b = make(), make(name="b")
        assert a.varshape == (4,) and a.decay == 0.1 and b.name == "b" and a is not b


class TestUpdateHooks:
    def test_register_get_has(self):
        d = Leaky(2, name="pop")
        fn = lambda: None  # noqa: E731
        assert not d.has_before_update("k") and not d.has_after_update("k")
        d.add_before_update("k", fn)
        d.add_after_update(("k", 1), fn)
        assert d.has_before_update("k") and d.get_before_update("k") is fn
        assert d.has_after_update(("k", 1)) and d.get_after_update(("k", 1)) is fn
        assert dict(d.before_updates) == {"k": fn}

    def test_duplicate_key_names_key_and_module(self):
        d = Leaky(2, name="pop")
        d.add_after_update("spikes", lambda r: r)
        with pytest.raises(KeyError, match=r"'spikes' has been registered in after_updates of "
                                           r"Leaky\(name='pop'\)"):
            d.add_after_update("spikes", lambda r: r)
        d.add_before_update("b", lambda: 0)
        with pytest.raises(KeyError, match="has been registered in before_updates"):
            d.add_before_update("b", lambda: 0)

    def test_get_missing_and_not_callable(self):
        d = Leaky(2, name="pop")
        with pytest.raises(KeyError, match=r"'x' is not registered in before_updates of "
                                           r"Leaky\(name='pop'\)"):
            d.get_before_update("x")
        d.add_after_update("y", print)
        with pytest.raises(KeyError, match=r"'x' is not registered in after_updates.*\['y'\]"):
            d.get_after_update("x")
        with pytest.raises(TypeError, match="must be callable, but got int"):
            d.add_after_update("z", 3)

    def test_call_runs_before_update_after_in_order(self):
        log = []

        class Pop(Dynamics):
            def update(self, x, scale=1):
                log.append(("update", x, scale))
                return x * scale

        p = Pop(1)
        p.add_before_update("plain", lambda *a, **k: log.append(("before", a, k)))
        p.add_before_update("with_input", receive_update_input(
            lambda *a, **k: log.append(("before_in", a, k))))
        p.add_after_update("with_output", lambda *a: log.append(("after_out", a)))
        p.add_after_update("no_output", not_receive_update_output(
            lambda *a: log.append(("after", a))))
        assert p(3, scale=2) == 6
        assert log == [("before", (), {}), ("before_in", (3,), {"scale": 2}),
                       ("update", 3, 2), ("after_out", (6,)), ("after", ())]
        assert (2 >> p) == 2  # >> goes through __call__ too
        assert log[-1] == ("after", ())

    def test_markers_toggle(self):
        class Hook:
            def __call__(self, *a):
                return a

        h = Hook()
        assert not_receive_update_output(h) is h and h._not_receive_update_output
        assert receive_update_output(h) is h and not hasattr(h, "_not_receive_update_output")
        assert receive_update_input(h) is h and h._receive_update_input
        assert not_receive_update_input(h) is h and not hasattr(h, "_receive_update_input")


class TestInputs:
    def test_arrays_consumed_once_callables_persist(self):
        d = Leaky(3, name="pop")
        d.init_state()
        d.add_current_input("bias", lambda v: jnp.ones(3) + 0 * v)
        d.add_current_input("kick", jnp.full(3, 2.0))
        np.testing.assert_allclose(d(), np.full(3, 3.0))
        assert list(d.current_inputs) == ["bias"]
        np.testing.assert_allclose(d(), np.full(3, 2.5))

    def test_args_and_kwargs_reach_callables(self):
        d = Dynamics(2)
        d.add_current_input("f", lambda a, b=0: a * b)
        d.add_delta_input("g", lambda a, b=0: a + b)
        assert d.sum_current_inputs(1.0, 3.0, b=2.0) == 7.0
        assert d.sum_delta_inputs(1.0, 3.0, b=2.0) == 6.0

    def test_labels(self):
        d = Dynamics(1)
        d.add_current_input("a", 1.0, label="exc")
        d.add_current_input("b", 10.0, label="inh")
        d.add_current_input("c", lambda: 100.0)
        assert set(d.current_inputs) == {"exc // a", "inh // b", "c"}
        assert d.get_input("exc // a") == 1.0
        assert d.sum_current_inputs(0.0, label="exc") == 1.0
        assert "exc // a" not in d.current_inputs  # consumed
        assert d.sum_current_inputs(0.0, label="nothing") == 0.0
        assert d.sum_current_inputs(0.0) == 110.0  # no label: every input
        assert d.sum_current_inputs(0.0) == 100.0

    def test_delta_inputs_are_separate(self):
        d = Dynamics(1)
        d.add_delta_input("x", 2.0)
        assert d.sum_current_inputs(0.0) == 0.0 and d.current_inputs is None
        assert d.sum_delta_inputs(1.0) == 3.0 and d.sum_delta_inputs(1.0) == 1.0
        assert d.get_input is not None and d.delta_inputs == {}

    def test_duplicate_key(self):
        d = Dynamics(1, name="pop")
        fn = lambda: 1.0  # noqa: E731
        d.add_current_input("k", fn)
        d.add_current_input("k", fn)  # the same object again is fine
        with pytest.raises(ValueError, match=r'Key "k" has been defined and used in the current '
                                             r"inputs of Dynamics\(name='pop'\)"):
            d.add_current_input("k", lambda: 2.0)
        d.add_delta_input("k", 1.0, label="L")
        with pytest.raises(ValueError, match='Key "L // k" has been defined and used in the '
                                             "delta inputs"):
            d.add_delta_input("k", 2.0, label="L")

    def test_bad_keys_and_lookup(self):
        d = Dynamics(1, name="pop")
        with pytest.raises(TypeError, match="input key must be a string, but got int"):
            d.add_current_input(3, 1.0)
        with pytest.raises(TypeError, match="input label must be a string"):
            d.add_delta_input("k", 1.0, label=2)
        d.add_current_input("k", 1.0, label="L")
        with pytest.raises(ValueError, match=r"Input key 'k' is not in current/delta inputs of "
                                             r"the module Dynamics\(name='pop'\).*'L // k'"):
            d.get_input("k")

    def test_failing_input_names_its_key(self):
        d = Dynamics(1, name="pop")

        def broken():
            raise RuntimeError("boom")

        d.add_current_input("bad", broken)
        with pytest.raises(ValueError, match=r"(?s)Error in the current input 'bad' of "
                                             r"Dynamics\(name='pop'\).*boom") as info:
            d.sum_current_inputs(0.0)
        assert isinstance(info.value.__cause__, RuntimeError)
        d.add_delta_input("shape", jnp.ones(3))
        with pytest.raises(ValueError, match="Error in the delta input 'shape'"):
            d.sum_delta_inputs(jnp.ones(2))

    def test_inputs_inside_a_loop(self):
        d = Leaky(2)
        init_all_states(d)
        d.add_current_input("drive", lambda v: jnp.ones(2))

        @brainstate.transform.jit
        def run():
            return brainstate.transform.for_loop(lambda i: d(), jnp.arange(3))

        out = run()
        np.testing.assert_allclose(out[:, 0], [1.0, 1.5, 1.75])
        np.testing.assert_allclose(d.v.value, np.full(2, 1.75))


class TestAlignPre:
    def test_instance(self):
        pre, syn = Leaky(2), Syn(2)
        assert pre.align_pre(syn) is syn and pre.get_after_update(id(syn)) is syn
        init_all_states(pre)
        pre.add_current_input("drive", lambda v: jnp.ones(2))
        pre()
        np.testing.assert_allclose(syn.g.value, np.ones(2))  # fed with pre's output

    def test_describer_instantiated_once_with_varshape(self):
        pre = Leaky((2, 3))
        syn = pre.align_pre(Syn.desc())
        assert isinstance(syn, Syn) and syn.varshape == (2, 3)
        assert pre.align_pre(Syn.desc()) is syn
        other = pre.align_pre(Syn.desc(in_size=4))
        assert other is not syn and other.varshape == (4,)
        assert pre.align_pre(Syn.desc(5)).varshape == (5,)

    def test_failures(self):
        pre = Leaky(2, name="pre")
        with pytest.raises(TypeError, match=r"align_pre of Leaky\(name='pre'\) takes a Dynamics "
                                            r"or a ParamDescriber"):
            pre.align_pre(Module())
        with pytest.raises(TypeError, match="not a subclass of brainstate.nn.Dynamics"):
            pre.align_pre(Module.desc())

    def test_mixed_keys_walk_clone_and_keep_call_order(self):
        log = Tap.log = []
        pre = Leaky(1)
        pre.init_state()
        pre.align_pre(Tap("by_id"))
        pre.align_pre(Tap.desc("by_desc"))
        pre.add_after_update("by_str", Tap("by_str"))
        paths = list(pre.states().keys())
        assert ("v",) in paths and len(paths) == 4  # the taps' states are found
        assert ("_after_updates", "by_str", "s") in paths
        twin = graph.clone(pre)
        assert list(twin.after_updates) == list(pre.after_updates)
        twin()
        assert log == ["by_id", "by_desc", "by_str"]
        again = pickle.loads(pickle.dumps(twin))
        assert list(again.after_updates) == list(pre.after_updates)


class TestPrefetch:
    def test_resolved_at_call_time(self):
        pop = Leaky(2, name="pop")
        ref = pop.prefetch("v")
        assert isinstance(ref, Prefetch) and ref.module is pop and ref.item == "v"
        with pytest.raises(AttributeError, match=r"Leaky\(name='pop'\) should have an `v` "
                                                 r"attribute.*init_all_states"):
            ref()
        init_all_states(pop)
        np.testing.assert_allclose(ref(), np.zeros(2))
        assert ref.get_item() is pop.v
        pop.v.value = jnp.ones(2)
        np.testing.assert_allclose(ref.get_item_value(), np.ones(2))

    def test_plain_attribute_and_none(self):
        pop = Leaky(2)
        assert pop.prefetch("decay")() == 0.5
        pop.maybe = None
        with pytest.raises(AttributeError, match="`maybe` attribute"):
            pop.prefetch("maybe").get_item()

    def test_item_must_be_a_string(self):
        with pytest.raises(TypeError, match="Prefetch item must be an attribute name"):
            Prefetch(Leaky(1), 3)

    def test_graph_sees_the_module_through_a_prefetch(self):
        class Input(Module):
            def __init__(self, target):
                super().__init__()
                self.target = target

            def update(self):
                st = self.target.get_item()
                st.value = st.value + 1.0

        pop = Leaky(2)
        holder = Input(pop.prefetch("v"))
        init_all_states(holder)  # reaches pop through the Prefetch node
        assert list(holder.states().keys()) == [("target", "module", "v")]
        brainstate.transform.for_loop(lambda i: holder.update(), jnp.arange(4))
        np.testing.assert_allclose(pop.v.value, np.full(2, 4.0))

    def test_init_maybe_prefetch(self):
        pop = Leaky(1, name="pop")
        with pytest.raises(AttributeError, match="should have an `v` attribute"):
            init_maybe_prefetch(pop.prefetch("v"), 1, batch_size=2)
        pop.init_state()
        assert init_maybe_prefetch(pop.prefetch("v")) is None
        assert init_maybe_prefetch(object(), batch_size=3) is None
        assert init_maybe_prefetch(pop) is None


def test_calling_a_module_before_init_all_states_names_the_state_and_the_fix():
    class LIF(brainstate.nn.Dynamics):
        def init_state(self):
            self.V = brainstate.HiddenState(jnp.zeros(self.varshape))

        def update(self):
            return self.V.value

    cell = LIF(3, name="exc")
    with pytest.raises(AttributeError, match=r"LIF\(name='exc'\) has no attribute 'V'.*"
                                             r"LIF.init_state creates.*init_all_states"):
        cell()
    assert not hasattr(cell, "V") and getattr(cell, "V", None) is None
    brainstate.nn.init_all_states(cell)
    assert cell().shape == (3,)
    # private names and modules without init_state keep the plain message
    with pytest.raises(AttributeError, match="^'LIF' object has no attribute '_v'$"):
        cell._v  # noqa: B018
    with pytest.raises(AttributeError, match="^'Module' object has no attribute 'w'$"):
        brainstate.nn.Module().w  # noqa: B018


def test_a_property_raising_attribute_error_keeps_its_own_message():
    class Cell(brainstate.nn.Dynamics):
        def init_state(self):
            pass

        @property
        def broken(self):
            raise AttributeError("the property's own message")

    with pytest.raises(AttributeError, match="the property's own message"):
        Cell(1).broken  # noqa: B018
