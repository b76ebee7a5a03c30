"""Save a model's states to one file and restore them into a model built by the same code.

:func:`save` writes every ``State`` of a module (or of a state collection such as
``model.states()``) with :func:`~brainstate.checkpoint.write_checkpoint`; :func:`load` reads
them back and restores them into a target by graph path. ``backend="orbax"`` stores arrays
sharded over a device mesh through Orbax instead (the optional extra ``brainstate[orbax]``);
:func:`load` recognises either kind by what ``path`` is (a file or an Orbax directory).

What a file holds
-----------------
One array record per leaf of each state's value (a state holding a dict of three arrays gives
three records), with ``info`` = ``{"path": [...graph path...], "class": "brainstate.ParamState"}``
plus ``"leaf": "['a']"`` (the leaf's ``jax.tree_util.keystr``) for leaves below the value's root.
A record's dtype and shape, together with the leaf keys, are the state's signature. The key of
a record is its path joined by ``/`` (``layers/0/w``, a readable name for other tools), made
unique with ``#2``, ``#3``... when two paths join alike; :func:`load` matches by ``info`` only.
A state shared by several attributes is stored once, under its first path (the order of
:func:`brainstate.graph.states`), and restored once. The file-level metadata is the caller's
``metadata``. States whose value has no leaves (an empty dict) hold no data and are skipped.
Static attributes (plain arrays, ints, functions) are not state: they come from the code.

Every JAX dtype round-trips bit-exactly (bfloat16, float8, int4, complex, typed PRNG keys: see
``_format``). Values come back in the form the target holds: onto the target leaf's sharding
for a ``jax.Array`` (``jax.device_put(value, target.sharding)``; uncommitted stays
uncommitted), onto a ``ShapeDtypeStruct``'s sharding for an abstract model from
``transform.eval_shape``, as a fresh writable ``numpy`` array for a numpy leaf and as the same
Python type for a Python scalar leaf. Each array is read into a 64-byte-aligned buffer of its
own, which a CPU device adopts without a second copy: nothing aliases the file, and no restored
array keeps another one's memory alive.

Restoring
---------
:func:`load` checks everything before it changes anything: it reads the whole file (header CRC,
layout, size), matches paths, compares each state's class, leaf keys, shapes and dtypes (the
signature, compared as :meth:`State.restore_value` would), places the values, and only then
calls ``restore_value`` on each state. So restored states keep their identity, hooks, name,
tags and signature, and each fires its ``restore`` hooks exactly once (``write`` hooks do not
fire). If a ``restore`` hook raises, that state and those restored before it get their previous
values back (silently) and the error propagates. With ``strict=True`` any missing, unexpected
or mismatched path raises one :class:`CheckpointMismatchError` listing all of them; with
``strict=False`` the matching states are restored and the others are listed in the returned
:class:`LoadResult`. Inside ``check_state_value_tree(False)`` shape and dtype differences
re-bind the signature instead of failing, as for ``update_states``; class and leaf-key
differences still count.

The data CRC: written and verified by default
---------------------------------------------
:func:`save` writes each array's CRC-32 (the file layer computes it in a second thread while it
writes); :func:`load` checks the header CRC, the layout and the file size, and every data byte
against its CRC (a second thread computes the CRCs of each 8 MiB group of arrays while the next
group is read); ``load(..., verify=False)`` skips only the data CRCs. Measured with
``bench/bench_checkpoint.py`` (1,000 float32 states, 100 MB; this project's 2-core VM, shared
with other jobs; pytest-benchmark medians of 15 rounds, as ratios to ``np.save``/``np.load`` of
the same arrays into one stream, which neither fsyncs nor checksums):

=========================================  ======
\\                                          ratio
=========================================  ======
``save`` (fsync + data CRC)                 1.06x
``load`` (verified, the default)            1.08x
``load(verify=False)``                      0.82x
=========================================  ======

Loading places each array on the default device through the C++ ``batched_device_put`` that
``jax.device_put`` ends in (``_FastPut``): JAX's Python dispatch around it cost ~20 us per array,
20-30 ms of a 1,000-state load, and had made a verified load 1.65-1.76x ``np.load`` (so verifying
was opt-in until then). Each array is read into its own 64-byte aligned buffer, which the CPU
client adopts without a copy.

Orbax
-----
``save(path, model, backend="orbax")`` writes an Orbax ``PyTreeCheckpointHandler`` directory
(each leaf under the key ``s<i>``) plus ``brainstate.json`` with the same per-leaf records;
arrays are written shard by shard, never gathered on one host. :func:`load` restores each leaf
directly onto the target's sharding. The directory is assembled beside ``path`` and swapped in
by two renames: a save killed before them leaves the old checkpoint at ``path``, after them the
new one; killed between them it leaves the old one complete under ``.<name>.<hex>.tmp.old``,
which the next save to ``path`` puts back or replaces (``brainstate/checkpoint/_orbax.py``
describes the names and the clean-up). Orbax's own data
integrity is that of its storage layer (no brainstate CRC); the metadata is checked like a file's
header. Single-process only (``jax.process_count() == 1``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from brainstate import _impl
from brainstate._error import BrainStateError
from brainstate._signature import format_spec, leaf_units
from brainstate._state import State, TreefyState
from brainstate.checkpoint import _format
from brainstate.checkpoint._format import CheckpointFormatError, write_checkpoint

__all__ = ["save", "load", "LoadResult", "CheckpointMismatchError"]

_BACKENDS = ("native", "orbax")
_PY_SCALARS = (bool, int, float, complex)
# Lines of each category shown in an error message; the error object holds the full lists.
_SHOWN = 20


class CheckpointMismatchError(BrainStateError, ValueError):
    """A checkpoint does not fit its restore target; raised by ``load(..., strict=True)``.

    Nothing was restored. ``missing`` (paths of the target absent from the file),
    ``unexpected`` (paths of the file absent from the target) and ``mismatched`` (``{path:
    reason}`` for paths whose class or signature differ) hold the complete lists.
    """

    __module__ = "brainstate.checkpoint"

    def __init__(self, message: str, path: str = "", missing: tuple = (),
                 unexpected: tuple = (), mismatched: Mapping | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.missing = tuple(missing)
        self.unexpected = tuple(unexpected)
        self.mismatched = dict(mismatched or {})

    def __reduce__(self):
        return (type(self), (self.args[0], self.path, self.missing, self.unexpected,
                             self.mismatched))


@dataclasses.dataclass(frozen=True, eq=False)
class LoadResult:
    """What :func:`load` did: the restored paths and the ones it skipped (``strict=False``).

    Attributes
    ----------
    restored : tuple of tuple
        Graph paths of the states restored, in the target's order.
    missing : tuple of tuple
        Paths of target states the file has no data for (left unchanged).
    unexpected : tuple of tuple
        Paths in the file that the target has no state for (ignored).
    mismatched : dict
        ``{path: reason}`` for paths in both whose class or signature differ (left unchanged).
    metadata : dict
        The ``metadata`` given to :func:`save`.
    """

    __module__ = "brainstate.checkpoint"

    restored: tuple
    missing: tuple
    unexpected: tuple
    mismatched: dict
    metadata: dict

    @property
    def complete(self) -> bool:
        """Whether every target state was restored and every saved state was used."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __repr__(self) -> str:
        return (f"LoadResult(restored={len(self.restored)}, missing={list(self.missing)}, "
                f"unexpected={list(self.unexpected)}, mismatched={self.mismatched})")


