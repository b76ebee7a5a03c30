"""The COBA network of Brette et al. (2007), written with brainstate.

4,000 leaky integrate-and-fire neurons (3,200 excitatory, 800 inhibitory) with
conductance-based exponential synapses and 2 % random connectivity, integrated with the
Euler method at dt = 0.1 ms. The whole simulation is one ``for_loop`` inside ``jit``: states
(membrane potentials, conductances, refractory timers, spikes) are ``HiddenState``s that the
loop carries, the connectivity is static data of the module.

Run ``python examples/coba.py`` (``--help`` for options). It prints the mean firing rate, the
simulated steps per second and the compile time, and writes a raster plot (needs the optional
``examples`` extra: ``pip install -e ".[examples]"``).

Reference: R. Brette et al., Simulation of networks of spiking neurons: a review of tools and
strategies, J. Comput. Neurosci. 23 (2007), benchmark 1 (COBA); parameters as in the BrainPy /
brainstate versions of the benchmark (V_rest = V_reset = -60 mV, V_th = -50 mV, tau_m = 20 ms,
tau_ref = 5 ms, E_exc = 0 mV, E_inh = -80 mV, tau_exc = 5 ms, tau_inh = 10 ms, w_exc = 0.6,
w_inh = 6.7, background drive I_b = 20 mV).
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import brainstate
from brainstate.transform import for_loop, jit

V_REST, V_RESET, V_TH = -60.0, -60.0, -50.0
TAU_M, TAU_REF = 20.0, 5.0
E_EXC, E_INH = 0.0, -80.0
TAU_EXC, TAU_INH = 5.0, 10.0
W_EXC, W_INH = 0.6, 6.7
I_BACKGROUND = 20.0


class COBA(brainstate.nn.Module):
    """The network: neuron states as ``HiddenState``s, fixed in-degree random connectivity.

    Each neuron receives ``p * n_exc`` excitatory and ``p * n_inh`` inhibitory inputs drawn
    without replacement, so one step's synaptic input is a gather of the presynaptic spikes
    (event-driven, no dense 4,000 x 4,000 matrix).
    """

    def __init__(self, n_exc: int = 3200, n_inh: int = 800, p: float = 0.02, dt: float = 0.1,
                 seed: int = 0) -> None:
        super().__init__()
        self.n_exc, self.n_inh, self.dt = n_exc, n_inh, dt
        n = n_exc + n_inh
        rng = np.random.default_rng(seed)
        k_exc, k_inh = max(1, round(p * n_exc)), max(1, round(p * n_inh))
        # presynaptic indices per postsynaptic neuron (static data, not state)
        self.exc_pre = jnp.asarray(
            np.stack([rng.choice(n_exc, k_exc, replace=False) for _ in range(n)]), jnp.int32)
        self.inh_pre = jnp.asarray(
            n_exc + np.stack([rng.choice(n_inh, k_inh, replace=False) for _ in range(n)]),
            jnp.int32)
        v0 = rng.normal(-55.0, 2.0, size=n).astype(np.float32)
        self.V = brainstate.HiddenState(jnp.asarray(v0), name="V")
        self.g_exc = brainstate.HiddenState(jnp.zeros(n, jnp.float32), name="g_exc")
        self.g_inh = brainstate.HiddenState(jnp.zeros(n, jnp.float32), name="g_inh")
        self.refractory = brainstate.HiddenState(jnp.zeros(n, jnp.float32), name="refractory")
        self.spike = brainstate.HiddenState(jnp.zeros(n, jnp.bool_), name="spike")

    def update(self, step: jax.Array) -> jax.Array:
        """Advance one time step; returns the spike vector."""
        dt = self.dt
        spike = self.spike.value.astype(jnp.float32)
        g_exc = self.g_exc.value * (1.0 - dt / TAU_EXC) + W_EXC * spike[self.exc_pre].sum(1)
        g_inh = self.g_inh.value * (1.0 - dt / TAU_INH) + W_INH * spike[self.inh_pre].sum(1)
        v = self.V.value
        current = g_exc * (E_EXC - v) + g_inh * (E_INH - v) + I_BACKGROUND
        refractory = self.refractory.value > 0.0
        v_new = jnp.where(refractory, v, v + dt * (V_REST - v + current) / TAU_M)
        fired = v_new >= V_TH
        self.V.value = jnp.where(fired, V_RESET, v_new)
        self.refractory.value = jnp.where(fired, TAU_REF, jnp.maximum(self.refractory.value - dt, 0.0))
        self.g_exc.value = g_exc
        self.g_inh.value = g_inh
        self.spike.value = fired
        return fired


def simulate(duration_ms: float = 1000.0, dt: float = 0.1, seed: int = 0, scale: float = 1.0):
    """Build and run the network; returns ``(spikes [steps, n], timings dict)``."""
    net = COBA(int(3200 * scale), int(800 * scale), dt=dt, seed=seed)
    n_steps = int(round(duration_ms / dt))

    @jit
    def run(steps):
        return for_loop(net.update, steps)

    steps = jnp.arange(n_steps)
    t0 = time.perf_counter()
    run.compile(steps)  # trace + lower + XLA compile; writes no state
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    spikes = jax.block_until_ready(run(steps))  # from the initial state
    run_s = time.perf_counter() - t0
    return np.asarray(spikes), {"compile_s": compile_s, "run_s": run_s, "steps": n_steps}


def mean_rate_hz(spikes: np.ndarray, dt: float) -> float:
    """Mean firing rate over neurons and time, in Hz."""
    return float(spikes.sum() / spikes.shape[1] / (spikes.shape[0] * dt / 1000.0))


def plot_raster(spikes: np.ndarray, dt: float, path: str) -> bool:
    """Write a raster plot; returns False (and says why) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[examples]'): skipping the plot.")
        return False
    t_idx, n_idx = np.nonzero(spikes)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.scatter(t_idx * dt, n_idx, s=0.2, c="k", marker=".", linewidths=0)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron index")
    ax.set_title(f"COBA network, mean rate {mean_rate_hz(spikes, dt):.1f} Hz")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms")
    parser.add_argument("--dt", type=float, default=0.1, help="time step in ms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="coba_raster.png", help="raster PNG path ('' = none)")
    args = parser.parse_args(argv)

    spikes, t = simulate(args.duration, args.dt, args.seed)
    rate = mean_rate_hz(spikes, args.dt)
    print(f"brainstate core: {brainstate._impl.IMPLEMENTATION}, jax {jax.__version__}, "
          f"devices: {jax.devices()}")
    print(f"neurons: {spikes.shape[1]}, steps: {t['steps']} (dt = {args.dt} ms, "
          f"{args.duration:g} ms simulated)")
    print(f"mean firing rate: {rate:.2f} Hz")
    print(f"compile time: {t['compile_s']:.2f} s")
    print(f"simulation: {t['run_s']:.2f} s, {t['steps'] / t['run_s']:.0f} steps/s")
    if args.plot and plot_raster(spikes, args.dt, args.plot):
        print(f"raster plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
