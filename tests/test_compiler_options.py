"""``transform.simulation_options``: XLA:CPU options for simulation loops, per compilation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import for_loop, jit, simulation_options

N = 50_000  # large enough for XLA to split its kernels across threads by default


def _lif_network():
    v = brainstate.HiddenState(jnp.linspace(-60.0, -49.0, N), name="v")
    g = brainstate.HiddenState(jnp.linspace(0.0, 1.0, N), name="g")
    ref = brainstate.HiddenState(jnp.zeros(N), name="ref")

    def step(i):
        g_new = g.value * 0.98
        v_new = jnp.where(ref.value > 0, v.value,
                          v.value + 0.1 * (-60.0 - v.value + g_new * (0.0 - v.value) + 20.0) / 20.0)
        fired = v_new >= -50.0
        v.value = jnp.where(fired, -60.0, v_new)
        ref.value = jnp.where(fired, 5.0, jnp.maximum(ref.value - 0.1, 0.0))
        g.value = g_new + jnp.where(fired, 0.5, 0.0)
        return fired.sum()

    return (v, g, ref), step


def _compiled_text(options):
    _, step = _lif_network()
    run = jit(lambda ts: for_loop(step, ts), **({"compiler_options": options} if options else {}))
    return run.lower(jnp.arange(10)).compile().as_text()


def test_options_content():
    assert simulation_options() == {
        "xla_cpu_copy_insertion_use_region_analysis": True,
        "xla_disable_hlo_passes": "cpu-parallel-task-assigner",
    }
    assert simulation_options(parallel_kernels=True) == {
        "xla_cpu_copy_insertion_use_region_analysis": True,
    }


def test_non_bool_is_refused():
    with pytest.raises(TypeError, match="parallel_kernels must be a bool, got int"):
        simulation_options(parallel_kernels=1)


@pytest.mark.parametrize("parallel", [False, True])
def test_same_results_as_default_compilation(parallel):
    states, step = _lif_network()
    ts = jnp.arange(200)
    counts = jit(lambda ts: for_loop(step, ts))(ts)
    ref_values = [np.asarray(s.value) for s in states]

    states2, step2 = _lif_network()
    run = jit(lambda ts: for_loop(step2, ts),
              compiler_options=simulation_options(parallel_kernels=parallel))
    counts2 = run(ts)
    assert int(counts.sum()) > 0  # the network fires: the comparison covers resets
    np.testing.assert_array_equal(np.asarray(counts2), np.asarray(counts))
    for a, b in zip(states2, ref_values):
        np.testing.assert_allclose(np.asarray(a.value), b, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU options")
def test_kernels_are_not_split_across_threads():
    assert "outer_dimension_partitions" not in _compiled_text(simulation_options())


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU options")
def test_region_analysis_drops_loop_copies():
    def copies(text):
        return sum(" copy(" in line for line in text.splitlines())

    assert copies(_compiled_text(simulation_options(parallel_kernels=True))) \
        < copies(_compiled_text(None))
