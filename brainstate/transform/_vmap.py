"""``vmap`` and ``vmap_new_states``: vectorise functions that read, write and create states.

Engine. The function is traced once *per lane* by a ``StatefulFunction`` on the per-lane
abstract arguments (mapped axes removed), with every state declared in ``in_states`` showing
a per-lane view (installed through ``_set_view``, so writes inside are checked against the
per-lane shape). The resulting pure jaxpr of ``(args, state values)`` is then evaluated under
one ``jax.vmap`` whose ``in_axes``/``out_axes`` come from the declarations, and compiled with
``jax.jit``. Which undeclared written states depend on the mapped axis is learnt once, on a cold
call, by an abstract evaluation of the same ``jax.vmap`` that looks at the batching tracers of
the written values (only when some written state is undeclared). Undeclared random states
enter the ``jax.vmap`` with one key per lane, split from their key inside the same compiled
computation (``_with_lane_keys``), which also writes back the advanced key.

A cold call therefore runs the Python function once (plus one abstract evaluation of its
jaxpr); a warm call (same abstract arguments, no state re-bound since) traces nothing: it
gathers the touched states' values, runs the compiled computation and scatters the results.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Hashable, Sequence, overload

import jax
import jax.numpy as jnp
from jax.api_util import flatten_axes

from brainstate.typing import Missing
from brainstate._error import BatchAxisError, StateSignatureError
from brainstate._impl import core as _core
from brainstate._jax_internals import batching as _batching
from brainstate._jax_internals import jax_core as _jax_core
from brainstate._messages import describe_state
from brainstate._state import NonBatchState, State, catch_new_states
from brainstate.transform._make_jaxpr import _X64, StatefulFunction, _leaf_key, pure_of

__all__ = ["vmap", "vmap_new_states", "VmappedFunction", "INIT_NO_BATCHING"]

#: Tag of states that ``vmap_new_states`` replicates instead of batching.
INIT_NO_BATCHING = "INIT_NO_BATCHING"

_MAX_CACHE = 128


_Missing = Missing()  # "no function given" (upstream passes its own Missing(): equal)


# --- declarations ----------------------------------------------------------------------------


def _collect_states(obj: Any, what: str, out: list) -> None:
    """Append every State in ``obj`` (a State, a pytree, a mapping or an iterable of them)."""
    if isinstance(obj, State):
        out.append(obj)
        return
    leaves = jax.tree_util.tree_leaves(obj)
    if len(leaves) == 1 and leaves[0] is obj:
        # Not a registered container: accept plain mappings and iterables of States too.
        if isinstance(obj, Mapping):
            for v in obj.values():
                _collect_states(v, what, out)
            return
        if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)) \
                and not hasattr(obj, "shape"):
            for v in obj:
                _collect_states(v, what, out)
            return
        raise TypeError(
            f"vmap {what} must hold State instances only, got a {type(obj).__name__}. Declare "
            f"states by instance: {what}={{axis: {{name: state}}}}, a single State, or any "
            "pytree/iterable of States (e.g. model.states())."
        )
    for leaf in leaves:
        _collect_states(leaf, what, out)


def _flatten_declaration(spec: Any, what: str) -> list:
    """``[(state, axis), ...]`` in declaration order for one ``in_states``/``out_states``."""
    if spec is None:
        return []
    if (isinstance(spec, dict) and spec
            and all(type(k) is int for k in spec)
            and all(isinstance(v, dict) for v in spec.values())):
        groups = list(spec.items())
    else:
        groups = [(0, spec)]
    pairs: list = []
    seen: dict = {}
    for axis, group in groups:
        states: list = []
        _collect_states(group, what, states)
        for st in states:
            prev = seen.get(id(st))
            if prev is None:
                seen[id(st)] = axis
                pairs.append((st, axis))
            elif prev != axis:
                raise BatchAxisError(
                    f"{describe_state(st)} is declared twice in {what}, at axis {prev} and at "
                    f"axis {axis}. Declare each state at one axis."
                )
    return pairs


def _format_states(in_states: Any, out_states: Any) -> tuple[list, list]:
    """(in pairs, out-only pairs); a state in both must use the same axis."""
    ins = _flatten_declaration(in_states, "in_states")
    outs = _flatten_declaration(out_states, "out_states")
    in_axis = {id(st): a for st, a in ins}
    out_only = []
    for st, b in outs:
        a = in_axis.get(id(st))
        if a is None:
            out_only.append((st, b))
        elif a != b:
            raise BatchAxisError(
                f"{describe_state(st)} is mapped to axis {a} in in_states but to axis {b} in "
                "out_states. A state in in_states is written back at the same axis; declare "
                f"it at one axis (e.g. only in_states={{{a}: ...}})."
            )
    return ins, out_only


def _check_in_axes(in_axes: Any) -> Any:
    if isinstance(in_axes, list):
        # as jax.vmap: a list is read as the per-argument tuple
        in_axes = tuple(in_axes)
    if not (in_axes is None or isinstance(in_axes, tuple)
            or (isinstance(in_axes, int) and not isinstance(in_axes, bool))):
        raise TypeError(
            "vmap in_axes must be an int, None, or a tuple with one entry per positional "
            f"argument, got {in_axes!r}."
        )
    return in_axes


# --- per-leaf helpers ------------------------------------------------------------------------


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _sds(x: Any) -> Any:
    """Abstract stand-in of one leaf (Python scalars stay as they are: weak-typed)."""
    if _is_array(x):
        aval = jax.typeof(x)  # canonical dtype (numpy float64 -> float32 without x64)
        return jax.ShapeDtypeStruct(aval.shape, aval.dtype,
                                    weak_type=getattr(aval, "weak_type", False))
    return x


def _lane(x: Any, axis: int, where: Callable[[], str],
          name: str = "vmap") -> tuple[Any, int, int]:
    """(per-lane abstract value, normalised axis, size) of a mapped leaf; ValueError if unmappable.

    ``name`` is the transform the messages name.
    """
    if not _is_array(x):
        raise ValueError(
            f"{name} cannot map axis {axis} of {where()}: it is a {type(x).__name__}, not an "
            "array. Only arrays can be mapped; give it an in_axes entry of None to broadcast it."
        )
    shape = tuple(x.shape)
    a = axis + len(shape) if axis < 0 else axis
    if not 0 <= a < len(shape):
        raise ValueError(
            f"{name} cannot map axis {axis} of {where()}: it has shape {shape} (rank "
            f"{len(shape)}), so the axis must lie in [{-len(shape)}, {len(shape)}). Fix in_axes "
            "(or the state's declared axis)."
        )
    aval = jax.typeof(x)
    lane = jax.ShapeDtypeStruct(shape[:a] + shape[a + 1:], aval.dtype,
                                weak_type=getattr(aval, "weak_type", False))
    return lane, a, shape[a]


def _arg_path(args: tuple, index: int) -> str:
    """``args[0]['w']``-style path of the ``index``-th flat leaf of ``args`` (error messages)."""
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(args)[0]]
    return "args" + jax.tree_util.keystr(paths[index]) if index < len(paths) else "an argument"


def call_key(treedef: Any, leaves: list) -> tuple:
    """Cache key of a call's flattened arguments: their structure, each leaf's key and JAX's
    64-bit flag (a plan traced under one setting is wrong under the other, as in ``jit``)."""
    return (treedef, tuple(map(_key, leaves)), _X64.value)


def _key(x: Any) -> Any:
    """Cache key of one argument leaf; a leaf JAX cannot type keys by its Python type.

    Such a leaf then fails on the cold path with a message about mapping or typing it.
    """
    try:
        return _leaf_key(x)
    except TypeError:
        return ("opaque", type(x))


def _is_batched(x: Any, trace: Any) -> bool:
    return (isinstance(x, _batching.BatchTracer) and x._trace is trace
            and x.batch_dim is not None)


def _no_batching(st: State) -> bool:
    return isinstance(st, NonBatchState) or (st.tag is not None and INIT_NO_BATCHING in st.tag)


def _leaf_axes(args: tuple, leaves: list, treedef: Any, in_axes: Any, name: str) -> list:
    """The mapped axis of each flat argument leaf, ``in_axes`` read as ``jax.vmap`` reads it."""
    if not isinstance(in_axes, tuple):
        return [in_axes] * len(leaves)
    if len(in_axes) != len(args):
        raise ValueError(
            f"{name} in_axes has {len(in_axes)} entries but the function was called with "
            f"{len(args)} positional arguments; give one in_axes entry per argument (None to "
            "broadcast one)."
        )
    return flatten_axes(f"{name} in_axes", treedef, in_axes)


class _Mapping:
    """The argument side of one call: flat leaves, their axes, sizes and per-lane abstractions."""

    __slots__ = ("dyn_axes", "lane_args", "n", "in_vals", "in_views")

    def __init__(self, owner: Any, args: tuple, leaves: list, treedef: Any,
                 in_pairs: Sequence) -> None:
        in_axes, name = owner.in_axes, owner._name
        axes = _leaf_axes(args, leaves, treedef, in_axes, name)
        sizes: list = []
        dyn_axes: list = []
        lane_leaves: list = []
        for i, (leaf, ax) in enumerate(zip(leaves, axes)):
            if ax is None:
                dyn_axes.append(None)
                lane_leaves.append(_sds(leaf))
                continue
            if not isinstance(ax, int) or isinstance(ax, bool):
                raise ValueError(
                    f"{name} in_axes entries must be int or None, got {ax!r} for "
                    f"{_arg_path(args, i)}."
                )
            # ``where`` is called (if at all) before _lane returns: no loop-variable binding
            lane, a, size = _lane(leaf, ax, lambda: _arg_path(args, i), name)
            dyn_axes.append(a)
            lane_leaves.append(lane)
            sizes.append((size, lambda i=i, a=a: f"{_arg_path(args, i)} (axis {a})"))
        # Reading the declared states through gather records them in enclosing traces first,
        # so an outer transform substitutes its own tracer before any view is installed here.
        in_vals = _core.gather([st for st, _ in in_pairs]) if in_pairs else []
        in_views = []
        for (st, ax), val in zip(in_pairs, in_vals):
            lanes = []
            for leaf in jax.tree_util.tree_leaves(val):
                lane, a, size = _lane(leaf, ax, lambda: describe_state(st), name)
                lanes.append(lane)
                sizes.append((size, lambda st=st, a=a: f"{describe_state(st)} (axis {a})"))
            in_views.append(jax.tree_util.tree_unflatten(
                jax.tree_util.tree_structure(val), lanes))
        self.dyn_axes = dyn_axes
        self.lane_args = jax.tree_util.tree_unflatten(treedef, lane_leaves)
        self.n = _axis_size(sizes, owner.axis_size, name, owner._in_word)
        self.in_vals = in_vals
        self.in_views = in_views


def _axis_size(sizes: list, axis_size: int | None, name: str = "vmap",
               in_word: str = "in_states") -> int:
    """The mapped size; ``name`` and ``in_word`` are the transform and its state parameter."""
    if not sizes:
        if axis_size is None:
            raise ValueError(
                "Unable to determine the mapped axis size: no argument is mapped (every in_axes "
                f"entry is None or there are no arguments) and no state is mapped by {in_word}. "
                "Specify axis_size."
            )
        return axis_size
    distinct = {s for s, _ in sizes}
    if len(distinct) > 1:
        detail = ", ".join(f"{where()} has size {s}" for s, where in sizes)
        raise ValueError(
            f"{name} got inconsistent sizes for the mapped axis: {detail}. Every mapped argument "
            f"and every state mapped by {in_word} must have the same size along its mapped axis."
        )
    n = sizes[0][0]
    if axis_size is not None and axis_size != n:
        raise ValueError(
            f"{name} axis_size={axis_size} conflicts with the mapped axis size {n} of "
            f"{sizes[0][1]()}. Omit axis_size or make it match the mapped inputs."
        )
    return n


def _undeclared_error(st: State, new_states: bool) -> BatchAxisError:
    if new_states:
        fix = ("vmap_new_states only batches the states it creates; write this state in a "
               "brainstate.transform.vmap that declares it in out_states instead")
    else:
        fix = ("declare it in out_states (the state then gains the mapped axis, one value per "
               "lane) or in in_states (mapped on input and written back along the same axis)")
    where = "vmap_new_states" if new_states else "vmap"
    return BatchAxisError(
        f"{describe_state(st)} was written inside {where} with a value that differs across the "
        f"mapped axis, but it is not declared in out_states, so one value cannot be kept for "
        f"it. To keep one value per lane, {fix}."
    )


# --- random states: one stream per lane ----------------------------------------------------


def _lane_split(states: Sequence, declared: Any) -> list:
    """Indices of the random states among ``states`` that the mapping splits per lane.

    A ``brainstate.random.RandomState`` the function uses without declaring it gets one key per
    lane; a declared one is the user's choice (an opt-out) and is mapped like any state.
    """
    mod = sys.modules.get("brainstate.random._state")
    if mod is None:  # no RandomState can exist before its module is imported
        return []
    from brainstate.random._keys import describe_key, is_single_key

    out = []
    for i, st in enumerate(states):
        if isinstance(st, mod.RandomState) and id(st) not in declared:
            if not is_single_key(st._value):
                raise BatchAxisError(
                    f"{describe_state(st)} holds {describe_key(st._value)}, not a single key, "
                    "so vmap cannot split it into one key per lane. Declare it in in_states to "
                    "map its keys along the axis, or give it a single key (restore_key())."
                )
            out.append(i)
    return out


def _mappable(pairs: Sequence) -> list:
    """The declared ``(state, axis)`` pairs vmap maps, without random states holding one key.

    A random state declared with a single key has no axis to map (upstream splits it anyway):
    it is split per lane like an undeclared one. Only a declared random state that holds a
    batch of keys is mapped as declared (the opt-out).
    """
    mod = sys.modules.get("brainstate.random._state")
    if mod is None:
        return list(pairs)
    from brainstate.random._keys import is_single_key

    return [(st, a) for st, a in pairs
            if not (isinstance(st, mod.RandomState) and is_single_key(st._value))]


def _with_lane_keys(vmapped: Callable, split: Sequence, n: int, write_idx: Sequence) -> tuple:
    """Wrap ``vmapped`` so each split random state enters as ``n`` per-lane keys.

    As if ``lanes = rng.split_key(n)`` ran before the call: the key is split once into
    ``n + 1``; lane ``i`` starts from ``lanes[i]`` and the state keeps the first key. Returns
    ``(run, extra)``: ``run`` has ``vmapped``'s signature and returns the advanced key in place
    of each split state's per-lane writes, plus (appended to the written values) the advanced
    keys of split states the lanes only read; ``extra`` lists those states' indices.
    """
    pos = {i: j for j, i in enumerate(write_idx)}
    extra = [i for i in split if i not in pos]

    def run(dyn_leaves, state_vals):
        vals = list(state_vals)
        advanced = {}
        for i in split:
            keys = jax.random.split(vals[i], n + 1)
            advanced[i], vals[i] = keys[0], keys[1:]
        res = vmapped(dyn_leaves, vals)
        written = list(res[1])
        for i in split:
            if i in pos:
                written[pos[i]] = advanced[i]
        written.extend(advanced[i] for i in extra)
        return (res[0], written) + tuple(res[2:])

    return run, extra


# --- the engine ------------------------------------------------------------------------------


class _Watched:
    """A cached decision that depends on the signatures of ``watch`` (the states it saw).

    ``epoch`` is the core's re-bind epoch when last checked: equal means nothing was re-bound
    since. Otherwise :meth:`still_valid` compares the watched states' signatures.
    """

    __slots__ = ("watch", "sigs", "epoch")

    def __init__(self, watch: Sequence) -> None:
        self.watch = tuple(watch)
        self.sigs = tuple(st._signature for st in self.watch)
        self.epoch = _core.rebind_epoch()

    def still_valid(self) -> bool:
        # Some signature was re-bound since: stale only if one we depend on was.
        if all(st._signature == sig for st, sig in zip(self.watch, self.sigs)):
            self.epoch = _core.rebind_epoch()
            return True
        return False


class _Plan(_Watched):
    """Everything a warm call needs: the touched states and the compiled computation."""

    __slots__ = ("states", "write_states", "rebind", "compiled")

    def __init__(self, states, write_states, rebind, compiled, watch):
        super().__init__(watch)
        self.states = tuple(states)
        self.write_states = tuple(write_states)
        self.rebind = tuple(rebind)
        self.compiled = compiled


def _build(owner: Any, entry: Any, mapping: _Mapping, leaves: list, state_in_axes: list,
           probe: bool, extra_out: bool, split: Sequence = (), placeholders: Any = None):
    """The per-lane function of ``entry``, its ``jax.vmap`` arguments and (``probe``) batching.

    Returns ``(pure, in_axes, vmap_kwargs, flags)``. ``pure(dyn_leaves, state_vals) -> (out,
    written[, new])`` evaluates the per-lane jaxpr. With ``probe`` the same ``jax.vmap`` is
    evaluated abstractly once and ``flags`` says, for each written value (and each new-state
    value), whether it depends on the mapped axis; otherwise ``flags`` is None. The states at
    ``split`` enter with per-lane keys stacked on axis 0 (see ``_with_lane_keys``).
    ``placeholders`` maps state indices to the per-lane abstract value the jaxpr was traced
    with: their prior value is unused, so zeros of that shape stand in for it.
    """
    traced = pure_of(entry)

    def pure(dyn_leaves, state_vals):
        if placeholders:
            state_vals = list(state_vals)
            for i, view in placeholders.items():
                state_vals[i] = jax.tree_util.tree_map(
                    lambda s: jnp.zeros(s.shape, s.dtype), view)
        out, written = traced(state_vals, dyn_leaves)
        if extra_out:
            return out[0], written, out[1]
        return out, written

    vkw = dict(axis_name=owner.axis_name, axis_size=mapping.n,
               spmd_axis_name=owner.spmd_axis_name)
    in_axes = (mapping.dyn_axes, state_in_axes)
    flags = None
    if probe:
        box: dict = {}

        def probe_fn(dyn_leaves, state_vals):
            res = pure(dyn_leaves, state_vals)
            trace = _jax_core.trace_ctx.trace
            tail = res[1:]
            box["flags"] = [[any(_is_batched(x, trace) for x in jax.tree_util.tree_leaves(v))
                             for v in group] for group in tail]
            return tail

        dyn_abs = [_sds(x) for x in leaves]
        st_abs = [jax.tree_util.tree_map(_sds, st._value) for st in entry.states]
        for i in split:
            st_abs[i] = jax.tree_util.tree_map(
                lambda x: jax.ShapeDtypeStruct((mapping.n,) + tuple(x.shape), x.dtype), st_abs[i])
        jax.eval_shape(jax.vmap(probe_fn, in_axes=in_axes, out_axes=0, **vkw),
                       dyn_abs, st_abs)
        flags = box["flags"]
    return pure, in_axes, vkw, flags


class _Engine:
    """Shared configuration and per-lane tracing of ``vmap`` and ``vmap_new_states``."""

    # the user-facing names of the state parameters (a wrapper with other names sets its own)
    _in_word = "in_states"
    _out_word = "out_states"

    def __init__(self, fun: Callable, in_axes: Any, out_axes: Any, axis_name: Any,
                 axis_size: Any, spmd_axis_name: Any, name: str) -> None:
        if not callable(fun):
            raise TypeError(f"{name} needs a callable, got {type(fun).__name__}.")
        self.origin_fun = fun
        self.in_axes = _check_in_axes(in_axes)
        self.out_axes = tuple(out_axes) if isinstance(out_axes, list) else out_axes
        self.axis_name = axis_name
        if axis_size is not None and (not isinstance(axis_size, int)
                                      or isinstance(axis_size, bool) or axis_size < 0):
            raise ValueError(f"{name} axis_size must be a non-negative int or None, got "
                             f"{axis_size!r}.")
        self.axis_size = axis_size
        self.spmd_axis_name = spmd_axis_name
        self._name = name

    def _axis_env(self, n: int) -> Any:
        return None if self.axis_name is None else [(self.axis_name, n)]

    def _map(self, fn: Callable, in_axes: Any, out_axes: Any, vkw: dict) -> Callable:
        """The mapped per-lane function (hook: a subclass may map with another primitive)."""
        return jax.vmap(fn, in_axes=in_axes, out_axes=out_axes, **vkw)


class VmappedFunction(_Engine):
    """The callable ``vmap`` returns: traced per lane once per call signature, compiled once."""

    __module__ = "brainstate.transform"

    def __init__(self, fun: Callable, *, in_axes: Any, out_axes: Any, axis_name: Any,
                 axis_size: Any, spmd_axis_name: Any, in_states: Any, out_states: Any) -> None:
        super().__init__(fun, in_axes, out_axes, axis_name, axis_size, spmd_axis_name, "vmap")
        self._in_pairs, self._out_only = _format_states(in_states, out_states)
        # id -> (state, per-lane abstract value) of out-only states whose prior value the
        # function never uses: traced against that per-lane value, so a write of another shape
        # than the held value is allowed (the state is re-bound). Set by wrappers; vmap has none.
        self._fresh: dict = {}
        self._sfs: dict = {}  # mapped axis size (or None without axis_name) -> StatefulFunction
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.RLock()
        functools.update_wrapper(self, fun, updated=())

    def __repr__(self) -> str:
        return f"VmappedFunction({getattr(self.origin_fun, '__name__', self.origin_fun)!r})"

    def clear_cache(self) -> None:
        """Drop every traced and compiled computation."""
        with self._lock:
            self._cache.clear()
            self._sfs.clear()

    def _stateful(self, n: int) -> StatefulFunction:
        # The per-lane trace depends on the axis size only through named-axis collectives.
        k = None if self.axis_name is None else n
        with self._lock:
            sf = self._sfs.get(k)
            if sf is None:
                sf = self._sfs[k] = StatefulFunction(self.origin_fun, name="vmap",
                                                     axis_env=self._axis_env(n))
        return sf

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise NotImplementedError(
                f"brainstate.transform.vmap does not support keyword arguments at call time "
                f"(got {sorted(kwargs)}). Pass them positionally (with an in_axes entry each) "
                "or bind them with functools.partial before mapping."
            )
        leaves, treedef = jax.tree_util.tree_flatten(args)
        return self._call_flat(args, leaves, treedef, call_key(treedef, leaves))

    def _call_flat(self, args: tuple, leaves: list, treedef: Any, key: Any) -> Any:
        """``__call__`` once ``args`` is flattened and keyed (hook for wrappers that did it)."""
        plan = self._cache.get(key)  # lock-free hit: dict reads are atomic under the GIL
        if plan is None or plan.epoch != _core.rebind_epoch():
            plan = self._lookup_plan(key)
        if plan is None:
            plan = self._plan(args, leaves, treedef)
            with self._lock:
                self._cache[key] = plan
                if len(self._cache) > _MAX_CACHE:
                    self._cache.popitem(last=False)
        out, written = plan.compiled(leaves, _core.gather(plan.states))
        if plan.write_states:
            _core.scatter(plan.write_states, written)
            for i in plan.rebind:
                # Declared only in out_states: the value gained the mapped axis on purpose.
                plan.write_states[i]._restore_rebind(written[i])
        return out

    def _lookup_plan(self, key: Any) -> _Plan | None:
        """The cached plan of ``key`` if still valid (some signature was re-bound since)."""
        with self._lock:
            plan = self._cache.get(key)
            if plan is not None:
                if plan.epoch != _core.rebind_epoch() and not plan.still_valid():
                    del self._cache[key]
                    return None
                self._cache.move_to_end(key)
        return plan

    def _on_undeclared_write(self, st: State) -> int:
        """Axis for an undeclared state written with a lane-dependent value (hook).

        ``vmap`` refuses it; a subclass may return an axis instead: the state then keeps one
        value per lane along it and is re-bound, like a state declared only in out_states.
        """
        raise _undeclared_error(st, new_states=False)

    def _trace_lane(self, mapping: _Mapping, n: int, in_pairs: Sequence,
                    out_only: bool) -> Any:
        sf = self._stateful(n)
        states = [st for st, _ in in_pairs]
        fresh = [st for st, _ in self._fresh.values()]
        held = _core.gather(fresh) if fresh else []
        for st, view in zip(states, mapping.in_views):
            st._set_view(view)
        for st, view in self._fresh.values():
            st._set_view(view)
        try:
            return sf.entry(mapping.lane_args, {})
        except StateSignatureError as exc:
            if out_only:
                exc.add_note(
                    f"Inside {self._name}, states given only in {self._out_word} are read "
                    "unmapped (whole) and gain the mapped axis when written back; once "
                    f"batched, give them in {self._in_word} as well to map them on input."
                )
            raise
        finally:
            for st, val in zip(states, mapping.in_vals):
                st._restore_silent(val)
            for st, val in zip(fresh, held):
                st._restore_silent(val)

    def _plan(self, args: tuple, leaves: list, treedef: Any) -> _Plan:
        in_pairs, out_only = _mappable(self._in_pairs), _mappable(self._out_only)
        in_axis = {id(st): a for st, a in in_pairs}
        out_axis = {id(st): a for st, a in out_only}
        mapping = _Mapping(self, args, leaves, treedef, in_pairs)
        entry = self._trace_lane(mapping, mapping.n, in_pairs, bool(out_only))
        states = entry.states
        split = _lane_split(states, in_axis.keys() | out_axis.keys())
        state_in_axes = [in_axis.get(id(st)) for st in states]
        for i in split:
            state_in_axes[i] = 0
        w_axes, rebind, undeclared = [], [], []
        for j, i in enumerate(entry.write_idx):
            st = states[i]
            if id(st) in in_axis:
                w_axes.append(in_axis[id(st)])
            elif id(st) in out_axis:
                w_axes.append(out_axis[id(st)])
                rebind.append(j)
            elif i in split:
                w_axes.append(0)  # per-lane keys, replaced by the advanced key (_with_lane_keys)
            else:
                w_axes.append(None)
                undeclared.append(j)
        placeholders = {i: self._fresh[id(st)][1] for i, st in enumerate(states)
                        if id(st) in self._fresh}
        pure, in_axes, vkw, flags = _build(self, entry, mapping, leaves, state_in_axes,
                                           probe=bool(undeclared), extra_out=False, split=split,
                                           placeholders=placeholders)
        if undeclared:
            for j in undeclared:
                if flags[0][j]:
                    w_axes[j] = self._on_undeclared_write(entry.write_states[j])
                    rebind.append(j)
        run, extra = _with_lane_keys(
            self._map(pure, in_axes, (self.out_axes, w_axes), vkw),
            split, mapping.n, entry.write_idx)
        # every declared state is watched: one re-bound to a batch of keys must re-plan
        watch = list(states) + [st for st, _ in self._in_pairs + self._out_only]
        write_states = tuple(entry.write_states) + tuple(states[i] for i in extra)
        return _Plan(states, write_states, rebind, jax.jit(run), watch)


@overload
def vmap(fn: Callable, *, in_axes: Any = 0, out_axes: Any = 0,
         axis_name: Hashable | None = None, axis_size: int | None = None,
         spmd_axis_name: Any = None, in_states: Any = None,
         out_states: Any = None) -> VmappedFunction: ...
@overload
def vmap(fn: Missing = ..., *, in_axes: Any = 0, out_axes: Any = 0,
         axis_name: Hashable | None = None, axis_size: int | None = None,
         spmd_axis_name: Any = None, in_states: Any = None,
         out_states: Any = None) -> Callable[[Callable], VmappedFunction]: ...
def vmap(fn: Any = _Missing, *, in_axes: Any = 0, out_axes: Any = 0,
         axis_name: Hashable | None = None, axis_size: int | None = None,
         spmd_axis_name: Any = None, in_states: Any = None, out_states: Any = None) -> Any:
    """Vectorise a function that reads and writes states over a mapped axis.

    Arguments are mapped as by :func:`jax.vmap`. States take part by declaration:

    - a state in ``in_states`` (at axis ``a``) reads as its per-lane slice inside the function
      (axis ``a`` removed) and, if written, is written back stacked along axis ``a``;
    - a state only in ``out_states`` (at axis ``b``) reads whole and, if written, gains the
      mapped axis at ``b`` (its signature is re-bound to the batched shape);
    - an undeclared state that is only read is broadcast to every lane; one written with a value
      that is the same in every lane keeps that value; one written with a value that differs
      across lanes raises :class:`BatchAxisError`;
    - an undeclared :class:`brainstate.random.RandomState` (``brainstate.random.DEFAULT``
      included) is split per lane, so each lane draws an independent stream: the call behaves
      as if ``lanes = rng.split_key(n)`` ran first and lane ``i`` drew from ``lanes[i]``. The
      state's key advances exactly once per call (to the key ``split_key`` leaves), lanes are
      reproducible from the seed, and the split happens inside the compiled computation.
      To opt out, make the state hold one key per lane (``rng.self_assign_multi_keys(n)``, or
      keys of your choosing, identical ones for identical lanes) and declare it in
      ``in_states``: it is then mapped and written back like any declared state. A declared
      random state that holds a single key has no axis to map and is split as above.

    The function is traced once per abstract call signature (per lane); later calls run one
    compiled computation.

    Parameters
    ----------
    fn : callable
        The function. Call-time keyword arguments are not supported.
    in_axes : int, None or tuple
        As :func:`jax.vmap`: one entry (or pytree prefix) per positional argument.
    out_axes : int, None or pytree
        Where the mapped axis goes in the output (as :func:`jax.vmap`).
    axis_name : hashable, optional
        Name of the mapped axis for collectives (``jax.lax.psum`` ...).
    axis_size : int, optional
        The mapped axis size; required when nothing is mapped.
    spmd_axis_name : optional
        Passed to :func:`jax.vmap`.
    in_states, out_states : optional
        ``{axis: {name: State}}``, a single State, or any pytree/iterable of States (all at
        axis 0), e.g. ``model.states()``. A state in both must use the same axis.

    Returns
    -------
    VmappedFunction or decorator
        The mapped function (a decorator when ``fn`` is omitted).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> counter = brainstate.State(jnp.zeros(3))
    >>> @brainstate.transform.vmap(in_states=counter)
    ... def add(x):
    ...     counter.value = counter.value + x
    ...     return counter.value * 2
    >>> add(jnp.asarray([1., 2., 3.]))
    Array([2., 4., 6.], dtype=float32)
    >>> counter.value
    Array([1., 2., 3.], dtype=float32)
    """
    def make(f: Callable) -> VmappedFunction:
        return VmappedFunction(f, in_axes=in_axes, out_axes=out_axes, axis_name=axis_name,
                               axis_size=axis_size, spmd_axis_name=spmd_axis_name,
                               in_states=in_states, out_states=out_states)

    return make if isinstance(fn, Missing) else make(fn)


# --- vmap_new_states -------------------------------------------------------------------------


class VmapNewStatesFunction(_Engine):
    """The callable ``vmap_new_states`` returns (every call traces: it creates new states)."""

    __module__ = "brainstate.transform"

    def __init__(self, fun: Callable, *, in_axes: Any, out_axes: Any, axis_name: Any,
                 axis_size: Any, spmd_axis_name: Any, state_tag: str | None,
                 state_to_exclude: Any) -> None:
        super().__init__(fun, in_axes, out_axes, axis_name, axis_size, spmd_axis_name,
                         "vmap_new_states")
        self.state_tag = state_tag
        self.state_to_exclude = state_to_exclude
        functools.update_wrapper(self, fun, updated=())

    def __repr__(self) -> str:
        return f"VmapNewStatesFunction({getattr(self.origin_fun, '__name__', self.origin_fun)!r})"

    def _new_state_axis(self, st: State, excluded: bool) -> int | None:
        """Output axis of a new state (hook); None keeps one lane-independent value."""
        return None if (excluded or _no_batching(st)) else 0

    def _unbatched_new_state_error(self, st: State) -> BatchAxisError:
        """The error for a new state given no axis whose value differs across lanes (hook)."""
        return BatchAxisError(
            f"{describe_state(st)} is created inside vmap_new_states with a value that differs "
            "across the mapped axis, but it is a NonBatchState or tagged 'INIT_NO_BATCHING', "
            "so it must hold one value for all lanes. Make its value independent of the "
            "mapped inputs, or use a batched state type."
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise NotImplementedError(
                "brainstate.transform.vmap_new_states does not support keyword arguments at "
                f"call time (got {sorted(kwargs)}). Pass them positionally or bind them with "
                "functools.partial."
            )
        leaves, treedef = jax.tree_util.tree_flatten(args)
        for leaf in leaves:
            _key(leaf)  # refuses States in the arguments
        mapping = _Mapping(self, args, leaves, treedef, ())
        box: dict = {}
        fun, tag, exclude = self.origin_fun, self.state_tag, self.state_to_exclude

        def per_lane(*a):
            with catch_new_states() as every, \
                    catch_new_states(tag, exclude) as caught:
                out = fun(*a)
            new = [st for st in every.get_states() if st._value is not _core.INVALID]
            box["new"] = new
            box["excluded"] = [st not in caught for st in new]
            return out, [st._value for st in new]

        # A fresh trace every call: the states it creates are new each time, never cached.
        sf = StatefulFunction(per_lane, name="vmap_new_states",
                              axis_env=self._axis_env(mapping.n))
        _, lane_leaves, lane_tree = sf.key_and_leaves(mapping.lane_args, {})
        try:
            entry = sf.trace(mapping.lane_args, {}, lane_leaves, lane_tree)
        except BaseException:
            for st in box.get("new", ()):
                st._recapture_trace()
            raise
        new, excluded = box["new"], box["excluded"]
        states = entry.states
        try:
            split = _lane_split(states, ())
        except BaseException:
            for st in new:
                st._recapture_trace()
            raise
        state_in_axes = [0 if i in split else None for i in range(len(states))]
        # pre-existing states are never batched here, except split random states' lane keys
        w_axes = [0 if i in split else None for i in entry.write_idx]
        new_axes = [self._new_state_axis(st, ex) for st, ex in zip(new, excluded)]
        need_probe = bool(entry.write_idx) or any(a is None for a in new_axes)
        try:
            pure, in_axes, vkw, flags = _build(self, entry, mapping, leaves, state_in_axes,
                                               probe=need_probe, extra_out=True, split=split)
            if need_probe:
                w_flags, new_flags = flags
                for st, batched, i in zip(entry.write_states, w_flags, entry.write_idx):
                    if batched and i not in split:
                        raise _undeclared_error(st, new_states=True)
                for j, (st, ex) in enumerate(zip(new, excluded)):
                    if new_flags[j] and new_axes[j] is None:
                        if ex:
                            new_axes[j] = 0  # computed but dropped: the state stays poisoned
                        else:
                            raise self._unbatched_new_state_error(st)
            run, extra = _with_lane_keys(
                self._map(pure, in_axes, (self.out_axes, w_axes, new_axes), vkw),
                split, mapping.n, entry.write_idx)
            out, written, new_vals = jax.jit(run)(leaves, _core.gather(states))
        except BaseException:
            for st in new:
                st._recapture_trace()
            raise
        write_states = tuple(entry.write_states) + tuple(states[i] for i in extra)
        if write_states:
            _core.scatter(write_states, written)
        for j, (st, v) in enumerate(zip(new, new_vals)):
            if not (excluded[j] and new_axes[j] is not None):
                st._restore_rebind(v)
            # Unwind: created inside our trace, they are ordinary outer-scope states now.
            st._recapture_trace()
        return out


def vmap_new_states(fun: Any = _Missing, *, in_axes: Any = 0, out_axes: Any = 0,
                    axis_name: Hashable | None = None, axis_size: int | None = None,
                    spmd_axis_name: Any = None, state_tag: str | None = None,
                    state_to_exclude: Any = None, in_states: Any = None,
                    out_states: Any = None) -> Any:
    """Vectorise *state creation*: states created inside get a leading batch axis.

    Each call runs ``fun`` once per lane (as :func:`vmap`); every state it creates ends up
    holding the stacked per-lane values, shape ``(n, *per_lane)`` (its signature is re-bound),
    except :class:`~brainstate._state.NonBatchState`\\ s and states tagged
    ``'INIT_NO_BATCHING'``, which keep one (lane-independent) value. New states are ordinary
    outer-scope states after the call. Pre-existing states follow :func:`vmap`'s rules for
    undeclared states: in particular a random state used to initialise the new states (e.g.
    ``brainstate.random.normal`` from ``DEFAULT``) is split per lane, so each lane is
    initialised with its own draw, and its key advances once per call.

    Parameters
    ----------
    fun : callable
        The function creating states. Call-time keyword arguments are not supported.
    in_axes, out_axes, axis_name, axis_size, spmd_axis_name
        As :func:`vmap`; ``axis_size`` must be positive.
    state_tag : str, optional
        Tag added to every new state.
    state_to_exclude : filter, optional
        New states matching it are left out: they keep their per-lane value when it is the
        same in every lane, and are otherwise unusable after the call (as states created inside
        any traced function).
    in_states, out_states
        Not supported here (``ValueError``): use :func:`vmap` for existing states.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> made = []
    >>> @brainstate.transform.vmap_new_states(axis_size=4)
    ... def init():
    ...     made.append(brainstate.HiddenState(jnp.zeros(2)))
    >>> init()
    >>> made[0].value.shape
    (4, 2)
    """
    if in_states is not None or out_states is not None:
        raise ValueError(
            "vmap_new_states does not take in_states/out_states: it batches the states the "
            "function creates. Map existing states with brainstate.transform.vmap(in_states=..., "
            "out_states=...)."
        )
    if axis_size is not None and (isinstance(axis_size, bool) or not isinstance(axis_size, int)
                                  or axis_size <= 0):
        raise ValueError(f"vmap_new_states axis_size must be a positive int, got {axis_size!r}.")

    def make(f: Callable) -> VmapNewStatesFunction:
        return VmapNewStatesFunction(f, in_axes=in_axes, out_axes=out_axes,
                                     axis_name=axis_name, axis_size=axis_size,
                                     spmd_axis_name=spmd_axis_name, state_tag=state_tag,
                                     state_to_exclude=state_to_exclude)

    return make if isinstance(fun, Missing) else make(fun)
