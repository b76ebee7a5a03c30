"""``ProgressBar``: validation, plain-text fallback, tqdm path, rate bounds, loop integration."""

from __future__ import annotations

import importlib.machinery
import io
import itertools
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate.transform import jit
from brainstate.transform._loop import for_loop, scan
from brainstate.transform._progress import ProgressBar, as_runner


def _plain(**kw):
    buf = io.StringIO()
    kw.setdefault("min_interval", 0.0)
    return ProgressBar(use_tqdm=False, file=buf, **kw), buf


def _lines(buf):
    return [line for line in buf.getvalue().splitlines() if line]


class TestValidation:
    @pytest.mark.parametrize("kw", [dict(freq=0), dict(count=-1)])
    def test_non_positive(self, kw):
        with pytest.raises(ValueError, match=">= 1"):
            ProgressBar(**kw)

    @pytest.mark.parametrize("kw", [dict(freq=1.5), dict(count="3"), dict(freq=True)])
    def test_not_int(self, kw):
        with pytest.raises(TypeError, match="int"):
            ProgressBar(**kw)

    def test_freq_and_count(self):
        with pytest.raises(ValueError, match="not both"):
            ProgressBar(freq=2, count=3)

    @pytest.mark.parametrize("desc", [3, ("{i}", "notcallable"), (1, len)])
    def test_bad_desc(self, desc):
        with pytest.raises(TypeError, match="desc"):
            ProgressBar(desc=desc)

    @pytest.mark.parametrize("desc", [("a",), ("{i}", len, len)])
    def test_desc_sequence_not_a_pair(self, desc):
        with pytest.raises(ValueError, match="pair .* got %d elements" % len(desc)):
            ProgressBar(desc=desc)

    def test_clock_must_be_callable(self):
        with pytest.raises(TypeError, match="clock"):
            ProgressBar(clock=3.0)

    def test_upstream_attribute_names(self):
        assert ProgressBar(freq=3).print_freq == 3
        assert ProgressBar(count=4).print_count == 4

    def test_as_runner(self):
        assert as_runner(None, 10, "scan") is None
        assert as_runner(False, 10, "scan") is None
        assert as_runner(True, 1000, "scan").freq == 50
        assert as_runner(4, 10, "scan").freq == 4
        with pytest.raises(TypeError, match="pbar"):
            as_runner(2.0, 10, "scan")
        with pytest.raises(ValueError, match="pbar"):
            as_runner(-1, 10, "scan")

    def test_default_and_count_frequency(self):
        assert ProgressBar().init(1000).freq == 50  # about 20 reports
        assert ProgressBar(count=4).init(10).freq == 3
        assert ProgressBar(count=50).init(10).freq == 1

    def test_use_tqdm_true_without_tqdm(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "tqdm", None)  # makes find_spec/import fail
        monkeypatch.setattr("brainstate.transform._progress._tqdm_available", lambda: False)
        with pytest.raises(ImportError, match="brainstate\\[progress\\]"):
            ProgressBar(use_tqdm=True)
        assert ProgressBar().use_tqdm is False


