"""``nn.exp_euler_step``: accuracy on linear ODEs, dtypes, units, SDE noise, failure paths."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
import brainstate.environ as environ
import brainstate.random as bsr
from brainstate.nn import exp_euler_step


def lif_drift(v, current, tau):
    return (-v + current) / tau


def exact_lif(v0, current, tau, t):
    return current + (v0 - current) * np.exp(-t / tau)


@pytest.fixture
def no_global_dt():
    """Remove a process-wide dt for the test, restoring it afterwards."""
    saved = environ.pop("dt", None)
    try:
        yield
    finally:
        if saved is not None:
            environ.set(dt=saved)


class TestAccuracy:
    def test_one_step_of_a_linear_ode_is_exact(self):
        v0 = jnp.asarray([0.0, -1.0, 3.0])
        tau = jnp.asarray([5.0, 0.5, 20.0])
        with environ.context(dt=0.1):
            v1 = exp_euler_step(lif_drift, v0, 2.0, tau)
        np.testing.assert_allclose(v1, exact_lif(np.asarray(v0), 2.0, np.asarray(tau), 0.1),
                                   rtol=1e-5, atol=1e-6)

    def test_many_steps_in_a_loop_follow_the_exact_solution(self):
        v = brainstate.State(jnp.zeros(4))
        tau = jnp.asarray([1.0, 2.0, 5.0, 10.0])

        def step(i):
            v.value = exp_euler_step(lif_drift, v.value, 1.5, tau)
            return v.value

        with environ.context(dt=0.05):
            trace = brainstate.transform.for_loop(step, jnp.arange(100))
        t = 0.05 * np.arange(1, 101)[:, None]
        np.testing.assert_allclose(trace, exact_lif(0.0, 1.5, np.asarray(tau), t), rtol=1e-4,
                                   atol=1e-5)

    def test_stiff_decay_stays_stable_where_euler_explodes(self):
        with environ.context(dt=0.1):
            x = jnp.asarray(1.0)
            euler = x
            for _ in range(5):
                x = exp_euler_step(lambda y: -30.0 * y, x)
                euler = euler + 0.1 * (-30.0 * euler)
        assert 0.0 < float(x) < 1e-6 and abs(float(euler)) > 1.0

    def test_constant_drift_is_a_plain_euler_step(self):
        with environ.context(dt=0.1):
            out = exp_euler_step(lambda x: jnp.asarray([2.0]), jnp.asarray([1.0]))
        np.testing.assert_allclose(out, [1.2], rtol=1e-6)

    def test_drift_broadcasting_the_state(self):
        tau = jnp.asarray([1.0, 2.0])
        with environ.context(dt=0.1):
            out = exp_euler_step(lambda v, t: -v / t, jnp.asarray(1.0), tau)
        np.testing.assert_allclose(out, np.exp(-0.1 / np.asarray(tau)), rtol=1e-5)

    def test_keyword_arguments_reach_the_drift(self):
        with environ.context(dt=0.2):
            out = exp_euler_step(lambda x, rate=1.0: -rate * x, jnp.ones(2), rate=3.0)
        np.testing.assert_allclose(out, np.exp(-0.6) * np.ones(2), rtol=1e-5)

    def test_jit_and_grad_through_a_step(self):
        @brainstate.transform.jit
        def one(v0, current):
            return exp_euler_step(lif_drift, v0, current, 4.0)

        with environ.context(dt=0.5):
            np.testing.assert_allclose(one(jnp.zeros(2), 1.0), exact_lif(0.0, 1.0, 4.0, 0.5),
                                       rtol=1e-5)
            slope = jax.grad(lambda c: one(jnp.zeros(()), c))(1.0)
        np.testing.assert_allclose(slope, 1 - np.exp(-0.5 / 4.0), rtol=1e-5)


class TestDtypes:
    @pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
    def test_state_dtype_is_kept(self, dtype):
        with environ.context(dt=0.01):
            out = exp_euler_step(lambda x: -x, jnp.ones(3, dtype=dtype))
            mixed = exp_euler_step(lambda x: -jnp.ones(3, jnp.float32) * x.astype(jnp.float32),
                                   jnp.ones(3, dtype=dtype))
        assert out.dtype == dtype and mixed.dtype == dtype
        np.testing.assert_allclose(np.asarray(out, np.float32), np.exp(-0.01), rtol=1e-2)

    def test_python_float_state(self):
        with environ.context(dt=0.1):
            out = exp_euler_step(lambda x: -x, 1.0)
        np.testing.assert_allclose(out, np.exp(-0.1), rtol=1e-5)

    @pytest.mark.parametrize("x", [jnp.asarray(1, jnp.int32), jnp.asarray([True]),
                                   jnp.asarray(1 + 1j)])
    def test_non_floating_state_raises(self, x):
        with environ.context(dt=0.1):
            with pytest.raises(ValueError, match=r"needs a floating state .* but the state has "
                                                 r"dtype (int32|bool|complex64)"):
                exp_euler_step(lambda y: -y, x)


class TestFailures:
    def test_dt_missing(self, no_global_dt):
        with pytest.raises(KeyError, match="'dt' is not set") as info:
            exp_euler_step(lambda x: -x, jnp.ones(2))
        assert any("exp_euler_step integrates over one step" in n for n in info.value.__notes__)

    def test_bad_callables_and_missing_state(self):
        with environ.context(dt=0.1):
            with pytest.raises(TypeError, match="needs a callable drift as first argument, got "
                                                "str"):
                exp_euler_step("f", jnp.ones(1))
            with pytest.raises(TypeError, match="needs the state value after the drift:"):
                exp_euler_step(lambda x: -x)
            with pytest.raises(TypeError, match="after the drift and diffusion functions"):
                exp_euler_step(lambda x: -x, lambda x: 0.1)


class TestUnits:
    @pytest.fixture(autouse=True)
    def _u(self):
        self.u = pytest.importorskip("brainunit")

    def test_membrane_in_mv_with_dt_in_ms(self):
        u = self.u
        v0 = jnp.asarray([-70.0, -60.0]) * u.mV
        tau = 10.0 * u.ms
        with environ.context(dt=0.1 * u.ms):
            v1 = exp_euler_step(lambda v: (-v + (-65.0 * u.mV)) / tau, v0)
        assert u.get_unit(v1) == u.mV
        expected = exact_lif(np.asarray([-70.0, -60.0]), -65.0, 10.0, 0.1)
        np.testing.assert_allclose(v1.to_decimal(u.mV), expected, rtol=1e-5)

    def test_scales_between_compatible_units(self):
        u = self.u
        with environ.context(dt=0.1 * u.ms):
            v1 = exp_euler_step(lambda v: -v / (0.01 * u.second), jnp.ones(2) * u.mV)
            x1 = exp_euler_step(lambda x: -2.0 * x / u.second, jnp.asarray(1.0))
        np.testing.assert_allclose(v1.to_decimal(u.mV), np.exp(-0.01) * np.ones(2), rtol=1e-5)
        assert not isinstance(x1, u.Quantity)
        np.testing.assert_allclose(x1, np.exp(-0.0002), rtol=1e-6)

    def test_unit_mismatch_raises(self):
        u = self.u
        with environ.context(dt=0.1 * u.ms):
            with pytest.raises(ValueError, match="times dt has unit .* but the state has unit mV"):
                exp_euler_step(lambda v: -v, jnp.ones(2) * u.mV)
            with pytest.raises(ValueError, match="Make the drift return the state's unit per"):
                exp_euler_step(lambda x: -x, jnp.ones(2))  # dimensionless drift * ms
        with environ.context(dt=0.1):
            with pytest.raises(ValueError, match="but the state has unit mV"):
                exp_euler_step(lambda v: -v / (1.0 * u.ms), jnp.ones(2) * u.mV)

    def test_sde_units(self):
        u = self.u
        bsr.seed(0)
        with environ.context(dt=1.0 * u.ms):
            x = exp_euler_step(lambda v: -v / (10.0 * u.ms), lambda v: 0.1 * u.mV / u.ms ** 0.5,
                               jnp.ones(3) * u.mV)
            assert u.get_unit(x) == u.mV
            with pytest.raises(ValueError, match="Unit mismatch between drift and diffusion"):
                exp_euler_step(lambda v: -v / (10.0 * u.ms), lambda v: 0.1 * u.mV,
                               jnp.ones(3) * u.mV)


class TestSDE:
    def test_noise_statistics(self):
        n, dt, sigma = 20000, 0.01, 0.5
        bsr.seed(1)
        with environ.context(dt=dt):
            x1 = exp_euler_step(lambda x: -x, lambda x: sigma, jnp.ones(n))
        mean_drift = np.exp(-dt)
        std = sigma * np.sqrt(dt)
        # Five standard errors: a false alarm has probability ~1e-6.
        assert abs(float(jnp.mean(x1)) - mean_drift) < 5 * std / np.sqrt(n)
        assert abs(float(jnp.std(x1)) - std) < 5 * std / np.sqrt(2 * n)

    def test_seed_reproducibility_and_kwargs(self):
        def g(x, level=0.1):
            return level * jnp.ones_like(x)

        with environ.context(dt=0.01):
            bsr.seed(42)
            a = exp_euler_step(lambda x, level=0.1: -x, g, jnp.ones(4), level=0.3)
            bsr.seed(42)
            b = exp_euler_step(lambda x, level=0.1: -x, g, jnp.ones(4), level=0.3)
            c = exp_euler_step(lambda x, level=0.1: -x, g, jnp.ones(4), level=0.0)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(c, np.exp(-0.01) * np.ones(4), rtol=1e-6)
        assert not np.allclose(a, c)

    def test_ornstein_uhlenbeck_in_a_loop(self):
        n, dt, steps = 5000, 0.01, 100
        x = brainstate.State(jnp.zeros(n))

        def step(i):
            x.value = exp_euler_step(lambda v: -v, lambda v: 1.0, x.value)

        bsr.seed(3)
        with environ.context(dt=dt):
            brainstate.transform.for_loop(step, jnp.arange(steps))
        # x_{k+1} = e^{-dt} x_k + sqrt(dt) xi: the variance after `steps` steps, exactly.
        var = dt * (1 - np.exp(-2 * dt * steps)) / (1 - np.exp(-2 * dt))
        assert abs(float(jnp.var(x.value)) - var) < 5 * var * np.sqrt(2 / n)
        assert abs(float(jnp.mean(x.value))) < 5 * np.sqrt(var / n)
