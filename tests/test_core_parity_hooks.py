"""Parity of hook dispatch: the compiled core and its pure twin fire the same hooks alike.

The compiled core dispatches hooks in ``csrc/_core_hooks.pxi`` (contexts built slot by slot
and reused, masks read once per round), the pure core in ``brainstate/_core_py/_hooks.py``;
both run the hooks of the hook API (``brainstate/_hooks.py``). Hypothesis draws a program: one
or two states, then steps that register hooks (global or on a state, all five types,
priorities, enabled or not, under an error policy) whose callbacks observe, rewrite the value
of a write (plainly, chained on an earlier rewrite, or to a value of another signature), cancel
it, raise (an ``Exception``, also after rewriting and cancelling, or a ``BaseException`` that no
policy catches), change the shared context, keep their context, disable themselves or the
other hooks of their chain, remove themselves, attach another hook to the state, or read or
write another state; every hook also signs the context's ``metadata`` (the observers of one
manager share one context). Other steps set error policies (``HookConfig(on_error=...,
disable_on_error=...)``), enable, disable and remove hooks, write, restore and read, write
without ``write_before``, write a wrong value, write unchecked
(``check_state_value_tree(False)``) and create states (``init`` hooks); the same inside a trace
frame (plain, with a transform's view of each state, or restoring the states after it), and,
on the whole stack, inside ``jit``, called twice (hooks run while tracing, once, and
``write_after`` hooks again when each call writes its results back). Every step's outcome must
be equal: the result or the error (type, message, cause), the warnings, every hook call in
order (hook, kind, state, the value, old value and rewritten value it saw, the notes), and a
snapshot of the states (value, written flag, signature), the hooks (enabled, removed, error
count), the contexts hooks kept, and the count of managers with enabled hooks.

Two comparisons, both in the ``[c]`` leg (marked ``c_extension``):

- In this process, at the level of the core: states of a ``StateCore`` subclass of each core
  (with a hook manager, as ``State`` gives one) run the same program; trace frames are the
  core's ``TraceFrame``. The hook API (managers, the global registry, error policies) is
  shared by both both_cores, so the two runs take turns, each from a clean registry.
- Across processes, on the whole stack (``State``, ``ParamState`` and a hosted state class,
  whose hooks the pure dispatch runs under either core; ``StateTraceStack``, ``jit``): the
  program runs here and in a subprocess running the pure core (``tests/pure_core_worker.py``).

Both legs run ``test_programs_are_reproducible``: one program twice on the active core gives
equal outcomes, so a disagreement above is the cores', not the harness's.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import brainstate
from brainstate import _hooks


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
# each core has its own poison sentinel class (``INVALID``), named in some signatures' reprs
_SENTINEL = re.compile(r"brainstate\._core(?:_py)?\._Invalid")
HOOK_TYPES = ("read", "write_before", "write_after", "restore", "init")
BEHAVIORS = ("observe", "rewrite", "chain", "rewrite_bad", "cancel", "raise", "rewrite_raise",
             "abort", "tamper", "keep", "disable_self", "disable_peers", "remove_self", "attach",
             "read_other", "write_other")
SHAPES = ((2,), (), (2, 2))
DTYPES = ("float32", "int32")

# --- programs ---------------------------------------------------------------------------------
# A program is a picklable tuple: the states' (shape, dtype) and the steps. Indices of states
# and hooks are taken modulo their count, so any drawn index refers to something.

indices = st.integers(0, 63)
owners = st.one_of(st.none(), indices)  # None: the global registry, else a state's manager
fills = st.integers(1, 9)
policies = st.sampled_from([None, None, "raise", "log", "ignore"])  # None: leave the policy


def hook_steps(types: list, behaviors: list) -> st.SearchStrategy:
    return st.tuples(st.just("hook"), owners, st.sampled_from(types), st.sampled_from(behaviors),
                     st.integers(0, 2), st.sampled_from([True, True, True, False]), policies)


value_steps = st.one_of(
    st.tuples(st.sampled_from(["write", "write", "restore", "write_no_before"]), indices, fills),
    st.tuples(st.sampled_from(["read", "write_bad", "unchecked"]), indices),
)
admin_steps = st.one_of(
    st.tuples(st.sampled_from(["toggle", "remove"]), indices),
    st.tuples(st.just("config"), owners, st.sampled_from(["raise", "log", "ignore"]),
              st.booleans()),
)
creates = st.tuples(st.just("create"), st.sampled_from(SHAPES), st.sampled_from(DTYPES))
# frames: plain, with a transform's view of each state met (``new_arg``), or ending with the
# states restored to their values from before the frame
frame_steps = st.tuples(st.just("frame"), st.sampled_from(["plain", "view", "recover"]),
                        st.lists(value_steps, min_size=1, max_size=3).map(tuple))
jit_steps = st.tuples(
    st.just("jit"),
    st.lists(st.one_of(
        st.tuples(st.sampled_from(["write", "write", "restore", "write_no_before"]), indices,
                  fills),
        st.tuples(st.sampled_from(["read", "read", "read", "write_bad"]), indices),
    ), min_size=1, max_size=3).map(tuple),
)
# one or two states, so that hooks and operations meet often
state_descs = st.lists(st.tuples(st.sampled_from(SHAPES), st.sampled_from(DTYPES)),
                       min_size=1, max_size=2).map(tuple)


@st.composite
def _programs(draw: Any, with_jit: bool) -> tuple:
    # Half the programs focus: their hooks are of one or two types and do one to three things
    # besides observing, so that a chain often holds several hooks that act on each other; the
    # others draw from everything. Hooks come first (one or more), then a mix in which value
    # operations come most.
    if draw(st.booleans()):
        types = draw(st.lists(st.sampled_from(HOOK_TYPES), min_size=1, max_size=2, unique=True))
        behaviors = ["observe", *draw(st.lists(st.sampled_from(BEHAVIORS[1:]), min_size=1,
                                               max_size=3, unique=True))]
    else:
        types, behaviors = [*HOOK_TYPES, "write_before"], list(BEHAVIORS)
    hooks = hook_steps(types, behaviors)
    step = st.one_of(value_steps, value_steps, value_steps, hooks, admin_steps, creates,
                     frame_steps, *([jit_steps, jit_steps] if with_jit else []))
    first = draw(st.lists(hooks, min_size=1, max_size=5))
    rest = draw(st.lists(step, min_size=3, max_size=14))
    return draw(state_descs), (*first, *rest)


core_programs = _programs(with_jit=False)
stack_programs = _programs(with_jit=True)

# --- outcomes ----------------------------------------------------------------------------------


def norm(text: str) -> str:
    return _SENTINEL.sub("_Invalid", _ADDRESS.sub("0x?", text))


def summarize(x: Any) -> Any:
    if isinstance(x, jax.core.Tracer):
        return ("tracer", tuple(x.shape), str(x.dtype))
    if isinstance(x, (jax.Array, np.ndarray)):
        kind = "jax" if isinstance(x, jax.Array) else "numpy"
        return (kind, str(x.dtype), tuple(x.shape), np.asarray(x).tolist())
    return ("other", norm(repr(x)))


class Abort(BaseException):
    """What an ``abort`` hook raises: no ``Exception``, so no error policy catches it."""


def _error(exc: BaseException) -> tuple:
    return ("error", type(exc).__name__, norm(str(exc)),
            type(exc.__cause__).__name__ if exc.__cause__ else None)


_NO = object()


class HookWorld:
    """One side's states, hooks and log; ``apply(step)`` runs a step and describes it.

    Subclasses say what a state, its hook manager and a trace frame are.
    """

    core: Any  # the core module the states belong to

    def __init__(self) -> None:
        self.states: list = []
        self.handles: list = []  # (handle, name)
        self.kept: list = []  # contexts that "keep" hooks held on to
        self.log: list = []
        self.busy: list = []  # re-entrancy guard of hooks that touch another state
        brainstate.clear_state_hooks()
        brainstate.GlobalHookRegistry.instance().config = brainstate.HookConfig()

    def close(self) -> None:
        brainstate.clear_state_hooks()
        brainstate.GlobalHookRegistry.instance().config = brainstate.HookConfig()
        for s in self.states:
            m = s._hooks_manager
            if m is not None:
                m.clear_hooks()
        self.kept.clear()

    # -- what a side is made of --

    def new_state(self, shape: tuple, dtype: str, name: str) -> Any:
        raise NotImplementedError

    def manager(self, s: Any) -> Any:
        raise NotImplementedError

    def trace_frame(self, new_arg: Callable | None) -> Any:
        """A context manager entering a trace frame; yields the frame."""
        raise NotImplementedError

    # -- describing --

    def label(self, s: Any) -> Any:
        for i, x in enumerate(self.states):
            if x is s:
                return i
        return None if s is None else ("unknown", type(s).__name__)

    def describe_ctx(self, ctx: Any) -> tuple:
        return (ctx.operation, self.label(ctx.state), ctx.state_name,
                summarize(getattr(ctx, "value", None)),
                summarize(getattr(ctx, "old_value", _NO)) if hasattr(ctx, "old_value") else None,
                summarize(ctx.transformed_value) if hasattr(ctx, "transformed_value") else None,
                norm(repr(list(ctx.init_metadata.items())))  # in order: a hook may iterate it
                if hasattr(ctx, "init_metadata") else None)

    def snapshot(self) -> tuple:
        # raw slots only: reading ``.value`` would fire hooks
        states = tuple((summarize(s._value), bool(s._been_writen), norm(repr(s._signature)))
                       for s in self.states)
        hooks = tuple((name, h.is_enabled(), h.is_removed(), h._hook.error_count)
                      for h, name in self.handles)
        kept = tuple(self.describe_ctx(c) for c in self.kept)
        events, self.log = tuple(self.log), []
        return states, hooks, kept, events, self.active_managers()

    def active_managers(self) -> int:
        """This side's managers with an enabled hook (the global registry's included).

        What this side adds to ``brainstate._hooks.active_count()``, counted directly: the
        process-wide count also drops whenever a manager left by an earlier test is collected.
        """
        managers = {id(m): m for m in (s._hooks_manager for s in self.states)
                    if m is not None}
        registry = brainstate.GlobalHookRegistry.instance()
        return sum(bool(m.mask) for m in managers.values()) + bool(registry.mask)

    def apply(self, step: tuple) -> tuple:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcome = ("ok", getattr(self, "op_" + step[0])(*step[1:]))
            except (Exception, Abort) as exc:  # the outcome *is* the error
                outcome = _error(exc)
        warned = tuple((w.category.__name__, norm(str(w.message))) for w in caught)
        return outcome, warned, self.snapshot()

    # -- hooks --

    def callback(self, behavior: str, name: str, own: dict) -> Callable[[Any], None]:
        """The hook ``name``; ``own`` gets its ``handle`` and ``manager`` once registered."""
        world = self

        def hook(ctx: Any) -> None:
            # every hook signs the context's notes: the hooks of one manager share the context
            # of an observed operation (and only those: a context is never reused with notes)
            seen = ctx.metadata.setdefault("seen", [])
            seen.append(name)
            world.log.append((name, world.describe_ctx(ctx), tuple(seen)))
            if behavior == "rewrite":
                ctx.transformed_value = jax.tree.map(lambda x: x * 2 + 1, ctx.value)
            elif behavior == "chain":  # builds on an earlier hook's rewrite
                base = ctx.transformed_value
                ctx.transformed_value = jax.tree.map(lambda x: x + 10,
                                                     ctx.value if base is None else base)
            elif behavior == "rewrite_bad":
                ctx.transformed_value = jnp.zeros((5,), jnp.float32)
            elif behavior == "cancel":
                ctx.cancel = True
                ctx.cancel_reason = f"{name} vetoed it"
            elif behavior == "raise":
                raise ValueError(f"{name} failed on purpose")
            elif behavior == "rewrite_raise":  # a failed hook's rewrite and veto do not count
                if hasattr(ctx, "cancel"):
                    ctx.transformed_value = jax.tree.map(lambda x: x * 3, ctx.value)
                    ctx.cancel = True
                raise ValueError(f"{name} failed after acting")
            elif behavior == "abort":
                raise Abort(f"{name} aborts")
            elif behavior == "tamper":  # later hooks sharing the context see it changed
                ctx.operation = "tampered"
                ctx.value = jnp.zeros((1,), jnp.int32)
            elif behavior == "keep":
                world.kept.append(ctx)
            elif behavior == "disable_self":
                own["handle"].disable()
            elif behavior == "disable_peers":  # the others of its chain: those after it are skipped
                for peer in own["manager"].get_hooks(ctx.operation):
                    if peer is not own["handle"]._hook:
                        peer.enabled = False
            elif behavior == "remove_self":
                own["handle"].remove()
            elif behavior == "attach" and "extra" not in own:  # once: another hook on the state
                mgr = world.manager(ctx.state)
                extra = mgr.register_hook(ctx.operation, world.callback("observe", name + "+", {}),
                                          0, name + "+")
                own["extra"] = extra
                world.handles.append((extra, name + "+"))
            elif behavior in ("read_other", "write_other") and not world.busy:
                world.busy.append(name)
                try:
                    other = world.states[0]
                    if behavior == "read_other":
                        other.value
                    else:
                        other.value = other._value
                finally:
                    world.busy.pop()

        return hook

    def op_hook(self, owner: Any, hook_type: str, behavior: str, priority: int,
                enabled: bool, policy: str | None) -> tuple:
        name = f"h{len(self.handles)}"
        mgr = (brainstate.GlobalHookRegistry.instance() if owner is None
               else self.manager(self.states[owner % len(self.states)]))
        if policy is not None:
            mgr.config = brainstate.HookConfig(on_error=policy, max_errors_per_hook=2)
        own: dict = {"manager": mgr}
        handle = mgr.register_hook(hook_type, self.callback(behavior, name, own), priority,
                                   name, enabled)
        own["handle"] = handle
        self.handles.append((handle, name))
        return norm(repr(handle))

    def op_toggle(self, h: int) -> bool:
        if not self.handles:
            return False
        handle = self.handles[h % len(self.handles)][0]
        if handle.is_enabled():
            handle.disable()
        else:
            handle.enable()
        return handle.is_enabled()

    def op_remove(self, h: int) -> bool:
        return bool(self.handles) and self.handles[h % len(self.handles)][0].remove()

    def op_config(self, owner: Any, on_error: str, disable: bool) -> None:
        mgr = (brainstate.GlobalHookRegistry.instance() if owner is None
               else self.manager(self.states[owner % len(self.states)]))
        mgr.config = brainstate.HookConfig(on_error=on_error, max_errors_per_hook=2,
                                           disable_on_error=disable)

    # -- states --

    def op_create(self, shape: tuple, dtype: str) -> int:
        self.states.append(self.new_state(shape, dtype, f"s{len(self.states)}"))
        return len(self.states) - 1

    def _state(self, i: int) -> Any:
        return self.states[i % len(self.states)]

    def _value(self, s: Any, fill: int) -> Any:
        return jnp.full(s._signature.shape, fill, s._signature.dtype)

    def op_write(self, i: int, fill: int) -> None:
        s = self._state(i)
        s.value = self._value(s, fill)

    def op_write_no_before(self, i: int, fill: int) -> None:
        s = self._state(i)
        s._write_no_before(self._value(s, fill))

    def op_restore(self, i: int, fill: int) -> None:
        s = self._state(i)
        s.restore_value(self._value(s, fill))

    def op_read(self, i: int) -> Any:
        return summarize(self._state(i).value)

    def op_write_bad(self, i: int) -> None:
        self._state(i).value = jnp.zeros((3, 3), jnp.float32)

    def op_unchecked(self, i: int) -> None:
        # re-binds the signature to a new shape (later writes follow the new one)
        self.core.push_tree_check(False)
        try:
            self._state(i).value = jnp.zeros((3,), jnp.float32)
        finally:
            self.core.pop_tree_check()

    def op_frame(self, kind: str, steps: tuple) -> tuple:
        inner = []
        view = _shifted_view if kind == "view" else None
        with self.trace_frame(view) as frame:
            for step in steps:
                try:
                    inner.append(("ok", getattr(self, "op_" + step[0])(*step[1:])))
                except (Exception, Abort) as exc:
                    inner.append(_error(exc))
        recorded = (tuple(self.label(s) for s in frame.states), tuple(frame.been_writen))
        originals = frame._original_state_values
        if kind == "view":  # as a transform ends: views give way to the values kept
            for st_, written, before in zip(frame.states, frame.been_writen, originals):
                st_._restore_silent(st_._value if written else before)
        elif kind == "recover":  # as StateTraceStack.recovery_original_values: restore hooks
            for st_, before in zip(frame.states, originals):
                inner.append(("recover", _attempt(lambda: st_.restore_value(before))))
        return tuple(inner), recorded


def _shifted_view(st_: Any) -> Any:
    """A ``new_arg`` view: the state's value plus 100 (concrete, of the same signature)."""
    return jax.tree.map(lambda x: x + 100, st_._value)


