"""The State family through the public API.

Runs against whichever core is active; the CI runs the file twice (as installed and with
``BRAINSTATE_NO_EXTENSIONS=1``). The signature rule lives in ``test_signature.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import (
    HookCancellationError,
    State,
    StateSignatureError,
    StateTraceStack,
    TraceContextError,
    TreefyState,
)
from brainstate._state import NonBatchState, StateMetadata


@pytest.fixture(autouse=True)
def _no_global_hooks():
    yield
    brainstate.clear_state_hooks()


def _poison(st):
    st._invalidate_trace_value()
    return st


# --- construction -----------------------------------------------------------------------------


class TestConstruction:
    @pytest.mark.parametrize(
        "tag, expected",
        [(None, None), ("a", {"a"}), (["a", "b", "a"], {"a", "b"}), (("x",), {"x"}),
         ({"p", "q"}, {"p", "q"})],
    )
    def test_tag_normalisation(self, tag, expected):
        st = State(jnp.zeros(2), tag=tag)
        assert st.tag == expected
        if expected is not None:
            assert isinstance(st.tag, set)

    def test_tag_absent_is_none(self):
        assert State(jnp.zeros(2)).tag is None

    def test_state_metadata_is_unwrapped_and_merged(self):
        raw = jnp.arange(3.0)
        st = State(StateMetadata(raw, {"unit": "mV", "bound": 2}), name="v", color="red")
        assert st._value is raw
        assert (st.unit, st.bound, st.color, st.name) == ("mV", 2, "red", "v")
        # the signature is the raw value's, not the wrapper's
        st.value = jnp.ones(3)
        with pytest.raises(StateSignatureError):
            st.value = jnp.ones(4)

    def test_state_as_value_is_read_normally(self):
        src = State(jnp.arange(2.0))
        seen = []
        src.register_hook("read", lambda ctx: seen.append(ctx.value))
        with StateTraceStack() as trace:
            st = State(src)
        assert st._value is src._value
        assert len(seen) == 1 and seen[0] is src._value
        assert trace.states == [src] and trace.been_writen == [False]
        assert st not in trace.states  # construction is reported to catchers only

    def test_state_as_value_of_poisoned_state_raises(self):
        src = _poison(State(jnp.zeros(2)))
        with pytest.raises(TraceContextError, match="created inside a traced function"):
            State(src)

    def test_trace_errors_name_the_creation_site_once(self):
        import traceback

        src = _poison(State(jnp.zeros(2)))
        with pytest.raises(TraceContextError) as info:
            State(src)
        text = "".join(traceback.format_exception(info.value))
        assert text.count(f"created at {src._source_info}") == 1, text

    def test_custom_metadata_kwargs_become_attributes(self):
        st = State(jnp.zeros(2), unit="mV", axis_names=("x",))
        assert st.unit == "mV"
        assert st.axis_names == ("x",)

    def test_type_metadata_key_is_refused_at_creation(self):
        # the snapshot (TreefyState) keeps the class under `type`: refusing here beats a
        # TypeError at the first graph split, transform or checkpoint
        with pytest.raises(TypeError, match=r"ParamState\(\.\.\., type=\.\.\.\).*'kind'"):
            brainstate.ParamState(jnp.zeros(2), type="weight")
        with pytest.raises(TypeError, match="'type' cannot be a state's metadata key"):
            State(StateMetadata(jnp.zeros(2), {"type": "w"}))
        st = State(jnp.zeros(2), kind="weight")
        assert st.to_state_ref().kind == "weight"

    def test_any_pytree_is_accepted(self):
        for v in (1.0, None, {"a": [1, 2]}, (np.zeros(2), "s"), [], jax.random.key(0)):
            st = State(v)
            assert st._value is v

    def test_nested_catchers_all_receive_new_state(self):
        with brainstate.catch_new_states("outer") as outer:
            a = State(jnp.zeros(1))
            with brainstate.catch_new_states("inner") as inner:
                b = State(jnp.zeros(1))
        assert list(outer) == [a, b]
        assert list(inner) == [b]
        assert a.tag == {"outer"}
        assert b.tag == {"outer", "inner"}
        after = State(jnp.zeros(1))
        assert after not in outer and after.tag is None

    def test_private_attributes_readable_and_writable(self):
        st = State(jnp.zeros(2), name="n", tag="t")
        assert (st._name, st.tag, st._been_writen, st._level) == ("n", {"t"}, False, 0)
        st._name = "m"
        st.tag = {"u"}
        st._been_writen = True
        st._level = 3
        new = jnp.ones(2)
        st._value = new
        assert (st.name, st.tag, st._been_writen, st.stack_level) == ("m", {"u"}, True, 3)
        assert st.value is new

    def test_trace_state_source_info_hooks_manager_are_swappable(self):
        a, b = State(0.0), State(1.0)
        assert a._trace_state == b._trace_state and a._trace_state.is_valid()
        a._trace_state = b._trace_state
        assert a._trace_ref is b._trace_ref
        a._source_info = b._source_info
        assert a.source_info is b.source_info
        mgr = brainstate.HookManager(brainstate.HookConfig())
        a._hooks_manager = mgr
        assert a.hooks is mgr and a._hooks_manager is mgr

    def test_read_write_value_and_check_value_tree(self):
        st = State({"a": jnp.zeros(2)})
        v = {"a": jnp.ones(2)}
        st._write_value(v)
        assert st._read_value() is v and st._been_writen is False
        st._check_value_tree({"a": np.zeros(2)})
        with pytest.raises(StateSignatureError, match="Cannot check State"):
            st._check_value_tree({"b": jnp.zeros(2)})
        with brainstate.check_state_value_tree(False):
            st._check_value_tree({"b": jnp.zeros(2)})
        st.value = {"a": jnp.zeros(2)}  # _check_value_tree changed nothing
        # upstream's contract: the structure only (a subclass's own setter rules on shapes)
        st._check_value_tree({"a": jnp.zeros(5, jnp.int32)})

    def test_init_classmethod(self):
        p = brainstate.ParamState.init(jnp.zeros, 3, batch_size=2, tag="w")
        assert type(p) is brainstate.ParamState and p.value.shape == (2, 3) and p.tag == {"w"}
        assert State.init(jnp.ones, (4, 1)).value.shape == (4, 1)

    def test_level_is_the_trace_depth_at_creation(self):
        assert State(0.0)._level == 0
        with StateTraceStack(), StateTraceStack():
            assert State(0.0)._level == 2

    def test_init_hook_metadata_excludes_internals(self):
        seen = []
        brainstate.register_state_hook("init", lambda ctx: seen.append((ctx.value, ctx.init_metadata)))
        v = jnp.zeros(2)
        State(v, name="w", tag="t", unit="mV")
        (value, md), = seen
        assert value is v
        assert md == {"_name": "w", "tag": {"t"}, "unit": "mV"}

    def test_caught_before_init_hooks_run(self):
        order = []
        brainstate.register_state_hook("init", lambda ctx: order.append(("hook", len(c))))
        with brainstate.catch_new_states() as c:
            State(jnp.zeros(1))
        assert order == [("hook", 1)]


class TestIdentity:
    def test_hash_is_hash_of_id(self):
        st = State(jnp.zeros(2))
        assert hash(st) == hash(id(st))

    def test_equality_is_identity(self):
        v = jnp.zeros(2)
        a, b = State(v), State(v)
        assert a == a and a != b
        assert "__eq__" not in vars(State)
        assert len({a, b, a}) == 2

    def test_states_are_opaque_pytree_leaves(self):
        st = State({"a": jnp.zeros(2), "b": jnp.ones(3)})
        leaves, treedef = jax.tree.flatten({"s": st, "x": 1})
        assert leaves[0] is st and treedef.num_leaves == 2
        assert jax.tree.map(lambda x: x, [st])[0] is st


class TestStrictAttributeGuard:
    def test_outside_a_trace_assignment_is_allowed(self):
        st = State(jnp.zeros(2))
        with brainstate.check_state_jax_tracer():
            st.foo = 1
            st.value = jnp.ones(2)
        assert st.foo == 1

    def test_assignment_from_another_trace_raises(self):
        st = State(jnp.zeros(2))

        @jax.jit
        def f(x):
            with brainstate.check_state_jax_tracer():
                with pytest.raises(TraceContextError,
                                   match="Cannot mutate State from a different trace level"):
                    st.foo = 1
                with pytest.raises(TraceContextError, match="Cannot mutate State"):
                    st.value = jnp.ones(2)  # concrete: only the strict guard objects
                with pytest.raises(TraceContextError, match="Cannot mutate State"):
                    st.restore_value(jnp.ones(2))
                # the guarded __setattr__ runs before any property setter (upstream too), so
                # renaming is refused as well; _setattr_no_check is the internal bypass
                with pytest.raises(TraceContextError, match="Cannot mutate State"):
                    st.name = "renamed"
                st._setattr_no_check("_name", "renamed")
                with brainstate.check_state_jax_tracer(False):
                    st.bar = 2  # innermost wins
            return x

        f(1.0)
        assert not hasattr(st, "foo")
        assert st.bar == 2 and st.name == "renamed"
        np.testing.assert_array_equal(st.value, jnp.zeros(2))
        assert st._been_writen is False

    def test_state_created_in_the_trace_may_be_mutated(self):
        @jax.jit
        def f(x):
            with brainstate.check_state_jax_tracer():
                st = State(x)
                st.foo = 1
                st.value = x + 1
                return st.value

        np.testing.assert_array_equal(f(jnp.ones(2)), 2 * jnp.ones(2))

    def test_construction_of_hidden_group_states_works_under_guard(self):
        @jax.jit
        def f(x):
            with brainstate.check_state_jax_tracer():
                g = brainstate.HiddenGroupState(x)
                t = brainstate.HiddenTreeState({"a": x[:, 0], "b": x[:, 1]})
            return g.get_value(0) + t.get_value("b")

        np.testing.assert_array_equal(f(jnp.ones((3, 2))), 2 * jnp.ones(3))


# --- reading ------------------------------------------------------------------------------------


class TestRead:
    def test_poisoned_read_raises(self):
        st = _poison(State(jnp.zeros(2), name="h"))
        with pytest.raises(TraceContextError) as info:
            st.value
        msg = str(info.value)
        assert "Cannot read State 'h'" in msg
        assert "created inside a traced function" in msg
        assert "assigning a concrete value makes it usable again" in msg

    def test_read_recorded_only_in_stacks_entered_after_creation(self):
        with StateTraceStack() as outer:
            st = State(jnp.zeros(2))
            with StateTraceStack() as inner:
                st.value
        assert outer.states == [] and inner.states == [st]

    def test_read_recorded_in_every_deeper_stack(self):
        st = State(jnp.zeros(2))
        with StateTraceStack() as a, StateTraceStack() as b:
            st.value
            st.value
        assert a.states == [st] and b.states == [st]
        assert a.been_writen == [False]

    def test_read_hooks_fire_with_the_value(self):
        st = State(jnp.zeros(2))
        seen = []
        st.register_hook("read", lambda ctx: seen.append(ctx.value))
        v = st.value
        assert seen == [v]

    def test_check_if_deleted_is_called_on_read_value(self):
        calls = []

        class Lazy(State):
            def check_if_deleted(self):
                calls.append(1)

        st = Lazy(jnp.zeros(1))
        st._read_value()
        assert calls == [1]

    def test_read_inside_raw_jit_becomes_constant(self):
        st = State(jnp.arange(3.0))
        out = jax.jit(lambda x: x + st.value)(1.0)
        np.testing.assert_array_equal(out, jnp.arange(3.0) + 1)

    def test_value_call(self):
        st = State({"a": jnp.ones(2), "b": jnp.zeros(1)})
        out = st.value_call(lambda x: x + 1)
        np.testing.assert_array_equal(out["a"], 2 * jnp.ones(2))


# --- writing ------------------------------------------------------------------------------------


class TestWrite:
    def test_state_value_error_wins_over_tracer_guard_and_signature(self):
        st = State(jnp.zeros(2))
        other = State(jnp.zeros(5))

        @jax.jit
        def f(x):
            with pytest.raises(ValueError, match="Cannot set value to a State, use copy_from"):
                st.value = other
            return x

        f(1.0)
        with pytest.raises(ValueError, match="Cannot set value to a State") as info:
            st.value = other
        assert not isinstance(info.value, StateSignatureError)

    def test_strict_guard_covers_every_assignment_first(self):
        # as upstream: under check_state_jax_tracer() the guarded __setattr__ runs before the
        # value setter, so it wins over every other error of the write path
        st = State(jnp.zeros(3))

        @jax.jit
        def f(x):
            with brainstate.check_state_jax_tracer():
                for bad in (State(jnp.zeros(3)), jnp.zeros(4), x):
                    with pytest.raises(TraceContextError, match="Cannot mutate State"):
                        st.value = bad
            return x

        f(jnp.zeros(5))
        assert st._been_writen is False

    def test_tracer_guard_wins_over_signature(self):
        st = State(jnp.zeros(3), name="w")

        @jax.jit
        def f(x):
            st.value = x  # wrong shape AND a tracer from a raw jit
            return x

        with pytest.raises(TraceContextError, match="no brainstate transformation is active"):
            f(jnp.ones(5))
        np.testing.assert_array_equal(st.value, jnp.zeros(3))

    def test_mismatch_raises_before_hooks_record_or_mutation(self):
        st = State(jnp.zeros(3))
        fired = []
        for kind in ("write_before", "write_after", "read", "restore"):
            st.register_hook(kind, lambda ctx, k=kind: fired.append(k))
        before = st._value
        with StateTraceStack() as trace:
            with pytest.raises(StateSignatureError):
                st.value = jnp.zeros(4)
        assert fired == [] and trace.states == []
        assert st._value is before and st._been_writen is False

    def test_hook_replacing_with_mismatch_is_caught(self):
        st = State(jnp.zeros(3))
        after = []
        st.register_hook("write_before", lambda ctx: setattr(ctx, "transformed_value", jnp.zeros(2)))
        st.register_hook("write_after", lambda ctx: after.append(ctx.value))
        with pytest.raises(StateSignatureError, match=r"shape=\(2,\)"):
            st.value = jnp.ones(3)
        assert after == [] and st._been_writen is False
        np.testing.assert_array_equal(st.value, jnp.zeros(3))

    def test_hook_replacement_is_stored(self):
        st = State(jnp.zeros(3))
        st.register_hook("write_before",
                         lambda ctx: setattr(ctx, "transformed_value", ctx.value * 2))
        st.value = jnp.ones(3)
        np.testing.assert_array_equal(st.value, 2 * jnp.ones(3))

    def test_cancelled_write_leaves_state_unchanged(self):
        st = State(jnp.zeros(2))
        st.register_hook("write_before", lambda ctx: setattr(ctx, "cancel", True))
        with StateTraceStack() as trace:
            with pytest.raises(HookCancellationError):
                st.value = jnp.ones(2)
        assert trace.states == [] and st._been_writen is False
        np.testing.assert_array_equal(st.value, jnp.zeros(2))

    def test_write_records_sets_flag_and_fires_after_hooks(self):
        old = jnp.zeros(2)
        st = State(old)
        seen = []
        st.register_hook("write_after", lambda ctx: seen.append((ctx.value, ctx.old_value)))
        new = jnp.ones(2)
        with StateTraceStack() as trace:
            st.value = new
        assert trace.states == [st] and trace.been_writen == [True]
        assert st._been_writen is True and st.value is new
        assert seen == [(new, old)]

    def test_been_writen_is_sticky(self):
        st = State(jnp.zeros(2))
        st.value = jnp.ones(2)
        st.restore_value(jnp.zeros(2))
        assert st._been_writen is True

    def test_concrete_write_unpoisons(self):
        st = _poison(State(jnp.zeros(2)))
        st.value = jnp.ones(2)
        np.testing.assert_array_equal(st.value, jnp.ones(2))

    def test_poisoned_state_is_checked_against_its_stored_signature(self):
        st = _poison(State(jnp.zeros(2)))
        with pytest.raises(StateSignatureError):
            st.value = jnp.ones(3)
        with pytest.raises(TraceContextError):
            st.value


# --- other methods ------------------------------------------------------------------------------


class TestValueAssignmentRoute:
    """``state.value = v`` skips the generic attribute machinery for classes whose ``value`` is
    the core's property (compiled core); overrides and later patches must still win."""

    def test_subclass_overriding_value_uses_its_property(self):
        seen = []

        class Logged(State):
            @property
            def value(self):
                return State.value.__get__(self)

            @value.setter
            def value(self, v):
                seen.append(v)
                State.value.__set__(self, v)

        st, x = Logged(jnp.zeros(2)), jnp.ones(2)
        st.value = x
        assert seen == [x] and st.value is x

    def test_value_property_patched_after_writes_is_used(self):
        class Patched(State):
            pass

        st = Patched(jnp.zeros(2))
        for _ in range(3):
            st.value = jnp.ones(2)  # the class is remembered as using the core's property
        seen = []
        Patched.value = property(lambda self: 0, lambda self, v: seen.append(v))
        try:
            st.value = 5
            assert seen == [5]
        finally:
            del Patched.value
        st.value = jnp.full(2, 3.0)
        assert float(st.value[0]) == 3.0

    def test_non_interned_name_and_setattr_are_checked_writes(self):
        st = State(jnp.zeros(2))
        name = "".join(["val", "ue"])
        setattr(st, name, jnp.ones(2))
        assert float(st.value[0]) == 1.0
        with pytest.raises(StateSignatureError):
            setattr(st, name, jnp.ones(3))
        with pytest.raises(StateSignatureError):
            st.value = jnp.ones(3)


