"""Building jaxprs from equations, and the shared machinery of the jaxpr tools.

Public: :func:`eqns_to_jaxpr` and :func:`eqns_to_closed_jaxpr` assemble a ``Jaxpr`` /
``ClosedJaxpr`` from a list of equations, inferring the binders that are not given and
checking that every variable is bound before use. The rest of the module (identity-keyed
containers, the error types, sub-jaxpr rewriting, identity equations) is used by the
optimisation passes, the code generator and the inliner.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> import brainstate
>>> closed = jax.make_jaxpr(lambda x: jnp.sin(x) * 2.0)(1.0)
>>> jaxpr = brainstate.transform.eqns_to_jaxpr(closed.eqns)
>>> [v.aval.str_short() for v in jaxpr.invars], len(jaxpr.eqns)
(['float32[]'], 2)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping, MutableSet, Sequence
from typing import Any, cast

import numpy as np
from jax.extend.core import (ClosedJaxpr, DebugInfo, DropVar, Jaxpr, JaxprEqn, Literal, Var,
                             new_jaxpr_eqn)
from jax import lax

__all__ = ["eqns_to_jaxpr", "eqns_to_closed_jaxpr"]


# --- errors ------------------------------------------------------------------------------------


class IRError(Exception):
    """Base class of the errors raised by the jaxpr tools."""

    __module__ = "brainstate.transform"


class IRValidationError(IRError, ValueError):
    """A jaxpr, equation list or option given to a jaxpr tool is malformed."""

    __module__ = "brainstate.transform"


class UnsupportedPrimitiveError(IRError, NotImplementedError):
    """A primitive (or construct) the tool has no rule for."""

    __module__ = "brainstate.transform"


# --- identity-keyed containers -----------------------------------------------------------------


class IdentitySet(MutableSet):
    """A set whose members are compared by identity (``id``), as jaxpr variables are.

    Examples
    --------
    >>> from brainstate.transform._ir_utils import IdentitySet
    >>> a, b = [1], [1]
    >>> s = IdentitySet([a])
    >>> (a in s, b in s, len(s))
    (True, False, 1)
    """

    __module__ = "brainstate.transform"

    def __init__(self, iterable: Iterable | None = None) -> None:
        self._data: dict[int, Any] = {}
        if iterable is not None:
            self.update(iterable)

    def __contains__(self, value: object) -> bool:
        return id(value) in self._data

    def __iter__(self):
        return iter(self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def add(self, value: Any) -> None:
        self._data[id(value)] = value

    def discard(self, value: Any) -> None:
        self._data.pop(id(value), None)

    def update(self, iterable: Iterable) -> None:
        for item in iterable:
            self.add(item)

    def __repr__(self) -> str:
        return f"IdentitySet({list(self._data.values())!r})"


class IdentityMap(MutableMapping):
    """A mapping whose keys are compared by identity (``id``); iteration yields the keys.

    Examples
    --------
    >>> from brainstate.transform._ir_utils import IdentityMap
    >>> a, b = [1], [1]
    >>> m = IdentityMap()
    >>> m[a] = 'x'
    >>> (a in m, b in m, list(m.values()))
    (True, False, ['x'])
    """

    __module__ = "brainstate.transform"

    def __init__(self, items: Iterable | None = None) -> None:
        self._data: dict[int, tuple[Any, Any]] = {}  # id(key) -> (key, value): keeps key alive
        if items is not None:
            self.update(items)

    def __getitem__(self, key: Any) -> Any:
        return self._data[id(key)][1]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._data[id(key)] = (key, value)

    def __delitem__(self, key: Any) -> None:
        del self._data[id(key)]

    def __contains__(self, key: object) -> bool:
        return id(key) in self._data

    def __iter__(self):
        return (k for k, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"IdentityMap({ {repr(k): v for k, v in self._data.values()} !r})"


# --- JAX version differences -------------------------------------------------------------------

# JAX 0.12 merged ``ClosedJaxpr`` into ``Jaxpr``: ``jax.extend.core.ClosedJaxpr`` is an alias of
# ``Jaxpr``, every jaxpr carries the values of its constants (``jaxpr.consts``, often empty),
# ``closed.jaxpr`` is the jaxpr itself, and ``constvars`` are the leading inputs that have a
# value attached. A jaxpr built with constvars but without values treats them as ordinary
# leading inputs. Before 0.12 a ``ClosedJaxpr`` wrapped a ``Jaxpr`` whose constvars exist
# without values.
CLOSED_JAXPR_IS_JAXPR: bool = ClosedJaxpr is Jaxpr


def close_jaxpr(jaxpr: Jaxpr, consts: Sequence[Any]) -> ClosedJaxpr:
    """``jaxpr`` with ``consts`` as the values of its first ``len(consts)`` constant variables
    (on JAX >= 0.12: of its first inputs, which thereby become its constvars)."""
    if CLOSED_JAXPR_IS_JAXPR:
        # ``Jaxpr.with_consts`` exists from JAX 0.12 on only; the type is that of the installed JAX.
        return cast(Any, jaxpr).with_consts(list(consts))
    return ClosedJaxpr(jaxpr, list(consts))


def scan_split(params: Any) -> tuple[int, int]:
    """``(num_consts, num_carry)`` of a ``scan`` equation's params: its inputs are that many
    constants, then the initial carry, then the scanned arrays; its outputs the final carry,
    then the stacked results."""
    if "num_consts" in params:
        return params["num_consts"], params["num_carry"]
    if "ft_in" in params:
        # JAX 0.12 replaced scan's num_consts/num_carry by flat trees of the inputs
        # (ft_in: consts, carry, xs) and of the outputs (ft_out: carry, ys).
        consts, carry, _ = params["ft_in"].unpack()
        return len(consts), len(carry)
    raise UnsupportedPrimitiveError(
        f"scan equation with params {sorted(params)}: neither num_consts/num_carry nor ft_in "
        "tells how its inputs split into constants, carry and scanned arrays.")


# --- validation --------------------------------------------------------------------------------


def ensure_jaxpr(obj: Any, who: str) -> tuple[Jaxpr, list, bool]:
    """``(jaxpr, consts, was_closed)`` of a ``Jaxpr`` or ``ClosedJaxpr``; anything else raises.

    On JAX >= 0.12 every jaxpr is closed: ``jaxpr`` is ``obj`` itself, still carrying
    ``consts``, and ``was_closed`` is True."""
    if isinstance(obj, ClosedJaxpr):
        return obj.jaxpr, list(obj.consts), True
    if isinstance(obj, Jaxpr):
        return obj, [], False
    raise IRValidationError(
        f"{who} expects a jax Jaxpr or ClosedJaxpr, got {type(obj).__name__}. "
        "Build one with jax.make_jaxpr(fn)(*args) or brainstate.transform.make_jaxpr."
    )


def check_all_vars(varseq: Iterable, name: str, who: str) -> list:
    """The items of ``varseq`` as a list; raises unless each one is a jaxpr ``Var``."""
    out = list(varseq)
    for i, v in enumerate(out):
        if not isinstance(v, Var) or isinstance(v, DropVar):
            raise IRValidationError(
                f"{who}: {name}[{i}] must be a jaxpr Var, got {type(v).__name__} ({v!r})."
            )
    return out


# --- small IR helpers --------------------------------------------------------------------------


def has_effects(eqn: JaxprEqn) -> bool:
    """True when the equation has side effects (printing, callbacks, ordered IO)."""
    return bool(eqn.effects)


def literal_value(atom: Any) -> Any:
    """The value of a ``Literal`` as a numpy scalar/array with the literal's dtype."""
    return np.asarray(atom.val, dtype=atom.aval.dtype)


