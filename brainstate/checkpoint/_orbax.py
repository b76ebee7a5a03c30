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

Crash safety
------------
A save to ``<folder>/<name>`` (a symlink's target when ``path`` is a symlink, as for a native
file) uses these names beside it, ``<h>`` being 8 random hex digits of that save:

* ``.<name>.<h>.tmp.lock``: an empty file, created first (exclusively) and removed last. On
  POSIX systems the save holds an exclusive ``flock`` on it from its creation until the new
  checkpoint is in place and nothing else of the save is left.
* ``.<name>.<h>.tmp``: the new checkpoint, assembled by Orbax (through its own staging
  directory ``.<name>.<h>.tmp.orbax-checkpoint-tmp``, with ``-<digits>`` in older Orbax
  releases), then :data:`META_NAME` is written into it and ``fsync``-ed. A directory with its
  :data:`META_NAME` is complete.
* ``.<name>.<h>.tmp.old``: what was at ``path``. A directory cannot be renamed over a
  non-empty one, so the swap is two renames: ``path`` to ``.old``, then the new checkpoint to
  ``path``; ``.old`` is then deleted, its :data:`META_NAME` first, so that a ``.old``
  directory still holding one is always a complete checkpoint.

A save killed (even by ``SIGKILL``) before the first rename leaves ``path`` as it was; after
the second, ``path`` holds the new checkpoint. Killed between the two, it leaves ``path``
missing and the previous checkpoint, complete, under ``.old``: :func:`load` of ``path`` then
fails with ``FileNotFoundError`` until the next save to that path, and never deletes anything.
An exception during a save puts ``.old`` back at ``path`` itself (or deletes it, once the new
checkpoint is in place) and removes the rest.

Each save first removes what killed saves of the same path left, with the native backend's
rules (``_format._remove_stale_temps`` handles native temporaries of the same name): only the
names above, with exactly that spelling; only for a lock file that no live save holds (taken
here with a non-blocking ``flock``, and still the same file at that name once held) and whose
save shows no change for 60 seconds (the newest modification time of its lock file, its
entries and their direct children: the guard covers the instant between a lock file's
creation and its lock, and file systems that keep locks on one machine); never through a
symbolic link (links are neither followed nor removed). Such a save's temporary and staging
directories are deleted. Its ``.old`` is deleted when ``path`` exists (``path`` then holds a
newer complete checkpoint); when ``path`` is missing, the complete ``.old`` whose
:data:`META_NAME` was written last is renamed back to ``path`` (a ``.old`` that is a file, a
native checkpoint the Orbax save replaced, counts as complete), unless a save that is still
running or too young to judge also has a ``.old``; nothing else is done to ``.old`` entries
then, and the lock file of a save that still has entries is kept so that a later save looks
again. Names without a lock file (left by releases that had none) are kept, like all
leftovers where ``flock`` is missing (Windows) or refused (some network file systems): none of
them ever blocks or changes a later save, since every save's names are new.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import stat
import time
import zlib
from typing import Any

import jax
import numpy as np

from brainstate.checkpoint import _format as _fmt
from brainstate.checkpoint._format import (
    CheckpointFormatError,
    CheckpointRecord,
    _describe_os_error,
    _fsync_dir,
    _fsync_file,
    _hold_temp_lock,
    _remove_stale_temps,
)

__all__ = ["save", "open_records", "META_NAME"]

#: The brainstate document inside an Orbax checkpoint directory.
META_NAME = "brainstate.json"
_FORMAT = "brainstate.checkpoint.orbax"
_VERSION = 1
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _ocp():
    try:
        import orbax.checkpoint as ocp  # type: ignore[import-not-found]  # optional dependency
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

    # like a native file: a symlink's target is replaced, the link is kept
    target = os.path.realpath(path) if os.path.islink(path) else path
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise _describe_os_error(FileNotFoundError(2, os.strerror(2)), path, "write")
    # Before the new checkpoint takes disk space: what killed saves of this path left behind.
    _remove_stale_saves(folder, os.path.basename(target), target)
    try:
        stem, held = _claim(folder, os.path.basename(target))
    except OSError as exc:
        raise _describe_os_error(exc, path, "write") from exc
    tmp = os.path.join(folder, stem)
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
            _fsync_file(f.fileno())
        _fsync_dir(tmp)
        _replace(tmp, target)
    except BaseException as exc:
        _abandon(folder, stem, target)
        if isinstance(exc, OSError):
            raise _describe_os_error(exc, path, "write") from exc
        raise
    finally:
        _release(folder, stem, held)


