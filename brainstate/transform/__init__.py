"""State-aware transformations: jit, gradients, vmap, loops, conditionals, error checks.

Each traces the function once per abstract call signature, makes the states it reads inputs
and the states it writes outputs of a pure JAX computation, and writes results back after
each call. States created inside a transformed function are never inputs or outputs.
"""

from brainstate._error import BatchAxisError
from brainstate.transform._compiler_options import simulation_options
from brainstate.transform._cond import cond, ifelse, switch
from brainstate.transform._error_if import jit_error_if
from brainstate.transform._eval_shape import eval_shape
from brainstate.transform._grad import GradientTransform, grad, vector_grad
from brainstate.transform._jit import JittedFunction, jit
from brainstate.transform._loop import (
    bounded_while_loop,
    checkpointed_for_loop,
    checkpointed_scan,
    for_loop,
    scan,
    while_loop,
)
from brainstate.transform._make_jaxpr import (
    StatefulFunction,
    get_jit_const_threshold,
    make_jaxpr,
    set_jit_const_threshold,
)
from brainstate.transform._progress import ProgressBar
from brainstate.transform._vmap import (
    INIT_NO_BATCHING,
    VmapNewStatesFunction,
    VmappedFunction,
    vmap,
    vmap_new_states,
)

__all__ = [
    "BatchAxisError",
    "GradientTransform",
    "INIT_NO_BATCHING",
    "JittedFunction",
    "ProgressBar",
    "StatefulFunction",
    "VmapNewStatesFunction",
    "VmappedFunction",
    "bounded_while_loop",
    "checkpointed_for_loop",
    "checkpointed_scan",
    "cond",
    "eval_shape",
    "for_loop",
    "get_jit_const_threshold",
    "grad",
    "ifelse",
    "jit",
    "jit_error_if",
    "make_jaxpr",
    "scan",
    "set_jit_const_threshold",
    "simulation_options",
    "switch",
    "vector_grad",
    "vmap",
    "vmap_new_states",
    "while_loop",
]
