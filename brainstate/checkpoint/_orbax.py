"""The Orbax backend of ``save``/``load``: sharded arrays written and read shard by shard.

Used through ``save(path, model, backend="orbax")`` and ``load`` of a directory; needs the
optional extra ``brainstate[orbax]`` (``orbax-checkpoint``), imported only here and only then.

A checkpoint is a directory: Orbax's ``PyTreeCheckpointHandler`` layout for the flat tree
``{"s0": leaf0, "s1": leaf1, ...}`` plus :data:`META_NAME`, a JSON document
``{"format": ..., "format_version": 1, "crc32": ..., "body": {"metadata": {...}, "records":
[...]}}`` whose records carry, per leaf, the same ``key``/``info`` as a native file and the
logical ``dtype``/``shape`` (typed PRNG keys are stored as their key data, with
``prng_impl``). ``crc32`` is the CRC-32 of ``body`` re-encoded compactly, so a damaged document
is refused before any array is read.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import zlib
from typing import Any

import jax
import numpy as np

from brainstate.checkpoint._format import (
    CheckpointFormatError,
    CheckpointRecord,
    _describe_os_error,
)

__all__ = ["save", "open_records", "META_NAME"]

#: The brainstate document inside an Orbax checkpoint directory.
META_NAME = "brainstate.json"
_FORMAT = "brainstate.checkpoint.orbax"
_VERSION = 1
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _ocp():
    try:
        import orbax.checkpoint as ocp
    except ImportError as exc:
        raise ImportError(
            "Orbax checkpoints need the optional dependency orbax-checkpoint: "
            "pip install 'brainstate[orbax]' (or save with backend='native')."
        ) from exc
    return ocp


def _is_key(x: Any) -> bool:
    return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _crc(body: dict) -> str:
    return f"{zlib.crc32(_ENCODER.encode(body).encode('utf-8')):08x}"


def save(path, entries: list, metadata: dict) -> None:
    """Write ``(key, array, info)`` entries and ``metadata`` as an Orbax directory at ``path``."""
    ocp = _ocp()
    if jax.process_count() > 1:
        raise NotImplementedError(
            "save(..., backend='orbax') runs in a single process: the directory is assembled "
            f"and renamed by this process, and jax.process_count() is {jax.process_count()}. "
            "Use orbax.checkpoint's CheckpointManager directly for multi-process saves."
        )
    path = os.path.abspath(os.fspath(path))
    tree, records = {}, []
    for i, (key, leaf, info) in enumerate(entries):
        if isinstance(leaf, jax.core.Tracer):
            raise TypeError(
                f"checkpoint entry {key!r} is a traced value ({leaf.aval}); save concrete "
                "arrays outside jit/grad/vmap."
            )
        name = f"s{i}"
        rec = {"key": key, "name": name, "dtype": str(leaf.dtype), "shape": list(leaf.shape),
               "info": info}
        if _is_key(leaf):
            rec["prng_impl"] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        records.append(rec)
        tree[name] = leaf
    body = {"metadata": metadata, "records": records}
    try:
        doc = _ENCODER.encode({"format": _FORMAT, "format_version": _VERSION,
                               "crc32": _crc(body), "body": body})
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"checkpoint metadata is not JSON-serialisable ({exc}); keep it to dicts, lists, "
            "str, int, finite float, bool and None."
        ) from None

    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise _describe_os_error(FileNotFoundError(2, os.strerror(2)), path, "write")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    try:
        if tree:
            ckptr = ocp.Checkpointer(ocp.PyTreeCheckpointHandler())
            try:
                ckptr.save(tmp, args=ocp.args.PyTreeSave(tree))
            finally:
                ckptr.close()
        else:  # Orbax refuses an empty tree; the document alone describes the checkpoint
            os.mkdir(tmp)
        with open(os.path.join(tmp, META_NAME), "w", encoding="utf-8") as f:
            f.write(doc)
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _describe_os_error(exc, path, "write") from exc
        raise


def _replace(tmp: str, path: str) -> None:
    # A directory cannot be renamed over a non-empty one: move the old checkpoint aside first.
    # Between the two renames ``path`` is briefly absent, but a complete checkpoint always
    # exists (the old one under ``old`` until the new one is in place).
    if os.path.lexists(path):
        old = f"{tmp}.old"
        os.rename(path, old)
        os.rename(tmp, path)
        if os.path.isdir(old) and not os.path.islink(old):
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.unlink(old)
    else:
        os.rename(tmp, path)


class _Lazy:
    """A saved leaf not read yet: its logical shape and dtype, and how it is stored."""

    __slots__ = ("name", "shape", "dtype", "stored_shape", "stored_dtype", "prng_impl")

    def __init__(self, name, shape, dtype, stored_shape, stored_dtype, prng_impl):
        self.name, self.shape, self.dtype = name, shape, dtype
        self.stored_shape, self.stored_dtype, self.prng_impl = (stored_shape, stored_dtype,
                                                                 prng_impl)


def _read_document(path: str) -> dict:
    meta_file = os.path.join(path, META_NAME)
    if not os.path.isfile(meta_file):
        raise CheckpointFormatError(
            f"{path!r} is a directory but not a brainstate checkpoint: it has no {META_NAME}. "
            "Give the path of a checkpoint written by brainstate.checkpoint.save."
        )
    try:
        with open(meta_file, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
        fmt, version, crc, body = doc["format"], doc["format_version"], doc["crc32"], doc["body"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointFormatError(
            f"{path!r} is corrupted: {META_NAME} is not the expected JSON document ({exc}). "
            "Restore it from a backup."
        ) from None
    if fmt != _FORMAT:
        raise CheckpointFormatError(
            f"{path!r} is not a brainstate checkpoint: format is {fmt!r}, expected {_FORMAT!r}."
        )
    if crc != _crc(body):
        raise CheckpointFormatError(
            f"{path!r} is corrupted: {META_NAME} fails its CRC-32 check (stored {crc!r}, "
            f"computed {_crc(body)}). Restore it from a backup."
        )
    if not isinstance(version, int) or version > _VERSION:
        raise CheckpointFormatError(
            f"{path!r} uses Orbax checkpoint format version {version!r}, newer than the newest "
            f"this brainstate reads ({_VERSION}); upgrade brainstate to load it."
        )
    return body


def _lazy(path: str, rec: dict) -> _Lazy:
    shape = tuple(int(d) for d in rec["shape"])
    impl = rec.get("prng_impl")
    if impl is None:
        dtype = np.dtype(jax.numpy.dtype(rec["dtype"]))
        return _Lazy(rec["name"], shape, dtype, shape, dtype, None)
    try:
        kshape = jax.eval_shape(lambda: jax.random.key(0, impl=impl))
        data = jax.random.key_data(jax.random.key(0, impl=impl))
    except Exception as exc:
        raise CheckpointFormatError(
            f"{path!r}: cannot rebuild the PRNG key {rec['key']!r} (implementation {impl!r}): "
            f"{exc}. Register that PRNG implementation before loading."
        ) from None
    return _Lazy(rec["name"], shape, kshape.dtype, shape + tuple(data.shape), data.dtype, impl)


def open_records(path: str) -> tuple:
    """(metadata, records with lazy values, fetch) of the Orbax checkpoint directory ``path``."""
    _ocp()  # a missing extra is reported as such, before the directory is looked at
    body = _read_document(path)
    try:
        metadata, recs = body["metadata"], body["records"]
        records = [CheckpointRecord(r["key"], _lazy(path, r), r["info"]) for r in recs]
        if not isinstance(metadata, dict) or not all(isinstance(r.info, dict) for r in records):
            raise TypeError("metadata and every info must be objects")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointFormatError(
            f"{path!r} is corrupted: the record table of {META_NAME} is inconsistent "
            f"({type(exc).__name__}: {exc}). Restore it from a backup."
        ) from None

    def fetch(requests: list) -> list:
        return _fetch(path, requests, [r.value for r in records])

    return metadata, records, fetch


def _key_data_sharding(sharding: Any, ndim: int) -> Any:
    # Key data has the key array's axes plus trailing implementation axes, unsharded.
    from jax.sharding import NamedSharding, PartitionSpec

    if isinstance(sharding, NamedSharding):
        spec = tuple(sharding.spec) + (None,) * (ndim - len(sharding.spec))
        return NamedSharding(sharding.mesh, PartitionSpec(*spec))
    single = getattr(jax.sharding, "is_single_device_sharding", None)  # JAX 0.12's spelling
    if single(sharding) if single is not None \
            else isinstance(sharding, jax.sharding.SingleDeviceSharding):
        return sharding
    return None


def _fetch(path: str, requests: list, every: list) -> list:
    ocp = _ocp()
    if not requests:
        return []
    item, args = {}, {}
    for lazy, kind, sharding in requests:
        item[lazy.name] = jax.ShapeDtypeStruct(lazy.stored_shape, lazy.stored_dtype)
        if sharding is not None and lazy.prng_impl is not None:
            sharding = _key_data_sharding(sharding, len(lazy.stored_shape))
        if kind == "device" and sharding is not None:
            args[lazy.name] = ocp.ArrayRestoreArgs(
                sharding=sharding, global_shape=lazy.stored_shape, dtype=lazy.stored_dtype)
        else:  # host data; uncommitted device arrays are made from it below
            args[lazy.name] = ocp.RestoreArgs(restore_type=np.ndarray)
    try:
        restore = ocp.args.PyTreeRestore(item=item, restore_args=args, partial_restore=True)
    except TypeError:  # Orbax before partial_restore: read the other arrays too, on the host
        for lazy in every:
            if lazy.name not in item:
                item[lazy.name] = jax.ShapeDtypeStruct(lazy.stored_shape, lazy.stored_dtype)
                args[lazy.name] = ocp.RestoreArgs(restore_type=np.ndarray)
        restore = ocp.args.PyTreeRestore(item=item, restore_args=args)
    ckptr = ocp.Checkpointer(ocp.PyTreeCheckpointHandler())
    try:
        out = ckptr.restore(path, args=restore)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise CheckpointFormatError(
            f"{path!r} is corrupted: Orbax cannot read its arrays ({type(exc).__name__}: "
            f"{exc}). Restore it from a backup."
        ) from exc
    finally:
        ckptr.close()
    result = []
    for lazy, kind, sharding in requests:
        arr = out[lazy.name]
        if kind == "device" and sharding is None:
            arr = jax.device_put(arr)
        if lazy.prng_impl is not None:
            arr = jax.random.wrap_key_data(arr, impl=lazy.prng_impl)
        result.append(arr)
    return result
