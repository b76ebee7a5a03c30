"""``help()`` of the state classes: the public API, without the core's machinery."""

from __future__ import annotations

import inspect
import pydoc
import re
import typing

import jax.numpy as jnp
import pytest

import brainstate
from brainstate._impl import IMPLEMENTATION

STATE_CLASSES = [brainstate.State, brainstate.ShortTermState, brainstate.LongTermState,
                 brainstate.ParamState, brainstate.BatchState, brainstate.DelayState,
                 brainstate.HiddenState, brainstate.HiddenGroupState, brainstate.HiddenTreeState]

# Cython's generated members, typing's bookkeeping and the core's slot annotations
INTERNAL = ("__reduce_cython__", "__setstate_cython__", "__pyx_vtable__", "__setstate__",
            "__orig_bases__", "__parameters__", "__orig_class__", "__annotations__",
            "__init_subclass__", "__class_getitem__", "__signature__")
PUBLIC = ("value", "restore_value", "numel", "copy", "replace", "copy_from", "to_state_ref",
          "register_hook", "add_tag", "name", "tag", "stack_level", "source_info")


def _help(obj) -> str:
    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


def _listed(name: str, text: str) -> bool:
    """Whether ``help()`` text has an entry for ``name`` (not a mention in a docstring)."""
    return re.search(rf"^ \|  {re.escape(name)}\b", text, re.MULTILINE) is not None


@pytest.mark.parametrize("cls", STATE_CLASSES, ids=lambda c: c.__name__)
def test_help_shows_the_public_api_only(cls):
    text = _help(cls)
    for name in INTERNAL:
        assert not _listed(name, text), (IMPLEMENTATION, name)
    assert "cython" not in text.lower() and "__pyx" not in text
    assert "<object object at" not in text  # defaults print readably
    # the private fields of the core stay out of every section
    for name in ("_value", "_sig", "_flags", "_trace_ref", "_restore_silent", "_set_view"):
        assert not _listed(name, text), (IMPLEMENTATION, name)
    for name in PUBLIC:
        assert _listed(name, text), (IMPLEMENTATION, name)


def test_help_shows_the_constructor_signature():
    # (the pure core's constructor carries annotations, the compiled one none)
    assert re.search(r"\n \|  State\(value(: 'Any')?, name(: 'Any' = |=)None, \*\*metadata",
                     _help(brainstate.State))
    assert "replace(self, value: 'Any' = <unchanged>" in _help(brainstate.State)


def test_help_of_an_instance_is_that_of_its_class():
    text = _help(brainstate.ParamState(jnp.zeros(2)))
    assert "class ParamState" in text and "__reduce_cython__" not in text


def test_class_dir_drops_internals_but_attribute_access_works():
    names = dir(brainstate.State)
    for name in INTERNAL:
        assert name not in names, name
    for name in PUBLIC:
        assert name in names, name
    # hidden from dir(), still there: subscription, signatures, pickling
    assert typing.get_args(brainstate.State[int]) == (int,)
    assert brainstate.State.__parameters__
    assert list(inspect.signature(brainstate.State).parameters) == ["value", "name", "metadata"]


def test_instance_dir_is_unfiltered_for_completion():
    st = brainstate.State(jnp.zeros(2), unit="mV")
    names = dir(st)
    for name in PUBLIC + ("unit",):
        assert name in names, name


def test_user_subclass_keeps_its_own_dunders():
    class Annotated(brainstate.State):
        limit: int = 3

        def __init_subclass__(cls, **kwargs):
            super().__init_subclass__(**kwargs)

    names = dir(Annotated)
    assert "__annotations__" in names and "__init_subclass__" in names
    assert "limit" in names and "__reduce_cython__" not in names
    assert _listed("__annotations__", _help(Annotated))


def test_hosted_class_help_is_clean():
    class Slotted:
        __slots__ = ("_value",)

    class Var(brainstate.State, Slotted):
        pass

    text = _help(Var)
    for name in INTERNAL:
        assert not _listed(name, text), name
    assert _listed("value", text) and _listed("restore_value", text)


def test_help_of_a_snapshot_shows_no_generated_pickle_helpers():
    # TreefyState pickles through its own __reduce__; the compiled core generates no
    # __reduce_cython__/__setstate_cython__ for it (its C methods still give Cython classes a
    # __pyx_vtable__ capsule, which help() lists under "Data")
    text = _help(brainstate.TreefyState)
    assert not _listed("__reduce_cython__", text) and not _listed("__setstate_cython__", text)
    assert _listed("to_state", text)
