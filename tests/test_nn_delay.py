"""Delays: ``nn.Delay``, ``DelayAccess``, ``StateWithDelay``, interpolation, and the delayed
prefetches of ``nn.Dynamics`` (``prefetch_delay``, ``prefetch(...).delay.at``, ``output_delay``)."""

from __future__ import annotations

import re
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import environ
from brainstate.nn import Delay, InterpolationRegistry, StateWithDelay


@pytest.fixture(autouse=True)
def _dt():
    with environ.context(dt=0.1):
        yield


def _in_a_fresh_thread(fn):
    """``fn()``'s result or exception, run where this thread's environ context is not seen."""
    box = []

    def target():
        try:
            box.append(fn())
        except Exception as err:  # noqa: BLE001 - handed back to the test
            box.append(err)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return box[0]


def _filled(delay: Delay, values) -> list:
    """Update ``delay`` with each value; return the values as numpy arrays."""
    out = []
    for v in values:
        delay.update(jnp.asarray(v, jnp.float32))
        out.append(np.asarray(v, np.float32))
    return out


# --- buffer semantics ------------------------------------------------------------------------


@pytest.mark.parametrize("n_updates", [0, 1, 3, 4, 9, 23])
def test_retrieve_at_step_matches_a_list_of_past_values(n_updates):
    delay = Delay(jnp.zeros(3), time=0.3)  # 3 steps -> 4 rows
    assert delay.max_length == 4
    delay.init_state()
    rng = np.random.default_rng(n_updates)
    past = _filled(delay, rng.normal(size=(n_updates, 3)))
    for step in range(4):
        expected = past[-1 - step] if step < len(past) else np.zeros(3, np.float32)
        np.testing.assert_array_equal(delay.retrieve_at_step(step), expected)


def test_init_fills_the_rows_before_the_first_updates():
    scalar = Delay(jnp.zeros(2), time=0.2, init=-1.0)
    array = Delay(jnp.zeros(2), time=0.2, init=np.array([5.0, 6.0]))
    fn = Delay(jnp.zeros(2), time=0.2, init=lambda shape, dtype: jnp.full(shape, 7.0, dtype))
    for delay, expected in ((scalar, [-1, -1]), (array, [5, 6]), (fn, [7, 7])):
        delay.init_state()
        delay.update(jnp.ones(2))
        np.testing.assert_array_equal(delay.retrieve_at_step(0), [1, 1])
        np.testing.assert_array_equal(delay.retrieve_at_step(2), expected)


def test_time_is_whole_steps_without_floating_point_overshoot():
    assert Delay(jnp.zeros(1), time=1.0).max_length == 11      # 1.0 / 0.1 = 10.000000000000002
    assert Delay(jnp.zeros(1), time=0.25).max_length == 4      # ceil(2.5) = 3 steps
    assert Delay(jnp.zeros(1)).max_length == 1                  # no delay: the latest value only
    # without dt (a fresh thread does not see this test's context): no delay needs none, a
    # delay time names the missing key
    outcome = _in_a_fresh_thread(lambda: Delay(jnp.zeros(1)).max_length)
    assert outcome == 1
    outcome = _in_a_fresh_thread(lambda: Delay(jnp.zeros(1), time=0.2))
    assert isinstance(outcome, KeyError) and "dt" in str(outcome)


def test_entries_accesses_and_the_buffer_grows_to_the_longest():
    delay = Delay(jnp.zeros(2), time=0.1, entries={"two": 0.2, "idx": (0.1, np.array([1]))})
    access = delay.access("five", 0.5)
    assert delay.max_length == 6
    assert delay.register_entry("short", 0.1) == (1,)
    assert delay.max_length == 6  # a shorter delay does not shrink the buffer
    delay.init_state()
    past = _filled(delay, [[i, 10 * i] for i in range(8)])
    np.testing.assert_array_equal(delay.at("two"), past[-3])
    np.testing.assert_array_equal(delay.at("idx"), past[-2][[1]])
    np.testing.assert_array_equal(access(), past[-6])


def test_per_neuron_delays_with_indices():
    steps = np.array([0, 3, 1, 2])
    delay = Delay(jnp.zeros(4), time=steps * 0.1)
    info = delay.register_delay(steps * 0.1, np.arange(4))
    np.testing.assert_array_equal(info[0], steps)
    delay.init_state()
    past = _filled(delay, np.arange(24, dtype=np.float32).reshape(6, 4))
    expected = [past[-1 - s][i] for i, s in enumerate(steps)]
    np.testing.assert_array_equal(delay.retrieve_at_step(*info), expected)