class _Abort(BaseException):
    pass


class TestHookFailuresThroughWrites:
    """The error policies on a real state's write (the compiled dispatch calls callbacks
    directly and hands failures to the policy out of line)."""

    @staticmethod
    def _state(policy):
        st = State(jnp.zeros(2))
        st._hooks_manager = brainstate.HookManager(brainstate.HookConfig(on_error=policy))
        return st

    @staticmethod
    def _boom(ctx):
        raise ValueError("boom")

    def test_raise_policy_raising_write_before_leaves_the_state(self):
        st = self._state("raise")
        st.register_hook("write_before", self._boom, name="bad")
        with pytest.raises(brainstate.HookExecutionError, match="Hook 'bad'"):
            st.value = jnp.ones(2)
        assert float(st.value[0]) == 0.0

    def test_raise_policy_raising_write_after_raises_after_the_write(self):
        st = self._state("raise")
        st.register_hook("write_after", self._boom, name="bad")
        with pytest.raises(brainstate.HookExecutionError):
            st.value = jnp.ones(2)
        assert float(st.value[0]) == 1.0

    def test_log_policy_warns_and_runs_the_rest_of_the_chain(self):
        st, later = self._state("log"), []
        st.register_hook("write_before", self._boom, priority=1, name="bad")
        st.register_hook("write_before", later.append)
        st.register_hook("write_after", self._boom, name="bad_after")
        with pytest.warns(brainstate.HookWarning, match="Hook 'bad"):
            st.value = jnp.ones(2)
        assert float(st.value[0]) == 1.0 and len(later) == 1

    def test_ignore_policy_is_silent(self):
        import warnings

        st = self._state("ignore")
        st.register_hook("write_after", self._boom)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            st.value = jnp.ones(2)

    def test_base_exception_is_not_a_hook_error_and_releases_the_lock(self):
        st = self._state("ignore")

        def abort(ctx):
            raise _Abort()

        h = st.register_hook("write_before", abort)
        with pytest.raises(_Abort):
            st.value = jnp.ones(2)
        assert float(st.value[0]) == 0.0
        h.remove()
        seen = []
        st.register_hook("write_before", seen.append)
        st.value = jnp.ones(2)  # the manager's lock was released on the way out
        assert len(seen) == 1 and float(st.value[0]) == 1.0


