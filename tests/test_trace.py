"""StateTraceStack, trace levels, per-thread contexts and hooks on states under threads."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate import State, StateTraceStack
from brainstate._impl import core


def f32(*xs):
    return jnp.asarray(xs, jnp.float32)


class TestStack:
    def test_first_access_order_and_written_flags(self):
        a, b, c = State(f32(1)), State(f32(2)), State(f32(3))
        with StateTraceStack() as t:
            b.value
            a.value = a.value + 1
            b.value
            c.value = f32(0)
            b.value = f32(5)
        assert t.states == [b, a, c]
        assert t.been_writen == [True, True, True]
        assert t.original_state_values[0].tolist() == [2.0]

    def test_views(self):
        a, b = State(f32(1)), State(f32(2))
        with StateTraceStack() as t:
            a.value = a.value + b.value
        assert t.get_write_states() == (a,)
        assert t.get_read_states() == (b,)
        assert t.get_write_states(replace_read=True) == (a, None)
        assert t.get_read_states(replace_writen=True) == (None, b)
        assert [v.tolist() for v in t.get_write_state_values()] == [[3.0]]
        assert [v.tolist() for v in t.get_read_state_values()] == [[2.0]]
        writes, reads = t.get_state_values(separate=True)
        assert len(writes) == 1 and len(reads) == 1
        writes, reads = t.get_state_values(separate=True, replace=True)
        assert writes[1] is None and reads[0] is None
        assert t.state_subset(State) == [a, b]
        assert str(t).startswith("StateTraceStack(")

    def test_recovery_and_release(self):
        a = State(f32(1))
        with StateTraceStack() as t:
            a.value = f32(9)
        t.recovery_original_values()
        assert a.value.tolist() == [1.0]
        t.release_original_values()
        assert isinstance(t.original_state_values[0], jax.ShapeDtypeStruct)
        with pytest.raises(RuntimeError, match="released"):
            t.recovery_original_values()

    def test_assign_state_vals(self):
        a, b = State(f32(1)), State(f32(2))
        with StateTraceStack() as t:
            a.value = a.value + b.value
        t.assign_state_vals([f32(10), f32(20)])
        assert a.value.tolist() == [10.0] and b.value.tolist() == [20.0]
        assert a._been_writen
        with pytest.raises(ValueError):
            t.assign_state_vals([f32(1)])
        t.assign_state_vals_v2([None, f32(7)], [f32(8), None])
        assert a.value.tolist() == [8.0] and b.value.tolist() == [7.0]
        with pytest.raises(ValueError):
            t.assign_state_vals_v2([None], [None, None])

    def test_merge_and_add(self):
        a, b = State(f32(1)), State(f32(2))
        with StateTraceStack() as t1:
            a.value
        with StateTraceStack() as t2:
            b.value
            a.value = f32(3)
        merged = t1 + t2
        assert merged.states == [a, b] and merged.been_writen == [True, False]
        assert merged.original_state_values[0].tolist() == [1.0]  # from the first stack
        t2.release_original_values()
        assert StateTraceStack().merge(t1, t2)._originals_released

    def test_new_arg_substitutes_on_first_access_only(self):
        a = State(f32(1))
        calls = []

        def new_arg(st):
            calls.append(st)
            return st._value * 10

        with StateTraceStack(new_arg=new_arg) as t:
            assert a.value.tolist() == [10.0]
            assert a.value.tolist() == [10.0]
        assert calls == [a]
        t.recovery_original_values()
        assert a.value.tolist() == [1.0]

    def test_check_read_callback(self):
        a = State(f32(1))
        seen = []
        with StateTraceStack(check_read=seen.append):
            a.value
        assert seen == [a]


class TestLevels:
    def test_nested_stacks_record_only_states_created_before_them(self):
        outer_state = State(f32(1))
        with StateTraceStack() as outer:
            inner_state = State(f32(2))
            assert inner_state.stack_level == 1
            with StateTraceStack() as inner:
                outer_state.value
                inner_state.value = f32(3)
        assert outer.states == [outer_state]
        assert inner.states == [outer_state, inner_state]

    def test_exit_out_of_order_raises_and_keeps_stack(self):
        a = StateTraceStack().__enter__()
        b = StateTraceStack().__enter__()
        with pytest.raises(RuntimeError, match="LIFO"):
            a.__exit__(None, None, None)
        assert core.get_context().state_stack == [a, b]
        b.__exit__(None, None, None)
        a.__exit__(None, None, None)
        assert core.get_context().state_stack == []
        assert core.stack_level() == 0

    def test_stacks_are_per_thread(self):
        st = State(f32(1))
        started, release = threading.Event(), threading.Event()
        seen = {}

        def other():
            with StateTraceStack() as t:
                started.set()
                release.wait(5)
                seen["level"] = core.stack_level()
            seen["states"] = t.states

        thread = threading.Thread(target=other)
        thread.start()
        started.wait(5)
        assert core.stack_level() == 0  # the other thread's stack is invisible here
        st.value  # recorded nowhere
        release.set()
        thread.join()
        assert seen == {"level": 1, "states": []}

    def test_check_value_tree_is_per_thread(self):
        st = State(f32(1))
        inside, done = threading.Event(), threading.Event()

        def other():
            with brainstate.check_state_value_tree(False):
                inside.set()
                done.wait(5)

        thread = threading.Thread(target=other)
        thread.start()
        inside.wait(5)
        try:
            with pytest.raises(brainstate.StateSignatureError):
                st.value = f32(1, 2)
        finally:
            done.set()
            thread.join()


class TestRawTraces:
    def test_state_created_inside_raw_trace_may_be_written_there(self):
        @jax.jit
        def f(x):
            st = State(x)
            st.value = st.value + 1
            return st.value

        assert float(f(1.0)) == 2.0

    def test_active_stack_silences_the_guard(self):
        st = State(jnp.float32(0))

        def f(x):
            with StateTraceStack() as t:
                st.value = x
            t.recovery_original_values()
            return x

        jax.jit(f)(1.0)
        assert float(st.value) == 0.0

    def test_trace_identity(self):
        st = State(f32(1))
        ident = st._trace_state
        assert ident.is_valid() and ident == st._trace_state and hash(ident) == 0
        seen = []
        jax.jit(lambda x: seen.append(ident.is_valid()) or x)(1.0)
        assert seen == [False]


class TestThreadedHooks:
    N_THREADS = 16

    def test_concurrent_reads_with_hooks_lose_no_call(self):
        st = State(f32(1))
        count = [0]
        lock = threading.Lock()

        def hook(ctx):
            with lock:
                count[0] += 1

        handle = st.register_hook("read", hook)
        barrier = threading.Barrier(self.N_THREADS)

        def reader():
            barrier.wait()
            for _ in range(200):
                st.value

        threads = [threading.Thread(target=reader) for _ in range(self.N_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        handle.remove()
        assert count[0] == self.N_THREADS * 200

    def test_register_toggle_and_write_concurrently(self):
        st = State(jnp.zeros((), jnp.int32))
        calls = []
        stable = st.register_hook("write_after", lambda ctx: calls.append(1))
        errors = []
        barrier = threading.Barrier(self.N_THREADS)

        def writer():
            barrier.wait()
            try:
                for i in range(100):
                    st.value = jnp.int32(i)
            except Exception as exc:  # pragma: no cover - a failure is reported below
                errors.append(exc)

        def churner():
            barrier.wait()
            try:
                for _ in range(100):
                    h = st.register_hook("write_after", lambda ctx: None)
                    h.disable()
                    h.enable()
                    h.remove()
                    g = brainstate.register_state_hook("read", lambda ctx: None)
                    g.remove()
            except Exception as exc:  # pragma: no cover
                errors.append(exc)

        half = self.N_THREADS // 2
        threads = [threading.Thread(target=writer) for _ in range(half)]
        threads += [threading.Thread(target=churner) for _ in range(self.N_THREADS - half)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stable.remove()
        assert errors == []
        assert len(calls) == half * 100  # the stable hook saw every write

    def test_hooks_of_one_state_run_serialized(self):
        st = State(f32(0))
        active = [0]
        overlaps = []

        def hook(ctx):
            active[0] += 1
            if active[0] > 1:
                overlaps.append(1)
            for _ in range(200):  # give other threads a chance to interleave
                pass
            active[0] -= 1

        handle = st.register_hook("read", hook)
        threads = [threading.Thread(target=lambda: [st.value for _ in range(50)])
                   for _ in range(self.N_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        handle.remove()
        assert overlaps == []


class TestHookDispatchDetails:
    def test_kept_context_is_not_reused(self):
        st = State(f32(0))
        kept = []
        handle = st.register_hook("write_after", kept.append)
        st.value = f32(1)
        st.value = f32(2)
        handle.remove()
        assert kept[0] is not kept[1]
        assert kept[0].value.tolist() == [1.0] and kept[1].value.tolist() == [2.0]

    def test_metadata_is_fresh_per_dispatch(self):
        st = State(f32(0))
        seen = []

        def first(ctx):
            seen.append(dict(ctx.metadata))
            ctx.metadata["k"] = 1

        handle = st.register_hook("write_after", first)
        st.value = f32(1)
        st.value = f32(2)
        handle.remove()
        assert seen == [{}, {}]

    def test_global_hook_runs_before_state_hook_and_feeds_it(self):
        st = State(f32(1))
        order = []

        def g(ctx):
            order.append("global")
            ctx.transformed_value = ctx.value * 2

        def s(ctx):
            order.append(("state", ctx.value.tolist()))

        gh = brainstate.register_state_hook("write_before", g)
        sh = st.register_hook("write_before", s)
        try:
            st.value = f32(3)
        finally:
            gh.remove()
            sh.remove()
        assert order == ["global", ("state", [6.0])]
        assert st.value.tolist() == [6.0]

    def test_cancel_leaves_state_unchanged_and_unrecorded(self):
        st = State(f32(1))

        def veto(ctx):
            ctx.cancel = True
            ctx.cancel_reason = "read-only"

        handle = st.register_hook("write_before", veto, name="guard")
        with StateTraceStack() as t:
            with pytest.raises(brainstate.HookCancellationError, match="guard: read-only"):
                st.value = f32(2)
        handle.remove()
        assert st.value.tolist() == [1.0] and not st._been_writen
        assert t.get_write_states() == ()

    def test_raising_hook_warns_and_write_proceeds_by_default(self):
        st = State(f32(1))
        handle = st.register_hook("write_before", lambda ctx: 1 / 0, name="bad")
        with pytest.warns(brainstate.HookWarning, match="bad"):
            st.value = f32(2)
        handle.remove()
        assert st.value.tolist() == [2.0]

    def test_raise_policy_vetoes(self):
        st = State(f32(1))
        st._hooks_manager = brainstate.HookManager(brainstate.HookConfig(on_error="raise"))
        st.register_hook("write_before", lambda ctx: 1 / 0)
        with pytest.raises(brainstate.HookExecutionError):
            st.value = f32(2)
        assert st.value.tolist() == [1.0]

    def test_foreign_manager_is_refused_clearly(self):
        st = State(f32(1))
        other = State(f32(1))
        handle = other.register_hook("read", lambda ctx: None)  # hooks active somewhere
        st._hooks_manager = object()
        with pytest.raises(TypeError, match="HookManager"):
            st.value
        handle.remove()
