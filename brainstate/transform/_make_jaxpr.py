"""``StatefulFunction``: trace a function that reads and writes states into a pure jaxpr.

The function is traced once per cache key under a ``StateTraceStack`` whose ``new_arg`` turns
each pre-existing state met for the first time into a fresh input of the jaxpr being built
(``docs/concepts/trace-contexts.md``, "How a transform uses states"). The result is a closed
jaxpr of ``(dynamic args..., state values...)`` returning ``(out, written state values)``,
compiled once with ``jax.jit``; every call then gathers the tracked states' values, runs the
compiled function through JAX's C++ dispatch and scatters the written values back
(``brainstate._core.gather`` / ``scatter``).

Signatures of written states are checked at trace time, so the per-call path does not re-check
them: a compiled function's output avals are fixed when it is traced.

Arrays the function captures without receiving them (module attributes, closure variables) are
the closed jaxpr's ``consts``. When an entry is compiled, those larger than the threshold of
:func:`set_jit_const_threshold` become extra arguments of the compiled function, passed from the
entry at each call, instead of being embedded in the XLA program: compile time and program size
then do not grow with the data, and XLA does not specialise (and slow down) gathers on them. The
traced jaxpr itself is left as it is, so transforms nested inside an outer trace evaluate it
unchanged and its consts reach the outermost compiled call, which hoists them.
"""

from __future__ import annotations

import numbers
import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, jaxpr_as_fun

from brainstate._gc import gc_paused
from brainstate._jax_internals import jax_config as _jax_config
from brainstate._jax_internals import jax_core as _jax_core
from brainstate._jax_internals import source_info_util as _source_info_util
from brainstate._impl import core as _core
from brainstate._wiring import array_type as _array_type
from brainstate._state import State, catch_new_states
from brainstate._trace import StateTraceStack
from brainstate.transform._ir_optim import _pipeline, apply_ir_optimizations

__all__ = ["StatefulFunction", "make_jaxpr", "CacheKey", "get_jit_const_threshold",
           "set_jit_const_threshold"]

# Without making an array: that would start the backend at import.
_ARRAY_TYPE: type[jax.Array] = _array_type()
# ``.value`` of JAX's own config State: 30 ns, against 120 ns for jax.config.jax_disable_jit
# (a Python property lookup); read once per compiled call.
_DISABLE_JIT = _jax_config.disable_jit
# JAX's 64-bit flag (thread-local overrides included; ~40 ns to read): a trace made under one
# setting is wrong under the other (``jnp.ones(3)`` is float32 or float64), so it is in the key
_X64 = jax.enable_x64
_MAX_CACHE = 128
# 1 MiB: embedding costs ~5 ms of compile time per MiB (CPU, a gather) and each hoisted array
# ~1-2 us per call, so small arrays stay constants (which XLA may fold) and large ones move;
# the COBA network's indices (12-128 MiB) compile 2.5-5x slower embedded
# (bench/bench_jit_constants.py).
_DEFAULT_CONST_THRESHOLD = 1 << 20
_const_threshold: int | None = _DEFAULT_CONST_THRESHOLD


def set_jit_const_threshold(nbytes: int | None = _DEFAULT_CONST_THRESHOLD) -> None:
    """Set the size above which captured arrays become inputs of compiled programs.

    A function compiled by ``jit`` (and by ``grad``, ``for_loop``, ``scan``, ... inside it)
    may capture arrays it does not receive as arguments: module attributes, closure variables.
    Such an array with more than ``nbytes`` bytes is passed to the compiled program as an
    argument at each call instead of being embedded in it as a constant, so compile time and
    program size do not grow with the data. Smaller arrays stay constants, which XLA can fold.

    Parameters
    ----------
    nbytes : int or None
        The threshold in bytes (default 1 MiB = 1048576); an array is hoisted when its
        ``nbytes`` is strictly greater. ``0`` hoists every captured array, ``None`` none (every
        captured array is embedded, as ``jax.jit`` does).

    Raises
    ------
    TypeError
        If ``nbytes`` is not an integer or None (bools and floats are refused).
    ValueError
        If ``nbytes`` is negative.

    Notes
    -----
    The setting is process-wide and read when a traced function is first compiled; functions
    compiled before a change keep their split until their cache is cleared (``clear_cache()``).
    Differs from upstream: brainstate 0.5.4 always embeds captured arrays.

    Examples
    --------
    >>> import brainstate
    >>> brainstate.transform.set_jit_const_threshold(4 << 20)  # hoist arrays above 4 MiB
    >>> brainstate.transform.get_jit_const_threshold()
    4194304
    >>> brainstate.transform.set_jit_const_threshold()  # back to the default
    """
    global _const_threshold
    if nbytes is not None and (isinstance(nbytes, bool)
                               or not isinstance(nbytes, numbers.Integral)):
        raise TypeError(
            f"set_jit_const_threshold expects a size in bytes (an int) or None, got "
            f"{nbytes!r} ({type(nbytes).__name__}). Example: set_jit_const_threshold(1 << 20)."
        )
    if nbytes is not None and nbytes < 0:
        raise ValueError(
            f"set_jit_const_threshold expects a size in bytes >= 0, got {nbytes}. Use 0 to "
            "hoist every captured array, or None to embed them all."
        )
    _const_threshold = None if nbytes is None else int(nbytes)


