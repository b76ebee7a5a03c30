"""Exception classes of brainstate (importable from the top-level package)."""

__all__ = [
    "BrainStateError",
    "TraceContextError",
    "BatchAxisError",
    "StateSignatureError",
]


class BrainStateError(Exception):
    """Base class of every error raised by brainstate's state machinery."""

    __module__ = "brainstate"


class TraceContextError(BrainStateError):
    """A state was used from a trace context it does not belong to (a tracer would leak)."""

    __module__ = "brainstate"


class BatchAxisError(BrainStateError):
    """A batched value was written to a state without a declared batch axis."""

    __module__ = "brainstate.transform"


class StateSignatureError(BrainStateError, ValueError):
    """A value does not match a state's abstract signature (structure, shape or dtype).

    Subclasses ``ValueError`` so code written against upstream brainstate, which raises
    ``ValueError`` for structure mismatches, keeps working.
    """

    __module__ = "brainstate"