def _attempt(fn: Callable[[], Any]) -> tuple:
    try:
        return ("ok", fn())
    except (Exception, Abort) as exc:
        return _error(exc)


def run_program(world: HookWorld, program: tuple) -> list:
    descs, steps = program
    try:
        out = [world.apply(("create", shape, dtype)) for shape, dtype in descs]
        out += [world.apply(step) for step in steps]
    finally:
        world.close()
    return out


# --- the core level: StateCore subclasses of either core in this process ---------------------

_WATCHED: dict = {}


def watched_class(mod: Any) -> type:
    """A ``StateCore`` subclass of core ``mod`` with a name and a hook manager, as ``State``."""
    cls = _WATCHED.get(mod)
    if cls is None:
        class Watched(mod.StateCore):
            @property
            def name(self) -> Any:
                return self._name

            def manager(self) -> Any:
                m = self._hooks_manager
                if m is None:
                    m = _hooks.HookManager()
                    self._setattr_no_check("_hooks_manager", m)
                return m

        cls = _WATCHED[mod] = Watched
    return cls


class CoreWorld(HookWorld):
    def __init__(self, mod: Any) -> None:
        self.core = mod
        self.cls = watched_class(mod)
        super().__init__()

    def new_state(self, shape: tuple, dtype: str, name: str) -> Any:
        return self.cls(jnp.zeros(shape, dtype), name=name)

    def manager(self, s: Any) -> Any:
        return s.manager()

    @contextlib.contextmanager
    def trace_frame(self, new_arg: Callable | None):
        frame = self.core.TraceFrame(new_arg)
        self.core.push_frame(frame)
        try:
            yield frame
        finally:
            assert self.core.pop_frame(frame)


