"""Derivatives with respect to states and arguments: the engine and the first-order gradients.

Every derivative transform of the package (``grad``, ``vector_grad``, ``fwd_grad`` here,
``jacrev``/``jacfwd``/``hessian`` and ``vjp``/``jvp`` next door) shares one core: the function
is traced once per call signature (``StatefulFunction``), and :func:`_pure_function` turns the
traced jaxpr into a pure function of ``(grad state values, differentiated arguments)``. States the
function only reads are threaded through as constants; the values of states it writes come out
as auxiliary output and are written back once per call. A JAX-style transform
(``jax.grad``, ``jax.jacrev``, ...) is then applied to that pure function.

Wrap in ``jit`` for speed: ``jit(grad(loss, grad_states=params))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, NamedTuple, overload

import jax
import jax.numpy as jnp
from jax.extend.core import jaxpr_as_fun

from brainstate.typing import Missing
from brainstate import _units
from brainstate._impl import core as _core
from brainstate._state import State
from brainstate.transform._make_jaxpr import StatefulFunction

__all__ = ["GradientTransform", "grad", "vector_grad", "fwd_grad"]


_Missing = Missing()  # "no function given" (upstream passes its own Missing(): equal)


# --- argument checks -------------------------------------------------------------------------

def _check_argnums(argnums: Any, has_states: bool, where: str = "grad") -> tuple[tuple, bool]:
    """``(argnums as a tuple, whether a single int was given)``; refuses negatives and repeats.

    Negative indices are refused (rather than counted from the end) because the number of
    positional arguments is only known at call time, after the transform was built.
    """
    if argnums is None:
        return ((), False) if has_states else ((0,), True)
    single = not isinstance(argnums, (tuple, list))
    nums = (argnums,) if single else tuple(argnums)
    for n in nums:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(
                f"{where}: argnums must be a non-negative int or a sequence of them, got "
                f"{argnums!r}. Use the index of the positional argument, e.g. argnums=0."
            )
    if len(set(nums)) != len(nums):
        raise ValueError(
            f"{where}: argnums {argnums!r} names an argument twice; each positional argument "
            "can be differentiated once."
        )
    return nums, single


def _check_argnums_in_range(argnums: tuple, nargs: int, where: str) -> None:
    for n in argnums:
        if n >= nargs:
            raise ValueError(
                f"{where}: argnums contains {n}, but only {nargs} positional arguments were "
                "given."
            )


def _flatten_grad_states(grad_states: Any, where: str = "grad") -> tuple[list, Any]:
    """``(states, treedef)`` of ``grad_states``: States are the leaves; each state once."""
    if grad_states is None:
        return [], None
    if isinstance(grad_states, Mapping) and not isinstance(grad_states, dict):
        grad_states = dict(grad_states)
    leaves, treedef = jax.tree_util.tree_flatten(grad_states,
                                                 is_leaf=lambda x: isinstance(x, State))
    seen: set = set()
    for leaf in leaves:
        if not isinstance(leaf, State):
            raise TypeError(
                f"{where}: All grad_states must be State instances, got "
                f"{type(leaf).__name__}. Pass the states (e.g. model.states(ParamState)), not "
                "their values."
            )
        if id(leaf) in seen:
            # two slots for one value: the derivative would be split between them
            raise ValueError(f"{where}: grad_states contains {leaf!r} more than once.")
        seen.add(id(leaf))
    return leaves, treedef


def _check_kwargs(kwargs: dict, where: str) -> bool:
    """The ``debug_nan`` flag from the extra keywords; any other keyword is an error."""
    unknown = sorted(set(kwargs) - {"debug_nan"})
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword arguments {unknown}.")
    return bool(kwargs.get("debug_nan", False))


# --- the shared core -------------------------------------------------------------------------

class _Pure(NamedTuple):
    """A traced call turned pure: ``fun(*primals) -> (primary, (primary, aux, written))``."""

    fun: Callable
    primals: tuple
    entry: Any


def _pure_function(sf: StatefulFunction, args: tuple, kwargs: dict, states: list,
                   states_tree: Any, argnums: tuple, has_aux: bool, check_states: bool,
                   where: str) -> _Pure:
    """Trace ``sf`` for this call and return it as a pure function of its primals.

    The primals are ``(grad state values, *differentiated arguments)`` (without the first when
    no states are asked for). The grad state values come in the container shape of
    ``grad_states``, so the derivatives of every JAX transform come out in that shape too (and
    a Hessian's blocks nest it twice). The pure function returns the primary output (the first
    of ``(out, aux)`` with ``has_aux``) and, as auxiliary output, ``(primary, aux, written
    state values)``.
    """
    entry = sf.entry(args, kwargs)
    if has_aux:
        out = entry.out_shapes[0]
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(
                f"{where}: with has_aux=True the function must return a pair (output, aux), "
                f"got {type(out).__name__}. Return `loss, aux`, or pass has_aux=False."
            )
    _check_argnums_in_range(argnums, len(args), where)
    slots = _state_slots(entry, states, check_states, where)
    current = _core.gather(entry.states)
    fn = jaxpr_as_fun(entry.jaxpr)
    out_treedef, widx = entry.out_treedef, entry.write_idx
    n_s = 1 if states else 0

    def pure(*primals: Any) -> tuple:
        call_args = list(args)
        for n, a in zip(argnums, primals[n_s:]):
            call_args[n] = a
        leaves = sf.key_and_leaves(tuple(call_args), kwargs)[1]
        svals = list(current)
        if n_s:
            for slot, v in zip(slots, states_tree.flatten_up_to(primals[0])):
                if slot is not None:
                    svals[slot] = v
        flat = fn(*leaves, *jax.tree_util.tree_leaves(svals))
        out, new_svals = jax.tree_util.tree_unflatten(out_treedef, flat)
        primary, aux = (out[0], out[1]) if has_aux else (out, None)
        return primary, (primary, aux, [new_svals[i] for i in widx])

    primals = tuple(args[n] for n in argnums)
    if n_s:
        values = [st._value for st in states]
        primals = (jax.tree_util.tree_unflatten(states_tree, values),) + primals
    return _Pure(pure, primals, entry)


def _state_slots(entry: Any, states: list, check_states: bool, where: str) -> list:
    """For each grad state, its index among the traced states (None when never used)."""
    index = {id(st): i for i, st in enumerate(entry.states)}
    slots = []
    for st in states:
        i = index.get(id(st))
        if i is None and check_states:
            raise ValueError(
                f"{where}: the grad state {st!r} (created at {st._source_info}) is not used by the "
                "function being differentiated, so its derivative would be zero. Pass "
                "check_states=False to get zeros instead."
            )
        slots.append(i)
    return slots


def _transform_argnums(n_states: int, n_args: int, single: bool) -> Any:
    """The ``argnums`` handed to the JAX-style transform over the pure function's primals."""
    if not n_args:
        return 0
    if n_states:
        return tuple(range(n_args + 1))
    return 0 if single else tuple(range(n_args))


