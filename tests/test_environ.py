"""``brainstate.environ``: process-wide settings, thread-local contexts, precision and dtypes.

Every test starts and ends with a reset default environment and jax's 64-bit mode as the rest of
the suite expects it (off), whatever the test changed.
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate.environ as environ


@pytest.fixture(autouse=True)
def _clean_environ():
    x64_before = bool(jax.config.jax_enable_x64)
    environ.reset()
    yield
    environ.reset()
    jax.config.update("jax_enable_x64", x64_before)
    assert bool(jax.config.jax_enable_x64) == x64_before


def _in_thread(fn, *args):
    """Run ``fn(*args)`` in a new thread and return its result (or raise its exception)."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the calling thread)
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]
    return box["value"]


# --- names ---------------------------------------------------------------------------------------


class TestNames:
    def test_key_constants(self):
        assert (environ.I, environ.T, environ.DT) == ("i", "t", "dt")
        assert (environ.PRECISION, environ.PLATFORM) == ("precision", "platform")
        assert environ.HOST_DEVICE_COUNT == "host_device_count"
        assert (environ.JIT_ERROR_CHECK, environ.FIT) == ("jit_error_check", "fit")

    def test_supported_values(self):
        assert environ.DEFAULT_PRECISION == 32
        assert environ.SUPPORTED_PLATFORMS == ("cpu", "gpu", "tpu")
        assert environ.SUPPORTED_PRECISIONS == (8, 16, 32, 64, "bf16")

    def test_all_names_exist(self):
        missing = [name for name in environ.__all__ if not hasattr(environ, name)]
        assert missing == []

    def test_constants_work_as_keys(self):
        environ.set(**{environ.I: 3, environ.T: 0.5, environ.FIT: False})
        assert environ.get(environ.I) == 3
        assert environ.get(environ.T) == 0.5
        assert environ.get(environ.FIT) is False


# --- set / get / all / pop ---------------------------------------------------------------------


class TestSettings:
    def test_set_then_get(self):
        environ.set(alpha=1, beta="two")
        assert environ.get("alpha") == 1
        assert environ.get("beta") == "two"

    def test_set_overwrites(self):
        environ.set(alpha=1)
        environ.set(alpha=2)
        assert environ.get("alpha") == 2

    def test_none_is_a_value_for_custom_keys(self):
        environ.set(maybe=None)
        assert environ.get("maybe") is None
        assert environ.get("maybe", default=5) is None

    def test_default_for_missing_key(self):
        assert environ.get("absent", default=7) == 7
        assert environ.get("absent", 8) == 8
        environ.set(absent=1)
        assert environ.get("absent", default=7) == 1

    def test_missing_key_error_names_key_and_fix(self):
        with pytest.raises(KeyError, match=r"'absent' is not set.*environ\.set\(absent=") as info:
            environ.get("absent")
        assert "context(absent=" in str(info.value)

    def test_missing_key_error_includes_desc(self):
        with pytest.raises(KeyError, match="Description of 'absent': the knob count"):
            environ.get("absent", desc="the knob count")

    def test_missing_key_error_is_not_chained(self):
        with pytest.raises(KeyError) as info:
            environ.get("absent")
        assert info.value.__context__ is None

    def test_all_is_a_snapshot_with_precision(self):
        environ.set(alpha=1)
        snapshot = environ.all()
        assert snapshot["alpha"] == 1
        assert snapshot["precision"] == environ.get_precision()
        snapshot["alpha"] = 99
        assert environ.get("alpha") == 1

    def test_pop_returns_and_removes(self):
        environ.set(alpha=1, beta=2)
        assert environ.pop("alpha") == 1
        assert environ.get("alpha", None) is None
        assert environ.get("beta") == 2
        assert "alpha" not in environ.all()

    def test_pop_default(self):
        assert environ.pop("absent", "fallback") == "fallback"
        assert environ.pop("absent", None) is None

    def test_pop_missing_raises(self):
        with pytest.raises(KeyError, match=r"'absent' has no process-wide value.*default="):
            environ.pop("absent")

    def test_pop_refused_inside_context_setting_the_key(self):
        environ.set(alpha="global")
        with environ.context(alpha="local"):
            with pytest.raises(ValueError, match=r"cannot pop environ key 'alpha'.*'local'"):
                environ.pop("alpha")
        assert environ.pop("alpha") == "global"

    def test_pop_allowed_inside_context_of_other_keys(self):
        environ.set(alpha=1)
        with environ.context(beta=2):
            assert environ.pop("alpha") == 1
            assert environ.get("alpha", None) is None
            assert environ.get("beta") == 2
        assert environ.get("beta", None) is None

    def test_reset_forgets_values_and_behaviours(self):
        environ.set(alpha=1)
        environ.register_default_behavior("alpha", lambda v: None)
        environ.reset()
        assert environ.get("alpha", None) is None
        assert environ.list_registered_behaviors() == []

    def test_reset_keeps_active_context_values(self):
        environ.set(alpha=1, beta=2)
        with environ.context(alpha=10):
            environ.reset()
            assert environ.get("alpha") == 10
            assert environ.get("beta", None) is None
        assert environ.get("alpha", None) is None


