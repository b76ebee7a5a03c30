"""The COBA network of ``examples/coba.py``, written with the modelling layer ``brainstate.nn``.

Same model, parameters and connectivity as ``examples/coba.py`` (Brette et al. 2007, benchmark
1: 3,200 excitatory and 800 inhibitory leaky integrate-and-fire neurons, conductance-based
exponential synapses, each neuron projecting to 80 others, dt = 0.1 ms), but built the way
models are written for brainstate: a neuron population and its synapses are ``nn.Dynamics``
whose states ``init_state`` creates and ``nn.init_all_states`` initialises; projections read the
presynaptic spikes through a delayed prefetch (``pre.prefetch('spike').delay.at(delay)``),
propagate them with the event-driven ``nn.EventFixedProb`` and feed the postsynaptic population
a current input ``g (E - V)``; the integration is ``nn.exp_euler_step``.

The default axonal delay is 0 ms: the spikes of the previous step, read directly, as in
``examples/coba.py``. ``--delay`` sets a longer one (a ring buffer in state, one dynamic slice per
step).

Run ``python examples/coba_dynamics.py`` (``--help`` for options). It prints the mean firing
rate, the simulated steps per second and the compile time.
"""

from __future__ import annotations

import argparse
from functools import partial
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import brainstate
from brainstate.nn import Dynamics, exp_euler_step, init_all_states
from brainstate.transform import for_loop, jit, simulation_options

V_REST, V_RESET, V_TH = -60.0, -60.0, -50.0
TAU_M, TAU_REF = 20.0, 5.0
E_EXC, E_INH = 0.0, -80.0
TAU_EXC, TAU_INH = 5.0, 10.0
W_EXC, W_INH = 0.6, 6.7
I_BACKGROUND = 20.0


class LIF(Dynamics):
    """Leaky integrate-and-fire neurons with an absolute refractory period.

    ``tau_m dV/dt = V_rest - V + I``, where ``I`` is the background drive plus the current
    inputs the projections register (each a function of ``V``).
    """

    def __init__(self, n: int, v_init: np.ndarray) -> None:
        super().__init__(n)
        self.v_init = jnp.asarray(v_init, jnp.float32)

    def init_state(self, batch_size: int | None = None) -> None:
        self.V = brainstate.HiddenState(self.v_init)
        self.refractory = brainstate.HiddenState(jnp.zeros(self.varshape, jnp.float32))
        self.spike = brainstate.HiddenState(jnp.zeros(self.varshape, jnp.bool_))

    def update(self) -> jax.Array:
        dt = brainstate.environ.get_dt()
        v = self.V.value
        current = self.sum_current_inputs(I_BACKGROUND, v)
        v_new = exp_euler_step(lambda v, i: (V_REST - v + i) / TAU_M, v, current)
        in_refractory = self.refractory.value > 0.0
        v_new = jnp.where(in_refractory, v, v_new)
        fired = v_new >= V_TH
        self.V.value = jnp.where(fired, V_RESET, v_new)
        self.refractory.value = jnp.where(fired, TAU_REF,
                                          jnp.maximum(self.refractory.value - dt, 0.0))
        self.spike.value = fired
        return fired


class Expon(Dynamics):
    """An exponentially decaying conductance: ``dg/dt = -g / tau``, plus the arriving weight."""

    def __init__(self, n: int, tau: float) -> None:
        super().__init__(n)
        self.tau = tau

    def init_state(self, batch_size: int | None = None) -> None:
        self.g = brainstate.HiddenState(jnp.zeros(self.varshape, jnp.float32))

    def update(self, arriving: jax.Array) -> jax.Array:
        self.g.value = exp_euler_step(lambda g: -g / self.tau, self.g.value) + arriving
        return self.g.value


