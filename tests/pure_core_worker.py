"""A subprocess running the pure core, for parity tests that need the whole stack on each core.

``brainstate.State`` subclasses the core chosen at import (``brainstate._impl.core``), and so do
``TreefyState``, the trace stacks and everything ``jit`` builds on them: a second, pure stack
cannot live next to the compiled one in one process. A parity test that compares what the
whole stack does therefore runs its reference side here: a subprocess started with
``BRAINSTATE_NO_EXTENSIONS=1`` imports the test module under the name it has in the test
process (so class names and the creation sites quoted in messages match) and calls that
module's functions on request. ``PureCoreWorker(__name__).call("run", program)`` returns what
``run(program)`` returns on the pure core; arguments and results travel as pickles.

``tests/test_core_parity_machine.py`` keeps a World in the worker between calls (its ``reset``
and ``op`` functions).
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from typing import Any

import pytest


class PureCoreWorker:
    """The subprocess; ``call(fn, *args)`` runs ``module.fn(*args)`` there."""

    def __init__(self, module_name: str) -> None:
        module = sys.modules[module_name]
        root = os.path.dirname(os.path.abspath(module.__file__))
        for _ in range(module_name.count(".")):
            root = os.path.dirname(root)
        env = dict(os.environ, BRAINSTATE_NO_EXTENSIONS="1")
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), module_name, root],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        implementation = self.call("_implementation")
        if implementation != "py":
            pytest.fail(f"the worker runs the {implementation!r} core, not the pure one")

    def call(self, fn: str, *args: Any) -> Any:
        try:
            pickle.dump((fn, args), self.proc.stdin)
            self.proc.stdin.flush()
            status, reply = pickle.load(self.proc.stdout)
        except (EOFError, BrokenPipeError, pickle.UnpicklingError):
            pytest.fail(f"the pure-core subprocess died:\n{self.stderr_tail()}")
        if status == "crash":
            pytest.fail(f"the pure-core subprocess failed in {fn}:\n{reply}")
        return reply

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-4000:].decode(errors="replace")

    def close(self) -> None:
        self.proc.stdin.close()  # EOF: the subprocess returns
        self.proc.stdout.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung worker
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def _serve(module_name: str) -> None:
    """Answer ``(fn, args)`` requests on stdin with ``(status, reply)`` on stdout until EOF."""
    import jax

    jax.config.update("jax_numpy_dtype_promotion", "strict")  # as tests/conftest.py does
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints must not corrupt the channel
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    module = importlib.import_module(module_name)
    while True:
        try:
            fn, args = pickle.load(inp)
        except EOFError:
            return
        try:
            if fn == "_implementation":
                import brainstate

                reply = brainstate._impl.IMPLEMENTATION
            else:
                reply = getattr(module, fn)(*args)
            pickle.dump(("ok", reply), out)
        except BaseException:  # a bug of the harness itself, reported to the test
            pickle.dump(("crash", traceback.format_exc()), out)
        out.flush()


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[2])
    _serve(sys.argv[1])
