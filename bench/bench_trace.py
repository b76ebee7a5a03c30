"""Recording cost inside an active ``StateTraceStack``.

Read and write 1,000 states inside one stack, against a Python dict insert per state (what any
recorder must at least do); target <= 2x.
"""

from __future__ import annotations

import jax.numpy as jnp
import pytest

import brainstate

N_STATES = 1000


@pytest.fixture(scope="module")
def states():
    return [brainstate.State(jnp.zeros((4,), jnp.float32)) for _ in range(N_STATES)]


@pytest.mark.benchmark(group="trace.record[1000 states]")
def bench_record_baseline_dict_insert(benchmark, states):
    def record():
        seen = {}
        for st in states:
            seen[id(st)] = st
        return seen

    benchmark(record)


@pytest.mark.benchmark(group="trace.record[1000 states]")
def bench_record_reads(benchmark, states):
    def record():
        with brainstate.StateTraceStack() as trace:
            for st in states:
                st.value
        return trace

    benchmark(record)


@pytest.mark.benchmark(group="trace.record-rw[1000 states]")
def bench_record_rw_baseline_dict_insert(benchmark, states):
    vals = [st.value for st in states]

    def record():
        seen = {}
        for st, v in zip(states, vals):
            seen[id(st)] = st
            st._value = v  # noqa: the plain store a write needs at least
        return seen

    benchmark(record)


@pytest.mark.benchmark(group="trace.record-rw[1000 states]")
def bench_record_read_write(benchmark, states):
    vals = [st.value for st in states]

    def record():
        with brainstate.StateTraceStack() as trace:
            for st, v in zip(states, vals):
                st.value
                st.value = v
        return trace

    benchmark(record)
