"""``shard_map``: run a function that reads and writes states on the shards of a device mesh.

Each call traces the function twice. First to collect the states it reads and writes and
give each a spec: at per-shard shapes when the states' specs are given by name (each argument
at its shard's shape, each split state through a view of its shard, the others whole), at
the arguments' global shapes when one spec covers every state (the states must be known
before that spec can be given to them). Then inside :func:`jax.shard_map`, on the shards'
own values, whose types carry the mesh's varying axes: the function runs there as a pure
jaxpr of ``(args, state values) -> (out, written values)`` through the states' views, and
the written values are written back after the call (``core.scatter``: recorded in enclosing
traces).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
from jax.extend.core import jaxpr_as_fun
from jax.sharding import NamedSharding, PartitionSpec

from brainstate._impl import core as _core
from brainstate._messages import describe_state
from brainstate._state import State
from brainstate.transform._make_jaxpr import StatefulFunction

__all__ = ["shard_map"]

_REPLICATED = PartitionSpec()


def _jax_shard_map() -> tuple[Callable, str]:
    """JAX's shard_map and the name of its replication-check flag (moved out of experimental)."""
    fn = getattr(jax, "shard_map", None)
    if fn is not None:
        return fn, "check_vma"
    from jax.experimental.shard_map import shard_map as old_fn  # older JAX

    return old_fn, "check_rep"


def _explicit(mesh: Any, spec: PartitionSpec) -> bool:
    """Whether the mesh has Explicit axes and ``spec`` names only those (``jax.reshard``)."""
    types = dict(zip(mesh.axis_names, getattr(mesh, "axis_types", ())))
    if not any("Explicit" in str(t) for t in types.values()):
        return False
    names = [n for entry in spec if entry is not None
             for n in (entry if isinstance(entry, tuple) else (entry,))]
    return all("Explicit" in str(types.get(n)) for n in names)


def _place(x: Any, spec: PartitionSpec, mesh: Any) -> Any:
    """``x`` laid out as ``spec`` on ``mesh``: shard_map takes inputs already split that way."""
    sharding = NamedSharding(mesh, spec)
    reshard = getattr(jax, "reshard", None)
    if reshard is not None and _explicit(mesh, spec):
        return reshard(x, sharding)  # explicit axes: the layout is part of the type
    return jax.device_put(x, sharding)


def _is_spec(x: Any) -> bool:
    return isinstance(x, PartitionSpec) or x is None


def _state_table(specs: Any, what: str) -> Any:
    """``None``, one PartitionSpec for every state, or ``{id(state): spec}``."""
    if specs is None or isinstance(specs, PartitionSpec):
        return specs
    if isinstance(specs, dict):
        table = {}
        for st, spec in specs.items():
            if not isinstance(st, State):
                raise TypeError(f"shard_map {what} keys must be States, got "
                                f"{type(st).__name__} {st!r}.")
            if not isinstance(spec, PartitionSpec):
                raise TypeError(f"shard_map {what}[{describe_state(st)}] must be a "
                                f"PartitionSpec, got {type(spec).__name__} {spec!r}.")
            table[id(st)] = spec
        return table
    raise TypeError(f"shard_map {what} must be None, a PartitionSpec (for every state) or a "
                    f"dict {{State: PartitionSpec}}, got {type(specs).__name__} {specs!r}.")


def _lookup(table: Any, st: State) -> PartitionSpec | None:
    if isinstance(table, dict):
        return table.get(id(st))
    return table


def _state_spec(st: State, written: bool, sin: Any, sout: Any) -> PartitionSpec:
    """A state's spec: as read (``state_in_specs``), else as written, else replicated.

    A written state is read and written back with the same spec, so its per-shard value keeps
    one shape through the function.
    """
    a = _lookup(sin, st)
    b = _lookup(sout, st) if written else None
    if a is not None and b is not None and a != b:
        raise ValueError(
            f"shard_map: {describe_state(st)} is read with state_in_specs {a} but written with "
            f"state_out_specs {b}. A written state is read and written back with one spec; "
            "give it the same spec in both (or only in one)."
        )
    return a if a is not None else (b if b is not None else _REPLICATED)