def get_jit_const_threshold() -> int | None:
    """The size in bytes above which captured arrays become compiled-program inputs, or None.

    See :func:`set_jit_const_threshold`.
    """
    return _const_threshold


def _split_consts(closed: Any) -> tuple[tuple, tuple]:
    """``(indices, arrays)`` of the consts of ``closed`` to pass as arguments.

    Those are the concrete arrays above the threshold. A tracer of an enclosing trace (a
    transform traced inside another captures it as a const) stays where it is: it is no data
    of ours. Host arrays are put on the device once here, so calls do not transfer them again;
    an array whose type would change on the way (weak type) stays a constant.
    """
    limit = _const_threshold
    if limit is None:
        return (), ()
    idx, arrays = [], []
    for i, (var, c) in enumerate(zip(closed.jaxpr.constvars, closed.consts)):
        if isinstance(c, jax.core.Tracer) or not isinstance(c, (jax.Array, np.ndarray)) \
                or c.nbytes <= limit:
            continue
        a = c if isinstance(c, jax.Array) else jax.device_put(c)
        if jax.typeof(a) == var.aval:
            idx.append(i)
            arrays.append(a)
    return tuple(idx), tuple(arrays)


class CacheKey(NamedTuple):
    """The cache key of one call: static values and the abstract signature of dynamic ones."""

    static_args: tuple
    dyn_args: tuple
    static_kwargs: tuple
    dyn_kwargs: tuple


def _hashable(x: Any) -> Any:
    """A hashable stand-in for a static argument (lists -> tuples, dicts -> sorted items)."""
    if isinstance(x, (list, tuple)):
        return (type(x).__name__,) + tuple(_hashable(v) for v in x)
    if isinstance(x, dict):
        return ("dict",) + tuple(sorted((k, _hashable(v)) for k, v in x.items()))
    if isinstance(x, set):
        return frozenset(_hashable(v) for v in x)
    try:
        hash(x)
    except TypeError:
        leaves, treedef = jax.tree_util.tree_flatten(x)
        if len(leaves) == 1 and leaves[0] is x:
            raise TypeError(
                f"Static arguments must be hashable, got a value of type {type(x).__name__}. "
                "Pass it as a dynamic argument or make it hashable."
            ) from None
        return (treedef, tuple(_hashable(v) for v in leaves))
    return x


_STATE_IN_ARGS = (
    "Inputs/outputs for brainstate transformations cannot be an instance of State. "
    "Read its value (`state.value`) and pass that instead, or let the function access the "
    "state directly: transformations track the states a function uses."
)


def _leaf_key(x: Any) -> Any:
    """Abstract key of one dynamic leaf: (shape, dtype, weak_type) or the Python type."""
    if type(x) is _ARRAY_TYPE:
        return x.aval
    if isinstance(x, State):
        raise ValueError(_STATE_IN_ARGS)
    if isinstance(x, (bool, int, float, complex)):
        return type(x)
    if isinstance(x, jax.ShapeDtypeStruct):
        return (x.shape, x.dtype, bool(getattr(x, "weak_type", False)))
    return jax.typeof(x)


def _abstract(x: Any) -> Any:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return jax.ShapeDtypeStruct(tuple(x.shape), x.dtype)
    return x


class LeafSpans(NamedTuple):
    """Which flat dynamic leaves each argument of one call occupies, as ``(lo, hi)`` ranges.

    ``args`` maps positional indices (static ones left out), ``kwargs`` keyword names; ``n``
    counts the leaves. The cache key's treedef fixes every argument's leaf count, so all calls
    that share an entry share its spans: ``jit`` maps them to per-leaf donation and input
    shardings when the entry is compiled (``StatefulFunction.compiled``).
    """

    args: dict[int, tuple[int, int]]
    kwargs: dict[str, tuple[int, int]]
    n: int


class _Stale(Exception):
    """Raised while JAX retraces a compiled entry for arguments it was not traced for."""


def _bare_arrays(args: tuple) -> bool:
    """Whether every argument is a jax array (then ``args`` is already its flat leaves)."""
    for a in args:
        if type(a) is not _ARRAY_TYPE:
            return False
    return True


