"""``import brainstate`` stays light: no brainunit, no matplotlib, lazy names still resolve.

Each check runs in a fresh interpreter, since this one has imported everything already. No
timing is asserted here (see ``bench/bench_import.py``).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

import brainstate.transform


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_does_not_load_brainunit_or_matplotlib():
    loaded = _run(
        "import sys, json, brainstate\n"
        "names = ('brainunit', 'saiunit', 'matplotlib')\n"
        "print(json.dumps({n: n in sys.modules for n in names}))\n"
    )
    assert loaded == {"brainunit": False, "saiunit": False, "matplotlib": False}


def test_building_and_calling_a_layer_does_not_load_brainunit():
    # plain arrays never need brainunit: no quantity exists before it is imported
    loaded = _run(
        "import sys, json, jax.numpy as jnp, brainstate\n"
        "layer = brainstate.nn.Linear(3, 2)\n"
        "y = layer(jnp.ones((4, 3)))\n"
        "print(json.dumps({'brainunit': 'brainunit' in sys.modules, 'shape': list(y.shape)}))\n"
    )
    assert loaded == {"brainunit": False, "shape": [4, 2]}


def test_rare_transforms_load_on_first_access():
    result = _run(
        "import sys, json, brainstate\n"
        "before = 'brainstate.transform._ir_tocode' in sys.modules\n"
        "from brainstate.transform import jaxpr_to_python_code\n"
        "after = 'brainstate.transform._ir_tocode' in sys.modules\n"
        "print(json.dumps([before, after, jaxpr_to_python_code.__name__]))\n"
    )
    assert result == [False, True, "jaxpr_to_python_code"]


def test_every_public_name_resolves():
    import brainstate
    import brainstate.nn

    for module in (brainstate, brainstate.transform, brainstate.nn, brainstate.typing):
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)
        assert set(module.__all__) <= set(dir(module)), module.__name__
    assert brainstate.transform.optimize_jaxpr is not None
    assert brainstate.transform.vmap2 is brainstate.transform._mapping.vmap2
    assert brainstate.nn.Linear.__name__ == "Linear"
    with pytest.raises(AttributeError, match="no attribute 'no_such_transform'"):
        brainstate.transform.no_such_transform  # noqa: B018


def test_lazy_table_names_public_names_of_their_modules():
    lazy = brainstate.transform._LAZY
    assert set(lazy) <= set(brainstate.transform.__all__)
    for name, module in lazy.items():
        mod = importlib.import_module(f"brainstate.transform.{module}")
        assert getattr(brainstate.transform, name) is getattr(mod, name), name


def test_array_like_includes_quantity_when_brainunit_is_installed():
    if importlib.util.find_spec("brainunit") is None:
        pytest.skip("brainunit is not installed")
    result = _run(
        "import sys, json, typing\n"
        "import brainstate.typing as bt\n"
        "before = 'brainunit' in sys.modules\n"
        "args = typing.get_args(bt.ArrayLike)\n"
        "import brainunit\n"
        "print(json.dumps([before, brainunit.Quantity in args, 'ArrayLike' in dir(bt)]))\n"
    )
    assert result == [False, True, True]
