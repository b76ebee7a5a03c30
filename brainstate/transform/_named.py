"""``named_scope`` and ``named_call``: names for a function's computation in jaxprs and HLO.

Both run the function inside ``jax.named_scope``, so its equations carry the name in their
name stack (``eqn.source_info.name_stack``) and the compiled program's op metadata
(``op_name``), where profilers and HLO dumps show it. ``named_scope`` also compiles the
function with :func:`jit` when the ``ir_compilation`` environment setting is on.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax

from brainstate import environ
from brainstate.transform._jit import jit

__all__ = ["named_scope", "named_call"]


def _check_name(where: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{where}: name must be a non-empty str, got {name!r}.")
    return name


def _argnums(where: str, nums: Any, n_args: int) -> tuple:
    """``nums`` as a tuple of non-negative indices (negatives count from the end)."""
    if nums is None:
        return ()
    nums = (nums,) if isinstance(nums, int) else tuple(nums)
    out = []
    for i in nums:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"{where}: static_argnums must be ints, got {i!r}.")
        j = i + n_args if i < 0 else i
        if not 0 <= j < n_args:
            raise ValueError(f"{where}: static_argnums index {i} is out of range for a call "
                             f"with {n_args} positional arguments.")
        out.append(j)
    return tuple(sorted(set(out)))


def _argnames(where: str, names: Any) -> tuple:
    if names is None:
        return ()
    names = (names,) if isinstance(names, str) else tuple(names)
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"{where}: static_argnames must be strs, got {n!r}.")
    return tuple(sorted(set(names)))


def _scoped(fn: Callable, name: str, static_argnums: Any, static_argnames: Any) -> Callable:
    """The wrapper behind :func:`named_scope` (one ``jit`` per static configuration)."""
    where = f"named_scope({name!r})"
    jitted: dict = {}

    def compiled(args: tuple, kwargs: dict) -> Callable:
        nums = static_argnums(*args, **kwargs) if callable(static_argnums) else static_argnums
        names = static_argnames(*args, **kwargs) if callable(static_argnames) \
            else static_argnames
        key = (_argnums(where, nums, len(args)), _argnames(where, names))
        f = jitted.get(key)
        if f is None:
            f = jitted[key] = jit(fn, static_argnums=key[0], static_argnames=key[1], name=name)
        return f

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with jax.named_scope(name):
            if environ.get("ir_compilation", False):
                return compiled(args, kwargs)(*args, **kwargs)
            return fn(*args, **kwargs)

    functools.update_wrapper(wrapper, fn, updated=())  # a module's __dict__ stays its own
    wrapper.fn = fn  # type: ignore[attr-defined]
    wrapper._jit_cache = jitted  # type: ignore[attr-defined]
    return wrapper


def fn_to_call(fn: Callable, name: str, static_argnums: Any = None,
               static_argnames: Any = None) -> Callable:
    """``named_scope(name, static_argnums, static_argnames)(fn)``, the wrapper built directly."""
    _check_name("named_scope", name)
    if not callable(fn):
        raise TypeError(f"named_scope({name!r}) needs a callable, got {type(fn).__name__}.")
    return _scoped(fn, name, static_argnums, static_argnames)


def named_scope(name: str, static_argnums: int | Sequence[int] | Callable | None = None,
                static_argnames: str | Sequence[str] | Callable | None = None
                ) -> Callable[[Callable], Callable]:
    """Decorator: run the function under the name ``name``; compile it under ``ir_compilation``.

    The function's equations carry ``name`` in their name stack and in the compiled program's
    op metadata. When the environment setting ``ir_compilation`` is on
    (``brainstate.environ.context(ir_compilation=True)``), the function is also compiled with
    :func:`jit` (one compiled function per static configuration); otherwise it is called
    directly. Works on methods: the instance is argument 0, so under ``ir_compilation`` mark it
    static (``static_argnums=0``).

    Parameters
    ----------
    name : str
        The scope name.
    static_argnums : int, sequence of int, or callable, optional
        Positional arguments treated as static by the ``jit`` (negative indices count from the
        end); a callable ``f(*args, **kwargs)`` computes them per call.
    static_argnames : str, sequence of str, or callable, optional
        Keyword arguments treated as static; a callable computes them per call.

    Returns
    -------
    callable
        A decorator. The wrapped function keeps ``fn`` (the original) as an attribute.

    Raises
    ------
    TypeError
        If ``name`` is not a non-empty str, or a static index / name has the wrong type.
    ValueError
        If a static index is out of range for the call (under ``ir_compilation``).

    Notes
    -----
    Differs from upstream: the name is applied (``jax.named_scope``) whether or not
    ``ir_compilation`` is on; upstream only names the function through ``jit`` when it is.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> @brainstate.transform.named_scope("layer")
    ... def layer(x):
    ...     return jnp.tanh(x)
    >>> jaxpr = jax.make_jaxpr(layer)(1.0)
    >>> str(jaxpr.jaxpr.eqns[0].source_info.name_stack)
    'layer'
    """
    _check_name("named_scope", name)
    return lambda fn: fn_to_call(fn, name, static_argnums, static_argnames)


def named_call(fun: Callable | None = None, *, name: str | None = None) -> Callable:
    """Run ``fun`` under a name (its ``__name__`` by default), visible in jaxprs and HLO.

    Only names: no compilation, no change to how states are read or written, so it composes
    with every transform. Usable as ``@named_call``, ``@named_call(name=...)`` or
    ``named_call(f, name=...)``.

    Parameters
    ----------
    fun : callable, optional
        The function; omitted, a decorator is returned.
    name : str, optional
        The name; defaults to ``fun.__name__`` (the class name for other callables).

    Raises
    ------
    TypeError
        If ``fun`` is not callable or ``name`` is not a non-empty str.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> @brainstate.transform.named_call(name="block")
    ... def block(x):
    ...     return jnp.sin(x) * 2.0
    >>> str(jax.make_jaxpr(block)(1.0).jaxpr.eqns[0].source_info.name_stack)
    'block'
    """
    if name is not None:
        _check_name("named_call", name)

    def wrap(f: Callable) -> Callable:
        if not callable(f):
            raise TypeError(f"named_call needs a callable, got {type(f).__name__}.")
        scope = name if name is not None else getattr(f, "__name__", type(f).__name__)

        def named(*args: Any, **kwargs: Any) -> Any:
            with jax.named_scope(scope):
                return f(*args, **kwargs)

        return functools.update_wrapper(named, f, updated=())

    return wrap if fun is None else wrap(fun)
