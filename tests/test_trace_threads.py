"""What other threads see of a state while one thread traces it.

A trace puts its tracers into the very state objects it touches, for as long as it runs. The
state is then *held* by the tracing thread: another thread that is not tracing reads the value
from before the trace and its writes are kept (they become the state's value when the trace
rolls back); a thread that is tracing too is refused with ``TraceContextError``, as is any
thread reading a state created inside a trace that is still running elsewhere.

Each test runs the trace in a worker thread that stops inside the traced function until the
main thread has acted (``_during_a_trace``).
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import TraceContextError, graph
from brainstate.transform import StatefulFunction, jit, make_jaxpr, vmap


def _during_a_trace(body, action, transform=None):
    """Trace ``body`` (a function of no argument) in a worker; call ``action()`` in this thread
    while the worker is inside the trace. Returns (action's result, the worker's result)."""
    inside, done = threading.Event(), threading.Event()
    result: dict = {}

    def traced():
        out = body()
        inside.set()
        assert done.wait(10)
        return out

    def work():
        try:
            if transform is None:
                result["out"] = StatefulFunction(traced).make_jaxpr()
            else:
                result["out"] = transform(traced)
        except BaseException as exc:  # reported to the main thread
            result["error"] = exc
            inside.set()

    t = threading.Thread(target=work, daemon=True)
    t.start()
    assert inside.wait(10)
    try:
        got = action()
    finally:
        done.set()
        t.join(30)
    assert not t.is_alive()
    if "error" in result:
        raise result["error"]
    return got, result.get("out")


def _state(name="shared"):
    return brainstate.State(jnp.arange(3, dtype=jnp.float32), name=name)


def _is_tracer_tree(x) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


class TestReads:
    def test_another_thread_reads_the_value_from_before_the_trace(self):
        st = _state()
        before = st.value
        got, _ = _during_a_trace(lambda: st.value * 2.0, lambda: st.value)
        assert got is before
        assert st.value is before  # the trace rolled back

    def test_read_hooks_see_the_value_from_before_the_trace(self):
        st = _state()
        before = st.value
        seen = []
        main = threading.get_ident()
        st.register_hook("read", lambda ev: seen.append((threading.get_ident(), ev.value)),
                         name="spy")
        _during_a_trace(lambda: st.value * 2.0, lambda: st.value)
        here = [v for ident, v in seen if ident == main]
        there = [v for ident, v in seen if ident != main]
        assert len(here) == 1 and here[0] is before
        assert there and all(_is_tracer_tree(v) for v in there)  # the trace's own reads

    def test_a_state_written_by_the_trace_reads_as_before(self):
        st = _state()
        before = st.value

        def body():
            st.value = st.value + 1.0  # a tracer is stored in the state
            return st.value

        got, _ = _during_a_trace(body, lambda: st.value)
        assert got is before
        assert st.value is before

    def test_vmap_views_are_held_too(self):
        st = brainstate.State(jnp.zeros(4, jnp.float32), name="lanes")
        before = st.value

        def run(traced):
            return vmap(lambda x: traced() + x, in_states=st)(jnp.ones(4, jnp.float32))

        got, _ = _during_a_trace(lambda: st.value * 2.0, lambda: st.value, transform=run)
        assert got is before
        assert not _is_tracer_tree(got)

    def test_jit_calls_of_another_function_read_the_value_from_before(self):
        st = _state()
        f = jit(lambda: st.value.sum())
        assert float(f()) == 3.0  # traced and compiled before the other trace starts
        got, _ = _during_a_trace(lambda: st.value * 2.0, lambda: float(f()))
        assert got == 3.0

    def test_split_reads_the_value_from_before(self):
        class Holder(graph.Node):
            def __init__(self, s):
                self.s = s

        st = _state()
        before = st.value
        model = Holder(st)
        (gd, mapping), _ = _during_a_trace(lambda: st.value * 2.0,
                                           lambda: graph.treefy_split(model))
        leaf = mapping["s"].value
        assert leaf is before and not _is_tracer_tree(leaf)

    def test_a_state_created_inside_the_trace_is_refused_to_other_threads(self):
        made = []

        def body():
            made.append(brainstate.State(jnp.zeros(2, jnp.float32) + 1.0, name="inner"))
            return made[0].value

        def read():
            with pytest.raises(TraceContextError, match="created inside a trace still running"):
                made[0].value
            return True

        got, _ = _during_a_trace(body, read)
        assert got


class TestWrites:
    def test_a_write_from_another_thread_is_kept_after_the_rollback(self):
        st = _state()
        new = jnp.full(3, 7.0, jnp.float32)

        def write():
            st.value = new
            return st.value  # the writer reads back its own write

        got, _ = _during_a_trace(lambda: st.value * 2.0, write)
        assert got is new
        assert st.value is new

    def test_a_restore_from_another_thread_is_kept(self):
        st = _state()
        new = jnp.full(3, 5.0, jnp.float32)
        _during_a_trace(lambda: st.value * 2.0, lambda: st.restore_value(new))
        assert st.value is new

    def test_the_trace_does_not_see_the_other_threads_write(self):
        st = _state()
        new = jnp.full(3, 7.0, jnp.float32)
        seen = []

        def body():
            y = st.value * 2.0
            return y

        def write():
            st.value = new
            seen.append(_is_tracer_tree(st._value))  # the trace's own value is still in place

        _, sf = _during_a_trace(body, write)
        jaxpr, states = sf.get_jaxpr(), sf.get_states()
        assert seen == [True]
        assert list(states) == [st]
        # the traced function reads the state as an input of the jaxpr, not as a constant
        assert len(jaxpr.jaxpr.invars) == 1 and not jaxpr.consts

    def test_a_write_of_the_wrong_signature_is_refused_and_nothing_changes(self):
        st = _state()
        before = st.value

        def write():
            with pytest.raises(brainstate.StateSignatureError, match="shared"):
                st.value = jnp.zeros(4, jnp.float32)

        _during_a_trace(lambda: st.value * 2.0, write)
        assert st.value is before

    def test_a_tracer_from_another_thread_is_refused(self):
        st = _state()

        def write():
            with pytest.raises(TraceContextError, match="tracer"):
                jax.make_jaxpr(lambda x: setattr(st, "value", x))(jnp.zeros(3, jnp.float32))

        _during_a_trace(lambda: st.value * 2.0, write)
        assert not _is_tracer_tree(st.value)

    def test_write_hooks_fire_with_the_held_value_as_old(self):
        st = _state()
        before = st.value
        new = jnp.full(3, 2.0, jnp.float32)
        events = []
        st.register_hook("write_after", lambda ev: events.append((ev.old_value, ev.value)),
                         name="spy")
        _during_a_trace(lambda: st.value * 2.0, lambda: setattr(st, "value", new))
        assert len(events) == 1
        old, value = events[0]
        assert old is before and value is new

    def test_a_write_before_hook_can_rewrite_and_veto(self):
        st = _state()
        doubled = []

        def rewrite(ev):
            doubled.append(True)
            ev.transformed_value = ev.value * 2.0

        def veto(ev):
            if float(ev.value[0]) < 0:
                ev.cancel = True
                ev.cancel_reason = "negative"

        st.register_hook("write_before", rewrite, name="twice")
        st.register_hook("write_before", veto, name="veto")

        def write():
            st.value = jnp.ones(3, jnp.float32)
            with pytest.raises(brainstate.HookCancellationError, match="negative"):
                st.value = jnp.full(3, -1.0, jnp.float32)

        _during_a_trace(lambda: st.value * 2.0, write)
        np.testing.assert_allclose(st.value, np.full(3, 2.0))
        assert doubled == [True, True]

    def test_jit_write_back_from_another_thread_is_kept(self):
        st = _state()

        @jit
        def bump():
            st.value = st.value + 1.0

        bump()  # traced and compiled before the other trace starts: [1, 2, 3]
        _during_a_trace(lambda: st.value * 2.0, bump)
        np.testing.assert_allclose(st.value, np.array([2.0, 3.0, 4.0]))

    def test_without_other_writes_the_rollback_restores_the_value_from_before(self):
        st = _state()
        before = st.value
        _during_a_trace(lambda: st.value * 2.0, lambda: None)
        assert st.value is before


class TestTwoTracingThreads:
    def test_a_thread_tracing_a_held_state_is_refused_with_the_owner_named(self):
        st = _state()

        def trace_here():
            with pytest.raises(TraceContextError, match=r"thread .*holds it.*one thread at a time"):
                make_jaxpr(lambda: st.value + 1.0)()
            return True

        got, _ = _during_a_trace(lambda: st.value * 2.0, trace_here)
        assert got
        assert not _is_tracer_tree(st.value)

    def test_after_the_trace_ends_any_thread_can_trace_it(self):
        st = _state()
        _during_a_trace(lambda: st.value * 2.0, lambda: None)
        jaxpr, states = make_jaxpr(lambda: st.value + 1.0)()
        assert list(states) == [st]

    def test_states_not_touched_by_the_trace_stay_free(self):
        st, other = _state(), _state("other")

        def trace_other():
            jaxpr, states = make_jaxpr(lambda: other.value + 1.0)()
            return list(states)

        got, _ = _during_a_trace(lambda: st.value * 2.0, trace_other)
        assert got == [other]
