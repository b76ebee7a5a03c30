"""State-aware transforms against raw JAX on the same arrays.

Targets: ``jit`` per call with N = 10, 100, 1,000 states each read and written
<= 1.15x raw ``jax.jit`` of the equivalent pure function; first call (trace + compile) with
N = 1,000 <= 1.2x raw ``jax.jit``'s first call; ``grad`` w.r.t. 10 ``ParamState``s per call under
``jit`` <= 1.15x raw ``jax.grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.transform import grad, jit

SIZES = [10, 100, 1000]


def _states(n):
    return [brainstate.State(jnp.full((8,), i, jnp.float32)) for i in range(n)]


def _stateful_step(states):
    def step(x):
        for st in states:
            st.value = st.value * 0.5 + x
        return x

    return step


def _pure_step(vals, x):
    return [v * 0.5 + x for v in vals], x


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.benchmark(group="jit.call")
def bench_jit_call(benchmark, n):
    states = _states(n)
    f = jit(_stateful_step(states))
    x = jnp.float32(1.0)
    jax.block_until_ready(f(x))
    benchmark.group = f"jit.call[n={n}]"
    benchmark(lambda: jax.block_until_ready(f(x)))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.benchmark(group="jit.call")
def bench_jit_call_baseline_raw(benchmark, n):
    vals = [jnp.full((8,), i, jnp.float32) for i in range(n)]
    f = jax.jit(_pure_step)
    x = jnp.float32(1.0)
    box = [vals]

    def call():
        box[0], out = f(box[0], x)
        return jax.block_until_ready(out)

    call()
    benchmark.group = f"jit.call[n={n}]"
    benchmark(call)


@pytest.mark.benchmark(group="jit.first-call[n=1000]")
def bench_jit_first_call(benchmark):
    states = _states(1000)
    x = jnp.float32(1.0)

    def setup():
        return (jit(_stateful_step(states)),), {}

    benchmark.pedantic(lambda f: jax.block_until_ready(f(x)), setup=setup, rounds=3)


@pytest.mark.benchmark(group="jit.first-call[n=1000]")
def bench_jit_first_call_baseline_raw(benchmark):
    vals = [jnp.full((8,), i, jnp.float32) for i in range(1000)]
    x = jnp.float32(1.0)

    def setup():
        def pure(vs, y):  # a new function object: a fresh trace and compile each round
            return _pure_step(vs, y)

        return (jax.jit(pure),), {}

    benchmark.pedantic(lambda f: jax.block_until_ready(f(vals, x)), setup=setup, rounds=3)


def _params(n=10):
    return [brainstate.ParamState(jnp.full((16,), 0.1 * i, jnp.float32)) for i in range(n)]


@pytest.mark.benchmark(group="grad.call[10 params]")
def bench_grad_call(benchmark):
    params = _params()
    x = jnp.linspace(0.0, 1.0, 16, dtype=jnp.float32)

    def loss(x):
        return sum(jnp.sum((p.value * x - 1.0) ** 2) for p in params)

    g = jit(grad(loss, grad_states=params))
    jax.block_until_ready(g(x))
    benchmark(lambda: jax.block_until_ready(g(x)))


@pytest.mark.benchmark(group="grad.call[10 params]")
def bench_grad_call_baseline_raw(benchmark):
    vals = [jnp.full((16,), 0.1 * i, jnp.float32) for i in range(10)]
    x = jnp.linspace(0.0, 1.0, 16, dtype=jnp.float32)

    def loss(vs, x):
        return sum(jnp.sum((v * x - 1.0) ** 2) for v in vs)

    g = jax.jit(jax.grad(loss))
    jax.block_until_ready(g(vals, x))
    benchmark(lambda: jax.block_until_ready(g(vals, x)))