def _guess_spec(st: State, sin: Any, sout: Any) -> PartitionSpec:
    """A named state's spec before the trace tells whether it is written: as read, else as
    written (a state named in ``state_out_specs`` is assumed written until the trace shows
    otherwise), else replicated."""
    a = _lookup(sin, st)
    if a is not None:
        return a
    b = _lookup(sout, st)
    return b if b is not None else _REPLICATED


def _local_shape(shape: tuple, spec: PartitionSpec, mesh: Any, where: Callable[[], str]) -> tuple:
    """The per-shard shape of a global ``shape`` partitioned by ``spec`` over ``mesh``."""
    sizes = dict(mesh.shape)
    if len(spec) > len(shape):
        raise ValueError(f"shard_map: {where()} has rank {len(shape)} but its spec {spec} "
                         f"names {len(spec)} dimensions. Give at most one entry per dimension.")
    out = list(shape)
    for d, names in enumerate(spec):
        if names is None:
            continue
        for name in (names if isinstance(names, tuple) else (names,)):
            if name not in sizes:
                raise ValueError(f"shard_map: the spec {spec} of {where()} names mesh axis "
                                 f"{name!r}, but the mesh has axes {tuple(sizes)}.")
            if out[d] % sizes[name]:
                raise ValueError(
                    f"shard_map: dimension {d} of {where()} (size {shape[d]}) is not divisible "
                    f"by the size {sizes[name]} of mesh axis {name!r} its spec {spec} maps it "
                    "to. Pad the array or change the spec."
                )
            out[d] //= sizes[name]
    return tuple(out)


def _local_aval(x: Any, spec: PartitionSpec, mesh: Any, where: Callable[[], str]) -> Any:
    aval = jax.typeof(x)
    return jax.ShapeDtypeStruct(_local_shape(tuple(aval.shape), spec, mesh, where), aval.dtype,
                                weak_type=getattr(aval, "weak_type", False))


def _arg_specs(in_specs: Any, args: tuple) -> list:
    """One spec per flat leaf of ``args``: ``in_specs`` is one spec or a prefix per argument."""
    if isinstance(in_specs, PartitionSpec):
        specs = tuple(in_specs for _ in args)
    else:
        specs = tuple(in_specs)
        if len(specs) != len(args):
            raise ValueError(
                f"shard_map: in_specs has {len(specs)} entries but the function was called with "
                f"{len(args)} positional arguments. Give one spec (or pytree prefix of specs) "
                "per argument, or a single PartitionSpec for all of them."
            )
    try:
        full = jax.tree.broadcast(specs, args, is_leaf=_is_spec)
    except ValueError as exc:
        raise ValueError(f"shard_map: in_specs does not match the arguments' structure: "
                         f"{exc}") from None
    leaves = jax.tree.leaves(full, is_leaf=_is_spec)
    return [_REPLICATED if s is None else s for s in leaves]


def _discover(fun: Callable, args: tuple, axis_env: list) -> Any:
    """The states ``fun`` touches, from a trace at the arguments' global shapes."""
    return StatefulFunction(fun, name="shard_map", axis_env=axis_env).entry(args, {})


def _check_state_shapes(pairs: list, mesh: Any) -> None:
    """ValueError naming the state if a split state's dimension does not divide its mesh axes."""
    for st, spec in pairs:
        if spec != _REPLICATED:
            for leaf in jax.tree.leaves(_core.gather([st])[0]):
                _local_shape(tuple(jax.typeof(leaf).shape), spec, mesh,
                             lambda: describe_state(st))  # called before the loop moves on


