"""Random draws against hand-written ``jax.random`` code holding the key in a local variable.

Targets: an eager ``brainstate.random.normal(size=(100,))`` within 1.1x of ``key, sub =
jax.random.split(key)`` + ``jax.random.normal(sub, (100,))`` (a draw dispatches exactly those
ops; the rest is the state's read and write); a noisy LIF network (4,000 neurons, 1,000 steps)
in ``for_loop`` inside ``jit`` within 1.02x of the same loop written with ``jax.lax.scan``
carrying the key (both compile to the same program: tests/test_random_transforms.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import brainstate
import brainstate.random as br
from brainstate.transform import for_loop, jit

N_DRAWS = 100  # draws per timed call: keeps harness overhead out of the per-draw ratio
N_NEURONS = 4000
N_STEPS = 1000
SIGMA = 0.5


# --- eager draws ----------------------------------------------------------------------------


def _baseline(make_key):
    box = {"key": make_key(0)}

    def call():
        key = box["key"]
        for _ in range(N_DRAWS):
            key, sub = jax.random.split(key)
            x = jax.random.normal(sub, (100,))
        box["key"] = key
        x.block_until_ready()

    return call


def _module_draws():
    for _ in range(N_DRAWS):
        x = br.normal(size=(100,))
    x.block_until_ready()


def _method_draws(rng):
    def call():
        for _ in range(N_DRAWS):
            x = rng.normal(size=(100,))
        x.block_until_ready()

    return call


@pytest.mark.benchmark(group="random.normal(100):eager")
def bench_normal_baseline_split_normal(benchmark):
    call = _baseline(jax.random.PRNGKey)
    call()
    benchmark(call)


@pytest.mark.benchmark(group="random.normal(100):eager")
def bench_normal_module_default(benchmark):
    br.seed(0)
    _module_draws()
    benchmark(_module_draws)


@pytest.mark.benchmark(group="random.normal(100):eager")
def bench_normal_method(benchmark):
    call = _method_draws(br.RandomState(0))
    call()
    benchmark(call)


@pytest.mark.benchmark(group="random.normal(100):eager-typed-key")
def bench_normal_typed_baseline_split_normal(benchmark):
    call = _baseline(jax.random.key)
    call()
    benchmark(call)


@pytest.mark.benchmark(group="random.normal(100):eager-typed-key")
def bench_normal_typed_method(benchmark):
    call = _method_draws(br.RandomState(jax.random.key(0)))
    call()
    benchmark(call)


# --- a noisy LIF network in a compiled loop -------------------------------------------------


def _lif(v, current):
    v = v + 0.1 * (current - v)
    spike = v >= 1.0
    return jnp.where(spike, 0.0, v), spike


def _drive():
    return 1.0 + 0.1 * jax.random.uniform(jax.random.PRNGKey(1), (N_STEPS, N_NEURONS))


@jax.jit
def _raw_run(v, key, drive):
    def body(carry, current):
        v, key = carry
        key, sub = jax.random.split(key)
        noise = jax.random.normal(sub, (N_NEURONS,))
        v, spike = _lif(v, current + SIGMA * noise)
        return (v, key), spike

    return jax.lax.scan(body, (v, key), drive)


@pytest.mark.benchmark(group="random.noisy-lif[4000x1000]")
def bench_noisy_lif_baseline_lax_scan(benchmark):
    drive = _drive()
    box = {"carry": (jnp.zeros(N_NEURONS), jax.random.PRNGKey(0))}

    def call():
        box["carry"], spikes = _raw_run(*box["carry"], drive)
        spikes.block_until_ready()

    call()
    benchmark(call)


@pytest.mark.benchmark(group="random.noisy-lif[4000x1000]")
def bench_noisy_lif_for_loop(benchmark):
    drive = _drive()
    v = brainstate.HiddenState(jnp.zeros(N_NEURONS))
    br.seed(0)

    def step(current):
        v.value, spike = _lif(v.value, current + SIGMA * br.normal(size=(N_NEURONS,)))
        return spike

    run = jit(lambda d: for_loop(step, d))

    def call():
        run(drive).block_until_ready()

    call()
    benchmark(call)
