"""``nn.SpikeMonitor`` against a dense spike record, inside ``for_loop`` under ``jit``.

Each group records a precomputed train of random spikes (0.2 % of the neurons per step, as the
COBA network fires):

* ``baseline_dense``: the loop returns the spike vectors, stacked into ``[steps, n]``;
* ``monitor``: ``SpikeMonitor`` (on CPU with the compiled extension: one native kernel per step
  writing the events and counters in place);
* ``monitor_pure``: the same monitor traced with the native kernels switched off (its pure-JAX
  twin: ``top_k`` of the spikes and two buffer writes under ``lax.cond``).

``python bench/bench_monitor.py [n ...]`` runs an interleaved A/B timing instead.
"""

from __future__ import annotations

import sys
from unittest import mock

import jax
import pytest

import brainstate
from brainstate.nn import _event_native
from brainstate.transform import for_loop, jit

from _timing import interleaved_minima

RATE = 0.002
STEPS = {4000: 2000, 40000: 500}
VARIANTS = ["baseline_dense", "monitor", "monitor_pure"]


def _variant(name: str, n: int):
    steps = STEPS[n]
    spikes = jax.random.uniform(jax.random.PRNGKey(2), (steps, n)) < RATE
    if name == "baseline_dense":
        run = jit(lambda sp: for_loop(lambda s: s, sp))
        run(spikes)
        return lambda: jax.block_until_ready(run(spikes))
    monitor = brainstate.nn.SpikeMonitor(n, max_events=int(4 * RATE * n * steps) + n,
                                         max_per_step=max(64, n // 50))
    monitor.init_state()

    @jit
    def record(sp):
        for_loop(monitor.update, sp)
        return monitor.stored.value

    native = _event_native.available()
    with mock.patch.object(_event_native, "available", lambda: name == "monitor" and native):
        record(spikes)  # traced (and compiled) here, with or without the native kernel

    def run():
        monitor.reset_state()
        jax.block_until_ready(record(spikes))

    return run


@pytest.mark.parametrize("n", [4000, 40000])
@pytest.mark.parametrize("variant", VARIANTS)
def bench_spike_record(benchmark, variant, n):
    run = _variant(variant, n)
    benchmark.group = f"monitor.record[n={n}, {RATE:.1%} spiking, {STEPS[n]} steps]"
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


def _interleaved(n: int, repeats: int = 7) -> None:
    best = interleaved_minima({name: _variant(name, n) for name in VARIANTS}, repeats)
    base = best["baseline_dense"]
    for name, t in best.items():
        print(f"n={n:>6} {name:>15}: {t / STEPS[n] * 1e6:8.2f} us/step  "
              f"({t / base:5.3f}x baseline)", flush=True)


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [4000, 40000]:
        _interleaved(size)
