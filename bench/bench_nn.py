"""The modelling layer's cost: ``examples/coba_dynamics.py`` against ``examples/coba.py``, and a
delayed read inside ``for_loop`` against a hand-written ring buffer in ``lax.scan``.

Targets (run time): the ``nn.Dynamics`` network within 1.05x of the flat module, the delayed
read within 1.02x of the ring buffer. Groups:

* ``coba.nn[n=4000]``: ``baseline_flat`` is ``examples/coba.py`` (one module, five states,
  hand-written Euler steps); ``dynamics`` is ``examples/coba_dynamics.py`` (neuron and synapse
  ``Dynamics``, delayed prefetches of the spikes, current inputs, ``exp_euler_step``,
  ``init_all_states``). 1,000 steps (100 ms) per round, continuing from the last state.
* ``delay.read``: ``baseline_scan`` carries a ``[D + 1, N]`` buffer and a pointer through
  ``jax.lax.scan`` and reads ``D`` steps back with ``dynamic_index_in_dim``; ``prefetch_delay``
  is a ``Dynamics`` with ``prefetch_delay('x', D * dt)`` read in ``for_loop`` under ``jit``.
  Each step adds the delayed value to an accumulator (no stacked output to allocate); 20,000
  steps per call, so the per-call cost of `jit` (reading and writing back the states) is
  amortised and the loop body is what is compared.

``python bench/bench_nn.py`` runs an interleaved A/B timing instead (the variants alternate,
minimum of several repeats), steadier on a busy machine.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import for_loop, jit

from _timing import interleaved_minima

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
COBA_STEPS = 1000
DELAY_N, DELAY_STEPS, DELAY_T = 4000, 50, 20000


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _coba_flat():
    net = _example("coba").COBA()
    f = jit(lambda ts: for_loop(net.update, ts))
    steps = jnp.arange(COBA_STEPS)
    return lambda: jax.block_until_ready(f(steps))


def _coba_dynamics():
    example = _example("coba_dynamics")
    with brainstate.environ.context(dt=0.1):
        net = example.COBANetwork()
        brainstate.nn.init_all_states(net)
        f = jit(lambda ts: for_loop(net.update, ts))
        steps = jnp.arange(COBA_STEPS)
        f(steps)  # traced here, where dt is set

    return lambda: jax.block_until_ready(f(steps))


def _delay_scan():
    n, d = DELAY_N, DELAY_STEPS

    def body(carry, i):
        x, hist, ptr, acc = carry
        x = x * 0.9 + i.astype(jnp.float32)
        hist = jax.lax.dynamic_update_index_in_dim(hist, x, ptr, 0)
        ptr = jax.lax.rem(ptr + 1, d + 1)  # the next row to write is the oldest: d steps back
        acc = acc + jax.lax.dynamic_index_in_dim(hist, ptr, 0, False)
        return (x, hist, ptr, acc), None

    @jax.jit
    def run(carry, ts):
        return jax.lax.scan(body, carry, ts)[0]

    box = [(jnp.zeros(n), jnp.zeros((d + 1, n)), jnp.int32(0), jnp.zeros(n))]
    ts = jnp.arange(DELAY_T)

    def go():
        box[0] = run(box[0], ts)
        return jax.block_until_ready(box[0][3])

    return go


def _delay_prefetch():
    class Leaky(brainstate.nn.Dynamics):
        def init_state(self):
            self.x = brainstate.HiddenState(jnp.zeros(self.varshape))
            self.acc = brainstate.HiddenState(jnp.zeros(self.varshape))

        def update(self, i):
            self.x.value = self.x.value * 0.9 + i.astype(jnp.float32)

    with brainstate.environ.context(dt=0.1):
        cell = Leaky(DELAY_N)
        read = cell.prefetch_delay("x", DELAY_STEPS * 0.1)
        brainstate.nn.init_all_states(cell)

        def step(i):
            cell(i)
            cell.acc.value = cell.acc.value + read()

        def run(ts):
            for_loop(step, ts)
            return cell.acc.value

        f = jit(run)
        ts = jnp.arange(DELAY_T)
        f(ts)
    return lambda: jax.block_until_ready(f(ts))


COBA_VARIANTS = {"baseline_flat": _coba_flat, "dynamics": _coba_dynamics}
DELAY_VARIANTS = {"baseline_scan": _delay_scan, "prefetch_delay": _delay_prefetch}


@pytest.mark.parametrize("variant", list(COBA_VARIANTS))
def bench_coba_modelling_layer(benchmark, variant):
    run = COBA_VARIANTS[variant]()
    run()
    benchmark.group = f"coba.nn[n=4000, {COBA_STEPS} steps]"
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("variant", list(DELAY_VARIANTS))
def bench_delayed_read(benchmark, variant):
    run = DELAY_VARIANTS[variant]()
    run()
    benchmark.group = f"delay.read[n={DELAY_N}, delay {DELAY_STEPS}, {DELAY_T} steps]"
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


def _interleaved(variants: dict, repeats: int = 7) -> None:
    built = {name: make() for name, make in variants.items()}
    for run in built.values():
        run()
    best = interleaved_minima(built, repeats)
    base = next(iter(best.values()))
    for name, t in best.items():
        print(f"{name:>16}: {t * 1e3:8.2f} ms  ({t / base:5.3f}x baseline)")


if __name__ == "__main__":
    which = sys.argv[1:] or ["coba", "delay"]
    if "coba" in which:
        _interleaved(COBA_VARIANTS)
    if "delay" in which:
        _interleaved(DELAY_VARIANTS)