class TestRestoreValue:
    def test_state_value_rejected(self):
        st = State(jnp.zeros(2))
        with pytest.raises(ValueError, match="Cannot set value to a State"):
            st.restore_value(State(jnp.zeros(2)))

    def test_always_checked(self):
        st = State({"a": jnp.zeros(2)})
        with pytest.raises(StateSignatureError, match="Cannot restore State"):
            st.restore_value({"b": jnp.zeros(2)})
        with pytest.raises(StateSignatureError, match="Cannot restore State"):
            st.restore_value({"a": jnp.zeros(3)})
        assert list(st.value) == ["a"]

    def test_recorded_as_read_no_write_hooks_flag_unchanged(self):
        old = jnp.zeros(2)
        st = State(old)
        fired = []
        st.register_hook("write_before", lambda ctx: fired.append("wb"))
        st.register_hook("write_after", lambda ctx: fired.append("wa"))
        st.register_hook("restore", lambda ctx: fired.append(("r", ctx.value, ctx.old_value)))
        new = jnp.ones(2)
        with StateTraceStack() as trace:
            st.restore_value(new)
        assert trace.states == [st] and trace.been_writen == [False]
        assert fired == [("r", new, old)]
        assert st._been_writen is False and st._value is new

    def test_no_tracer_guard(self):
        st = State(jnp.zeros(2))

        @jax.jit
        def f(x):
            old = st.value
            st.restore_value(x)  # no guard (transforms rely on it) ...
            st.restore_value(old)  # ... and the caller puts the concrete value back
            return x

        f(jnp.ones(2))
        np.testing.assert_array_equal(st.value, jnp.zeros(2))


