"""A LIF network in ``for_loop`` inside ``jit`` against the hand-written ``jax.lax.scan``.

4,000 leaky integrate-and-fire neurons (membrane potential in a ``HiddenState``, a read-only
per-neuron bias in a ``ParamState``, threshold and reset), driven by random input for 1,000
steps. Target: the brainstate loop within 1.02x of raw ``jax.jit`` + ``jax.lax.scan``; the
loop body is the traced jaxpr inside ``lax.scan``, so both compile to the same program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import jit
from brainstate.transform._loop import for_loop, scan

N_NEURONS = 4000
N_STEPS = 1000
DT_TAU = 0.1
V_TH = 1.0
V_RESET = 0.0


def _inputs():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    drive = 1.0 + 0.5 * jax.random.normal(k1, (N_STEPS, N_NEURONS), jnp.float32)
    bias = 0.2 * jax.random.uniform(k2, (N_NEURONS,), jnp.float32)
    return drive, bias


def _lif(v, bias, current):
    """One Euler step; returns (new v, spikes). Shared by both versions."""
    v = v + DT_TAU * (bias + current - v)
    spike = v >= V_TH
    return jnp.where(spike, V_RESET, v), spike


class _Network:
    def __init__(self, bias):
        self.v = brainstate.HiddenState(jnp.zeros(N_NEURONS, jnp.float32))
        self.bias = brainstate.ParamState(bias)

    def step(self, current):
        self.v.value, spike = _lif(self.v.value, self.bias.value, current)
        return spike


def _brainstate_runner(bias):
    net = _Network(bias)

    @jit
    def run(drive):
        return for_loop(net.step, drive)

    return net, run


def _brainstate_scan_runner(bias):
    net = _Network(bias)

    def body(n, current):
        return n + 1, net.step(current)

    @jit
    def run(drive):
        return scan(body, jnp.zeros((), jnp.int32), drive)[1]

    return net, run


@jax.jit
def _raw_run(v, bias, drive):
    return jax.lax.scan(lambda v, current: _lif(v, bias, current), v, drive)


def _same_spikes(run, net, drive, bias):
    v0 = jnp.zeros(N_NEURONS, jnp.float32)
    _, raw_spikes = _raw_run(v0, bias, drive)
    net.v.value = v0
    spikes = run(drive)
    assert int(spikes.sum()) == int(raw_spikes.sum()) > 0
    assert bool(jnp.all(spikes == raw_spikes))


@pytest.mark.benchmark(group="loops:lif_4000x1000")
def bench_lif_baseline_lax_scan(benchmark):
    drive, bias = _inputs()
    state = {"v": jnp.zeros(N_NEURONS, jnp.float32)}

    def call():
        state["v"], spikes = _raw_run(state["v"], bias, drive)
        spikes.block_until_ready()

    call()
    benchmark(call)


@pytest.mark.benchmark(group="loops:lif_4000x1000")
def bench_lif_for_loop(benchmark):
    drive, bias = _inputs()
    net, run = _brainstate_runner(bias)
    _same_spikes(run, net, drive, bias)

    def call():
        run(drive).block_until_ready()

    call()
    benchmark(call)


@pytest.mark.benchmark(group="loops:lif_4000x1000")
def bench_lif_scan(benchmark):
    drive, bias = _inputs()
    net, run = _brainstate_scan_runner(bias)
    _same_spikes(run, net, drive, bias)

    def call():
        run(drive).block_until_ready()

    call()
    benchmark(call)
