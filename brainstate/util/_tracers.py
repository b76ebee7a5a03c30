""":class:`StateJaxTracer`: a snapshot of the active JAX trace, to detect cross-trace use."""

from __future__ import annotations

from jax.extend.core import get_opaque_trace_state

from ._pretty_repr import PrettyAttr, PrettyRepr, PrettyType

__all__ = ["StateJaxTracer"]


def current_jax_trace():
    """Return an opaque token of the JAX trace active now (equal tokens: same trace)."""
    return get_opaque_trace_state(convention="nnx")


class StateJaxTracer(PrettyRepr):
    """Remember the JAX trace active at construction and tell whether it is still the active one.

    Examples
    --------
    >>> import jax
    >>> outer = StateJaxTracer()
    >>> seen = []
    >>> _ = jax.jit(lambda x: seen.append(outer.is_valid()) or x)(1.0)
    >>> outer.is_valid(), seen
    (True, [False])
    """

    __module__ = "brainstate.util"
    __slots__ = ("_jax_trace",)

    def __init__(self):
        self._jax_trace = current_jax_trace()

    @property
    def jax_trace(self):
        """The captured trace token."""
        return self._jax_trace

    def is_valid(self) -> bool:
        """Return whether the captured trace is the one active now."""
        return self._jax_trace == current_jax_trace()

    def __eq__(self, other) -> bool:
        if not isinstance(other, StateJaxTracer):
            return NotImplemented
        return self._jax_trace == other._jax_trace

    __hash__ = None  # type: ignore[assignment]  # trace tokens are unhashable (Python idiom)

    def __pretty_repr__(self):
        yield PrettyType(type(self).__name__)
        yield PrettyAttr("jax_trace", self._jax_trace)
