"""The words of the errors the core detects (both cores raise through ``make_error``)."""

from __future__ import annotations

from typing import Any

from brainstate._error import TraceContextError

__all__ = ["SourceSite", "make_error", "describe_state", "attach_site"]


class SourceSite:
    """Where a state was created: a code object and instruction offset, formatted lazily.

    Capturing this costs two pointer copies; a full traceback per state would dominate
    creation time (``bench_state.py::state.create``).
    """

    __slots__ = ("code", "lasti")

    def __init__(self, code: Any, lasti: int) -> None:
        self.code = code
        self.lasti = lasti

    @property
    def lineno(self) -> int | None:
        for start, end, line in self.code.co_lines():
            if start <= self.lasti < end:
                return line
        return self.code.co_firstlineno

    @property
    def filename(self) -> str:
        return self.code.co_filename

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.code.co_name}"

    def __repr__(self) -> str:
        return f"SourceSite({self})"

    def __reduce__(self):
        return (_no_site, ())


def _no_site() -> None:
    return None


def describe_state(state: Any) -> str:
    """``ParamState 'w' (created at model.py:12 in __init__)``."""
    name = getattr(state, "_name", None)
    text = type(state).__name__
    if name is not None:
        text += f" {name!r}"
    site = getattr(state, "_source_info", None)
    if site is not None:
        text += f" (created at {site})"
    return text


def attach_site(exc: BaseException, state: Any) -> BaseException:
    """Add the state's creation site to ``exc`` as a note (shown in tracebacks).

    Left out where the message already names it (through :func:`describe_state`).
    """
    site = getattr(state, "_source_info", None)
    if site is not None and f"created at {site}" not in str(exc):
        exc.add_note(f"The state was created at {site}.")
    return exc


def make_error(kind: str, state: Any, *args: Any) -> BaseException:
    """Build the exception for ``kind`` detected by the core on ``state``."""
    from brainstate._signature import signature_error

    if kind == "signature":
        op, sig, value = args
        return signature_error(state, op, sig, value)
    if kind == "set_state":
        return ValueError(
            f"Cannot set value to a State, use copy_from method instead "
            f"(target: {describe_state(state)}, given: {type(args[0]).__name__})."
        )
    if kind == "tracer_write":
        return attach_site(
            TraceContextError(
                f"A JAX tracer was written to {describe_state(state)} while no brainstate "
                "transformation is active. This happens when the function is wrapped in a raw "
                "`jax.jit`, `jax.vmap`, `jax.grad` or `jax.lax.scan`: the tracer would leak "
                "out of its trace. Use the brainstate equivalents (`brainstate.transform.jit`, "
                "`vmap`, `grad`, `scan`/`for_loop`), which thread state values through the "
                "transformation."
            ),
            state,
        )
    if kind == "poisoned":
        (op,) = args
        verb = "count the elements of" if op == "numel" else op
        return attach_site(
            TraceContextError(
                f"Cannot {verb} {describe_state(state)}: it was created inside a traced function "
                "and its value was a JAX tracer that died when tracing finished. Create the "
                "state outside the transformed function (or use "
                "`brainstate.transform.vmap_new_states`); assigning a concrete value makes it "
                "usable again."
            ),
            state,
        )
    if kind == "held":
        op, owner, here, no_value = args
        verb = {"read": "read", "write": "write to", "restore": "restore", "split": "split",
                "trace": "trace"}.get(op, op)
        if no_value:
            why = (f"it was created inside a trace still running in thread {owner!r} and has "
                   "no concrete value yet")
        else:
            why = (f"a trace running in thread {owner!r} holds it (its value there is a JAX "
                   "tracer until that trace ends), and this thread is tracing too")
        return attach_site(
            TraceContextError(
                f"Cannot {verb} {describe_state(state)} from thread {here!r}: {why}. A state "
                "can be traced by one thread at a time: trace the functions that share it from "
                "one thread, or serialise their first calls with a lock (other threads that "
                "are not tracing read the value from before the trace, and their writes are "
                "kept)."
            ),
            state,
        )
    if kind == "strict_attr":
        return attach_site(
            TraceContextError(
                f"Cannot mutate {type(state).__name__} from a different trace level "
                f"({describe_state(state)}; check_state_jax_tracer() is active)."
            ),
            state,
        )
    raise AssertionError(f"unknown core error kind {kind!r}")  # pragma: no cover