def make_literal(value: Any, aval: Any) -> Literal:
    """A ``Literal`` holding ``value`` cast to ``aval``'s dtype."""
    return Literal(np.asarray(value, dtype=aval.dtype), aval)


def identity_eqn(src: Any, dst: Var, like: Sequence[JaxprEqn]) -> JaxprEqn:
    """``dst = convert_element_type(src)`` to the same dtype: binds an output variable to a
    value computed elsewhere (the passes keep a jaxpr's output variables unchanged)."""
    aval: Any = dst.aval  # a ShapedArray (``Var.aval`` is typed as the AbstractValue base)
    params = {"new_dtype": aval.dtype, "weak_type": bool(getattr(aval, "weak_type", False)),
              "sharding": None}
    source_info = like[-1].source_info if like else None
    ctx = like[-1].ctx if like else None
    return new_jaxpr_eqn([src], [dst], lax.convert_element_type_p, params, frozenset(),
                         source_info, ctx)


def _map_param(value: Any, fn: Callable[[Jaxpr], Jaxpr]) -> Any:
    if isinstance(value, ClosedJaxpr):
        new = fn(value.jaxpr)
        return value if new is value.jaxpr else close_jaxpr(new, value.consts)
    if isinstance(value, Jaxpr):
        return fn(value)
    if isinstance(value, tuple) and any(isinstance(v, (Jaxpr, ClosedJaxpr)) for v in value):
        new_items = tuple(_map_param(v, fn) for v in value)
        # The same tuple when no member changed: the passes detect "nothing changed" by identity.
        return value if all(a is b for a, b in zip(new_items, value)) else new_items
    return value


