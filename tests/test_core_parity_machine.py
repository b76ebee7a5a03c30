"""Parity fuzzing: a state machine drives the compiled core and its pure twin through the stack.

``tests/test_core_parity.py`` compares the two cores in one process, at the level of
``StateCore`` alone. The layers above the core cannot be run that way: ``brainstate.State``
subclasses the core chosen at import (``brainstate._impl.core``), and the trace stacks, hook
managers, graph walks (``flatten``/``unflatten`` run in the core's ``DecoderCore``) and the
checkpoint layer are all built on that one ``State`` class. A second, pure stack cannot be
imported next to the compiled one.

So the reference side runs in a subprocess started with ``BRAINSTATE_NO_EXTENSIONS=1``
(``tests/pure_core_worker.py``): it imports this very module and calls its ``reset`` and
``op`` functions on request. A hypothesis
``RuleBasedStateMachine`` draws operations as plain tuples; each one is applied to a
:class:`World` here (compiled core) and sent to the World of the subprocess (pure core), and
the two outcomes must be equal after every step. An outcome is the result or the error (type,
message, notes, cause type), the warnings raised, the events logged by hooks, and a snapshot of
every state (class, name, value leaves, written flag, signature, flags, level), of the hook handles and of the trace
stack depth. Both sides run the same code lines, so creation sites quoted in messages agree;
addresses and the temporary folder are masked before comparing.

The operations: creating states (bad initial values included); writes, restores, reads and
unchecked writes with values of the same signature, another shape, dtype, leaf kind or tree;
hooks (global or per state, all five types) that observe, rewrite a write (to a good or a bad
value), cancel it, raise, read or write another state, or unregister themselves, under the
three error policies, plus enabling, disabling, removing and clearing; entering, leaving (in
and out of order) and recovering trace stacks; building module graphs whose states,
sub-modules and containers are shared (and cycles), ``treefy_split`` (with and without
filters), ``treefy_merge`` (with hooks copied or not, values rewritten, bad or missing) and
``update_states``; and checkpoint ``save``/``load`` round trips, strict or not, into the same
or another graph (the saved bytes of both sides are compared too).

The machine tests (the default run, 60 examples of up to 30 steps; the ``slow`` one, 400 of up
to 60) and the check that a difference is seen belong to the ``[c]`` leg only (marked
``c_extension``): the pure leg has no compiled core to compare. Both legs run
``test_world_outcomes_are_reproducible``: one fixed program through two fresh Worlds of the
active core must give equal outcomes, so that a disagreement above is the cores' and not the
harness's (an address, a temporary path or a hook id leaking into an outcome).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

import brainstate
from brainstate.checkpoint import load, save
from brainstate.util import FlattedDict
from pure_core_worker import PureCoreWorker

STATE_CLASSES = {
    "State": brainstate.State,
    "ParamState": brainstate.ParamState,
    "ShortTermState": brainstate.ShortTermState,
    "HiddenState": brainstate.HiddenState,
}
HOOK_TYPES = ("read", "write_before", "write_after", "restore", "init")
HOOK_KINDS = ("observe", "rewrite", "rewrite_bad", "cancel", "raise", "read_other", "write_other",
              "self_remove")
VALUE_MODES = ("same", "relabel", "shape", "dtype", "fresh")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


class Box(brainstate.nn.Module):
    """A module whose children are given as keyword arguments."""

    def __init__(self, **children: Any) -> None:
        super().__init__()
        for k, v in children.items():
            setattr(self, k, v)


# --- values -------------------------------------------------------------------------------------
# A descriptor is a picklable recipe for a value; ``build`` turns it into the value. Leaves:
# jax arrays, numpy arrays and Python scalars of a few dtypes.

DTYPES = ("float32", "int32", "bool", "float16")

shapes = st.lists(st.integers(0, 3), max_size=2).map(tuple)


@st.composite
def leaves(draw):
    shape = draw(shapes)
    dtype = draw(st.sampled_from(DTYPES))
    kinds = ["jax", "numpy"] + (["python"] if shape == () and dtype != "float16" else [])
    return ("leaf", shape, dtype, draw(st.sampled_from(kinds)))


trees = st.recursive(
    st.one_of(leaves(), st.just(("none",))),
    lambda sub: st.one_of(
        st.dictionaries(st.sampled_from("abc"), sub, min_size=1, max_size=2).map(
            lambda d: ("dict", tuple(sorted(d.items())))),
        st.lists(sub, max_size=2).map(lambda items: ("list", tuple(items))),
    ),
    max_leaves=3,
)


def _fill(dtype: Any, fill: int) -> Any:
    return bool(fill % 2) if np.dtype(dtype) == np.bool_ else fill


def build(desc: tuple, fill: int) -> Any:
    tag = desc[0]
    if tag == "none":
        return None
    if tag == "dict":
        return {k: build(v, fill) for k, v in desc[1]}
    if tag == "list":
        return [build(v, fill) for v in desc[1]]
    if tag == "bad":  # not an array tree at all
        return "not an array"
    _, shape, dtype, kind = desc
    if kind == "python":
        return {"float32": float(fill), "int32": int(fill), "bool": bool(fill % 2)}[dtype]
    out = np.full(shape, _fill(dtype, fill), dtype=dtype)
    return jnp.asarray(out) if kind == "jax" else out


def _derive_leaf(x: Any, mode: str, fill: int) -> Any:
    """A leaf like ``x`` (same kind, shape, dtype), or altered in one respect by ``mode``."""
    if isinstance(x, (bool, int, float)):
        if mode == "relabel":
            return np.asarray(x)
        if mode == "shape":
            return np.full((2,), x)
        if mode == "dtype":
            return str(x)
        return type(x)(fill % 2 if isinstance(x, bool) else fill)
    arr = np.asarray(x)
    shape, dtype = arr.shape, arr.dtype
    if mode == "shape":
        shape = shape + (2,)
    if mode == "dtype":
        dtype = np.dtype(np.int32) if dtype != np.int32 else np.dtype(np.float32)
    is_jax = isinstance(x, jax.Array)
    if mode == "relabel":
        is_jax = not is_jax
    out = np.full(shape, _fill(dtype, fill), dtype=dtype)
    return jnp.asarray(out) if is_jax else out


def derive(current: Any, mode: str, desc: tuple, fill: int, invalid: Any) -> Any:
    """The value a write puts: derived from the state's current value, or ``desc`` when fresh."""
    if mode == "fresh" or current is invalid:
        return build(desc, fill)
    return jax.tree.map(lambda x: _derive_leaf(x, mode, fill), current)


