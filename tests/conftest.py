"""Shared fixtures: the ``core`` fixture runs core-level tests against both cores.

The ``[c]`` leg fails (never skips) when the compiled core cannot be imported; the pure CI leg
passes ``--no-c-extensions`` ... or sets ``BRAINSTATE_NO_EXTENSIONS=1``, which deselects tests
marked ``c_extension``.
"""

from __future__ import annotations

import collections
import importlib
import os
import re

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")

NO_EXTENSIONS = os.environ.get("BRAINSTATE_NO_EXTENSIONS", "") not in ("", "0")


def pytest_addoption(parser):
    parser.addoption(
        "--no-c-extensions",
        action="store_true",
        default=False,
        help="deselect tests that need the compiled core",
    )


# Modules left out of the quick subset (`pytest -m "not slow"`): end-to-end runs, sweeps,
# subprocess tests and the modelling layer's numerics, each several seconds on 2 cores. The full
# suite (`pytest`) runs them.
SLOW_MODULES = frozenset({
    "test_checkpoint_crash", "test_checkpoint_sharded", "test_coba", "test_coba_dynamics",
    "test_core_hostile_inputs", "test_core_parity_machine", "test_docstrings", "test_ecosystem",
    "test_event_native", "test_exp_euler", "test_leaks", "test_nn_activations", "test_nn_dropout",
    "test_nn_elementwise", "test_nn_event", "test_nn_init", "test_nn_linear", "test_nn_rnns",
    "test_param_training", "test_param_transforms", "test_pickle", "test_random_draws",
    "test_random_transforms", "test_regularizers", "test_soak", "test_tree_write", "test_typing",
    "test_units",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    if not (config.getoption("--no-c-extensions") or NO_EXTENSIONS):
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("c_extension") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(
    scope="session",
    params=["py", pytest.param("c", marks=pytest.mark.c_extension)],
)
def core(request):
    """The core module under test: ``brainstate._core_py`` or ``brainstate._core``."""
    if request.param == "py":
        return importlib.import_module("brainstate._core_py")
    # Deliberately no skip: a missing extension in a build that should have one is a failure.
    return importlib.import_module("brainstate._core")


@pytest.fixture(scope="module", params=[pytest.param("c", marks=pytest.mark.c_extension)])
def both_cores(request):
    """``(pure core, compiled core)``, both wired; for the parity tests, which compare them."""
    import brainstate

    py = importlib.import_module("brainstate._core_py")
    c = importlib.import_module("brainstate._core")  # no skip: a missing extension fails
    for mod in (py, c):
        brainstate._wiring.configure_core(mod)
    return py, c


@pytest.fixture(scope="module", params=[pytest.param("c", marks=pytest.mark.c_extension)])
def pure_worker(request):
    """The requesting test module, loaded on the pure core in a subprocess
    (``tests/pure_core_worker.py``); this process must run the compiled core."""
    import brainstate
    from pure_core_worker import PureCoreWorker

    if brainstate._impl.IMPLEMENTATION != "c":  # no skip: a missing extension fails
        pytest.fail(f"the compiled core is not active: {brainstate._impl.EXTENSION_ERROR!r}")
    worker = PureCoreWorker(request.module.__name__)
    yield worker
    worker.close()


_HLO_INSTR = re.compile(r"\s*(?:ROOT\s+)?%[\w.\-]+ = .*? ([a-z][\w\-]*)\(")


@pytest.fixture
def hlo_op_counts():
    """``count(text)``: opcode -> number of instructions in an optimized HLO text.

    Compares two compiled programs op for op while ignoring names, parameter order and
    layout annotations.
    """

    def count(text: str) -> collections.Counter:
        return collections.Counter(m.group(1) for m in map(_HLO_INSTR.match, text.splitlines())
                                   if m)

    return count