# --- collecting the states of a target --------------------------------------------------------


def _format_path(path: tuple) -> str:
    return ".".join(str(p) for p in path) if path else "<root>"


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _collect(target: Any, action: str) -> list:
    """``[(path, state)]`` of ``target``: each state once, at its first graph path."""
    if isinstance(target, State):
        items: list[tuple[tuple, Any]] = [((), target)]
    elif (isinstance(target, Mapping) and target
          and all(isinstance(k, tuple) for k in target)
          and all(isinstance(v, State) for v in target.values())):
        items = list(target.items())  # a flat collection such as model.states()
    else:
        from brainstate import graph

        items = list(graph.states(target).items())
        if not items and _holds_refs(target):
            raise TypeError(
                f"Cannot {action} a {type(target).__qualname__} of TreefyState snapshots: "
                "checkpoints read and restore live states. Pass the module itself or "
                "module.states(), not module.state_trees()."
            )
    out, seen = [], set()
    for path, st in items:
        if id(st) in seen:  # the same state under two keys of a hand-made mapping
            continue
        seen.add(id(st))
        for part in path:
            if type(part) is not str and type(part) is not int:
                raise TypeError(
                    f"Cannot {action} the {type(st).__name__} at path {_format_path(path)}: path "
                    f"part {part!r} is a {type(part).__name__}, but checkpoint paths hold only "
                    "str and int parts (attribute names, dict keys, list indices). Use str "
                    "keys for dicts holding states."
                )
        out.append((path, st))
    return out


