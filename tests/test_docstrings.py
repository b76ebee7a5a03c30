"""Every example in the package's docstrings runs and prints what it shows (doctest).

Each module is checked on its own, so a failure names it. Objects re-exported under a public
module (``__module__ = "brainstate.nn"``) are found through that module.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import brainstate

MODULES = ["brainstate"] + sorted(  # walk_packages lists the submodules, not the package
    info.name for info in pkgutil.walk_packages(brainstate.__path__, "brainstate.")
    if info.name.rsplit(".", 1)[-1] != "_core"  # the compiled module: its stub documents it
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    for attr in getattr(module, "__all__", ()):  # load lazy names (PEP 562) so the finder sees them
        getattr(module, attr)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_examples_are_found():
    # a guard against a finder that silently sees nothing
    module = importlib.import_module("brainstate.nn")
    examples = sum(len(t.examples) for t in doctest.DocTestFinder().find(module, "brainstate.nn"))
    assert examples > 50
