"""The COBA network of Brette et al. (2007), written with brainstate, event-driven.

Leaky integrate-and-fire neurons (4/5 excitatory, 1/5 inhibitory; 4,000 by default) with
conductance-based exponential synapses and random connectivity (each neuron projects to 80
others, 2 % of 4,000), integrated with the Euler method at dt = 0.1 ms. The whole simulation is
one ``for_loop`` inside ``jit``: states (membrane potentials, conductances, refractory timers,
spikes) are ``HiddenState``s that the loop carries. Spikes propagate through event-driven
projections (``nn.EventFixedProb``): each step adds the outgoing synapses of the few neurons
that fired, not every synapse. Spikes are recorded as (step, neuron) events by an
``nn.SpikeMonitor`` (a dense ``[steps, neurons]`` record would be 4 GB at 400,000 neurons and
10,000 steps).

Run ``python examples/coba.py`` (``--help`` for options: ``--neurons``, ``--duration``,
``--progress``, ``--dense``...). It prints the mean firing rate, the simulated steps per second
and the compile time, and writes a figure: a raster of a subset of excitatory (blue) and
inhibitory (red) neurons above the population rate (needs the optional ``examples`` extra:
``pip install -e ".[examples]"``).

``--dense`` runs the same network (same connectivity, same seed) with the dense projection
``nn.FixedNumConn``, which reads every synapse every step: the spike trains are identical (the
event-driven projection adds spike counts, then multiplies by the weight, as the dense one does).

Reference: R. Brette et al., Simulation of networks of spiking neurons: a review of tools and
strategies, J. Comput. Neurosci. 23 (2007), benchmark 1 (COBA); parameters as in the BrainPy /
brainstate versions of the benchmark (V_rest = V_reset = -60 mV, V_th = -50 mV, tau_m = 20 ms,
tau_ref = 5 ms, E_exc = 0 mV, E_inh = -80 mV, tau_exc = 5 ms, tau_inh = 10 ms, w_exc = 0.6,
w_inh = 6.7, background drive I_b = 20 mV).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import brainstate
from brainstate.transform import ProgressBar, for_loop, jit, simulation_options

V_REST, V_RESET, V_TH = -60.0, -60.0, -50.0
TAU_M, TAU_REF = 20.0, 5.0
E_EXC, E_INH = 0.0, -80.0
TAU_EXC, TAU_INH = 5.0, 10.0
W_EXC, W_INH = 0.6, 6.7
I_BACKGROUND = 20.0
CONNECTIONS = 80      # outgoing synapses per neuron (2 % of 4,000)
MAX_RATE_HZ = 200.0   # the spike record holds this mean rate (the network fires at ~15-20 Hz)
# from this size on, XLA's splitting of kernels across threads pays for its hand-offs (measured
# on 2 cores with bench/bench_coba.py; below it, serial kernels run 1.4-1.5x more steps/s)
PARALLEL_KERNELS_FROM = 200_000


class COBA(brainstate.nn.Module):
    """The network: neuron states as ``HiddenState``s, two event-driven projections.

    Parameters
    ----------
    n_exc, n_inh : int
        Population sizes.
    conn : int
        Outgoing synapses per neuron (drawn without replacement).
    dt : float
        Time step (ms).
    seed : int
        Seeds the connectivity and the initial potentials.
    dense : bool
        Use the dense projection ``nn.FixedNumConn`` (every synapse read every step) instead of
        the event-driven ``nn.EventFixedProb``: same connectivity and results, slower.
    """

    def __init__(self, n_exc: int = 3200, n_inh: int = 800, conn: int = CONNECTIONS,
                 dt: float = 0.1, seed: int = 0, dense: bool = False) -> None:
        super().__init__()
        self.n_exc, self.n_inh, self.dt = n_exc, n_inh, dt
        n = n_exc + n_inh
        proj = brainstate.nn.FixedNumConn if dense else brainstate.nn.EventFixedProb
        conn = min(conn, n)
        self.exc = proj(n_exc, n, conn, W_EXC, allow_multi_conn=False, seed=seed)
        self.inh = proj(n_inh, n, conn, W_INH, allow_multi_conn=False, seed=seed + 1)
        rng = np.random.default_rng(seed)
        v0 = rng.normal(-55.0, 2.0, size=n).astype(np.float32)
        self.V = brainstate.HiddenState(jnp.asarray(v0), name="V")
        self.g_exc = brainstate.HiddenState(jnp.zeros(n, jnp.float32), name="g_exc")
        self.g_inh = brainstate.HiddenState(jnp.zeros(n, jnp.float32), name="g_inh")
        self.refractory = brainstate.HiddenState(jnp.zeros(n, jnp.float32), name="refractory")
        self.spike = brainstate.HiddenState(jnp.zeros(n, jnp.bool_), name="spike")

    def update(self, step: jax.Array) -> jax.Array:
        """Advance one time step; returns the spike vector."""
        dt, n_exc = self.dt, self.n_exc
        spike = self.spike.value
        g_exc = self.g_exc.value * (1.0 - dt / TAU_EXC) + self.exc(spike[:n_exc])
        g_inh = self.g_inh.value * (1.0 - dt / TAU_INH) + self.inh(spike[n_exc:])
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


@dataclass
class Result:
    """A simulation's spike events and timings."""

    steps: np.ndarray      # step of each spike
    indices: np.ndarray    # neuron of each spike
    n_exc: int
    n_inh: int
    n_steps: int
    dt: float
    compile_s: float
    run_s: float

    @property
    def neurons(self) -> int:
        return self.n_exc + self.n_inh

    @property
    def mean_rate_hz(self) -> float:
        """Mean firing rate over neurons and time."""
        return len(self.steps) / self.neurons / (self.n_steps * self.dt / 1000.0)

    @property
    def steps_per_s(self) -> float:
        return self.n_steps / self.run_s

    def dense(self) -> np.ndarray:
        """The spikes as a boolean ``[n_steps, neurons]`` array (for small runs)."""
        out = np.zeros((self.n_steps, self.neurons), bool)
        out[self.steps, self.indices] = True
        return out


