"""``vmap2`` per call against raw ``jax.jit(jax.vmap(pure))`` and against ``vmap``.

Target: a warm ``vmap2`` call with N = 10, 100, 1,000 states, each selected by a filter,
mapped at axis 0 and read and written per lane, <= 1.15x the raw JAX call of the equivalent
pure function taking (and returning) the state values. ``vmap`` (the same states declared by
instance) is timed in the same group.

``python bench/bench_mapping.py`` runs an interleaved A/B timing instead (the variants
alternate, minimum of several repeats), steadier on a busy machine.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import vmap, vmap2

from _timing import interleaved_minima

SIZES = [10, 100, 1000]
LANES = 4


def _states(n):
    return [brainstate.ParamState(jnp.full((LANES, 8), i, jnp.float32)) for i in range(n)]


def _step(states):
    def step(x):
        for st in states:
            st.value = st.value * 0.5 + x
        return x

    return step


def _pure(vals, x):
    return [v * 0.5 + x for v in vals], x


def make_vmap2(n):
    f = vmap2(_step(_states(n)), state_in_axes={0: brainstate.ParamState})
    x = jnp.ones(LANES, jnp.float32)
    return lambda: jax.block_until_ready(f(x))


def make_vmap(n):
    states = _states(n)
    f = vmap(_step(states), in_states=states)
    x = jnp.ones(LANES, jnp.float32)
    return lambda: jax.block_until_ready(f(x))


def make_raw(n):
    f = jax.jit(jax.vmap(_pure, in_axes=(0, 0)))
    x = jnp.ones(LANES, jnp.float32)
    box = [[jnp.full((LANES, 8), i, jnp.float32) for i in range(n)]]

    def call():
        box[0], out = f(box[0], x)
        return jax.block_until_ready(out)

    return call


VARIANTS = {"baseline_raw": make_raw, "vmap2": make_vmap2, "vmap": make_vmap}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def bench_mapping_call(benchmark, variant, n):
    run = VARIANTS[variant](n)
    run()
    benchmark.group = f"vmap2.call[n={n}]"
    benchmark(run)


def main(repeats: int = 200) -> None:
    for n in SIZES:
        built = {name: make(n) for name, make in VARIANTS.items()}
        for run in built.values():
            run()
        # many calls per round: the minimum of a single call is dominated by timer noise
        rounds = {name: (lambda r=run: [r() for _ in range(20)]) for name, run in built.items()}
        best = interleaved_minima(rounds, repeats // 20 + 5)
        base = best["baseline_raw"]
        for name, t in best.items():
            print(f"n={n:>5} {name:>13}: {t / 20 * 1e6:9.1f} us/call  ({t / base:5.3f}x raw)")


if __name__ == "__main__":
    main()