class _Entry:
    """One traced computation: the jaxpr, its states and the compiled callable."""

    __slots__ = ("jaxpr", "out_shapes", "out_treedef", "trace", "states", "written",
                 "state_sigs", "epoch", "jitted", "n_out", "write_idx", "write_states",
                 "in_avals", "in_treedef", "n_bare", "hoisted", "x64", "__weakref__")

    def __init__(self, jaxpr, out_shapes, out_treedef, trace, state_sigs, epoch):
        self.jaxpr = jaxpr
        self.out_shapes = out_shapes
        self.out_treedef = out_treedef
        self.trace = trace
        self.states = tuple(trace.states)
        self.written = tuple(trace.been_writen)
        self.state_sigs = state_sigs
        self.epoch = epoch
        self.jitted = None
        self.write_idx = tuple(i for i, w in enumerate(self.written) if w)
        self.write_states = tuple(self.states[i] for i in self.write_idx)
        self.n_out = out_treedef.num_leaves
        self.in_avals = None  # avals of the dynamic leaves when all are jax arrays
        self.in_treedef = None
        self.n_bare = -1  # len(args) when in_treedef is a flat tuple of that many leaves
        self.hoisted = ()  # captured arrays passed as trailing arguments (set by compiled)
        self.x64 = False  # JAX's 64-bit flag when traced (set for the fast path's entry)


