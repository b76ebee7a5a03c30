"""``StatefulMapping``: per call signature, probe the function, resolve the selectors into
explicit ``(state, axis)`` declarations, and run ``vmap``'s engine with them (cached, redone
when a touched state is re-bound)."""

from __future__ import annotations

import functools
import os
import sys
import threading
import types
import warnings
import weakref
from collections import OrderedDict
from typing import Any, Callable, Hashable

import jax
import jax.numpy as jnp

from brainstate._error import BatchAxisError
from brainstate._impl import core as _core
from brainstate._messages import describe_state
from brainstate._state import State
from brainstate.transform._make_jaxpr import _hashable
from brainstate.transform._mapping_axes import (
    _holds_n,
    _match,
    _rules,
    _sig_now,
    _single_key,
    _view_of,
    _without_axis,
)
from brainstate.transform._mapping_probe import _lane_args, _probe, _Probed
from brainstate.transform._vmap import (
    VmappedFunction, _check_in_axes, _sds, _Watched, call_key,
)

__all__ = ["StatefulMapping"]

_MAX_CACHE = 128
_POLICIES = ("auto", "raise", "warn", "ignore")


_TRANSFORM_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_stacklevel() -> int:
    """``stacklevel`` for a warning issued by the caller: its first frame outside the package's
    transforms (the user's call of the mapped function, not the engine)."""
    frame: types.FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_TRANSFORM_DIR):
        frame, level = frame.f_back, level + 1
    return level


# --- the engine -----------------------------------------------------------------------------


def _map_with_dummy(custom_map: Callable, fn: Callable, in_axes: tuple, out_axes: Any,
                    axis_name: Any, n: int, kw: dict) -> Callable:
    """``custom_map`` of ``fn(d, s)`` when no input is mapped.

    Primitives such as :func:`jax.pmap` need one mapped argument to size the axis, so an
    ignored one of size ``n`` is fed.
    """
    mapped = custom_map(lambda d, s, _: fn(d, s), in_axes=in_axes + (0,), out_axes=out_axes,
                        axis_name=axis_name, axis_size=n, **kw)
    return lambda d, s: mapped(d, s, jnp.zeros((n,), jnp.int32))


class _Engine(VmappedFunction):
    """``vmap``'s engine with resolved declarations, a policy and a mapping primitive."""

    _in_word = "state_in_axes"
    _out_word = "state_out_axes"

    def __init__(self, fun: Callable, owner: "StatefulMapping", in_axes: Any,
                 in_pairs: list, out_only: list, pinned: list, fresh: list,
                 pure: set) -> None:
        super().__init__(fun, in_axes=in_axes, out_axes=owner.out_axes,
                         axis_name=owner.axis_name, axis_size=owner.axis_size,
                         spmd_axis_name=owner._spmd_axis_name, in_states=None, out_states=None)
        self._name = owner._what
        self._in_pairs, self._out_only = in_pairs, out_only
        self._pinned = frozenset(id(st) for st in pinned)
        self._fresh = {id(st): (st, view) for st, view in fresh}
        self._pure = pure
        # read whole and written with the mapped axis added: recorded after the call, so the
        # next resolution refuses to add another axis (StatefulMapping._regrown)
        self.grows = [st for st, _ in out_only if id(st) not in pure]
        self._owner = owner

    def _on_undeclared_write(self, st: State) -> int:
        owner, what = self._owner, self._owner._what
        if id(st) in self._pinned:
            raise BatchAxisError(
                f"{describe_state(st)} is selected by state_out_axes at None (one value for all "
                f"lanes), but {what} wrote it with a value that differs across the mapped "
                "axis. Make the written value lane-independent, or select the state at an "
                "integer axis in state_out_axes."
            )
        policy = owner.unexpected_out_state_mapping
        if policy == "raise":
            raise BatchAxisError(
                f"{describe_state(st)} was written inside {what} with a value that differs "
                "across the mapped axis, but no state_out_axes selector covers it and "
                "unexpected_out_state_mapping='raise'. Select it in state_out_axes (it gains "
                "the mapped axis: one value per lane), in state_in_axes (mapped on input and "
                "written back along the same axis), or use unexpected_out_state_mapping='auto'."
            )
        if id(st) not in self._pure:
            if owner._regrown(st):
                raise owner._regrown_error(st, 0, None)
            self.grows.append(st)
        if policy == "warn":
            warnings.warn(
                f"{describe_state(st)} was written inside {what} with a value that differs "
                "across the mapped axis but no state_out_axes selector covers it; it now keeps "
                "one value per lane (the mapped axis added at 0). Select it in state_out_axes "
                "or state_in_axes to silence this warning.",
                UserWarning, stacklevel=_user_stacklevel(),
            )
        return 0

    def _map(self, fn: Callable, in_axes: Any, out_axes: Any, vkw: dict) -> Callable:
        owner = self._owner
        if owner._custom_map is None:
            return super()._map(fn, in_axes, out_axes, vkw)
        n = vkw["axis_size"]
        kw = dict(owner.mapping_kwargs)
        if any(a is not None for a in jax.tree_util.tree_leaves(in_axes)):
            return owner._custom_map(fn, in_axes=in_axes, out_axes=out_axes,
                                     axis_name=vkw["axis_name"], axis_size=n, **kw)
        return _map_with_dummy(owner._custom_map, fn, in_axes, out_axes, vkw["axis_name"], n,
                               kw)