# --- contexts ------------------------------------------------------------------------------------


class TestContext:
    def test_overrides_and_restores(self):
        environ.set(alpha=1)
        with environ.context(alpha=2):
            assert environ.get("alpha") == 2
        assert environ.get("alpha") == 1

    def test_new_key_disappears_after_exit(self):
        with environ.context(fresh=1):
            assert environ.get("fresh") == 1
        assert environ.get("fresh", None) is None

    def test_nested(self):
        environ.set(level=0)
        with environ.context(level=1, other="a"):
            with environ.context(level=2):
                assert environ.get("level") == 2
                assert environ.get("other") == "a"
            assert environ.get("level") == 1
        assert environ.get("level") == 0
        assert environ.get("other", None) is None

    def test_restored_on_exception(self):
        environ.set(alpha="outer")
        with pytest.raises(RuntimeError, match="boom"):
            with environ.context(alpha="inner"):
                with environ.context(alpha="innermost"):
                    raise RuntimeError("boom")
        assert environ.get("alpha") == "outer"

    def test_enter_value_is_all(self):
        environ.set(alpha=1)
        with environ.context(beta=2) as values:
            assert values == environ.all()
            assert values["alpha"] == 1 and values["beta"] == 2

    def test_empty_context(self):
        before = environ.all()
        with environ.context() as values:
            assert values == before
        assert environ.all() == before

    def test_decorator(self):
        @environ.context(dt=0.25)
        def step(x):
            return x * environ.get_dt()

        assert step(4.0) == 1.0
        assert environ.get("dt", None) is None
        assert step.__name__ == "step"

    def test_decorator_restores_on_exception(self):
        environ.set(alpha=1)

        @environ.context(alpha=2)
        def fails():
            raise ValueError("inside")

        with pytest.raises(ValueError, match="inside"):
            fails()
        assert environ.get("alpha") == 1

    def test_same_object_reentered_recursively(self):
        ctx = environ.context(depth="x")
        seen = []

        @ctx
        def recurse(n):
            seen.append(environ.get("depth"))
            if n:
                with ctx:
                    recurse(n - 1)

        recurse(3)
        assert seen == ["x"] * 4
        assert environ.get("depth", None) is None

    def test_same_object_reused_sequentially(self):
        ctx = environ.context(alpha=5)
        for _ in range(3):
            with ctx:
                assert environ.get("alpha") == 5
            assert environ.get("alpha", None) is None

    def test_out_of_order_exit_is_refused(self):
        outer, inner = environ.context(alpha=1), environ.context(alpha=2)
        outer.__enter__()
        inner.__enter__()
        with pytest.raises(RuntimeError, match="exited out of order"):
            outer.__exit__(None, None, None)
        inner.__exit__(None, None, None)
        outer.__exit__(None, None, None)
        assert environ.get("alpha", None) is None

    @pytest.mark.parametrize("key", ["platform", "host_device_count"])
    def test_process_wide_keys_refused(self, key):
        with pytest.raises(ValueError, match=f"cannot set '{key}' in a context.*set_{key}"):
            environ.context(**{key: "cpu" if key == "platform" else 2})

    def test_bad_values_refused_before_entering(self):
        with pytest.raises(ValueError, match="precision must be one of"):
            environ.context(precision=128)
        with pytest.raises(ValueError, match=r"dt must be finite and > 0; got dt=0"):
            environ.context(dt=0)
        assert environ.all() == {"precision": environ.get_precision()}

    def test_repr(self):
        assert repr(environ.context(dt=0.1)) == "brainstate.environ.context(dt=0.1)"

    def test_set_inside_context_reaches_its_view(self):
        environ.set(alpha=1, beta=1)
        with environ.context(alpha=10):
            with environ.context(gamma=3):
                environ.set(alpha=2, beta=2, delta=2)
                assert environ.get("alpha") == 10  # the context still wins
                assert environ.get("beta") == 2
                assert environ.get("delta") == 2
            assert (environ.get("alpha"), environ.get("beta")) == (10, 2)
        assert (environ.get("alpha"), environ.get("beta")) == (2, 2)

    def test_context_inside_jit_with_traced_dt(self):
        @jax.jit
        def f(x, dt):
            with environ.context(dt=dt):
                return x * environ.get_dt()

        out = f(jnp.float32(3.0), jnp.float32(0.5))
        np.testing.assert_allclose(np.asarray(out), 1.5, rtol=1e-6)
        assert environ.get("dt", None) is None