def _check(duration_ms: float, dt: float, neurons: int, conn: int) -> None:
    if not (isinstance(duration_ms, (int, float)) and math.isfinite(duration_ms)
            and duration_ms > 0):
        raise ValueError(f"duration must be a positive number of ms, got {duration_ms!r}.")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of ms, got {dt!r}.")
    if dt > duration_ms:
        raise ValueError(f"dt ({dt} ms) is longer than the duration ({duration_ms} ms).")
    if not isinstance(neurons, int) or neurons < 5:
        raise ValueError(f"neurons must be an integer >= 5 (4/5 excitatory, 1/5 inhibitory), "
                         f"got {neurons!r}.")
    if not isinstance(conn, int) or conn < 1:
        raise ValueError(f"the number of connections per neuron must be >= 1, got {conn!r}.")


def simulate(duration_ms: float = 1000.0, dt: float = 0.1, seed: int = 0, neurons: int = 4000,
             conn: int = CONNECTIONS, dense: bool = False, progress: bool = False,
             parallel_kernels: bool | None = None) -> Result:
    """Build and run the network; returns its spike events and timings.

    Parameters
    ----------
    duration_ms, dt : float
        Simulated time and time step (ms), both positive.
    seed : int
        Connectivity and initial state.
    neurons : int
        Network size (4/5 excitatory).
    conn : int
        Outgoing synapses per neuron.
    dense : bool
        Dense projections instead of event-driven ones (same results, slower).
    progress : bool
        Show a progress bar while simulating.
    parallel_kernels : bool, optional
        Let XLA split kernels across threads (``transform.simulation_options``); by default
        only from ``PARALLEL_KERNELS_FROM`` neurons on.
    """
    _check(duration_ms, dt, neurons, conn)
    n_exc = neurons * 4 // 5
    net = COBA(n_exc, neurons - n_exc, conn=conn, dt=dt, seed=seed, dense=dense)
    n_steps = int(round(duration_ms / dt))
    max_events = int(neurons * MAX_RATE_HZ * n_steps * dt / 1000.0) + neurons
    monitor = brainstate.nn.SpikeMonitor(neurons, max_events=max_events,
                                         max_per_step=max(64, neurons // 50))
    monitor.init_state()
    pbar = ProgressBar(freq=max(1, n_steps // 100), desc="COBA") if progress else None

    def step(i):
        monitor.update(net.update(i))

    if parallel_kernels is None:
        parallel_kernels = neurons >= PARALLEL_KERNELS_FROM

    @partial(jit, compiler_options=simulation_options(parallel_kernels=parallel_kernels))
    def run(steps):
        for_loop(step, steps, pbar=pbar)

    steps = jnp.arange(n_steps)
    t0 = time.perf_counter()
    run.compile(steps)  # trace + lower + XLA compile; writes no state
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(steps)
    jax.block_until_ready(monitor.stored.value)
    run_s = time.perf_counter() - t0
    spike_steps, spike_ids = monitor.events()  # raises if the record overflowed
    return Result(spike_steps, spike_ids, n_exc, neurons - n_exc, n_steps, dt, compile_s, run_s)


def plot(result: Result, path: str, shown: int = 500) -> bool:
    """Raster of ``shown`` neurons (4/5 excitatory in blue, 1/5 inhibitory in red) above the
    population rate (5 ms bins); returns False (and says why) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[examples]'): skipping the plot.")
        return False
    n_show_exc = min(result.n_exc, shown * 4 // 5)
    n_show_inh = min(result.n_inh, shown - n_show_exc)
    t_ms = result.steps * result.dt
    exc = result.indices < n_show_exc
    inh = (result.indices >= result.n_exc) & (result.indices < result.n_exc + n_show_inh)
    bin_steps = max(1, int(round(5.0 / result.dt)))
    counts = np.bincount(result.steps // bin_steps, minlength=-(-result.n_steps // bin_steps))
    rate = counts / result.neurons / (bin_steps * result.dt / 1000.0)

    fig, (ax_raster, ax_rate) = plt.subplots(2, 1, figsize=(8, 5), sharex=True,
                                             gridspec_kw={"height_ratios": [3, 1]})
    ax_raster.scatter(t_ms[exc], result.indices[exc], s=0.5, c="tab:blue", marker=".",
                      linewidths=0, label="excitatory")
    ax_raster.scatter(t_ms[inh], result.indices[inh] - result.n_exc + n_show_exc, s=0.5,
                      c="tab:red", marker=".", linewidths=0, label="inhibitory")
    ax_raster.set_ylabel(f"neuron ({n_show_exc} E, {n_show_inh} I shown)")
    ax_raster.set_ylim(0, n_show_exc + n_show_inh)
    ax_raster.legend(loc="upper right", markerscale=20, fontsize=8)
    ax_raster.set_title(f"COBA network, {result.neurons:,} neurons, mean rate "
                        f"{result.mean_rate_hz:.1f} Hz")
    ax_rate.plot(np.arange(len(rate)) * bin_steps * result.dt, rate, c="k", lw=0.8)
    ax_rate.set_xlabel("time (ms)")
    ax_rate.set_ylabel("rate (Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=4000, help="network size (4/5 excitatory)")
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms")
    parser.add_argument("--dt", type=float, default=0.1, help="time step in ms")
    parser.add_argument("--conn", type=int, default=CONNECTIONS,
                        help="outgoing synapses per neuron")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dense", action="store_true",
                        help="dense projections (every synapse every step) instead of events")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument("--kernels", choices=("auto", "serial", "parallel"), default="auto",
                        help="let XLA split kernels across threads (auto: from "
                             f"{PARALLEL_KERNELS_FROM:,} neurons on)")
    parser.add_argument("--plot", default="coba_raster.png", help="figure path ('' = none)")
    args = parser.parse_args(argv)
    try:
        _check(args.duration, args.dt, args.neurons, args.conn)
    except ValueError as err:
        parser.error(str(err))

    result = simulate(args.duration, args.dt, args.seed, neurons=args.neurons, conn=args.conn,
                      dense=args.dense, progress=args.progress,
                      parallel_kernels={"auto": None, "serial": False,
                                        "parallel": True}[args.kernels])
    print(f"brainstate core: {brainstate._impl.IMPLEMENTATION}, jax {jax.__version__}, "
          f"devices: {jax.devices()}")
    print(f"neurons: {result.neurons}, steps: {result.n_steps} (dt = {args.dt} ms, "
          f"{args.duration:g} ms simulated), projections: "
          f"{'dense' if args.dense else 'event-driven'}")
    print(f"mean firing rate: {result.mean_rate_hz:.2f} Hz")
    print(f"compile time: {result.compile_s:.2f} s")
    print(f"simulation: {result.run_s:.2f} s, {result.steps_per_s:.0f} steps/s")
    if args.plot and plot(result, args.plot):
        print(f"figure written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