class StatefulFunction:
    """A function that reads and writes states, traced into a pure jaxpr once per call signature.

    Parameters
    ----------
    fun : callable
        The function. It may read and write any state it can reach.
    static_argnums, static_argnames : int or str, or sequences of them
        Arguments passed as Python values (hashed into the cache key) instead of traced.
    axis_env : sequence of (name, size), optional
        Named axes available while tracing (as ``jax.make_jaxpr``).
    name : str, optional
        A display name.
    return_only_write : bool
        When True (default) the jaxpr returns only the written states' values.
    ir_optimizations : str or sequence of str, optional
        Jaxpr passes run on each traced jaxpr (``'all'``, a pass name such as
        ``'constant_fold'``, or a sequence of names; see :func:`optimize_jaxpr`). Unknown
        names raise at construction.
    jit_kwargs : dict, optional
        Keywords for the ``jax.jit`` that compiles each traced entry (``jit`` passes
        ``out_shardings``, ``device``, ``compiler_options``, ...).
    jit_argmap : callable, optional
        ``jit_argmap(spans) -> dict``: more ``jax.jit`` keywords that depend on where each
        argument's leaves sit (``donate_argnums``, ``in_shardings``), given the ``LeafSpans``
        of the call being compiled.

    Notes
    -----
    The protocol transforms use (package-internal; ``docs/ARCHITECTURE.md``, "Transforms"):

    - ``key_and_leaves(args, kwargs)``: ``(cache key, flat dynamic leaves, their treedef)``.
    - ``entry(args, kwargs, keyed=None)``: the cached traced entry of a call (traced on a
      miss); ``keyed`` is ``key_and_leaves``' result when the caller already has it.
    - ``trace(args, kwargs, leaves, treedef)``: a fresh, uncached trace.
    - ``leaf_spans(args, kwargs)``: the call's ``LeafSpans``.
    - ``compiled(entry, spans=None)``: the entry's ``jax.jit`` callable
      ``(state values, *leaves, *entry.hoisted) -> (out, written values)``; ``spans`` (the
      call's ``leaf_spans``) is needed when ``jit_argmap`` is set and the entry is not compiled
      yet.
    - ``call(args, kwargs)``: compile if needed, run, write the states back (what ``jit``
      calls).

    An entry (``entry``/``trace``) holds the closed ``jaxpr``, ``states``, ``written`` flags,
    ``write_idx``/``write_states``, ``out_shapes`` and ``out_treedef``; ``pure_of(entry)`` is
    its pure function.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> counter = brainstate.State(jnp.zeros(()))
    >>> def step(x):
    ...     counter.value = counter.value + x
    ...     return counter.value
    >>> f = brainstate.transform.StatefulFunction(step).make_jaxpr(1.0)
    >>> [s is counter for s in f.get_states(1.0)]
    [True]
    """

    __module__ = "brainstate.transform"

    def __init__(self, fun: Callable, static_argnums: Any = (), static_argnames: Any = (),
                 axis_env: Any = None, name: str | None = None, return_only_write: bool = True,
                 ir_optimizations: Any = None, jit_kwargs: dict | None = None,
                 jit_argmap: Callable[[LeafSpans], dict] | None = None) -> None:
        if not callable(fun):
            raise TypeError(f"StatefulFunction needs a callable, got {type(fun).__name__}.")
        self.fun = fun
        self.static_argnums = (static_argnums,) if isinstance(static_argnums, int) \
            else tuple(static_argnums or ())
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        for n in static_argnames or ():
            if not isinstance(n, str):
                raise TypeError(f"static_argnames: argument is not a string: {n!r}")
        self.static_argnames = tuple(static_argnames or ())
        self.axis_env = axis_env
        self.name = name
        self.return_only_write = return_only_write
        if ir_optimizations is not None:
            _pipeline(ir_optimizations, "StatefulFunction ir_optimizations")  # fail early
        self.ir_optimizations = ir_optimizations
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.RLock()
        self._hits = 0
        self._misses = 0
        self._jit_kwargs: dict = dict(jit_kwargs or {})
        self._jit_argmap: Callable[[LeafSpans], dict] | None = jit_argmap
        self._last: _Entry | None = None  # the fast path's entry (see call)
        self._check_avals = False  # set once the fast path met another signature (call)

    def __repr__(self) -> str:
        return f"StatefulFunction({getattr(self.fun, '__name__', self.fun)!r})"

    # --- cache keys ---

    def _split_args(self, args: tuple, kwargs: dict) -> tuple[list, list, dict, dict]:
        static_args: list = []
        dyn_args: list = []
        for i, a in enumerate(args):
            (static_args if i in self.static_argnums else dyn_args).append(a)
        static_kwargs = {k: v for k, v in kwargs.items() if k in self.static_argnames}
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        return static_args, dyn_args, static_kwargs, dyn_kwargs

    def key_and_leaves(self, args: tuple, kwargs: dict) -> tuple[tuple, list, Any]:
        """(hashable key, flat dynamic leaves, their treedef) of one call: the per-call path.

        Without static arguments or keywords only ``args`` is flattened (the treedef then
        describes ``args`` alone; ``trace`` mirrors this). A jax array's key is its aval,
        which JAX interns: one attribute load, a cached hash (~3x cheaper per leaf than a
        (shape, dtype, weak_type) tuple, bench_transforms.py).
        """
        if self.static_argnums or self.static_argnames or kwargs:
            sa, da, sk, dk = self._split_args(args, kwargs)
            leaves, treedef = jax.tree_util.tree_flatten((tuple(da), dk))
            static = (tuple(_hashable(a) for a in sa),
                      tuple(sorted((k, _hashable(v)) for k, v in sk.items())))
        else:
            leaves, treedef = jax.tree_util.tree_flatten(args)
            static = None
        keys = tuple([x.aval if type(x) is _ARRAY_TYPE else _leaf_key(x) for x in leaves])
        return (treedef, keys, static, _X64.value), leaves, treedef

    def get_arg_cache_key(self, *args: Any, compile_if_miss: bool = False, **kwargs: Any):
        """The cache key of a call with ``args`` (traced first when ``compile_if_miss``)."""
        key = self.key_and_leaves(args, kwargs)[0]
        if compile_if_miss:
            self.entry(args, kwargs)
        return _public_key(key)

    # --- tracing ---

    def _check_static_argnums(self, args: tuple) -> None:
        for i in self.static_argnums:
            if i >= len(args):
                raise ValueError(
                    f"static_argnums contains index {i}, but only {len(args)} positional "
                    "arguments were provided."
                )

    def leaf_spans(self, args: tuple, kwargs: dict) -> LeafSpans:
        """Which flat dynamic leaves each argument of a call occupies (see ``LeafSpans``).

        The order is ``key_and_leaves``': dynamic positional arguments, then keywords sorted
        by name (as a dict flattens).
        """
        pos, spans, kspans = 0, {}, {}
        for i, a in enumerate(args):
            if i in self.static_argnums:
                continue
            n = len(jax.tree_util.tree_leaves(a))
            spans[i] = (pos, pos + n)
            pos += n
        for k in sorted(kwargs):
            if k in self.static_argnames:
                continue
            n = len(jax.tree_util.tree_leaves(kwargs[k]))
            kspans[k] = (pos, pos + n)
            pos += n
        return LeafSpans(spans, kspans, pos)

    def trace(self, args: tuple, kwargs: dict, leaves: list, treedef: Any) -> _Entry:
        """Trace one call afresh: no cache lookup, nothing stored.

        ``leaves`` and ``treedef`` are those ``key_and_leaves(args, kwargs)`` returns.
        """
        self._check_static_argnums(args)
        sa, _, sk, _ = self._split_args(args, kwargs)
        static_pos = self.static_argnums
        nargs = len(args)
        fun = self.fun
        stack = StateTraceStack(name=self.name)
        holder: dict = {}
        sigs_before: dict = {}  # id -> (state, stored signature at first access)

        args_only = not (self.static_argnums or self.static_argnames or kwargs)

        def traced(*flat):
            if args_only:  # see key_and_leaves
                da, dk = jax.tree_util.tree_unflatten(treedef, flat), {}
            else:
                da, dk = jax.tree_util.tree_unflatten(treedef, flat)
            it_s, it_d = iter(sa), iter(da)
            call_args = [next(it_s) if i in static_pos else next(it_d) for i in range(nargs)]
            trace = _jax_core.trace_ctx.trace

            def new_arg(st):
                sigs_before[id(st)] = (st, st._signature)
                # Bind to *this* trace: an outer stack may record a state first seen inside a
                # nested transform, while that nested trace is the current one.
                return jax.tree.map(
                    lambda x: trace.new_arg(jax.typeof(x), _source_info_util.current()),
                    st._value)

            stack.set_new_arg(new_arg)
            with stack:
                out = fun(*call_args, **dk, **sk)
            _refuse_states(out)
            written = stack.been_writen
            vals = [st._value if (w or not self.return_only_write) else None
                    for st, w in zip(stack.states, written)]
            holder["sigs"] = tuple(st._signature for st in stack.states)
            return out, vals

        epoch = _core.rebind_epoch()
        with catch_new_states() as catcher, gc_paused():  # see brainstate/_gc.py
            try:
                jaxpr, out_shapes = jax.make_jaxpr(traced, axis_env=self.axis_env,
                                                   return_shape=True)(*leaves)
            except BaseException:
                # a signature re-bound inside the failed trace goes back with its value
                for st, sig in sigs_before.values():
                    if st._signature != sig:
                        st._signature = sig
                raise
            finally:
                _rollback(stack)
                _poison(catcher)
        if self.ir_optimizations is not None:
            jaxpr = apply_ir_optimizations(jaxpr, self.ir_optimizations)
        out_treedef = jax.tree_util.tree_structure(out_shapes)
        stack.release_original_values()
        entry = _Entry(jaxpr, out_shapes, out_treedef, stack, holder["sigs"], epoch)
        if all(type(x) is _ARRAY_TYPE for x in leaves):
            entry.in_avals = tuple(x.aval for x in leaves)
        return entry

    def entry(self, args: tuple, kwargs: dict, keyed: tuple | None = None) -> _Entry:
        """The traced entry of a call, from the cache or traced now.

        ``keyed`` is ``key_and_leaves(args, kwargs)`` when the caller already computed it.
        """
        key, leaves, treedef = keyed or self.key_and_leaves(args, kwargs)
        entry = self._cache.get(key)  # lock-free hit: dict reads are atomic under the GIL
        if entry is not None and entry.epoch == _core.rebind_epoch():
            self._hits += 1
            return entry
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and entry.epoch != _core.rebind_epoch():
                entry = self._revalidate(key, entry)
            if entry is not None:
                self._hits += 1
                self._cache.move_to_end(key)
                return entry
            self._misses += 1
        entry = self.trace(args, kwargs, leaves, treedef)
        with self._lock:
            self._cache[key] = entry
            if len(self._cache) > _MAX_CACHE:
                self._cache.popitem(last=False)
        return entry

    def _revalidate(self, key: CacheKey, entry: _Entry) -> _Entry | None:
        # Some signature was re-bound since this entry was traced: stale if one of ours was.
        if all(st._signature == sig for st, sig in zip(entry.states, entry.state_sigs)):
            entry.epoch = _core.rebind_epoch()
            return entry
        del self._cache[key]
        return None

    def make_jaxpr(self, *args: Any, **kwargs: Any) -> "StatefulFunction":
        """Trace for ``args`` (if not cached yet) and return self."""
        self._check_static_argnums(args)
        self.entry(args, kwargs)
        return self

    # --- calling ---

    def compiled(self, entry: _Entry, spans: LeafSpans | None = None) -> Callable:
        """``jax.jit`` of ``pure(state_vals, *dyn_leaves, *hoisted) -> (out, written values)``.

        State values go in as one list so JAX's C++ dispatch flattens them, as it does for the
        raw-``jax.jit`` baseline; dynamic leaves go positionally so donation maps per leaf.
        Captured arrays above the const threshold go last (``entry.hoisted``), so the indices
        of the other arguments do not move. ``spans`` are the ``leaf_spans`` of a call of this
        entry: ``jit_argmap`` needs them the first time the entry is compiled. They travel with
        the call rather than through the instance, so threads compiling entries of different
        argument structures at once each get their own.
        """
        if entry.jitted is None:
            jaxpr, consts = entry.jaxpr.jaxpr, list(entry.jaxpr.consts)
            hidx, hoisted = _split_consts(entry.jaxpr)
            n_h = len(hidx)
            treedef, widx = entry.out_treedef, entry.write_idx
            expected = entry.in_avals

            def pure(state_vals, *rest):
                dyn_leaves = rest[:len(rest) - n_h] if n_h else rest
                # Runs only when JAX (re)traces: refuse arguments this jaxpr was not traced
                # for, so the lookup-free fast path of call falls back to a real lookup.
                if expected is not None and \
                        tuple(getattr(x, "aval", None) for x in dyn_leaves) != expected:
                    raise _Stale()
                cs = consts
                if n_h:  # the hoisted consts are this trace's arguments, the rest stay values
                    cs = list(consts)
                    for i, v in zip(hidx, rest[len(rest) - n_h:]):
                        cs[i] = v
                flat = jaxpr_as_fun(ClosedJaxpr(jaxpr, cs))(
                    *dyn_leaves, *jax.tree_util.tree_leaves(state_vals))
                out, svals = jax.tree_util.tree_unflatten(treedef, flat)
                return out, [svals[i] for i in widx]

            kw = dict(self._jit_kwargs)
            if self._jit_argmap is not None:
                if spans is None:
                    raise TypeError(
                        f"{self!r} has per-leaf jit options: compiled() needs the call's "
                        "leaf_spans(args, kwargs)."
                    )
                kw.update(self._jit_argmap(spans))
            if n_h and "in_shardings" in kw:
                kw["in_shardings"] = tuple(kw["in_shardings"]) + (None,) * n_h
            entry.hoisted = hoisted
            entry.jitted = jax.jit(pure, **kw)
        return entry.jitted

    def call(self, args: tuple, kwargs: dict) -> Any:
        """Run one call and return its output; the written states get their new values.

        A miss traces and compiles; the spans ``compiled`` needs are this call's.
        """
        last = self._last
        if last is not None and not kwargs and last.epoch == _core.rebind_epoch() and \
                last.x64 == _X64.value:
            # Fast path: same argument structure as the last call; JAX's C++ dispatch checks
            # the avals (a changed aval retraces `pure`, which raises _Stale). A retrace under
            # the other 64-bit setting would replay this trace's jaxpr: hence the flag check.
            if len(args) == last.n_bare and _bare_arrays(args):
                leaves: Sequence[Any] | None = args  # a tuple of arrays: its own flat leaves
            else:
                leaves, treedef = jax.tree_util.tree_flatten(args)
                if treedef != last.in_treedef:
                    leaves = None
            if leaves is not None and self._check_avals and \
                    tuple([getattr(x, "aval", None) for x in leaves]) != last.in_avals:
                leaves = None  # another signature: straight to the cache lookup below
            if leaves is not None:
                try:
                    if last.hoisted:
                        out, written = last.jitted(_core.gather(last.states), *leaves,
                                                   *last.hoisted)
                    else:
                        out, written = last.jitted(_core.gather(last.states), *leaves)
                except (_Stale, TypeError):
                    # Calls alternate between signatures: JAX just retraced `pure` to find out
                    # (milliseconds). From now on the fast path compares avals first (~0.1 us
                    # per argument).
                    self._check_avals = True
                else:
                    _core.scatter(last.write_states, written)
                    self._hits += 1
                    return out
        kl = self.key_and_leaves(args, kwargs)
        with gc_paused():  # a miss traces and compiles: see brainstate/_gc.py
            entry = self.entry(args, kwargs, kl)
            fn = entry.jitted
            if fn is None:  # spans only matter (and are only computed) when compiling
                spans = self.leaf_spans(args, kwargs) if self._jit_argmap is not None else None
                fn = self.compiled(entry, spans)
            out, written = fn(_core.gather(entry.states), *kl[1], *entry.hoisted)
        _core.scatter(entry.write_states, written)
        if entry.in_avals is not None and not (kwargs or self.static_argnums
                                               or self.static_argnames):
            entry.in_treedef = kl[2]
            n = len(args)
            # n leaves and n + 1 nodes: the args tuple holds n leaves and nothing else
            td = kl[2]
            entry.n_bare = n if td.num_leaves == n and td.num_nodes == n + 1 else -1
            entry.x64 = kl[0][3]
            self._last = entry
        return out

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.jaxpr_call_auto(*args, **kwargs)

    def jaxpr_call_auto(self, *args: Any, **kwargs: Any) -> Any:
        """Compile if needed, feed the tracked states' values, write back, return the output."""
        if _DISABLE_JIT.value:
            return self.fun(*args, **kwargs)
        return self.call(args, kwargs)

    def jaxpr_call(self, state_vals: Sequence, *args: Any, **kwargs: Any):
        """Evaluate the traced jaxpr on explicit state values; returns ``(new_state_vals, out)``."""
        entry = self.entry(args, kwargs)
        if len(state_vals) != len(entry.states):
            raise ValueError(
                f"State length mismatch: expected {len(entry.states)} states, "
                f"got {len(state_vals)}"
            )
        missing = [i for i, v in enumerate(state_vals) if v is None]
        if missing:
            raise ValueError(f"State values at indices {missing} are None; every tracked "
                             "state needs a value.")
        _, leaves, _ = self.key_and_leaves(args, kwargs)
        out, written = pure_of(entry)(state_vals, leaves)
        new_vals = list(state_vals)
        for i, v in zip(entry.write_idx, written):
            new_vals[i] = v
        return new_vals, out

    def debug_call(self, state_vals: Sequence, *args: Any, **kwargs: Any):
        """Run the Python function itself on explicit state values; ``(new_state_vals, out)``.

        The eager counterpart of :meth:`jaxpr_call`, for debugging: the function's Python
        runs (``print`` and ``pdb`` work) with each tracked state holding the given value, and
        the states' values afterwards are returned, one per tracked state in
        :meth:`get_states` order. The states are put back as they were before the call. Inside
        ``with jax.disable_jit():`` the transforms the function calls run their Python too.

        Raises
        ------
        ValueError
            If ``state_vals`` does not hold one value per tracked state, or holds None.

        Notes
        -----
        Differs from upstream: the states are restored after the call, and states only read
        come back with their given value instead of None, as :meth:`jaxpr_call` returns them.

        Examples
        --------
        >>> import jax.numpy as jnp, brainstate
        >>> acc = brainstate.State(jnp.zeros(()))
        >>> def add(x):
        ...     acc.value = acc.value + x
        ...     return acc.value * 2
        >>> sf = brainstate.transform.StatefulFunction(add)
        >>> new, out = sf.debug_call([jnp.array(1.0)], 2.0)
        >>> float(new[0]), float(out), float(acc.value)
        (3.0, 6.0, 0.0)
        """
        states = self.entry(args, kwargs).states
        if len(state_vals) != len(states):
            raise ValueError(
                f"State length mismatch: expected {len(states)} states, got {len(state_vals)}"
            )
        missing = [i for i, v in enumerate(state_vals) if v is None]
        if missing:
            raise ValueError(f"State values at indices {missing} are None; every tracked "
                             "state needs a value.")
        saved = [st._value for st in states]
        try:
            for st, v in zip(states, state_vals):
                st.restore_value(v)  # checked against the state's signature
            out = self.fun(*args, **kwargs)
            new_vals = [st._value for st in states]
        finally:
            for st, v in zip(states, saved):
                st._restore_silent(v)
        return new_vals, out

    # --- accessors ---

    def _by_cache(self, key: CacheKey) -> _Entry:
        with self._lock:
            entry = self._cache.get(_private_key(key))
            if entry is None:
                raise ValueError(
                    f"No traced computation for this call.\nRequested key: {key}\n"
                    f"Available keys: {[_public_key(k) for k in self._cache]}\n"
                    "Call make_jaxpr() with these arguments first."
                )
            return entry

    def get_jaxpr(self, *args, compile_if_miss: bool = True, **kwargs):
        return self._get(args, kwargs, compile_if_miss).jaxpr

    def get_jaxpr_by_cache(self, key: CacheKey):
        return self._by_cache(key).jaxpr

    def get_out_shapes(self, *args, compile_if_miss: bool = True, **kwargs):
        return self._get(args, kwargs, compile_if_miss).out_shapes

    def get_out_shapes_by_cache(self, key: CacheKey):
        return self._by_cache(key).out_shapes

    def get_out_treedef(self, *args, compile_if_miss: bool = True, **kwargs):
        return self._get(args, kwargs, compile_if_miss).out_treedef

    def get_out_treedef_by_cache(self, key: CacheKey):
        return self._by_cache(key).out_treedef

    def get_state_trace(self, *args, compile_if_miss: bool = True, **kwargs):
        return self._get(args, kwargs, compile_if_miss).trace

    def get_state_trace_by_cache(self, key: CacheKey):
        return self._by_cache(key).trace

    def get_states(self, *args, compile_if_miss: bool = True, **kwargs) -> tuple:
        return self._get(args, kwargs, compile_if_miss).states

    def get_states_by_cache(self, key: CacheKey) -> tuple:
        return self._by_cache(key).states

    def get_read_states(self, *args, compile_if_miss: bool = True, **kwargs) -> tuple:
        e = self._get(args, kwargs, compile_if_miss)
        return tuple(s for s, w in zip(e.states, e.written) if not w)

    def get_read_states_by_cache(self, key: CacheKey) -> tuple:
        e = self._by_cache(key)
        return tuple(s for s, w in zip(e.states, e.written) if not w)

    def get_write_states(self, *args, compile_if_miss: bool = True, **kwargs) -> tuple:
        return self._get(args, kwargs, compile_if_miss).write_states

    def get_write_states_by_cache(self, key: CacheKey) -> tuple:
        return self._by_cache(key).write_states

    def _get(self, args, kwargs, compile_if_miss: bool) -> _Entry:
        if compile_if_miss:
            return self.entry(args, kwargs)
        return self._by_cache(_public_key(self.key_and_leaves(args, kwargs)[0]))

    def validate_states(self, key: CacheKey) -> bool:
        """Whether the tracked states of ``key``'s entry still have their traced signatures."""
        e = self._by_cache(key)
        return all(st._signature == sig for st, sig in zip(e.states, e.state_sigs))

    def validate_all_states(self) -> dict:
        with self._lock:
            keys = [_public_key(k) for k in self._cache]
        return {k: self.validate_states(k) for k in keys}

    def clear_cache(self) -> None:
        """Drop every traced computation."""
        with self._lock:
            self._cache.clear()
            self._last = None

    def get_cache_stats(self) -> dict:
        """Size, hits and misses of the trace cache (one entry per call signature).

        Returns ``{"compilation_cache": {"size", "maxsize", "hits", "misses", "hit_rate"}}``,
        as upstream. One cache holds the jaxpr, output shapes, output tree and state trace of
        each entry, so the per-kind keys of older upstream releases (``"jaxpr_cache"``,
        ``"out_shapes_cache"``, ``"jaxpr_out_tree_cache"``, ``"state_trace_cache"``) are
        present too, each with the same figures.

        Examples
        --------
        >>> import jax.numpy as jnp, brainstate
        >>> sf = brainstate.transform.StatefulFunction(lambda x: x * 2)
        >>> _ = sf.make_jaxpr(jnp.ones(2)).make_jaxpr(jnp.ones(2))
        >>> stats = sf.get_cache_stats()["compilation_cache"]
        >>> stats["size"], stats["hits"], stats["misses"]
        (1, 1, 1)
        """
        with self._lock:
            total = self._hits + self._misses
            stats = {
                "size": len(self._cache), "maxsize": _MAX_CACHE, "hits": self._hits,
                "misses": self._misses, "hit_rate": self._hits / total if total else 0.0,
            }
        legacy = ("jaxpr_cache", "out_shapes_cache", "jaxpr_out_tree_cache", "state_trace_cache")
        return {"compilation_cache": stats, **{k: dict(stats) for k in legacy}}


