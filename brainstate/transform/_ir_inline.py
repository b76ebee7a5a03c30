"""Inline the bodies of nested ``jit`` calls into the enclosing jaxpr.

Examples
--------
>>> import jax, jax.numpy as jnp
>>> import brainstate
>>> inner = jax.jit(lambda x: jnp.sin(x) + 1.0)
>>> closed = jax.make_jaxpr(lambda x: inner(x) * 2.0)(1.0)
>>> [e.primitive.name for e in closed.eqns]
['jit', 'mul']
>>> flat = brainstate.transform.inline_jit(closed)
>>> [e.primitive.name for e in flat.eqns]
['sin', 'add', 'mul']
"""

from __future__ import annotations

from typing import Any, Callable

from jax.extend.core import ClosedJaxpr, DropVar, Jaxpr, JaxprEqn, Literal, Var

from brainstate._compatible_import import is_jit_primitive
from brainstate.transform._ir_utils import (IdentityMap, IRValidationError, close_jaxpr,
                                           ensure_jaxpr)

__all__ = ["inline_jit"]


def _body_of(eqn: JaxprEqn) -> tuple[Jaxpr, list] | None:
    """The called jaxpr and its consts of a jit equation, or None when it carries none."""
    body = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
    if isinstance(body, ClosedJaxpr):
        return body.jaxpr, list(body.consts)
    if isinstance(body, Jaxpr):
        return body, []
    return None


class _Inliner:
    """Walks one jaxpr; constants of inlined bodies become new constvars of the result."""

    def __init__(self, should_expand: Callable[[JaxprEqn], bool]) -> None:
        self.should_expand = should_expand
        self.constvars: list = []
        self.consts: list = []

    def _check(self, eqn: JaxprEqn) -> bool:
        if not is_jit_primitive(eqn):
            return False
        ans = self.should_expand(eqn)
        return bool(ans)

    def run(self, jaxpr: Jaxpr, env: IdentityMap, out: list, fresh: bool) -> list:
        """Append ``jaxpr``'s equations (inputs renamed through ``env``) to ``out``; return its
        outputs as atoms of the enclosing scope. ``fresh``: give every produced variable a new
        ``Var`` (a body inlined twice must not bind one variable twice)."""

        def read(a: Any) -> Any:
            return a if isinstance(a, Literal) else env.get(a, a)

        for eqn in jaxpr.eqns:
            body = _body_of(eqn) if self._check(eqn) else None
            if body is None:
                outs = [v if isinstance(v, DropVar) or not fresh else Var(v.aval)
                        for v in eqn.outvars]
                for old, new in zip(eqn.outvars, outs):
                    if new is not old:
                        env[old] = new
                out.append(eqn.replace(invars=[read(a) for a in eqn.invars], outvars=outs))
                continue
            inner, consts = body
            sub = IdentityMap()
            for v, a in zip(inner.invars, eqn.invars):
                sub[v] = read(a)
            for v, c in zip(inner.constvars, consts):
                sub[v] = Var(v.aval)
                self.constvars.append(sub[v])
                self.consts.append(c)
            results = self.run(inner, sub, out, True)
            for v, r in zip(eqn.outvars, results):
                if not isinstance(v, DropVar):
                    env[v] = r
        return [read(a) for a in jaxpr.outvars]


def inline_jit(jaxpr: Jaxpr | ClosedJaxpr,
               should_expand: Callable[[JaxprEqn], bool] | None = None) -> Jaxpr | ClosedJaxpr:
    """Replace ``jit`` equations by the equations of their bodies.

    Parameters
    ----------
    jaxpr : Jaxpr or ClosedJaxpr
        The program.
    should_expand : callable, optional
        ``should_expand(eqn) -> bool`` for each ``jit`` equation met (nested ones included,
        with the equation as it appears in its body); default: expand every one. A body is
        searched for further ``jit`` calls only when its own call is expanded.

    Returns
    -------
    Jaxpr or ClosedJaxpr
        A ``ClosedJaxpr`` when the input was one or when an inlined body had constants (they
        become constants of the result); otherwise a ``Jaxpr``. Inputs keep their variables; an
        output computed inside an inlined body is that body's (renamed) result variable.

    Raises
    ------
    IRValidationError
        (a ``ValueError``) when ``jaxpr`` is not a jaxpr or ``should_expand`` is not callable.

    Notes
    -----
    ``jit`` calls inside ``cond``/``scan``/``while`` bodies are left as they are. Sharding,
    donation and the ``inline`` flag of an expanded call are dropped with it.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> import brainstate
    >>> small = jax.jit(lambda x: x + 1.0)
    >>> big = jax.jit(lambda x: jnp.sin(jnp.cos(jnp.exp(x))))
    >>> closed = jax.make_jaxpr(lambda x: small(x) + big(x))(1.0)
    >>> pick = lambda eqn: len(eqn.params['jaxpr'].eqns) < 2
    >>> [e.primitive.name for e in brainstate.transform.inline_jit(closed, pick).eqns]
    ['add', 'jit', 'add']
    """
    inner, consts, closed = ensure_jaxpr(jaxpr, "inline_jit")
    if should_expand is None:
        should_expand = lambda eqn: True  # noqa: E731
    elif not callable(should_expand):
        raise IRValidationError(
            f"inline_jit: should_expand must be a callable eqn -> bool or None, got "
            f"{type(should_expand).__name__}.")
    inl = _Inliner(should_expand)
    env = IdentityMap()
    eqns: list = []
    outvars = inl.run(inner, env, eqns, False)
    # On JAX >= 0.12 replacing constvars drops the attached values; close_jaxpr puts them back.
    new = inner.replace(eqns=eqns, outvars=outvars,
                        constvars=list(inner.constvars) + inl.constvars)
    if closed or inl.consts:
        return close_jaxpr(new, consts + inl.consts)
    return new
