"""Captured connectivity arrays: program inputs (hoisted) against embedded constants and raw JAX.

The COBA network of ``examples/coba.py`` with its connectivity indices held as plain module
attributes, which ``jit`` captures as constants of the traced function. Targets: compile time
and run time within 1.1x of raw ``jax.jit`` with the arrays passed as arguments, at 40,000
neurons (80 inputs each) and 400,000. Three variants per group:

* ``baseline_raw``: the same step as a pure function under ``jax.jit``, arrays as arguments;
* ``hoisted``: ``brainstate.transform.jit`` with the default const threshold (1 MiB);
* ``embedded``: ``jit`` with ``set_jit_const_threshold(None)`` (the behaviour before hoisting).

The lowered module's size (characters of its text) is in each benchmark's ``extra_info`` and
printed. ``python bench/bench_jit_constants.py`` runs an interleaved A/B timing instead (the
variants alternate, minimum of several repeats), which is steadier on a busy machine; pass the
sizes and ``--inputs K`` to change the defaults.
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import for_loop, jit, set_jit_const_threshold

V_REST, V_RESET, V_TH = -60.0, -60.0, -50.0
TAU_M, TAU_REF = 20.0, 5.0
E_EXC, E_INH = 0.0, -80.0
TAU_EXC, TAU_INH = 5.0, 10.0
W_EXC, W_INH = 0.6, 6.7
I_BACKGROUND = 20.0
DT = 0.1
INPUTS = 80  # per neuron, 4/5 excitatory
N_STEPS = 100
SIZES = [40_000, 400_000]


def _step(vals, exc_pre, inh_pre):
    """One Euler step of the network on explicit values: ``(V, g_exc, g_inh, ref, spike)``."""
    v, g_exc, g_inh, ref, spike = vals
    s = spike.astype(jnp.float32)
    g_exc = g_exc * (1.0 - DT / TAU_EXC) + W_EXC * s[exc_pre].sum(1)
    g_inh = g_inh * (1.0 - DT / TAU_INH) + W_INH * s[inh_pre].sum(1)
    current = g_exc * (E_EXC - v) + g_inh * (E_INH - v) + I_BACKGROUND
    v_new = jnp.where(ref > 0.0, v, v + DT * (V_REST - v + current) / TAU_M)
    fired = v_new >= V_TH
    ref = jnp.where(fired, TAU_REF, jnp.maximum(ref - DT, 0.0))
    return (jnp.where(fired, V_RESET, v_new), g_exc, g_inh, ref, fired)


def _initial(n: int, seed: int = 0):
    """Initial values and connectivity (numpy) of a network of ``n`` neurons."""
    rng = np.random.default_rng(seed)
    n_exc = n * 4 // 5
    k_exc, k_inh = INPUTS * 4 // 5, INPUTS - INPUTS * 4 // 5
    exc = rng.integers(0, n_exc, (n, k_exc), dtype=np.int32)
    inh = rng.integers(n_exc, n, (n, k_inh), dtype=np.int32)
    v0 = rng.normal(-55.0, 2.0, size=n).astype(np.float32)
    z = np.zeros(n, np.float32)
    return (v0, z, z, z, np.zeros(n, np.bool_)), exc, inh


class COBA(brainstate.nn.Module):
    """The network with its connectivity as plain attributes (captured, not states)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        vals, exc, inh = _initial(n)
        self.exc_pre, self.inh_pre = jnp.asarray(exc), jnp.asarray(inh)
        self.vars = [brainstate.HiddenState(jnp.asarray(x)) for x in vals]

    def update(self, t: jax.Array) -> jax.Array:
        new = _step([st.value for st in self.vars], self.exc_pre, self.inh_pre)
        for st, x in zip(self.vars, new):
            st.value = x
        return new[-1]


def _ours(n: int, threshold: int | None):
    """``(compile(), run(), lowered module chars)`` of the brainstate version."""
    net = COBA(n)
    steps = jnp.arange(N_STEPS)

    def fresh():
        return jit(lambda ts: for_loop(net.update, ts))

    def with_threshold(fn):
        set_jit_const_threshold(threshold)  # read when a traced function is compiled
        try:
            return fn()
        finally:
            set_jit_const_threshold()

    f = fresh()
    with_threshold(lambda: f(steps))  # warm: trace + compile once for run()

    def compile_once():
        with_threshold(lambda: fresh().compile(steps))

    def run():
        return jax.block_until_ready(f(steps))

    return compile_once, run, with_threshold(lambda: len(fresh().lower(steps).as_text()))


def _raw(n: int):
    """The same network as a pure ``jax.jit`` function with the arrays as arguments."""
    vals, exc, inh = _initial(n)
    vals = [jnp.asarray(x) for x in vals]
    exc, inh = jnp.asarray(exc), jnp.asarray(inh)
    steps = jnp.arange(N_STEPS)

    def fresh():
        def sim(vals, exc, inh, ts):
            def body(c, t):
                new = _step(c, exc, inh)
                return list(new), new[-1]

            return jax.lax.scan(body, vals, ts)

        return jax.jit(sim)

    f = fresh()
    box = [vals]

    def compile_once():
        fresh().lower(vals, exc, inh, steps).compile()

    def run():
        box[0], spikes = f(box[0], exc, inh, steps)
        return jax.block_until_ready(spikes)

    run()
    return compile_once, run, len(fresh().lower(vals, exc, inh, steps).as_text())


def _variant(name: str, n: int):
    if name == "baseline_raw":
        return _raw(n)
    return _ours(n, None if name == "embedded" else 1 << 20)


VARIANTS = ["baseline_raw", "hoisted", "embedded"]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("variant", VARIANTS)
def bench_coba_compile(benchmark, variant, n):
    compile_once, _, size = _variant(variant, n)
    benchmark.group = f"coba.compile[n={n}]"
    benchmark.extra_info["module_chars"] = size
    print(f"\n{variant} n={n}: lowered module {size / 1e6:.3f} M chars")
    benchmark.pedantic(compile_once, rounds=3, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("variant", VARIANTS)
def bench_coba_run(benchmark, variant, n):
    _, run, size = _variant(variant, n)
    benchmark.group = f"coba.run[n={n}, {N_STEPS} steps]"
    benchmark.extra_info["module_chars"] = size
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)


def _interleaved(n: int, repeats: int = 3) -> None:
    """Alternate the variants; print min compile / run times and their ratios to raw."""
    built = {v: _variant(v, n) for v in VARIANTS}
    comp = {v: [] for v in VARIANTS}
    runs = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for v in VARIANTS:
            t0 = time.perf_counter()
            built[v][0]()
            comp[v].append(time.perf_counter() - t0)
            for _ in range(3):
                t0 = time.perf_counter()
                built[v][1]()
                runs[v].append(time.perf_counter() - t0)
    c0, r0 = min(comp["baseline_raw"]), min(runs["baseline_raw"])
    for v in VARIANTS:
        c, r = min(comp[v]), min(runs[v])
        print(f"n={n:>7} {v:>12}: compile {c:7.3f} s ({c / c0:5.2f}x raw)  "
              f"run {r * 1e3:8.2f} ms ({r / r0:5.2f}x raw)  "
              f"module {built[v][2] / 1e6:8.3f} M chars")


if __name__ == "__main__":
    # usage: python bench/bench_jit_constants.py [N ...] [--inputs K]
    argv = sys.argv[1:]
    if "--inputs" in argv:
        i = argv.index("--inputs")
        INPUTS = int(argv[i + 1])
        del argv[i:i + 2]
    for size in [int(a) for a in argv] or SIZES:
        _interleaved(size)