# --- one traced entry as a pure function (shared by the transforms) ---------------------


def pure_of(entry: Any) -> Callable:
    """``pure(state_vals, dyn_leaves) -> (out, written values)`` of one traced entry.

    The closure holds the jaxpr, not the entry, so caches keyed weakly by the entry can store
    it without keeping the entry alive.
    """
    fn = jaxpr_as_fun(entry.jaxpr)
    treedef, widx = entry.out_treedef, entry.write_idx

    def pure(state_vals: Sequence, dyn_leaves: Sequence) -> tuple:
        flat = fn(*dyn_leaves, *jax.tree_util.tree_leaves(list(state_vals)))
        out, new = jax.tree_util.tree_unflatten(treedef, flat)
        return out, [new[i] for i in widx]

    return pure


class PerEntry:
    """A JAX transform of ``pure_of(entry)``, built once per traced entry and reused.

    Reusing the transformed callable lets JAX's own trace caches (keyed by the callable) hit
    on repeated calls with the same signature.
    """

    def __init__(self, make: Callable[[Callable], Callable]) -> None:
        self._make = make
        self._cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __call__(self, entry: Any) -> Callable:
        fn = self._cache.get(entry)
        if fn is None:
            fn = self._make(pure_of(entry))
            self._cache[entry] = fn
        return fn