def _split_state_and_arg_grads(g: Any, single: bool, out_levels: int, in_levels: int,
                               out_treedef: Any, primals: tuple) -> Any:
    """Regroup the flat ``(d_states, d_arg0, d_arg1, ...)`` tuples as ``(d_states, d_args)``.

    Jacobians nest the input structure under the output structure (``out_levels`` = 1). A
    Hessian (``in_levels`` = 2) is a Jacobian of the gradient: its rows are a flat tuple over
    the primals, each holding that primal's pytree whose leaves are flat tuples over the
    primals again (the columns); both tuples are regrouped.
    """

    def regroup(x: Any) -> Any:
        return (x[0], x[1]) if single else (x[0], tuple(x[1:]))

    def regroup_levels(x: Any) -> Any:
        if in_levels == 1:
            return regroup(x)
        rows = []
        for row, primal in zip(x, primals):
            td: Any = jax.tree_util.tree_structure(primal)  # a PyTreeDef (untyped in jaxlib)
            rows.append(td.unflatten([regroup(c) for c in td.flatten_up_to(row)]))
        return regroup(rows)

    if out_levels:
        parts = out_treedef.flatten_up_to(g)
        return out_treedef.unflatten([regroup_levels(p) for p in parts])
    return regroup_levels(g)


def _has_bad(tree: Any) -> Any:
    """A scalar: whether any inexact leaf of ``tree`` holds a NaN or an Inf."""
    bad = jnp.array(False)
    for leaf in jax.tree_util.tree_leaves(tree):
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.inexact):
            bad = bad | ~jnp.all(jnp.isfinite(leaf))
    return bad


