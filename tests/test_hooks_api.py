"""Hook machinery at manager level, with a stand-in for a State.

The pure core and the hosted core call the pure twin's ``dispatch_*``
(``brainstate/_core_py/_hooks.py``); these tests drive the same entry points with ``DummyState``, which has exactly what the contract promises: ``_hooks_manager``
(``None`` until a manager exists), weak-referencability and a ``name``.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
import warnings
import weakref

import pytest

from brainstate import _hooks
from brainstate._hooks import (
    HOOK_TYPES,
    INIT,
    READ,
    RESTORE,
    WRITE_AFTER,
    WRITE_BEFORE,
    GlobalHookRegistry,
    Hook,
    HookCancellationError,
    HookConfig,
    HookContext,
    HookError,
    HookExecutionError,
    HookHandle,
    HookManager,
    HookRegistrationError,
    HookWarning,
    InitHookContext,
    MutableWriteHookContext,
    ReadHookContext,
    RestoreHookContext,
    WriteHookContext,
    clear_state_hooks,
    has_state_hooks,
    list_state_hooks,
    register_state_hook,
    unregister_state_hook,
)
from brainstate._core_py import _hooks as hook_dispatch
from brainstate._core_py._hooks import (
    dispatch_init,
    dispatch_read,
    dispatch_restore,
    dispatch_write_after,
    dispatch_write_before,
)


class DummyState:
    """Stands in for a State: what the dispatch contract relies on, nothing more."""

    __slots__ = ("_hooks_manager", "__weakref__", "name")

    def __init__(self, name=None, manager=None):
        self.name = name
        self._hooks_manager = manager


def make_state(name="s", config=None):
    return DummyState(name, HookManager(config))


@pytest.fixture(autouse=True)
def clean_global_registry():
    GlobalHookRegistry.reset()
    yield
    GlobalHookRegistry.reset()


@pytest.fixture
def counts():
    """Record what the activity listener is told; restores the previous listener."""
    gc.collect()  # garbage managers of earlier tests must not leave the count mid-test
    seen = []
    previous = _hooks.set_activity_listener(seen.append)
    yield seen
    _hooks.set_activity_listener(previous)


def chain_input(ctx):
    return ctx.transformed_value if ctx.transformed_value is not None else ctx.value


# --- registration, ordering, queries ---------------------------------------------------------


def test_register_unregister_and_get_hooks_copy():
    mgr = HookManager()
    handle = mgr.register_hook("read", lambda ctx: None, name="r")
    assert isinstance(handle, HookHandle)
    assert mgr.has_hooks("read") and mgr.has_hooks()
    hooks = mgr.get_hooks("read")
    assert [h.name for h in hooks] == ["r"]
    hooks.clear()  # a copy: the manager keeps its hook
    assert len(mgr.get_hooks("read")) == 1
    assert mgr.unregister_hook(handle) is True
    assert mgr.unregister_hook(handle) is False
    assert not mgr.has_hooks("read") and not mgr.has_hooks()
    assert mgr.get_hooks() == []


def test_get_hooks_none_includes_init_hooks_in_type_order():
    # Deliberate fix of upstream (spec README bug 7): init hooks are listed too.
    mgr = HookManager()
    for t in reversed(HOOK_TYPES):
        mgr.register_hook(t, lambda ctx: None, name=t)
    assert [h.name for h in mgr.get_hooks()] == list(HOOK_TYPES)
    assert [h.name for h in mgr.get_hooks("init")] == ["init"]
    mgr.clear_hooks()
    assert mgr.get_hooks() == [] and not mgr.has_hooks()


@pytest.mark.parametrize("bad", ["invalid", "READ", "", 3])
def test_invalid_hook_type_errors(bad):
    mgr = HookManager()
    with pytest.raises(HookRegistrationError, match="Invalid hook type") as info:
        mgr.register_hook(bad, lambda ctx: None)
    assert "'write_before'" in str(info.value)  # says what is valid
    for query in (mgr.has_hooks, mgr.get_hooks, mgr.clear_hooks):
        with pytest.raises(ValueError, match="Invalid hook type"):
            query(bad)  # even though nothing is registered


def test_non_callable_callback_rejected():
    with pytest.raises(HookRegistrationError, match="Hook callback must be callable, got <class 'int'>"):
        Hook(callback=123)
    with pytest.raises(HookRegistrationError):
        HookManager().register_hook("read", "not callable")


def test_priority_order_and_registration_order_within_priority():
    mgr, log = HookManager(), []
    for name, prio in [("low", 1), ("high", 100), ("mid-a", 50), ("mid-b", 50), ("mid-c", 50)]:
        mgr.register_hook("read", lambda ctx, n=name: log.append(n), priority=prio)
    mgr.execute_read_hooks(value=42, state_ref=weakref.ref(DummyState()))
    assert log == ["high", "mid-a", "mid-b", "mid-c", "low"]


def test_hook_ordering_and_repr():
    low, high = Hook(lambda c: None, priority=1), Hook(lambda c: None, priority=10)
    assert high < low and not low < high
    first, second = Hook(lambda c: None), Hook(lambda c: None)
    assert first < second and not second < first
    assert sorted([second, low, first, high]) == [high, low, first, second]
    h = Hook(lambda c: None, name="x", priority=3)
    assert repr(h) == "Hook(name='x', priority=3, enabled)"
    h.enabled = False
    assert repr(h) == "Hook(name='x', priority=3, disabled)"
    unnamed = Hook(lambda c: None)
    assert unnamed.name == f"hook_{unnamed.hook_id}"


def test_hook_execute():
    ctx = ReadHookContext(operation="read", state_ref=weakref.ref(DummyState()), value=1)
    assert Hook(lambda c: ("ran", c.value)).execute(ctx) == ("ran", 1)
    assert Hook(lambda c: "ran", enabled=False).execute(ctx) is None

    def boom(c):
        raise ValueError("inner")

    with pytest.raises(HookExecutionError, match="Hook 'b' execution failed: ValueError: inner") as info:
        Hook(boom, name="b").execute(ctx)
    assert isinstance(info.value.__cause__, ValueError)


def test_concurrent_hook_construction_unique_ids():
    hooks, lock, start = [], threading.Lock(), threading.Barrier(8)

    def worker():
        start.wait()
        local = [Hook(lambda c: None) for _ in range(200)]
        with lock:
            hooks.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({h.hook_id for h in hooks}) == len(hooks) == 1600


def test_has_hooks_typed_means_enabled_untyped_means_registered():
    mgr = HookManager()
    handle = mgr.register_hook("write_after", lambda ctx: None, enabled=False)
    assert not mgr.has_hooks("write_after")
    assert mgr.has_hooks()  # registered, although disabled
    handle.enable()
    assert mgr.has_hooks("write_after")
    assert not mgr.has_hooks("read")


def test_clear_hooks_by_type():
    mgr = HookManager()
    for t in ("read", "write_before", "write_after", "init"):
        mgr.register_hook(t, lambda ctx: None)
    mgr.clear_hooks("read")
    assert not mgr.has_hooks("read")
    assert mgr.has_hooks("write_before") and mgr.has_hooks("write_after") and mgr.has_hooks("init")
    assert mgr.mask == WRITE_BEFORE | WRITE_AFTER | INIT


# --- contexts -----------------------------------------------------------------------------


def test_context_classes_fields_and_defaults():
    assert issubclass(MutableWriteHookContext, WriteHookContext)
    assert issubclass(RestoreHookContext, WriteHookContext)
    for cls in (ReadHookContext, WriteHookContext, InitHookContext):
        assert issubclass(cls, HookContext)
    names = lambda cls: [f.name for f in dataclasses.fields(cls)]  # noqa: E731
    base = ["operation", "state_ref", "timestamp", "metadata"]
    assert names(HookContext) == base
    assert names(ReadHookContext) == base + ["value"]
    assert names(MutableWriteHookContext) == base + [
        "value", "old_value", "transformed_value", "cancel", "cancel_reason"
    ]
    assert names(InitHookContext) == base + ["value", "init_metadata"]

    state = DummyState("named")
    before = time.time()
    ctx = MutableWriteHookContext(operation="write_before", state_ref=weakref.ref(state))
    assert before <= ctx.timestamp <= time.time()
    assert (ctx.value, ctx.old_value, ctx.transformed_value, ctx.cancel, ctx.cancel_reason) == (
        None, None, None, False, None
    )
    assert ctx.metadata == {} and ctx.state is state and ctx.state_name == "named"
    assert not hasattr(ctx, "__dict__")  # slotted
    init = InitHookContext(operation="init", state_ref=weakref.ref(state))
    assert init.init_metadata == {}
    assert not hasattr(init, "transformed_value")
    with pytest.raises(AttributeError):
        init.transformed_value = 1


def test_context_state_ref_is_weak():
    state = DummyState()
    ctx = ReadHookContext(operation="read", state_ref=weakref.ref(state))
    assert ctx.state is state and ctx.state_name is None  # unnamed
    state.name = "n"
    assert ctx.state_name == "n"
    del state
    gc.collect()
    assert ctx.state is None and ctx.state_name is None


def test_public_names_live_in_brainstate():
    public = [getattr(_hooks, n) for n in _hooks.__all__]
    assert {obj.__module__ for obj in public} == {"brainstate"}
    for exc in (HookExecutionError, HookRegistrationError, HookCancellationError):
        assert issubclass(exc, HookError)
    assert issubclass(HookError, Exception) and issubclass(HookWarning, UserWarning)


def test_dispatched_contexts():
    state = make_state("st")
    mgr, seen = state._hooks_manager, []
    for t in HOOK_TYPES:
        mgr.register_hook(t, seen.append)
    dispatch_init(state, 0, {"name": "st"})
    dispatch_read(state, 1)
    assert dispatch_write_before(state, 2, 1) == 2
    dispatch_write_after(state, 2, 1)
    dispatch_restore(state, 3, 2)
    types = [ReadHookContext, MutableWriteHookContext, WriteHookContext, RestoreHookContext]
    assert [type(c) for c in seen] == [InitHookContext] + types
    assert [c.operation for c in seen] == ["init", "read", "write_before", "write_after", "restore"]
    init, read, before, after, restore = seen
    assert init.value == 0 and init.init_metadata == {"name": "st"}
    assert read.value == 1
    assert (before.value, before.old_value, before.transformed_value, before.cancel) == (2, 1, None, False)
    assert (after.value, after.old_value) == (2, 1) and (restore.value, restore.old_value) == (3, 2)
    for ctx in seen:
        assert isinstance(ctx.state_ref, weakref.ref) and ctx.state is state
        assert ctx.state_name == "st" and ctx.metadata == {}
    # A dispatched context is a normal dataclass instance.
    assert read == ReadHookContext("read", read.state_ref, read.timestamp, {}, 1)
    mgr.execute_init_hooks(5, weakref.ref(state))
    assert seen[-1].init_metadata == {}


def test_timestamps_of_reused_contexts_are_fresh_and_kept_values_stay():
    # the compiled dispatch reuses a context and its timestamp float when nothing else holds
    # them: a timestamp a hook kept, or a context it kept, must not change afterwards
    import brainstate
    import jax.numpy as jnp

    st = brainstate.State(jnp.zeros(2))
    stamps, kept = [], []
    h1 = st.register_hook("write_after", lambda ctx: stamps.append(ctx.timestamp))
    for _ in range(3):
        st.value = jnp.ones(2)
    h2 = st.register_hook("write_after", kept.append)
    for _ in range(3):
        st.value = jnp.ones(2)
    h1.remove()
    h2.remove()
    snapshot = list(stamps)
    before = time.time()
    st.register_hook("write_after", lambda ctx: None)
    st.value = jnp.ones(2)
    assert stamps == snapshot and stamps == sorted(stamps) and stamps[-1] <= before
    assert [c.timestamp for c in kept] == stamps[3:]
    assert len({id(c) for c in kept}) == 3
    st.clear_hooks()


def test_shared_context_per_manager_execution():
    # read/write_after/restore/init: one context per manager run (metadata carries data between
    # hooks of one scope); the global scope has its own.
    state = make_state()
    mgr, seen = state._hooks_manager, {}

    def writer(tag):
        def hook(ctx):
            ctx.metadata[tag] = True
            seen[tag] = (ctx, dict(ctx.metadata))  # keeps ctx alive: ids stay distinct
        return hook

    register_state_hook("write_after", writer("g1"), priority=2)
    register_state_hook("write_after", writer("g2"), priority=1)
    mgr.register_hook("write_after", writer("s1"), priority=2)
    mgr.register_hook("write_after", writer("s2"), priority=1)
    dispatch_write_after(state, 1, 0)
    assert seen["g2"][1] == {"g1": True, "g2": True}
    assert seen["s2"][1] == {"s1": True, "s2": True}  # nothing from the global scope
    assert seen["g1"][0] is seen["g2"][0]
    assert seen["s1"][0] is seen["s2"][0] is not seen["g1"][0]


# --- write_before chaining and cancellation -------------------------------------------------


def test_write_before_chaining_pinned_example():
    state = make_state()
    mgr = state._hooks_manager
    inputs = []

    def times2(ctx):
        inputs.append(("x2", ctx.value, ctx.transformed_value))
        ctx.transformed_value = [v * 2 for v in chain_input(ctx)]

    def plus10(ctx):
        inputs.append(("+10", ctx.value, ctx.transformed_value))
        ctx.transformed_value = [v + 10 for v in chain_input(ctx)]

    mgr.register_hook("write_before", plus10, priority=5)
    mgr.register_hook("write_before", times2, priority=10)
    assert dispatch_write_before(state, [1, 2], [0, 0]) == [12, 14]
    # value is always the chain's input; transformed_value the running result (None at first).
    assert inputs == [("x2", [1, 2], None), ("+10", [1, 2], [2, 4])]
    assert mgr.execute_write_before_hooks(new_value=[5], old_value=[0], state_ref=weakref.ref(state)) == [20]


def test_write_before_fresh_context_per_hook_and_none_means_unchanged():
    state = make_state()
    mgr, contexts = state._hooks_manager, []
    mgr.register_hook("write_before", contexts.append, priority=3)
    mgr.register_hook("write_before", lambda ctx: setattr(ctx, "transformed_value", None), priority=2)
    mgr.register_hook("write_before", contexts.append, priority=1)
    assert dispatch_write_before(state, 7, 0) == 7
    assert len(contexts) == 2 and contexts[0] is not contexts[1]
    # With no hook of this type (or no manager at all) the value passes through.
    assert dispatch_write_before(DummyState(), 8, 0) == 8
    assert dispatch_write_before(make_state(), 9, 0) == 9


def test_global_write_before_runs_first_and_feeds_per_state_chain():
    state = make_state()
    order = []

    def g(ctx):
        order.append(("global", ctx.value))
        ctx.transformed_value = ctx.value + 1

    def s(ctx):
        order.append(("state", ctx.value))
        ctx.transformed_value = ctx.value * 10

    state._hooks_manager.register_hook("write_before", s, priority=100)
    register_state_hook("write_before", g, priority=-100)
    assert dispatch_write_before(state, 1, 0) == 20
    assert order == [("global", 1), ("state", 2)]


@pytest.mark.parametrize("hook_type", ["read", "write_after", "restore", "init"])
def test_global_hooks_run_before_per_state_hooks(hook_type):
    state, order = make_state(), []
    state._hooks_manager.register_hook(hook_type, lambda ctx: order.append("state"), priority=99)
    register_state_hook(hook_type, lambda ctx: order.append("global"), priority=-99)
    {
        "read": lambda: dispatch_read(state, 1),
        "write_after": lambda: dispatch_write_after(state, 1, 0),
        "restore": lambda: dispatch_restore(state, 1, 0),
        "init": lambda: dispatch_init(state, 1, None),
    }[hook_type]()
    assert order == ["global", "state"]


def test_global_hooks_fire_for_states_without_manager():
    seen = []
    register_state_hook("read", lambda ctx: seen.append(ctx.state_name))
    dispatch_read(DummyState("a"), 1)
    dispatch_read(DummyState("b"), 1)
    assert seen == ["a", "b"]


def test_cancellation_propagates_and_stops_the_chain():
    state = make_state()
    mgr, later = state._hooks_manager, []

    def veto(ctx):
        if ctx.value < 0:
            ctx.cancel = True
            ctx.cancel_reason = f"value must be >= 0, got {ctx.value}"

    mgr.register_hook("write_before", veto, priority=1, name="positive")
    mgr.register_hook("write_before", later.append, priority=0)
    assert dispatch_write_before(state, 5, 0) == 5
    with pytest.raises(HookCancellationError, match="positive: value must be >= 0, got -5"):
        dispatch_write_before(state, -5, 0)
    assert len(later) == 1  # only the successful write reached the second hook

    mgr.clear_hooks()
    mgr.register_hook("write_before", lambda ctx: setattr(ctx, "cancel", True), name="v")
    with pytest.raises(HookCancellationError, match="v: Hook cancelled the operation"):
        dispatch_write_before(state, 1, 0)


def test_global_cancellation_skips_per_state_chain():
    state, ran = make_state(), []
    state._hooks_manager.register_hook("write_before", ran.append)
    register_state_hook("write_before", lambda ctx: setattr(ctx, "cancel", True), name="g")
    with pytest.raises(HookCancellationError, match="^g: "):
        dispatch_write_before(state, 1, 0)
    assert ran == []


def test_raising_in_write_before_does_not_veto_under_log_policy():
    # Upstream behaviour kept on purpose (documented in HookConfig): only ctx.cancel vetoes.
    state = make_state()
    mgr = state._hooks_manager

    def refuse(ctx):
        raise HookCancellationError("raised, not set")

    mgr.register_hook("write_before", refuse, priority=1, name="refuse")
    mgr.register_hook("write_before", lambda ctx: setattr(ctx, "transformed_value", ctx.value + 1))
    with pytest.warns(HookWarning, match="Hook 'refuse' error #1: .*HookCancellationError: raised, not set"):
        assert dispatch_write_before(state, 1, 0) == 2
    assert "ctx.cancel" in HookConfig.__doc__ and "does *not* veto" in HookConfig.__doc__


# --- error policies ----------------------------------------------------------------------


def boom(ctx):
    raise ValueError("boom")


def test_on_error_raise():
    state = make_state(config=HookConfig(on_error="raise"))
    mgr = state._hooks_manager
    handle = mgr.register_hook("write_before", boom, name="bad")
    with pytest.raises(HookExecutionError, match="Hook 'bad' error #1: Hook 'bad' execution failed") as info:
        dispatch_write_before(state, 1, 0)
    wrapped = info.value.__cause__
    assert isinstance(wrapped, HookExecutionError) and isinstance(wrapped.__cause__, ValueError)
    with pytest.raises(HookExecutionError, match="error #2"):
        dispatch_write_before(state, 1, 0)
    assert handle._hook.error_count == 2 and handle.is_enabled()


def test_on_error_log_warns_and_continues():
    mgr, log = HookManager(HookConfig(on_error="log")), []
    mgr.register_hook("read", boom, priority=10, name="bad")
    mgr.register_hook("read", lambda ctx: log.append("ok"), priority=5)
    expected = r"Hook 'bad' error #1: Hook 'bad' execution failed: ValueError: boom"
    with pytest.warns(HookWarning, match=expected):
        mgr.execute_read_hooks(value=42, state_ref=weakref.ref(DummyState()))
    assert log == ["ok"]


def test_on_error_log_with_error_logger():
    calls = []
    state = make_state(config=HookConfig(error_logger=lambda *args: calls.append(args)))
    hook_handle = state._hooks_manager.register_hook("write_after", boom, name="bad")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dispatch_write_after(state, 1, 0)
    ((msg, err, hook, ctx),) = calls
    assert msg.startswith("Hook 'bad' error #1")
    assert isinstance(err, HookExecutionError) and isinstance(err.__cause__, ValueError)
    assert hook is hook_handle._hook and isinstance(ctx, WriteHookContext) and ctx.value == 1


def test_on_error_ignore():
    mgr, log = HookManager(HookConfig(on_error="ignore")), []
    mgr.register_hook("restore", boom, priority=1)
    mgr.register_hook("restore", lambda ctx: log.append(ctx.value))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mgr.execute_restore_hooks(2, 1, weakref.ref(DummyState()))
    assert log == [2]


def test_disable_on_error_after_max_errors():
    mgr = HookManager(HookConfig(disable_on_error=True, max_errors_per_hook=3))
    calls = []

    def failing(ctx):
        calls.append(1)
        raise ValueError(f"error {len(calls)}")

    handle = mgr.register_hook("read", failing, name="f")
    ref = weakref.ref(DummyState())
    with pytest.warns(HookWarning) as record:
        for _ in range(5):
            mgr.execute_read_hooks(value=42, state_ref=ref)
    assert len(calls) == 3 and not handle.is_enabled()
    assert [str(w.message).split(":")[0] for w in record] == [
        "Hook 'f' error #1", "Hook 'f' error #2", "Hook 'f' disabled after 3 errors. Last error"
    ]
    assert "ValueError: error 3" in str(record[-1].message)
    assert mgr.mask == 0 and not mgr.has_hooks("read")


def test_hook_config_validates_policy():
    assert HookConfig() == HookConfig("log", None, 10, False)
    with pytest.raises(ValueError, match="on_error must be 'raise', 'log' or 'ignore', got 'warn'"):
        HookConfig(on_error="warn")
    mgr = HookManager()
    mgr.config = HookConfig(on_error="raise")
    mgr.register_hook("init", boom)
    with pytest.raises(HookExecutionError):
        mgr.execute_init_hooks(0, weakref.ref(DummyState()))


# --- handles -----------------------------------------------------------------------------


def test_handle_lifecycle():
    mgr, log = HookManager(), []
    handle = mgr.register_hook("read", lambda ctx: log.append(1), name="h", priority=5)
    ref = weakref.ref(DummyState())
    assert (handle.name, handle.priority) == ("h", 5)
    assert repr(handle) == "HookHandle(name='h', priority=5, enabled)"
    handle.disable()
    assert not handle.is_enabled() and repr(handle) == "HookHandle(name='h', priority=5, disabled)"
    mgr.execute_read_hooks(1, ref)
    handle.enable()
    mgr.execute_read_hooks(1, ref)
    assert log == [1]
    assert handle.remove() is True and handle.is_removed() and not handle.is_enabled()
    assert repr(handle) == "HookHandle(name='h', removed)"
    assert handle.remove() is False
    for op in (handle.enable, handle.disable):
        with pytest.raises(HookError, match="removed hook"):
            op()
    mgr.execute_read_hooks(1, ref)
    assert log == [1]


def test_unregister_through_manager_marks_handle_removed():
    mgr = HookManager()
    handle = mgr.register_hook("read", lambda ctx: None)
    assert mgr.unregister_hook(handle) and handle.is_removed() and handle.remove() is False


def test_handle_after_manager_collected():
    state = make_state()
    handle = state._hooks_manager.register_hook("read", lambda ctx: None)
    del state
    gc.collect()
    assert handle._manager_ref() is None
    for op in (handle.enable, handle.disable):
        with pytest.raises(HookError, match="garbage collected"):
            op()
    assert handle.remove() is False


def test_setting_hook_enabled_directly_updates_the_manager():
    mgr = HookManager()
    mgr.register_hook("write_after", lambda ctx: None)
    (hook,) = mgr.get_hooks("write_after")
    hook.enabled = False
    assert mgr.mask == 0 and not mgr.has_hooks("write_after")
    hook.enabled = True
    assert mgr.mask == WRITE_AFTER


# --- global registry ---------------------------------------------------------------------


def test_global_registry_singleton_and_reset():
    reg = GlobalHookRegistry.instance()
    assert reg is GlobalHookRegistry.instance() is GlobalHookRegistry()
    assert isinstance(reg, HookManager)
    handle = register_state_hook("read", lambda ctx: None, name="g")
    reg.config.on_error = "ignore"
    GlobalHookRegistry.reset()
    fresh = GlobalHookRegistry.instance()
    assert fresh is not reg and not fresh.has_hooks() and fresh.config.on_error == "log"
    with pytest.raises(HookError, match="garbage collected"):
        handle.enable()  # the old registry counts as dead even though `reg` keeps it alive
    assert handle.remove() is False and reg.mask == 0


def test_global_module_functions():
    assert not has_state_hooks("read") and not has_state_hooks()
    handle = register_state_hook("read", lambda ctx: None, name="g")
    register_state_hook("init", lambda ctx: None, name="i")
    assert has_state_hooks("read") and has_state_hooks()
    assert [h.name for h in list_state_hooks("read")] == ["g"]
    assert [h.name for h in list_state_hooks()] == ["g", "i"]
    assert unregister_state_hook(handle) and not unregister_state_hook(handle)
    assert not has_state_hooks("read")
    register_state_hook("write_after", lambda ctx: None)
    clear_state_hooks("write_after")
    assert has_state_hooks("init") and not has_state_hooks("write_after")
    clear_state_hooks()
    assert not has_state_hooks()
    with pytest.raises(ValueError):
        has_state_hooks("nope")


# --- mask, activity count, no-hook fast path ------------------------------------------------


def test_mask_tracks_enabled_hook_types():
    mgr = HookManager()
    assert mgr.mask == 0
    h_read = mgr.register_hook("read", lambda ctx: None)
    h_wb = mgr.register_hook("write_before", lambda ctx: None)
    mgr.register_hook("restore", lambda ctx: None, enabled=False)
    assert mgr.mask == READ | WRITE_BEFORE
    h_read.disable()
    assert mgr.mask == WRITE_BEFORE
    h_read.enable()
    mgr.register_hook("read", lambda ctx: None)
    h_read.remove()
    assert mgr.mask == READ | WRITE_BEFORE  # the second read hook keeps the bit
    h_wb.remove()
    mgr.get_hooks("restore")[0].enabled = True
    assert mgr.mask == READ | RESTORE
    mgr.clear_hooks()
    assert mgr.mask == 0


def test_activity_count_and_listener(counts):
    base = _hooks.active_count()
    assert counts == [base]  # told at once on installation
    a, b = HookManager(), HookManager()
    ha = a.register_hook("read", lambda ctx: None)
    a.register_hook("write_after", lambda ctx: None)  # same manager: no change
    b.register_hook("init", lambda ctx: None)
    assert counts == [base, base + 1, base + 2] and _hooks.active_count() == base + 2
    ha.disable()
    a.clear_hooks("write_after")
    assert counts[-1] == base + 1
    b.register_hook("read", lambda ctx: None, enabled=False)
    del b  # collected with an enabled hook: leaves the count
    gc.collect()
    assert counts[-1] == base and _hooks.active_count() == base
    ha.enable()
    assert counts[-1] == base + 1
    register_state_hook("write_before", lambda ctx: None)  # the global registry counts too
    assert counts[-1] == base + 2
    GlobalHookRegistry.reset()
    assert counts[-1] == base + 1
    del a, ha
    gc.collect()
    assert counts[-1] == base
    assert all(abs(x - y) == 1 for x, y in zip(counts[1:], counts[2:]))  # only real changes


def test_set_activity_listener_returns_previous(counts):
    other = []
    previous = _hooks.set_activity_listener(other.append)
    assert previous == counts.append
    assert _hooks.set_activity_listener(None) == other.append
    _hooks.set_activity_listener(previous)


def test_dispatch_builds_no_context_without_matching_hooks(monkeypatch):
    def no_context(cls):
        raise AssertionError(f"built a {cls.__name__} with no hook to run")

    monkeypatch.setattr(hook_dispatch, "_new", no_context)
    bare, other_types = DummyState(), make_state()
    other_types._hooks_manager.register_hook("init", lambda ctx: None)
    register_state_hook("init", lambda ctx: None)
    for state in (bare, other_types):
        dispatch_read(state, 1)
        assert dispatch_write_before(state, 2, 1) == 2
        dispatch_write_after(state, 2, 1)
        dispatch_restore(state, 2, 1)
    with pytest.raises(AssertionError, match="InitHookContext"):
        dispatch_init(bare, 1, None)  # the global init hook does need one


def test_manager_construction_is_cheap():
    mgr = HookManager()
    assert mgr._config is None  # HookConfig made on first use
    assert isinstance(mgr.config, HookConfig) and mgr.config is mgr.config
    assert HookManager(HookConfig(on_error="raise")).config.on_error == "raise"


# --- thread safety -----------------------------------------------------------------------


def test_threads_register_toggle_and_dispatch_without_lost_calls(counts):
    base = _hooks.active_count()
    state = make_state()
    mgr = state._hooks_manager
    counter = [0, 0]

    def count_read(ctx):
        counter[0] += 1  # unlocked on purpose: the manager serialises its hooks

    def count_write(ctx):
        counter[1] += 1

    mgr.register_hook("read", count_read, priority=1000)
    mgr.register_hook("write_after", count_write)
    register_state_hook("read", lambda ctx: None)
    toggled = mgr.register_hook("read", lambda ctx: None, name="toggled")
    n_readers, n_writers, n_registrars, n_togglers, reps = 8, 4, 4, 4, 300
    start, errors = threading.Barrier(n_readers + n_writers + n_registrars + n_togglers), []

    def run(fn):
        def target():
            try:
                start.wait()
                fn()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
        return threading.Thread(target=target)

    def reader():
        for i in range(reps):
            dispatch_read(state, i)

    def writer():
        for i in range(reps):
            dispatch_write_after(state, dispatch_write_before(state, i, i - 1), i - 1)

    def registrar():
        for i in range(reps // 10):
            h = mgr.register_hook(HOOK_TYPES[i % 5], lambda ctx: None, priority=i)
            g = register_state_hook("write_before", lambda ctx: None)
            assert h.remove() and g.remove()

    def toggler():
        for i in range(reps):
            (toggled.disable if i % 2 else toggled.enable)()

    threads = (
        [run(reader) for _ in range(n_readers)]
        + [run(writer) for _ in range(n_writers)]
        + [run(registrar) for _ in range(n_registrars)]
        + [run(toggler) for _ in range(n_togglers)]
    )
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert counter == [n_readers * reps, n_writers * reps]
    assert [h.callback for h in mgr.get_hooks()] == [count_read, toggled._hook.callback, count_write]
    assert len(list_state_hooks()) == 1
    toggled.enable()
    assert mgr.mask == READ | WRITE_AFTER
    assert _hooks.active_count() == base + 2  # state manager + global registry
    mgr.clear_hooks()
    clear_state_hooks()
    assert _hooks.active_count() == base and counts[-1] == base
