"""Semantics-preserving rewrites of a jaxpr: constant folding, dead-code elimination, common
subexpression elimination, copy propagation, algebraic simplification, and a driver.

Every pass keeps the jaxpr's input and output variables (the same ``Var`` objects) and the
types of its values (shape, dtype and weak type), so the result is a drop-in replacement, and
rewrites the jaxprs nested in equations (jit bodies, cond branches, loop bodies) the same way.
A pass that changes nothing returns its input object itself. Equations with side effects
(printing, callbacks) are never removed, merged or evaluated early.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> import brainstate
>>> def f(x):
...     unused = jnp.sin(x)
...     return x * (2.0 + 3.0) - 0.0
>>> closed = jax.make_jaxpr(f)(1.0)
>>> opt = brainstate.transform.optimize_jaxpr(closed)
>>> len(closed.eqns) > len(opt.eqns)
True
>>> float(jax.core.eval_jaxpr(opt.jaxpr, opt.consts, 2.0)[0])
10.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, cast

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, DropVar, Jaxpr, JaxprEqn, Literal, Var

from brainstate.transform._ir_utils import (
    IdentityMap,
    IdentitySet,
    IRValidationError,
    close_jaxpr,
    ensure_jaxpr,
    has_effects,
    identity_eqn,
    literal_value,
    make_literal,
    map_subjaxprs,
)

__all__ = [
    "constant_fold",
    "dead_code_elimination",
    "common_subexpression_elimination",
    "copy_propagation",
    "algebraic_simplification",
    "optimize_jaxpr",
]

# Never evaluated at trace time: broadcasts would bake large constants into the program,
# random/stateful primitives and callbacks must run when the program runs, and control flow
# is not a plain ``bind`` of concrete values (its bodies are folded separately).
_NO_FOLD = frozenset({
    "broadcast_in_dim", "broadcast", "iota",
    "rng_uniform", "rng_bit_generator", "random_seed", "random_bits", "random_fold_in",
    "random_split", "random_wrap", "random_unwrap", "threefry2x32",
    "while", "scan", "cond",
    "debug_callback", "io_callback", "pure_callback", "debug_print",
})
# Folding stops when a result would be larger than this many elements (keeps programs small).
_FOLD_MAX_SIZE = 1024
# Primitives whose repeated calls are not interchangeable (state inside the runtime).
_NO_CSE = frozenset({"rng_uniform"})

# Long pass names accepted for the short ones.
_LONG_NAMES = {
    "common_subexpression_elimination": "cse",
    "dead_code_elimination": "dce",
}


def _check(jaxpr: Any, who: str) -> Jaxpr:
    # Before JAX 0.12 a ClosedJaxpr is not a Jaxpr and is refused here; since 0.12 they are one
    # type, the jaxpr carries its consts and the passes keep them (``replace`` does).
    if not isinstance(jaxpr, Jaxpr):
        raise IRValidationError(
            f"{who} expects a jax Jaxpr (for a ClosedJaxpr pass closed.jaxpr, or use "
            f"optimize_jaxpr), got {type(jaxpr).__name__}.")
    return jaxpr


def _finish(jaxpr: Jaxpr, eqns: list) -> Jaxpr:
    """``jaxpr`` with ``eqns``, or ``jaxpr`` itself when those are its own equations: the
    driver stops when a round returns the very jaxpr it started from."""
    if len(eqns) == len(jaxpr.eqns) and all(a is b for a, b in zip(eqns, jaxpr.eqns)):
        return jaxpr
    return jaxpr.replace(eqns=eqns)


def _rebuild(jaxpr: Jaxpr, eqns: list, subst: IdentityMap) -> Jaxpr:
    """``jaxpr`` with ``eqns``; outputs whose value now lives elsewhere get an identity eqn
    so the output variables stay the same objects (one per variable: an output listed twice
    must still be bound once)."""
    eqns = list(eqns)
    bound = IdentitySet()
    for out in jaxpr.outvars:
        if isinstance(out, Var) and out in subst and out not in bound:
            bound.add(out)
            eqns.append(identity_eqn(subst[out], out, eqns or jaxpr.eqns))
    return _finish(jaxpr, eqns)


def _same_type(src: Any, dst: Any) -> bool:
    """``src`` may stand for ``dst``: their avals are equal, weak type included (a weakly
    typed value promotes differently, so ``f32 -> weak f32`` is not a no-op)."""
    aval = getattr(src, "aval", None)
    return aval is not None and aval == dst.aval


def _binds_output(eqn: JaxprEqn, outs: IdentitySet) -> bool:
    """An identity equation that binds an output variable (made by ``_rebuild``): the passes
    leave it alone, otherwise each round would take it apart and rebuild it."""
    return (eqn.primitive.name == "convert_element_type" and len(eqn.outvars) == 1
            and eqn.outvars[0] in outs)


def _resolve(subst: IdentityMap, atom: Any) -> Any:
    while isinstance(atom, Var) and atom in subst:
        atom = subst[atom]
    return atom


def _inputs(eqn: JaxprEqn, subst: IdentityMap) -> JaxprEqn:
    if not subst:
        return eqn
    new = [_resolve(subst, v) for v in eqn.invars]
    if all(a is b for a, b in zip(new, eqn.invars)):
        return eqn
    return eqn.replace(invars=new)


# --- constant folding --------------------------------------------------------------------------


def _foldable(eqn: JaxprEqn) -> bool:
    return (bool(eqn.invars) and eqn.primitive.name not in _NO_FOLD and not has_effects(eqn)
            and all(isinstance(v, Literal) for v in eqn.invars)
            and all(isinstance(v, DropVar)
                    or np.prod(cast(Any, v.aval).shape, dtype=np.int64) <= _FOLD_MAX_SIZE
                    for v in eqn.outvars)
            and not any(isinstance(p, (Jaxpr, ClosedJaxpr)) for p in eqn.params.values()))


def _fold_eqn(eqn: JaxprEqn) -> list | None:
    """The equation's outputs as literals, or None when evaluating it fails."""
    try:
        # Evaluate now even when the jaxpr is being optimised inside another trace.
        with jax.ensure_compile_time_eval():
            out = eqn.primitive.bind(*[literal_value(v) for v in eqn.invars], **eqn.params)
        outs = out if eqn.primitive.multiple_results else [out]
        return [make_literal(np.asarray(o), v.aval) for o, v in zip(outs, eqn.outvars)]
    except Exception:  # e.g. a primitive without an eager rule: leave it to run later
        return None