def _check_nan(tree: Any, what: str) -> None:
    """Raise ``FloatingPointError`` when ``tree`` has a NaN/Inf: eagerly, or from compiled code."""
    bad = _has_bad(tree)
    msg = (f"{what} contains NaN or Inf (debug_nan=True). Check the function for divisions by "
           "zero, logs or square roots of non-positive values, or overflow.")
    if isinstance(bad, jax.core.Tracer):
        from brainstate.transform._error_if import jit_error_if

        def fail() -> None:
            raise FloatingPointError(msg)

        jit_error_if(bad, fail)
    elif bool(bad):
        raise FloatingPointError(msg)


# --- JAX-style transforms of our own ----------------------------------------------------------

def _select(fun: Callable, primals: tuple, argnums: Any) -> tuple[Callable, tuple]:
    """``(g, diff)``: ``g(*diff)`` calls ``fun`` with the ``argnums`` primals replaced."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    def g(*diff: Any) -> Any:
        full = list(primals)
        for n, d in zip(nums, diff):
            full[n] = d
        return fun(*full)

    return g, tuple(primals[n] for n in nums)


def _vector_grad(fun: Callable, argnums: Any = 0, has_aux: bool = False) -> Callable:
    """``jax.grad``-like, seeding every output element with a cotangent of one."""

    def run(*primals: Any) -> Any:
        g, diff = _select(fun, primals, argnums)
        if has_aux:
            out, pull, aux = jax.vjp(g, *diff, has_aux=True)
        else:
            out, pull = jax.vjp(g, *diff)
        grads = pull(jax.tree.map(jnp.ones_like, out))
        grads = grads[0] if isinstance(argnums, int) else grads
        return (grads, aux) if has_aux else grads

    return run


def _fwd_grad(fun: Callable, argnums: Any = 0, has_aux: bool = False,
              tangent_size: int | None = None, drct_der_clip: float | None = None,
              key: Any = None) -> Callable:
    """``jax.grad``-like forward-mode estimate ``v (v . grad)`` over random normal tangents."""
    if tangent_size is not None and (isinstance(tangent_size, bool)
                                     or not isinstance(tangent_size, int) or tangent_size < 1):
        raise ValueError(f"fwd_grad: tangent_size must be a positive int or None, got "
                         f"{tangent_size!r}.")

    def run(*primals: Any) -> Any:
        g, diff = _select(fun, primals, argnums)
        tangents = _random_tangents(diff, tangent_size, key)
        push = (lambda t: jax.jvp(g, diff, t, has_aux=True)) if has_aux \
            else (lambda t: jax.jvp(g, diff, t) + (None,))
        if tangent_size is None:
            out, d, aux = push(tangents)
        else:
            # the primal output and aux do not depend on the tangent: unbatched
            out, d, aux = jax.vmap(push, out_axes=(None, 0, None))(tangents)
        if jnp.shape(out) != ():
            raise ValueError(
                "fwd_grad only supports functions with a scalar output, got an output of shape "
                f"{jnp.shape(out)}. Use vector_grad, jacfwd or jacrev for non-scalar outputs."
            )
        if drct_der_clip is not None:
            d = jnp.clip(d, -drct_der_clip, drct_der_clip)
        if tangent_size is None:
            grads = jax.tree.map(lambda v: v * d, tangents)
        else:
            grads = jax.tree.map(
                lambda v: jnp.mean(v * d.reshape(d.shape + (1,) * (v.ndim - 1)), axis=0),
                tangents)
        grads = grads[0] if isinstance(argnums, int) else grads
        return (grads, aux) if has_aux else grads

    return run


def _random_tangents(diff: tuple, tangent_size: int | None, key: Any) -> tuple:
    """One standard-normal tangent per leaf of ``diff`` (``tangent_size`` of them, stacked)."""
    from brainstate import random as _random
    from brainstate.random._keys import as_draw_key

    leaves, treedef = jax.tree_util.tree_flatten(diff)
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            raise TypeError(
                "fwd_grad needs inexact (floating or complex) values to differentiate, got "
                f"dtype {jnp.result_type(leaf)}. Cast integer or boolean values to a floating "
                "dtype first."
            )
    k = _random.split_key() if key is None else as_draw_key(key)
    keys = jax.random.split(k, len(leaves))
    lead = () if tangent_size is None else (tangent_size,)
    draws = [jax.random.normal(kk, lead + jnp.shape(x), jnp.result_type(x))
             for kk, x in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, draws)


# JAX-style transforms whose derivatives nest the input structure under the output structure:
# (output levels, input levels). Any other transform is taken to be gradient-like: (0, 1).
_LEVELS: dict[Callable, tuple[int, int]] = {jax.jacrev: (1, 1), jax.jacfwd: (1, 1), jax.hessian: (1, 2)}
_MODES: dict[str, Callable] = {"grad": jax.grad, "vector_grad": _vector_grad, "fwd_grad": _fwd_grad,
                "jacrev": jax.jacrev, "jacfwd": jax.jacfwd, "hessian": jax.hessian}


def _unit_aware(name: str) -> Callable:
    """brainunit's version of the transform ``name`` (its derivatives carry units)."""
    bu = _units.brainunit()
    if bu is None:
        raise ImportError(
            "unit_aware=True needs the optional package brainunit, which is not installed. "
            "Install it, or pass unit_aware=False."
        )
    fn = getattr(bu.autograd, name)
    if name in ("jacrev", "jacfwd", "hessian"):
        _LEVELS.setdefault(fn, _LEVELS[getattr(jax, name)])
    return fn