# --- the names of one save, and the swap ------------------------------------------------------

_LOCK = ".lock"
_OLD = ".old"
#: Orbax's own staging directory beside the directory it writes (``-<digits>`` before 0.12).
_STAGING = r"\.orbax-checkpoint-tmp(?:-[0-9]+)?"


def _claim(folder: str, base: str) -> tuple:
    """A fresh stem ``.<base>.<8 hex>.tmp`` whose lock file this save created and holds."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        stem = f".{base}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(os.path.join(folder, stem + _LOCK), flags, 0o666)
        except FileExistsError:  # another save drew the same digits: draw again
            continue
        try:
            held = _hold_temp_lock(fd)  # a duplicate: the lock lasts until _release closes it
        finally:
            os.close(fd)
        return stem, held


def _entries(folder: str, stem: str) -> list:
    """The names of a save's temporary, staging and ``.old`` entries that exist now."""
    staging = re.compile(re.escape(stem) + _STAGING)
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it if e.name.startswith(stem)]
    except OSError:
        return []
    return [n for n in names if n in (stem, stem + _OLD) or staging.fullmatch(n)]


def _is_real_dir(entry: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(entry).st_mode)  # False for a symlink to a directory
    except OSError:
        return False


def _discard(entry: str) -> None:
    """Delete a superseded checkpoint (best effort: what stays is retried by a later save's
    clean-up). A directory loses its document first, so a ``.old`` caught half deleted is
    never taken for a complete checkpoint."""
    if _is_real_dir(entry):
        try:
            os.unlink(os.path.join(entry, META_NAME))
        except OSError:
            pass
        shutil.rmtree(entry, ignore_errors=True)
    else:
        try:
            os.unlink(entry)
        except OSError:
            pass


def _put_back(old: str, path: str) -> None:
    """Rename ``old`` to ``path``, never over something that is there meanwhile."""
    if _is_real_dir(old):
        os.rename(old, path)  # refuses a non-empty directory at path
    else:  # a checkpoint file: a rename would replace a file saved at path meanwhile
        os.link(old, path)
        os.unlink(old)


def _replace(tmp: str, path: str) -> None:
    # A directory cannot be renamed over a non-empty one: move what is at ``path`` aside
    # first. If something appears at ``path`` between the two renames (a save of another
    # process), move that aside in turn; ``old`` is dropped only while ``path`` exists.
    old = tmp + _OLD
    for attempt in range(3):
        if os.path.lexists(path):
            if os.path.lexists(old):
                _discard(old)
            try:
                os.rename(path, old)
            except FileNotFoundError:  # gone meanwhile
                pass
        try:
            os.rename(tmp, path)
            break
        except OSError as exc:
            if attempt == 2 or exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR,
                                                 errno.EISDIR):
                raise
    _fsync_dir(os.path.dirname(path))
    if os.path.lexists(old):
        _discard(old)


def _abandon(folder: str, stem: str, path: str) -> None:
    """After an exception: put back what the save moved aside if ``path`` is missing, then
    delete the save's other entries (best effort; an exception during this leaves the lock
    file, see :func:`_release`, and a later save finishes the job)."""
    old = os.path.join(folder, stem + _OLD)
    if os.path.lexists(old) and not os.path.lexists(path):
        try:
            _put_back(old, path)
        except OSError:
            pass
    for name in _entries(folder, stem):
        entry = os.path.join(folder, name)
        if name != stem + _OLD:
            shutil.rmtree(entry, ignore_errors=True)
        elif os.path.lexists(path):
            _discard(entry)


def _release(folder: str, stem: str, held) -> None:
    # The lock file goes last, and only once nothing else of the save is left: entries without
    # their lock file would never be judged again (a later save keeps such names).
    try:
        if not _entries(folder, stem):
            os.unlink(os.path.join(folder, stem + _LOCK))
    except OSError:
        pass
    finally:
        if held is not None:
            os.close(held)


# --- what killed saves left behind --------------------------------------------------------------