def _holds_refs(target: Any) -> bool:
    leaves = jax.tree_util.tree_leaves(target, is_leaf=lambda x: isinstance(x, TreefyState))
    return any(isinstance(x, TreefyState) for x in leaves)


def _record_key(path: tuple, leaf_path: tuple, used: set) -> str:
    key = "/".join(str(p) for p in path) or "<root>"
    if leaf_path:
        key += "/" + jax.tree_util.keystr(leaf_path, simple=True, separator="/")
    if key in used or key == "__metadata__":
        n = 2
        while f"{key}#{n}" in used:
            n += 1
        key = f"{key}#{n}"
    used.add(key)
    return key


def _entries(items: list) -> list:
    """``(key, array, info)`` records of the states' current values (one per leaf)."""
    values = _impl.core.gather([st for _, st in items])
    entries: list = []
    used: set = set()
    for (path, st), value in zip(items, values):
        cls = _class_name(type(st))
        jpath = list(path)
        # A Quantity's unit lives in the treedef, not in its mantissa leaf: record it per leaf
        # so that a load can refuse a target in another unit instead of reinterpreting numbers.
        units = leaf_units(value)
        for (leaf_path, leaf), unit in zip(jax.tree_util.tree_flatten_with_path(value)[0], units):
            if not isinstance(leaf, (jax.Array, np.ndarray, np.generic) + _PY_SCALARS):
                raise TypeError(
                    f"Cannot save the {type(st).__name__} at path {_format_path(path)}: its "
                    f"leaf {jax.tree_util.keystr(leaf_path) or '<value>'} is a "
                    f"{type(leaf).__qualname__}, not an array. Checkpoints hold arrays and "
                    "scalars; keep other objects as static attributes."
                )
            if isinstance(leaf, jax.core.Tracer):
                raise TypeError(
                    f"Cannot save the {type(st).__name__} at path {_format_path(path)}: its "
                    f"value is a traced value ({leaf.aval}) inside jit/grad/vmap. Save "
                    "concrete values, after the transformed call returns."
                )
            info = {"path": jpath, "class": cls}
            if leaf_path:
                info["leaf"] = jax.tree_util.keystr(leaf_path)
            if unit is not None:
                info["unit"] = unit
            if not isinstance(leaf, (jax.Array, np.ndarray)):
                leaf = np.asarray(leaf)
            entries.append((_record_key(path, leaf_path, used), leaf, info))
    return entries


# --- save -------------------------------------------------------------------------------------