class TestNamesTagsLevels:
    def test_name(self):
        st = State(0.0)
        assert st.name is None
        st.name = "x"
        assert st.name == "x" and st._name == "x"

    def test_tag_and_add_tag(self):
        st = State(0.0)
        st.add_tag("a")
        assert st.tag == {"a"}
        st.add_tag("a")
        st.add_tag("b")
        assert st.tag == {"a", "b"}
        st.tag = None
        assert st.tag is None

    def test_stack_level(self):
        st = State(0.0)
        st.stack_level = 2
        st.increase_stack_level()
        assert st.stack_level == 3
        for _ in range(5):
            st.decrease_stack_level()
        assert st.stack_level == 0

    def test_source_info_points_at_the_creating_line(self):
        st = State(0.0); line = __import__("inspect").currentframe().f_lineno  # noqa: E702
        assert st.source_info.filename == __file__
        assert st.source_info.lineno == line
        with pytest.raises(KeyError) as info:
            st.raise_error_with_source_info(KeyError("k"))
        assert any(__file__ in n for n in info.value.__notes__)


class TestNumel:
    def test_counts_all_leaves(self):
        st = State({"a": jnp.zeros((2, 3)), "b": [jnp.ones(4), 1.0], "c": None})
        assert st.numel() == 11

    def test_poisoned_raises(self):
        st = _poison(State(jnp.zeros(2)))
        with pytest.raises(TraceContextError, match="count the elements of State"):
            st.numel()