# --- dt ------------------------------------------------------------------------------------------


class TestDt:
    def test_set_dt_and_get_dt(self):
        environ.set_dt(0.1)
        assert environ.get_dt() == 0.1
        assert environ.get("dt") == 0.1
        with environ.context(dt=0.01):
            assert environ.get_dt() == 0.01
        assert environ.get_dt() == 0.1

    def test_set_keyword(self):
        environ.set(dt=0.2)
        assert environ.get_dt() == 0.2

    def test_int_and_array_scalars_accepted(self):
        for dt in (1, np.float32(0.5), np.asarray(0.25), jnp.float32(0.125),
                   jnp.asarray(0.5, jnp.bfloat16), np.int8(2)):
            environ.set_dt(dt)
            assert environ.get_dt() is dt

    def test_missing_dt(self):
        with pytest.raises(KeyError, match=r"'dt' is not set"):
            environ.get_dt()

    @pytest.mark.parametrize("bad", [0, 0.0, -0.1, -3])
    def test_non_positive_rejected(self, bad):
        with pytest.raises(ValueError, match=rf"dt must be finite and > 0; got dt={bad!r}"):
            environ.set_dt(bad)
        with pytest.raises(ValueError, match="dt must be finite and > 0"):
            environ.set(dt=bad)
        assert environ.get("dt", None) is None

    @pytest.mark.parametrize("bad", [float("nan"), float("inf")])
    def test_non_finite_rejected(self, bad):
        with pytest.raises(ValueError, match="dt must be finite and > 0"):
            environ.set_dt(bad)

    @pytest.mark.parametrize("bad", [True, "0.1", [0.1], np.ones(2), 1 + 2j, np.bool_(True), None])
    def test_non_scalar_rejected(self, bad):
        with pytest.raises(TypeError, match="dt must be a real scalar"):
            environ.set_dt(bad)

    def test_failed_set_changes_nothing(self):
        environ.set(alpha=1)
        with pytest.raises(ValueError):
            environ.set(alpha=2, dt=-1.0)
        assert environ.get("alpha") == 1

    def test_quantity_dt(self):
        u = pytest.importorskip("brainunit")
        environ.set_dt(0.1 * u.ms)
        assert environ.get_dt() == 0.1 * u.ms
        with environ.context(dt=0.05 * u.ms):
            assert environ.get_dt() == 0.05 * u.ms

    def test_quantity_dt_rejected(self):
        u = pytest.importorskip("brainunit")
        with pytest.raises(ValueError, match="dt must be finite and > 0"):
            environ.set_dt(-0.1 * u.ms)
        with pytest.raises(ValueError, match="dt must be a time"):
            environ.set_dt(0.1 * u.mV)