def constant_fold(jaxpr: Jaxpr) -> Jaxpr:
    """Evaluate equations whose inputs are all literals and use the results as literals.

    Parameters
    ----------
    jaxpr : Jaxpr
        The jaxpr (for a ``ClosedJaxpr`` pass ``closed.jaxpr``, or use :func:`optimize_jaxpr`).

    Returns
    -------
    Jaxpr
        Same input and output variables; folded equations removed (an output that became a
        constant is bound by one ``convert_element_type`` equation).

    Notes
    -----
    Not folded: broadcasts and ``iota`` (they would bake large arrays into the program),
    random, callback and printing primitives, control flow, equations with effects, and
    results of more than 1024 elements. Nested jaxprs are folded too.
    Differs from upstream: upstream also evaluates equations with side effects and inlines
    ``closed_call`` bodies; it folds results of any size.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> closed = jax.make_jaxpr(lambda x: x + jnp.exp(2.0))(1.0)
    >>> folded = brainstate.transform.constant_fold(closed.jaxpr)
    >>> [e.primitive.name for e in closed.eqns], [e.primitive.name for e in folded.eqns]
    (['exp', 'add'], ['add'])
    """
    _check(jaxpr, "constant_fold")
    outs = IdentitySet(jaxpr.outvars)
    subst = IdentityMap()
    eqns: list = []
    for eqn in jaxpr.eqns:
        eqn = map_subjaxprs(_inputs(eqn, subst), constant_fold)
        fold = _foldable(eqn) and not _binds_output(eqn, outs)
        lits = _fold_eqn(eqn) if fold else None
        if lits is None:
            eqns.append(eqn)
            continue
        for v, lit in zip(eqn.outvars, lits):
            subst[v] = lit
    return _rebuild(jaxpr, eqns, subst)


# --- dead code elimination ---------------------------------------------------------------------