def summarize(x: Any, invalid: Any = None) -> Any:
    """A picklable, comparable description of a value: structure and every leaf."""
    if invalid is not None and x is invalid:
        return "INVALID"
    try:
        flat, treedef = jax.tree.flatten(x)
    except Exception as exc:  # a value JAX cannot flatten: its type says enough
        return ("unflattenable", type(x).__name__, type(exc).__name__)
    out = []
    for leaf in flat:
        if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
            kind = "jax" if isinstance(leaf, jax.Array) else type(leaf).__name__
            arr = np.asarray(leaf)
            out.append((kind, str(arr.dtype), arr.shape, arr.tolist()))
        else:
            out.append((type(leaf).__name__, repr(leaf)))
    return (_ADDRESS.sub("0x?", str(treedef)), out)


# --- the world: one side's objects and the operations on them -----------------------------------


class World:
    """States, hooks, trace stacks, graphs, splits and checkpoints of one core.

    ``apply(op)`` runs one operation (a plain tuple) and returns its outcome followed by a
    snapshot of everything; nothing it returns refers to a live object, so both sides' answers
    compare with ``==``.
    """

    def __init__(self) -> None:
        from brainstate._impl import core

        self.invalid = core.INVALID
        self.states: list = []
        self.index: dict = {}  # id(state) -> position in self.states (states are kept alive)
        self.handles: list = []
        self.traces: list = []
        self.graphs: list = []
        self.splits: list = []
        self.saved: list = []  # checkpoint files written so far
        self.log: list = []
        self.tmp = tempfile.mkdtemp(prefix="parity")
        brainstate.clear_state_hooks()
        brainstate.GlobalHookRegistry.instance().config = brainstate.HookConfig()

    def close(self) -> None:
        while self.traces:  # innermost first, or the stacks complain
            self.traces.pop().__exit__(None, None, None)
        brainstate.clear_state_hooks()
        brainstate.GlobalHookRegistry.instance().config = brainstate.HookConfig()
        for s in self.states:
            s.clear_hooks()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- bookkeeping --

    def register(self, s: Any) -> int:
        i = self.index.get(id(s))
        if i is None:
            i = self.index[id(s)] = len(self.states)
            self.states.append(s)
        return i

    def label(self, s: Any) -> Any:
        if s is None:
            return None
        i = self.index.get(id(s))
        return i if i is not None else ("unregistered", getattr(s, "name", None))

    def norm(self, text: str) -> str:
        return _ADDRESS.sub("0x?", text.replace(self.tmp, "<tmp>"))

    def summ(self, x: Any) -> Any:
        return summarize(x, self.invalid)

    def snapshot(self) -> tuple:
        # raw slots only: reading ``.value`` would fire hooks and be recorded by traces
        states = tuple((type(s).__name__, s._name, self.summ(s._value), bool(s._been_writen),
                        self.norm(repr(s._signature)), s._flags, s._level)
                       for s in self.states)
        handles = tuple((h.is_enabled(), h.is_removed()) for h, _ in self.handles)
        events, self.log = tuple(self.log), []
        return states, handles, events, len(self.traces)

    def apply(self, op: tuple) -> tuple:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcome = ("ok", getattr(self, "op_" + op[0])(*op[1:]))
            except Exception as exc:  # the outcome *is* the error
                outcome = ("error", type(exc).__name__, self.norm(str(exc)),
                           tuple(self.norm(n) for n in getattr(exc, "__notes__", ())),
                           type(exc.__cause__).__name__ if exc.__cause__ else None)
        warned = tuple((w.category.__name__, self.norm(str(w.message))) for w in caught)
        return outcome, warned, self.snapshot()

    def _hook_target(self, target: Any) -> Any:
        if target is None:
            return brainstate.GlobalHookRegistry.instance()
        return self.states[target % len(self.states)].hooks

    # -- states --

    def op_create(self, cls: str, desc: tuple, name: str) -> int:
        s = STATE_CLASSES[cls](build(desc, 0), name=name)
        return self.register(s)

    def op_write(self, i: int, mode: str, desc: tuple, fill: int) -> None:
        s = self.states[i % len(self.states)]
        s.value = derive(s._value, mode, desc, fill, self.invalid)

    def op_restore(self, i: int, mode: str, desc: tuple, fill: int) -> None:
        s = self.states[i % len(self.states)]
        s.restore_value(derive(s._value, mode, desc, fill, self.invalid))

    def op_unchecked_write(self, i: int, mode: str, desc: tuple, fill: int) -> None:
        s = self.states[i % len(self.states)]
        with brainstate.check_state_value_tree(False):
            s.value = derive(s._value, mode, desc, fill, self.invalid)

    def op_read(self, i: int) -> Any:
        return self.summ(self.states[i % len(self.states)].value)

    # -- hooks --

    def _callback(self, kind: str, label: str, holder: list) -> Any:
        world = self
        busy = []  # re-entrancy guard of hooks that touch other states

        def hook(ctx: Any) -> None:
            world.log.append((label, ctx.operation, world.label(ctx.state), ctx.state_name,
                              world.summ(getattr(ctx, "value", None)),
                              world.summ(getattr(ctx, "old_value", None))))
            if kind == "rewrite":
                ctx.transformed_value = jax.tree.map(
                    lambda x: jnp.full(jnp.shape(x), 7, dtype=jnp.result_type(x)), ctx.value)
            elif kind == "rewrite_bad":
                ctx.transformed_value = jnp.zeros((5,), jnp.float32)
            elif kind == "cancel":
                ctx.cancel = True
                ctx.cancel_reason = f"{label} vetoed it"
            elif kind == "raise":
                raise ValueError(f"{label} failed on purpose")
            elif kind in ("read_other", "write_other") and not busy:
                busy.append(1)
                try:
                    other = world.states[0]
                    if kind == "read_other":
                        other.value
                    else:
                        other.value = other._value
                finally:
                    busy.pop()
            elif kind == "self_remove":
                holder[0].remove()

        return hook

    def op_hook(self, target: Any, hook_type: str, kind: str, priority: int, label: str) -> tuple:
        holder: list = []
        mgr = self._hook_target(target)
        handle = mgr.register_hook(hook_type, self._callback(kind, label, holder), priority, label)
        holder.append(handle)
        self.handles.append((handle, label))
        return handle.name, handle.priority, self.norm(repr(handle))

    def op_unhook(self, h: int) -> bool:
        return self.handles[h % len(self.handles)][0].remove()

    def op_toggle(self, h: int) -> bool:
        handle = self.handles[h % len(self.handles)][0]
        if handle.is_enabled():
            handle.disable()
        else:
            handle.enable()
        return handle.is_enabled()

    def op_policy(self, target: Any, policy: str) -> None:
        self._hook_target(target).config = brainstate.HookConfig(on_error=policy)

    def op_clear_hooks(self, target: Any, hook_type: Any) -> None:
        self._hook_target(target).clear_hooks(hook_type)

    # -- trace stacks --

    def _trace_summary(self, t: Any) -> tuple:
        return (tuple(self.label(s) for s in t.states), tuple(t.been_writen),
                tuple(self.summ(v) for v in t.original_state_values))

    def op_trace_push(self, name: str) -> int:
        t = brainstate.StateTraceStack(name=name)
        t.__enter__()
        self.traces.append(t)
        return len(self.traces)

    def op_trace_pop(self, j: Any) -> tuple:
        """Leave the innermost stack (``j`` None) or the ``j``-th: out of order when not last."""
        t = self.traces[-1] if j is None else self.traces[j % len(self.traces)]
        t.__exit__(None, None, None)  # out of order: raises, and the stack stays as it was
        self.traces.remove(t)
        return (self._trace_summary(t), tuple(map(self.label, t.get_read_states())),
                tuple(map(self.label, t.get_write_states())))

    def op_trace_recover(self) -> Any:
        self.traces[-1].recovery_original_values()
        return self._trace_summary(self.traces[-1])

    # -- graphs --

    def describe(self, root: Any) -> Any:
        """The graph's structure with shared modules numbered and states as world labels."""
        memo: dict = {}

        def walk(x: Any) -> Any:
            if isinstance(x, brainstate.State):
                return ("state", self.register(x))
            if isinstance(x, Box):
                if id(x) in memo:
                    return ("ref", memo[id(x)])
                memo[id(x)] = n = len(memo)
                return ("box", n, tuple((k, walk(v)) for k, v in sorted(vars(x).items())))
            if isinstance(x, (list, tuple)):
                return (type(x).__name__, tuple(walk(v) for v in x))
            if isinstance(x, dict):
                return ("dict", tuple((k, walk(v)) for k, v in sorted(x.items())))
            return ("static", self.norm(repr(x)))

        return walk(root)

    def op_graph(self, spec: tuple) -> Any:
        root = Box()
        made: list = []
        for n, (kind, a, b) in enumerate(spec):
            sa, sb = (self.states[a % len(self.states)], self.states[b % len(self.states)])
            if kind == "state":
                child = sa
            elif kind == "list":
                child = [sa, sb]
            elif kind == "dict":
                child = {"k": sa, "j": sb}
            elif kind == "sub":
                child = Box(x=sa, y=sb)
            elif kind == "alias" and made:  # the same object under a second name
                child = made[a % len(made)]
            elif kind == "other" and self.graphs:  # a module shared with another graph
                child = self.graphs[a % len(self.graphs)]
            elif kind == "cycle":
                child = root
            else:
                child = a
            made.append(child)
            setattr(root, f"c{n}", child)
        self.graphs.append(root)
        return self.describe(root)

    def op_split(self, g: int, param_first: bool) -> tuple:
        root = self.graphs[g % len(self.graphs)]
        if param_first:
            gd, *mappings = brainstate.graph.treefy_split(root, brainstate.ParamState, ...)
        else:
            gd, *mappings = brainstate.graph.treefy_split(root)
        self.splits.append((gd, tuple(mappings)))
        return self.norm(repr(gd)), tuple(
            tuple((path, ref.type.__name__, self.summ(ref.value),
                   self.norm(repr(sorted(ref.get_metadata().items(), key=str))))
                  for path, ref in m.to_flat().items())
            for m in mappings)

    def _mappings(self, k: int, transform: str) -> tuple:
        gd, mappings = self.splits[k % len(self.splits)]
        if transform == "shift":
            mappings = tuple(jax.tree.map(lambda x: _derive_leaf(x, "same", 3), m)
                             for m in mappings)
        elif transform == "bad":  # the first state of the first mapping gets a wrong shape
            first = [True]

            def spoil(x: Any) -> Any:
                if first:
                    first.clear()
                    return jnp.zeros((9,), jnp.float32)
                return x

            mappings = tuple(jax.tree.map(spoil, m) for m in mappings)
        elif transform == "drop":  # one path missing
            flat = list(mappings[0].to_flat().items()) if mappings else []
            mappings = (FlattedDict(dict(flat[1:])), *mappings[1:])
        return gd, mappings

    def op_merge(self, k: int, copy_hooks: bool, transform: str) -> Any:
        gd, mappings = self._mappings(k, transform)
        root = brainstate.graph.treefy_merge(gd, *mappings, copy_hooks=copy_hooks)
        self.graphs.append(root)
        return self.describe(root)

    def op_update(self, g: int, k: int, transform: str) -> Any:
        root = self.graphs[g % len(self.graphs)]
        _, mappings = self._mappings(k, transform)
        brainstate.graph.update_states(root, *mappings)
        return self.describe(root)

    # -- checkpoints --

    def op_save(self, g: int, slot: int) -> str:
        path = os.path.join(self.tmp, f"slot{slot}.ckpt")
        save(path, self.graphs[g % len(self.graphs)], metadata={"slot": slot})
        if path not in self.saved:
            self.saved.append(path)
        with open(path, "rb") as f:  # both cores must write the very same bytes
            return hashlib.sha256(f.read()).hexdigest()

    def op_load(self, slot: int, g: int, strict: bool) -> tuple:
        path = self.saved[slot % len(self.saved)]
        res = load(path, self.graphs[g % len(self.graphs)], strict=strict)
        return self.norm(repr((res.restored, res.missing, res.unexpected,
                               sorted(res.mismatched.items(), key=str), res.metadata)))


