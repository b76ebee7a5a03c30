"""Wrong inputs to the compiled core raise Python exceptions; they never crash the interpreter.

A typed argument of a Cython ``def`` accepts ``None`` unless declared ``not None``; the core then
dereferences it. Every function of ``brainstate._core`` and every method of its classes (on a
bare instance) is called with 0-3 ``None`` arguments in a child interpreter: a segfault shows
as a signal exit code there instead of killing the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SWEEP = textwrap.dedent(r"""
    import inspect
    import brainstate
    import brainstate._core as c

    done = []
    for name in sorted(n for n in dir(c) if not n.startswith("__")):
        obj = getattr(c, name)
        targets = []
        if inspect.isclass(obj):
            try:
                bare = obj.__new__(obj)
            except BaseException:
                bare = obj
            targets = [(f"{name}.{m}", getattr(bare, m, None)) for m in dir(obj)
                       if not m.startswith("__")]
        elif callable(obj):
            targets = [(name, obj)]
        for label, fn in targets:
            if not callable(fn):
                continue
            for k in range(4):
                print(label, k, flush=True)  # the last line names the call that crashed
                try:
                    fn(*([None] * k))
                except BaseException:
                    pass
            done.append(label)
    print("SURVIVED", len(done))
""")


@pytest.mark.c_extension
def test_none_arguments_never_crash_the_compiled_core():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("BRAINSTATE_NO_EXTENSIONS", None)
    proc = subprocess.run([sys.executable, "-c", SWEEP], env=env, capture_output=True,
                          text=True, timeout=300)
    last = proc.stdout.strip().splitlines()[-1:] or ["<no output>"]
    assert proc.returncode == 0, f"crashed ({proc.returncode}) at {last[0]}\n{proc.stderr[-2000:]}"
    assert last[0].startswith("SURVIVED"), last
    assert int(last[0].split()[1]) > 40  # the sweep reached the module's functions and methods


@pytest.mark.parametrize("call", [
    lambda c: c.push_frame(None),
    lambda c: c.pop_frame(None),
    lambda c: c.TraceFrame().read_its_value(None),
    lambda c: c.TraceFrame().write_its_value(None),
    lambda c: c.treefy_attrs(None),
    lambda c: c.treefy_flatten(None),
], ids=["push_frame", "pop_frame", "read_its_value", "write_its_value", "treefy_attrs",
        "treefy_flatten"])
def test_none_where_a_core_object_is_expected_is_a_type_error(core, call):
    # both cores, the same error: the pure twin checks what the compiled signature declares
    with pytest.raises(TypeError, match="has incorrect type"):
        call(core)