def dead_code_elimination(jaxpr: Jaxpr) -> Jaxpr:
    """Remove equations none of whose outputs is used.

    Parameters
    ----------
    jaxpr : Jaxpr

    Returns
    -------
    Jaxpr
        Same input and output variables (unused inputs stay), fewer equations.

    Notes
    -----
    Equations with effects (``jax.debug.print``, callbacks) are kept even when their outputs
    are unused. Nested jaxprs are cleaned too (keeping their own inputs and outputs).
    Differs from upstream: upstream deletes effectful equations with no used output
    (silently dropping prints and callbacks).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> def f(x):
    ...     _ = jnp.cos(x)
    ...     return jnp.sin(x)
    >>> closed = jax.make_jaxpr(f)(1.0)
    >>> [e.primitive.name for e in brainstate.transform.dead_code_elimination(closed.jaxpr).eqns]
    ['sin']
    """
    _check(jaxpr, "dead_code_elimination")
    live = IdentitySet(v for v in jaxpr.outvars if isinstance(v, Var))
    kept: list = []
    for eqn in reversed(jaxpr.eqns):
        if has_effects(eqn) or any(v in live for v in eqn.outvars):
            live.update(v for v in eqn.invars if isinstance(v, Var))
            kept.append(map_subjaxprs(eqn, dead_code_elimination))
    kept.reverse()
    return _finish(jaxpr, kept)


# --- common subexpression elimination ----------------------------------------------------------


def _param_key(value: Any) -> Any:
    """A hashable, value-based key of an equation parameter (identity for anything opaque)."""
    if isinstance(value, (str, bytes, int, float, complex, bool, type(None))):
        return (type(value).__name__, value)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__,) + tuple(_param_key(v) for v in value)
    if isinstance(value, dict):
        return ("dict",) + tuple(sorted((str(k), _param_key(v)) for k, v in value.items()))
    if isinstance(value, (np.ndarray, np.generic)):
        return ("array", value.shape, str(value.dtype), value.tobytes())
    if isinstance(value, np.dtype):
        return ("dtype", str(value))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    if isinstance(value, (Jaxpr, ClosedJaxpr)):
        return ("id", id(value))
    return ("obj", type(value), value)


def _atom_key(atom: Any) -> Any:
    if isinstance(atom, Literal):
        v = literal_value(atom)
        return ("lit", str(v.dtype), v.shape, v.tobytes())
    return ("var", id(atom))


def common_subexpression_elimination(jaxpr: Jaxpr) -> Jaxpr:
    """Reuse the result of an earlier identical equation (same primitive, inputs, params).

    Parameters
    ----------
    jaxpr : Jaxpr

    Returns
    -------
    Jaxpr
        Same input and output variables, duplicate equations removed.

    Notes
    -----
    Equations with effects are never merged. Literals compare by value and dtype; parameters
    by value (jaxprs among them by identity, which JAX's tracing cache makes equal for repeated
    calls of one jitted function). Nested jaxprs are processed too.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> closed = jax.make_jaxpr(lambda x: jnp.sin(x) + jnp.sin(x))(1.0)
    >>> out = brainstate.transform.common_subexpression_elimination(closed.jaxpr)
    >>> [e.primitive.name for e in out.eqns]
    ['sin', 'add']
    """
    _check(jaxpr, "common_subexpression_elimination")
    outs = IdentitySet(jaxpr.outvars)
    subst = IdentityMap()
    seen: dict = {}
    eqns: list = []
    for eqn in jaxpr.eqns:
        eqn = map_subjaxprs(_inputs(eqn, subst), common_subexpression_elimination)
        key = None
        if not has_effects(eqn) and eqn.primitive.name not in _NO_CSE \
                and not _binds_output(eqn, outs):
            try:
                key = (eqn.primitive, tuple(_atom_key(a) for a in eqn.invars),
                       tuple(sorted((k, _param_key(v)) for k, v in eqn.params.items())))
                hash(key)
            except TypeError:
                key = None
        prev = seen.get(key) if key is not None else None
        if prev is not None and all(isinstance(p, Var) and not isinstance(p, DropVar)
                                    for p in prev):
            for v, p in zip(eqn.outvars, prev):
                subst[v] = p
            continue
        eqns.append(eqn)
        if key is not None:
            seen[key] = eqn.outvars
    return _rebuild(jaxpr, eqns, subst)


# --- copy propagation --------------------------------------------------------------------------