# --- precision and dtypes ----------------------------------------------------------------------


_DTYPES = {
    64: (np.float64, np.int64, np.uint64, np.complex128, 1e-12),
    32: (np.float32, np.int32, np.uint32, np.complex64, 1e-5),
    16: (np.float16, np.int16, np.uint16, np.complex64, 1e-2),
    "bf16": (jnp.bfloat16, np.int16, np.uint16, np.complex64, 1e-2),
    8: (jnp.float8_e5m2, np.int8, np.uint8, np.complex64, 1e-2),
}


class TestPrecision:
    @pytest.mark.parametrize("precision", [8, 16, 32, 64, "bf16"])
    def test_set_precision_and_dtypes(self, precision):
        environ.set_precision(precision)
        f, i, u, c, tol = _DTYPES[precision]
        assert environ.get("precision") == precision
        assert environ.get_precision() == (16 if precision == "bf16" else precision)
        assert (environ.dftype(), environ.ditype(), environ.dutype(), environ.dctype()) == (
            f, i, u, c)
        t = environ.tolerance()
        assert t.dtype == np.dtype(f) and t.shape == ()
        assert float(t) == pytest.approx(tol, rel=0.05)

    @pytest.mark.parametrize("given, stored", [("64", 64), ("32", 32), ("8", 8), (np.int64(16), 16)])
    def test_string_and_numpy_forms_normalized(self, given, stored):
        environ.set_precision(given)
        assert environ.get("precision") == stored
        assert type(environ.get("precision")) is int

    @pytest.mark.parametrize("bad", [128, 0, -1, 3.14, 64.0, True, "float32", None])
    def test_invalid_precision(self, bad):
        with pytest.raises(ValueError, match=r"precision must be one of \(8, 16, 32, 64, 'bf16'\)"):
            environ.set_precision(bad)
        with pytest.raises(ValueError, match="precision must be one of"):
            environ.context(precision=bad)

    def test_precision_64_switches_x64(self):
        environ.set(precision=64)
        assert jax.config.jax_enable_x64
        assert jnp.zeros(2, dtype=environ.dftype()).dtype == jnp.float64
        environ.set_precision(32)
        assert not jax.config.jax_enable_x64
        assert jnp.zeros(2, dtype=environ.dftype()).dtype == jnp.float32

    def test_unset_precision_follows_x64(self):
        assert environ.get_precision() == 32
        assert environ.get("precision") == 32
        with jax.enable_x64(True):
            assert environ.get_precision() == 64
            assert environ.dftype() == np.float64
            assert environ.ditype() == np.int64
            assert "precision" not in environ.EnvironmentState().settings
        assert environ.dftype() == np.float32

    def test_context_precision_is_restored(self):
        environ.set_precision(32)
        with environ.context(precision=64):
            assert environ.get_precision() == 64
            assert jnp.asarray(1.0).dtype == jnp.float64
        assert environ.get_precision() == 32
        assert jnp.asarray(1.0).dtype == jnp.float32
        assert not jax.config.jax_enable_x64

    def test_context_precision_is_thread_local(self):
        def other():
            return environ.get_precision(), jnp.asarray(1.0).dtype

        with environ.context(precision=64):
            assert jnp.asarray(1.0).dtype == jnp.float64
            assert _in_thread(other) == (32, jnp.float32)

    def test_context_precision_restored_on_exception(self):
        with pytest.raises(KeyError):
            with environ.context(precision=64):
                environ.get("absent")
        assert jnp.asarray(1.0).dtype == jnp.float32
        assert environ.get_precision() == 32

    def test_pop_precision_falls_back_to_x64(self):
        environ.set_precision(16)
        assert environ.pop("precision") == 16
        assert environ.get_precision() == 32

    def test_custom_env_precision_leaves_jax_alone(self):
        mine = environ.EnvironmentState()
        environ.set_precision(64, env=mine)
        assert not jax.config.jax_enable_x64
        assert environ.dftype(env=mine) == np.float64
        assert environ.tolerance(env=mine).dtype == np.float64
        with environ.context(precision=16, env=mine):
            assert environ.dftype(env=mine) == np.float16
            assert jnp.asarray(1.0).dtype == jnp.float32
        assert environ.dftype() == np.float32