# --- the transform object --------------------------------------------------------------------

class GradientTransform:
    """Differentiate a stateful function w.r.t. chosen states and/or positional arguments.

    Parameters
    ----------
    target : callable
        The function. With ``has_aux`` it returns ``(output, aux)``.
    transform : callable or str
        A ``jax.grad``-like transform, called as ``transform(fun, argnums=..., has_aux=True,
        **transform_params)``; the function it receives takes the grad state values (in the
        shape of ``grad_states``) and then the differentiated arguments, and returns
        ``(output, aux)``. ``jax.grad``, ``jax.jacrev``, ``jax.jacfwd``, ``jax.hessian`` and
        your own gradient-like transforms all fit. (With both ``grad_states`` and ``argnums``
        the derivatives are regrouped as ``(state_grads, arg_grads)``; a transform of your own
        is taken to return one derivative per primal, as ``jax.grad`` does: wrap a
        Jacobian-style one in ``jax.jacrev``'s layout yourself, or use ``jacrev``.) Or one of the names ``"grad"``, ``"vector_grad"``,
        ``"fwd_grad"``, ``"jacrev"``, ``"jacfwd"``, ``"hessian"``.
    grad_states : State, or a sequence or mapping (nested) of States, optional
        The states to differentiate; derivatives come back in the same container shape.
    argnums : int or sequence of int, optional
        Positional arguments to differentiate (default 0 when no ``grad_states``).
    return_value : bool
        Also return the function's output.
    has_aux : bool
        The function returns ``(output, aux)``; ``aux`` is returned, not differentiated.
    transform_params : dict, optional
        Extra keyword arguments for ``transform`` (e.g. ``holomorphic``).
    check_states : bool
        When True a grad state the function never uses raises ``ValueError``; when False its
        derivative is zeros.
    debug_nan : bool
        Raise ``FloatingPointError`` when a derivative contains NaN or Inf (inside ``jit`` the
        error comes from the compiled code as JAX's runtime error).

    Returns
    -------
    Calling the object returns the derivatives: ``state_grads``, ``arg_grads`` (a tuple for a
    sequence ``argnums``), or ``(state_grads, arg_grads)`` when both are asked for; followed by
    the output with ``return_value`` and then ``aux`` with ``has_aux``, as a tuple.

    Notes
    -----
    States the function writes are written back once per call; the derivatives are never
    applied. Differs from upstream: a state listed twice in ``grad_states`` and unknown keyword
    arguments are errors; ``debug_nan`` raises ``FloatingPointError``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> w = brainstate.ParamState(jnp.array([1.0, 2.0]))
    >>> def loss(x):
    ...     return jnp.sum(w.value * x)
    >>> def scaled_grad(fun, argnums=0, has_aux=False, scale=1.0):
    ...     g = jax.grad(fun, argnums=argnums, has_aux=has_aux)
    ...     def run(*args):
    ...         grads, aux = g(*args)
    ...         return jax.tree.map(lambda t: t * scale, grads), aux
    ...     return run
    >>> gt = brainstate.transform.GradientTransform(
    ...     loss, scaled_grad, grad_states=w, transform_params={"scale": 10.0})
    >>> gt(jnp.array([3.0, 4.0]))
    Array([30., 40.], dtype=float32)
    """

    __module__ = "brainstate.transform"

    def __init__(self, target: Callable, transform: Callable | str, grad_states: Any = None,
                 argnums: Any = None, return_value: bool = False, has_aux: bool = False,
                 transform_params: dict | None = None, check_states: bool = True,
                 debug_nan: bool = False) -> None:
        if not callable(target):
            raise TypeError(f"GradientTransform needs a callable target, got "
                            f"{type(target).__name__}.")
        if isinstance(transform, str):
            if transform not in _MODES:
                raise ValueError(f"GradientTransform: unknown transform {transform!r}; use one "
                                 f"of {sorted(_MODES)} or a jax.grad-like callable.")
            self._name = transform
            fn = _MODES[transform]
        elif callable(transform):
            self._name = getattr(transform, "__name__", type(transform).__name__)
            fn = transform
        else:
            raise TypeError(f"GradientTransform: transform must be a jax.grad-like callable or "
                            f"a name, got {type(transform).__name__}.")
        self.target = target
        self.transform: Callable = fn
        self._levels = _LEVELS.get(fn, (0, 1))
        self._states, self._states_tree = _flatten_grad_states(grad_states, self._name)
        self._argnums, self._single_arg = _check_argnums(argnums, bool(self._states),
                                                         self._name)
        self.raw_argnums = argnums
        self.return_value = bool(return_value)
        self.has_aux = bool(has_aux)
        self._params = dict(transform_params or {})
        self.check_states = check_states
        self.debug_nan = debug_nan
        self.stateful_target = StatefulFunction(target, name=self._name)

    def __repr__(self) -> str:
        states = self._states if self._states_tree is None \
            else jax.tree_util.tree_unflatten(self._states_tree, self._states)
        return (f"GradientTransform(target={getattr(self.target, '__name__', self.target)!r}, "
                f"transform={self._name}, grad_states={states!r}, "
                f"argnums={self.raw_argnums!r}, return_value={self.return_value}, "
                f"has_aux={self.has_aux})")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        p = _pure_function(self.stateful_target, args, kwargs, self._states,
                           self._states_tree, self._argnums, self.has_aux, self.check_states,
                           self._name)
        n_s = 1 if self._states else 0
        tnums = _transform_argnums(n_s, len(self._argnums), self._single_arg)
        fn = self.transform(p.fun, argnums=tnums, has_aux=True, **self._params)
        grads, (value, aux, written) = fn(*p.primals)
        if self.debug_nan:  # before the write-back: a failed call leaves the states as they were
            _check_nan(grads, f"A derivative computed by {self._name}")
        _core.scatter(p.entry.write_states, written)
        if n_s and self._argnums:
            out_td = jax.tree_util.tree_structure(value)
            grads = _split_state_and_arg_grads(grads, self._single_arg, *self._levels,
                                               out_treedef=out_td, primals=p.primals)
        return _package(grads, value, aux, self.return_value, self.has_aux)