def save(path, target: Any, *, metadata: Mapping | None = None, backend: str = "native") -> None:
    """Save the states of a module or state collection to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file (its folder must exist); an existing checkpoint there is replaced
        only once the new one is complete and on disk. With ``backend="orbax"``, a directory.
    target : Module, graph node, pytree of states, State or mapping of path -> State
        What to save: every ``State`` reachable from it, each once (e.g. ``model`` or
        ``model.states(brainstate.ParamState)`` for parameters only).
    metadata : dict, optional
        JSON-serialisable data stored with the checkpoint (step, config...); ``load`` returns
        it in :attr:`LoadResult.metadata`.
    backend : {"native", "orbax"}, default "native"
        ``"native"`` writes one file (arrays sharded over devices are gathered on the host);
        ``"orbax"`` writes an Orbax directory shard by shard (needs ``brainstate[orbax]``).

    Raises
    ------
    TypeError
        A state holds a non-array leaf or a traced value (save outside ``jit``), a path has a
        part that is neither str nor int, or ``metadata`` is not JSON-serialisable.
    OSError
        ``path`` cannot be written; nothing at ``path`` changed.

    Notes
    -----
    Crash safety (``backend="native"``): the file is written to a temporary
    ``.<name>.<8 hex digits>.tmp`` beside ``path``, ``fsync``-ed, and renamed over ``path``. A
    process killed at any moment of a save, even with ``SIGKILL``, leaves at ``path`` either the
    previous complete checkpoint or the new complete one (or nothing, if there was none before),
    which :func:`load` reads and verifies as usual; never a torn file.

    A killed save leaves its temporary file behind. It never blocks or alters a later save
    (temporary names are random and created exclusively), and on POSIX systems a later save to
    the same ``path`` deletes it: each save holds an exclusive ``flock`` on its temporary until
    the rename, and removes the temporaries of its ``path`` that no live save holds and that
    were last modified more than 60 seconds ago (the age guards the moment between a
    temporary's creation and its lock, and file systems whose locks stay on one machine). On
    Windows leftovers are ignored and never removed. Other files in the folder are not touched.

    ``backend="orbax"`` writes a directory, which cannot be renamed over another in one step:
    see the module's "Orbax" section for what a killed save leaves and how a later save
    clears it.

    Differs from upstream: ``braintools.file.msgpack_save`` also writes a temporary and renames
    it, but without ``fsync`` (a power loss can leave an empty or partial file after the rename)
    and it leaves the temporaries of killed saves for the user to find and delete.

    Examples
    --------
    >>> import os, tempfile, jax.numpy as jnp, brainstate
    >>> from brainstate.checkpoint import save, load
    >>> class Net(brainstate.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = brainstate.ParamState(jnp.zeros(3))
    >>> net = Net()
    >>> net.w.value = jnp.arange(3.0)
    >>> p = os.path.join(tempfile.mkdtemp(), "net.ckpt")
    >>> save(p, net, metadata={"step": 10})
    >>> fresh = Net()
    >>> load(p, fresh).metadata, fresh.w.value.tolist()
    ({'step': 10}, [0.0, 1.0, 2.0])
    """
    if backend not in _BACKENDS:
        raise ValueError(f"save(): backend must be one of {_BACKENDS}, got {backend!r}.")
    items = _collect(target, "save")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"save(): metadata must be a dict, got {type(metadata).__name__}.")
    entries = _entries(items)
    if backend == "orbax":
        from brainstate.checkpoint import _orbax

        _orbax.save(path, entries, dict(metadata or {}))
        return
    for key, leaf, _ in entries:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            raise ValueError(
                f"Cannot save {key!r} to the single checkpoint file {os.fspath(path)!r}: the "
                "array spans several processes. Save it with backend='orbax' (pip install "
                "'brainstate[orbax]'), which writes each process's shards."
            )
    write_checkpoint(path, entries, metadata)


# --- load -------------------------------------------------------------------------------------


class _Saved:
    """The records of one saved state."""

    __slots__ = ("cls", "keys", "units", "values")

    def __init__(self, cls: str) -> None:
        self.cls = cls
        self.keys: list = []  # keystr of each leaf, in save (flatten) order
        self.units: list = []  # the unit name of each leaf inside a Quantity, else None
        self.values: list = []


def _group(path: str, records) -> dict:
    """``{graph path: _Saved}`` from ``(key, value, info)`` records; format errors name ``path``."""
    saved: dict = {}
    for key, value, info in records:
        p = info.get("path")
        cls = info.get("class")
        leaf = info.get("leaf", "")
        unit = info.get("unit")
        if not isinstance(p, list) or not isinstance(cls, str) or not isinstance(leaf, str) \
                or not (unit is None or isinstance(unit, str)) \
                or not all(type(x) is str or type(x) is int for x in p):
            raise CheckpointFormatError(
                f"{path!r} is a checkpoint file but not one of states: record {key!r} has no "
                "valid graph path and state class (info {info!r:.120}). It was written by "
                "write_checkpoint, not brainstate.checkpoint.save; read it with read_checkpoint."
            )
        p = tuple(p)
        entry = saved.get(p)
        if entry is None:
            entry = saved[p] = _Saved(cls)
        elif entry.cls != cls or leaf in entry.keys:
            raise CheckpointFormatError(
                f"{path!r} is corrupted: the records of path {_format_path(p)} disagree (record "
                f"{key!r} repeats leaf {leaf or '<value>'!r} or names another class). Restore "
                "the file from a backup."
            )
        entry.keys.append(leaf)
        entry.units.append(unit)
        entry.values.append(value)
    return saved


_KEYS_CACHE: dict = {}


