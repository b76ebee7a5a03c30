"""The COBA network of ``examples/coba.py`` against Brian2 (runtime and C++ standalone).

Brette et al. (2007) benchmark 1 at 4,000, 40,000 and 400,000 neurons, each neuron projecting
to 80 others drawn without replacement (so 80 inputs per neuron on average, 4/5 excitatory),
dt = 0.1 ms, forward Euler. Four implementations, each in its own subprocess (its peak
resident set size is its own, and no compile cache is shared between them):

* ``brainstate``: ``simulate()`` of ``examples/coba.py`` (through :func:`run_ours`, the one
  place that knows its signature);
* ``plain JAX``: the same step as a pure ``jax.lax.scan`` under ``jax.jit`` with the
  synapse lists as arguments, reading every synapse every step (a ``segment_sum`` of the
  presynaptic spikes: the dense propagation);
* ``brian2 runtime``: ``bench/brian2_coba.py`` with the Cython code generation target (numpy
  if Cython cannot compile; the table says which), a fresh Cython cache;
* ``brian2 standalone``: the same script on the ``cpp_standalone`` device (single thread);
  build (code generation + ``make``) and run are timed separately.

The connectivity and initial potentials are taken once per size from the network that
``examples/coba.py`` builds (same seed, so the same draw) and handed to plain JAX and Brian2
in an ``.npz`` file; ``examples/coba.py`` draws its own, identical one. With the same network,
all four produce the same spike trains until a float32/float64 rounding difference flips one
threshold crossing (``--check`` compares the population spike count of every step).

Table columns: steps/s of the simulation loop alone; build (JAX: trace + XLA compile;
Brian2 runtime: object creation + code generation + Cython compilation; standalone: the same
+ ``make``); time to result = build + start-up overhead + simulation of 1 s of model time,
extrapolated from the measured run when it was shorter (marked ``*``); mean rate; peak RSS
(for standalone the larger of the Python driver and the compiled binary, compilers not
counted); ``ours/this`` = brainstate's steps/s divided by the row's.

Usage::

    python bench/bench_coba.py [--sizes 4000 40000 400000] [--brian2-python PATH] [--check]

``pytest bench --benchmark-disable`` runs ``bench_coba_smoke`` (tiny network, no Brian2).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
COBA_PATH = HERE.parent / "examples" / "coba.py"
BRIAN2_SCRIPT = HERE / "brian2_coba.py"

DT = 0.1  # ms
INPUTS = 80  # outgoing synapses per neuron (mean in-degree 80, 4/5 excitatory)
SIZES = [4_000, 40_000, 400_000]
SEED = 0
CHILD_TIMEOUT_S = 3600


def default_duration(n: int) -> float:
    """Model time (ms) simulated at ``n`` neurons: 1 s up to 4,000 neurons, 100 ms above."""
    return 1000.0 if n <= 4_000 else 100.0


def split(n: int) -> tuple[int, int]:
    """``(n_exc, n_inh)``: 4/5 excitatory, as ``examples/coba.py`` splits its neurons."""
    n_exc = n * 4 // 5
    return n_exc, n - n_exc


def connectivity(n: int, inputs: int = INPUTS, seed: int = SEED) -> dict[str, np.ndarray]:
    """The synapses and initial potentials of ``examples/coba.py``'s network, as numpy.

    Builds the example's ``COBA`` module (so the draw is its own: same seed, same order) and
    flattens its two projections into synapse lists ``exc_i -> exc_j``, ``inh_i -> inh_j``
    (absolute neuron indices); ``v0`` holds the initial potentials (mV, float32).
    """
    coba = _load_coba()
    n_exc, n_inh = split(n)
    net = coba.COBA(n_exc, n_inh, conn=inputs, dt=DT, seed=seed)
    out = {"v0": np.asarray(net.V.value, np.float32)}
    for name, proj, offset in (("exc", net.exc, 0), ("inh", net.inh, n_exc)):
        if getattr(proj, "efferent_target", "post") != "post" or proj.row_ids is not None:
            raise NotImplementedError(f"connectivity: the {name} projection of examples/coba.py"
                                      " is not a plain fixed out-degree table")
        targets = np.asarray(proj.indices)  # [n_pre, k]: postsynaptic targets of each neuron
        pre = offset + np.repeat(np.arange(targets.shape[0], dtype=np.int32), targets.shape[1])
        out[f"{name}_i"], out[f"{name}_j"] = pre, targets.ravel().astype(np.int32)
    return out


class Skipped(Exception):
    """An implementation cannot run this configuration; the message says why."""


# ----------------------------------------------------------------------------- brainstate


def _load_coba():
    if "coba_example" in sys.modules:
        return sys.modules["coba_example"]
    spec = importlib.util.spec_from_file_location("coba_example", COBA_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["coba_example"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_ours(n: int, duration_ms: float, inputs: int = INPUTS, seed: int = SEED) -> dict:
    """Run ``examples/coba.py``'s ``simulate``; the only code that depends on its signature.

    Passes ``neurons=n`` and the synapses per neuron as ``conn=`` (or ``inputs=``, whichever
    ``simulate`` takes); raises :class:`Skipped` when it takes neither size argument. Reads
    the returned ``Result`` (spike events ``steps``/``indices``, ``compile_s``, ``run_s``,
    ``n_steps``).
    """
    coba = _load_coba()
    params = inspect.signature(coba.simulate).parameters
    kwargs: dict = {"duration_ms": duration_ms, "dt": DT, "seed": seed}
    if "neurons" not in params:
        raise Skipped("simulate() of examples/coba.py takes no neurons= argument")
    kwargs["neurons"] = n
    degree = next((k for k in ("conn", "inputs") if k in params), None)
    if degree is None:
        raise Skipped("simulate() of examples/coba.py takes no conn= (synapses per neuron) "
                      "argument")
    kwargs[degree] = inputs
    result = coba.simulate(**kwargs)
    steps = np.asarray(result.steps)
    return {"build_s": float(result.compile_s), "run_s": float(result.run_s),
            "overhead_s": 0.0, "steps": int(result.n_steps), "spikes": int(steps.size),
            "counts": np.bincount(steps, minlength=result.n_steps).tolist()}


# ------------------------------------------------------------------------------ plain JAX


def run_plain_jax(conn: dict[str, np.ndarray], duration_ms: float) -> dict:
    """The same network as one ``jax.lax.scan`` under ``jax.jit``, arrays as arguments."""
    import jax
    import jax.numpy as jnp

    coba = _load_coba()  # the model constants
    dt = DT
    n_steps = int(round(duration_ms / dt))

    def simulate(init, syn):
        def spike_counts(s, pre, post):
            # every synapse every step: the dense propagation the event-driven one avoids
            return jax.ops.segment_sum(s[pre], post, num_segments=n)

        def step(carry, _):
            v, g_exc, g_inh, ref, spike = carry
            s = spike.astype(jnp.float32)
            g_exc = g_exc * (1.0 - dt / coba.TAU_EXC) + coba.W_EXC * spike_counts(s, *syn[:2])
            g_inh = g_inh * (1.0 - dt / coba.TAU_INH) + coba.W_INH * spike_counts(s, *syn[2:])
            current = (g_exc * (coba.E_EXC - v) + g_inh * (coba.E_INH - v)
                       + coba.I_BACKGROUND)
            v_new = jnp.where(ref > 0.0, v, v + dt * (coba.V_REST - v + current) / coba.TAU_M)
            fired = v_new >= coba.V_TH
            ref = jnp.where(fired, coba.TAU_REF, jnp.maximum(ref - dt, 0.0))
            carry = (jnp.where(fired, coba.V_RESET, v_new), g_exc, g_inh, ref, fired)
            return carry, fired.sum(dtype=jnp.int32)  # population count, not the raster

        return jax.lax.scan(step, init, None, length=n_steps)[1]

    n = conn["v0"].shape[0]
    zeros = jnp.zeros(n, jnp.float32)
    init = (jnp.asarray(conn["v0"]), zeros, zeros, zeros, jnp.zeros(n, jnp.bool_))
    syn = tuple(jnp.asarray(conn[k]) for k in ("exc_i", "exc_j", "inh_i", "inh_j"))
    t0 = time.perf_counter()
    compiled = jax.jit(simulate).lower(init, syn).compile()
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    counts = np.asarray(jax.block_until_ready(compiled(init, syn)))
    run_s = time.perf_counter() - t0
    return {"build_s": build_s, "run_s": run_s, "overhead_s": 0.0, "steps": n_steps,
            "spikes": int(counts.sum()), "counts": counts.tolist()}


# ------------------------------------------------------------------------------- children


def _child_main(args: argparse.Namespace) -> int:
    """Entry point of a subprocess: run one implementation, print one JSON line."""
    if args.child == "ours":
        try:
            result = run_ours(args.n, args.duration, args.inputs, args.seed)
        except Skipped as exc:
            result = {"skipped": str(exc)}
    else:
        with np.load(args.conn) as data:
            conn = {k: data[k] for k in ("exc_i", "exc_j", "inh_i", "inh_j", "v0")}
        result = run_plain_jax(conn, args.duration)
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if not args.record_counts:
        result["counts"] = None
    print(json.dumps(result))
    return 0


def _run_child(cmd: list[str]) -> dict:
    """Run ``cmd``; its last stdout line is a JSON object. Failures become ``{"error": ...}``."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit status {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def brian2_version(python: str) -> tuple[str | None, str]:
    """``(version, "")`` when ``python`` can import brian2, else ``(None, reason)``."""
    try:
        proc = subprocess.run([python, "-c", "import brian2; print(brian2.__version__)"],
                              capture_output=True, text=True, timeout=300)
    except OSError as exc:
        return None, f"cannot run {python}: {exc}"
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return None, f"brian2 is not importable by {python} ({tail}); " \
                     f"pip install -e '.[bench]' or pass --brian2-python"
    return proc.stdout.strip(), ""