def _copy_source(eqn: JaxprEqn) -> Any:
    """The input an identity-like equation forwards unchanged, or None."""
    if len(eqn.invars) != 1 or len(eqn.outvars) != 1:
        return None
    src, dst = eqn.invars[0], eqn.outvars[0]
    if not _same_type(src, dst):
        return None
    name = eqn.primitive.name
    if name in ("copy", "copy_p"):
        return src
    if name == "convert_element_type" and eqn.params.get("sharding") is None:
        return src
    if name == "device_put" and all(d is None for d in eqn.params.get("devices", (0,))):
        return src
    return None


def copy_propagation(jaxpr: Jaxpr) -> Jaxpr:
    """Replace the results of identity-like equations by their inputs.

    Identity-like: ``copy``, ``convert_element_type`` to the input's own type, and
    ``device_put`` without a target device; in each case only when input and output have the
    same aval (shape, dtype and weak type).

    Parameters
    ----------
    jaxpr : Jaxpr

    Returns
    -------
    Jaxpr
        Same input and output variables; a copy producing an output variable is kept.

    Notes
    -----
    ``convert_element_type`` that only drops the weak type (``jnp.asarray(x, jnp.float32)`` of
    a Python float) is kept: removing it would make the value promote like a Python scalar.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> closed = jax.make_jaxpr(lambda x: jnp.asarray(x, jnp.float32) * 2.0)(jnp.ones(2))
    >>> out = brainstate.transform.copy_propagation(closed.jaxpr)
    >>> [e.primitive.name for e in out.eqns]
    ['mul']
    """
    _check(jaxpr, "copy_propagation")
    outs = IdentitySet(v for v in jaxpr.outvars if isinstance(v, Var))
    subst = IdentityMap()
    eqns: list = []
    for eqn in jaxpr.eqns:
        eqn = map_subjaxprs(_inputs(eqn, subst), copy_propagation)
        src = _copy_source(eqn)
        if src is not None and eqn.outvars[0] not in outs:
            subst[eqn.outvars[0]] = src
            continue
        eqns.append(eqn)
    return _finish(jaxpr, eqns)


# --- algebraic simplification ------------------------------------------------------------------


def _is_const(atom: Any, value: float) -> bool:
    if not isinstance(atom, Literal):
        return False
    v = literal_value(atom)
    return v.shape == () and v.item() == value


def _exact(dtype: Any) -> bool:
    """Integer or bool: ``x - x == 0``, ``0 * x == 0`` and ``x + 0 == x`` hold for every value."""
    return np.issubdtype(dtype, np.integer) or np.dtype(dtype) == np.bool_


def _zero_signs(atom: Any) -> list[bool]:
    """Sign bits of a zero literal's parts (real and imaginary for complex)."""
    v = literal_value(atom)
    return [bool(np.signbit(p)) for p in ((v.real, v.imag) if np.iscomplexobj(v) else (v,))]


def _additive_identity(atom: Any, dtype: Any) -> bool:
    """``x + atom == x`` for every ``x``: any zero for integers and bools, only ``-0.0`` for
    floats (``-0.0 + 0.0`` is ``+0.0``)."""
    return _is_const(atom, 0) and (_exact(dtype) or all(_zero_signs(atom)))


def _subtractive_identity(atom: Any, dtype: Any) -> bool:
    """``x - atom == x`` for every ``x``: any zero for integers and bools, only ``+0.0`` for
    floats (``-0.0 - (-0.0)`` is ``+0.0``)."""
    return _is_const(atom, 0) and (_exact(dtype) or not any(_zero_signs(atom)))


def _simplify(eqn: JaxprEqn) -> Any:
    """The atom the equation's single output equals, or None."""
    if len(eqn.invars) != 2 or len(eqn.outvars) != 1:
        return None
    x, y = eqn.invars
    out: Any = eqn.outvars[0].aval  # a ShapedArray (typed as the AbstractValue base)
    name = eqn.primitive.name

    def same(a: Any) -> Any:  # only forward an operand of exactly the output's aval
        return a if _same_type(a, eqn.outvars[0]) else None

    if name in ("add", "add_any"):
        if _additive_identity(x, out.dtype):
            return same(y)
        return same(x) if _additive_identity(y, out.dtype) else None
    if name == "sub":
        if _subtractive_identity(y, out.dtype):
            return same(x)
        if x is y and isinstance(x, Var) and _exact(out.dtype) and out.shape == ():
            return make_literal(0, out)
        return None
    if name == "mul":
        if _is_const(x, 1):
            return same(y)
        if _is_const(y, 1):
            return same(x)
        if (_is_const(x, 0) or _is_const(y, 0)) and _exact(out.dtype) and out.shape == ():
            return make_literal(0, out)
        return None
    if name == "div" and _is_const(y, 1):
        return same(x)
    return None


