"""``nn.SpikeMonitor``: events recorded in a bounded buffer, never silently dropped."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.nn import SpikeMonitor
from brainstate.transform import for_loop, jit


def _raster(steps=50, n=30, p=0.1, seed=0):
    return np.random.default_rng(seed).random((steps, n)) < p


def _record(monitor, raster, compiled=True):
    monitor.init_state()

    def step(spikes):
        monitor.update(spikes)

    if compiled:
        jit(lambda r: for_loop(step, r))(jnp.asarray(raster))
    else:
        for row in raster:
            step(jnp.asarray(row))


@pytest.mark.parametrize("compiled", [True, False])
def test_events_reproduce_the_dense_raster(compiled):
    raster = _raster()
    monitor = SpikeMonitor(30, max_events=int(raster.sum()) + 5)
    _record(monitor, raster, compiled)
    steps, indices = monitor.events()
    expected_steps, expected_indices = np.nonzero(raster)
    np.testing.assert_array_equal(steps, expected_steps)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(monitor.dense(), raster)
    np.testing.assert_array_equal(monitor.counts(), raster.sum(0))


def test_float_spikes_count_when_non_zero():
    monitor = SpikeMonitor(3, max_events=4)
    monitor.init_state()
    monitor.update(jnp.array([0.0, 1.0, 0.5]))
    assert monitor.events()[1].tolist() == [1, 2]


def test_population_rate():
    raster = _raster(steps=40, n=10, p=0.2)
    monitor = SpikeMonitor(10, max_events=200, max_per_step=10)
    _record(monitor, raster)
    rate = monitor.rate(dt=0.1, bin_steps=10)
    expected = raster.reshape(4, 10, 10).sum((1, 2)) / (10 * 10 * 0.1)
    np.testing.assert_allclose(rate, expected)
    assert rate.shape == (4,)


def test_a_full_buffer_is_reported_not_dropped():
    raster = _raster()
    monitor = SpikeMonitor(30, max_events=int(raster.sum()) - 1)
    _record(monitor, raster)
    assert int(monitor.seen.value) == raster.sum()
    with pytest.raises(RuntimeError, match=r"stored \d+ of the \d+ spikes.*max_events=\d+\) filled"):
        monitor.events()
    with pytest.raises(RuntimeError, match="Raise the bound"):
        monitor.counts()


def test_a_burst_above_the_fast_bound_takes_the_exact_path():
    raster = _raster(steps=20, n=30, p=0.05, seed=4)
    raster[7] = True                     # every neuron fires in one step
    raster[11, :20] = True
    monitor = SpikeMonitor(30, max_events=int(raster.sum()), max_per_step=4)
    _record(monitor, raster)
    np.testing.assert_array_equal(monitor.dense(), raster)
    exact = SpikeMonitor(30, max_events=int(raster.sum()))  # default: one exact path
    _record(exact, raster)
    np.testing.assert_array_equal(exact.dense(), raster)


def test_reset_forgets_the_record():
    monitor = SpikeMonitor(2, max_events=4)
    monitor.init_state()
    monitor.update(jnp.array([True, True]))
    monitor.reset_state()
    monitor.update(jnp.array([False, True]))
    assert [a.tolist() for a in monitor.events()] == [[0], [1]]


def test_the_buffer_does_not_grow_with_the_recording():
    monitor = SpikeMonitor(1000, max_events=64, max_per_step=16)
    monitor.init_state()
    sizes = {st.value.size for st in monitor.states().values()}
    assert max(sizes) == 64 + 1000


def test_bad_arguments_and_use_before_init():
    for kwargs, match in (({"num": 0, "max_events": 3}, "num must be a positive integer"),
                          ({"num": 3, "max_events": -1}, "max_events must be"),
                          ({"num": 3, "max_events": 3, "max_per_step": 0}, "max_per_step must be"),
                          ({"num": 2.5, "max_events": 3}, "num must be")):
        with pytest.raises(ValueError, match=match):
            SpikeMonitor(**kwargs)
    monitor = SpikeMonitor(3, max_events=3, name="m")
    with pytest.raises(ValueError, match=r"SpikeMonitor\(name='m'\) has no buffer yet.*init_all_states"):
        monitor.update(jnp.zeros(3, bool))
    monitor.init_state()
    with pytest.raises(ValueError, match=r"records 3 neurons, but got spikes of shape \(4,\)"):
        monitor.update(jnp.zeros(4, bool))
    with pytest.raises(ValueError, match="bin_steps must be"):
        monitor.rate(0.1, bin_steps=0)


def test_is_found_by_init_all_states_inside_a_model():
    class Net(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.monitor = SpikeMonitor(5, max_events=10)

    net = Net()
    brainstate.nn.init_all_states(net)
    net.monitor.update(jnp.ones(5, bool))
    assert net.monitor.counts().tolist() == [1] * 5