def _newest_change(folder: str, stem: str, names: list, lock_mtime: float) -> float:
    """The newest modification time of a save's lock file, entries and their children."""
    newest = lock_mtime
    for name in names:
        entry = os.path.join(folder, name)
        try:
            newest = max(newest, os.lstat(entry).st_mtime)
            if _is_real_dir(entry):
                with os.scandir(entry) as it:
                    for child in it:
                        newest = max(newest, child.stat(follow_symlinks=False).st_mtime)
        except OSError:
            pass
    return newest


def _lock_if_dead(folder: str, stem: str, names: list, now: float):
    """An open descriptor holding the lock of a save that is gone, or None.

    The save is gone when its lock file is a regular file (opened without following a link)
    that no one holds, that is still the file at that name once locked (a save unlinks it
    before letting go, see :func:`_release`), and when nothing of the save changed in
    ``_STALE_TEMP_AGE_S`` seconds.
    """
    lock = os.path.join(folder, stem + _LOCK)
    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(lock, flags)
    except OSError:
        return None  # gone meanwhile, a symlink, or not ours to read
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError
        _fmt.fcntl.flock(fd, _fmt.fcntl.LOCK_EX | _fmt.fcntl.LOCK_NB)
        there = os.stat(lock, follow_symlinks=False)
        if (there.st_dev, there.st_ino) != (st.st_dev, st.st_ino):
            raise OSError
        if now - _newest_change(folder, stem, names, st.st_mtime) < _fmt._STALE_TEMP_AGE_S:
            raise OSError
    except OSError:  # held by a live save, locks refused here, replaced, or too young
        os.close(fd)
        return None
    return fd


def _complete_since(old: str):
    """When the ``.old`` checkpoint was completed (its document's mtime), or None if it is
    not a complete checkpoint (a directory without the document, a link)."""
    try:
        st = os.lstat(old)
        if stat.S_ISREG(st.st_mode):
            return st.st_mtime
        if stat.S_ISDIR(st.st_mode):
            doc = os.lstat(os.path.join(old, META_NAME))
            if stat.S_ISREG(doc.st_mode):
                return doc.st_mtime
    except OSError:
        pass
    return None


def _remove_stale_saves(folder: str, base: str, path: str) -> None:
    """Clear what killed saves to ``folder/base`` left, and put back a checkpoint one of them
    had moved aside when ``path`` is missing (best effort, see the module docstring)."""
    if _fmt.fcntl is None:
        return
    _remove_stale_temps(folder, base)  # a native save's temporaries of the same name
    stems = re.compile(re.escape(f".{base}.") + r"[0-9a-f]{8}\.tmp")
    staging = re.compile(_STAGING)
    groups: dict = {}
    try:
        with os.scandir(folder) as it:
            for e in it:
                m = stems.match(e.name)
                if m is None:
                    continue
                rest = e.name[m.end():]
                if rest in ("", _LOCK, _OLD) or staging.fullmatch(rest):
                    groups.setdefault(m.group(), set()).add(rest)
    except OSError:
        return
    now = time.time()
    dead, other_old = [], False
    for stem, parts in groups.items():
        names = [stem + p for p in parts if p != _LOCK]
        fd = _lock_if_dead(folder, stem, names, now) if _LOCK in parts else None
        if fd is None:  # running, too young to judge, or without a lock file: not touched
            other_old = other_old or _OLD in parts
        else:
            dead.append((stem, names, fd))
    try:
        if dead and not other_old and not os.path.lexists(path):
            complete = [(t, stem) for stem, names, _ in dead
                        if (t := _complete_since(os.path.join(folder, stem + _OLD))) is not None]
            if complete:
                try:
                    _put_back(os.path.join(folder, max(complete)[1] + _OLD), path)
                except OSError:
                    pass
        for stem, names, _ in dead:
            for name in names:
                entry = os.path.join(folder, name)
                if name == stem + _OLD:
                    if not os.path.islink(entry) and os.path.lexists(path):
                        _discard(entry)
                elif _is_real_dir(entry):  # a file here is a native save's, a link no one's
                    shutil.rmtree(entry, ignore_errors=True)
            if not _entries(folder, stem):
                try:
                    os.unlink(os.path.join(folder, stem + _LOCK))
                except OSError:
                    pass
    finally:
        for _, _, fd in dead:
            os.close(fd)


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
