"""Event-driven projections against the dense gather, inside ``for_loop`` under ``jit``.

Each group propagates a precomputed train of random spikes (0.2 % of the neurons per step)
through ``n -> n`` random connectivity with 80 synapses per neuron and a homogeneous weight,
accumulating a leaky sum of the outputs (as a synaptic conductance would):

* ``baseline_gather``: the gather ``w * spikes[pre_ids].sum(1)`` over every synapse
  (``examples/coba.py``'s form), written by hand.
* ``dense_module``: :class:`brainstate.nn.FixedNumConn` with ``efferent_target='pre'`` (the
  same gather, through the layer).
* ``event_pre``: :class:`brainstate.nn.EventFixedNumConn`, same fixed in-degree layout.
* ``event_post``: the same with ``efferent_target='post'`` (fixed out-degree).
* ``event_pre_maxev4x``: ``event_pre`` with a bound 4x the default (cost of a loose bound).

``python bench/bench_event.py [n ...]`` runs an interleaved A/B timing instead (the variants
alternate, minimum of several repeats), steadier on a busy machine; it also prints steps/s.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import for_loop, jit

from _timing import interleaved_minima

CONN, RATE = 80, 0.002
STEPS = {4000: 2000, 40000: 300, 400000: 30}


def _variant(kind: str, n: int):
    nn = brainstate.nn
    if kind == "baseline_gather":
        pre_ids = nn.FixedNumConn(n, n, CONN, 0.6, efferent_target="pre", seed=0).indices

        def proj(s):
            return 0.6 * s.astype(jnp.float32)[pre_ids].sum(1)
    elif kind == "dense_module":
        proj = nn.FixedNumConn(n, n, CONN, 0.6, efferent_target="pre", seed=0)
    elif kind == "event_pre":
        proj = nn.EventFixedNumConn(n, n, CONN, 0.6, efferent_target="pre", seed=0)
    elif kind == "event_post":
        proj = nn.EventFixedNumConn(n, n, CONN, 0.6, efferent_target="post", seed=0)
    elif kind == "event_pre_maxev4x":
        bound = 4 * max(32, -(-n // 128))
        proj = nn.EventFixedNumConn(n, n, CONN, 0.6, efferent_target="pre", seed=0,
                                    max_events=bound)
    else:
        raise ValueError(kind)
    steps = STEPS[n]
    spikes = jax.random.uniform(jax.random.PRNGKey(1), (steps, n)) < RATE
    g = brainstate.HiddenState(jnp.zeros(n, jnp.float32))

    def step(s):
        g.value = g.value * 0.98 + proj(s)

    def run(sp):
        for_loop(step, sp)
        return g.value  # something to block on

    f = jit(run)
    f(spikes)
    return lambda: jax.block_until_ready(f(spikes)), steps


VARIANTS = ["baseline_gather", "dense_module", "event_pre", "event_post", "event_pre_maxev4x"]


@pytest.mark.parametrize("n", [4000, 40000])
@pytest.mark.parametrize("variant", VARIANTS)
def bench_event_projection(benchmark, variant, n):
    run, steps = _variant(variant, n)
    benchmark.group = f"event.proj[n={n}, {CONN} syn/neuron, {RATE:.1%} spiking, {steps} steps]"
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


def _interleaved(n: int, repeats: int = 5) -> None:
    best = interleaved_minima({name: _variant(name, n)[0] for name in VARIANTS}, repeats)
    base = best["baseline_gather"]
    steps = STEPS[n]
    for name, t in best.items():
        print(f"n={n:>6} {name:>18}: {t * 1e3:9.2f} ms  {steps / t:9.0f} steps/s  "
              f"({t / base:5.3f}x baseline)", flush=True)


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [4000, 40000, 400000]:
        _interleaved(size)