def test_pytree_values_and_batch_axis():
    target = {"a": jnp.zeros(2), "b": jnp.zeros((), jnp.int32)}
    delay = Delay(target, time=0.1)
    delay.init_state(batch_size=3)
    assert delay.history.value["a"].shape == (2, 3, 2)
    assert delay.history.value["b"].shape == (2, 3) and delay.history.value["b"].dtype == jnp.int32
    delay.update({"a": jnp.ones((3, 2)), "b": jnp.full(3, 4, jnp.int32)})
    delay.update({"a": jnp.zeros((3, 2)), "b": jnp.zeros(3, jnp.int32)})
    out = delay.retrieve_at_step(1)
    np.testing.assert_array_equal(out["a"], np.ones((3, 2)))
    np.testing.assert_array_equal(out["b"], [4, 4, 4])


def test_update_every_records_one_row_per_interval():
    delay = Delay(jnp.zeros(1), time=0.6, update_every=0.2)  # rows 0.2 apart, 3 steps
    assert delay.update_every_step == 2 and delay.max_length == 4
    delay.init_state()
    past = _filled(delay, [[float(i)] for i in range(9)])    # recorded: 0, 2, 4, 6, 8
    recorded = past[::2]
    for step in range(4):
        np.testing.assert_array_equal(delay.retrieve_at_step(step), recorded[-1 - step])


def test_reset_state_refills_and_rewinds():
    delay = Delay(jnp.zeros(2), time=0.2, init=3.0)
    delay.init_state()
    _filled(delay, [[1, 1], [2, 2]])
    delay.reset_state()
    assert int(delay.write_ptr.value) == 0
    np.testing.assert_array_equal(delay.history.value, np.full((3, 2), 3.0))


def test_states_are_labelled_and_the_pointer_is_not_batched():
    delay = Delay(jnp.zeros(2), time=0.2)
    delay.init_state()
    assert isinstance(delay.history, brainstate.DelayState)
    assert "INIT_NO_BATCHING" in delay.write_ptr.tag
    assert set(delay.states()) == {("history",), ("write_ptr",)}


# --- compiled ----------------------------------------------------------------------------------


class _Leaky(brainstate.nn.Dynamics):
    def init_state(self):
        self.x = brainstate.HiddenState(jnp.zeros(self.varshape))

    def reset_state(self):
        self.x.value = jnp.zeros(self.varshape)

    def update(self, i):
        self.x.value = self.x.value * 0.5 + i.astype(jnp.float32)
        return self.x.value


def _delayed_run(n=13, delay_steps=7, t=40):
    cell = _Leaky(n)
    read = cell.prefetch_delay("x", delay_steps * 0.1)
    brainstate.nn.init_all_states(cell)

    def step(i):
        cell(i)
        return read()

    run = brainstate.transform.jit(lambda ts: brainstate.transform.for_loop(step, ts))
    return cell, read, run, jnp.arange(t)


def test_delayed_read_in_for_loop_equals_eager():
    cell, read, run, ts = _delayed_run()
    compiled = np.asarray(run(ts))
    brainstate.nn.reset_all_states(cell)
    eager = []
    for i in ts:
        cell(i)
        eager.append(np.asarray(read()))
    np.testing.assert_allclose(compiled, np.stack(eager), rtol=1e-6)
    assert compiled[:7].max() == 0 and compiled[8].min() > 0


def test_delayed_read_in_for_loop_never_copies_the_buffer():
    _, _, run, ts = _delayed_run(n=13, delay_steps=7)
    text = run.lower(ts).compile().as_text()
    buffer = "f32[8,13]"
    ops = re.findall(rf"= {re.escape(buffer)}(?:{{[^}}]*}})? ([a-z][\w-]*)\(", text)
    # in place: one dynamic-update-slice per step; the only copy is the loop's entry copy of the
    # non-donated input; no rotation (concatenate/slice) or scatter of the whole buffer
    assert ops.count("dynamic-update-slice") == 1, ops
    assert ops.count("copy") <= 1, ops
    assert not {"concatenate", "slice", "scatter", "gather", "select", "pad"} & set(ops), ops
    reads = re.findall(r"dynamic-slice\(", text)
    assert reads, "the delayed read is a dynamic slice"