# ---------------------------------------------------------------------------------- table


IMPLEMENTATIONS = ["brainstate", "plain JAX", "brian2 runtime", "brian2 standalone"]


def run_size(n: int, duration_ms: float, inputs: int, brian2_python: str | None,
             workdir: str, record_counts: bool = False,
             implementations: list[str] | None = None) -> dict[str, dict]:
    """Every implementation at one size, each in its own subprocess."""
    implementations = implementations or IMPLEMENTATIONS
    conn_file = os.path.join(workdir, f"coba_{n}_{inputs}.npz")
    if not os.path.exists(conn_file):
        np.savez(conn_file, **connectivity(n, inputs, SEED))
    common = ["--n", str(n), "--duration", repr(duration_ms), "--inputs", str(inputs),
              "--seed", str(SEED), "--conn", conn_file]
    if record_counts:
        common.append("--record-counts")
    me = [sys.executable, str(pathlib.Path(__file__).resolve())]
    results: dict[str, dict] = {}
    for name in implementations:
        if name == "brainstate":
            results[name] = _run_child(me + ["--child", "ours"] + common)
        elif name == "plain JAX":
            results[name] = _run_child(me + ["--child", "jax"] + common)
        elif brian2_python is None:
            continue
        else:
            target = "runtime" if name == "brian2 runtime" else "standalone"
            cmd = [brian2_python, str(BRIAN2_SCRIPT), "--target", target, "--conn", conn_file,
                   "--duration", repr(duration_ms), "--dt", repr(DT)]
            if record_counts:
                cmd.append("--record-counts")
            results[name] = _run_child(cmd)
    return results


