"""``nn.Param.value()`` in a jitted 1,000-step loop, with and without ``param_precompute``.

Targets: the optimized HLO of ``jit(for_loop(... param.value() ...))`` has exactly the
op counts of the same loop written in raw JAX over the raw transform (``t.forward(theta)``),
with or without ``param_precompute``, and the transform's ops are not inside the ``while``
body (no extra work left in the loop); per-call times within noise of the raw JAX baseline.
Also the eager ``value()`` hot path: a cache hit against calling the transform.
"""

from __future__ import annotations

import collections
import re

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate.nn import Module, Param, SoftplusT
from brainstate.transform import for_loop, jit

STEPS = 1000
WIDTH = 16
TRANSFORM = SoftplusT(0.0)
# Ops of the softplus forward: none may be left inside the loop body.
TRANSFORM_OPS = {"exponential", "log-plus-one"}

_INSTR = re.compile(r"\s*(?:ROOT\s+)?%[\w.\-]+ = .*? ([a-z][\w\-]*)\(")
_HEADER = re.compile(r"^(?:ENTRY\s+)?%([\w.\-]+) .*\{\s*$")
_CALLS = re.compile(r"(?:calls|body|condition|to_apply)=%([\w.\-]+)")
_BODY = re.compile(r"\bwhile\(.*?body=%([\w.\-]+)")


def hlo_computations(text: str) -> dict:
    """``{computation: (op Counter, called computations, while bodies)}`` of an HLO module."""
    comps: dict = {}
    current = None
    for line in text.splitlines():
        head = _HEADER.match(line)
        if head:
            current = head.group(1)
            comps[current] = (collections.Counter(), set(), set())
            continue
        if current is None:
            continue
        if line.startswith("}"):
            current = None
            continue
        m = _INSTR.match(line)
        if m:
            ops, calls, bodies = comps[current]
            ops[m.group(1)] += 1
            calls.update(_CALLS.findall(line))
            bodies.update(_BODY.findall(line))
    return comps


def hlo_op_counts(text: str) -> collections.Counter:
    """Every instruction of the module, counted by opcode."""
    total: collections.Counter = collections.Counter()
    for ops, _, _ in hlo_computations(text).values():
        total.update(ops)
    return total


def hlo_loop_ops(text: str) -> collections.Counter:
    """The instructions executed per iteration: the while bodies and what they call."""
    comps = hlo_computations(text)
    todo = [b for _, _, bodies in comps.values() for b in bodies]
    seen: set = set()
    total: collections.Counter = collections.Counter()
    while todo:
        name = todo.pop()
        if name in seen or name not in comps:
            continue
        seen.add(name)
        ops, calls, _ = comps[name]
        total.update(ops)
        todo.extend(calls)
    return total


def build(precompute: bool):
    """A jitted 1,000-step loop reading ``param.value()``; returns ``(fn, args, model)``."""
    model = Module()
    model.p = Param(jnp.full((WIDTH,), 0.5, jnp.float32), t=TRANSFORM)
    model.h = brainstate.ShortTermState(jnp.zeros((WIDTH,), jnp.float32))

    def step(x):
        model.h.value = model.h.value * 0.9 + model.p.value() * x
        return jnp.sum(model.h.value)

    if precompute:
        def run(xs):
            with model.param_precompute():
                return for_loop(step, xs)
    else:
        def run(xs):
            return for_loop(step, xs)

    xs = jnp.ones((STEPS, WIDTH), jnp.float32)
    return jit(run), (xs,), model


def build_raw(hoisted: bool):
    """The same loop in raw JAX over ``TRANSFORM.forward``; returns ``(fn, args)``."""
    def run(theta, h0, xs):
        s = TRANSFORM.forward(theta) if hoisted else None

        def f(h, x):
            scale = s if hoisted else TRANSFORM.forward(theta)
            h = h * 0.9 + scale * x
            return h, jnp.sum(h)

        h, ys = jax.lax.scan(f, h0, xs)
        return ys, h

    theta = TRANSFORM.inverse(jnp.full((WIDTH,), 0.5, jnp.float32))
    args = (theta, jnp.zeros((WIDTH,), jnp.float32), jnp.ones((STEPS, WIDTH), jnp.float32))
    return jax.jit(run), args