class TestPlainText:
    def test_reports_every_freq_and_at_the_end(self):
        bar, buf = _plain(freq=4)
        a = brainstate.State(jnp.zeros((), jnp.float32))

        def body(x):
            a.value = a.value + x
            return a.value

        out = for_loop(body, jnp.ones(10), pbar=bar)
        jax.effects_barrier()
        np.testing.assert_allclose(out, np.arange(1.0, 11.0))
        lines = _lines(buf)
        assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["4/10", "8/10", "10/10"]
        assert lines[0].startswith("Running for 10 iterations")

    def test_min_interval_bounds_the_line_rate(self):
        bar, buf = _plain(freq=1, min_interval=3600.0)
        for_loop(lambda x: x, jnp.ones(50), pbar=bar)
        jax.effects_barrier()
        lines = _lines(buf)
        assert len(lines) == 2  # the first report and the final one
        assert "50/50" in lines[-1]

    def test_string_desc(self):
        bar, buf = _plain(count=2, desc="simulating")
        scan(lambda c, x: (c + x, c), 0.0, jnp.ones(6), pbar=bar)
        jax.effects_barrier()
        assert all(line.startswith("simulating: ") for line in _lines(buf))

    def test_desc_function_sees_carry_and_y(self):
        bar, buf = _plain(freq=2, desc=("step {i} sum {s:.1f}",
                                        lambda d: {"i": d["i"], "s": d["carry"] + d["y"]}))
        scan(lambda c, x: (c + x, x * 10), jnp.zeros(()), jnp.ones(4), pbar=bar)
        jax.effects_barrier()
        assert [line.split(":")[0] for line in _lines(buf)] == ["step 2 sum 12.0",
                                                               "step 4 sum 14.0"]

    def test_reruns_of_a_compiled_loop_start_over(self):
        bar, buf = _plain(freq=5)
        s = brainstate.State(jnp.zeros(()))

        def body(x):
            s.value = s.value + x

        run = jit(lambda xs: for_loop(body, xs, pbar=bar))
        run(jnp.ones(10))
        run(jnp.ones(10))
        jax.effects_barrier()
        counts = [line.split(": ")[1].split(" ")[0] for line in _lines(buf)]
        assert counts == ["5/10", "10/10", "5/10", "10/10"]
        assert float(s.value) == 20.0

    def test_int_pbar_prints_to_stderr(self, capsys):
        for_loop(lambda x: x, jnp.ones(6), pbar=3)
        jax.effects_barrier()
        err = capsys.readouterr().err
        assert "6/6" in err

    def test_disable_jit_updates_from_python(self):
        # Same reports and the same description values as the compiled loop.
        bar, buf = _plain(freq=2, desc=("step {i}", lambda d: {"i": d["i"]}))
        with jax.disable_jit():
            for_loop(lambda x: x, jnp.ones(5), pbar=bar)
        compiled_bar, compiled_buf = _plain(freq=2, desc=bar.desc)
        for_loop(lambda x: x, jnp.ones(5), pbar=compiled_bar)
        jax.effects_barrier()
        heads = [line.split(" [")[0] for line in _lines(buf)]
        assert heads == ["step 2: 2/5 (40%)", "step 4: 4/5 (80%)", "step 5: 5/5 (100%)"]
        assert [line.split(" [")[0] for line in _lines(compiled_buf)] == heads

    def test_under_vmap_one_report_per_update_first_lane(self):
        bar, buf = _plain(freq=2, desc=("c={c}", lambda d: {"c": d["carry"]}))
        jax.vmap(lambda s: scan(lambda c, x: (c + x * s, c), 0.0, jnp.ones(4), pbar=bar))(
            jnp.arange(1.0, 4.0))
        jax.effects_barrier()
        assert [line.split(" ")[0] for line in _lines(buf)] == ["c=2.0:", "c=4.0:"]

    def test_no_callback_without_pbar(self):
        jaxpr = jax.make_jaxpr(lambda xs: for_loop(lambda x: x * 2, xs))(jnp.ones(3))
        assert "callback" not in str(jaxpr)
        jaxpr = jax.make_jaxpr(lambda xs: for_loop(lambda x: x * 2, xs, pbar=1))(jnp.ones(3))
        assert "callback" in str(jaxpr)


class _FakeTqdm:
    instances: list = []

    def __init__(self, total=None, **kw):
        self.total, self.kw, self.n, self.closed = total, kw, 0, False
        self.updates: list = []
        self.descs: list = []
        _FakeTqdm.instances.append(self)

    def update(self, k):
        self.n += k
        self.updates.append(k)

    def set_description(self, text, refresh=True):
        self.descs.append(text)

    def close(self):
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch):
    mod = types.ModuleType("tqdm")
    mod.__spec__ = importlib.machinery.ModuleSpec("tqdm", None)
    mod.tqdm = _FakeTqdm
    monkeypatch.setitem(sys.modules, "tqdm", mod)
    _FakeTqdm.instances = []
    return _FakeTqdm