def _label(name: str, r: dict) -> str:
    if name == "brian2 runtime" and "target" in r:
        return f"brian2 runtime ({r['target']})"
    return name


def format_rows(n: int, duration_ms: float, results: dict[str, dict]) -> list[str]:
    """Table rows of one size; skipped or failed implementations say why."""
    ours = results.get("brainstate", {})
    ours_sps = ours["steps"] / ours["run_s"] if "run_s" in ours else None
    rows = []
    for name, r in results.items():
        label = _label(name, r)
        if "run_s" not in r:
            reason = r.get("skipped") or r.get("error") or "no result"
            rows.append(f"{label:<26} {n:>8}  -- {reason}")
            continue
        sps = r["steps"] / r["run_s"]
        scale = 1000.0 / duration_ms
        to_result = r["build_s"] + r["overhead_s"] + r["run_s"] * scale
        mark = "*" if scale != 1.0 else " "
        rate = r["spikes"] / n / (r["steps"] * DT / 1000.0)
        ratio = f"{ours_sps / sps:8.2f}x" if ours_sps else "       -"
        rows.append(f"{label:<26} {n:>8} {duration_ms:>7g} {sps:>10.0f} {r['build_s']:>8.2f} "
                    f"{to_result:>10.2f}{mark} {rate:>8.2f} {r['peak_rss_kb'] / 1024:>8.0f} "
                    f"{ratio}")
    return rows