def compiled_text(fn, args) -> str:
    return fn.lower(*args).compile().as_text()


@pytest.mark.parametrize("precompute", [False, True], ids=["plain", "precompute"])
def bench_hlo_same_as_raw(precompute):
    """Not timed: the compiled programs match raw JAX op for op; nothing extra in the loop."""
    fn, args, _ = build(precompute)
    ours = compiled_text(fn, args)
    for hoisted in (False, True):
        raw = compiled_text(*build_raw(hoisted))
        assert hlo_op_counts(ours) == hlo_op_counts(raw), (hoisted, hlo_op_counts(ours),
                                                            hlo_op_counts(raw))
        assert hlo_loop_ops(ours) == hlo_loop_ops(raw)
    loop = hlo_loop_ops(ours)
    assert loop, "no while body found in the compiled program"
    assert not TRANSFORM_OPS & set(loop), f"transform ops left in the loop: {loop}"


def _time(benchmark, fn, args, group):
    jax.block_until_ready(fn(*args))
    benchmark.group = group
    benchmark(lambda: jax.block_until_ready(fn(*args)))


@pytest.mark.benchmark(group="param.loop[1000 steps]")
def bench_loop_plain(benchmark):
    fn, args, _ = build(False)
    _time(benchmark, fn, args, "param.loop[1000 steps]")


@pytest.mark.benchmark(group="param.loop[1000 steps]")
def bench_loop_precompute(benchmark):
    fn, args, _ = build(True)
    _time(benchmark, fn, args, "param.loop[1000 steps]")


@pytest.mark.benchmark(group="param.loop[1000 steps]")
def bench_loop_raw_in_loop(benchmark):
    fn, args = build_raw(False)
    _time(benchmark, fn, args, "param.loop[1000 steps]")


@pytest.mark.benchmark(group="param.loop[1000 steps]")
def bench_loop_state_raw_transform(benchmark):
    """brainstate's jit and for_loop over a bare ParamState: isolates what Param itself costs."""
    theta = brainstate.ParamState(TRANSFORM.inverse(jnp.full((WIDTH,), 0.5, jnp.float32)))
    h = brainstate.ShortTermState(jnp.zeros((WIDTH,), jnp.float32))

    def step(x):
        h.value = h.value * 0.9 + TRANSFORM.forward(theta.value) * x
        return jnp.sum(h.value)

    fn = jit(lambda xs: for_loop(step, xs))
    _time(benchmark, fn, (jnp.ones((STEPS, WIDTH), jnp.float32),), "param.loop[1000 steps]")


@pytest.mark.benchmark(group="param.loop[1000 steps]")
def bench_loop_baseline_raw(benchmark):
    fn, args = build_raw(True)
    _time(benchmark, fn, args, "param.loop[1000 steps]")


# --- eager value(): the cache hit is a plain attribute read --------------------------------------


@pytest.mark.benchmark(group="param.value[eager]")
def bench_value_cached(benchmark):
    p = Param(jnp.full((WIDTH,), 0.5, jnp.float32), t=TRANSFORM)
    p.cache()
    benchmark(p.value)


@pytest.mark.benchmark(group="param.value[eager]")
def bench_value_uncached(benchmark):
    p = Param(jnp.full((WIDTH,), 0.5, jnp.float32), t=TRANSFORM)
    benchmark(lambda: jax.block_until_ready(p.value()))


@pytest.mark.benchmark(group="param.value[eager]")
def bench_value_baseline_raw_transform(benchmark):
    theta = TRANSFORM.inverse(jnp.full((WIDTH,), 0.5, jnp.float32))
    benchmark(lambda: jax.block_until_ready(TRANSFORM.forward(theta)))