def _package(grads: Any, value: Any, aux: Any, return_value: bool, has_aux: bool) -> Any:
    """``grads``, then the value with ``return_value`` and ``aux`` with ``has_aux``."""
    if return_value and has_aux:
        return grads, value, aux
    if return_value:
        return grads, value
    if has_aux:
        return grads, aux
    return grads


def _make(fun: Any, where: str, transform: Callable | str, grad_states: Any, argnums: Any,
          return_value: bool, has_aux: Any, params: dict | None, check_states: bool,
          kwargs: dict) -> Any:
    """The transform, or a decorator making it when ``fun`` is not given."""
    debug_nan = _check_kwargs(kwargs, where)
    # validate now, so a decorator with bad arguments fails where it is written
    _check_argnums(argnums, _flatten_grad_states(grad_states, where)[0] != [], where)

    def make(f: Callable) -> GradientTransform:
        return GradientTransform(f, transform, grad_states, argnums, return_value,
                                 bool(has_aux), params, check_states, debug_nan)

    return make if isinstance(fun, Missing) else make(fun)


@overload
def grad(fun: Callable, grad_states: Any = None, argnums: Any = None,
         holomorphic: bool = False, allow_int: bool = False, has_aux: Any = None,
         return_value: bool = False, unit_aware: bool = False, check_states: bool = True,
         **kwargs: Any) -> GradientTransform: ...
