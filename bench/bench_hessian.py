"""Second-order and Jacobian transforms over states against raw JAX on the same arrays.

Target: ``jit(hessian(loss, grad_states=10 ParamStates))`` per call <= 1.15x
``jax.jit(jax.hessian(pure_loss))`` of the equivalent pure function; ``jacrev`` and ``jacfwd``
of a vector output the same way. Each group holds its raw-JAX baseline.

``python bench/bench_hessian.py`` runs an interleaved A/B timing and prints the ratios.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import hessian, jacfwd, jacrev, jit

from _timing import interleaved_minima

N_PARAMS = 10
SIZE = 16


def _values():
    return [jnp.full((SIZE,), 0.1 * (i + 1), jnp.float32) for i in range(N_PARAMS)]


def _x():
    return jnp.linspace(-1.0, 1.0, SIZE, dtype=jnp.float32)


def _pure_loss(vals, x):
    # couples the parameters, so every Hessian block is dense
    s = sum(jnp.sum(jnp.tanh(v * x)) for v in vals)
    return s * s


def _pure_vector(vals, x):
    return sum(jnp.tanh(v * x) for v in vals)


def _ours(kind: str):
    params = [brainstate.ParamState(v) for v in _values()]

    def loss(x):
        return _pure_loss([p.value for p in params], x)

    def vector(x):
        return _pure_vector([p.value for p in params], x)

    make = {"hessian": lambda: hessian(loss, grad_states=params),
            "jacrev": lambda: jacrev(vector, grad_states=params),
            "jacfwd": lambda: jacfwd(vector, grad_states=params)}[kind]
    f = jit(make())
    x = _x()
    jax.block_until_ready(f(x))
    return lambda: jax.block_until_ready(f(x))


def _raw(kind: str):
    vals, x = _values(), _x()
    raw = {"hessian": lambda: jax.hessian(_pure_loss),
           "jacrev": lambda: jax.jacrev(_pure_vector),
           "jacfwd": lambda: jax.jacfwd(_pure_vector)}[kind]
    f = jax.jit(raw())
    jax.block_until_ready(f(vals, x))
    return lambda: jax.block_until_ready(f(vals, x))


KINDS = ["hessian", "jacrev", "jacfwd"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.benchmark(group="derivs.call[10 params]")
def bench_derivative_call(benchmark, kind):
    benchmark.group = f"{kind}.call[10 params]"
    benchmark(_ours(kind))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.benchmark(group="derivs.call[10 params]")
def bench_derivative_call_baseline_raw(benchmark, kind):
    benchmark.group = f"{kind}.call[10 params]"
    benchmark(_raw(kind))


def _check_same_result():
    """The benchmarked pair computes the same Hessian (a guard against timing different work)."""
    params = [brainstate.ParamState(v) for v in _values()]
    ours = hessian(lambda x: _pure_loss([p.value for p in params], x), grad_states=params)
    got = jit(ours)(_x())
    want = jax.hessian(_pure_loss)(_values(), _x())
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert jnp.allclose(a, b, rtol=1e-5, atol=1e-5)


def _batch(run, n: int = 50):
    def go():
        for _ in range(n):
            run()
    return go


if __name__ == "__main__":
    _check_same_result()
    for kind in KINDS:
        runs = {"raw": _batch(_raw(kind)), "ours": _batch(_ours(kind))}
        best = interleaved_minima(runs, repeats=30)
        print(f"{kind:>8}: ours {best['ours'] / 50 * 1e6:8.2f} us/call, raw "
              f"{best['raw'] / 50 * 1e6:8.2f} us/call, ratio {best['ours'] / best['raw']:5.3f}x",
              flush=True)