def test_jit_error_check_catches_a_traced_step_beyond_the_buffer():
    delay = Delay(jnp.zeros(2), time=0.2)
    delay.init_state()
    read = brainstate.transform.jit(lambda s: delay.retrieve_at_step(s))
    read(jnp.int32(2))  # fine
    with environ.context(jit_error_check=True):
        read = brainstate.transform.jit(lambda s: delay.retrieve_at_step(s))
        with pytest.raises(Exception, match="outside 0..2"):
            jax.block_until_ready(read(jnp.int32(3)))


# --- reads by time ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["nearest", "round", "linear", "linear_interp", "cubic",
                                    "hermite", "polynomial2", "polynomial3"])
def test_every_method_reproduces_a_linear_signal(method):
    delay = Delay(jnp.zeros(()), time=1.0, interpolation=method)
    delay.init_state()
    for i in range(15):
        delay.update(jnp.float32(3.0 + 2.0 * i))   # value at time i*dt is 3 + 2 i
    now = 14 * 0.1
    with environ.context(t=now):
        for back in (0.2, 0.3, 0.5):
            got = float(delay.retrieve_at_time(now - back))
            exact = 3.0 + 2.0 * (14 - back / 0.1)
            if method in ("nearest", "round"):
                exact = 3.0 + 2.0 * (14 - round(back / 0.1))
            assert got == pytest.approx(exact, abs=1e-4), (method, back)
        got = float(delay.retrieve_at_time(now - 0.25))
        if method not in ("nearest", "round"):
            assert got == pytest.approx(3.0 + 2.0 * 11.5, abs=1e-4)


def test_polynomial3_is_exact_for_a_cubic():
    delay = Delay(jnp.zeros(()), time=1.0, interpolation="polynomial3")
    delay.init_state()
    f = lambda k: 0.01 * k ** 3 - 0.2 * k ** 2 + k  # noqa: E731
    for i in range(12):
        delay.update(jnp.float32(f(i)))
    with environ.context(t=1.1):
        assert float(delay.retrieve_at_time(1.1 - 0.35)) == pytest.approx(f(11 - 3.5), abs=1e-3)


def test_custom_interpolation_callable_and_registry():
    calls = []

    def oldest(history, indices, float_idx, max_length):
        calls.append(max_length)
        return jax.tree.map(lambda h: h.min(0), history)

    InterpolationRegistry.register("oldest_test", oldest)
    try:
        for interp in ("oldest_test", oldest):
            delay = Delay(jnp.zeros(1), time=0.2, interpolation=interp)
            delay.init_state()
            _filled(delay, [[4.0], [5.0], [6.0]])
            with environ.context(t=0.2):
                np.testing.assert_array_equal(delay.retrieve_at_time(0.1), [4.0])
        assert calls == [3, 3]
    finally:
        InterpolationRegistry.unregister("oldest_test")
    assert "oldest_test" not in InterpolationRegistry.list_methods()


def test_registry_refuses_bad_entries():
    with pytest.raises(TypeError, match="non-empty string"):
        InterpolationRegistry.register("", lambda *a: None)
    with pytest.raises(TypeError, match="must be callable"):
        InterpolationRegistry.register("x", 3)
    with pytest.raises(ValueError, match="Unknown interpolation method: 'nope'.*linear"):
        InterpolationRegistry.get("nope")
    with pytest.raises(KeyError, match="No interpolation method named 'nope'"):
        InterpolationRegistry.unregister("nope")


def test_read_by_time_needs_the_current_time():
    delay = Delay(jnp.zeros(1), time=0.2)
    delay.init_state()
    with pytest.raises(KeyError, match="'t'"):
        delay.retrieve_at_time(0.1)


# --- failure paths ---------------------------------------------------------------------------


def test_unknown_interpolation_method():
    with pytest.raises(ValueError, match="Unknown interpolation method: 'spline'.*Available"):
        Delay(jnp.zeros(1), time=0.1, interpolation="spline")
    with pytest.raises(TypeError, match="interpolation must be"):
        Delay(jnp.zeros(1), time=0.1, interpolation=3)


def test_step_beyond_the_buffer_names_the_delay_and_the_fix():
    delay = Delay(jnp.zeros(1), time=0.2)
    delay.init_state()
    with pytest.raises(ValueError, match=r"delay of 3 steps requested.*0\.\.2.*Register"):
        delay.retrieve_at_step(3)
    with pytest.raises(ValueError, match="delay of -1 steps"):
        delay.retrieve_at_step(-1)
    with pytest.raises(TypeError, match="must be an integer.*retrieve_at_time"):
        delay.retrieve_at_step(1.5)