@overload
def grad(fun: Missing = ..., grad_states: Any = None, argnums: Any = None,
         holomorphic: bool = False, allow_int: bool = False, has_aux: Any = None,
         return_value: bool = False, unit_aware: bool = False, check_states: bool = True,
         **kwargs: Any) -> Callable[[Callable], GradientTransform]: ...
def grad(fun: Any = _Missing, grad_states: Any = None, argnums: Any = None,
         holomorphic: bool = False, allow_int: bool = False, has_aux: Any = None,
         return_value: bool = False, unit_aware: bool = False, check_states: bool = True,
         **kwargs: Any) -> Any:
    """Gradient of a scalar stateful function w.r.t. ``grad_states`` and/or ``argnums``.

    Parameters
    ----------
    fun : callable, optional
        The function; without it ``grad(...)`` returns a decorator.
    grad_states : State, or a sequence or mapping (nested) of States, optional
        The states to differentiate; gradients come back in the same container shape.
    argnums : int or sequence of int, optional
        Positional arguments to differentiate (default 0 when no ``grad_states``).
    holomorphic, allow_int : bool
        As ``jax.grad``.
    has_aux : bool, optional
        ``fun`` returns ``(loss, aux)``.
    return_value : bool
        Also return the loss.
    unit_aware : bool
        Differentiate with brainunit (an optional package), so gradients carry units.
    check_states : bool
        Refuse a grad state ``fun`` never uses (``ValueError``); False gives it zeros.
    **kwargs
        ``debug_nan=True`` raises ``FloatingPointError`` on a NaN/Inf gradient.

    Returns
    -------
    GradientTransform
        Called like ``fun``, it returns ``grads`` (``(state_grads, arg_grads)`` when both are
        asked for), followed by the loss with ``return_value=True`` and the auxiliary output
        with ``has_aux=True``. The gradient is never applied: differentiated states change only
        if the function writes them.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> w = brainstate.ParamState(jnp.array([1.0, 2.0]))
    >>> g = brainstate.transform.grad(lambda x: jnp.sum(w.value * x), grad_states=w)
    >>> g(jnp.array([3.0, 4.0]))
    Array([3., 4.], dtype=float32)
    """
    transform = _unit_aware("grad") if unit_aware else "grad"
    return _make(fun, "grad", transform, grad_states, argnums, return_value, has_aux,
                 dict(holomorphic=holomorphic, allow_int=allow_int), check_states, kwargs)