def map_subjaxprs(eqn: JaxprEqn, fn: Callable[[Jaxpr], Jaxpr]) -> JaxprEqn:
    """The equation with ``fn`` applied to every jaxpr among its params (jit bodies, cond
    branches, loop bodies). ``fn`` must keep each jaxpr's inputs and outputs. When ``fn``
    returns every jaxpr unchanged (the same object), so is the equation."""
    new_params = {}
    changed = False
    for k, v in eqn.params.items():
        nv = _map_param(v, fn)
        changed = changed or nv is not v
        new_params[k] = nv
    return eqn.replace(params=new_params) if changed else eqn


# --- building jaxprs from equations ------------------------------------------------------------


def _free_and_produced(eqns: Sequence[JaxprEqn]) -> tuple[list, IdentitySet]:
    """Variables used before any equation produces them (first-use order), and all produced."""
    produced = IdentitySet()
    free: list = []
    seen = IdentitySet()
    for eqn in eqns:
        for v in eqn.invars:
            if isinstance(v, Var) and v not in produced and v not in seen:
                seen.add(v)
                free.append(v)
        produced.update(eqn.outvars)
    return free, produced


def _resolve(eqns: list, invars: Any, outvars: Any, constvars: Any,
             who: str) -> tuple[list[Var], list[Var], list[Any]]:
    for i, eqn in enumerate(eqns):
        if not isinstance(eqn, JaxprEqn):
            raise IRValidationError(f"{who}: eqns[{i}] must be a JaxprEqn, got {type(eqn).__name__}.")
    free, produced = _free_and_produced(eqns)
    if invars is None:
        given = IdentitySet(constvars or ())
        invars = [v for v in free if v not in given]
    invars = check_all_vars(invars, "invars", who)
    if constvars is None:
        bound = IdentitySet(invars)
        constvars = [v for v in free if v not in bound]
    constvars = check_all_vars(constvars, "constvars", who)
    bound = IdentitySet([*invars, *constvars])
    if outvars is None:
        consumed = IdentitySet(v for e in eqns for v in e.invars if isinstance(v, Var))
        outvars = [v for e in eqns for v in e.outvars
                   if v not in consumed and not isinstance(v, DropVar)]
    else:
        outvars = list(outvars)
        for i, v in enumerate(outvars):
            if not isinstance(v, (Var, Literal)) or isinstance(v, DropVar):
                raise IRValidationError(
                    f"{who}: outvars[{i}] must be a Var or Literal, got {type(v).__name__}.")
            if isinstance(v, Var) and v not in produced and v not in bound:
                raise IRValidationError(
                    f"{who}: outvars[{i}] ({v}) is neither produced by an equation nor an "
                    "input/constant variable.")
    unbound = [v for v in free if v not in bound]
    if unbound:
        raise IRValidationError(
            f"{who}: variable(s) {', '.join(map(str, unbound))} are used before any equation "
            "produces them and are not in invars or constvars. Add them to invars/constvars, or "
            "reorder the equations so producers come first.")
    return constvars, invars, outvars


def new_jaxpr(constvars: list, invars: list, outvars: list, eqns: list, who: str) -> Jaxpr:
    """A ``Jaxpr`` with the given binders, the union of the equations' effects, and debug info
    (JAX warns about jaxprs built without one)."""
    info = DebugInfo(who, f"<{who}>", tuple(str(v) for v in invars),
                     tuple(f"result[{i}]" for i in range(len(outvars))))
    return Jaxpr(constvars, invars, outvars, eqns, _effects(eqns), info)


def _effects(eqns: Sequence[JaxprEqn]) -> frozenset:
    out: set = set()
    for e in eqns:
        out |= set(e.effects)
    return frozenset(out)


