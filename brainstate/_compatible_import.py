"""One import point for the JAX internals that brainstate-based packages use.

Names come from public JAX modules where JAX offers them (``jax.extend.core``,
``jax.extend.backend``, ``jax.extend.linear_util``, ``jax.core``); small utilities that JAX
dropped from ``jax.util`` (``safe_map``, ``safe_zip``, ``unzip2``, ``wraps``) are defined here.
The batching internals (``make_iota``, ``to_elt``, ``BatchTracer``, ``BatchTrace``) exist only in
JAX's private modules; they are imported on first access, so this module still imports when a
JAX release moves them, and only the code that needs them fails, with a message saying so.

Examples
--------
>>> from brainstate._compatible_import import safe_zip, unzip2
>>> safe_zip([1, 2], 'ab')
[(1, 'a'), (2, 'b')]
>>> unzip2([(1, 'a'), (2, 'b')])
((1, 2), ('a', 'b'))
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

import jax
from jax import Device
from jax.extend.backend import get_backend
from jax.extend.core import (
    ClosedJaxpr,
    DropVar,
    Jaxpr,
    JaxprEqn,
    Literal,
    Primitive,
    Var,
    get_opaque_trace_state,
    jaxpr_as_fun,
)
from jax.extend.linear_util import wrap_init

try:
    from jax.core import Tracer
except ImportError:  # pragma: no cover - a JAX that dropped the public alias
    from brainstate._jax_internals import jax_core as _jax_core

    Tracer = _jax_core.Tracer  # type: ignore[misc]  # same class, from JAX's private module

__all__ = [
    # IR
    "DropVar",
    "ClosedJaxpr",
    "Var",
    "JaxprEqn",
    "Jaxpr",
    "Literal",
    "Tracer",
    # batching (private JAX modules, imported on first access)
    "make_iota",
    "to_elt",
    "BatchTracer",
    "BatchTrace",
    # utilities
    "safe_map",
    "safe_zip",
    "unzip2",
    "wraps",
    "fun_name",
    # others
    "is_jit_primitive",
    "Primitive",
    "extend_axis_env_nd",
    "jaxpr_as_fun",
    "get_aval",
    "to_concrete_aval",
    "Device",
    "wrap_init",
    "get_backend",
    "get_opaque_trace_state",
]

T = TypeVar("T")
T1 = TypeVar("T1")
T2 = TypeVar("T2")

# Names only JAX's private batching module provides (through brainstate._jax_internals).
_PRIVATE = ("make_iota", "to_elt", "BatchTracer", "BatchTrace")


def __getattr__(name: str):
    if name not in _PRIVATE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from brainstate._jax_internals import batching

    try:
        value = getattr(batching, name)
    except AttributeError as e:
        raise ImportError(
            f"brainstate._compatible_import.{name} needs {name} from JAX's private batching "
            f"module, which JAX {jax.__version__} does not provide ({e}). Use a JAX release in the "
            "range brainstate supports."
        ) from e
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_PRIVATE))


# --- avals -------------------------------------------------------------------------------------


def get_aval(x) -> Any:
    """Return the abstract value (``ShapedArray`` etc.) of ``x``, traced or concrete."""
    return jax.typeof(x)


def to_concrete_aval(x) -> Any:
    """Return the concrete value behind a tracer when JAX knows it, else the abstract value of ``x``.

    Notes
    -----
    Differs from upstream: upstream converted ``x`` to its abstract value first and so never
    reached its tracer branch; here a tracer with a known value returns that value.
    """
    if isinstance(x, Tracer):
        value = x.to_concrete_value()
        return jax.typeof(x) if value is None else value
    return jax.typeof(x)


def is_jit_primitive(eqn: JaxprEqn) -> bool:
    """Return whether a jaxpr equation is a ``jit`` call (named ``pjit`` before JAX 0.7).

    Raises
    ------
    TypeError
        If ``eqn`` is not a ``JaxprEqn``.
    """
    if not isinstance(eqn, JaxprEqn):
        raise TypeError(f"is_jit_primitive expects a JaxprEqn, got {type(eqn).__name__}.")
    return eqn.primitive.name in ("jit", "pjit")


@contextmanager
def extend_axis_env_nd(name_size_pairs: Iterable[tuple[Hashable, int]]):
    """Within the block, the named axes ``(name, size)`` are bound, as under ``vmap(axis_name=)``.

    Uses JAX's private trace context (no public equivalent exists).
    """
    from brainstate._jax_internals import jax_core  # the axis environment of the trace context

    ctx = jax_core.trace_ctx
    prev = ctx.axis_env
    ctx.set_axis_env(prev.extend_pure(tuple(name_size_pairs)))
    try:
        yield
    finally:
        ctx.set_axis_env(prev)


# --- utilities formerly in jax.util --------------------------------------------------------------


def _check_lengths(fname: str, seqs: list) -> None:
    lengths = [len(s) for s in seqs]
    if len(set(lengths)) > 1:
        raise ValueError(f"{fname}: arguments have different lengths {lengths}; they must all "
                         "have the same length.")


def safe_map(f: Callable, *args: Iterable) -> list:
    """``list(map(f, *args))``, but all ``args`` must have the same length.

    Raises
    ------
    ValueError
        If the lengths differ.

    Notes
    -----
    Differs from upstream: a length mismatch raises ``ValueError`` (upstream used ``assert``,
    which ``python -O`` removes).
    """
    seqs = [list(a) for a in args]
    _check_lengths("safe_map", seqs)
    return list(map(f, *seqs))


def safe_zip(*args: Iterable) -> list:
    """``list(zip(*args))``, but all ``args`` must have the same length.

    Raises
    ------
    ValueError
        If the lengths differ.
    """
    seqs = [list(a) for a in args]
    _check_lengths("safe_zip", seqs)
    return list(zip(*seqs))


def unzip2(xys: Iterable[tuple[T1, T2]]) -> tuple[tuple[T1, ...], tuple[T2, ...]]:
    """Split an iterable of pairs into a tuple of firsts and a tuple of seconds.

    Raises
    ------
    ValueError
        If an element is not a pair.
    """
    xs: list = []
    ys: list = []
    for x, y in xys:
        xs.append(x)
        ys.append(y)
    return tuple(xs), tuple(ys)


def fun_name(fun: Callable) -> str:
    """Return ``fun.__name__``, looking through ``functools.partial``."""
    name = getattr(fun, "__name__", None)
    if name is not None:
        return name
    if isinstance(fun, partial):
        return fun_name(fun.func)
    return "<unnamed function>"


def wraps(wrapped: Callable, namestr: str | None = None, docstr: str | None = None,
          **kwargs) -> Callable[[T], T]:
    """Like :func:`functools.wraps`, with format strings for the new name and docstring.

    Parameters
    ----------
    wrapped : callable
        The function being wrapped.
    namestr : str, optional
        New ``__name__``; ``{fun}`` is the wrapped function's name.
    docstr : str, optional
        New ``__doc__``; ``{fun}``, ``{doc}`` and ``kwargs`` are substituted.

    Examples
    --------
    >>> def f(): pass
    >>> @wraps(f, namestr='jit({fun})')
    ... def g(): pass
    >>> g.__name__, g.__wrapped__ is f
    ('jit(f)', True)
    """

    def decorate(fun: T) -> T:
        name = fun_name(wrapped)
        doc = getattr(wrapped, "__doc__", "") or ""
        new_doc = doc if docstr is None else docstr.format(fun=name, doc=doc, **kwargs)
        target: Any = fun  # any object: its metadata attributes are set dynamically
        try:
            target.__dict__.update(getattr(wrapped, "__dict__", {}))
            target.__annotations__ = dict(getattr(wrapped, "__annotations__", {}))
            target.__name__ = name if namestr is None else namestr.format(fun=name)
            target.__module__ = getattr(wrapped, "__module__", "<unknown module>")
            target.__doc__ = new_doc
            target.__qualname__ = getattr(wrapped, "__qualname__", target.__name__)
            target.__wrapped__ = wrapped
        except (AttributeError, TypeError):
            pass  # objects with read-only metadata (builtins) are returned as they are
        return fun

    return decorate
