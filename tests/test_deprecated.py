"""brainstate.augment / .compile / .functional: old names forward, with a DeprecationWarning."""

from __future__ import annotations

import importlib

import jax.numpy as jnp
import numpy as np
import pytest

import brainstate
from brainstate import _deprecated

CASES = [("augment", "transform", _deprecated._AUGMENT),
         ("compile", "transform", _deprecated._COMPILE),
         ("functional", "nn", _deprecated._FUNCTIONAL)]


@pytest.mark.parametrize("old, new, names", CASES)
def test_every_old_name_forwards_to_the_same_object_with_a_warning(old, new, names):
    mod, target = getattr(brainstate, old), getattr(brainstate, new)
    for name in names:
        with pytest.warns(DeprecationWarning,
                          match=rf"brainstate\.{old}\.{name} is deprecated; use "
                                rf"brainstate\.{new}\.{name}"):
            obj = getattr(mod, name)
        assert obj is getattr(target, name), name


@pytest.mark.parametrize("old, new, names", CASES)
def test_the_old_module_is_importable_and_lists_its_names(old, new, names):
    mod = importlib.import_module(f"brainstate.{old}")
    assert mod is getattr(brainstate, old)
    assert sorted(mod.__all__) == sorted(names)
    assert set(names) <= set(dir(mod))


def test_from_import_of_an_old_name_works():
    with pytest.warns(DeprecationWarning, match="augment.vector_grad"):
        from brainstate.augment import vector_grad
    w = brainstate.ParamState(jnp.ones(2))
    g = vector_grad(lambda: w.value * 3.0, grad_states=w)()
    np.testing.assert_allclose(g, [3.0, 3.0])


def test_a_name_the_old_module_never_had_is_an_attribute_error_naming_the_new_home():
    with pytest.raises(AttributeError, match=r"'brainstate.compile' has no attribute 'vmap2'.*"
                                             r"brainstate\.transform"):
        brainstate.compile.vmap2  # noqa: B018


def test_private_names_raise_without_a_warning():
    # copy/pickle/inspect probe underscore names: they must not warn
    with pytest.raises(AttributeError):
        brainstate.functional._private  # noqa: B018
    assert not hasattr(brainstate.augment, "__wrapped__")