# --- platform and devices ----------------------------------------------------------------------


class TestPlatform:
    def test_get_platform(self):
        assert environ.get_platform() == jax.devices()[0].platform
        assert environ.get("platform") == environ.get_platform()

    def test_set_platform_updates_jax(self, monkeypatch):
        calls = []
        monkeypatch.setattr(jax.config, "update", lambda name, value: calls.append((name, value)))
        environ.set_platform("gpu")
        environ.set(platform="tpu")
        assert calls == [("jax_platform_name", "gpu"), ("jax_platform_name", "tpu")]
        assert "platform" not in environ.all()

    def test_set_platform_for_real(self):
        prior = jax.config.read("jax_platform_name")
        try:
            environ.set_platform("cpu")
            assert jax.config.read("jax_platform_name") == "cpu"
        finally:
            jax.config.update("jax_platform_name", prior)

    @pytest.mark.parametrize("bad", ["cuda", "CPU", None, 1])
    def test_bad_platform(self, bad):
        with pytest.raises(ValueError, match=r"platform must be one of \('cpu', 'gpu', 'tpu'\)"):
            environ.set_platform(bad)

    def test_bad_platform_in_set_changes_nothing(self):
        with pytest.raises(ValueError, match="platform must be one of"):
            environ.set(platform="cuda", alpha=1)
        assert environ.get("alpha", None) is None

    def test_host_device_count(self, monkeypatch):
        monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo=1 --xla_force_host_platform_device_count=2")
        assert environ.get_host_device_count() == 2
        environ.set_host_device_count(4)
        import os

        flags = os.environ["XLA_FLAGS"].split()
        assert "--xla_force_host_platform_device_count=4" in flags
        assert "--xla_force_host_platform_device_count=2" not in flags
        assert "--xla_cpu_foo=1" in flags
        assert environ.get_host_device_count() == 4
        assert environ.get("host_device_count") == 4
        environ.set(host_device_count=3)
        assert environ.get_host_device_count() == 3

    def test_host_device_count_default(self, monkeypatch):
        monkeypatch.delenv("XLA_FLAGS", raising=False)
        assert environ.get_host_device_count() == 1

    @pytest.mark.parametrize("bad", [0, -1, True, 2.5, "4"])
    def test_bad_host_device_count(self, bad, monkeypatch):
        monkeypatch.delenv("XLA_FLAGS", raising=False)
        with pytest.raises(ValueError, match="host_device_count must be a positive int"):
            environ.set_host_device_count(bad)
        assert environ.get_host_device_count() == 1


# --- behaviours ----------------------------------------------------------------------------------