class outer_frames_untouched:
    """Undo, on exit, what a trace recorded into the enclosing trace frames.

    Ahead-of-time paths (``lower``, ``compile``, ...) trace but never run, so the enclosing
    frames must not see their reads and writes: entries appended meanwhile are dropped (their
    states put back to the value the frame first saw) and written flags restored.
    """

    def __enter__(self) -> "outer_frames_untouched":
        self.frames = list(_core.get_context().state_stack)
        self.marks = [(len(f.states), list(f.been_writen)) for f in self.frames]
        return self

    def __exit__(self, *exc: Any) -> None:
        for frame, (n, written) in zip(self.frames, self.marks):
            for st, orig in zip(frame.states[n:], frame._original_state_values[n:]):
                st._restore_silent(orig)
                del frame._id2index[st]
            del frame.states[n:], frame._original_state_values[n:]
            frame.been_writen[:] = written


def _public_key(key: tuple) -> CacheKey:
    treedef, leaf_keys, static, x64 = key
    static_args, static_kwargs = static if static is not None else ((), ())
    # dyn_kwargs records whether args and kwargs were flattened together (see key_and_leaves)
    # and the 64-bit flag of the trace
    return CacheKey(static_args, (treedef, leaf_keys), static_kwargs, (static is not None, x64))