class FixedProbCOBA(brainstate.nn.Module):
    """Delayed spikes of ``pre`` neurons ``pre_slice`` -> conductance ``g`` -> current ``g (E - V)``.

    Each presynaptic neuron projects to ``conn`` postsynaptic ones (``nn.EventFixedProb``:
    a step adds the synapses of the neurons that fired, not every synapse).
    """

    def __init__(self, pre: LIF, post: LIF, pre_slice: slice, conn: int, weight: float,
                 e_rev: float, tau: float, delay: float, seed: int, name: str) -> None:
        super().__init__(name=name)
        # no delay: read the spikes of the previous step directly; a delay: a ring buffer of
        # the spike history, recorded after each update of ``pre``
        spikes = pre.prefetch("spike")
        self.spikes = spikes.delay.at(delay) if delay > 0 else spikes
        self.pre_slice = pre_slice
        n_pre = len(range(*pre_slice.indices(pre.varshape[0])))
        self.comm = brainstate.nn.EventFixedProb(n_pre, post.varshape, conn, weight,
                                                 allow_multi_conn=False, seed=seed)
        self.syn = Expon(post.varshape, tau)
        self.e_rev = e_rev
        post.add_current_input(name, self.current)

    def current(self, v: jax.Array) -> jax.Array:
        """The synaptic current into the postsynaptic neurons at potential ``v``."""
        return self.syn.g.value * (self.e_rev - v)

    def update(self) -> jax.Array:
        return self.syn(self.comm(self.spikes()[self.pre_slice]))


class COBANetwork(brainstate.nn.Module):
    """One LIF population (excitatory first) with excitatory and inhibitory projections."""

    def __init__(self, n_exc: int = 3200, n_inh: int = 800, conn: int = 80, delay: float = 0.0,
                 seed: int = 0) -> None:
        super().__init__()
        n = n_exc + n_inh
        # the seeds and draws of examples/coba.py: the same network
        v_init = np.random.default_rng(seed).normal(-55.0, 2.0, size=n).astype(np.float32)
        self.neurons = LIF(n, v_init)
        conn = min(conn, n)
        self.exc = FixedProbCOBA(self.neurons, self.neurons, slice(0, n_exc), conn, W_EXC, E_EXC,
                                 TAU_EXC, delay, seed, name="exc")
        self.inh = FixedProbCOBA(self.neurons, self.neurons, slice(n_exc, n), conn, W_INH, E_INH,
                                 TAU_INH, delay, seed + 1, name="inh")

    def update(self, step: jax.Array) -> jax.Array:
        """Advance one time step: projections first (they read the past), then the neurons."""
        self.exc()
        self.inh()
        return self.neurons()


def simulate(duration_ms: float = 1000.0, dt: float = 0.1, seed: int = 0, scale: float = 1.0,
             delay: float = 0.0):
    """Build and run the network; returns ``(spikes [steps, n], timings dict)``."""
    with brainstate.environ.context(dt=dt):
        net = COBANetwork(int(3200 * scale), int(800 * scale), delay=delay, seed=seed)
        init_all_states(net)
        n_steps = int(round(duration_ms / dt))

        # serial kernels and in-place loop carries: faster at this size on CPU (see
        # brainstate.transform.simulation_options)
        @partial(jit, compiler_options=simulation_options())
        def run(steps):
            return for_loop(net.update, steps)

        steps = jnp.arange(n_steps)
        t0 = time.perf_counter()
        run.compile(steps)  # trace + lower + XLA compile; writes no state
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        spikes = jax.block_until_ready(run(steps))
        run_s = time.perf_counter() - t0
    return np.asarray(spikes), {"compile_s": compile_s, "run_s": run_s, "steps": n_steps}


def mean_rate_hz(spikes: np.ndarray, dt: float) -> float:
    """Mean firing rate over neurons and time, in Hz."""
    return float(spikes.sum() / spikes.shape[1] / (spikes.shape[0] * dt / 1000.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms")
    parser.add_argument("--dt", type=float, default=0.1, help="time step in ms")
    parser.add_argument("--delay", type=float, default=0.0, help="axonal delay in ms")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    spikes, t = simulate(args.duration, args.dt, args.seed, delay=args.delay)
    print(f"brainstate core: {brainstate._impl.IMPLEMENTATION}, jax {jax.__version__}, "
          f"devices: {jax.devices()}")
    print(f"neurons: {spikes.shape[1]}, steps: {t['steps']} (dt = {args.dt} ms, "
          f"{args.duration:g} ms simulated, delay {args.delay:g} ms)")
    print(f"mean firing rate: {mean_rate_hz(spikes, args.dt):.2f} Hz")
    print(f"compile time: {t['compile_s']:.2f} s")
    print(f"simulation: {t['run_s']:.2f} s, {t['steps'] / t['run_s']:.0f} steps/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