class _Resolved(_Watched):
    """One call signature's resolution: the engine and the states it was resolved from."""

    __slots__ = ("engine", "avals")

    def __init__(self, engine: _Engine, watch: list) -> None:
        super().__init__(watch)
        self.engine = engine
        self.avals: list | None = None  # the argument leaves' abstract values (inspection)


def _as_tuple(x: Any, what: str, kind: type) -> tuple:
    if x is None:
        return ()
    if isinstance(x, kind) and not isinstance(x, bool):
        return (x,)
    out = tuple(x)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, kind):
            raise TypeError(f"{what} entries must be {kind.__name__}s, got {v!r}.")
    return out


class StatefulMapping:
    """A function mapped over an axis, with the states it touches mapped by selectors.

    Arguments are mapped as by :func:`jax.vmap` (keyword arguments at axis 0, unless named
    in ``static_argnames``). States take part by selection:

    - a state an ``state_in_axes`` selector matches at axis ``a`` reads as its per-lane slice
      (axis ``a`` removed) and, if written, is written back stacked along ``a``;
    - a written state a ``state_out_axes`` selector matches at axis ``b`` (and no in-selector)
      reads whole and gains the mapped axis at ``b`` (its signature is re-bound); but when
      the function writes it without using its prior value and the per-lane value written
      already has the state's shape with axis ``b`` removed, it is written back in place along
      ``b`` when it holds the mapped size along ``b`` (it keeps its shape: a per-lane output
      across repeated calls), and re-bound to the new size otherwise (a call with another
      batch size); a state read whole, written and given the mapped axis by an earlier call
      is refused (``BatchAxisError``) rather than given a second axis: select it in
      ``state_in_axes`` too to read and write it per lane;
    - a state selected at ``None`` (in or out) is broadcast: read whole, and when written it
      must receive the same value in every lane (``BatchAxisError`` otherwise);
    - any other state is broadcast when read; written with a value that is the same in every
      lane it keeps that value; written with a lane-dependent value it follows
      ``unexpected_out_state_mapping`` (under the non-raising policies the in-place rule
      above applies at axis 0);
    - a :class:`brainstate.random.RandomState` holding one key is split per lane (each lane
      draws an independent stream, the key advancing once per call), as :func:`vmap` does;
      one holding a batch of keys and selected by ``state_in_axes`` is mapped like any state.

    Parameters
    ----------
    fun : callable
        The function; it may read and write any state it can reach.
    in_axes : int, None or tuple
        As :func:`jax.vmap`; a tuple has one entry per positional argument, static ones
        included (their entry is ignored).
    out_axes : int, None or pytree
        Where the mapped axis goes in the output.
    state_in_axes, state_out_axes : dict, selector or None
        ``{axis: selector}`` (axis an int or None), or one selector meaning axis 0. A
        selector is a filter (a State class, a tag string, ``...``, a predicate
        ``(path, state) -> bool``, see :func:`brainstate.util.filter.to_predicate`), a State,
        a collection of States (``model.states()``), or a list mixing them.
    unexpected_out_state_mapping : {'auto', 'raise', 'warn', 'ignore'}
        What happens to a state no selector covers that is written with a lane-dependent
        value: ``'raise'`` raises :class:`BatchAxisError`; ``'auto'`` and ``'ignore'`` keep one
        value per lane (the state gains the mapped axis at 0 and is re-bound); ``'warn'`` does
        the same and warns.
    static_argnums, static_argnames : int/str or sequences of them
        Arguments passed as Python values: hashed into the cache key, neither traced nor
        mapped.
    axis_env, return_only_write
        Accepted for compatibility; not used.
    axis_size : int, optional
        The mapped axis size; required when nothing is mapped.
    axis_name : hashable, optional
        Name of the mapped axis for collectives (``jax.lax.psum`` ...).
    name : str, optional
        A display name (used in error messages).
    mapping_fn : callable
        The mapping primitive, called as ``mapping_fn(f, in_axes=..., out_axes=...,
        axis_name=..., axis_size=..., **mapping_kwargs)``; :func:`jax.vmap` by default.
    mapping_kwargs : dict, optional
        Extra keywords of ``mapping_fn`` (for :func:`jax.vmap`: ``spmd_axis_name`` only).

    Raises
    ------
    BatchAxisError
        A state selected at two different axes, mapped at one axis on input and another on
        output, written with lane-dependent values where one value is required, or read
        whole and written again after an earlier call gave it the mapped axis.
    ValueError
        Inconsistent or undeterminable mapped sizes, an axis out of a value's rank, an
        unknown ``unexpected_out_state_mapping``.

    Notes
    -----
    The function is traced twice on a cold call (a probe that finds the touched states, then
    the per-lane trace that is compiled) and not at all on a warm call. The selection is
    redone when a touched state is re-bound. Like :func:`jit`, a warm call does not notice
    states the function would reach only now (created since and reached through Python
    containers); call :meth:`clear_cache` after changing what the function touches. States
    created inside the function are local to each call.

    Differs from upstream:

    - a state matching selectors at two integer axes raises instead of taking the first;
      ``None`` wins over integer axes (an explicit broadcast);
    - ``'auto'`` does not guess that an undeclared read-modify-write state whose leading size
      equals the mapped size is per-lane (upstream feeds it per lane then, and scatters it
      otherwise): the prior value is read whole, and the state gains the axis; select it in
      ``state_in_axes`` to map it. All three non-raising policies put the lane axis at 0;
    - a state selected by ``state_out_axes`` gains the axis whenever it is written, not only
      when the written value happens to depend on the lane;
    - random states holding a batch of keys can be mapped (selected by ``state_in_axes``);
    - ``unexpected_out_state_mapping`` is validated when the mapping is built;
    - a read-modify-write state given the mapped axis by an earlier call (selected by
      ``state_out_axes`` only, or by no selector under a non-raising policy) raises
      :class:`BatchAxisError` on the next call instead of gaining one more axis per call.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> counter = brainstate.ShortTermState(jnp.zeros(3))
    >>> def accumulate(x):
    ...     counter.value = counter.value + x
    ...     return counter.value
    >>> f = brainstate.transform.StatefulMapping(
    ...     accumulate, state_in_axes={0: brainstate.ShortTermState})
    >>> f(jnp.asarray([1., 2., 3.]))
    Array([1., 2., 3.], dtype=float32)
    >>> counter.value
    Array([1., 2., 3.], dtype=float32)
    """

    __module__ = "brainstate.transform"

    def __init__(self, fun: Callable, in_axes: Any = 0, out_axes: Any = 0,
                 state_in_axes: Any = None, state_out_axes: Any = None,
                 unexpected_out_state_mapping: str = "auto", static_argnums: Any = (),
                 static_argnames: Any = (), axis_env: Any = None,
                 return_only_write: bool = True, axis_size: int | None = None,
                 axis_name: Hashable | None = None, name: str | None = None,
                 mapping_fn: Callable = jax.vmap, mapping_kwargs: dict | None = None) -> None:
        if not callable(fun):
            raise TypeError(f"StatefulMapping needs a callable, got {type(fun).__name__}.")
        if unexpected_out_state_mapping not in _POLICIES:
            raise ValueError(
                f"unexpected_out_state_mapping must be one of {_POLICIES}, got "
                f"{unexpected_out_state_mapping!r}."
            )
        if axis_size is not None and (isinstance(axis_size, bool) or not isinstance(axis_size, int)
                                      or axis_size < 0):
            raise ValueError(f"axis_size must be a non-negative int or None, got {axis_size!r}.")
        if not callable(mapping_fn):
            raise TypeError(f"mapping_fn must be callable, got {mapping_fn!r}.")
        self.origin_fun = fun
        self.name = name
        self.in_axes = _check_in_axes(in_axes)
        self.out_axes = tuple(out_axes) if isinstance(out_axes, list) else out_axes
        self._in_rules = _rules(state_in_axes, "state_in_axes")
        self._out_rules = _rules(state_out_axes, "state_out_axes")
        self.state_in_axes = dict(self._in_rules)
        self.state_out_axes = dict(self._out_rules)
        self.unexpected_out_state_mapping = unexpected_out_state_mapping
        self.static_argnums = _as_tuple(static_argnums, "static_argnums", int)
        self.static_argnames = _as_tuple(static_argnames, "static_argnames", str)
        self.axis_env = axis_env  # compatibility only: the axis comes from axis_name/size
        self.return_only_write = return_only_write  # compatibility only
        self.axis_size = axis_size
        self.axis_name = axis_name
        self.mapping_fn = mapping_fn
        self.mapping_kwargs = dict(mapping_kwargs or {})
        if mapping_fn is jax.vmap:
            extra = set(self.mapping_kwargs) - {"spmd_axis_name"}
            if extra:
                raise TypeError(
                    f"mapping_kwargs {sorted(extra)} are not keywords of jax.vmap here; only "
                    "spmd_axis_name is (in_axes, out_axes, axis_name and axis_size have their "
                    "own parameters)."
                )
            self._spmd_axis_name = self.mapping_kwargs.get("spmd_axis_name")
            self._custom_map = None
        else:
            self._spmd_axis_name = None
            self._custom_map = mapping_fn
        self._what = name or "StatefulMapping"
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.RLock()
        # id -> (weak ref, signature it was left with) of states this mapping read whole and
        # re-bound with the mapped axis added (see _regrown)
        self._grown: dict = {}
        functools.update_wrapper(self, fun, updated=())

    def __repr__(self) -> str:
        return f"StatefulMapping({getattr(self.origin_fun, '__name__', self.origin_fun)!r})"

    def clear_cache(self) -> None:
        """Drop every resolution and compiled computation."""
        with self._lock:
            self._cache.clear()

    # --- calling ---

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs or self.static_argnums:
            return self._call_general(args, kwargs)
        leaves, treedef = jax.tree_util.tree_flatten(args)
        key = call_key(treedef, leaves)
        res = self._lookup(key)
        if res is None:
            res = self._resolve(key, self.origin_fun, args, self.in_axes)
        out = res.engine._call_flat(args, leaves, treedef, key)
        if res.engine.grows:
            self._note_grown(res.engine.grows)
        return out

    def _lookup(self, key: Any) -> _Resolved | None:
        res = self._cache.get(key)  # lock-free hit: dict reads are atomic under the GIL
        if res is not None and res.epoch == _core.rebind_epoch():
            return res
        with self._lock:
            res = self._cache.get(key)
            if res is not None:
                if res.epoch != _core.rebind_epoch() and not res.still_valid():
                    del self._cache[key]
                    return None
                self._cache.move_to_end(key)
        return res

    def _call_general(self, args: tuple, kwargs: dict) -> Any:
        """Static arguments are closed over; dynamic keywords become one argument at axis 0."""
        call_args, leaves, treedef, key, res = self._prepare(args, kwargs)
        out = res.engine._call_flat(call_args, leaves, treedef, key)
        if res.engine.grows:
            self._note_grown(res.engine.grows)
        return out

    def _prepare(self, args: tuple, kwargs: dict) -> tuple:
        """``(call_args, leaves, treedef, key, resolution)`` of a call (resolved if new)."""
        if not (kwargs or self.static_argnums):
            leaves, treedef = jax.tree_util.tree_flatten(args)
            key: tuple = call_key(treedef, leaves)
            res: _Resolved | None = (self._lookup(key)
                                     or self._resolve(key, self.origin_fun, args, self.in_axes))
            return args, leaves, treedef, key, res
        n = len(args)
        static_pos = set()
        for i in self.static_argnums:
            j = i + n if i < 0 else i
            if not 0 <= j < n:
                raise ValueError(
                    f"static_argnums={self.static_argnums} refers to positional argument {i}, "
                    f"but {self._what} was called with {n} positional arguments."
                )
            static_pos.add(j)
        in_axes = self.in_axes
        if isinstance(in_axes, tuple) and len(in_axes) != n:
            raise ValueError(
                f"{self._what} in_axes has {len(in_axes)} entries but the function was called "
                f"with {n} positional arguments; give one entry per argument (static ones "
                "included, None to broadcast one)."
            )
        static_vals = {i: args[i] for i in sorted(static_pos)}
        dyn = tuple(a for i, a in enumerate(args) if i not in static_pos)
        static_kw = {k: v for k, v in kwargs.items() if k in self.static_argnames}
        dyn_kw = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        if isinstance(in_axes, tuple):
            axes = tuple(a for i, a in enumerate(in_axes) if i not in static_pos)
        else:
            axes = (in_axes,) * len(dyn)
        call_args = dyn + ((dyn_kw,) if dyn_kw else ())
        call_axes = axes + ((0,) if dyn_kw else ())
        leaves, treedef = jax.tree_util.tree_flatten(call_args)
        static_key = (n, tuple((i, _hashable(v)) for i, v in static_vals.items()),
                      tuple(sorted((k, _hashable(v)) for k, v in static_kw.items())),
                      bool(dyn_kw))
        key = (*call_key(treedef, leaves), static_key)
        res = self._lookup(key)
        if res is None:
            fun, has_kw = self.origin_fun, bool(dyn_kw)

            def bound(*a: Any) -> Any:
                kw = a[-1] if has_kw else {}
                it = iter(a[:-1] if has_kw else a)
                full = [static_vals[i] if i in static_vals else next(it) for i in range(n)]
                return fun(*full, **kw, **static_kw)

            res = self._resolve(key, bound, call_args, call_axes)
        return call_args, leaves, treedef, key, res

    # --- inspection ---

    def get_arg_cache_key(self, *args: Any, compile_if_miss: bool = False, **kwargs: Any) -> Any:
        """The cache key of a call with these arguments.

        With ``compile_if_miss`` the call is resolved and traced (nothing runs, no state
        changes) when it is not cached yet, so :meth:`get_jaxpr_by_cache` can answer.
        """
        if not compile_if_miss:
            return self._key_only(args, kwargs)
        call_args, leaves, treedef, key, res = self._prepare(args, kwargs)
        engine = res.engine
        if engine._lookup_plan(key) is None:
            plan = engine._plan(call_args, leaves, treedef)
            with engine._lock:
                engine._cache[key] = plan
        return key

    def _key_only(self, args: tuple, kwargs: dict) -> Any:
        if not (kwargs or self.static_argnums):
            leaves, treedef = jax.tree_util.tree_flatten(args)
            return call_key(treedef, leaves)
        # the general key needs the static/dynamic split: resolve, which traces but runs nothing
        return self._prepare(args, kwargs)[3]

    def get_jaxpr_by_cache(self, cache_key: Any) -> Any:
        """The jaxpr of the compiled mapped computation cached under ``cache_key``.

        Its inputs are the call's argument leaves, then the values of the states it touches;
        its outputs are the result, then the written states' values.

        Raises
        ------
        ValueError
            Nothing is cached under the key: call the mapped function with those arguments
            first, or get the key with ``compile_if_miss=True``.
        """
        res = self._cache.get(cache_key)
        plan = res.engine._cache.get(cache_key) if res is not None else None
        if res is None or plan is None or res.avals is None:
            raise ValueError(
                f"{self._what} has no traced computation for this cache key. Call it with "
                "those arguments first, or get the key with "
                "get_arg_cache_key(..., compile_if_miss=True)."
            )
        state_avals = [jax.tree_util.tree_map(_sds, st._value) for st in plan.states]
        return jax.make_jaxpr(plan.compiled)(res.avals, state_avals)

    def get_jaxpr(self, *args: Any, compile_if_miss: bool = True, **kwargs: Any) -> Any:
        """The jaxpr of the mapped computation for these arguments (traced if needed)."""
        key = self.get_arg_cache_key(*args, compile_if_miss=compile_if_miss, **kwargs)
        return self.get_jaxpr_by_cache(key)

    def _note_grown(self, states: list) -> None:
        with self._lock:
            for st in states:
                try:
                    ref = weakref.ref(st)
                except TypeError:  # not weak-referenceable: not tracked
                    continue
                self._grown[id(st)] = (ref, st._signature)

    def _regrown(self, st: State) -> bool:
        """Whether ``st`` still holds what this mapping left in it after reading it whole and
        adding the mapped axis: reading it whole again would add a second axis."""
        rec = self._grown.get(id(st))
        return rec is not None and rec[0]() is st and st._signature == rec[1]

    def _regrown_error(self, st: State, axis: int, how: str | None) -> BatchAxisError:
        cover = (f"selected by state_out_axes at axis {axis} only" if how
                 else "covered by no selector")
        return BatchAxisError(
            f"{describe_state(st)} is read and written inside {self._what}, {cover}: an earlier "
            f"call read its value whole and gave it the mapped axis at {axis} (one value per "
            "lane), and reading it whole again would add a second mapped axis. Select it in "
            f"state_in_axes={{{axis}: ...}}{' as well' if how else ''}, so that it is read per lane and written "
            "back along the same axis, or reset it to one value (inside "
            "brainstate.check_state_value_tree(False)) before calling again."
        )

    # --- resolution ---

    def _declarations(self, pr: _Probed, n: int | None) -> tuple[list, list, list, list]:
        """(in pairs, out-only pairs, states that must keep one value, fresh views) from the
        probe; ``n`` is the mapped size (None if the mapped states alone decide it)."""
        in_pairs, out_only, pinned, fresh = [], [], [], []
        for st, w in zip(pr.states, pr.written):
            in_axis = pr.axes.get(id(st))
            matched, out_axis = _match(st, self._out_rules, "state_out_axes")
            if in_axis is not None:
                if matched and out_axis is not None and out_axis != in_axis:
                    raise BatchAxisError(
                        f"{describe_state(st)} is mapped at axis {in_axis} by state_in_axes but "
                        f"at axis {out_axis} by state_out_axes. A state mapped on input is "
                        "written back along the same axis; select it at one axis."
                    )
                in_pairs.append((st, in_axis))
                continue
            if not w or _single_key(st):
                continue
            if _match(st, self._in_rules, "state_in_axes")[0] or (matched and out_axis is None):
                pinned.append(st)  # selected at None: broadcast, one value for all lanes
                continue
            if not matched:
                if self.unexpected_out_state_mapping == "raise":
                    continue
                out_axis = 0
            assert out_axis is not None  # unmatched got 0 just above; matched at None is pinned
            lane_sig = pr.lane_sigs.get(id(st))
            if id(st) in pr.pure and lane_sig == _without_axis(st, out_axis):
                if _holds_n(st, out_axis, n):
                    # Written without reading its prior value, per lane, and it already holds
                    # one value per lane along out_axis: written back in place (same shape).
                    in_pairs.append((st, out_axis))
                else:
                    # Shaped for another mapped size: its prior value is unused, so it is
                    # re-bound to this call's n values along out_axis.
                    out_only.append((st, out_axis))
                    assert lane_sig is not None  # every written state has its lane signature
                    fresh.append((st, _view_of(lane_sig)))
            elif matched:
                if id(st) not in pr.pure and self._regrown(st):
                    raise self._regrown_error(st, out_axis, "out")
                out_only.append((st, out_axis))
                if id(st) in pr.pure and lane_sig is not None and lane_sig != _sig_now(st):
                    fresh.append((st, _view_of(lane_sig)))  # written with another shape
        return in_pairs, out_only, pinned, fresh

    def _resolve(self, key: Any, fun: Callable, args: tuple, in_axes: Any) -> _Resolved:
        lanes, treedef, sizes = _lane_args(args, in_axes, self._what)
        n = sizes[0] if sizes else (self.axis_size if self.axis_size is not None else 1)
        env = None if self.axis_name is None else [(self.axis_name, n)]
        pr = _probe(fun, lanes, treedef, self._in_rules, env, self._what)
        if env is not None and not sizes and self.axis_size is None and pr.axes:
            # the axis size comes from the mapped states: probe again with the named axis sized
            st = next(s for s in pr.states if id(s) in pr.axes)
            m = jax.tree_util.tree_leaves(st._value)[0].shape[pr.axes[id(st)]]
            if m != n:
                pr = _probe(fun, lanes, treedef, self._in_rules, [(self.axis_name, m)],
                            self._what)
        if sizes or self.axis_size is not None:
            size = n
        elif pr.axes:  # only the states mapped by state_in_axes size the axis
            st = next(s for s in pr.states if id(s) in pr.axes)
            size = jax.tree_util.tree_leaves(st._value)[0].shape[pr.axes[id(st)]]
        else:
            size = None
        in_pairs, out_only, pinned, fresh = self._declarations(pr, size)
        engine = _Engine(fun, self, in_axes, in_pairs, out_only, pinned, fresh, pr.pure)
        res = _Resolved(engine, pr.states)
        res.avals = [_sds(x) for x in jax.tree_util.tree_leaves(args)]
        with self._lock:
            self._cache[key] = res
            if len(self._cache) > _MAX_CACHE:
                self._cache.popitem(last=False)
        return res