def algebraic_simplification(jaxpr: Jaxpr) -> Jaxpr:
    """Apply exact algebraic identities: ``x-0``, ``x*1``, ``1*x``, ``x/1`` become ``x``; for
    integers and bools also ``x+0`` and ``0+x`` (for floats only with a ``-0.0`` literal), and
    for integer and bool scalars ``x-x`` and ``x*0`` become ``0``.

    Parameters
    ----------
    jaxpr : Jaxpr

    Returns
    -------
    Jaxpr
        Same input and output variables, simplified equations removed.

    Notes
    -----
    Float ``x + 0.0`` is kept: for ``x = -0.0`` it gives ``+0.0``. Likewise ``x - (-0.0)``.
    Differs from upstream: upstream rewrites ``x - x`` to ``0`` for floats too, which is wrong
    for ``inf`` and ``nan``, and ``x + 0.0`` to ``x``, which is wrong for ``-0.0``; here those
    need an integer or bool dtype. A rewrite is applied only when the forwarded operand has
    exactly the output's aval (shape, dtype and weak type).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> closed = jax.make_jaxpr(lambda x: jnp.sin(x * 1.0 - 0.0))(1.0)
    >>> out = brainstate.transform.algebraic_simplification(closed.jaxpr)
    >>> [e.primitive.name for e in out.eqns]
    ['sin']
    >>> closed = jax.make_jaxpr(lambda x: x + 0.0)(1.0)  # -0.0 + 0.0 is +0.0: kept
    >>> [e.primitive.name for e in brainstate.transform.algebraic_simplification(closed.jaxpr).eqns]
    ['add']
    """
    _check(jaxpr, "algebraic_simplification")
    subst = IdentityMap()
    eqns: list = []
    for eqn in jaxpr.eqns:
        eqn = map_subjaxprs(_inputs(eqn, subst), algebraic_simplification)
        res = None if has_effects(eqn) else _simplify(eqn)
        if res is None:
            eqns.append(eqn)
        else:
            subst[eqn.outvars[0]] = res
    return _rebuild(jaxpr, eqns, subst)


# --- driver ------------------------------------------------------------------------------------

_PASSES: dict[str, Callable[[Jaxpr], Jaxpr]] = {
    "constant_fold": constant_fold,
    "algebraic_simplification": algebraic_simplification,
    "copy_propagation": copy_propagation,
    "cse": common_subexpression_elimination,
    "dce": dead_code_elimination,
}
_DEFAULT_PIPELINE = ("constant_fold", "algebraic_simplification", "copy_propagation", "cse", "dce")


def _pipeline(optimizations: Any, who: str) -> list[str]:
    if optimizations is None:
        return list(_DEFAULT_PIPELINE)
    if isinstance(optimizations, str):
        optimizations = [optimizations]
    try:
        names = list(optimizations)
    except TypeError:
        raise IRValidationError(
            f"{who}: optimizations must be None, 'all', a pass name or a sequence of pass "
            f"names, got {type(optimizations).__name__}.") from None
    out: list[str] = []
    for n in names:
        if n == "all":
            out.extend(_DEFAULT_PIPELINE)
            continue
        n = _LONG_NAMES.get(n, n)
        if n not in _PASSES:
            raise IRValidationError(
                f"Invalid optimization {n!r} given to {who}. Available: 'all', "
                f"{', '.join(repr(k) for k in _PASSES)} (long names "
                "'common_subexpression_elimination' and 'dead_code_elimination' also work).")
        out.append(n)
    return out