def _private_key(key: CacheKey) -> tuple:
    static = (key.static_args, key.static_kwargs) if key.dyn_kwargs[0] else None
    return (key.dyn_args[0], key.dyn_args[1], static, key.dyn_kwargs[1])


def _refuse_states(tree: Any) -> None:
    for leaf in jax.tree_util.tree_leaves(tree):
        if isinstance(leaf, State):
            raise ValueError(_STATE_IN_ARGS)


def _rollback(stack: StateTraceStack) -> None:
    """Put every recorded state back to its value before the trace (no hooks fire)."""
    for st, v in zip(stack.states, stack._original_state_values):
        st._restore_silent(v)


def _poison(catcher: Any) -> None:
    """States created during the trace whose value is a tracer become unusable.

    See "States created inside a transformed function" in ``docs/concepts/trace-contexts.md``.
    """
    for st in catcher.get_states():
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(st._value)):
            st._invalidate_trace_value()


def make_jaxpr(fun: Callable, static_argnums: Any = (), static_argnames: Any = (),
               axis_env: Any = None, return_shape: bool = False,
               return_only_write: bool = False) -> Callable:
    """Return ``f(*args, **kw) -> (ClosedJaxpr, states[, out_shapes])`` for a stateful ``fun``."""
    sf = StatefulFunction(fun, static_argnums, static_argnames, axis_env,
                          return_only_write=return_only_write)

    def wrapper(*args: Any, **kwargs: Any):
        entry = sf.entry(args, kwargs)
        if return_shape:
            return entry.jaxpr, entry.states, entry.out_shapes[0]
        return entry.jaxpr, entry.states

    wrapper.__name__ = f"make_jaxpr({getattr(fun, '__name__', 'fun')})"
    return wrapper