def _target_layout(st: State) -> tuple:
    """(treedef, leaf keystrs, leaf units, expected leaf specs) of a state's signature."""
    sig = st._signature
    if sig.treedef is None:
        return None, [""], [None], [(tuple(sig.shape), _canonical(sig.dtype))]
    cached = _KEYS_CACHE.get(sig.treedef)
    if cached is None:
        dummy = jax.tree_util.tree_unflatten(sig.treedef, [0] * sig.treedef.num_leaves)
        keys = [jax.tree_util.keystr(kp)
                for kp, _ in jax.tree_util.tree_flatten_with_path(dummy)[0]]
        cached = (keys, leaf_units(dummy))
        if len(_KEYS_CACHE) > 4096:
            _KEYS_CACHE.clear()
        _KEYS_CACHE[sig.treedef] = cached
    keys, units = cached
    return sig.treedef, keys, units, list(sig.specs)


def _canonical(dtype: Any) -> Any:
    try:
        return jax.dtypes.canonicalize_dtype(dtype)
    except (TypeError, ValueError):
        return dtype


def _file_spec(value: Any) -> tuple:
    """The signature entry of a saved leaf: what ``leaf_spec`` gives for an array like it."""
    return (tuple(value.shape), _canonical(value.dtype))


def _compare(st: State, saved: _Saved, check: bool) -> tuple:
    """(None, treedef) when ``saved`` fits ``st``, else (reason, None)."""
    cls = _class_name(type(st))
    if cls != saved.cls:
        return f"state class {saved.cls} in the file, {cls} in the target", None
    treedef, keys, units, specs = _target_layout(st)
    if keys != saved.keys:
        show = lambda ks: "[" + ", ".join(k or "<value>" for k in ks) + "]"  # noqa: E731
        return (f"value leaves {show(saved.keys)} in the file, {show(keys)} in the target",
                None)
    # Checked even when re-binding: the restored value takes the target's unit, so a unit
    # difference would silently rescale (mV data read as V) rather than re-bind anything.
    for k, want, got in zip(keys, units, saved.units):
        if want != got:
            where = f"leaf {k}: " if k else ""
            show = lambda unit: f"unit {unit}" if unit else "no unit"  # noqa: E731
            return (f"{where}{show(got)} in the file, {show(want)} in the target (convert the "
                    "target's values or load into a model built with the saved units)", None)
    if check:
        for k, want, value in zip(keys, specs, saved.values):
            got = _file_spec(value)
            if got != want:
                where = f"leaf {k}: " if k else ""
                return (f"{where}{format_spec(got)} in the file, {format_spec(want)} in the "
                        "target", None)
    return None, treedef


def _match(saved: dict, items: list) -> tuple:
    """(plan [(path, state, saved, treedef)], missing, unexpected, mismatched)."""
    check = not _impl.core.is_rebinding()
    plan, missing, mismatched = [], [], {}
    seen = set()
    for path, st in items:
        entry = saved.get(path)
        if entry is None:
            treedef = st._signature.treedef
            if treedef is not None and treedef.num_leaves == 0:
                continue  # an empty value: nothing was saved, nothing to restore
            missing.append(path)
            continue
        seen.add(path)
        reason, treedef = _compare(st, entry, check)
        if reason is not None:
            mismatched[path] = reason
        else:
            plan.append((path, st, entry, treedef))
    unexpected = [p for p in saved if p not in seen]
    return plan, tuple(missing), tuple(unexpected), mismatched


def _mismatch_error(path: str, target: Any, missing, unexpected, mismatched):
    lines = [f"Cannot load checkpoint {path!r} into this {type(target).__qualname__}: it does "
             "not match the target, so nothing was restored."]

    def block(title: str, rows: list) -> None:
        if not rows:
            return
        lines.append(f"  {len(rows)} {title}:")
        lines.extend(f"    {r}" for r in rows[:_SHOWN])
        if len(rows) > _SHOWN:
            lines.append(f"    ... and {len(rows) - _SHOWN} more (all in the error's "
                         f"attribute {title.split()[0]})")

    block("missing (target states the file has no data for)",
          [_format_path(p) for p in missing])
    block("unexpected (saved states the target does not have)",
          [_format_path(p) for p in unexpected])
    block("mismatched (class or signature differ)",
          [f"{_format_path(p)}: {r}" for p, r in mismatched.items()])
    lines.append("Load a checkpoint of a model built by the same code, or pass strict=False "
                 "to restore the matching states and get the others listed in the result.")
    return CheckpointMismatchError("\n".join(lines), path, missing, unexpected, mismatched)