class TestBehaviors:
    def test_run_on_set(self):
        seen = []
        environ.register_default_behavior("alpha", seen.append)
        environ.set(alpha=1, beta=2)
        assert seen == [1]

    def test_run_on_context_enter_and_exit(self):
        seen = []
        environ.set(alpha="base")
        environ.register_default_behavior("alpha", seen.append)
        with environ.context(alpha="inner"):
            assert seen == ["inner"]
        assert seen == ["inner", "base"]

    def test_not_run_on_exit_when_nothing_to_restore(self):
        seen = []
        environ.register_default_behavior("alpha", seen.append)
        with environ.context(alpha=1):
            pass
        assert seen == [1]

    def test_run_by_dedicated_setters(self, monkeypatch):
        seen = []
        for key in ("dt", "precision", "platform", "host_device_count"):
            environ.register_default_behavior(key, lambda v, k=key: seen.append((k, v)))
        monkeypatch.setattr(jax.config, "update", lambda name, value: None)
        monkeypatch.delenv("XLA_FLAGS", raising=False)
        environ.set_dt(0.5)
        environ.set_precision("32")
        environ.set_platform("cpu")
        environ.set_host_device_count(2)
        assert seen == [("dt", 0.5), ("precision", 32), ("platform", "cpu"),
                        ("host_device_count", 2)]

    def test_precision_context_restores_derived_value(self):
        seen = []
        environ.register_default_behavior("precision", seen.append)
        with environ.context(precision=16):
            pass
        assert seen == [16, 32]

    def test_not_run_on_pop_or_reset(self):
        seen = []
        environ.register_default_behavior("alpha", seen.append)
        environ.set(alpha=1)
        environ.pop("alpha")
        environ.reset()
        assert seen == [1]

    def test_duplicate_and_replace(self):
        seen = []
        environ.register_default_behavior("alpha", lambda v: seen.append(("first", v)))
        with pytest.raises(ValueError, match="'alpha' already has a behaviour.*replace_if_exist"):
            environ.register_default_behavior("alpha", seen.append)
        environ.register_default_behavior("alpha", lambda v: seen.append(("second", v)),
                                          replace_if_exist=True)
        environ.set(alpha=1)
        assert seen == [("second", 1)]

    def test_registration_type_errors(self):
        with pytest.raises(TypeError, match="behaviour key must be a str; got int 123"):
            environ.register_default_behavior(123, print)
        with pytest.raises(TypeError, match="behaviour for environ key 'alpha' must be callable"):
            environ.register_default_behavior("alpha", "not callable")

    def test_unregister_and_list(self):
        environ.register_default_behavior("alpha", print)
        environ.register_default_behavior("beta", print)
        assert sorted(environ.list_registered_behaviors()) == ["alpha", "beta"]
        assert environ.unregister_default_behavior("alpha") is True
        assert environ.unregister_default_behavior("alpha") is False
        assert environ.list_registered_behaviors() == ["beta"]

    def test_raising_behaviour_propagates_from_set(self):
        def reject(value):
            raise RuntimeError(f"rejected {value}")

        environ.register_default_behavior("alpha", reject)
        with pytest.raises(RuntimeError, match="rejected 3") as info:
            environ.set(alpha=3)
        assert any("behaviour registered for environ key 'alpha'" in n
                   for n in info.value.__notes__)
        assert environ.get("alpha") == 3  # stored before the behaviour ran, as documented

    def test_other_behaviours_still_run_when_one_raises(self):
        seen = []

        def reject(value):
            raise RuntimeError("no")

        environ.register_default_behavior("alpha", reject)
        environ.register_default_behavior("beta", seen.append)
        with pytest.raises(RuntimeError, match="no"):
            environ.set(alpha=1, beta=2)
        assert seen == [2]

    def test_raising_behaviour_on_enter_leaves_context_unentered(self):
        calls = []

        def picky(value):
            calls.append(value)
            if value == "bad":
                raise ValueError("bad value")

        environ.set(alpha="good")
        environ.register_default_behavior("alpha", picky)
        with pytest.raises(ValueError, match="bad value"):
            with environ.context(alpha="bad"):
                pytest.fail("the block must not run")
        assert environ.get("alpha") == "good"
        assert calls == ["bad", "good"]
        with environ.context(alpha="fine"):  # the stack is clean: a new context works
            assert environ.get("alpha") == "fine"


# --- isolated environments ---------------------------------------------------------------------