HEADER = (f"{'implementation':<26} {'neurons':>8} {'ms':>7} {'steps/s':>10} {'build s':>8} "
          f"{'to 1 s':>11} {'rate Hz':>8} {'RSS MB':>8} {'ours/this':>9}")


def check_counts(results: dict[str, dict]) -> list[str]:
    """How many leading steps each implementation's population counts equal plain JAX's."""
    ref = results.get("plain JAX", {}).get("counts")
    if ref is None:
        return ["no per-step counts from plain JAX: nothing to compare"]
    ref = np.asarray(ref)
    lines = []
    for name, r in results.items():
        counts = r.get("counts")
        if name == "plain JAX" or counts is None:
            continue
        counts = np.asarray(counts)
        diff = np.nonzero(counts != ref)[0]
        same = len(ref) if diff.size == 0 else int(diff[0])
        lines.append(f"{_label(name, r):<26} identical population spike count in the first "
                     f"{same} of {len(ref)} steps; total spikes {int(counts.sum())} vs "
                     f"{int(ref.sum())} (plain JAX)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="neurons")
    parser.add_argument("--inputs", type=int, default=INPUTS, help="synapses per neuron")
    parser.add_argument("--duration", type=float, default=None,
                        help="model ms for every size (default: 1000 up to 4,000 neurons, "
                             "100 above)")
    parser.add_argument("--brian2-python", default=sys.executable,
                        help="interpreter with brian2 installed (default: this one)")
    parser.add_argument("--no-brian2", action="store_true", help="skip the Brian2 rows")
    parser.add_argument("--check", action="store_true",
                        help="also compare per-step population spike counts (records them in "
                             "every implementation, so do not quote those timings)")
    # subprocess protocol (internal)
    parser.add_argument("--child", choices=["ours", "jax"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=SEED, help=argparse.SUPPRESS)
    parser.add_argument("--conn", help=argparse.SUPPRESS)
    parser.add_argument("--record-counts", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(args)

    brian2_python, version = None, None
    if args.no_brian2:
        print("Brian2 rows skipped: --no-brian2")
    else:
        version, reason = brian2_version(args.brian2_python)
        if version is None:
            print(f"Brian2 rows skipped: {reason}")
        else:
            brian2_python = args.brian2_python
            print(f"Brian2 {version} ({brian2_python}); standalone runs single-threaded, "
                  f"float64")
    print(f"{os.cpu_count()} CPUs; dt = {DT} ms, {args.inputs} synapses per neuron; "
          f"brainstate and plain JAX in float32")
    print(HEADER)
    all_checks = []
    with tempfile.TemporaryDirectory(prefix="bench_coba_") as workdir:
        for n in args.sizes:
            duration = args.duration or default_duration(n)
            results = run_size(n, duration, args.inputs, brian2_python, workdir,
                               record_counts=args.check)
            for row in format_rows(n, duration, results):
                print(row, flush=True)
            if args.check:
                all_checks += [f"n={n}: {line}" for line in check_counts(results)]
    print("* time to result extrapolated to 1 s of model time from the measured run")
    for line in all_checks:
        print(line)
    return 0


def bench_coba_smoke():
    """Tiny network, ours and plain JAX only: same spikes, and a table row for each."""
    n, inputs, duration = 400, 8, 20.0
    with tempfile.TemporaryDirectory(prefix="bench_coba_") as workdir:
        results = run_size(n, duration, inputs, None, workdir, record_counts=True,
                           implementations=["brainstate", "plain JAX"])
    ours, raw = results["brainstate"], results["plain JAX"]
    assert "run_s" in ours and "run_s" in raw, results
    assert ours["spikes"] == raw["spikes"] > 0
    if ours["counts"] is not None:
        assert ours["counts"] == raw["counts"]
    rows = format_rows(n, duration, results)
    assert len(rows) == 2 and all("--" not in row for row in rows), rows


if __name__ == "__main__":
    sys.exit(main())