def vector_grad(func: Any = _Missing, grad_states: Any = None, argnums: Any = None,
                return_value: bool = False, has_aux: Any = None, unit_aware: bool = False,
                check_states: bool = True, **kwargs: Any) -> Any:
    """Like :func:`grad` with a cotangent of ones: the gradient of ``sum(fun(...))``.

    It works for non-scalar outputs; for an elementwise function it is the elementwise
    derivative. Parameters and return layout are those of :func:`grad`.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.transform.vector_grad(lambda x: x ** 2)(jnp.array([1.0, 2.0, 3.0]))
    Array([2., 4., 6.], dtype=float32)
    """
    if unit_aware:
        bu_vector_grad = _unit_aware("vector_grad")

        def transform(fun: Callable, argnums: Any = 0, has_aux: bool = False) -> Callable:
            return bu_vector_grad(fun, argnums=argnums, has_aux=has_aux, unit_aware=True)

        transform.__name__ = "vector_grad"
        mode: Callable | str = transform
    else:
        mode = "vector_grad"
    return _make(func, "vector_grad", mode, grad_states, argnums, return_value, has_aux,
                 None, check_states, kwargs)


def fwd_grad(func: Any = _Missing, grad_states: Any = None, argnums: Any = None,
             return_value: bool = False, has_aux: Any = None, tangent_size: int | None = None,
             drct_der_clip: float | None = None, key: Any = None, **kwargs: Any) -> Any:
    """Forward-mode gradient estimate of a scalar function, from random tangent directions.

    For a tangent ``v`` drawn from a standard normal distribution the directional derivative
    ``d = grad . v`` is one forward pass (``jax.jvp``), and ``v * d`` is an unbiased estimate of
    the gradient. ``tangent_size`` averages that many directions.

    Parameters
    ----------
    func : callable, optional
        The function (scalar output); without it ``fwd_grad(...)`` returns a decorator.
    grad_states, argnums, return_value, has_aux
        As :func:`grad`.
    tangent_size : int, optional
        How many directions to average; None draws one.
    drct_der_clip : float, optional
        Clip each directional derivative to ``[-drct_der_clip, drct_der_clip]``.
    key : int or PRNG key, optional
        The key of the directions; None splits one off the global random state at each call
        (then each call draws new directions).
    **kwargs
        ``check_states`` and ``debug_nan``, as :func:`grad`.

    Raises
    ------
    ValueError
        At call time, when the output is not a scalar.
    TypeError
        At call time, when a differentiated value is not floating-point.

    Notes
    -----
    Differs from upstream: ``check_states`` is honoured (upstream does not take it), and
    ``tangent_size`` must be a positive int.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> f = brainstate.transform.fwd_grad(lambda x: jnp.sum(x ** 2), tangent_size=20000, key=0)
    >>> est = f(jnp.array([1.0, -2.0]))   # close to the gradient [2., -4.]
    >>> bool(jnp.allclose(est, jnp.array([2.0, -4.0]), atol=0.2))
    True
    """
    check_states = kwargs.pop("check_states", True)
    _fwd_grad(lambda: None, tangent_size=tangent_size)  # validates tangent_size now
    params = dict(tangent_size=tangent_size, drct_der_clip=drct_der_clip, key=key)
    return _make(func, "fwd_grad", "fwd_grad", grad_states, argnums, return_value, has_aux,
                 params, check_states, kwargs)