class TestCopy:
    def test_copy(self):
        seen = []
        st = State(jnp.zeros(2), name="w", tag="t", unit="mV")
        st.register_hook("write_after", lambda ctx: seen.append(1))
        st.value = jnp.ones(2)
        brainstate.register_state_hook("init", lambda ctx: seen.append("init"))
        with brainstate.catch_new_states() as catcher, StateTraceStack():
            c = st.copy()
        assert type(c) is State and c is not st
        assert c._value is st._value
        assert (c.name, c.tag, c.unit, c._been_writen, c._level) == ("w", {"t"}, "mV", False, 1)
        assert c.tag is st.tag  # shallow copy of the attributes
        assert not c.has_hooks() and c.hooks is not st.hooks
        assert len(catcher) == 0 and seen == [1]
        c.value = jnp.zeros(2)
        assert seen == [1]
        with pytest.raises(StateSignatureError):
            c.value = jnp.zeros(3)

    def test_copy_has_fresh_trace_identity(self):
        st = State(jnp.zeros(2))

        @jax.jit
        def f(x):
            c = st.copy()
            assert c._trace_is_valid() and not st._trace_is_valid()
            c.value = x  # allowed: the copy belongs to this trace
            return c.value

        np.testing.assert_array_equal(f(jnp.ones(2)), jnp.ones(2))

    def test_copy_of_poisoned_state_keeps_signature(self):
        st = _poison(State(jnp.zeros(2)))
        c = st.copy()
        with pytest.raises(TraceContextError):
            c.value
        with pytest.raises(StateSignatureError):
            c.value = jnp.zeros(3)
        c.value = jnp.ones(2)


class TestReplace:
    def test_replace_attrs(self):
        st = State(jnp.zeros(2), name="a", unit="mV")
        r = st.replace(_name="b", unit="V")
        assert type(r) is State and r is not st
        assert (r.name, r.unit, st.name, st.unit) == ("b", "V", "a", "mV")
        assert r._value is st._value

    def test_replace_value(self):
        st = State(jnp.zeros(2), name="a")
        r = st.replace(jnp.ones(4))
        assert r.name == "a" and r.value.shape == (4,)
        r.value = jnp.zeros(4)  # the replaced state's signature is its own value's

    def test_same_class_state_is_returned(self):
        st, other = State(jnp.zeros(2)), State(jnp.ones(2), name="o")
        assert st.replace(other) is other
        r = st.replace(other, _name="p")
        assert r is not other and r.name == "p" and other.name == "o"

    def test_other_class_raises(self):
        with pytest.raises(ValueError, match="Cannot replace value from incompatible container"):
            State(0.0).replace(brainstate.ParamState(0.0))


class TestCopyFrom:
    def test_type_check(self):
        with pytest.raises(ValueError, match="Cannot copy from incompatible container"):
            State(0.0).copy_from(brainstate.ParamState(0.0))

    def test_self_is_a_no_op(self):
        st = State(jnp.zeros(2), name="x")
        st.copy_from(st)
        assert st.name == "x"

    def test_adopts_value_and_metadata_keeps_identity(self):
        fired = []
        with StateTraceStack():
            dst = State(jnp.zeros(2), name="dst")
        dst.register_hook("write_after", lambda ctx: fired.append("wa"))
        dst.register_hook("restore", lambda ctx: fired.append("r"))
        site, level, ref, hooks = dst._source_info, dst._level, dst._trace_ref, dst.hooks
        src = State(jnp.ones(2), name="src", tag="t", unit="mV")
        src.value = jnp.full(2, 3.0)
        with StateTraceStack() as trace:
            dst.copy_from(src)
        assert dst._value is src._value
        assert (dst.name, dst.tag, dst.unit, dst._been_writen) == ("src", {"t"}, "mV", True)
        assert dst._source_info is site and dst._level == level == 1
        assert dst._trace_ref is ref and dst.hooks is hooks
        assert fired == [] and trace.states == []

    def test_signature_mismatch_raises_and_changes_nothing(self):
        dst = State(jnp.zeros(2), name="dst")
        src = State(jnp.ones(3), name="src")
        with pytest.raises(StateSignatureError, match="Cannot copy from State 'dst'"):
            dst.copy_from(src)
        assert dst.name == "dst" and dst.value.shape == (2,)

    def test_unchecked_section_rebinds(self):
        dst, src = State(jnp.zeros(2)), State(jnp.ones(3))
        with brainstate.check_state_value_tree(False):
            dst.copy_from(src)
        dst.value = jnp.zeros(3)
        with pytest.raises(StateSignatureError):
            dst.value = jnp.zeros(2)


