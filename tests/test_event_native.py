"""The native event kernels (``brainstate._event_cpu``) against their pure-JAX twins.

The compiled leg requires them (a build that should have them and does not is a failure, as
for the compiled core); the pure leg (``BRAINSTATE_NO_EXTENSIONS=1``) runs the twins through
the layers' own tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.nn import _event_native

pytestmark = pytest.mark.c_extension


def _pure_count(spikes, targets, n_post):
    rows = jnp.where(spikes[:, None], targets, n_post)
    return jnp.zeros(n_post + 1, jnp.int32).at[rows.reshape(-1)].add(1, mode="drop")[:n_post]


def _case(seed, n_pre=300, n_post=200, k=7, p=0.1):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, n_post, (n_pre, k)).astype(np.int32)
    targets[rng.random((n_pre, k)) < 0.1] = n_post  # padding entries are skipped
    spikes = rng.random(n_pre) < p
    weights = rng.normal(size=(n_pre, k)).astype(np.float32)
    return jnp.asarray(spikes), jnp.asarray(targets), jnp.asarray(weights)


def test_the_kernels_are_built_and_registered():
    assert _event_native.available(), _event_native.ERROR


@pytest.mark.parametrize("p", [0.0, 0.01, 0.1, 1.0])
# around the 8-byte words and 64-byte blocks of the scan
@pytest.mark.parametrize("n_pre", [1, 7, 8, 9, 63, 64, 65, 72, 129, 300])
def test_count_matches_the_pure_kernel(p, n_pre):
    spikes, targets, _ = _case(int(p * 100) + n_pre, n_pre=n_pre, p=p)
    got = jax.jit(lambda s: _event_native.event_count(s, targets, 200))(spikes)
    np.testing.assert_array_equal(got, _pure_count(spikes, targets, 200))


@pytest.mark.parametrize("pos", [0, 7, 8, 55, 63, 64, 71, 127, 128, 129])
def test_a_lone_spike_is_found_at_every_block_position(pos):
    _, targets, _ = _case(5, n_pre=130)
    spikes = jnp.zeros(130, bool).at[pos].set(True)
    got = jax.jit(lambda s: _event_native.event_count(s, targets, 200))(spikes)
    np.testing.assert_array_equal(got, _pure_count(spikes, targets, 200))


def test_weight_matches_the_pure_kernel():
    spikes, targets, weights = _case(1)
    got = jax.jit(lambda s: _event_native.event_weight(s, targets, weights, 200))(spikes)
    rows = jnp.where(spikes[:, None], targets, 200)
    expected = jnp.zeros(201, jnp.float32).at[rows.reshape(-1)].add(weights.reshape(-1))[:200]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _record_both(spike_rows, max_events, max_per_step):
    """The monitor's step by the native kernel and by the pure twin, over the same spikes."""
    monitor = brainstate.nn.SpikeMonitor(spike_rows.shape[1], max_events=max_events,
                                         max_per_step=max_per_step)
    monitor.init_state()
    rows = max_events + spike_rows.shape[1]
    native = (jnp.zeros(rows, jnp.int32),) * 2 + (jnp.int32(0),) * 3
    pure = native
    record = jax.jit(lambda s, *v: _event_native.spike_record(s, *v, max_events=max_events))
    twin = jax.jit(lambda s, *v: monitor._pure_record(*v, s))
    for s in spike_rows:
        native, pure = record(s, *native), twin(s, *pure)
    return native, pure


@pytest.mark.parametrize("max_events", [5, 1000])  # overflowing, and not
def test_record_matches_the_pure_twin(max_events):
    rng = np.random.default_rng(max_events)
    spike_rows = jnp.asarray(rng.random((30, 37)) < 0.1).at[7].set(True)  # one full burst
    native, pure = _record_both(spike_rows, max_events, max_per_step=4)
    stored = int(pure[2])
    assert [int(v) for v in native[2:]] == [int(v) for v in pure[2:]]
    assert int(pure[3]) == int(spike_rows.sum()) and int(pure[4]) == 30
    assert (stored < int(pure[3])) == (max_events == 5)
    np.testing.assert_array_equal(native[0][:stored], pure[0][:stored])
    np.testing.assert_array_equal(native[1][:stored], pure[1][:stored])


def test_record_refuses_short_buffers():
    spikes = jnp.ones(10, bool)
    buffers = (jnp.zeros(12, jnp.int32),) * 2 + (jnp.int32(0),) * 3
    with pytest.raises(Exception, match="max_events \\+ n rows"):
        jax.block_until_ready(_event_native.spike_record(spikes, *buffers, max_events=5))


def test_inside_for_loop_and_vmap():
    spikes, targets, _ = _case(3)
    batch = jnp.stack([spikes, ~spikes, jnp.zeros_like(spikes)])
    mapped = jax.vmap(lambda s: _event_native.event_count(s, targets, 200))(batch)
    for row, got in zip(batch, mapped):
        np.testing.assert_array_equal(got, _pure_count(row, targets, 200))
    looped = brainstate.transform.for_loop(
        lambda s: _event_native.event_count(s, targets, 200), batch)
    np.testing.assert_array_equal(looped, mapped)


def test_bad_shapes_are_refused_by_the_kernel():
    spikes, targets, weights = _case(4)
    with pytest.raises(Exception, match="targets must have shape"):
        jax.block_until_ready(_event_native.event_count(spikes[:10], targets, 200))
    with pytest.raises(Exception, match="weights must have the shape of targets"):
        jax.block_until_ready(_event_native.event_weight(spikes, targets, weights[:10], 200))


def test_the_projection_uses_the_native_kernel_on_cpu():
    layer = brainstate.nn.EventFixedProb(50, 40, 5, 0.5, seed=0)
    text = brainstate.transform.jit(layer.update).lower(jnp.zeros(50, bool)).as_text()
    assert "brainstate_event_count" in text
    monitor = brainstate.nn.SpikeMonitor(40, max_events=10, max_per_step=4)
    monitor.init_state()
    text = brainstate.transform.jit(monitor.update).lower(jnp.zeros(40, bool)).as_text()
    assert "brainstate_spike_record" in text
