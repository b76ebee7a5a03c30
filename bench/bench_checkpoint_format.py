"""Checkpoint file layer against numpy: save and load of 1,000 arrays totalling 100 MB.

Run with ``pytest bench/bench_checkpoint_format.py``; the target is <= 1.3x ``np.save`` /
``np.load`` of the same arrays both ways. Baselines in the same groups:

* ``np.save``/``np.load`` into/from one open file, array after array (numpy's fastest path:
  no zip, no per-file open; it does not ``fsync``, and a crash mid-save loses the old file);
* ``np.savez``/``np.load`` of a ``.npz`` (one file with names, like a checkpoint);
* ``safetensors.numpy`` when that package is installed (float32 only, so it can run).

``write_checkpoint`` always fsyncs the file and its folder and computes CRC-32s; the
``nofsync`` row shows what the durability costs on the machine at hand. Loads: the default
(memory-mapped, every CRC verified), memory-mapped without verification (lazy: pages are read
when touched), and the copying load (``mmap=False``).
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from brainstate.checkpoint import _format as fmt

N_ARRAYS = 1000
TOTAL_BYTES = 100_000_000


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 50_000, N_ARRAYS).astype(np.float64)
    sizes = np.maximum(1, (sizes * (TOTAL_BYTES / 4 / sizes.sum())).astype(int))
    return [rng.standard_normal(int(s)).astype(np.float32) for s in sizes]


@pytest.fixture(scope="module")
def entries(arrays):
    return [(f"layers/{i}/weight", a, {"class": "ParamState", "path": ["layers", i, "weight"]})
            for i, a in enumerate(arrays)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    # BRAINSTATE_BENCH_DIR=/dev/shm/x separates the CPU cost from the disk's (fsync on tmpfs
    # is nearly free); by default the files go to pytest's temporary folder.
    where = os.environ.get("BRAINSTATE_BENCH_DIR")
    if not where:
        return tmp_path_factory.mktemp("bench_ckpt")
    os.makedirs(where, exist_ok=True)
    return pathlib.Path(where)


def _np_save_stream(path, arrays):
    with open(path, "wb") as f:
        for a in arrays:
            np.save(f, a)


def _np_load_stream(path, n):
    with open(path, "rb") as f:
        return [np.load(f) for _ in range(n)]


# --- save -------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="checkpoint:save 1000 arrays 100MB")
def bench_save_write_checkpoint(benchmark, entries, folder):
    benchmark(fmt.write_checkpoint, folder / "c.ckpt", entries, {"step": 1})


@pytest.mark.benchmark(group="checkpoint:save 1000 arrays 100MB")
def bench_save_write_checkpoint_nofsync(benchmark, entries, folder, monkeypatch):
    monkeypatch.setattr(fmt.os, "fsync", lambda fd: None)
    benchmark(fmt.write_checkpoint, folder / "c_nofsync.ckpt", entries, {"step": 1})


@pytest.mark.benchmark(group="checkpoint:save 1000 arrays 100MB")
def bench_save_np_save_stream(benchmark, arrays, folder):
    benchmark(_np_save_stream, folder / "s.npy", arrays)


@pytest.mark.benchmark(group="checkpoint:save 1000 arrays 100MB")
def bench_save_np_savez(benchmark, arrays, folder):
    benchmark(np.savez, folder / "z.npz", *arrays)


@pytest.mark.benchmark(group="checkpoint:save 1000 arrays 100MB")
def bench_save_safetensors_numpy(benchmark, entries, folder):
    st = pytest.importorskip("safetensors.numpy")
    tensors = {k: a for k, a, _ in entries}
    benchmark(st.save_file, tensors, str(folder / "t.safetensors"))


# --- load -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(entries, arrays, folder):
    fmt.write_checkpoint(folder / "load.ckpt", entries, {"step": 1})
    _np_save_stream(folder / "load.npy", arrays)
    np.savez(folder / "load.npz", *arrays)
    return folder


def _check(records, arrays):
    assert len(records) == len(arrays)
    assert np.array_equal(records[-1], arrays[-1])


@pytest.mark.benchmark(group="checkpoint:load 1000 arrays 100MB")
def bench_load_read_checkpoint(benchmark, saved, arrays):
    _, recs = benchmark(fmt.read_checkpoint, saved / "load.ckpt")
    _check([r.value for r in recs], arrays)


@pytest.mark.benchmark(group="checkpoint:load 1000 arrays 100MB")
def bench_load_read_checkpoint_noverify(benchmark, saved, arrays):
    _, recs = benchmark(fmt.read_checkpoint, saved / "load.ckpt", verify=False)
    _check([r.value for r in recs], arrays)


@pytest.mark.benchmark(group="checkpoint:load 1000 arrays 100MB")
def bench_load_read_checkpoint_copy(benchmark, saved, arrays):
    _, recs = benchmark(fmt.read_checkpoint, saved / "load.ckpt", mmap=False)
    _check([r.value for r in recs], arrays)


@pytest.mark.benchmark(group="checkpoint:load 1000 arrays 100MB")
def bench_load_np_load_stream(benchmark, saved, arrays):
    _check(benchmark(_np_load_stream, saved / "load.npy", len(arrays)), arrays)


@pytest.mark.benchmark(group="checkpoint:load 1000 arrays 100MB")
def bench_load_np_load_npz(benchmark, saved, arrays):
    def load():
        with np.load(saved / "load.npz") as z:
            return [z[k] for k in z.files]

    _check(benchmark(load), arrays)


@pytest.mark.benchmark(group="checkpoint:load 1000 arrays 100MB")
def bench_load_safetensors_numpy(benchmark, saved, entries, arrays):
    st = pytest.importorskip("safetensors.numpy")
    path = str(saved / "load.safetensors")
    st.save_file({k: a for k, a, _ in entries}, path)
    tensors = benchmark(st.load_file, path)
    _check([tensors[k] for k, _, _ in entries], arrays)


def bench_sizes_match_the_brief(arrays, entries, saved):
    """Not timed: the workload really is 1,000 arrays and ~100 MB, and the file is that big."""
    assert len(arrays) == N_ARRAYS
    assert abs(sum(a.nbytes for a in arrays) - TOTAL_BYTES) < 0.01 * TOTAL_BYTES
    assert os.path.getsize(saved / "load.ckpt") < 1.01 * TOTAL_BYTES