class TestRefs:
    def test_to_state_ref(self):
        st = State(jnp.zeros(2), name="w", tag="t", unit="mV")
        ref = st.to_state_ref()
        assert isinstance(ref, TreefyState) and ref.type is State and ref.value is st._value
        md = ref.get_metadata()
        assert {"_name", "tag", "_been_writen", "_source_info", "_hooks_manager", "unit"} <= set(md)
        assert not {"_value", "_trace_state", "_level", "type", "value"} & set(md)
        assert md["_name"] == "w" and md["unit"] == "mV"

    @pytest.mark.parametrize("written", [True, False])
    def test_update_from_ref_keeps_own_hooks_identity_level(self, written):
        with StateTraceStack():
            dst = State(jnp.zeros(2), name="dst")
        fired = []
        dst.register_hook("write_after", lambda ctx: fired.append("wa"))
        dst.register_hook("restore", lambda ctx: fired.append("r"))
        hooks, ref_id, level, site = dst.hooks, dst._trace_ref, dst._level, dst._source_info
        src = State(jnp.ones(2), name="src", unit="V")
        if written:
            src.value = jnp.full(2, 2.0)
        ref = jax.tree.map(lambda x: x, src.to_state_ref())  # re-mints the ref's manager
        dst.update_from_ref(ref)
        assert dst.hooks is hooks and dst._trace_ref is ref_id
        assert dst._level == level == 1 and dst._source_info is site
        assert (dst.name, dst.unit) == ("src", "V")
        np.testing.assert_array_equal(dst.value, src.value)
        assert fired == (["wa"] if written else ["r"])
        assert dst._been_writen is written

    def test_update_from_ref_mismatch_changes_nothing(self):
        dst = State(jnp.zeros(2), name="dst")
        fired = []
        dst.register_hook("write_before", lambda ctx: fired.append("wb"))
        src = State(jnp.ones(3), name="src", unit="V")
        src.value = jnp.ones(3)
        with pytest.raises(StateSignatureError):
            dst.update_from_ref(src.to_state_ref())
        assert dst.name == "dst" and not hasattr(dst, "unit") and dst._been_writen is False
        assert dst.value.shape == (2,) and fired == []


class TestRepr:
    def test_repr(self):
        assert repr(State(jnp.zeros(2))) == (
            "State(value=ShapeDtypeStruct(shape=(2,), dtype=float32))")
        r = repr(brainstate.ParamState({"a": jnp.zeros(1)}, name="w", tag="t", unit="mV"))
        assert r.startswith("ParamState(value={'a': ShapeDtypeStruct(shape=(1,)")
        assert "name='w'" in r and "tag={'t'}" in r
        assert "_level" not in r and "_hooks" not in r and "Signature" not in r

    def test_repr_never_raises(self):
        st = _poison(State(jnp.zeros(2), name="p"))
        assert repr(st) == "State(value=<invalidated trace value>, name='p')"

        class Weird:
            shape = property(lambda self: 1 / 0)

        st = State(0.0)
        st._value = Weird()
        assert repr(st).startswith("State(value=<") and "Weird" in repr(st)


# --- TreefyState ---------------------------------------------------------------------------------


class TestTreefyState:
    def test_exactly_one_child_value(self):
        ref = State(jnp.zeros(2), name="a").to_state_ref()
        (path, leaf), = jax.tree_util.tree_flatten_with_path(ref)[0]
        assert path == (jax.tree_util.GetAttrKey("value"),)
        assert leaf is ref.value
        tree_ref = State({"x": jnp.zeros(1), "y": jnp.ones(1)}).to_state_ref()
        paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(tree_ref)[0]]
        assert all(p[0] == jax.tree_util.GetAttrKey("value") for p in paths) and len(paths) == 2

    def test_equal_metadata_equal_treedefs_no_retrace(self):
        a = State(jnp.zeros(2), name="w", tag="t").to_state_ref()
        b = State(jnp.ones(2), name="w", tag="t").to_state_ref()
        assert jax.tree.structure(a) == jax.tree.structure(b)
        traces = []

        @jax.jit
        def f(ref):
            traces.append(1)
            return ref.value + 1

        f(a)
        f(b)
        assert len(traces) == 1

    @pytest.mark.parametrize("change", [
        lambda s: setattr(s, "_been_writen", True),
        lambda s: setattr(s, "tag", {"other"}),
        lambda s: setattr(s, "_name", "other"),
        lambda s: setattr(s, "unit", "V"),
    ])
    def test_differing_metadata_differing_treedefs(self, change):
        a = State(jnp.zeros(2), name="w", tag="t", unit="mV")
        b = State(jnp.zeros(2), name="w", tag="t", unit="mV")
        assert jax.tree.structure(a.to_state_ref()) == jax.tree.structure(b.to_state_ref())
        change(b)
        assert jax.tree.structure(a.to_state_ref()) != jax.tree.structure(b.to_state_ref())

    def test_source_info_and_hooks_not_in_aux(self):
        a = State(jnp.zeros(2))
        b = State(jnp.zeros(2))
        b.register_hook("read", lambda ctx: None)
        assert a._source_info is not b._source_info
        assert jax.tree.structure(a.to_state_ref()) == jax.tree.structure(b.to_state_ref())
        rebuilt = jax.tree.map(lambda x: x, b.to_state_ref())
        assert rebuilt._source_info is None and rebuilt._hooks_manager is None

    def test_to_state(self):
        st = brainstate.ParamState(jnp.zeros(2), name="w", unit="mV")
        st.register_hook("read", lambda ctx: None)
        seen = []
        brainstate.register_state_hook("init", lambda ctx: seen.append(1))
        ref = st.to_state_ref()
        with brainstate.catch_new_states() as catcher, StateTraceStack():
            new = ref.to_state()
        assert type(new) is brainstate.ParamState and new is not st
        assert (new.name, new.unit, new._level) == ("w", "mV", 1)
        assert new._value is st._value
        assert not new.has_hooks()
        assert seen == [] and len(catcher) == 0
        with pytest.raises(StateSignatureError):
            new.value = jnp.zeros(3)

    def test_to_state_has_fresh_trace_identity(self):
        ref = State(jnp.zeros(2)).to_state_ref()

        @jax.jit
        def f(r):
            st = r.to_state()
            assert st._trace_is_valid()
            st.value = st.value + 1  # writable: it belongs to this trace
            return st.to_state_ref()

        out = f(ref)
        np.testing.assert_array_equal(out.value, jnp.ones(2))

    def test_replace_copy_metadata_name(self):
        ref = State(jnp.zeros(2), name="w", unit="mV").to_state_ref()
        r2 = ref.replace(jnp.ones(2))
        assert r2.type is State and r2.get_metadata() == ref.get_metadata()
        np.testing.assert_array_equal(r2.value, jnp.ones(2))
        c = ref.copy()
        assert c is not ref and c.value is ref.value and c.unit == "mV"
        assert ref.name == "w"
        ref.name = "v"
        assert ref._name == "v" and ref.get_metadata()["_name"] == "v"
        assert "value=" in repr(ref)


