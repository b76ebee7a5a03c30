"""State classes whose bases conflict with the core's layout: built on the hosted core.

``class Variable(brainstate.State, Array)`` with a slotted ``Array`` cannot take the compiled
(or the pure twin's slotted) ``StateCore`` layout; ``StateMeta`` builds it on
``HostedStateCore``. These tests check that such a class is a state everywhere: signature
checks, hooks, tracing, graph walks, checkpoints, copies. They run on the active core (both
CI legs).
"""

from __future__ import annotations

import copy
import logging
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import StateSignatureError, TraceContextError
from brainstate._hosted import HostedStateCore, is_hosted
from brainstate._impl import core as _core
from brainstate.checkpoint import load, save


class Array:
    """A slotted array wrapper (the shape of brainpy's ``brainpy.math.Array``)."""

    __slots__ = ("_value",)

    def __add__(self, other):
        return self.value + other

    def __eq__(self, other):  # element-wise, as an array's
        return self.value == other

    @property
    def shape(self):
        return self.value.shape


class Variable(brainstate.State, Array):
    pass


class TrainVar(brainstate.ParamState, Array):
    pass


class Hidden(brainstate.HiddenState, Array):
    """A class whose hosted bases use zero-argument ``super()`` (HiddenState.__init__)."""


class Net(brainstate.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = TrainVar(jnp.ones((2, 3)))
        self.h = Variable(jnp.zeros(3))
        self.plain = brainstate.ShortTermState(jnp.zeros(3))

    def __call__(self, x):
        self.h.value = x @ self.w.value + self.plain.value
        return self.h.value.sum()


# --- the class -------------------------------------------------------------------------------


def test_the_class_is_built_on_the_hosted_core_and_is_a_state():
    assert is_hosted(Variable) and not issubclass(Variable, _core.StateCore)
    assert issubclass(Variable, Array) and issubclass(Variable, brainstate.State)
    v = Variable(jnp.zeros(3), name="v")
    assert isinstance(v, brainstate.State) and isinstance(v, Array)
    assert not isinstance(v, brainstate.ParamState)
    t = TrainVar(jnp.zeros(2))
    assert isinstance(t, brainstate.ParamState) and isinstance(t, brainstate.LongTermState)
    assert issubclass(TrainVar, brainstate.ParamState) and not issubclass(Variable, TrainVar)
    # plain states and plain objects are unaffected
    assert isinstance(brainstate.ParamState(1.0), brainstate.State)
    assert not isinstance(1.0, brainstate.State) and not issubclass(int, brainstate.State)
    # the base's slot holds the value (no second copy in the instance dict)
    assert "_value" not in vars(v) and Array._value.__get__(v) is v.value


def test_a_base_with_a_c_layout_is_hosted_too():
    import collections

    class Queue(brainstate.State, collections.deque):  # deque's layout is a C struct
        pass

    q = Queue(jnp.zeros(2), name="q")
    q.append("event")
    assert is_hosted(Queue) and list(q) == ["event"]

    @brainstate.transform.jit
    def bump():
        q.value = q.value + 1
        return q.value

    bump()
    assert np.array_equal(bump(), [2.0, 2.0]) and np.array_equal(q.value, [2.0, 2.0])


def test_a_class_without_conflict_keeps_the_compiled_layout():
    class Mixin:
        __slots__ = ()

    class P(brainstate.ParamState, Mixin):
        pass

    assert issubclass(P, _core.StateCore) and not is_hosted(P)


def test_hosting_is_logged_at_debug_level(caplog):
    with caplog.at_level(logging.DEBUG, logger="brainstate"):
        class Logged(brainstate.State, Array):
            pass
    assert any("Logged" in r.getMessage() and "HostedStateCore" in r.getMessage()
               for r in caplog.records)


def test_a_conflict_the_hosted_core_cannot_resolve_still_raises():
    class A:
        __slots__ = ("a",)

    class B:
        __slots__ = ("b",)

    with pytest.raises(TypeError, match="lay-out|layout"):
        class Bad(brainstate.State, A, B):  # A and B conflict with each other
            pass


def test_zero_argument_super_in_hosted_bases_works():
    h = Hidden(jnp.zeros(2))
    assert isinstance(h, brainstate.HiddenState)
    with pytest.raises(TypeError, match="HiddenState"):
        Hidden([1.0, 2.0])  # HiddenState.__init__ refuses a list, then calls super().__init__


def test_explicit_state_init_on_an_object_new_instance():
    # brainpy's Variable.tree_unflatten: object.__new__, the slot set, State.__init__(obj, v)
    obj = object.__new__(Variable)
    object.__setattr__(obj, "_value", jnp.ones(2))
    brainstate.State.__init__(obj, jnp.ones(2))
    obj.value = jnp.zeros(2)
    assert np.array_equal(obj.value, np.zeros(2))
    # the compiled constructor still serves plain states
    assert brainstate.State(jnp.ones(1)).value.shape == (1,)


# --- values, signatures, guards --------------------------------------------------------------


def test_signature_checks_on_write_and_restore_name_the_state():
    v = Variable(jnp.zeros(3), name="v")
    v.value = jnp.ones(3)
    assert np.array_equal(v.value, np.ones(3)) and v._been_writen
    with pytest.raises(StateSignatureError, match="Cannot write Variable 'v'.*shape=\\(4,\\)"):
        v.value = jnp.ones(4)
    with pytest.raises(StateSignatureError, match="dtype=int32"):
        v.value = jnp.ones(3, jnp.int32)
    with pytest.raises(StateSignatureError, match="Cannot restore Variable 'v'"):
        v.restore_value({"a": jnp.ones(3)})
    assert np.array_equal(v.value, np.ones(3))  # nothing changed
    with pytest.raises(ValueError, match="Cannot set value to a State"):
        v.value = brainstate.State(jnp.ones(3))
    with pytest.raises(ValueError, match="Cannot set value to a State"):
        brainstate.State(jnp.ones(3)).value = v
    with brainstate.check_state_value_tree(False):
        v.value = jnp.ones(5)  # a re-bind, as for compiled states
    assert v._signature == _core.make_signature(jnp.ones(5))
    assert v.numel() == 5


def test_state_metadata_and_custom_attributes():
    v = Variable(brainstate.StateMetadata(jnp.zeros(2), {"unit": "mV"}), tag=["a", "b"])
    assert v.unit == "mV" and v.tag == {"a", "b"}
    with pytest.raises(TypeError, match="'type' cannot be a state's metadata key"):
        Variable(jnp.zeros(2), type="x")


def test_a_state_built_from_a_hosted_state_takes_its_value():
    v = Variable(jnp.arange(3.0))
    assert np.array_equal(brainstate.State(v).value, np.arange(3.0))
    assert np.array_equal(Variable(v).value, np.arange(3.0))


def test_tracer_written_outside_a_brainstate_transform_is_refused():
    v = Variable(jnp.zeros(3))

    def leak(x):
        v.value = x
        return x

    with pytest.raises(TraceContextError, match="A JAX tracer was written to Variable"):
        jax.jit(leak)(jnp.ones(3))
    assert np.array_equal(v.value, np.zeros(3))


def test_strict_attribute_guard_applies():
    v = Variable(jnp.zeros(3))

    def f(x):
        v.extra = 1
        return x

    with brainstate.check_state_jax_tracer():
        with pytest.raises(TraceContextError):
            jax.jit(f)(1.0)


# --- hooks -----------------------------------------------------------------------------------


def test_all_five_hook_types_fire():
    seen = []
    handle = brainstate.register_state_hook("init", lambda ctx: seen.append("init"))
    try:
        v = Variable(jnp.zeros(2), name="v")
    finally:
        brainstate.unregister_state_hook(handle)

    def double(ctx):
        ctx.transformed_value = ctx.value * 2

    v.register_hook("read", lambda ctx: seen.append(("read", ctx.state is v)))
    v.register_hook("write_before", double)
    v.register_hook("write_after", lambda ctx: seen.append("write_after"))
    v.register_hook("restore", lambda ctx: seen.append("restore"))
    v.value = jnp.ones(2)
    v.restore_value(jnp.full(2, 5.0))
    assert np.array_equal(v.value, np.full(2, 5.0))
    assert seen == ["init", "write_after", "restore", ("read", True)]
    v.restore_value(jnp.zeros(2))
    v.value = jnp.ones(2)
    v.clear_hooks()
    assert not v.has_hooks() and np.array_equal(v.value, np.full(2, 2.0))  # doubled


def test_a_write_before_hook_can_cancel_the_write():
    v = Variable(jnp.zeros(2))

    def veto(ctx):
        ctx.cancel = True
        ctx.cancel_reason = "no"

    v.register_hook("write_before", veto)
    with pytest.raises(brainstate.HookCancellationError):
        v.value = jnp.ones(2)
    assert np.array_equal(v.value, np.zeros(2))


# --- tracing and transforms ------------------------------------------------------------------


def test_jit_threads_the_state_and_caches_its_trace():
    v = Variable(jnp.zeros(3))
    traces = []

    @brainstate.transform.jit
    def step(x):
        traces.append(1)
        v.value = v.value + x
        return v.value * 2

    assert np.array_equal(step(1.0), 2 * np.ones(3))
    assert np.array_equal(step(1.0), 4 * np.ones(3))
    assert np.array_equal(v.value, 2 * np.ones(3)) and len(traces) == 1
    sf = brainstate.transform.StatefulFunction(lambda: v.value * 1.0)
    sf.make_jaxpr()
    assert sf.get_states() == (v,) or list(sf.get_states()) == [v]


def test_grad_vmap_and_loops_over_a_model_with_hosted_states():
    net = Net()
    x = jnp.ones((2,))
    grads = brainstate.transform.grad(net, grad_states=net.states(brainstate.ParamState))(x)
    (g,) = grads.values()
    assert g.shape == (2, 3) and np.allclose(g, 1.0)
    assert np.allclose(net.h.value, 2.0)  # written by the traced call

    def body(i):
        net.h.value = net.h.value + 1.0
        return net.h.value.sum()

    outs = brainstate.transform.for_loop(body, jnp.arange(4))
    assert np.allclose(net.h.value, 6.0) and outs.shape == (4,)

    v = Variable(jnp.zeros(3))

    @brainstate.transform.vmap(in_states=v)
    def add(x):
        v.value = v.value + x
        return v.value

    out = add(jnp.arange(3.0))
    assert np.allclose(out, np.arange(3.0)) and np.allclose(v.value, np.arange(3.0))


def test_states_created_inside_a_trace_are_caught_and_poisoned_after():
    made = []

    @brainstate.transform.jit
    def f(x):
        made.append(Variable(x))
        return made[-1].value * 2

    with brainstate.catch_new_states() as caught:
        f(jnp.ones(2))
    assert any(s is made[0] for s in caught.get_states())
    with pytest.raises(TraceContextError, match="died"):
        made[0].value


# --- graph, copies, checkpoints --------------------------------------------------------------


def test_graph_queries_split_and_merge():
    net = Net()
    params = net.states(brainstate.ParamState)
    assert list(params.values()) == [net.w]
    assert {id(s) for s in net.states().values()} == {id(net.w), id(net.h), id(net.plain)}
    graphdef, states = brainstate.graph.treefy_split(net)
    net2 = brainstate.graph.treefy_merge(graphdef, states)
    assert type(net2.w) is TrainVar and net2.w is not net.w
    assert np.array_equal(net2.w.value, net.w.value)
    net2.w.value = jnp.zeros((2, 3))  # a live, checked state
    with pytest.raises(StateSignatureError):
        net2.w.value = jnp.zeros((3, 3))
    # merging back into the original updates it in place
    brainstate.graph.update_states(net, brainstate.graph.treefy_states(net2))
    assert np.array_equal(net.w.value, np.zeros((2, 3)))


def test_copy_pickle_and_refs_keep_metadata_not_core_fields():
    v = Variable(jnp.arange(3.0), name="v", tag="t", unit="mV")
    ref = v.to_state_ref()
    assert set(ref.get_metadata()) >= {"_name", "tag", "unit"}
    assert not {"_sig", "_flags", "_trace_ref", "_level"} & set(ref.get_metadata())
    for other in (v.copy(), copy.copy(v), copy.deepcopy(v), pickle.loads(pickle.dumps(v))):
        assert type(other) is Variable and other is not v
        assert other.name == "v" and other.tag == {"t"} and other.unit == "mV"
        assert np.array_equal(other.value, v.value)
        with pytest.raises(StateSignatureError):
            other.value = jnp.ones(4)


def test_checkpoint_round_trip(tmp_path):
    net = Net()
    net.w.value = jnp.full((2, 3), 3.0)
    save(tmp_path / "net.ckpt", net)
    other = Net()
    result = load(tmp_path / "net.ckpt", other)
    assert result.complete
    assert np.array_equal(other.w.value, np.full((2, 3), 3.0))


def test_upstream_record_helpers_record_on_frames():
    from brainstate._state import record_state_value_read, record_state_value_write

    v = Variable(jnp.zeros(2))
    p = brainstate.ParamState(jnp.zeros(2))
    with brainstate.StateTraceStack() as trace:
        record_state_value_read(v)
        record_state_value_write(p)
    assert [s is v for s in trace.states] == [True, False]
    assert list(trace.been_writen) == [False, True]


def test_hosted_core_is_the_root_of_the_hosted_bases():
    assert HostedStateCore in Variable.__mro__
    assert all(not issubclass(k, _core.StateCore) for k in Variable.__mro__)


# --- the core functions, on both cores in one process -----------------------------------------


def test_both_cores_record_gather_and_scatter_a_hosted_state(core):
    brainstate._wiring.configure_core(core)
    v = Variable(jnp.zeros(2))
    frame = core.TraceFrame()
    core.push_frame(frame)
    try:
        assert [np.asarray(x).tolist() for x in core.gather([v])] == [[0.0, 0.0]]
        core.scatter([v], [jnp.ones(2)])
        frame.read_its_value(v)  # seen already: still one entry
    finally:
        assert core.pop_frame(frame)
    assert frame.states == [v] and frame.been_writen == [True]
    assert np.array_equal(v.value, np.ones(2)) and v._been_writen
    with pytest.raises(TypeError, match="Argument 'st' has incorrect type"):
        frame.read_its_value(object())
    with pytest.raises(TypeError, match="Argument 'st' has incorrect type"):
        core.gather([object()])
    with pytest.raises(TypeError, match="Argument 'st' has incorrect type"):
        core.scatter([object()], [1.0])
    ref = _core.make_ref(v)  # (the graph walks are configured on the active core only)
    assert ref.value is v.value and "_sig" not in ref.get_metadata()