def eqns_to_jaxpr(eqns: Sequence[JaxprEqn], invars: Sequence[Var] | None = None,
                  outvars: Sequence[Any] | None = None,
                  constvars: Sequence[Var] | None = None) -> Jaxpr:
    """Assemble a ``Jaxpr`` from equations.

    Parameters
    ----------
    eqns : sequence of JaxprEqn
        The equations, in execution order.
    invars : sequence of Var, optional
        The inputs. Default: the variables used before any equation produces them, in first-use
        order (minus ``constvars`` when those are given).
    outvars : sequence of Var or Literal, optional
        The outputs. Default: the produced variables no later equation consumes, in order.
    constvars : sequence of Var, optional
        Constant inputs. Default: the free variables not in ``invars``. On JAX >= 0.12 a jaxpr
        has constant variables only when it carries their values, so there they become the
        leading ``invars`` of the result (``jax.core.eval_jaxpr(j, consts, *args)`` binds them
        first on every version).

    Returns
    -------
    Jaxpr

    Raises
    ------
    IRValidationError
        (a ``ValueError``) when an item is not a ``JaxprEqn``/``Var``, when a variable is used
        before it is produced and is not an input or constant, or when an output is unbound.

    Notes
    -----
    Differs from upstream: a free variable missing from ``invars``/``constvars`` and an
    unbound output are errors here (upstream builds a jaxpr that fails only when run), and
    the jaxpr's effects are the union of the equations' effects.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> closed = jax.make_jaxpr(lambda x, y: (x + y) * x)(1.0, 2.0)
    >>> j = brainstate.transform.eqns_to_jaxpr(closed.eqns, invars=closed.jaxpr.invars)
    >>> jax.core.eval_jaxpr(j, [], 3.0, 4.0)
    [Array(21., dtype=float32, weak_type=True)]
    """
    eqns = list(eqns)
    constvars, invars, outvars = _resolve(eqns, invars, outvars, constvars, "eqns_to_jaxpr")
    return new_jaxpr(constvars, invars, outvars, eqns, "eqns_to_jaxpr")


def eqns_to_closed_jaxpr(eqns: Sequence[JaxprEqn], invars: Sequence[Var] | None = None,
                         outvars: Sequence[Any] | None = None,
                         constvars: Sequence[Var] | None = None,
                         consts: Sequence[Any] | None = None) -> ClosedJaxpr:
    """Assemble a ``ClosedJaxpr`` from equations and the values of its constant variables.

    Parameters
    ----------
    eqns, invars, outvars, constvars
        As :func:`eqns_to_jaxpr`.
    consts : sequence, optional
        One value per constant variable (default: none).

    Returns
    -------
    ClosedJaxpr

    Raises
    ------
    IRValidationError
        As :func:`eqns_to_jaxpr`, and when ``consts`` and ``constvars`` differ in length or a
        constant's shape/dtype differs from its variable's.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> import brainstate
    >>> w = np.arange(3.0, dtype=np.float32)
    >>> closed = jax.make_jaxpr(lambda x: x * jnp.asarray(w))(jnp.ones(3))
    >>> inner = closed.jaxpr
    >>> cj = brainstate.transform.eqns_to_closed_jaxpr(
    ...     inner.eqns, invars=inner.invars, constvars=inner.constvars, consts=closed.consts)
    >>> cj.jaxpr.invars == inner.invars
    True
    """
    eqns = list(eqns)
    constvars, invars, outvars = _resolve(eqns, invars, outvars, constvars,
                                          "eqns_to_closed_jaxpr")
    consts = [] if consts is None else list(consts)
    if len(consts) != len(constvars):
        raise IRValidationError(
            f"eqns_to_closed_jaxpr: got {len(consts)} const value(s) for {len(constvars)} "
            f"constvar(s) ({', '.join(map(str, constvars)) or 'none'}). Pass one value per "
            "constant variable.")
    for i, (v, c) in enumerate(zip(constvars, consts)):
        shape, dtype = np.shape(c), getattr(c, "dtype", None)
        aval: Any = v.aval  # a ShapedArray (typed as the AbstractValue base)
        if tuple(shape) != tuple(aval.shape) or (dtype is not None and dtype != aval.dtype):
            raise IRValidationError(
                f"eqns_to_closed_jaxpr: consts[{i}] has shape {tuple(shape)} and dtype {dtype}, "
                f"but its variable {v} is {aval.str_short()}.")
    return close_jaxpr(new_jaxpr(constvars, invars, outvars, eqns, "eqns_to_closed_jaxpr"), consts)
