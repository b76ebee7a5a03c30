"""The value signature rule and the tracer guards.

The first half goes through the public API (active core); ``TestCore*`` classes take the
``core`` fixture and drive ``StateCore`` of both cores directly.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import brainstate
from brainstate import (
    BrainStateError,
    State,
    StateSignatureError,
    StateTraceStack,
    TraceContextError,
)


@pytest.fixture(autouse=True)
def _no_global_hooks():
    yield
    brainstate.clear_state_hooks()


f32 = jnp.float32
i32 = jnp.int32

# (initial value, rejected value, gist of the difference in the message)
MISMATCHES = {
    "shape": (jnp.zeros(3), jnp.zeros(4),
              "leaf <root> differs: expected shape=(3,) dtype=float32, got shape=(4,) dtype=float32"),
    "rank": (jnp.zeros(3), jnp.zeros((3, 1)), "got shape=(3, 1) dtype=float32"),
    "dtype": (jnp.zeros(3), jnp.zeros(3, i32),
              "expected shape=(3,) dtype=float32, got shape=(3,) dtype=int32"),
    "structure": ({"a": jnp.zeros(2)}, [jnp.zeros(2)], "tree structure differs"),
    "dict keys": ({"a": jnp.zeros(2)}, {"b": jnp.zeros(2)}, "tree structure differs"),
    "list length": ([jnp.zeros(2), jnp.zeros(2)], [jnp.zeros(2)], "tree structure differs"),
    "None leaf filled": ({"a": jnp.zeros(1), "b": None}, {"a": jnp.zeros(1), "b": jnp.zeros(1)},
                         "tree structure differs"),
    "leaf to None": ({"a": jnp.zeros(1), "b": jnp.zeros(1)}, {"a": jnp.zeros(1), "b": None},
                     "tree structure differs"),
    "tuple vs list": ((jnp.zeros(1),), [jnp.zeros(1)], "tree structure differs"),
    "float state, int": (1.0, 2, "expected shape=() dtype=float32, got shape=() dtype=int32"),
    "float state, bool": (1.0, True, "got shape=() dtype=bool"),
    "int state, float": (1, 2.0, "expected shape=() dtype=int32, got shape=() dtype=float32"),
    "bool state, int": (True, 1, "expected shape=() dtype=bool, got shape=() dtype=int32"),
    "numpy float64 into int32": (jnp.zeros(2, i32), np.zeros(2),
                                 "expected shape=(2,) dtype=int32, got shape=(2,) dtype=float32"),
    "typed key vs raw key": (jax.random.key(0), jax.random.PRNGKey(1),
                             "expected shape=() dtype=key<fry>, got shape=(2,) dtype=uint32"),
    "key impl": (jax.random.key(0), jax.random.key(0, impl="rbg"), "got shape=() dtype=key<rbg>"),
    "bfloat16 vs float16": (jnp.zeros(2, jnp.bfloat16), jnp.zeros(2, jnp.float16),
                            "expected shape=(2,) dtype=bfloat16, got shape=(2,) dtype=float16"),
    "bfloat16 vs float32": (jnp.zeros(2, jnp.bfloat16), jnp.zeros(2), "got shape=(2,) dtype=float32"),
    "string leaf vs array": ({"a": "x"}, {"a": 1.0},
                             "expected non-array leaf of type str, got shape=() dtype=float32"),
    "nested leaf": ({"a": {"b": [jnp.zeros(2), jnp.zeros(3)]}},
                    {"a": {"b": [jnp.zeros(2), jnp.zeros(4)]}},
                    "leaf ['a']['b'][1] differs: expected shape=(3,) dtype=float32, "
                    "got shape=(4,) dtype=float32"),
    "scalar vs array": (jnp.zeros(()), jnp.zeros(1), "got shape=(1,) dtype=float32"),
}

ACCEPTED = {
    "same": (jnp.zeros(3), jnp.ones(3)),
    "numpy float64 into float32 (x64 off)": (jnp.zeros(3), np.ones(3)),
    "numpy int64 into int32": (jnp.zeros(3, i32), np.ones(3, np.int64)),
    "numpy float32": (jnp.zeros(3), np.ones(3, np.float32)),
    "python float into float32 scalar": (jnp.zeros(()), 2.0),
    "python int into int32 scalar": (jnp.zeros((), i32), 2),
    "python bool into bool scalar": (jnp.zeros((), bool), True),
    "jax scalar into python float state": (1.0, jnp.float32(2)),
    "numpy scalar into python float state": (1.0, np.float64(2.0)),
    "weak type ignored (weak into strong)": (jnp.zeros((), f32), jnp.asarray(1.0)),
    "weak type ignored (strong into weak)": (jnp.asarray(1.0), jnp.zeros((), f32)),
    "typed key": (jax.random.key(0), jax.random.key(1)),
    "raw key": (jax.random.PRNGKey(0), jax.random.PRNGKey(1)),
    "bfloat16 numpy into bfloat16": (jnp.zeros(2, jnp.bfloat16), np.ones(2, ml_dtypes.bfloat16)),
    "tree": ({"a": [jnp.zeros(2), None], "b": 1.0}, {"a": [np.ones(2), None], "b": 3.0}),
    "string leaf": ({"a": "x"}, {"a": "y"}),
    "None": (None, None),
    "empty list": ([], []),
}


def _ids(d):
    return list(d)


class TestSignatureRule:
    @pytest.mark.parametrize("kind", _ids(MISMATCHES))
    @pytest.mark.parametrize("op", ["write", "restore"])
    def test_mismatch_raises_before_anything_changes(self, kind, op):
        first, bad, gist = MISMATCHES[kind]
        st = State(first, name="w")
        fired = []
        for hook in ("read", "write_before", "write_after", "restore"):
            st.register_hook(hook, lambda ctx, h=hook: fired.append(h))
        with StateTraceStack() as trace:
            with pytest.raises(StateSignatureError) as info:
                if op == "write":
                    st.value = bad
                else:
                    st.restore_value(bad)
        assert gist in str(info.value)
        assert str(info.value).startswith(f"Cannot {op} State 'w'")
        assert st._value is first and st._been_writen is False
        assert fired == [] and trace.states == []

    @pytest.mark.parametrize("kind", _ids(ACCEPTED))
    def test_accepted(self, kind):
        first, good = ACCEPTED[kind]
        st = State(first)
        st.value = good
        assert st._value is good
        st.restore_value(first)
        assert st._value is first

    def test_error_types(self):
        assert issubclass(StateSignatureError, ValueError)
        assert issubclass(StateSignatureError, BrainStateError)
        with pytest.raises(ValueError):
            State(jnp.zeros(2)).value = jnp.zeros(3)

    def test_message_names_everything(self):
        st = brainstate.ParamState({"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}, name="lin"); line = __import__("inspect").currentframe().f_lineno  # noqa: E702,E501
        with pytest.raises(StateSignatureError) as info:
            st.value = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(4, i32)}
        msg = str(info.value)
        assert msg.startswith("Cannot write ParamState 'lin' (created at ")
        assert f"{__file__}:{line} in test_message_names_everything" in msg
        assert ("leaf ['b'] differs: expected shape=(3,) dtype=float32, "
                "got shape=(4,) dtype=int32") in msg
        assert "wrap the assignment in `brainstate.check_state_value_tree(False)`" in msg

    def test_message_for_structure_shows_both_treedefs(self):
        st = State({"a": 1.0})
        with pytest.raises(StateSignatureError) as info:
            st.value = {"a": 1.0, "b": 2.0}
        msg = str(info.value)
        assert re.search(r"expected PyTreeDef\(\{'a': \*\}\)\n\s+got\s+PyTreeDef\(\{'a': \*, 'b': \*\}\)", msg)

    def test_unnamed_state_message(self):
        with pytest.raises(StateSignatureError, match=r"^Cannot write State \(created at "):
            State(jnp.zeros(2)).value = jnp.zeros(3)

    def test_x64_canonicalisation(self):
        with jax.enable_x64(True):
            st = State(jnp.zeros(2, jnp.float32))
            with pytest.raises(StateSignatureError, match="dtype=float64"):
                st.value = np.zeros(2)
            st.value = np.zeros(2, np.float32)
            s64 = State(1.0)  # Python float -> float64 under x64
            s64.value = np.float64(2.0)
            with pytest.raises(StateSignatureError):
                s64.value = jnp.zeros((), jnp.float32)

    def test_signature_fixed_after_unwrapping(self):
        src = State(jnp.zeros(2))
        st = State(brainstate.StateMetadata(src, {"unit": "mV"}))
        st.value = jnp.ones(2)
        with pytest.raises(StateSignatureError):
            st.value = jnp.ones(3)

    def test_hook_replacement_is_checked_again(self):
        st = State(jnp.zeros(2))
        st.register_hook("write_before", lambda ctx: setattr(ctx, "transformed_value", jnp.zeros(5)))
        with pytest.raises(StateSignatureError, match=r"got shape=\(5,\)"):
            st.value = jnp.ones(2)
        np.testing.assert_array_equal(st.value, jnp.zeros(2))

    def test_signature_not_visible_to_refs_repr_or_replace(self):
        st = State(jnp.zeros(2), name="w")
        assert "_sig" not in st.to_state_ref().get_metadata()
        assert "Signature" not in repr(st) and "_sig" not in vars(st)
        assert "_sig" not in vars(st.replace(_name="v"))


class TestRebinding:
    def test_unchecked_write_rebinds(self):
        st = State(jnp.zeros(3))
        with brainstate.check_state_value_tree(False):
            st.value = {"a": jnp.zeros(2, i32)}
        st.value = {"a": jnp.ones(2, i32)}
        with pytest.raises(StateSignatureError, match="tree structure differs"):
            st.value = jnp.zeros(3)

    def test_inner_true_checks_again_against_current_signature(self):
        st = State(jnp.zeros(3))
        with brainstate.check_state_value_tree(False):
            st.value = jnp.zeros(4)
            with brainstate.check_state_value_tree():
                st.value = jnp.ones(4)
                with pytest.raises(StateSignatureError):
                    st.value = jnp.zeros(3)

    def test_rebinding_is_thread_local(self):
        import threading

        st = State(jnp.zeros(3))
        errors = []

        def other():
            try:
                st.value = jnp.zeros(5)
            except StateSignatureError as e:
                errors.append(e)

        with brainstate.check_state_value_tree(False):
            t = threading.Thread(target=other)
            t.start()
            t.join()
        assert len(errors) == 1 and st.value.shape == (3,)


class TestSharedAvals:
    """JAX shares one aval object among arrays of one shape/dtype; the compiled core settles a
    write by aval identity once an aval has matched (its cache must never outlive the
    signature it matched)."""

    def test_arrays_of_one_shape_share_their_aval(self):
        # the premise of the cache (if JAX stops sharing, the cache only misses)
        assert jnp.ones(3).aval is jnp.zeros(3).aval

    def test_a_matched_aval_does_not_admit_another_shape_or_dtype(self):
        st = State(jnp.zeros(3))
        st.value = jnp.ones(3)
        st.value = jnp.ones(3)
        for bad in (jnp.ones(4), jnp.ones(3, i32), jnp.ones((3, 1))):
            with pytest.raises(StateSignatureError):
                st.value = bad
        assert st.value.shape == (3,)

    def test_a_matched_typed_key_does_not_admit_another_key_shape_impl_or_raw_data(self):
        # typed keys are settled by (base array aval, impl) identity once matched
        st = State(jax.random.key(0))
        st.value = jax.random.key(1)
        st.value = jax.random.split(jax.random.key(2))[0]
        rbg = State(jax.random.key(0, impl="rbg"))
        rbg.value = jax.random.key(1, impl="rbg")
        same_base = jax.random.key(1, impl="unsafe_rbg")  # uint32[4] data, like rbg's
        assert jax.random.key_data(same_base).aval is jax.random.key_data(rbg.value).aval
        for target, bad in ((st, jax.random.split(jax.random.key(0), 2)),
                            (st, jax.random.key(0, impl="rbg")),
                            (st, jax.random.PRNGKey(0)),
                            (st, jax.random.key_data(jax.random.key(0))),
                            (rbg, same_base)):
            with pytest.raises(StateSignatureError, match="dtype=key<"):
                target.value = bad
        assert st.value.shape == () and st.value.dtype == jax.random.key(0).dtype
        assert rbg.value.dtype == jax.random.key(0, impl="rbg").dtype

    def test_weak_typed_array_of_the_same_shape_and_dtype_matches(self):
        st = State(jnp.zeros(3))
        st.value = jnp.ones(3)
        weak = jax.jit(lambda x: jnp.broadcast_to(x, (3,)))(1.0)
        assert weak.aval.weak_type and weak.aval is not jnp.ones(3).aval
        st.value = weak
        assert st.value is weak

    def test_rebind_drops_the_matched_aval(self):
        st = State(jnp.zeros(3))
        st.value = jnp.ones(3)  # jnp.ones(3)'s aval now matched
        with brainstate.check_state_value_tree(False):
            st.value = jnp.zeros(4)
        with pytest.raises(StateSignatureError):
            st.value = jnp.ones(3)
        st.value = jnp.ones(4)

    def test_signature_assignment_drops_the_matched_aval(self):
        st = State(jnp.zeros(3))
        st.value = jnp.ones(3)
        st._signature = State(jnp.zeros(5))._signature
        with pytest.raises(StateSignatureError):
            st.value = jnp.ones(3)


# --- tracer guard ---------------------------------------------------------------------------


def _write(st, v):
    st.value = v


RAW = {
    "jit": lambda st: jax.jit(lambda x: (_write(st, x), x)[1])(jnp.ones(3)),
    "vmap": lambda st: jax.vmap(lambda x: (_write(st, x), x)[1])(jnp.ones((4, 3))),
    "vmap lane shape": lambda st: jax.vmap(lambda x: (_write(st, x), x)[1])(jnp.ones(3)),
    "grad": lambda st: jax.grad(lambda x: (_write(st, x), x.sum())[1])(jnp.ones(3)),
    "scan": lambda st: jax.lax.scan(lambda c, x: ((_write(st, c), c)[1], x), jnp.ones(3),
                                    jnp.arange(2.0)),
    "nested tree": lambda st: jax.jit(lambda x: (_write(st, x * 2), x)[1])(jnp.ones(3)),
}


class TestTracerGuard:
    @pytest.mark.parametrize("kind", list(RAW))
    def test_raw_transform_write_raises_and_leaves_state(self, kind):
        st = State(jnp.zeros(3), name="leaky")
        fired = []
        st.register_hook("write_before", lambda ctx: fired.append(1))
        with pytest.raises(TraceContextError) as info:
            RAW[kind](st)
        msg = str(info.value)
        assert "A JAX tracer was written to State 'leaky'" in msg
        assert "no brainstate transformation is active" in msg
        assert "raw `jax.jit`" in msg and "brainstate equivalents" in msg
        assert st._value is not None and isinstance(st._value, jax.Array)
        np.testing.assert_array_equal(st.value, jnp.zeros(3))
        assert st._been_writen is False and fired == []

    def test_tracer_in_a_tree_is_found(self):
        st = State({"a": jnp.zeros(3), "b": 1.0})

        @jax.jit
        def f(x):
            st.value = {"a": jnp.zeros(3), "b": x}
            return x

        with pytest.raises(TraceContextError):
            f(jnp.float32(1))

    def test_concrete_write_inside_raw_jit_is_allowed(self):
        st = State(jnp.zeros(3))
        one = jnp.ones(3)  # concrete (jnp calls inside the trace would make tracers)
        jax.jit(lambda x: (_write(st, one), x)[1])(1.0)
        np.testing.assert_array_equal(st.value, jnp.ones(3))

    def test_state_created_in_the_raw_trace_may_be_written(self):
        @jax.jit
        def f(x):
            st = State(jnp.zeros(3))
            st.value = x
            inner = State(x)  # a tracer value: its aval is the signature
            inner.value = x * 2
            with pytest.raises(StateSignatureError):
                inner.value = jnp.zeros(4)
            return st.value + inner.value

        np.testing.assert_array_equal(f(jnp.ones(3)), 3 * jnp.ones(3))

    def test_silent_inside_an_active_trace_stack(self):
        st = State(jnp.zeros(3))
        orig = st.value
        with StateTraceStack() as trace:
            out = jax.jit(lambda x: (_write(st, x), x + 1)[1])(jnp.ones(3))
            st.restore_value(orig)  # what a transform does after tracing
        assert trace.states == [st] and trace.been_writen == [True]
        np.testing.assert_array_equal(out, 2 * jnp.ones(3))
        np.testing.assert_array_equal(st.value, jnp.zeros(3))

    def test_write_inside_stack_is_still_signature_checked(self):
        st = State(jnp.zeros(3))
        with StateTraceStack():
            with pytest.raises(StateSignatureError):
                jax.jit(lambda x: (_write(st, x), x)[1])(jnp.ones(4))
        np.testing.assert_array_equal(st.value, jnp.zeros(3))

    def test_poisoning_and_recovery(self):
        @jax.jit
        def f(x):
            holder.append(State(x, name="inner"))
            return x

        holder = []
        f(jnp.ones(2))
        st = holder[0]
        st._invalidate_trace_value()
        assert "invalidated" in repr(st)
        with pytest.raises(TraceContextError, match="Cannot read State 'inner'"):
            st.value
        with pytest.raises(TraceContextError, match="count the elements of State 'inner'"):
            st.numel()
        st.value = jnp.full(2, 5.0)
        np.testing.assert_array_equal(st.value, jnp.full(2, 5.0))
        assert st.numel() == 2

    def test_view_compares_with_held_value(self):
        st = State(jnp.zeros(3))
        st._set_view(np.zeros(()))  # what the vmap probe installs: a per-lane placeholder
        st.value = jnp.ones(())
        with pytest.raises(StateSignatureError, match=r"expected shape=\(\) dtype=float32"):
            st.value = jnp.zeros(3)
        st.restore_value(jnp.zeros(3))  # structure only under a view; clears the view
        with pytest.raises(StateSignatureError):
            st.value = jnp.ones(())
        st.value = jnp.ones(3)
        with pytest.raises(StateSignatureError):  # never a structure change
            st._set_view(np.zeros(()))
            st.restore_value({"a": jnp.zeros(3)})


# --- the same rules through StateCore, on both cores ----------------------------------------


@pytest.fixture(scope="session")
def cfg_core(core):
    brainstate._wiring.configure_core(core)
    return core


@pytest.fixture
def S(cfg_core):
    class S(cfg_core.StateCore):
        pass

    return S


class TestCoreSignature:
    def test_make_signature(self, cfg_core):
        sig = cfg_core.make_signature
        assert sig(jnp.zeros(3)) == sig(np.zeros(3)) == sig(np.zeros(3, np.float32))
        assert sig(1.0) == sig(jnp.zeros(())) and sig(1) == sig(jnp.zeros((), i32))
        assert sig(True) == sig(jnp.zeros((), bool))
        assert sig(jnp.zeros(3)) != sig(jnp.zeros(3, i32))
        assert sig({"a": 1.0}) == sig({"a": np.float32(2)}) != sig({"b": 1.0})
        assert sig(jax.random.key(0)) != sig(jax.random.PRNGKey(0))
        assert hash(sig({"a": 1.0})) == hash(sig({"a": 2.0}))
        assert sig(jnp.zeros(3)).treedef is None and sig({"a": 1.0}).treedef is not None
        assert "shape=(3,)" in repr(sig(jnp.zeros(3)))

    @pytest.mark.parametrize("kind", _ids(MISMATCHES))
    def test_mismatch(self, S, cfg_core, kind):
        first, bad, gist = MISMATCHES[kind]
        st = S(first, name="w")
        with pytest.raises(StateSignatureError, match=re.escape(gist)):
            st.value = bad
        with pytest.raises(StateSignatureError, match="^Cannot restore S 'w'"):
            st.restore_value(bad)
        assert st._value is first and st._been_writen is False

    @pytest.mark.parametrize("kind", _ids(ACCEPTED))
    def test_accepted(self, S, kind):
        first, good = ACCEPTED[kind]
        st = S(first)
        st.value = good
        st.restore_value(first)
        assert st._value is first and st._been_writen is True

    def test_rebinding(self, S, cfg_core):
        st = S(jnp.zeros(3))
        assert not cfg_core.is_rebinding()
        cfg_core.push_tree_check(False)
        try:
            assert cfg_core.is_rebinding()
            st.value = jnp.zeros(5, i32)
            cfg_core.push_tree_check(True)
            try:
                assert not cfg_core.is_rebinding()
                with pytest.raises(StateSignatureError):
                    st.value = jnp.zeros(3)
            finally:
                cfg_core.pop_tree_check()
        finally:
            cfg_core.pop_tree_check()
        assert st._signature == cfg_core.make_signature(jnp.zeros(5, i32))
        st.value = jnp.ones(5, i32)
        with pytest.raises(StateSignatureError):
            st.value = jnp.ones(3)

    def test_restore_rebind_and_write_no_before(self, S, cfg_core):
        st = S(jnp.zeros(3))
        st._restore_rebind(jnp.zeros((2, 2)))
        assert st._been_writen is False
        st.value = jnp.ones((2, 2))
        with pytest.raises(StateSignatureError):
            st._write_no_before(jnp.ones(3))
        st._write_no_before(jnp.zeros((2, 2)))
        assert st._been_writen is True

    def test_error_precedence(self, S, cfg_core):
        st = S(jnp.zeros(3), name="p")
        other = S(jnp.zeros(9))
        z3, z7 = jnp.zeros(3), jnp.zeros(7)  # concrete constants for inside the trace

        @jax.jit
        def f(x):
            with pytest.raises(ValueError, match="Cannot set value to a State"):
                st.value = other
            with pytest.raises(TraceContextError, match="no brainstate transformation"):
                st.value = x  # tracer guard before the signature
            with pytest.raises(StateSignatureError):
                st.value = z7  # concrete: signature
            cfg_core.push_tracer_check(True)
            try:
                with pytest.raises(TraceContextError, match="Cannot mutate S from a different"):
                    st._write_no_before(z3)  # concrete, matching: strict guard
                with pytest.raises(StateSignatureError):
                    st._write_no_before(z7)  # signature before strict guard
                with pytest.raises(TraceContextError, match="Cannot mutate S"):
                    st.restore_value(z3)
            finally:
                cfg_core.pop_tracer_check()
            return x

        f(jnp.ones(5))
        assert st._been_writen is False
        np.testing.assert_array_equal(st._value, jnp.zeros(3))

    def test_poison(self, S, cfg_core):
        st = S(jnp.zeros(2), name="p")
        st._invalidate_trace_value()
        assert st._value is cfg_core.INVALID
        with pytest.raises(TraceContextError, match="Cannot read S 'p'"):
            st.value
        with pytest.raises(TraceContextError):
            cfg_core.gather([st])
        with pytest.raises(StateSignatureError):
            st.value = jnp.zeros(3)
        st.value = jnp.ones(2)
        assert cfg_core.gather([st])[0] is st._value

    def test_trace_frames_and_levels(self, S, cfg_core):
        st = S(jnp.zeros(2))
        outer = cfg_core.TraceFrame()
        cfg_core.push_frame(outer)
        try:
            assert cfg_core.stack_level() == 1
            inner_state = S(jnp.zeros(1))
            assert inner_state._level == 1
            inner = cfg_core.TraceFrame(new_arg=lambda s: s._value + 1)
            cfg_core.push_frame(inner)
            assert cfg_core.pop_frame(outer) is False  # not innermost: untouched
            st.value  # recorded by both; inner substitutes the value
            inner_state.restore_value(jnp.ones(1))
            st.value = st._value
        finally:
            assert cfg_core.pop_frame(inner) is True
            assert cfg_core.pop_frame(outer) is True
        assert cfg_core.stack_level() == 0
        assert outer.states == [st] and outer.been_writen == [True]
        assert inner.states == [st, inner_state] and inner.been_writen == [True, False]
        np.testing.assert_array_equal(st._value, jnp.ones(2))

    def test_scatter(self, S, cfg_core):
        a, b = S(jnp.zeros(2)), S(jnp.zeros(2))
        cfg_core.scatter([a, b], [jnp.ones(2), jnp.ones(2)], [True, False])
        assert a._been_writen is True and b._been_writen is False
        np.testing.assert_array_equal(a._value, jnp.ones(2))
        np.testing.assert_array_equal(b._value, jnp.zeros(2))

    def test_scatter_all_written_and_tuples(self, S, cfg_core):
        a, b = S(jnp.zeros(2)), S(jnp.zeros(2))
        cfg_core.scatter((a, b), (jnp.ones(2), jnp.full(2, 2.0)))
        assert a._been_writen and b._been_writen
        np.testing.assert_array_equal(b._value, jnp.full(2, 2.0))

    def test_scatter_length_mismatch_raises_and_stores_nothing(self, S, cfg_core):
        a, b = S(jnp.zeros(2)), S(jnp.zeros(2))
        with pytest.raises(ValueError, match="2 states, 1 values"):
            cfg_core.scatter([a, b], [jnp.ones(2)])
        with pytest.raises(ValueError, match="1 written flags"):
            cfg_core.scatter([a, b], [jnp.ones(2), jnp.ones(2)], [True])
        np.testing.assert_array_equal(a._value, jnp.zeros(2))

    def test_identity(self, S):
        st = S(0.0)
        assert hash(st) == hash(id(st)) and st != S(0.0)

    def test_capture_site(self, S, cfg_core):
        st = S(0.0); line = __import__("inspect").currentframe().f_lineno  # noqa: E702
        assert (st._source_info.filename, st._source_info.lineno) == (__file__, line)
        site = cfg_core.capture_site()
        assert site.filename == __file__
