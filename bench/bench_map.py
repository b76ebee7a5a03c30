"""``brainstate.transform.map`` against ``jax.lax.map`` on the same pure function, inside jit.

A small MLP-like body (64 -> 64, tanh) applied to 2,000 rows: sequential (one row per loop
step) and chunked (``batch_size=100``: 20 vmapped chunks in a loop; and ``batch_size=300``,
which leaves a remainder of 200 rows for one more vmapped call). The weights are a
``ParamState`` (a loop constant) for brainstate and a closed-over argument for raw JAX; both
compile to a ``lax.scan`` over the same body, so the target is a ratio of about 1.0.

``python bench/bench_map.py`` prints the ratios with interleaved timing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import jit, map as bmap

N_ROWS = 2000
WIDTH = 64


def _inputs():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    xs = jax.random.normal(k1, (N_ROWS, WIDTH), jnp.float32)
    w = jax.random.normal(k2, (WIDTH, WIDTH), jnp.float32) / np.sqrt(WIDTH)
    return xs, w


def _body(w, x):
    h = jnp.tanh(x @ w)
    return jnp.tanh(h @ w).sum()


def _raw(batch_size):
    @jax.jit
    def run(w, xs):
        return jax.lax.map(lambda x: _body(w, x), xs, batch_size=batch_size)

    return run


def _brainstate(w, batch_size):
    param = brainstate.ParamState(w)

    @jit
    def run(xs):
        return bmap(lambda x: _body(param.value, x), xs, batch_size=batch_size)

    return run


def _pair(batch_size):
    xs, w = _inputs()
    raw, ours = _raw(batch_size), _brainstate(w, batch_size)
    np.testing.assert_allclose(ours(xs), raw(w, xs), rtol=1e-5, atol=1e-5)
    return (lambda: raw(w, xs).block_until_ready()), (lambda: ours(xs).block_until_ready())


CASES = {"sequential": None, "batch100": 100, "batch300_remainder": 300}


@pytest.mark.parametrize("case", sorted(CASES))
def bench_map_baseline_lax_map(benchmark, case):
    raw, _ = _pair(CASES[case])
    benchmark.group = f"map:{case}"
    benchmark(raw)


@pytest.mark.parametrize("case", sorted(CASES))
def bench_map_brainstate(benchmark, case):
    _, ours = _pair(CASES[case])
    benchmark.group = f"map:{case}"
    benchmark(ours)


if __name__ == "__main__":
    from _timing import interleaved_minima

    for case, k in CASES.items():
        raw, ours = _pair(k)
        t = interleaved_minima({"lax.map": raw, "brainstate.map": ours}, repeats=50)
        raw_t, ours_t = t["lax.map"], t["brainstate.map"]
        print(f"{case:>20}: lax.map {raw_t * 1e3:8.3f} ms   brainstate.map {ours_t * 1e3:8.3f} ms"
              f"   ratio {ours_t / raw_t:.3f}")
