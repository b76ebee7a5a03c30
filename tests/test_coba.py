"""The main job (examples/coba.py): event-driven COBA fires in the known range, matches its dense
oracle spike for spike, records spikes as bounded events, and refuses bad inputs."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "coba.py"


@pytest.fixture(scope="module")
def coba():
    if not EXAMPLE.exists():  # running from an installed wheel without the examples
        pytest.skip("examples/coba.py is not next to the tests")
    spec = importlib.util.spec_from_file_location("coba_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_short_run_fires_in_the_known_range(coba):
    result = coba.simulate(duration_ms=200.0)
    assert result.neurons == 4000 and result.n_steps == 2000
    # Brette et al. (2007) COBA: asynchronous irregular activity at a few to a few tens of Hz
    # (this parameterisation settles near 15-20 Hz); silence or saturation means a bug.
    assert 5.0 < result.mean_rate_hz < 40.0
    spikes = result.dense()
    assert spikes[:, :3200].any() and spikes[:, 3200:].any()
    # no neuron fires during its 5 ms (50 steps) refractory period
    assert all(np.diff(np.nonzero(col)[0]).min(initial=1000) >= 50 for col in spikes.T[:200])
    assert result.run_s > 0 and result.compile_s > 0


def test_event_driven_and_dense_projections_give_the_same_spike_trains(coba):
    # the dense projection reads every synapse; the event-driven one adds the counts of the
    # spiking inputs' synapses and multiplies by the weight, as the dense one does: exact
    events = coba.simulate(duration_ms=100.0, neurons=1000, seed=3)
    dense = coba.simulate(duration_ms=100.0, neurons=1000, seed=3, dense=True)
    assert len(events.steps) > 100
    np.testing.assert_array_equal(events.steps, dense.steps)
    np.testing.assert_array_equal(events.indices, dense.indices)


def test_serial_and_parallel_kernels_give_the_same_spike_trains(coba):
    # the compiler options change how XLA schedules the kernels, not what they compute
    serial = coba.simulate(duration_ms=50.0, neurons=2000, seed=1, parallel_kernels=False)
    parallel = coba.simulate(duration_ms=50.0, neurons=2000, seed=1, parallel_kernels=True)
    assert len(serial.steps) > 50
    np.testing.assert_array_equal(serial.steps, parallel.steps)
    np.testing.assert_array_equal(serial.indices, parallel.indices)


def test_main_takes_the_kernel_choice(coba, capsys):
    assert coba.main(["--duration", "5", "--neurons", "500", "--plot", "",
                      "--kernels", "parallel"]) == 0
    assert "steps/s" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        coba.main(["--kernels", "threads"])
    assert "invalid choice: 'threads'" in capsys.readouterr().err


def test_network_states_are_hidden_states_and_the_projections_event_driven(coba):
    import brainstate

    net = coba.COBA(n_exc=80, n_inh=20, conn=10)
    hidden = net.states(brainstate.HiddenState)
    assert len(hidden) == 5
    assert isinstance(net.exc, brainstate.nn.EventFixedProb)
    assert isinstance(coba.COBA(n_exc=80, n_inh=20, conn=10, dense=True).exc,
                      brainstate.nn.FixedNumConn)


@pytest.mark.parametrize("kwargs, match", [
    ({"duration_ms": -1.0}, "duration must be a positive number"),
    ({"duration_ms": 0.0}, "duration must be a positive number"),
    ({"dt": 0.0}, "dt must be a positive number"),
    ({"dt": float("nan")}, "dt must be a positive number"),
    ({"duration_ms": 1.0, "dt": 2.0}, "longer than the duration"),
    ({"neurons": 3}, "neurons must be an integer >= 5"),
    ({"conn": 0}, "connections per neuron must be >= 1"),
])
def test_bad_inputs_are_refused(coba, kwargs, match):
    with pytest.raises(ValueError, match=match):
        coba.simulate(**kwargs)


def test_main_prints_the_report_and_draws_the_figure(coba, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "coba.png"
    assert coba.main(["--duration", "20", "--neurons", "500", "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mean firing rate" in out and "steps/s" in out and "event-driven" in out
    assert path.stat().st_size > 10_000


def test_main_refuses_a_negative_duration(coba, capsys):
    with pytest.raises(SystemExit):
        coba.main(["--duration", "-5"])
    assert "duration must be a positive number" in capsys.readouterr().err