def test_registering_a_longer_delay_after_init_state_is_refused_at_the_next_use():
    delay = Delay(jnp.zeros(1), time=0.2, )
    delay.init_state()
    delay.register_entry("long", 0.5)
    with pytest.raises(ValueError, match="needs 6 buffer rows, but the buffer has 3"):
        delay.at("long")
    with pytest.raises(ValueError, match="init_all_states"):
        delay.update(jnp.zeros(1))
    delay.init_state()  # re-allocating fixes it
    delay.update(jnp.ones(1))
    np.testing.assert_array_equal(delay.at("long"), [0.0])


def test_use_before_init_state_says_what_to_call():
    delay = Delay(jnp.zeros(1), time=0.2)
    for call in (lambda: delay.retrieve_at_step(0), lambda: delay.update(jnp.zeros(1)),
                 delay.reset_state):
        with pytest.raises(ValueError, match=r"no buffer yet: call brainstate.nn.init_all_states"):
            call()


def test_entries_errors():
    delay = Delay(jnp.zeros(1), time=0.2, entries={"a": 0.1})
    with pytest.raises(KeyError, match="entry 'a' is already registered"):
        delay.register_entry("a", 0.2)
    with pytest.raises(TypeError, match="entry must be a string"):
        delay.register_entry(1, 0.2)
    delay.init_state()
    with pytest.raises(KeyError, match=r"no entry 'b'; registered: \['a'\]"):
        delay.at("b")
    with pytest.raises(TypeError, match="indices must be integers"):
        delay.register_delay(0.1, np.array([0.5]))
    with pytest.raises(TypeError, match="needs a delay time"):
        delay.register_delay()
    assert delay.register_delay(None) is None


def test_bad_times():
    with pytest.raises(ValueError, match="finite and >= 0"):
        Delay(jnp.zeros(1), time=-0.1)
    with pytest.raises(ValueError, match="finite and >= 0"):
        Delay(jnp.zeros(1), time=float("nan"))
    with pytest.raises(ValueError, match="scalar or a 1-D array"):
        Delay(jnp.zeros(1), time=np.ones((2, 2)))
    with pytest.raises(ValueError, match="update_every must be a scalar time >= dt"):
        Delay(jnp.zeros(1), time=0.2, update_every=0.01)
    with pytest.raises(TypeError, match="init must be"):
        Delay(jnp.zeros(1), time=0.2, init="zeros")
    with pytest.raises(ValueError, match="Unknown delay_method"):
        Delay(jnp.zeros(1), time=0.2, delay_method="shift")
    with pytest.warns(DeprecationWarning, match="concat"):
        Delay(jnp.zeros(1), time=0.2, delay_method="concat")


def test_update_with_the_wrong_shape_or_structure():
    delay = Delay(jnp.zeros(3), time=0.1)
    delay.init_state()
    with pytest.raises(ValueError, match=r"update got shape \(4,\).*shape \(3,\)"):
        delay.update(jnp.zeros(4))
    with pytest.raises(ValueError, match="update got a value of structure"):
        delay.update({"a": jnp.zeros(3)})


def test_callable_init_with_the_wrong_shape():
    delay = Delay(jnp.zeros(3), time=0.1, init=lambda shape, dtype: jnp.zeros(3, dtype))
    with pytest.raises(ValueError, match=r"returned shape \(3,\), not the buffer shape \(2, 3\)"):
        delay.init_state()


# --- Dynamics: delayed prefetches ------------------------------------------------------------


class _Counter(brainstate.nn.Dynamics):
    def init_state(self):
        self.n = brainstate.HiddenState(jnp.zeros(self.varshape))

    def update(self):
        self.n.value = self.n.value + 1.0
        return self.n.value * 10.0


def test_prefetch_delay_and_prefetch_delay_at_share_one_history():
    pop = _Counter(2)
    two = pop.prefetch_delay("n", 0.2)
    four = pop.prefetch("n").delay.at(0.4)
    now = pop.prefetch_delay("n")  # no time: the current value
    keys = list(pop.after_updates)
    assert keys == ["n-prefetch-delay-None"]
    history = pop.get_after_update("n-prefetch-delay-None")
    assert isinstance(history, StateWithDelay) and history.max_length == 5
    brainstate.nn.init_all_states(pop)
    for _ in range(6):
        pop()
    np.testing.assert_array_equal(two(), [4.0, 4.0])
    np.testing.assert_array_equal(four(), [2.0, 2.0])
    np.testing.assert_array_equal(now(), [6.0, 6.0])


