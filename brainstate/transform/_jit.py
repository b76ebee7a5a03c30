"""``jit``: compile a function that reads and writes states."""

from __future__ import annotations

import functools
import types
from typing import Any, Callable, Concatenate, Generic, ParamSpec, TypeVar, overload

from brainstate.typing import Missing
from brainstate.transform._make_jaxpr import (_DISABLE_JIT, LeafSpans, StatefulFunction,
                                              outer_frames_untouched)

__all__ = ["jit"]


_Missing = Missing()  # "no function given" (upstream passes its own Missing(): equal)

P = ParamSpec("P")  # the compiled function's parameters
R = TypeVar("R")  # its return type
_S = TypeVar("_S")  # the instance a jitted method binds to
_P = ParamSpec("_P")  # a jitted method's parameters after ``self``


def _normalize_nums(nums: Any, what: str) -> tuple:
    if nums is None:
        return ()
    nums = (nums,) if isinstance(nums, int) else tuple(nums)
    for n in nums:
        if n < 0:
            raise ValueError(
                f"{what} must be non-negative, got {n}: negative indices would address the "
                "hidden state argument."
            )
    return nums


class JittedFunction(Generic[P, R]):
    """The callable ``jit`` returns: traced once per call signature, states threaded through.

    Generic in the wrapped function's parameters and return type, for type checkers:
    ``jit(f)`` is called as ``f`` is and returns what ``f`` returns.
    """

    __module__ = "brainstate.transform"

    def __init__(self, fun: Callable[P, R], *, static_argnums: Any, static_argnames: Any,
                 donate_argnums: Any, donate_argnames: Any, in_shardings: Any,
                 out_shardings: Any, keep_unused: bool, device: Any, backend: Any,
                 inline: bool, name: str | None, jax_kwargs: dict) -> None:
        self.origin_fun = fun
        static_argnums = _normalize_nums(static_argnums, "static_argnums")
        self._donate = _normalize_nums(donate_argnums, "donate_argnums")
        self._donate_names = (donate_argnames,) if isinstance(donate_argnames, str) \
            else tuple(donate_argnames or ())
        kw = dict(keep_unused=keep_unused, inline=inline, **jax_kwargs)
        if device is not None:
            kw["device"] = device
        if backend is not None:
            kw["backend"] = backend
        if out_shardings is not None:
            kw["out_shardings"] = (out_shardings, None)
        if in_shardings is not None and not isinstance(in_shardings, (tuple, list)):
            raise NotImplementedError(
                "jit(in_shardings=...) takes a tuple or list with one entry per positional "
                f"argument, got {type(in_shardings).__name__}."
            )
        self._in_shardings = in_shardings
        per_leaf = self._donate or self._donate_names or in_shardings is not None
        self.stateful_fun = StatefulFunction(fun, static_argnums, static_argnames or (),
                                             name=name or "jit", jit_kwargs=kw,
                                             jit_argmap=self._argmap if per_leaf else None)
        self.jitted_fun = self
        functools.update_wrapper(self, fun, updated=())

    def _argmap(self, spans: LeafSpans) -> dict:
        """Per-leaf donation and input shardings for the compiled ``pure(states, *leaves)``.

        ``spans`` are those of the call being compiled (argument 0 of ``pure`` is the list of
        state values, hence the ``+ 1``).
        """
        out: dict = {}
        if self._donate or self._donate_names:
            donate: list[int] = []
            for i, (lo, hi) in spans.args.items():
                if i in self._donate:
                    donate.extend(range(lo + 1, hi + 1))
            for k, (lo, hi) in spans.kwargs.items():
                if k in self._donate_names:
                    donate.extend(range(lo + 1, hi + 1))
            out["donate_argnums"] = tuple(donate)
        if self._in_shardings is not None:
            shardings = [None] * (spans.n + 1)
            for i, (lo, hi) in spans.args.items():
                if i < len(self._in_shardings):
                    for j in range(lo, hi):
                        shardings[j + 1] = self._in_shardings[i]
            out["in_shardings"] = tuple(shardings)
        return out

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if _DISABLE_JIT.value:
            return self.origin_fun(*args, **kwargs)
        return self.stateful_fun.call(args, kwargs)

    @overload
    def __get__(self, obj: None, owner: Any = None) -> JittedFunction[P, R]: ...
    @overload
    def __get__(self: JittedFunction[Concatenate[_S, _P], R], obj: _S,
                owner: Any = None) -> Callable[_P, R]: ...
    def __get__(self, obj: Any, owner: Any = None) -> Any:
        # a class attribute binds like the function it wraps (upstream's jit returns a plain
        # function; brainpy's cls_jit relies on it): ``obj.step(x)`` calls with ``obj`` first
        return self if obj is None else types.MethodType(self, obj)

    def clear_cache(self) -> None:
        """Drop every traced and compiled computation."""
        self.stateful_fun.clear_cache()

    # --- ahead-of-time helpers: compile if needed, never write states back ---

    def _aot_args(self, args: tuple, kwargs: dict):
        sf = self.stateful_fun
        keyed = sf.key_and_leaves(args, kwargs)
        with outer_frames_untouched():
            entry = sf.entry(args, kwargs, keyed)
        vals = [st._value for st in entry.states]
        fn = sf.compiled(entry, sf.leaf_spans(args, kwargs))
        leaves = keyed[1]
        return fn, vals, [*leaves, *entry.hoisted]

    def eval_shape(self, *args: Any, **kwargs: Any) -> Any:
        """The output's shapes and dtypes (``jax.ShapeDtypeStruct`` objects); states untouched."""
        with outer_frames_untouched():
            entry = self.stateful_fun.entry(args, kwargs)
        return entry.out_shapes[0]

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """``jax.stages.Lowered`` of the compiled computation; states untouched."""
        fn, vals, leaves = self._aot_args(args, kwargs)
        return fn.lower(vals, *leaves)

    def trace(self, *args: Any, **kwargs: Any) -> Any:
        """``jax.stages.Traced`` of the compiled computation; states untouched."""
        fn, vals, leaves = self._aot_args(args, kwargs)
        return fn.trace(vals, *leaves)

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        """``jax.stages.Compiled`` of the computation; states untouched."""
        return self.lower(*args, **kwargs).compile()