def _named_pairs(f: Callable, mesh: Any, args: tuple, leaves: list, treedef: Any,
                 leaf_specs: list, sin: Any, sout: Any, named: list, axis_env: list) -> tuple:
    """``(found, [(state, spec)])`` for states named in the spec dicts, traced per shard.

    Which states are written is known only from a trace. The first one assumes every state
    named in ``state_out_specs`` is written (so a state that is read and written keeps its
    spec through the function); if the trace shows such a state only read, its spec is
    replaced (a state's out spec applies only if it is written) and the function is traced
    again with the corrected views.
    """
    specs = [_guess_spec(st, sin, sout) for st in named]
    for _ in range(2):
        found = _trace_shards(f, mesh, args, leaves, treedef, leaf_specs,
                              [(st, sp) for st, sp in zip(named, specs) if sp != _REPLICATED],
                              axis_env)
        written = {id(st) for st in found.write_states}
        touched = {id(st) for st in found.states}
        actual = [_state_spec(st, id(st) in written, sin, sout) for st in named]
        # A named state the function does not touch needs no spec (and no second trace).
        if all(a == b for st, a, b in zip(named, actual, specs) if id(st) in touched):
            return found, list(zip(named, actual))
        specs = actual
    raise ValueError(
        "shard_map: the states the function writes change with the shapes it sees: it wrote "
        f"{', '.join(describe_state(st) for st in found.write_states) or 'no state'} only when "
        "the states it reads were given their corrected specs. Make which states it writes "
        "independent of their shapes."
    )


def _trace_shards(fun: Callable, mesh: Any, args: tuple, leaves: list, treedef: Any,
                  leaf_specs: list, declared: list, axis_env: list) -> Any:
    """Trace ``fun`` at per-shard shapes, with each declared sharded state showing its shard."""
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(args)[0]]
    # ``where`` is called (if at all) before _local_aval returns: no loop-variable binding
    local = [_local_aval(x, s, mesh, lambda: f"args{paths[i]}")
             for i, (x, s) in enumerate(zip(leaves, leaf_specs))]
    local_args = jax.tree_util.tree_unflatten(treedef, local)
    states = [st for st, _ in declared]
    vals = _core.gather(states) if states else []
    try:
        for (st, spec), val in zip(declared, vals):
            st._set_view(jax.tree.map(
                lambda x, st=st, spec=spec: _local_aval(x, spec, mesh, lambda: describe_state(st)),
                val))
        return StatefulFunction(fun, name="shard_map", axis_env=axis_env).entry(local_args, {})
    finally:
        for st, val in zip(states, vals):
            st._restore_silent(val)


def _with_hint(exc: BaseException, leaf_specs: list) -> BaseException:
    """``exc`` with a hint at the state specs when a replicated state is its likely cause.

    The hint goes into the message of an exception of the same type (chained to ``exc``), or
    into a note when that type cannot be rebuilt from one message.
    """
    text = str(exc).lower()
    if "replicat" in text and "out_specs" in text:
        hint = ("A state written inside shard_map without a spec is written back replicated, "
                "so its new value must be the same on every shard: reduce it first "
                "(jax.lax.psum, pmean) or give the state a spec, e.g. "
                "state_out_specs={state: P('x')}.")
    elif ("shape" in text or "broadcast" in text) and any(s != _REPLICATED for s in leaf_specs):
        hint = ("Inside shard_map, states without a spec are replicated (each shard sees the "
                "whole value) while sharded arguments are per-shard slices, so combining the "
                "two mismatches shapes. Give such a state the argument's spec, e.g. "
                "state_in_specs={state: P('x')}.")
    else:
        return exc
    try:
        new = type(exc)(f"{exc}\n\n{hint}")
    except Exception:
        exc.add_note(hint)
        return exc
    new.__cause__ = exc
    return new


