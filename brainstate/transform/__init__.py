"""State-aware transformations: compilation, derivatives, mapping, loops, checks, jaxpr tools.

Each traces the function once per abstract call signature, makes the states it reads inputs
and the states it writes outputs of a pure JAX computation, and writes results back after
each call. States created inside a transformed function are never inputs or outputs.
"""

from brainstate._error import BatchAxisError
from brainstate.transform._checkify import (
    all_checks,
    automatic_checks,
    check,
    check_error,
    checkify,
    div_checks,
    float_checks,
    index_checks,
    nan_checks,
    user_checks,
)
from brainstate.transform._compiler_options import simulation_options
from brainstate.transform._cond import cond, ifelse, switch
from brainstate.transform._debug import breakpoint_if, debug_nan, debug_nan_if
from brainstate.transform._error_if import jit_error_if
from brainstate.transform._eval_shape import eval_shape
from brainstate.transform._find_state import StateFinder
from brainstate.transform._grad import GradientTransform, fwd_grad, grad, vector_grad
from brainstate.transform._ir_inline import inline_jit
from brainstate.transform._ir_optim import (
    algebraic_simplification,
    common_subexpression_elimination,
    constant_fold,
    copy_propagation,
    dead_code_elimination,
    optimize_jaxpr,
)
from brainstate.transform._ir_tocode import (
    fn_to_python_code,
    jaxpr_to_python_code,
    register_prim_handler,
)
from brainstate.transform._ir_utils import eqns_to_closed_jaxpr, eqns_to_jaxpr
from brainstate.transform._ir_visualize import draw, draw_dot_graph, view_pydot
from brainstate.transform._jacobian import hessian, jacfwd, jacobian, jacrev
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
from brainstate.transform._map import map
from brainstate.transform._mapping import (
    StatefulMapping,
    in_new_state_probe,
    pmap2,
    pmap2_new_states,
    vmap2,
    vmap2_new_states,
)
from brainstate.transform._named import named_call, named_scope
from brainstate.transform._progress import ProgressBar
from brainstate.transform._remat import checkpoint, remat
from brainstate.transform._shard_map import shard_map
from brainstate.transform._unvmap import unvmap
from brainstate.transform._vjp_jvp import jvp, vjp
from brainstate.transform._vmap import (
    INIT_NO_BATCHING,
    VmapNewStatesFunction,
    VmappedFunction,
    vmap,
    vmap_new_states,
)

__all__ = [
    # compilation and tracing
    "JittedFunction", "StatefulFunction", "eval_shape", "get_jit_const_threshold", "jit",
    "make_jaxpr", "set_jit_const_threshold", "simulation_options",
    # derivatives
    "GradientTransform", "fwd_grad", "grad", "hessian", "jacfwd", "jacobian", "jacrev", "jvp",
    "vector_grad", "vjp",
    # rematerialisation
    "checkpoint", "remat",
    # mapping
    "BatchAxisError", "INIT_NO_BATCHING", "StatefulMapping", "VmapNewStatesFunction",
    "VmappedFunction", "in_new_state_probe", "map", "pmap2", "pmap2_new_states", "shard_map",
    "unvmap", "vmap", "vmap2", "vmap2_new_states", "vmap_new_states",
    # loops and conditionals
    "ProgressBar", "bounded_while_loop", "checkpointed_for_loop", "checkpointed_scan", "cond",
    "for_loop", "ifelse", "scan", "switch", "while_loop",
    # checks and debugging
    "StateFinder", "all_checks", "automatic_checks", "breakpoint_if", "check", "check_error",
    "checkify", "debug_nan", "debug_nan_if", "div_checks", "float_checks", "index_checks",
    "jit_error_if", "named_call", "named_scope", "nan_checks", "user_checks",
    # jaxpr tools
    "algebraic_simplification", "common_subexpression_elimination", "constant_fold",
    "copy_propagation", "dead_code_elimination", "draw", "draw_dot_graph", "eqns_to_closed_jaxpr",
    "eqns_to_jaxpr", "fn_to_python_code", "inline_jit", "jaxpr_to_python_code", "optimize_jaxpr",
    "register_prim_handler", "view_pydot",
]