def run_core_program(mod: Any, program: tuple) -> list:
    return run_program(CoreWorld(mod), program)


def without_jit(program: tuple) -> tuple:
    """The program less its ``jit`` steps (the core level has no jit)."""
    descs, steps = program
    return descs, tuple(s for s in steps if s[0] != "jit")


# --- the whole stack: brainstate.State, StateTraceStack and jit -------------------------------


class Boxed:
    """A slotted base, as brainpy's ``Array``: a state class that has it is hosted."""

    __slots__ = ("_value",)


class Hosted(brainstate.State, Boxed):
    """A state class built on the hosted core (``brainstate/_hosted.py``)."""


class StackWorld(HookWorld):
    def __init__(self) -> None:
        self.core = brainstate._impl.core
        super().__init__()

    def new_state(self, shape: tuple, dtype: str, name: str) -> Any:
        cls = (brainstate.State, brainstate.ParamState, Hosted)[len(self.states) % 3]
        return cls(jnp.zeros(shape, dtype), name=name)

    def manager(self, s: Any) -> Any:
        return s.hooks

    def trace_frame(self, new_arg: Callable | None) -> Any:
        return brainstate.StateTraceStack(new_arg)

    def op_jit(self, steps: tuple) -> tuple:
        """The steps inside ``jit``, called twice: hooks fire while tracing only."""
        world = self

        def body(x: Any) -> None:
            for step in steps:
                kind, i = step[0], step[1]
                s = world._state(i)
                if kind == "read":
                    s.value
                elif kind == "write_bad":
                    s.value = jnp.zeros((3, 3), jnp.float32)
                else:  # a value that depends on the argument: a tracer
                    v = world._value(s, step[2]) + x.astype(s._signature.dtype)
                    {"write": lambda: setattr(s, "value", v),
                     "restore": lambda: s.restore_value(v),
                     "write_no_before": lambda: s._write_no_before(v)}[kind]()

        f = brainstate.transform.jit(body)
        calls = []
        for x in (0, 1):
            try:
                f(jnp.asarray(x, jnp.int32))
                calls.append(("ok",))
            except (Exception, Abort) as exc:
                calls.append(_error(exc))
            events, self.log = tuple(self.log), []
            states = tuple(summarize(s._value) for s in self.states)
            calls.append((events, states))
        return tuple(calls)