class TestEnvironmentState:
    def test_isolated_from_default(self):
        mine = environ.EnvironmentState()
        environ.set(alpha=1, env=mine)
        environ.set(alpha=2)
        assert environ.get("alpha", env=mine) == 1
        assert environ.get("alpha") == 2
        with environ.context(alpha=3, env=mine):
            assert environ.get("alpha", env=mine) == 3
            assert environ.get("alpha") == 2
        assert environ.all(env=mine)["alpha"] == 1

    def test_every_function_takes_env(self):
        mine = environ.EnvironmentState({"dt": 0.5, "precision": 16})
        assert environ.get_dt(env=mine) == 0.5
        assert environ.get_precision(env=mine) == 16
        assert environ.ditype(env=mine) == np.int16
        assert environ.dutype(env=mine) == np.uint16
        assert environ.dctype(env=mine) == np.complex64
        environ.set_dt(0.25, env=mine)
        assert environ.get("dt", env=mine) == 0.25
        assert environ.pop("dt", env=mine) == 0.25
        with pytest.raises(KeyError, match="'dt' is not set"):
            environ.get_dt(env=mine)
        environ.register_default_behavior("alpha", print, env=mine)
        assert environ.list_registered_behaviors(env=mine) == ["alpha"]
        assert environ.list_registered_behaviors() == []
        assert environ.unregister_default_behavior("alpha", env=mine)
        environ.reset(env=mine)
        assert environ.all(env=mine) == {"precision": 32}

    def test_initial_settings_validated(self):
        with pytest.raises(ValueError, match="dt must be finite and > 0"):
            environ.EnvironmentState({"dt": -1})

    def test_read_only_views(self):
        mine = environ.EnvironmentState({"alpha": 1})
        environ.register_default_behavior("alpha", print, env=mine)
        assert dict(mine.settings) == {"alpha": 1}
        assert list(mine.functions) == ["alpha"] and len(mine.functions) == 1
        with pytest.raises(TypeError):
            mine.settings["alpha"] = 2  # type: ignore[index]
        environ.set(beta=2, env=mine)
        assert mine.settings["beta"] == 2  # live view
        assert repr(mine) == "EnvironmentState({'alpha': 1, 'beta': 2})"

    def test_bad_env_argument(self):
        with pytest.raises(TypeError, match="env must be a brainstate.environ.EnvironmentState"):
            environ.get("alpha", env={"alpha": 1})
        with pytest.raises(TypeError, match="got dict"):
            environ.context(alpha=1, env={})


# --- threads -------------------------------------------------------------------------------------


class TestThreads:
    def test_context_invisible_in_other_thread(self):
        environ.set(alpha="global")
        entered, checked = threading.Event(), threading.Event()
        box = {}

        def holder():
            with environ.context(alpha="thread-local", only_here=1):
                box["inside"] = environ.get("alpha")
                entered.set()
                checked.wait(timeout=30)
            box["after"] = environ.get("alpha")

        thread = threading.Thread(target=holder)
        thread.start()
        assert entered.wait(timeout=30)
        try:
            assert environ.get("alpha") == "global"
            assert environ.get("only_here", None) is None
        finally:
            checked.set()
            thread.join(timeout=30)
        assert box == {"inside": "thread-local", "after": "global"}

    def test_set_seen_by_all_threads(self):
        environ.set(alpha=1)
        assert _in_thread(environ.get, "alpha") == 1
        entered, updated, done = threading.Event(), threading.Event(), threading.Event()
        box = {}

        def reader():
            with environ.context(beta="mine", alpha="mine"):
                entered.set()
                updated.wait(timeout=30)
                box["inside"] = (environ.get("gamma"), environ.get("alpha"))
            box["after"] = (environ.get("gamma"), environ.get("alpha"))
            done.set()

        thread = threading.Thread(target=reader)
        thread.start()
        assert entered.wait(timeout=30)
        environ.set(gamma="new", alpha="new")
        updated.set()
        thread.join(timeout=30)
        assert done.is_set()
        assert box == {"inside": ("new", "mine"), "after": ("new", "new")}

    def test_pop_seen_inside_other_threads_context(self):
        environ.set(alpha=1)
        entered, popped = threading.Event(), threading.Event()
        box = {}

        def reader():
            with environ.context(beta=2):
                entered.set()
                popped.wait(timeout=30)
                box["alpha"] = environ.get("alpha", None)

        thread = threading.Thread(target=reader)
        thread.start()
        assert entered.wait(timeout=30)
        environ.pop("alpha")
        popped.set()
        thread.join(timeout=30)
        assert box == {"alpha": None}

    def test_concurrent_contexts_and_sets(self):
        n_threads, n_steps = 4, 200
        barrier = threading.Barrier(n_threads)
        errors = []

        def work(tid):
            try:
                barrier.wait(timeout=30)
                for step in range(n_steps):
                    with environ.context(dt=0.1 * (tid + 1), step=step):
                        assert environ.get_dt() == 0.1 * (tid + 1)
                        assert environ.get("step") == step
                        environ.set(**{f"last_{tid}": step})
                    assert environ.get("step", None) is None
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert [environ.get(f"last_{t}") for t in range(n_threads)] == [n_steps - 1] * n_threads
        assert environ.get("dt", None) is None