# --- the reference side: a subprocess with the pure core ----------------------------------------
# (tests/pure_core_worker.py runs this module there and calls the two functions below)

_world: World | None = None


def reset() -> str:
    """A fresh World in the worker; returns the core it runs."""
    global _world
    if _world is not None:
        _world.close()
    _world = World()
    return brainstate._impl.IMPLEMENTATION


def op(step: tuple) -> Any:
    """Apply one operation to the worker's World."""
    assert _world is not None, "reset() first"
    return _world.apply(step)


# --- the state machine --------------------------------------------------------------------------
# Hypothesis sorts rules by their number of arguments and draws the first ones more often, so
# related operations share one rule (an ``op`` argument picks among them) and the operations on
# values and hooks get a second rule: without that, trace pushes drowned everything else.

indices = st.integers(0, 63)
where = st.one_of(st.none(), indices)  # None: the global registry, else a state's manager
fills = st.integers(1, 9)
value_ops = st.sampled_from(["write", "write", "write", "restore", "restore", "unchecked_write",
                             "read"])
graph_specs = st.lists(st.tuples(
    st.sampled_from(["state", "list", "dict", "sub", "alias", "other", "cycle", "static"]),
    indices, indices), min_size=1, max_size=4).map(tuple)
transforms = st.sampled_from(["same", "shift", "bad", "drop"])
# Merges copy every state of a graph, and graphs may contain earlier graphs: unchecked, the
# number of states (and the cost of each step's snapshot) grows geometrically in long runs.
MAX_STATES = 40


