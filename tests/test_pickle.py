"""Copying and pickling states: ``copy.copy``, ``copy.deepcopy``, ``pickle`` on both cores.

A state pickles in a core-neutral form, so a pickle made under one core loads under the other.
Each core runs in its own ``python -I`` subprocess (``BRAINSTATE_NO_EXTENSIONS`` toggled); the
subprocess gets this process's ``sys.path`` through an environment variable (``-I`` ignores
``PYTHONPATH``), so the tests work from a checkout and against an installed package alike.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate._state import NonBatchState

_HERE = os.path.dirname(os.path.abspath(__file__))


# --- the cases, shared by the in-process tests and the subprocesses --------------------------


def make_states() -> dict:
    """Named states covering values, metadata, subclasses and the poisoned form."""
    a = brainstate.State(jnp.arange(3.0), name="a", tag="t", unit="mV")
    a.value = jnp.arange(3.0) + 1  # _been_writen = True travels
    p = brainstate.ParamState({"w": np.ones((2, 2), np.float32), "b": None, "n": [1, 2.5]})
    p.register_hook("read", lambda ctx: None)  # a lambda: hooks are not pickled
    g = brainstate.HiddenGroupState(jnp.zeros((2, 3)))
    t = brainstate.HiddenTreeState({"x": jnp.zeros(2), "y": jnp.ones(2)})
    k = brainstate.State(jax.random.key(3))
    nb = NonBatchState(1.0)
    poisoned = brainstate.ShortTermState(jnp.zeros(4), name="dead")
    poisoned._invalidate_trace_value()
    return {"a": a, "p": p, "g": g, "t": t, "k": k, "nb": nb, "poisoned": poisoned}


def _leaves(value) -> list:
    if value is brainstate._impl.core.INVALID:
        return ["<poisoned>"]
    out = []
    for x in jax.tree.leaves(value):
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        out.append(np.asarray(x).tolist() if hasattr(x, "shape") else x)
    return out


def describe(st) -> dict:
    """What must survive a copy or a pickle (JSON-able, compared across processes)."""
    return {
        "type": type(st).__qualname__,
        "name": st.name,
        "tag": sorted(st.tag) if st.tag is not None else None,
        "written": st._been_writen,
        "custom": sorted((k, repr(v)) for k, v in vars(st).items()),
        "signature": repr(st._signature),
        "leaves": _leaves(st._value),
        "treedef": str(jax.tree.structure(st._value)) if not _poisoned(st) else None,
    }


def _poisoned(st) -> bool:
    return st._value is brainstate._impl.core.INVALID


def check_live(st, original_desc: dict) -> None:
    """A rebuilt state: same description, own identity and hooks, signature enforced."""
    assert describe(st) == original_desc
    assert isinstance(st, brainstate._impl.core.StateCore)
    assert st._level == brainstate._impl.core.stack_level()
    assert st._trace_is_valid()
    assert not st.has_hooks()
    if _poisoned(st):
        with pytest.raises(brainstate.TraceContextError):
            st.value
        with pytest.raises(brainstate.StateSignatureError):
            st.value = jnp.zeros(5)
        st.value = jnp.ones(4)  # the stored signature survived: a matching write un-poisons
        return
    value = st.value
    with pytest.raises(brainstate.StateSignatureError):
        st.value = {"surely": "not", "the": "same"}
    st.value = value
    assert st._been_writen is True


# --- in-process (active core) -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(make_states()))
@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_round_trip(name, how):
    st = make_states()[name]
    desc = describe(st)
    new = {"copy": copy.copy, "deepcopy": copy.deepcopy,
           "pickle": lambda s: pickle.loads(pickle.dumps(s))}[how](st)
    assert new is not st and type(new) is type(st)
    check_live(new, desc)
    assert describe(st) == desc  # the original is untouched
    if how == "copy" and not _poisoned(st):
        assert new._value is st._value
    if how == "deepcopy" and name == "a":
        assert new.tag is not st.tag and new._value is not st._value


def test_deepcopy_keeps_sharing_inside_a_container():
    st = brainstate.State(jnp.zeros(2))
    a, b = copy.deepcopy([st, st])
    assert a is b and a is not st


def test_copy_does_not_carry_hooks_or_identity():
    st = brainstate.State(jnp.zeros(2))
    fired = []
    st.register_hook("write_after", lambda ctx: fired.append(1))

    @jax.jit
    def f(x):
        c = copy.copy(st)
        assert c._trace_is_valid()  # a copy made in a trace belongs to it
        c.value = x
        return c.value

    f(jnp.ones(2))
    assert fired == []


# --- across processes and cores -------------------------------------------------------------


def _run(mode: str, core: str, path: str) -> dict:
    env = dict(os.environ)
    env["BRAINSTATE_NO_EXTENSIONS"] = "1" if core == "py" else "0"
    env["BRAINSTATE_TEST_SYS_PATH"] = json.dumps([_HERE] + [p for p in sys.path if p])
    code = (
        "import json, os, sys; "
        "sys.path[:0] = json.loads(os.environ['BRAINSTATE_TEST_SYS_PATH']); "
        f"import test_pickle; test_pickle.main({mode!r}, {core!r}, {path!r})"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         env=env, cwd=_HERE)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(mode: str, core: str, path: str) -> None:
    """Subprocess entry: ``dump`` pickles the cases, ``load`` checks them; prints JSON."""
    import brainstate._impl as impl

    assert impl.IMPLEMENTATION == core, (impl.IMPLEMENTATION, impl.EXTENSION_ERROR)
    if mode == "dump":
        states = make_states()
        descs = {k: describe(v) for k, v in states.items()}
        for k, st in states.items():  # copies and round trips under this core
            for fn in (copy.copy, copy.deepcopy, lambda s: pickle.loads(pickle.dumps(s))):
                check_live(fn(st), descs[k])
        with open(path, "wb") as f:
            pickle.dump(states, f)
        print(json.dumps(descs))
    else:
        with open(path, "rb") as f:
            states = pickle.load(f)
        descs = {k: describe(v) for k, v in states.items()}
        for k, st in states.items():
            check_live(st, descs[k])
        print(json.dumps(descs))


@pytest.fixture(params=["py", pytest.param("c", marks=pytest.mark.c_extension)])
def dump_core(request):
    return request.param


@pytest.fixture(params=["py", pytest.param("c", marks=pytest.mark.c_extension)])
def load_core(request):
    return request.param


def test_pickle_loads_under_either_core(dump_core, load_core, tmp_path):
    path = str(tmp_path / "states.pkl")
    dumped = _run("dump", dump_core, path)
    loaded = _run("load", load_core, path)
    assert loaded == dumped
    assert loaded["poisoned"]["leaves"] == ["<poisoned>"]
    assert loaded["a"]["written"] is True
    assert loaded["a"]["custom"] == [["unit", "'mV'"]]  # JSON turned the pairs into lists