def shard_map(fun: Callable, mesh: Any, in_specs: Any, out_specs: Any, *,
              state_in_specs: Any = None, state_out_specs: Any = None,
              check_vma: bool = True) -> Callable:
    """Run ``fun`` on the shards of ``mesh`` (SPMD), reading and writing states.

    A state-aware :func:`jax.shard_map`: arguments are split per ``in_specs``, the function
    sees per-shard values, outputs are assembled per ``out_specs``. States take part by spec:

    - a state with no spec is *replicated*: every shard reads its whole value; if written, the
      value written must be the same on every shard (``check_vma`` checks it, e.g. reduce
      with ``jax.lax.psum`` first);
    - a state given a spec in ``state_in_specs`` (or, if written, ``state_out_specs``) is
      split like an argument: each shard reads and writes its own slice, and the slices are
      written back as one global value.

    Random states are replicated like any state: every shard draws the same numbers unless
    the key is folded with ``jax.lax.axis_index``.

    Parameters
    ----------
    fun : callable
        The per-shard function. Keyword arguments given at call time are closed over
        (replicated), not split.
    mesh : jax.sharding.Mesh
        The device mesh, e.g. ``jax.make_mesh((n,), ('x',))``.
    in_specs : PartitionSpec or tuple
        One PartitionSpec for every positional argument, or one entry (a spec or a pytree
        prefix of specs) per positional argument.
    out_specs : PartitionSpec or pytree of PartitionSpec
        How the outputs are assembled (a pytree prefix of the output).
    state_in_specs, state_out_specs : PartitionSpec or dict, optional
        ``{State: PartitionSpec}``, or one PartitionSpec for every state read (in) / written
        (out). An out spec applies only to a state the function writes (a trace tells which
        states those are, not the dict): a state it only reads is read with its in spec, or
        whole. A written state is read with its out spec unless given an in spec; giving it
        two different specs is an error.
    check_vma : bool
        Passed to :func:`jax.shard_map` (``check_rep`` on JAX versions before it moved out
        of ``jax.experimental``).

    Returns
    -------
    callable
        ``fun`` sharded. Each call traces ``fun`` twice: once to collect its states (at
        per-shard shapes, or at global shapes when ``state_in_specs``/``state_out_specs`` is
        a single spec), once more inside :func:`jax.shard_map`; three times when a state
        named in a ``state_out_specs`` dict turns out to be only read. Wrap the caller in
        :func:`~brainstate.transform.jit` to pay this once per signature.

    Raises
    ------
    TypeError
        If ``fun`` is not callable or a state spec is malformed.
    ValueError
        If ``in_specs`` does not match the arguments, a spec names an unknown mesh axis, a
        dimension of an argument or a split state does not divide by the mesh axes it is
        split over, a written state is given two different specs, or the states the function
        writes depend on the shapes it sees.

    Notes
    -----
    Tested on a one-device CPU mesh (``jax.make_mesh((1,), ('x',))``): the states' read and
    write paths, specs, collectives and composition with ``jit``/``grad``/``vmap``/
    ``for_loop``; and on a four-device host CPU mesh (forced with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=4``): per-shard views of split states,
    a state named in ``state_out_specs`` but only read, and the errors that only a mesh of
    several devices shows.

    Differs from upstream: with the states' specs given by name, the states are collected by
    a trace at per-shard shapes (upstream always traces at global shapes), so a function
    whose shapes only work per shard can be sharded; a written state is read with the same
    spec it is written back with (upstream reads it replicated and writes it split, so its
    value changes shape inside the function); an in/out spec conflict, an unknown mesh axis
    and an indivisible dimension (of an argument or a split state) are refused before
    ``jax.shard_map`` runs, with messages naming the argument or state; a state that the
    function writes only when run on the shards is an error, not a lost write; a shape error
    from a replicated state meeting a sharded argument, and JAX's refusal of a replicated
    state written with a shard-dependent value, keep their type and gain a hint at the state
    specs.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> from jax.sharding import PartitionSpec as P
    >>> mesh = jax.make_mesh((1,), ('x',))
    >>> scale = brainstate.ParamState(jnp.asarray(3.0))
    >>> total = brainstate.State(jnp.zeros(4))
    >>> def step(x):
    ...     total.value = total.value + x * scale.value
    ...     return jax.lax.psum(x.sum(), 'x')
    >>> f = brainstate.transform.shard_map(step, mesh, in_specs=P('x'), out_specs=P(),
    ...                                    state_out_specs={total: P('x')})
    >>> float(f(jnp.arange(4.0)))
    6.0
    >>> total.value
    Array([0., 3., 6., 9.], dtype=float32)
    """
    if not callable(fun):
        raise TypeError(f"shard_map needs a callable, got {type(fun).__name__} {fun!r}.")
    if not hasattr(mesh, "shape") or not hasattr(mesh, "axis_names"):
        raise TypeError(f"shard_map: mesh must be a jax.sharding.Mesh, got "
                        f"{type(mesh).__name__} {mesh!r}.")
    sin = _state_table(state_in_specs, "state_in_specs")
    sout = _state_table(state_out_specs, "state_out_specs")
    # One spec for all states needs to know the states first (a trace at global shapes).
    discover = isinstance(sin, PartitionSpec) or isinstance(sout, PartitionSpec)
    named = _named_states(state_in_specs, state_out_specs)
    axis_env = list(dict(mesh.shape).items())
    smap, check_kw = _jax_shard_map()

    @functools.wraps(fun)
    def sharded(*args: Any, **kwargs: Any) -> Any:
        f = functools.partial(fun, **kwargs) if kwargs else fun
        leaves, treedef = jax.tree_util.tree_flatten(args)
        leaf_specs = _arg_specs(in_specs, args)
        try:
            if discover:
                found = _discover(f, args, axis_env)
                pairs = [(st, _state_spec(st, w, sin, sout))
                         for st, w in zip(found.states, found.written)]
                _check_state_shapes(pairs, mesh)
            else:
                # Only the states named in the dicts can be split; the others are replicated.
                found, pairs = _named_pairs(f, mesh, args, leaves, treedef, leaf_specs, sin,
                                            sout, named, axis_env)
            specs = {id(st): sp for st, sp in pairs}
            states = found.states
            state_specs = [specs.get(id(st), _REPLICATED) for st in states]
            write_specs = [state_specs[i] for i in found.write_idx]
            vals = _core.gather(states)
            body = _shard_body(f, treedef, states, found.write_idx, vals)
            mapped = smap(body, mesh=mesh, in_specs=(leaf_specs, state_specs),
                          out_specs=(out_specs, write_specs), **{check_kw: check_vma})
            dyn = [_place(x, sp, mesh) for x, sp in zip(leaves, leaf_specs)]
            svals = [jax.tree.map(lambda x, sp=sp: _place(x, sp, mesh), v)
                     for v, sp in zip(vals, state_specs)]
            out, written = mapped(dyn, svals)
        except (TypeError, ValueError) as exc:
            new = _with_hint(exc, leaf_specs)
            if new is exc:
                raise
            raise new from exc
        if found.write_states:
            _core.scatter(found.write_states, written)
        return out

    return sharded