def _has(attr: str) -> Any:
    return precondition(lambda self: bool(getattr(self.world, attr)))


class ParityMachine(RuleBasedStateMachine):
    """Every rule is one operation, applied to both Worlds; the outcomes must be equal."""

    worker: PureCoreWorker | None = None

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        assert self.worker is not None
        assert self.worker.call("reset") == "py", "the subprocess did not get the pure core"
        self.steps: list = []

    def teardown(self) -> None:
        self.world.close()

    def step(self, *op: Any) -> None:
        self.steps.append(op)
        local = self.world.apply(op)
        remote = self.worker.call("op", op)
        if local != remote:
            lines = [f"the cores disagree after {len(self.steps)} steps; the last: {op!r}"]
            for what, c, p in zip(("outcome", "warnings", "snapshot"), local, remote):
                if c != p:
                    lines += [f"{what} (compiled): {c!r}", f"{what} (pure):     {p!r}"]
            pytest.fail("\n".join(lines))

    # states
    @initialize(descs=st.lists(trees, min_size=1, max_size=3))
    def first_states(self, descs):
        for n, desc in enumerate(descs):
            self.step("create", "State" if n else "ParamState", desc, f"s{n}")

    @precondition(lambda self: len(self.world.states) <= MAX_STATES)
    @rule(cls=st.sampled_from(sorted(STATE_CLASSES)),
          desc=st.one_of(trees, trees, st.just(("bad",))), name=st.sampled_from(["a", "b"]))
    def create(self, cls, desc, name):
        self.step("create", cls, desc, name)

    @_has("states")
    @rule(op=value_ops, i=indices, mode=st.sampled_from(VALUE_MODES), desc=trees, fill=fills)
    def values(self, op, i, mode, desc, fill):
        if op == "read":
            self.step("read", i)
        else:
            self.step(op, i, mode, desc, fill)

    @_has("states")
    @rule(op=value_ops, i=indices, mode=st.sampled_from(["same", "same", "relabel", "shape"]),
          fill=fills)
    def more_values(self, op, i, mode, fill):
        self.values(op, i, mode, ("none",), fill)

    # hooks
    @_has("states")
    @rule(owner=where, hook_type=st.sampled_from(HOOK_TYPES + ("write_before", "bogus")),
          kind=st.sampled_from(HOOK_KINDS), priority=st.integers(0, 2))
    def hook(self, owner, hook_type, kind, priority):
        self.step("hook", owner, hook_type, kind, priority, f"h{len(self.steps)}")

    @_has("states")
    @rule(i=indices, on_global=st.booleans(),
          hook_type=st.sampled_from(["write_before", "write_before", "write_after", "restore"]),
          kind=st.sampled_from(HOOK_KINDS), op=value_ops, mode=st.sampled_from(VALUE_MODES),
          fill=fills)
    def hooked_write(self, i, on_global, hook_type, kind, op, mode, fill):
        # a hook and, at once, an operation on the state it watches
        self.hook(None if on_global else i, hook_type, kind, 1)
        self.values(op, i, mode, ("none",), fill)

    @_has("states")
    @rule(op=st.sampled_from(["unhook", "toggle", "policy", "policy", "clear_hooks"]),
          h=indices, owner=where, policy=st.sampled_from(["raise", "log", "ignore"]),
          hook_type=st.sampled_from((None,) + HOOK_TYPES))
    def hook_admin(self, op, h, owner, policy, hook_type):
        if op == "policy":
            self.step("policy", owner, policy)
        elif op == "clear_hooks":
            self.step("clear_hooks", owner, hook_type)
        elif self.world.handles:
            self.step(op, h)

    # trace stacks
    @rule(op=st.sampled_from(["push", "push", "pop", "pop", "pop_out_of_order", "recover"]),
          name=st.sampled_from(["t", "u"]), j=indices)
    def trace(self, op, name, j):
        if op == "push":
            if len(self.world.traces) < 4:
                self.step("trace_push", name)
        elif self.world.traces:
            self.step(*{"pop": ("trace_pop", None), "pop_out_of_order": ("trace_pop", j),
                        "recover": ("trace_recover",)}[op])

    # graphs
    @_has("states")
    @rule(op=st.sampled_from(["build", "split", "split", "merge", "update", "update"]),
          spec=graph_specs, g=indices, k=indices, param_first=st.booleans(),
          copy_hooks=st.booleans(), transform=transforms)
    def graphs(self, op, spec, g, k, param_first, copy_hooks, transform):
        if op == "merge" and len(self.world.states) > MAX_STATES:
            op = "split"
        if op == "build" or not self.world.graphs:
            self.step("graph", spec)
        elif op == "split" or not self.world.splits:
            self.step("split", g, param_first)
        elif op == "merge":
            self.step("merge", k, copy_hooks, transform)
        else:
            self.step("update", g, k, transform)

    # checkpoints
    @_has("graphs")
    @rule(op=st.sampled_from(["save", "load"]), g=indices, slot=st.integers(0, 2),
          strict=st.booleans())
    def checkpoint(self, op, g, slot, strict):
        if op == "save" or not self.world.saved:
            self.step("save", g, slot)
        else:
            self.step("load", slot, g, strict)