@overload
def jit(fun: Callable[P, R], in_shardings: Any = None, out_shardings: Any = None,
        static_argnums: Any = None, donate_argnums: Any = None, static_argnames: Any = None,
        donate_argnames: Any = None, keep_unused: bool = False, device: Any = None,
        backend: Any = None, inline: bool = False, name: str | None = None,
        **jax_jit_kwargs: Any) -> JittedFunction[P, R]: ...
@overload
def jit(fun: Missing = ..., in_shardings: Any = None, out_shardings: Any = None,
        static_argnums: Any = None, donate_argnums: Any = None, static_argnames: Any = None,
        donate_argnames: Any = None, keep_unused: bool = False, device: Any = None,
        backend: Any = None, inline: bool = False, name: str | None = None,
        **jax_jit_kwargs: Any) -> Callable[[Callable[P, R]], JittedFunction[P, R]]: ...
def jit(fun: Any = _Missing, in_shardings: Any = None, out_shardings: Any = None,
        static_argnums: Any = None, donate_argnums: Any = None, static_argnames: Any = None,
        donate_argnames: Any = None, keep_unused: bool = False, device: Any = None,
        backend: Any = None, inline: bool = False, name: str | None = None,
        **jax_jit_kwargs: Any) -> Any:
    """Compile ``fun`` with ``jax.jit``, threading the states it reads and writes through.

    The function is traced once per abstract call signature: every state it reads becomes an
    input of the compiled computation, every state it writes an output written back after each
    call. Writes are checked against the states' signatures while tracing, so calls pay no
    per-state check. Usable as ``@jit``, ``@jit(...)`` or ``jit(f, ...)``.

    Arrays the function captures without receiving them (module attributes, closure
    variables) larger than :func:`set_jit_const_threshold` (1 MiB by default) are passed to
    the compiled program at each call instead of being embedded in it, so compile time and
    program size do not grow with them; smaller ones stay constants. This includes arrays
    captured by ``for_loop``, ``scan``, ``grad``, ... traced inside the function.

    Parameters
    ----------
    fun : callable
        The function to compile.
    static_argnums, static_argnames : optional
        Arguments hashed into the cache key instead of traced (must be hashable).
    donate_argnums, donate_argnames : optional
        Arguments whose buffers XLA may reuse (state buffers are never donated).
    in_shardings : tuple or list, optional
        One sharding per positional argument.
    out_shardings, keep_unused, device, backend, inline, **jax_jit_kwargs
        Passed to ``jax.jit``; ``compiler_options`` (a dict of XLA options) among them, for
        example :func:`simulation_options` for simulation loops on CPU.

    Returns
    -------
    JittedFunction or decorator
        The compiled function (a decorator when ``fun`` is omitted). Type checkers see
        ``jit(f)`` as ``JittedFunction[P, R]`` for ``f: Callable[P, R]``: its calls are
        checked against ``f``'s parameters and return ``f``'s return type, also as a method.

    Notes
    -----
    Differs from upstream: brainstate 0.5.4 embeds every captured array as a constant.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> count = brainstate.State(jnp.zeros(()))
    >>> @brainstate.transform.jit
    ... def step(x):
    ...     count.value = count.value + x
    ...     return count.value * 2
    >>> float(step(1.0)), float(count.value)
    (2.0, 1.0)
    """
    def make(f: Callable[P, R]) -> JittedFunction[P, R]:
        return JittedFunction(
            f, static_argnums=static_argnums, static_argnames=static_argnames,
            donate_argnums=donate_argnums, donate_argnames=donate_argnames,
            in_shardings=in_shardings, out_shardings=out_shardings, keep_unused=keep_unused,
            device=device, backend=backend, inline=inline, name=name,
            jax_kwargs=jax_jit_kwargs)

    if isinstance(fun, Missing):
        return make
    return make(fun)
