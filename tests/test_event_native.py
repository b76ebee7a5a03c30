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
@pytest.mark.parametrize("n_pre", [1, 7, 8, 9, 300])  # around the 8-byte words of the scan
def test_count_matches_the_pure_kernel(p, n_pre):
    spikes, targets, _ = _case(int(p * 100) + n_pre, n_pre=n_pre, p=p)
    got = jax.jit(lambda s: _event_native.event_count(s, targets, 200))(spikes)
    np.testing.assert_array_equal(got, _pure_count(spikes, targets, 200))


def test_weight_matches_the_pure_kernel():
    spikes, targets, weights = _case(1)
    got = jax.jit(lambda s: _event_native.event_weight(s, targets, weights, 200))(spikes)
    rows = jnp.where(spikes[:, None], targets, 200)
    expected = jnp.zeros(201, jnp.float32).at[rows.reshape(-1)].add(weights.reshape(-1))[:200]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_compact_lists_the_spikes_in_order():
    for seed, p in ((0, 0.0), (1, 0.05), (2, 1.0)):
        spikes, _, _ = _case(seed, n_pre=101, p=p)
        out = np.asarray(jax.jit(_event_native.spike_compact)(spikes))
        expected = np.nonzero(np.asarray(spikes))[0]
        assert out[0] == len(expected)
        np.testing.assert_array_equal(out[1:1 + out[0]], expected)


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
    assert "brainstate_spike_compact" in text