class TestTqdm:
    def test_used_when_installed(self, fake_tqdm):
        bar = ProgressBar(freq=3, desc="run", leave=False)
        assert bar.use_tqdm
        for_loop(lambda x: x, jnp.ones(10), pbar=bar)
        jax.effects_barrier()
        (t,) = fake_tqdm.instances
        assert t.total == 10 and t.kw["desc"] == "run" and t.kw["leave"] is False
        assert t.updates == [3, 3, 3, 1] and t.n == 10 and t.closed

    def test_dynamic_description(self, fake_tqdm):
        bar = ProgressBar(freq=2, desc=("y={y}", lambda d: {"y": d["y"]}))
        for_loop(lambda x: x * 2, jnp.arange(4), pbar=bar)
        jax.effects_barrier()
        (t,) = fake_tqdm.instances
        assert t.descs == ["y=2", "y=6"]

    def test_use_tqdm_false_overrides(self, fake_tqdm):
        bar, buf = _plain(freq=2)
        for_loop(lambda x: x, jnp.ones(4), pbar=bar)
        jax.effects_barrier()
        assert fake_tqdm.instances == [] and "4/4" in buf.getvalue()


def _clock(step):
    """A fake clock: 0, step, 2*step, ... one value per reading."""
    ticks = itertools.count()
    return lambda: next(ticks) * step


class _FakeTime:
    """A fake clock that only the loop body moves: ``tick(x)`` (traced) adds ``x`` seconds.

    Unlike ``_clock`` it does not advance per reading, so a clock started at the loop's
    first iteration and one started at the first report read different times. The loop's
    own start and report callbacks are not ordered against the body's callbacks of the same
    iteration (only against earlier iterations'), so the tests give the first and the last
    iteration no duration.
    """

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def _advance(self, dt):
        self.now += float(dt)

    def tick(self, x):
        jax.debug.callback(self._advance, x)
        return x


class _Terminal(io.StringIO):
    def isatty(self):
        return True


