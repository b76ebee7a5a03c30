"""``checkpoint.save``/``load`` of a model with 1,000 states (100 MB) vs ``np.save``/``np.load``.

Run with ``pytest bench/bench_checkpoint.py``; the target is <= 1.3x the baselines both ways
(ratios are printed at the end). The baselines write the same arrays with ``np.save`` into one
open file, array after array, and read them back with ``np.load`` (numpy's fastest path: no
zip, no per-file open, no fsync, no checksum; a crash mid-save loses the old file).

``save`` fsyncs the file and its folder and computes a CRC-32 per array; ``load`` checks the
header CRC, the layout, the size and every data byte against its CRC-32, every path and
signature, moves the arrays to the states' devices and restores them. Two rows measure the
alternatives weighed in ``brainstate/checkpoint/_api.py``: ``save`` without the data CRC (the
CRC routine patched out) and ``load(verify=False)``, which skips the data CRCs.
Set ``BRAINSTATE_BENCH_DIR`` (e.g. ``/dev/shm/x``) to put the files elsewhere than pytest's
temporary folder; on tmpfs fsync is nearly free, which isolates the CPU cost.
"""

from __future__ import annotations

import os
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.checkpoint import _format as fmt
from brainstate.checkpoint import load, save

N_STATES = 1000
TOTAL_BYTES = 100_000_000
ROUNDS = dict(rounds=15, iterations=1, warmup_rounds=2)


class Big(brainstate.nn.Module):
    """1,000 float32 parameter states of random sizes summing to 100 MB."""

    def __init__(self, seed):
        super().__init__()
        rng = np.random.default_rng(0)
        sizes = rng.integers(1, 50_000, N_STATES).astype(np.float64)
        sizes = np.maximum(1, (sizes * (TOTAL_BYTES / 4 / sizes.sum())).astype(int))
        rng = np.random.default_rng(seed)
        self.layers = [brainstate.ParamState(jnp.asarray(rng.standard_normal(int(n)),
                                                         jnp.float32)) for n in sizes]


@pytest.fixture(scope="module")
def model():
    return Big(1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    where = os.environ.get("BRAINSTATE_BENCH_DIR")
    if not where:
        return tmp_path_factory.mktemp("bench_ckpt_api")
    os.makedirs(where, exist_ok=True)
    return pathlib.Path(where)


def _np_save(path, arrays):
    with open(path, "wb") as f:
        for a in arrays:
            np.save(f, a)


def _np_load(path, n):
    with open(path, "rb") as f:
        return [np.load(f) for _ in range(n)]


def _no_data_crc(monkeypatch):
    monkeypatch.setattr(fmt, "_crc_many", lambda blobs: [0] * len(blobs))


# --- save -------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="checkpoint api: save 1000 states 100MB")
def bench_save_np_save_baseline(benchmark, model, folder):
    arrays = [s.value for s in model.layers]
    benchmark.pedantic(_np_save, (folder / "base.npy", arrays), **ROUNDS)


@pytest.mark.benchmark(group="checkpoint api: save 1000 states 100MB")
def bench_save_checkpoint(benchmark, model, folder):
    benchmark.pedantic(save, (folder / "model.ckpt", model), {"metadata": {"step": 1}},
                       **ROUNDS)


@pytest.mark.benchmark(group="checkpoint api: save 1000 states 100MB")
def bench_save_checkpoint_no_data_crc(benchmark, model, folder, monkeypatch):
    _no_data_crc(monkeypatch)
    benchmark.pedantic(save, (folder / "model_nocrc.ckpt", model), **ROUNDS)


# --- load -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(model, folder):
    save(folder / "load.ckpt", model)
    _np_save(folder / "load.npy", [s.value for s in model.layers])
    return folder


@pytest.mark.benchmark(group="checkpoint api: load 1000 states 100MB")
def bench_load_np_load_baseline(benchmark, saved, model):
    out = benchmark.pedantic(_np_load, (saved / "load.npy", N_STATES), **ROUNDS)
    assert np.array_equal(out[-1], np.asarray(model.layers[-1].value))


@pytest.mark.benchmark(group="checkpoint api: load 1000 states 100MB")
def bench_load_checkpoint(benchmark, saved, model):
    target = Big(2)
    result = benchmark.pedantic(load, (saved / "load.ckpt", target), **ROUNDS)
    assert result.complete
    assert np.array_equal(np.asarray(target.layers[-1].value), np.asarray(model.layers[-1].value))


@pytest.mark.benchmark(group="checkpoint api: load 1000 states 100MB")
def bench_load_checkpoint_no_verify(benchmark, saved, model):
    target = Big(3)
    benchmark.pedantic(load, (saved / "load.ckpt", target), {"verify": False}, **ROUNDS)
    assert np.array_equal(np.asarray(target.layers[0].value), np.asarray(model.layers[0].value))