def _shard_body(f: Callable, treedef: Any, states: tuple, write_idx: tuple,
                vals: list) -> Callable:
    """The function ``jax.shard_map`` runs: ``(arg leaves, state values) -> (out, written)``.

    ``f`` is traced again here, on the shard's own values: their types carry the mesh's
    varying axes, so JAX inserts the casts between varying and replicated values that a jaxpr
    traced outside ``shard_map`` would lack. States show their shard values as views.
    """
    index = {id(st): i for i, st in enumerate(states)}
    write_set = set(write_idx)

    def body(dyn: list, svals: list) -> tuple:
        for st, v in zip(states, svals):
            st._set_view(v)
        try:
            entry = StatefulFunction(f, name="shard_map").entry(
                jax.tree_util.tree_unflatten(treedef, dyn), {})
        finally:
            for st, v in zip(states, vals):
                st._restore_silent(v)
        missing = [st for st in entry.states if id(st) not in index]
        if missing:
            raise ValueError(
                "shard_map: the function used "
                f"{', '.join(describe_state(st) for st in missing)} only when run on the "
                "shards, not when its states were collected. Make the states it uses "
                "independent of the argument shapes."
            )
        slots = [index[id(st)] for st in entry.states]
        stray = [entry.states[i] for i in entry.write_idx if slots[i] not in write_set]
        if stray:
            raise ValueError(
                "shard_map: the function wrote "
                f"{', '.join(describe_state(st) for st in stray)} only when run on the "
                "shards, not when its states were collected, so the write would be lost. "
                "Make which states it writes independent of the argument shapes."
            )
        flat = jaxpr_as_fun(entry.jaxpr)(
            *dyn, *jax.tree_util.tree_leaves([svals[j] for j in slots]))
        out, new = jax.tree_util.tree_unflatten(entry.out_treedef, flat)
        written = {slots[i]: new[i] for i in entry.write_idx}
        return out, [written.get(j, svals[j]) for j in write_idx]

    body.__name__ = getattr(f, "__name__", "shard_map_body")
    return body


def _named_states(state_in_specs: Any, state_out_specs: Any) -> list:
    """The states named in the spec dicts, in first-seen order."""
    named, seen = [], set()
    for specs in (state_in_specs, state_out_specs):
        if isinstance(specs, dict):
            for st in specs:
                if id(st) not in seen:
                    seen.add(id(st))
                    named.append(st)
    return named