class TestRateEtaElapsed:
    def test_rate_and_eta_from_the_loop_start(self):
        # Readings: loop start 0 s, then one per report (10, 20, 30 s).
        bar, buf = _plain(freq=4, clock=_clock(10.0))
        for_loop(lambda x: x, jnp.ones(10), pbar=bar)
        jax.effects_barrier()
        assert _lines(buf) == [
            "Running for 10 iterations: 4/10 (40%) [00:10<00:15, 2.50s/it]",
            "Running for 10 iterations: 8/10 (80%) [00:20<00:05, 2.50s/it]",
            "Running for 10 iterations: 10/10 (100%) [00:30<00:00, 3.00s/it]",
        ]

    def test_elapsed_includes_the_time_before_the_first_report(self):
        # Only one report (the last). Time passes in the loop body only, so the clock read at
        # the report is 3 s past the loop start: timed from that report, it would show no
        # time elapsed and no rate.
        t = _FakeTime()
        bar, buf = _plain(freq=1000, clock=t)
        durations = jnp.asarray([0.0, 0.75, 0.75, 0.75, 0.75, 0.0])
        scan(lambda c, x: (c + t.tick(x), c), 0.0, durations, pbar=bar)
        jax.effects_barrier()
        assert _lines(buf) == ["Running for 6 iterations: 6/6 (100%) [00:03<00:00, 2.00it/s]"]

    def test_checkpointed_loop_and_disable_jit_start_the_clock_too(self):
        t = _FakeTime()
        bar, buf = _plain(freq=10, clock=t)
        durations = jnp.asarray([0.0, 1.0, 1.0, 0.0])
        brainstate.transform.checkpointed_for_loop(t.tick, durations, pbar=bar, base=2)
        jax.effects_barrier()
        with jax.disable_jit():
            for_loop(t.tick, durations, pbar=bar)
        assert _lines(buf) == ["Running for 4 iterations: 4/4 (100%) [00:02<00:00, 2.00it/s]"] * 2

    def test_every_run_of_a_compiled_loop_restarts_the_clock(self):
        t = _FakeTime()
        bar, buf = _plain(freq=3, clock=t)
        run = jit(lambda xs: for_loop(t.tick, xs, pbar=bar))
        durations = jnp.asarray([0.0, 1.5, 0.0])
        run(durations)
        jax.effects_barrier()
        t.now += 100.0  # the time between the runs is not part of the second one
        run(durations)
        jax.effects_barrier()
        assert [line.split("[")[1] for line in _lines(buf)] == ["00:01<00:00, 2.00it/s]"] * 2

    def test_hours_and_unknown_rate(self):
        from brainstate.transform._progress import _format_rate, _format_seconds

        assert _format_seconds(3725.0) == "1:02:05"
        assert _format_seconds(float("inf")) == "?"
        assert _format_rate(None) == "?it/s"
        bar, buf = _plain(freq=1, clock=lambda: 5.0)  # a frozen clock: no rate, no ETA
        for_loop(lambda x: x, jnp.ones(2), pbar=bar)
        jax.effects_barrier()
        assert _lines(buf)[0].endswith("[00:00<?, ?it/s]")

    def test_terminal_redraws_one_line(self):
        buf = _Terminal()
        bar = ProgressBar(freq=1, use_tqdm=False, file=buf, min_interval=0.0,
                          clock=_clock(1.0))
        for_loop(lambda x: x, jnp.ones(3), pbar=bar)
        jax.effects_barrier()
        out = buf.getvalue()
        assert out.count("\r") == 3 and out.count("\n") == 1 and out.endswith("\n")
        assert out.split("\r")[-1].strip() == \
            "Running for 3 iterations: 3/3 (100%) [00:03<00:00, 1.00it/s]"


class TestPbarTrue:
    def test_true_uses_a_default_bar(self, fake_tqdm):
        out = for_loop(lambda x: x * 2, jnp.arange(40.0), pbar=True)
        jax.effects_barrier()
        np.testing.assert_allclose(out, np.arange(40.0) * 2)
        (t,) = fake_tqdm.instances
        assert t.total == 40 and t.updates == [2] * 20 and t.closed

    def test_true_without_tqdm_prints_to_stderr(self, monkeypatch, capsys):
        monkeypatch.setattr("brainstate.transform._progress._tqdm_available", lambda: False)
        scan(lambda c, x: (c + x, c), 0.0, jnp.ones(5), pbar=True)
        jax.effects_barrier()
        err = capsys.readouterr().err
        assert "Running for 5 iterations: 5/5 (100%) [" in err and "it/s]" in err

    def test_false_means_no_bar(self):
        jaxpr = jax.make_jaxpr(lambda xs: for_loop(lambda x: x * 2, xs, pbar=False))(jnp.ones(3))
        assert "callback" not in str(jaxpr)

    @pytest.mark.parametrize("pbar", ["yes", 1.0])
    def test_other_values_rejected(self, pbar):
        with pytest.raises(TypeError, match="pbar must be True, a ProgressBar or an int"):
            for_loop(lambda x: x, jnp.ones(3), pbar=pbar)

    def test_tqdm_opens_when_the_loop_starts(self, fake_tqdm):
        # The bar exists before the first report (at the last iteration): tqdm's own clock
        # starts with the loop. Iterations run in order, so from the second one on the first
        # iteration's start callback has run.
        opened = []
        bar = ProgressBar(freq=4)

        def body(x):
            jax.debug.callback(lambda: opened.append(len(fake_tqdm.instances)))
            return x

        for_loop(body, jnp.ones(4), pbar=bar)
        jax.effects_barrier()
        assert opened[1:] == [1, 1, 1] and fake_tqdm.instances[0].updates == [4]
