"""Benchmark fixtures: the ``core`` fixture (py, c) and input builders.

Inputs are built outside the timed callables; each group holds its baseline.
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import pytest


@pytest.fixture(scope="session", params=["py", "c"])
def core(request):
    """The core module under test, configured."""
    from brainstate import _wiring

    mod = importlib.import_module("brainstate._core_py" if request.param == "py"
                                  else "brainstate._core")
    _wiring.configure_core(mod)
    return mod


@pytest.fixture(scope="session")
def state_classes(core):
    """A ``State``-like class over the requested core (the public ``State`` is bound to one)."""

    class BenchState(core.StateCore):
        pass

    return BenchState


def array100():
    return jnp.zeros(100, jnp.float32)


def tree10():
    return {f"w{i}": jnp.full((10,), i, jnp.float32) for i in range(10)}


@pytest.fixture(autouse=True)
def _block():
    yield
    jax.effects_barrier()


def pytest_terminal_summary(terminalreporter, config):
    """Print each benchmark's ratio to the baseline of its group (quote these, not times)."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict = {}
    for bench in session.benchmarks:
        if not bench.stats or bench.stats.rounds == 0:
            continue
        groups.setdefault(bench.group, []).append(bench)
    lines = []
    for group, benches in sorted(groups.items(), key=lambda kv: str(kv[0])):
        base = [b for b in benches if "baseline" in b.name]
        if not base:
            continue
        ref = base[0].stats.median
        for b in benches:
            if b is base[0]:
                continue
            lines.append(f"{group:<40} {b.name:<55} {b.stats.median / ref:8.2f}x")
    if lines:
        terminalreporter.section("ratios to the baseline of each group (median)")
        for line in lines:
            terminalreporter.write_line(line)