def _run(worker: PureCoreWorker, max_examples: int, steps: int) -> None:
    ParityMachine.worker = worker
    try:
        run_state_machine_as_test(ParityMachine, settings=settings(
            max_examples=max_examples, stateful_step_count=steps, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    finally:
        ParityMachine.worker = None


def test_random_interleavings_agree(pure_worker):
    _run(pure_worker, max_examples=60, steps=30)


@pytest.mark.slow
@pytest.mark.stress
def test_random_interleavings_agree_long(pure_worker):
    _run(pure_worker, max_examples=400, steps=60)


def test_harness_sees_a_difference(pure_worker):
    # The comparison must be able to fail: the two sides are built from different values.
    pure_worker.call("reset")
    world = World()
    try:
        op = ("create", "State", ("leaf", (2,), "float32", "jax"), "a")
        assert world.apply(op) == pure_worker.call("op", op)
        world.apply(("write", 0, "same", ("none",), 5))
        other = pure_worker.call("op", ("write", 0, "same", ("none",), 6))
        assert world.apply(("read", 0)) != pure_worker.call("op", ("read", 0))
        assert other[0] == ("ok", None)
    finally:
        world.close()


# A fixed program touching every operation; the determinism test below runs it on both legs.
PROGRAM = (
    ("create", "ParamState", ("leaf", (2,), "float32", "jax"), "a"),
    ("create", "State", ("dict", (("a", ("leaf", (), "int32", "numpy")), ("b", ("none",)))), "b"),
    ("create", "HiddenState", ("leaf", (), "float32", "python"), "h"),
    ("hook", None, "write_after", "observe", 0, "g"),
    ("hook", 0, "write_before", "rewrite", 1, "r"),
    ("hook", 1, "write_before", "cancel", 0, "c"),
    ("hook", 0, "read", "self_remove", 0, "once"),
    ("hook", 0, "restore", "raise", 0, "x"),
    ("policy", 0, "log"),
    ("trace_push", "t"),
    ("write", 0, "same", ("none",), 3),
    ("write", 1, "same", ("none",), 3),
    ("read", 0),
    ("restore", 0, "shape", ("none",), 1),
    ("restore", 0, "same", ("none",), 2),
    ("trace_push", "u"),
    ("trace_pop", 0),
    ("trace_pop", None),
    ("trace_pop", None),
    ("graph", (("sub", 0, 1), ("alias", 0, 0), ("cycle", 0, 0), ("static", 4, 0))),
    ("split", 0, True),
    ("merge", 0, True, "shift"),
    ("merge", 0, False, "bad"),
    ("merge", 0, False, "drop"),
    ("update", 0, 0, "same"),
    ("save", 0, 0),
    ("write", 0, "same", ("none",), 5),
    ("load", 0, 0, True),
    ("load", 0, 1, False),
)


def test_world_outcomes_are_reproducible():
    # Both legs: equal programs must give equal outcomes within one core, or a parity failure
    # could come from the harness (addresses, temporary paths, hook ids) instead of the cores.
    runs = []
    for _ in range(2):
        world = World()
        try:
            runs.append([world.apply(op) for op in PROGRAM])
        finally:
            world.close()
    assert runs[0] == runs[1]
    outcomes = dict(zip(range(len(PROGRAM)), runs[0]))
    errors = {i: o[0][1] for i, o in outcomes.items() if o[0][0] == "error"}
    assert errors == {2: "TypeError", 11: "HookCancellationError", 13: "StateSignatureError",
                      16: "RuntimeError", 22: "StateSignatureError", 23: "ValueError"}
    assert [w[0] for w in outcomes[14][1]] == ["HookWarning"]  # the raising restore hook
    assert outcomes[10][2][0][0][2][1][0][3] == [7.0, 7.0]  # rewritten by hook 'r'
    assert outcomes[27][2][0][0][2][1][0][3] == [7.0, 7.0]  # the load undid the write of 5
    assert len(outcomes[25][0][1]) == 64  # the digest of the saved file
    assert any(event[0] == "g" for event in outcomes[10][2][2])  # global observer fired