def run_stack_program(program: tuple) -> list:
    return run_program(StackWorld(), program)


# --- tests -------------------------------------------------------------------------------------

_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                       HealthCheck.too_slow])


@settings(max_examples=500, **_SETTINGS)
@given(program=core_programs)
def test_cores_dispatch_hooks_alike(both_cores, program):
    py, c = both_cores
    assert run_core_program(c, program) == run_core_program(py, program)


@pytest.mark.slow
@pytest.mark.stress  # the long version: pytest -m stress
@settings(max_examples=3000, **_SETTINGS)
@given(program=core_programs)
def test_cores_dispatch_hooks_alike_long(both_cores, program):
    py, c = both_cores
    assert run_core_program(c, program) == run_core_program(py, program)


@settings(max_examples=50, **_SETTINGS)
@given(program=stack_programs)
def test_stacks_dispatch_hooks_alike(pure_worker, program):
    assert run_stack_program(program) == pure_worker.call("run_stack_program", program)


@pytest.mark.slow
@pytest.mark.stress  # the long version: pytest -m stress
@settings(max_examples=500, **_SETTINGS)
@given(program=stack_programs)
def test_stacks_dispatch_hooks_alike_long(pure_worker, program):
    assert run_stack_program(program) == pure_worker.call("run_stack_program", program)


@settings(max_examples=15, deadline=None)
@given(program=stack_programs)
def test_programs_are_reproducible(program):
    # Both legs: equal programs give equal outcomes on one core (no hook ids, addresses or
    # timestamps leak into them), so a disagreement above is the cores'.
    assert run_stack_program(program) == run_stack_program(program)
    core = brainstate._impl.core
    assert run_core_program(core, without_jit(program)) == \
        run_core_program(core, without_jit(program))