def _placement(leaf: Any) -> tuple:
    """(kind, sharding) telling how to turn a loaded array into what ``leaf`` is."""
    if leaf is None:
        return "device", None
    if isinstance(leaf, jax.Array):
        if isinstance(leaf, jax.core.Tracer) or leaf.is_deleted():
            return "device", None
        return "device", leaf.sharding if leaf.committed else None
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return "device", getattr(leaf, "sharding", None)
    if isinstance(leaf, np.ndarray):
        return "numpy", None
    if isinstance(leaf, np.generic):
        return "npscalar", None
    t = type(leaf)
    if t in _PY_SCALARS:
        return t, None
    return "device", None


class _FastPut:
    """``jax.device_put(x)`` of a numpy array onto the default device, without JAX's
    per-array Python dispatch (~20 us per array, 20-30 ms of a 1,000-state load).

    Calls the C++ ``batched_device_put`` that ``jax.device_put`` ends in (internal API, as
    JAX's internal ``pxla`` calls it), which adopts a 64-byte aligned host buffer
    without a copy. Enabled only after checking, on first use, that it gives what
    ``jax.device_put`` gives (type, sharding, committed, dtype, values); any difference or
    missing internal disables it for the process.
    """

    def __init__(self) -> None:
        self.put: Any = None  # None: not probed yet; False: unavailable
        self._canonical: Any = None

    def _probe(self) -> None:
        self.put = False
        try:
            from brainstate._jax_internals import (host_transfer_modules, jax_config,
                                                   jax_core as jcore)

            jdtypes, xc = host_transfer_modules()

            if jax_config.default_device.value is not None:  # = jax.config.jax_default_device
                return
            dev = jax.local_devices()[0]
            # JAX 0.12 deprecates the class's constructor for this factory
            make = getattr(jax.sharding, "make_single_device_sharding", None)
            sharding = make(dev) if make is not None else jax.sharding.SingleDeviceSharding(dev)

            def put(x: np.ndarray) -> Any:
                aval = jcore.ShapedArray(x.shape, x.dtype)
                return xc.batched_device_put(aval, sharding, [x], [dev], False)

            probe = np.arange(6, dtype=np.float32).reshape(2, 3)
            got, want = put(probe), jax.device_put(probe)
            if (type(got) is type(want) and got.sharding == want.sharding
                    and got.committed == want.committed and got.dtype == want.dtype
                    and np.array_equal(np.asarray(got), probe)):
                self._canonical = jdtypes.canonicalize_dtype
                self.put = put
        except Exception:  # an internal moved: jax.device_put does the work
            self.put = False

    def try_put(self, x: Any) -> Any:
        """The placed array, or None when ``jax.device_put`` must do it."""
        if self.put is None:
            self._probe()
        if (self.put is False or type(x) is not np.ndarray
                or self._canonical(x.dtype) != x.dtype):
            return None
        return self.put(x)


_FAST_PUT = _FastPut()


def _device_put(arrays: list, shardings: list) -> list:
    """``jax.device_put(arrays, shardings)``, uncommitted numpy arrays on the fast path."""
    out: list = [None] * len(arrays)
    slow = []
    for i, (x, sharding) in enumerate(zip(arrays, shardings)):
        placed = _FAST_PUT.try_put(x) if sharding is None else None
        if placed is None:
            slow.append(i)
        else:
            out[i] = placed
    if slow:
        for i, arr in zip(slow, jax.device_put([arrays[i] for i in slow],
                                               [shardings[i] for i in slow])):
            out[i] = arr
    return out


