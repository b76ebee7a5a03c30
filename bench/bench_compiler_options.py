"""``transform.simulation_options`` against XLA's defaults: a LIF population in ``for_loop``.

The update of ``examples/coba.py``'s neurons (membrane potential, two decaying conductances,
refractory timer, spike) without projections, compiled three ways:

* ``baseline_default``: ``jit`` with XLA's default options;
* ``simulation_options``: region-based copy insertion, kernels kept on one thread;
* ``parallel_kernels``: region-based copy insertion only.

``python bench/bench_compiler_options.py [n ...]`` runs an interleaved A/B timing instead (the
variants alternate, minimum of several repeats), steadier on a busy machine.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import for_loop, jit, simulation_options

from _timing import interleaved_minima

STEPS = {4000: 2000, 40000: 500, 400000: 50}
VARIANTS = {
    "baseline_default": None,
    "simulation_options": simulation_options(),
    "parallel_kernels": simulation_options(parallel_kernels=True),
}


def _variant(name: str, n: int):
    dt = 0.1
    v = brainstate.HiddenState(jnp.linspace(-60.0, -50.5, n))
    g_e = brainstate.HiddenState(jnp.full(n, 0.05))
    g_i = brainstate.HiddenState(jnp.full(n, 0.02))
    ref = brainstate.HiddenState(jnp.zeros(n))

    def step(i):
        ge = g_e.value * (1.0 - dt / 5.0)
        gi = g_i.value * (1.0 - dt / 10.0)
        current = ge * (0.0 - v.value) + gi * (-80.0 - v.value) + 20.0
        v_new = jnp.where(ref.value > 0.0, v.value,
                          v.value + dt * (-60.0 - v.value + current) / 20.0)
        fired = v_new >= -50.0
        v.value = jnp.where(fired, -60.0, v_new)
        ref.value = jnp.where(fired, 5.0, jnp.maximum(ref.value - dt, 0.0))
        g_e.value, g_i.value = ge, gi

    options = VARIANTS[name]
    kwargs = {} if options is None else {"compiler_options": options}
    steps = jnp.arange(STEPS[n])

    @jit(**kwargs)
    def run(ts):
        for_loop(step, ts)
        return v.value

    run(steps)
    return lambda: jax.block_until_ready(run(steps))


@pytest.mark.parametrize("n", [4000, 40000])
@pytest.mark.parametrize("variant", list(VARIANTS))
def bench_lif_loop(benchmark, variant, n):
    run = _variant(variant, n)
    benchmark.group = f"compiler_options.lif[n={n}, {STEPS[n]} steps]"
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


def _interleaved(n: int, repeats: int = 7) -> None:
    best = interleaved_minima({name: _variant(name, n) for name in VARIANTS}, repeats)
    base = best["baseline_default"]
    for name, t in best.items():
        print(f"n={n:>6} {name:>18}: {t / STEPS[n] * 1e6:8.1f} us/step  "
              f"({t / base:5.3f}x baseline)", flush=True)


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [4000, 40000, 400000]:
        _interleaved(size)
