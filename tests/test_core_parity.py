"""Parity: the compiled core and its pure twin behave alike, messages included.

Hypothesis draws a first value (random tree, shapes, dtypes, leaf kinds) and a sequence of
operations (writes, restores, reads, unchecked ``check_state_value_tree(False)`` sections,
views, re-binds, poisoning, trace frames); both cores run the same sequence on the same value
objects, and every outcome (result or exact error text) and the state after each step must be
equal. The reference is ``brainstate._core_py``; the other side is the compiled core, so the
test belongs to the ``[c]`` leg only.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


DTYPES = ["float32", "int32", "bool", "bfloat16", "float16"]


# --- value descriptors ----------------------------------------------------------------------
# A descriptor is a hashable recipe; ``build`` turns it into the value. Both cores get the very
# same objects, so identity-based outcomes (``_value is v``) are comparable too.

shapes = st.lists(st.integers(0, 3), max_size=2).map(tuple)


@st.composite
def leaves(draw):
    shape = draw(shapes)
    dtype = draw(st.sampled_from(DTYPES))
    kinds = ["jax", "numpy"] + (["python"] if shape == () and dtype in ("float32", "int32", "bool") else [])
    return ("leaf", shape, dtype, draw(st.sampled_from(kinds)))


trees = st.recursive(
    st.one_of(leaves(), st.just(("none",))),
    lambda sub: st.one_of(
        st.dictionaries(st.sampled_from("abc"), sub, min_size=1, max_size=2).map(
            lambda d: ("dict", tuple(sorted(d.items())))),
        st.lists(sub, max_size=2).map(lambda items: ("list", tuple(items))),
    ),
    max_leaves=4,
)


def build(desc, fill):
    tag = desc[0]
    if tag == "none":
        return None
    if tag == "dict":
        return {k: build(v, fill) for k, v in desc[1]}
    if tag == "list":
        return [build(v, fill) for v in desc[1]]
    _, shape, dtype, kind = desc
    if kind == "python":
        return {"float32": float(fill), "int32": int(fill), "bool": bool(fill % 2)}[dtype]
    if kind == "numpy":
        np_dtype = {"float32": np.float64, "int32": np.int64, "bool": np.bool_,
                    "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}[dtype]
        return np.full(shape, fill, dtype=np_dtype)
    return jnp.full(shape, fill, dtype=getattr(jnp, dtype))


def relabel(desc, kind_of):
    """Same signature, other leaf kinds (jax <-> numpy): a value that must be accepted."""
    tag = desc[0]
    if tag == "none":
        return desc
    if tag == "dict":
        return ("dict", tuple((k, relabel(v, kind_of)) for k, v in desc[1]))
    if tag == "list":
        return ("list", tuple(relabel(v, kind_of) for v in desc[1]))
    _, shape, dtype, kind = desc
    return ("leaf", shape, dtype, kind if kind == "python" else kind_of)


OPS = ["write", "restore", "read", "unchecked_write", "unchecked_restore", "checked_in_unchecked",
       "frame_write", "frame_read", "view_write", "view_restore", "restore_rebind",
       "write_no_before", "poison",
       "numel", "gather"]


@st.composite
def programs(draw):
    first = draw(trees)
    steps = []
    for i in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(OPS))
        choice = draw(st.sampled_from(["same", "relabel", "fresh"]))
        if choice == "same":
            desc = first
        elif choice == "relabel":
            desc = relabel(first, draw(st.sampled_from(["jax", "numpy"])))
        else:
            desc = draw(trees)
        steps.append((op, desc, i + 1))
    return first, steps


# --- running a program on one core ----------------------------------------------------------


def _snapshot(mod, s):
    poisoned = s._value is mod.INVALID
    leaves_ = [] if poisoned else [
        (type(x).__name__, np.asarray(x).tolist() if hasattr(x, "shape") else x)
        for x in jax.tree.leaves(s._value)]
    return (repr(s._signature), s._flags, s._been_writen, poisoned, leaves_, s._level)


def _attempt(fn):
    try:
        out = fn()
    except Exception as exc:  # the outcome *is* the error: type and exact text
        return ("error", type(exc).__name__, str(exc))
    return ("ok", out)


def run(mod, first, steps):
    class S(mod.StateCore):
        pass

    s = S(build(first, 0), name="p")  # same line for both cores: same creation site in messages
    log = [_snapshot(mod, s)]
    for op, desc, fill in steps:
        v = build(desc, fill)

        def step():
            if op == "write":
                s.value = v
            elif op == "restore":
                s.restore_value(v)
            elif op == "read":
                return repr(mod.make_signature(s.value))
            elif op in ("unchecked_write", "unchecked_restore", "checked_in_unchecked"):
                mod.push_tree_check(False)
                try:
                    if op == "unchecked_write":
                        s.value = v
                    elif op == "unchecked_restore":
                        s.restore_value(v)
                    else:
                        mod.push_tree_check(True)
                        try:
                            s.value = v
                        finally:
                            mod.pop_tree_check()
                finally:
                    mod.pop_tree_check()
            elif op in ("frame_write", "frame_read"):
                frame = mod.TraceFrame()
                mod.push_frame(frame)
                try:
                    if op == "frame_write":
                        s.value = v
                    else:
                        s.value
                finally:
                    assert mod.pop_frame(frame)
                return (len(frame.states), list(frame.been_writen))
            elif op == "view_write":  # a per-lane view, then a write of the first signature
                s._set_view(v)
                s.value = build(first, fill + 1)
            elif op == "view_restore":  # under a view restore checks the structure only
                s._set_view(v)
                s.restore_value(build(first, fill + 1))
            elif op == "restore_rebind":
                s._restore_rebind(v)
            elif op == "write_no_before":
                s._write_no_before(v)
            elif op == "poison":
                s._invalidate_trace_value()
            elif op == "numel":
                return s.numel()
            elif op == "gather":
                return len(mod.gather([s]))
            return None

        log.append((op, _attempt(step), _snapshot(mod, s)))
    return log


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=programs())
def test_random_programs_agree(both_cores, program):
    py, c = both_cores
    first, steps = program
    expected = run(py, first, steps)
    got = run(c, first, steps)
    assert got == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=trees, b=trees)
def test_signatures_agree(both_cores, a, b):
    py, c = both_cores
    va, vb = build(a, 1), build(b, 2)
    sp, sc = (py.make_signature(va), py.make_signature(vb)), (c.make_signature(va), c.make_signature(vb))
    assert repr(sp[0]) == repr(sc[0])
    assert (sp[0] == sp[1]) == (sc[0] == sc[1])
    if sp[0] == sp[1]:
        assert hash(sp[0]) == hash(sp[1]) and hash(sc[0]) == hash(sc[1])


def test_mismatch_messages_agree(both_cores):
    # the hand-picked cases every reader will try first, compared verbatim
    py, c = both_cores
    cases = [
        (jnp.zeros(3), jnp.zeros(4)),
        ({"a": jnp.zeros(2)}, jnp.zeros(2)),
        (jnp.zeros(2), {"a": jnp.zeros(2)}),
        (1.0, 1),
        (jax.random.key(0), jax.random.PRNGKey(0)),
        ({"x": [1.0, None]}, {"x": [1.0, 2.0]}),
    ]

    def messages(mod):
        class S(mod.StateCore):
            pass

        out = []
        for first, bad in cases:
            s = S(first, name="m")
            out.append(_attempt(lambda: setattr(s, "value", bad)))
            out.append(_attempt(lambda: s.restore_value(bad)))
        return out

    expected = messages(py)
    assert all(o[0] == "error" and o[1] == "StateSignatureError" for o in expected)
    assert messages(c) == expected