def optimize_jaxpr(jaxpr: Jaxpr | ClosedJaxpr, max_iterations: int = 3,
                   optimizations: Sequence[str] | str | None = None,
                   verbose: bool = False) -> Jaxpr | ClosedJaxpr:
    """Run optimisation passes over a jaxpr until nothing changes or ``max_iterations``.

    Parameters
    ----------
    jaxpr : Jaxpr or ClosedJaxpr
        The program; a ``ClosedJaxpr`` keeps its constants.
    max_iterations : int
        Upper bound on rounds of the whole pipeline (default 3).
    optimizations : str or sequence of str, optional
        Pass names, applied in order each round: ``'constant_fold'``,
        ``'algebraic_simplification'``, ``'copy_propagation'``, ``'cse'``, ``'dce'`` (the long
        names ``'common_subexpression_elimination'`` and ``'dead_code_elimination'`` also
        work). ``None`` or ``'all'``: all five in that order.
    verbose : bool
        Print the equation count after each pass that changed it.

    Returns
    -------
    Jaxpr or ClosedJaxpr
        Same type as the input, with the same input and output variables and the same
        output types (weak type included); the input itself when no pass changed anything.

    Raises
    ------
    IRValidationError
        (a ``ValueError``) for an unknown pass name or a ``max_iterations`` that is not a
        positive integer.
    TypeError
        When ``jaxpr`` is neither a ``Jaxpr`` nor a ``ClosedJaxpr``.

    Notes
    -----
    A pass that changes nothing (nested jaxprs included) returns its input object, so a round
    that changes nothing ends the loop early; a jaxpr nothing can improve costs one round.
    When nothing changed at all, the input object itself is returned.
    Differs from upstream: ``optimizations`` may mix ``'all'`` and names in a sequence.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> def f(x):
    ...     a = jnp.sin(x) * 1.0
    ...     b = jnp.sin(x)
    ...     return a + b
    >>> closed = jax.make_jaxpr(f)(1.0)
    >>> opt = brainstate.transform.optimize_jaxpr(closed)
    >>> [e.primitive.name for e in opt.eqns]
    ['sin', 'add']
    """
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) \
            or max_iterations < 1:
        raise IRValidationError(
            f"optimize_jaxpr: max_iterations must be a positive int, got {max_iterations!r}.")
    names = _pipeline(optimizations, "optimize_jaxpr")
    if not isinstance(jaxpr, (Jaxpr, ClosedJaxpr)):
        raise TypeError(
            f"optimize_jaxpr: Expected Jaxpr or ClosedJaxpr, got {type(jaxpr).__name__}.")
    return _optimize(jaxpr, names, max_iterations, verbose)


def _optimize(jaxpr: Jaxpr | ClosedJaxpr, names: list[str], max_iterations: int,
              verbose: bool) -> Jaxpr | ClosedJaxpr:
    """Run the parsed pipeline ``names``; ``jaxpr`` itself when nothing changed."""
    start, consts, closed = ensure_jaxpr(jaxpr, "optimize_jaxpr")
    inner = start
    if verbose:
        print(f"optimize_jaxpr: {len(start.eqns)} equations; passes: {' -> '.join(names)}")
    for it in range(max_iterations):
        before = inner
        for n in names:
            prev = len(inner.eqns)
            inner = _PASSES[n](inner)
            if verbose and len(inner.eqns) != prev:
                print(f"  round {it + 1}: {n}: {prev} -> {len(inner.eqns)} equations")
        if inner is before:  # every pass returned its input: a fixed point
            break
    if verbose:
        print(f"optimize_jaxpr: {len(start.eqns)} -> {len(inner.eqns)} equations")
    if inner is start:
        return jaxpr
    return close_jaxpr(inner, consts) if closed else inner


def apply_ir_optimizations(closed: ClosedJaxpr, ir_optimizations: Any) -> ClosedJaxpr:
    """The ``ir_optimizations`` option of ``StatefulFunction`` applied to its traced jaxpr.

    ``None`` returns ``closed`` unchanged; a pass name, ``'all'`` or a sequence of names runs
    :func:`optimize_jaxpr` with those passes. Unknown names raise ``IRValidationError``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from brainstate.transform._ir_optim import apply_ir_optimizations
    >>> closed = jax.make_jaxpr(lambda x: x * 1.0)(1.0)
    >>> len(apply_ir_optimizations(closed, 'algebraic_simplification').eqns)
    1
    >>> apply_ir_optimizations(closed, None) is closed
    True
    """
    if ir_optimizations is None:
        return closed
    # A ClosedJaxpr in gives a ClosedJaxpr out (``_optimize`` closes what it was given closed).
    return cast(ClosedJaxpr,
                _optimize(closed, _pipeline(ir_optimizations, "ir_optimizations"), 3, False))
