"""``checkify``: functional runtime checks (user ``check`` calls, NaN, division, indexing) with states.

The function is traced once per call signature (``StatefulFunction``) and its jaxpr evaluated
as a pure function of ``(state values, arguments)`` under ``jax.experimental.checkify``: the
``check`` equations recorded while tracing, and the automatic checks of the chosen error
categories, become an ``Error`` value returned next to the output. States the function writes
are written back after the call, so ``checkify`` composes with ``jit``, ``vmap``, ``grad`` and
the loops like any transform of this package.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from jax.experimental import checkify as _cfy

from brainstate._impl import core as _core
from brainstate.transform._make_jaxpr import PerEntry, StatefulFunction

__all__ = [
    "checkify", "check", "check_error",
    "all_checks", "user_checks", "nan_checks", "div_checks",
    "index_checks", "float_checks", "automatic_checks",
]

# The error categories, JAX's own sets: ``errors=`` takes any union of them.
all_checks = _cfy.all_checks
user_checks = _cfy.user_checks
nan_checks = _cfy.nan_checks
div_checks = _cfy.div_checks
index_checks = _cfy.index_checks
float_checks = _cfy.float_checks
automatic_checks = _cfy.automatic_checks

_CATEGORIES = ("user_checks", "nan_checks", "div_checks", "index_checks", "float_checks",
               "automatic_checks", "all_checks")


def check(pred: Any, msg: str, *fmt_args: Any, debug: bool = False, **fmt_kwargs: Any) -> None:
    """Assert ``pred`` at run time inside a function transformed by :func:`checkify`.

    Under ``checkify`` a false ``pred`` is recorded in the returned ``Error`` (the first
    failing check wins) instead of raising, so the check survives ``jit``, ``vmap`` and loops.

    Parameters
    ----------
    pred : bool scalar
        What must hold (a scalar, as JAX's ``checkify.check`` requires: reduce an array with
        ``jnp.all`` first).
    msg : str
        The error message; ``{}`` / ``{name}`` fields are filled from ``fmt_args`` /
        ``fmt_kwargs``, which may be traced values.
    debug : bool
        When True the check is dropped unless it is functionalised by ``checkify`` (no error
        when the function is staged without it).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> def f(x):
    ...     brainstate.transform.check(x > 0, "x must be positive, got {}", x)
    ...     return jnp.log(x)
    >>> err, _ = brainstate.transform.checkify(f)(jnp.array(-2.0))
    >>> print(err.get())  # doctest: +ELLIPSIS
    x must be positive, got -2.0 ...
    """
    _cfy.check(pred, msg, *fmt_args, debug=debug, **fmt_kwargs)


def check_error(error: Any) -> None:
    """Raise ``error`` (an ``Error`` from :func:`checkify`) inside a checkified function.

    Outside ``checkify`` it raises at once when ``error`` holds a failure; inside, the failure
    is merged into the enclosing ``Error``, which is how the result of one checkified call is
    passed on through another.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> def f(x):
    ...     brainstate.transform.check(x != 0, "x is zero")
    ...     return 1 / x
    >>> inner = brainstate.transform.checkify(f)
    >>> def outer(x):
    ...     err, y = inner(x)
    ...     brainstate.transform.check_error(err)
    ...     return y
    >>> err, _ = brainstate.transform.checkify(outer)(jnp.array(0.0))
    >>> err.get().startswith("x is zero")
    True
    """
    if not isinstance(error, _cfy.Error):
        raise TypeError(
            f"check_error expects the Error returned by checkify, got "
            f"{type(error).__name__}. Use check(pred, msg) to assert a condition."
        )
    _cfy.check_error(error)


def _check_errors(errors: Any) -> frozenset:
    """``errors`` as a frozenset of checkify error classes, or a TypeError naming the sets."""
    if isinstance(errors, (set, frozenset)):
        bad = [e for e in errors if e not in all_checks]
        if not bad:
            return frozenset(errors)
        got = f"a set holding {bad[0]!r}"
    else:
        got = f"{errors!r} ({type(errors).__name__})"
    raise TypeError(
        f"checkify: errors must be a set of error categories, got {got}. Use one of "
        f"brainstate.transform.{{{', '.join(_CATEGORIES)}}} or a union of them, e.g. "
        "user_checks | nan_checks."
    )


def checkify(fun: Callable, errors: Any = user_checks) -> Callable:
    """Turn ``fun``'s run-time checks into an ``Error`` value returned with its output.

    A state-aware ``jax.experimental.checkify.checkify``. The returned function returns
    ``(error, out)``: ``error.get()`` is None when every check passed, else the message of the
    first failure; ``error.throw()`` raises it. Checks are functional, so they work under
    ``jit``, ``vmap``, ``grad`` and the loops, with no host callback.

    Parameters
    ----------
    fun : callable
        The function; it may read and write states and call :func:`check`.
    errors : frozenset
        The categories to check: :data:`user_checks` (the default: :func:`check` calls),
        :data:`nan_checks`, :data:`div_checks` (division by zero),
        :data:`index_checks` (out-of-bounds indexing), :data:`float_checks`,
        :data:`automatic_checks`, :data:`all_checks`, or a union of them.

    Returns
    -------
    callable
        ``(*args, **kwargs) -> (error, out)``. States ``fun`` writes are written back.

    Raises
    ------
    TypeError
        If ``fun`` is not callable or ``errors`` is not a set of error categories.

    Notes
    -----
    Differs from upstream: the function is traced once per call signature and the trace
    reused (upstream re-traces it twice on every call), ``errors`` is validated, and a state
    written under a raw ``jax`` transform raises the package's tracer-leak error from the
    write-back, as every other transform here does.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> total = brainstate.State(jnp.zeros(()))
    >>> def add(x):
    ...     brainstate.transform.check(x >= 0, "negative input")
    ...     total.value = total.value + x
    ...     return total.value
    >>> checked = brainstate.transform.checkify(add)
    >>> err, out = checked(jnp.array(2.0))
    >>> err.get() is None, float(total.value)
    (True, 2.0)
    >>> err, out = checked(jnp.array(-1.0))
    >>> err.get().startswith("negative input")
    True
    """
    if not callable(fun):
        raise TypeError(f"checkify needs a callable, got {type(fun).__name__}.")
    errors = _check_errors(errors)
    sf = StatefulFunction(fun, name="checkify")
    checked_of = PerEntry(lambda pure: _cfy.checkify(pure, errors=errors))

    def checked(*args: Any, **kwargs: Any) -> tuple:
        key_leaves = sf.key_and_leaves(args, kwargs)
        entry = sf.entry(args, kwargs, key_leaves)
        err, (out, written) = checked_of(entry)(_core.gather(entry.states),
                                                list(key_leaves[1]))
        _core.scatter(entry.write_states, written)
        return err, out

    functools.update_wrapper(checked, fun, updated=())
    checked.stateful_fun = sf  # type: ignore[attr-defined]
    return checked
