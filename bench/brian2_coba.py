"""The COBA network of ``examples/coba.py`` in Brian2: the Brian2 side of ``bench_coba.py``.

Runs in an interpreter that has Brian2 (``pip install -e ".[bench]"``, or any environment with
``brian2>=2.9``); it imports neither JAX nor brainstate. The connectivity and the initial
membrane potentials come from an ``.npz`` file written by ``bench_coba.py`` (synapse lists
``exc_i``/``exc_j`` and ``inh_i``/``inh_j`` of presynaptic and postsynaptic neuron indices,
and ``v0`` in mV, all taken from ``examples/coba.py``'s network), so both implementations
simulate the same network.
The result is one JSON object on the last line of stdout (or in ``--out``).

Matching the brainstate model step for step:

* Brian2's schedule runs, in each step, the state update (``groups``), the threshold, the
  synaptic ``on_pre`` of this step's spikes (``synapses``) and the reset. The conductance
  that the membrane update reads is therefore the previous step's value, decayed once and
  incremented by the previous step's spikes: the same quantity that ``examples/coba.py``
  computes at the start of its step before the Euler update of ``V``. With ``method='euler'``
  both integrate ``g <- g (1 - dt / tau)`` and ``V <- V + dt f(V, g) / tau_m``.
* Refractoriness: ``examples/coba.py`` holds ``V`` while a timer (set to 5 ms at a spike,
  decreased by dt each step) is positive, which clamps 51 steps after a spike (the timer is
  still a tiny positive number after 50 decrements). Brian2's ``refractory=5*ms`` would
  clamp 49 steps (``timestep(t - lastspike) >= 50``), so the same timer is used here: a
  variable ``ref`` (``dref/dt = -1``, set to ``tau_ref`` by the reset) and
  ``refractory='ref > 0*ms'``.
* Brian2 computes in float64 (its default); brainstate in float32. The spike trains agree
  step for step until the first rounding difference flips a threshold crossing; after that
  the (chaotic) network diverges and only statistics such as the mean rate agree.

Usage: ``python bench/brian2_coba.py --target runtime|standalone --conn FILE.npz
[--duration MS] [--dt MS] [--record-counts] [--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

# Kept in sync with examples/coba.py (values in mV and ms).
V_REST, V_RESET, V_TH = -60.0, -60.0, -50.0
TAU_M, TAU_REF = 20.0, 5.0
E_EXC, E_INH = 0.0, -80.0
TAU_EXC, TAU_INH = 5.0, 10.0
W_EXC, W_INH = 0.6, 6.7
I_BACKGROUND = 20.0

EQUATIONS = """
dv/dt = (V_rest - v + g_exc * (E_exc - v) + g_inh * (E_inh - v) + I_b) / tau_m : volt (unless refractory)
dg_exc/dt = -g_exc / tau_exc : 1
dg_inh/dt = -g_inh / tau_inh : 1
dref/dt = -1 : second
n_spikes : 1
"""

CONN_KEYS = ("exc_i", "exc_j", "inh_i", "inh_j", "v0")

# Run by the standalone device instead of ``./main``: runs the binary as a child and writes
# its peak resident set size (kB) next to it, so the compiler processes are not counted.
_RSS_WRAPPER = (
    "import os, sys, subprocess\n"
    "p = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "open('binary_maxrss_kb.txt', 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def _namespace(b2) -> dict:
    ms, mV = b2.ms, b2.mV
    return {
        "V_rest": V_REST * mV, "V_reset": V_RESET * mV, "V_th": V_TH * mV,
        "tau_m": TAU_M * ms, "tau_ref": TAU_REF * ms,
        "E_exc": E_EXC * mV, "E_inh": E_INH * mV,
        "tau_exc": TAU_EXC * ms, "tau_inh": TAU_INH * ms,
        "w_exc": W_EXC, "w_inh": W_INH, "I_b": I_BACKGROUND * mV,
    }


def build_network(b2, conn: dict, record_counts: bool):
    """``(network, neurons, population rate monitor or None)``."""
    v0 = conn["v0"]
    n = v0.shape[0]
    ns = _namespace(b2)
    neurons = b2.NeuronGroup(
        n, EQUATIONS, threshold="v >= V_th",
        # the spike counter costs nothing per step (no monitor code object to run)
        reset="v = V_reset; ref = tau_ref; n_spikes += 1",
        refractory="ref > 0*ms", method="euler", namespace=ns, name="neurons")
    neurons.v = np.asarray(v0, np.float64) * b2.mV
    neurons.ref = 0 * b2.ms
    objects = [neurons]
    for name, weight in (("exc", "w_exc"), ("inh", "w_inh")):
        syn = b2.Synapses(neurons, neurons, on_pre=f"g_{name} += {weight}", namespace=ns,
                          name=f"syn_{name}")
        syn.connect(i=np.asarray(conn[f"{name}_i"], np.int32),
                    j=np.asarray(conn[f"{name}_j"], np.int32))
        objects.append(syn)
    rate = None
    if record_counts:
        rate = b2.PopulationRateMonitor(neurons, name="population_rate")
        objects.append(rate)
    return b2.Network(*objects), neurons, rate


def _counts(rate_monitor, n: int, dt_ms: float) -> list[int] | None:
    if rate_monitor is None:
        return None
    # the monitor stores spikes / n / dt per step: recover the integer counts
    rates = np.asarray(rate_monitor.rate_)
    return [int(c) for c in np.rint(rates * n * dt_ms * 1e-3)]


def run_runtime(b2, conn: dict, duration_ms: float, dt_ms: float, record_counts: bool,
                target: str) -> dict:
    """Runtime device: Cython (or numpy) code objects called from Python each step."""
    b2.prefs.codegen.target = target
    cache = None
    if target == "cython":
        # a fresh cache, so the measured build includes the Cython compilation
        cache = tempfile.mkdtemp(prefix="brian2_cython_")
        b2.prefs.codegen.runtime.cython.cache_dir = cache
    try:
        b2.defaultclock.dt = dt_ms * b2.ms
        t0 = time.perf_counter()
        net, neurons, rate = build_network(b2, conn, record_counts)
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        net.run(duration_ms * b2.ms, namespace={})
        total_s = time.perf_counter() - t0
        sim_s = float(b2.device._last_run_time)  # the loop alone, without code generation
        n = conn["v0"].shape[0]
        return {
            "build_s": setup_s + (total_s - sim_s),
            "run_s": sim_s,
            "overhead_s": 0.0,
            "steps": int(round(duration_ms / dt_ms)),
            "spikes": int(np.asarray(neurons.n_spikes).sum()),
            "counts": _counts(rate, n, dt_ms),
            "target": target,
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }
    finally:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)


def run_standalone(b2, conn: dict, duration_ms: float, dt_ms: float,
                   record_counts: bool) -> dict:
    """C++ standalone device: generate and compile a project, then run its binary."""
    project = tempfile.mkdtemp(prefix="brian2_coba_")
    try:
        b2.set_device("cpp_standalone", directory=project, build_on_run=False)
        wrapper = os.path.join(project, "rss_wrapper.py")
        with open(wrapper, "w") as f:
            f.write(_RSS_WRAPPER)
        b2.prefs.devices.cpp_standalone.run_cmd_unix = [sys.executable, wrapper, "./main"]
        b2.defaultclock.dt = dt_ms * b2.ms
        t0 = time.perf_counter()
        net, neurons, rate = build_network(b2, conn, record_counts)
        net.run(duration_ms * b2.ms, namespace={})  # recorded, not executed
        b2.device.build(directory=project, compile=True, run=False)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        b2.device.run(directory=project, with_output=False)
        run_total_s = time.perf_counter() - t0
        sim_s = float(b2.device._last_run_time)  # the binary's own timing of the loop
        with open(os.path.join(project, "binary_maxrss_kb.txt")) as f:
            binary_kb = int(f.read())
        n = conn["v0"].shape[0]
        return {
            "build_s": build_s,
            "run_s": sim_s,
            # start-up of the binary: loading the static arrays, writing results
            "overhead_s": max(run_total_s - sim_s, 0.0),
            "steps": int(round(duration_ms / dt_ms)),
            "spikes": int(np.asarray(neurons.n_spikes).sum()),
            "counts": _counts(rate, n, dt_ms),
            "target": "cpp_standalone",
            "peak_rss_kb": max(binary_kb,
                               resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
            "binary_peak_rss_kb": binary_kb,
        }
    finally:
        shutil.rmtree(project, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["runtime", "standalone"], required=True)
    parser.add_argument("--conn", required=True, help=".npz with exc_i, exc_j, inh_i, inh_j, v0")
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms")
    parser.add_argument("--dt", type=float, default=0.1, help="time step in ms")
    parser.add_argument("--codegen", choices=["cython", "numpy"], default="cython",
                        help="runtime code generation target (falls back to numpy if "
                             "Cython cannot compile)")
    parser.add_argument("--record-counts", action="store_true",
                        help="also return the population spike count of every step")
    parser.add_argument("--out", default="", help="write the JSON result here as well")
    args = parser.parse_args(argv)

    import brian2 as b2

    b2.prefs.logging.console_log_level = "WARNING"
    with np.load(args.conn) as data:
        conn = {k: data[k] for k in CONN_KEYS}
    if args.target == "standalone":
        result = run_standalone(b2, conn, args.duration, args.dt, args.record_counts)
    else:
        try:
            result = run_runtime(b2, conn, args.duration, args.dt, args.record_counts,
                                 args.codegen)
        except Exception as exc:  # Brian2 raises several types when Cython cannot build
            if args.codegen != "cython":
                raise
            print(f"Cython code generation failed ({type(exc).__name__}: {exc}); "
                  "rerunning with the numpy target", file=sys.stderr)
            b2.device.reinit()
            b2.device.activate()
            result = run_runtime(b2, conn, args.duration, args.dt, args.record_counts,
                                 "numpy")
            result["fallback"] = f"cython failed: {type(exc).__name__}"
    result["brian2"] = b2.__version__
    result["neurons"] = int(conn["v0"].shape[0])
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
