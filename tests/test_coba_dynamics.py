"""``examples/coba_dynamics.py``: the main job written with ``nn.Dynamics``, delays and current
inputs runs, and fires like ``examples/coba.py`` (the same network)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

import brainstate

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    path = EXAMPLES / f"{name}.py"
    if not path.exists():  # running from an installed wheel without the examples
        pytest.skip(f"examples/{name}.py is not next to the tests")
    spec = importlib.util.spec_from_file_location(f"{name}_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return _load("coba_dynamics")


def test_runs_100_ms_and_fires_in_the_known_range(example):
    spikes, timings = example.simulate(duration_ms=100.0)
    assert spikes.shape == (1000, 4000) and timings["steps"] == 1000
    rate = example.mean_rate_hz(spikes, 0.1)
    assert 5.0 < rate < 40.0
    assert spikes[:, :3200].any() and spikes[:, 3200:].any()
    # refractory period (5 ms = 50 steps) respected
    assert all(np.diff(np.nonzero(col)[0]).min(initial=1000) >= 50 for col in spikes.T[:200])


def test_the_model_is_built_from_the_modelling_layer(example):
    with brainstate.environ.context(dt=0.1):
        net = example.COBANetwork(n_exc=80, n_inh=20, conn=10, delay=0.5)
        brainstate.nn.init_all_states(net)
    assert isinstance(net.neurons, brainstate.nn.Dynamics)
    assert sorted(net.neurons.current_inputs) == ["exc", "inh"]
    # both projections read one recorded history of the spikes, 5 steps deep
    history = net.neurons.get_after_update("spike-prefetch-delay-None")
    assert isinstance(history, brainstate.nn.StateWithDelay) and history.max_length == 6
    delays = net.states(brainstate.DelayState)
    assert len(delays) == 1 and next(iter(delays.values())).value.shape == (6, 100)
    assert len(net.states(brainstate.HiddenState)) == 5  # V, refractory, spike, 2 conductances


def test_a_longer_delay_changes_the_activity_but_keeps_it_alive(example):
    no_delay, _ = example.simulate(duration_ms=50.0, scale=0.25)
    delayed, _ = example.simulate(duration_ms=50.0, scale=0.25, delay=1.0)
    assert (no_delay != delayed).any()
    assert delayed.any()


def test_main_prints_the_report(example, capsys):
    assert example.main(["--duration", "20"]) == 0
    out = capsys.readouterr().out
    assert "mean firing rate" in out and "steps/s" in out and "delay 0 ms" in out


@pytest.mark.slow
def test_same_mean_rate_as_the_flat_example_over_one_second(example):
    flat = _load("coba")
    ours, _ = example.simulate(duration_ms=1000.0)
    theirs = flat.simulate(duration_ms=1000.0)
    # Same network (connectivity, initial state) and drive; the integration differs
    # (exponential Euler here, forward Euler there), so spikes differ in detail and the mean
    # rates agree within 10 %.
    r_ours, r_flat = example.mean_rate_hz(ours, 0.1), theirs.mean_rate_hz
    assert abs(r_ours - r_flat) <= 0.1 * r_flat, (r_ours, r_flat)
