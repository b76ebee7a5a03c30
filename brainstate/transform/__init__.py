"""State-aware transformations: compilation, derivatives, mapping, loops, checks, jaxpr tools.

Each traces the function once per abstract call signature, makes the states it reads inputs
and the states it writes outputs of a pure JAX computation, and writes results back after
each call. States created inside a transformed function are never inputs or outputs.

The transforms every model uses (``jit``, ``vmap``, ``grad``, loops, ``cond``, ``make_jaxpr``, the
jaxpr optimizer) load with the package; the rest (checks and debugging, ``shard_map``,
``vmap2``/``pmap2``, the jaxpr-to-code and drawing tools, Jacobians, ``remat``, ...) load on first
access through a module ``__getattr__`` (PEP 562), which keeps ``import brainstate`` quick. Both
kinds are in ``__all__`` and ``dir()``, and ``from brainstate.transform import X`` works for all.
"""

from __future__ import annotations

import importlib
from typing import Any

from brainstate._error import BatchAxisError
from brainstate.transform._cond import cond, ifelse, switch
from brainstate.transform._error_if import jit_error_if
from brainstate.transform._grad import GradientTransform, fwd_grad, grad, vector_grad
from brainstate.transform._ir_optim import (
    algebraic_simplification,
    common_subexpression_elimination,
    constant_fold,
    copy_propagation,
    dead_code_elimination,
    optimize_jaxpr,
)
from brainstate.transform._ir_utils import eqns_to_closed_jaxpr, eqns_to_jaxpr
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

# name -> private module that provides it, imported on first access (see the module docstring)
_LAZY: dict[str, str] = {
    "all_checks": "_checkify",
    "automatic_checks": "_checkify",
    "check": "_checkify",
    "check_error": "_checkify",
    "checkify": "_checkify",
    "div_checks": "_checkify",
    "float_checks": "_checkify",
    "index_checks": "_checkify",
    "nan_checks": "_checkify",
    "user_checks": "_checkify",
    "simulation_options": "_compiler_options",
    "breakpoint_if": "_debug",
    "debug_nan": "_debug",
    "debug_nan_if": "_debug",
    "eval_shape": "_eval_shape",
    "StateFinder": "_find_state",
    "inline_jit": "_ir_inline",
    "fn_to_python_code": "_ir_tocode",
    "jaxpr_to_python_code": "_ir_tocode",
    "register_prim_handler": "_ir_tocode",
    "draw": "_ir_visualize",
    "draw_dot_graph": "_ir_visualize",
    "view_pydot": "_ir_visualize",
    "hessian": "_jacobian",
    "jacfwd": "_jacobian",
    "jacobian": "_jacobian",
    "jacrev": "_jacobian",
    "map": "_map",
    "StatefulMapping": "_mapping",
    "in_new_state_probe": "_mapping",
    "pmap2": "_mapping",
    "pmap2_new_states": "_mapping",
    "vmap2": "_mapping",
    "vmap2_new_states": "_mapping",
    "named_call": "_named",
    "named_scope": "_named",
    "checkpoint": "_remat",
    "remat": "_remat",
    "shard_map": "_shard_map",
    "unvmap": "_unvmap",
    "jvp": "_vjp_jvp",
    "vjp": "_vjp_jvp",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
