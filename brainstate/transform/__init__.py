"""State-aware transformations: jit, gradients, vmap, loops, conditionals, error checks."""

from brainstate._error import BatchAxisError
from brainstate.transform._grad import GradientTransform, grad, vector_grad
from brainstate.transform._jit import jit
from brainstate.transform._make_jaxpr import StatefulFunction, make_jaxpr

__all__ = [
    "BatchAxisError",
    "GradientTransform",
    "StatefulFunction",
    "grad",
    "jit",
    "make_jaxpr",
    "vector_grad",
]
