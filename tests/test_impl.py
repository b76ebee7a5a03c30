"""The core switch: which core runs, the env var, the ABI check, and the JAX internals we pin."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

import brainstate
from brainstate import _impl, _jax_internals, _wiring


def _run(code: str, **env: str) -> str:
    full_env = dict(os.environ)
    full_env.pop("BRAINSTATE_NO_EXTENSIONS", None)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    full_env.update(env)
    # Not `-I`: it would drop PYTHONPATH, which points at the checkout when not installed.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=full_env, cwd=os.path.dirname(__file__))
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.c_extension
def test_plain_import_uses_the_compiled_core():
    assert _run("import brainstate._impl as i; print(i.IMPLEMENTATION, i.EXTENSION_ERROR)") \
        == "c None"


def test_env_var_forces_the_pure_core():
    assert _run("import brainstate._impl as i; print(i.IMPLEMENTATION)",
                BRAINSTATE_NO_EXTENSIONS="1") == "py"


def test_implementation_matches_the_loaded_core():
    expected = "py" if _impl.NO_EXTENSIONS or _impl.EXTENSION_ERROR else "c"
    assert _impl.IMPLEMENTATION == expected
    assert _impl.core.CORE_ABI == _impl.EXPECTED_ABI


@pytest.mark.c_extension
def test_stale_core_abi_is_refused(monkeypatch):
    code = (
        "import sys, brainstate._core as c; c.CORE_ABI = -1; "
        "import importlib, brainstate._impl as i; importlib.reload(i); "
        "print(i.IMPLEMENTATION, 'stale' in str(i.EXTENSION_ERROR))"
    )
    assert _run(code) == "py True"


def test_public_state_subclasses_the_active_core():
    assert issubclass(brainstate.State, _impl.core.StateCore)


def test_jax_internals_we_depend_on_exist():
    # brainstate reads JAX's current trace through jax._src.core.trace_ctx.trace._weakref
    # (cheap identity of the current trace). This fails loudly when JAX changes it.
    from brainstate._jax_internals import batching, jax_core, source_info_util

    trace = jax_core.trace_ctx.trace
    assert trace._weakref() is trace
    assert callable(source_info_util.current)  # (trace.new_arg: exercised by every jit test)
    assert hasattr(jax_core.trace_ctx, "axis_env") and callable(jax_core.trace_ctx.set_axis_env)
    for name in ("BatchTracer", "BatchTrace", "make_iota", "to_elt"):
        assert hasattr(batching, name), name
    dtypes, xla_client = _jax_internals.host_transfer_modules()
    assert callable(dtypes.canonicalize_dtype) and callable(xla_client.batched_device_put)


def test_only_one_module_imports_jax_internals():
    # a JAX upgrade audits brainstate/_jax_internals.py alone
    import pathlib
    import re

    root = pathlib.Path(_impl.__file__).parent
    users = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py")
                   if re.search(r"^\s*(from|import) jax\._src", p.read_text(), re.M))
    assert users == ["_jax_internals.py"], users


def test_arrays_have_the_type_the_core_checks_fast():
    # the core is handed JAX's array class without making an array at import (that would start
    # the backend and compile a kernel); a JAX that moves the class must fail here
    assert type(jnp.zeros(())) is _wiring.array_type()
    assert type(jax.device_put(1.0)) is _wiring.array_type()


def test_typed_key_arrays_have_the_type_the_core_checks_fast():
    # the compiled core's aval cache covers typed PRNG keys by their concrete type (a
    # RandomState's value, written at every draw); a JAX that moves it must fail here
    key = jax.random.key(0)
    assert type(key) is _wiring.key_array_type()
    assert key.aval.shape == key.shape and key.aval.dtype == key.dtype


def test_disable_jit_state_tracks_the_public_switch():
    # the compiled-call fast path reads jax._src.config.disable_jit.value (4x cheaper than
    # jax.config.jax_disable_jit); it must follow jax.disable_jit() both ways
    from brainstate.transform._make_jaxpr import _DISABLE_JIT

    assert _DISABLE_JIT.value is False
    with jax.disable_jit():
        assert _DISABLE_JIT.value is True
    assert _DISABLE_JIT.value is False


def test_aval_getter_matches_the_public_properties():
    # the core reads ArrayImpl's aval through its getter; shape/dtype must be the aval's
    x = jnp.ones((3, 2), jnp.bfloat16)
    getter = type(x).__dict__["aval"].fget
    assert getter(x) is x.aval
    assert (getter(x).shape, getter(x).dtype) == (x.shape, x.dtype)


def test_gc_paused_is_reentrant_and_restores_the_collector():
    import gc

    from brainstate._gc import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause found it disabled and left it alone
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        with gc_paused():
            1 / 0
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a collector disabled by the user stays disabled
    finally:
        gc.enable()


def test_a_jit_miss_leaves_the_collector_enabled():
    import gc

    st = brainstate.State(jnp.zeros(2))

    @brainstate.transform.jit
    def f(x):
        st.value = st.value + x
        return x

    f(jnp.ones(2))
    assert gc.isenabled()
    with pytest.raises(TypeError):
        f("not an array")  # a failed trace
    assert gc.isenabled()


@pytest.mark.c_extension
def test_compiled_core_refuses_a_global_registry_that_is_not_a_hook_manager():
    # the compiled write path reads the registry's mask slot unchecked: the type is checked
    # once, when the registry is installed
    from brainstate import _core

    with pytest.raises(TypeError, match="global hook registry must be a HookManager"):
        _core.set_global_hook_registry(object())
    seen = []
    handle = brainstate.register_state_hook("write_after", seen.append)
    try:
        st = brainstate.State(jnp.zeros(2))
        st.value = jnp.ones(2)
        assert len(seen) == 1  # the installed registry is still the real one
    finally:
        handle.remove()


@pytest.mark.c_extension
def test_public_state_classes_use_the_core_value_property():
    # `state.value = v` goes straight to the checked write only for classes whose `value` is
    # the core's property (csrc/_core.pyx): an override in a public class would silently
    # take every write of that class back through the generic attribute path
    from brainstate import _core

    own = _core.StateCore.__dict__["value"]
    classes = [brainstate.State, brainstate.ParamState, brainstate.ShortTermState,
               brainstate.LongTermState, brainstate.HiddenState, brainstate.BatchState]
    assert all(cls.value is own for cls in classes)