def _materialize(plan: list, fetch: Any = None) -> list:
    """The value tree to restore into each planned state, every leaf in its target's form.

    ``fetch(requests)``, given ``[(saved value, kind, sharding)]``, returns one array per
    request: placed on ``sharding`` (default device when ``None``) for kind ``"device"``, a
    numpy array otherwise. Without it the saved values are numpy arrays (or PRNG key arrays)
    and a batched ``jax.device_put`` places them.
    """
    requests: list = []
    for _, st, entry, _ in plan:
        current = st._value
        targets = (jax.tree_util.tree_leaves(current)
                   if current is not _impl.core.INVALID else [])
        if len(targets) != len(entry.values):  # poisoned, or under a transform's view
            targets = [None] * len(entry.values)
        for value, leaf in zip(entry.values, targets):
            kind, sharding = _placement(leaf)
            requests.append((value, kind, sharding))
    if fetch is not None:
        arrays = fetch(requests)
    else:
        arrays = [r[0] for r in requests]
        on_device = [i for i, r in enumerate(requests) if r[1] == "device"]
        if on_device:
            placed = _device_put([arrays[i] for i in on_device],
                                 [requests[i][2] for i in on_device])
            for i, arr in zip(on_device, placed):
                arrays[i] = arr
    trees, pos = [], 0
    for _, _, entry, treedef in plan:
        leaves = []
        for arr, (_, kind, _) in zip(arrays[pos:pos + len(entry.values)],
                                     requests[pos:pos + len(entry.values)]):
            if kind == "numpy":
                arr = np.array(arr)  # owns its data (the read buffer is a padded slice)
            elif kind == "npscalar":
                arr = np.array(arr)[()]
            elif kind != "device":
                arr = kind(np.asarray(arr).item())
            leaves.append(arr)
        pos += len(entry.values)
        trees.append(leaves[0] if treedef is None
                     else jax.tree_util.tree_unflatten(treedef, leaves))
    return trees


def _apply(plan: list, trees: list) -> None:
    done: list = []
    try:
        for (path, st, _, _), tree in zip(plan, trees):
            done.append((st, st._value))
            st.restore_value(tree)
    except BaseException:
        # A restore hook failed (after its state stored the new value): put back the previous
        # values of that state and of those restored before it, so the target stays as it was.
        for st, old in reversed(done):
            st._restore_silent(old)
        raise


def load(path, target: Any, *, strict: bool = True, verify: bool = True) -> LoadResult:
    """Restore the states of ``target`` from a checkpoint written by :func:`save`.

    The whole file is read and checked (header CRC, layout, size, and the data CRCs unless
    ``verify=False``) and every path, class and signature is compared before any state changes.
    Each restored state goes through :meth:`State.restore_value`: it keeps its identity, hooks
    and signature, fires its ``restore`` hooks once, and its new value is placed on the
    sharding the target's current value has.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint file, or a directory written with ``backend="orbax"``.
    target : Module, graph node, pytree of states, State or mapping of path -> State
        What to restore into, matched by graph path (build it with the code that built the
        saved model; ``transform.eval_shape(lambda: Model())`` gives an abstract one).
    strict : bool, default True
        ``True``: any target state without data, saved state without target or class/signature
        difference raises :class:`CheckpointMismatchError` listing all of them, and nothing
        changes. ``False``: restore the states that match, report the rest in the result.
    verify : bool, default True
        Check every data byte against its CRC-32 (computed in a second thread while the file
        is read). ``False`` skips only that: the header CRC, the layout and the file size
        (truncation) are always checked. Orbax directories
        have no data CRC; their metadata document is always checked.

    Returns
    -------
    LoadResult
        The restored and skipped paths, and the saved ``metadata``.

    Raises
    ------
    CheckpointMismatchError
        ``strict=True`` and the checkpoint does not fit ``target``.
    CheckpointFormatError
        The file is truncated, corrupted, not a checkpoint of states, or from a newer format.
    OSError
        The file cannot be opened.
    """
    spath = os.fspath(path)
    items = _collect(target, "load into")
    if os.path.isdir(spath):
        from brainstate.checkpoint._orbax import META_NAME

        if not os.path.isfile(os.path.join(spath, META_NAME)):
            # decided before importing the optional Orbax backend, so a stray folder gets
            # the same answer with or without orbax installed
            raise CheckpointFormatError(
                f"{spath!r} is a directory but not a brainstate checkpoint: it has no "
                f"{META_NAME}.")
        from brainstate.checkpoint import _orbax

        metadata, records, fetch = _orbax.open_records(spath)
    else:
        # Each array in a buffer of its own: placed on a CPU device without another copy,
        # never aliasing the file, and not keeping the other arrays' memory alive.
        metadata, records, _ = _format._read(spath, mmap=False, verify=verify, as_jax=False,
                                             each=True)
        fetch = None
    plan, missing, unexpected, mismatched = _match(_group(spath, records), items)
    if strict and (missing or unexpected or mismatched):
        raise _mismatch_error(spath, target, missing, unexpected, mismatched)
    _apply(plan, _materialize(plan, fetch))
    return LoadResult(tuple(p for p, *_ in plan), missing, unexpected, mismatched, metadata)