def test_output_delay_records_update_results():
    pop = _Counter(3)
    out = pop.output_delay(0.1)
    latest = pop.output_delay()
    brainstate.nn.init_all_states(pop)
    for _ in range(3):
        pop()
    np.testing.assert_array_equal(out(), np.full(3, 20.0))
    np.testing.assert_array_equal(latest(), np.full(3, 30.0))
    assert list(pop.after_updates) == ["output-delay-None"]


def test_init_maybe_prefetch_on_delays():
    pop = _Counter(1)
    with pytest.raises(KeyError, match="records no history of 'n'.*prefetch_delay"):
        brainstate.nn.init_maybe_prefetch(pop.prefetch("n").delay)
    reader = pop.prefetch("n").delay.at(0.1)
    brainstate.nn.init_maybe_prefetch(pop.prefetch("n").delay)
    brainstate.nn.init_maybe_prefetch(reader)


def test_delayed_prefetch_errors():
    with pytest.raises(TypeError, match="prefetch_delay needs a brainstate.nn.Dynamics"):
        brainstate.nn.PrefetchDelayAt(brainstate.nn.Module(), "x", 0.1)
    with pytest.raises(TypeError, match="output_delay needs a brainstate.nn.Dynamics"):
        brainstate.nn.OutputDelayAt(object(), 0.1)
    pop = brainstate.nn.Dynamics(2, name="pop")
    reader = pop.prefetch_delay("V", 0.1)
    with pytest.raises(TypeError, match=r"records Dynamics\(name='pop'\)\.V, which is nothing, "
                                        r"not a State.*init_all_states"):
        brainstate.nn.init_all_states(pop)
    pop.V = 3.0
    with pytest.raises(TypeError, match="which is a float, not a State"):
        reader.state_delay.init_state()
    with pytest.raises(TypeError, match="item must be an attribute name"):
        StateWithDelay(pop, 3)


def test_delay_inside_a_network_under_jit_matches_a_hand_rolled_history():
    pop = _Counter(2)
    reader = pop.prefetch_delay("n", 0.3)
    brainstate.nn.init_all_states(pop)

    @brainstate.transform.jit
    def run(ts):
        def step(i):
            pop()
            return reader()
        return brainstate.transform.for_loop(step, ts)

    got = np.asarray(run(jnp.arange(6)))
    expected = np.array([[max(0.0, k + 1 - 3)] * 2 for k in range(6)], np.float32)
    np.testing.assert_array_equal(got, expected)


# --- units ------------------------------------------------------------------------------------


def test_units_are_recorded_and_restored():
    u = pytest.importorskip("brainunit")
    with environ.context(dt=0.1 * u.ms):
        delay = Delay(jnp.zeros(2) * u.mV, time=0.3 * u.ms)
        assert delay.max_length == 4
        delay.init_state()
        delay.update(jnp.ones(2) * u.mV)
        delay.update(jnp.full(2, 2.0) * u.mV)
        out = delay.retrieve_at_step(1)
        assert isinstance(out, u.Quantity) and out.unit == u.mV
        np.testing.assert_array_equal(out.mantissa, [1.0, 1.0])
        with pytest.raises(ValueError, match="update got units"):
            delay.update(jnp.ones(2) * u.second)
        with pytest.raises(ValueError, match="unit of time"):
            Delay(jnp.zeros(2), time=0.3 * u.mV)
        with pytest.raises(ValueError, match="unit of time"):
            Delay(jnp.zeros(2), time=0.3)


def test_state_with_delay_of_a_quantity_state():
    u = pytest.importorskip("brainunit")

    class Volt(brainstate.nn.Dynamics):
        def init_state(self):
            self.V = brainstate.HiddenState(jnp.zeros(self.varshape) * u.mV)

        def update(self):
            self.V.value = self.V.value + 1.0 * u.mV

    with environ.context(dt=1.0 * u.ms):
        pop = Volt(2)
        reader = pop.prefetch_delay("V", 2.0 * u.ms)
        brainstate.nn.init_all_states(pop)
        for _ in range(4):
            pop()
        out = reader()
    assert isinstance(out, u.Quantity) and out.unit == u.mV
    np.testing.assert_array_equal(out.mantissa, [2.0, 2.0])