# --- subclasses ---------------------------------------------------------------------------------


class TestSubclasses:
    def test_hierarchy(self):
        assert issubclass(brainstate.ParamState, brainstate.LongTermState)
        assert issubclass(brainstate.BatchState, brainstate.LongTermState)
        assert issubclass(brainstate.HiddenState, brainstate.ShortTermState)
        assert issubclass(brainstate.DelayState, brainstate.ShortTermState)
        assert issubclass(NonBatchState, brainstate.ShortTermState)
        assert not hasattr(brainstate, "NonBatchState")
        for cls in (brainstate.ShortTermState, brainstate.LongTermState):
            assert issubclass(cls, State)
        st = NonBatchState(jnp.zeros(2))
        st.value = jnp.ones(2)

    @pytest.mark.parametrize("bad", [1.0, [1.0, 2.0], {"a": jnp.zeros(2)}, None])
    def test_hidden_state_type_error(self, bad):
        with pytest.raises(TypeError, match="only supports numpy.ndarray, jax.Array or brainunit.Quantity"):
            brainstate.HiddenState(bad)

    def test_hidden_state(self):
        h = brainstate.HiddenState(np.zeros((2, 3), np.float32), name="v")
        assert h.varshape == (2, 3) and h.num_state == 1 and h.name == "v"

    def test_hidden_group_state(self):
        g = brainstate.HiddenGroupState(np.arange(12.0, dtype=np.float32).reshape(4, 3))
        assert g.name2index == {"0": 0, "1": 1, "2": 2}
        assert g.varshape == (4,) and g.num_state == 3
        np.testing.assert_array_equal(g.get_value(1), np.arange(1.0, 12, 3))
        np.testing.assert_array_equal(g.get_value(-1), g.get_value(2))
        np.testing.assert_array_equal(g.get_value("2"), g.get_value(2))
        g.set_value({0: np.ones(4), "1": jnp.full(4, 2.0)})
        g.set_value([jnp.full(4, 5.0)])
        assert isinstance(g.value, jax.Array)
        np.testing.assert_array_equal(g.get_value(0), jnp.full(4, 5.0))
        np.testing.assert_array_equal(g.get_value(1), jnp.full(4, 2.0))

    def test_hidden_group_state_errors(self):
        with pytest.raises(ValueError, match="ndim >= 2"):
            brainstate.HiddenGroupState(jnp.zeros(3))
        g = brainstate.HiddenGroupState(jnp.zeros((4, 3)))
        with pytest.raises(IndexError):
            g.get_value(3)
        with pytest.raises(IndexError):
            g.get_value(-4)
        with pytest.raises(KeyError):
            g.get_value("x")
        with pytest.raises(TypeError):
            g.get_value(1.5)
        with pytest.raises(TypeError):
            g.set_value(jnp.zeros(4))
        with pytest.raises(TypeError, match="should be int or str"):
            g.set_value({1.0: jnp.zeros(4)})
        with pytest.raises(ValueError):
            g.set_value({3: jnp.zeros(4)})
        with pytest.raises(ValueError):
            g.set_value({-1: jnp.zeros(4)})
        with pytest.raises(ValueError, match="does not match"):
            g.set_value({0: jnp.zeros(5)})
        np.testing.assert_array_equal(g.value, jnp.zeros((4, 3)))

    def test_hidden_tree_state(self):
        t = brainstate.HiddenTreeState({"a": jnp.zeros(3), "b": np.ones(3, np.float32)})
        assert isinstance(t.value, jax.Array) and t.value.shape == (3, 2)
        assert t.name2index == {"a": 0, "b": 1} and t.index2name == {0: "a", 1: "b"}
        assert set(t.name2unit) == {"a", "b"} and set(t.index2unit) == {0, 1}
        assert t.num_state == 2 and t.varshape == (3,)
        np.testing.assert_array_equal(t.get_value("b"), jnp.ones(3))
        np.testing.assert_array_equal(t.get_value(-1), jnp.ones(3))
        t.set_value({"a": jnp.full(3, 4.0)})
        np.testing.assert_array_equal(t.get_value(0), jnp.full(3, 4.0))
        lst = brainstate.HiddenTreeState([jnp.zeros(2), jnp.ones(2)])
        assert lst.name2index == {"0": 0, "1": 1}

    def test_hidden_tree_state_errors(self):
        with pytest.raises(ValueError):
            brainstate.HiddenTreeState({"a": jnp.zeros(3), "b": jnp.zeros(2)})
        with pytest.raises(TypeError):
            brainstate.HiddenTreeState({"a": 1.0})
        with pytest.raises(TypeError):
            brainstate.HiddenTreeState(jnp.zeros((2, 2)))
        t = brainstate.HiddenTreeState({"a": jnp.zeros(3), "b": jnp.zeros(3)})
        for empty in ({}, []):
            with pytest.raises(ValueError, match="at least one entry"):
                t.set_value(empty)
        t.name2index["c"] = 2
        with pytest.raises(ValueError):
            t.num_state

    def test_fake_state(self):
        f = brainstate.FakeState(jnp.zeros(2), name="f")
        assert not isinstance(f, State)
        assert f.name == "f"
        f.value = 3
        assert f.value == 3
        assert repr(f) == "FakedState(value=3)"
        assert brainstate.maybe_state(f) is f


