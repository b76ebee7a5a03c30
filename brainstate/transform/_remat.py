"""``checkpoint`` / ``remat``: rematerialise a stateful function's intermediates under autodiff.

The function is traced once per call signature (``StatefulFunction``); its jaxpr is then
evaluated as a pure function of ``(state values, dynamic arguments)`` inside
``jax.checkpoint``, so the states it reads are inputs of the checkpointed computation and the
states it writes are outputs written back after the call (``_make_jaxpr.pure_of``, the pure
form ``checkify`` and ``debug_nan`` run too).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax

from brainstate.typing import Missing
from brainstate._impl import core as _core
from brainstate.transform._make_jaxpr import PerEntry, StatefulFunction

__all__ = ["checkpoint", "remat"]


_Missing = Missing()  # "no function given" (upstream passes its own Missing(): equal)


def _check_static_argnums(static_argnums: Any) -> tuple:
    if static_argnums is None:
        return ()
    nums = (static_argnums,) if isinstance(static_argnums, int) else static_argnums
    try:
        nums = tuple(nums)
    except TypeError:
        raise TypeError(
            "checkpoint: static_argnums must be an int or a sequence of ints, got "
            f"{static_argnums!r} ({type(static_argnums).__name__})."
        ) from None
    for n in nums:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(
                f"checkpoint: static_argnums must contain ints, got {n!r} "
                f"({type(n).__name__}) in {static_argnums!r}."
            )
        if n < 0:
            raise ValueError(
                f"checkpoint: negative static_argnums are not supported, got {static_argnums!r}. "
                "Count positional arguments from 0 (e.g. static_argnums=1 for the second)."
            )
    return nums


def checkpoint(fun: Any = _Missing, *, prevent_cse: bool = True,
               policy: Callable[..., bool] | None = None, static_argnums: Any = (),
               static_argnames: Any = ()) -> Any:
    """Recompute ``fun``'s intermediate values in the backward pass instead of storing them.

    A state-aware ``jax.checkpoint`` (``jax.remat``): reverse-mode differentiation of the
    returned function saves only what ``policy`` allows (by default, only the inputs) and
    recomputes the rest, trading compute for memory. States the function reads are inputs of
    the checkpointed computation; states it writes are written back after each call. Usable as
    ``@checkpoint``, ``@checkpoint(...)`` or ``checkpoint(f, ...)``; ``remat`` is the same
    function.

    Parameters
    ----------
    fun : callable
        The function (a module instance works too).
    prevent_cse : bool
        Keep XLA from merging the recomputation with the forward pass (default True). False
        is safe, and faster, inside ``scan``/``for_loop`` bodies.
    policy : callable, optional
        A ``jax.checkpoint_policies`` member choosing which intermediates may be saved, e.g.
        ``jax.checkpoint_policies.dots_with_no_batch_dims_saveable``. None saves nothing but
        the inputs.
    static_argnums, static_argnames : int or str, or sequences of them
        Arguments passed as Python values (hashed into the trace cache) instead of traced, for
        Python control flow on them. Indices are non-negative.

    Returns
    -------
    callable
        The checkpointed function (or a decorator when ``fun`` is omitted).

    Raises
    ------
    TypeError
        If ``fun`` is not callable or ``static_argnums`` is not ints.
    ValueError
        If ``static_argnums`` holds a negative index.

    Notes
    -----
    Differs from upstream: ``static_argnames`` is accepted as well, and the traced jaxpr and
    its checkpointed form are cached per call signature instead of rebuilt by every call.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> w = brainstate.ParamState(jnp.array(2.0))
    >>> @brainstate.transform.checkpoint
    ... def block(x):
    ...     return jnp.sin(w.value * x)
    >>> g = brainstate.transform.grad(lambda x: block(x), grad_states=w)
    >>> float(g(1.0)) == float(jnp.cos(2.0))
    True
    """
    if isinstance(fun, Missing):
        return lambda f: checkpoint(f, prevent_cse=prevent_cse, policy=policy,
                                    static_argnums=static_argnums,
                                    static_argnames=static_argnames)
    if not callable(fun):
        raise TypeError(f"checkpoint needs a callable, got {type(fun).__name__}.")
    if policy is not None and not callable(policy):
        raise TypeError(
            f"checkpoint: policy must be a callable from jax.checkpoint_policies or None, got "
            f"{type(policy).__name__}."
        )
    nums = _check_static_argnums(static_argnums)
    sf = StatefulFunction(fun, nums, static_argnames, name="checkpoint")
    remat_of = PerEntry(lambda pure: jax.checkpoint(pure, prevent_cse=prevent_cse,
                                                    policy=policy))

    def checkpointed(*args: Any, **kwargs: Any) -> Any:
        key_leaves = sf.key_and_leaves(args, kwargs)
        entry = sf.entry(args, kwargs, key_leaves)
        out, written = remat_of(entry)(_core.gather(entry.states), list(key_leaves[1]))
        _core.scatter(entry.write_states, written)
        return out

    functools.update_wrapper(checkpointed, fun, updated=())
    checkpointed.stateful_fun = sf  # type: ignore[attr-defined]
    return checkpointed


remat = checkpoint