# --- helpers ------------------------------------------------------------------------------------


class TestHelpers:
    def test_maybe_state(self):
        v = jnp.zeros(2)
        assert brainstate.maybe_state(State(v)) is v
        assert brainstate.maybe_state(v) is v
        assert brainstate.maybe_state(None) is None

    def test_check_state_value_tree_nested_rebinds(self):
        st = State({"a": jnp.zeros(2)})
        with brainstate.check_state_value_tree():
            with brainstate.check_state_value_tree(False):
                st.value = {"a": jnp.zeros(2), "b": jnp.zeros(1)}  # structure change let through
                with brainstate.check_state_value_tree(True):
                    with pytest.raises(StateSignatureError):
                        st.value = {"a": jnp.zeros(2)}
            # re-bound: later writes are checked against the new signature
            st.value = {"a": jnp.ones(2), "b": jnp.ones(1)}
            with pytest.raises(StateSignatureError):
                st.value = {"a": jnp.zeros(2)}
        st.restore_value({"a": jnp.ones(2), "b": jnp.ones(1)})

    def test_unchecked_restore_rebinds(self):
        st = State(jnp.zeros(2))
        with brainstate.check_state_value_tree(False):
            st.restore_value(jnp.zeros((2, 2), jnp.int32))
        st.value = jnp.ones((2, 2), jnp.int32)
        with pytest.raises(StateSignatureError):
            st.value = jnp.ones(2)

    def test_contexts_unwind_on_error(self):
        st = State(jnp.zeros(2))
        with pytest.raises(RuntimeError):
            with brainstate.check_state_value_tree(False):
                raise RuntimeError
        with pytest.raises(StateSignatureError):
            st.value = jnp.zeros(3)

    def test_catcher_api(self):
        with brainstate.catch_new_states("new") as c:
            a = State(jnp.zeros(1))
            b = State(jnp.ones(2), tag="old")
        assert len(c) == 2 and list(c) == [a, b] and c[1] is b
        assert c.get_states() == [a, b]
        vals = c.get_state_values()
        assert vals[0] is a._value and c.values[1] is b._value
        assert a in c and State(0.0) not in c
        assert c.get_by_tag("old") == [b] and c.get_by_tag("new") == [a, b]
        c.append(a)  # dedup by identity
        assert len(c) == 2
        a.stack_level = 2
        c.decrease_stack_level()
        assert (a.stack_level, b.stack_level) == (1, 0)
        c.remove(a)
        assert list(c) == [b] and a not in c
        with pytest.raises(ValueError):
            c.remove(a)
        c.clear()
        assert len(c) == 0

    def test_catcher_exclusion(self):
        from brainstate.util.filter import OfType

        with brainstate.catch_new_states(state_to_exclude=OfType(brainstate.ParamState)) as c:
            p = brainstate.ParamState(0.0)
            s = State(0.0)
        assert list(c) == [s] and p.tag is None and s.tag is None

    @pytest.mark.parametrize("exclude", [brainstate.ParamState, "weights"])
    def test_catcher_exclusion_by_any_filter(self, exclude):
        # a class or a tag is a filter like OfType(...): never called as a predicate
        with brainstate.catch_new_states(state_to_exclude=exclude) as c:
            p = brainstate.ParamState(0.0, tag="weights")
            s = State(0.0)
        assert list(c) == [s] and p.tag == {"weights"}

    def test_new_state_catcher_defaults(self):
        c = brainstate.NewStateCatcher()
        st = State(0.0)
        c.append(st)
        assert list(c) == [st] and st.tag is None


# --- constructor signatures (inspect.signature cannot read the compiled __init__ itself) -------


def test_inspect_signature_of_state_classes():
    import inspect

    for cls in (brainstate.State, brainstate.ParamState, brainstate.ShortTermState):
        params = list(inspect.signature(cls).parameters)
        assert params == ["value", "name", "metadata"], (cls, params)
    assert list(inspect.signature(brainstate.random.RandomState).parameters) == ["seed_or_key"]

    class Sized(brainstate.State):
        def __init__(self, n: int, scale: float = 1.0):
            super().__init__(jnp.zeros(n) * scale)

    sig = inspect.signature(Sized)
    assert list(sig.parameters) == ["n", "scale"]
    assert sig.parameters["scale"].default == 1.0
    assert Sized(3).value.shape == (3,)
    # an instance is not callable and has no signature
    assert brainstate.State(jnp.zeros(2)).__signature__ is None
