"""``nn.Param`` and ``nn.Const``: constrained parameters with an optional prior.

A :class:`Param` keeps an unconstrained array ``theta`` in a :class:`~brainstate.ParamState`
(``param.val``, what an optimizer moves) and exposes the constrained value
``t.forward(theta)`` through :meth:`Param.value`. A prior (:class:`Regularization`) attached
with ``reg=`` is evaluated on the constrained value by :meth:`Param.reg_loss`.

Caching: :meth:`Param.cache` stores the constrained value, :meth:`Param.value` returns it while
valid, and any write to ``val`` (``set_value``, a direct ``val.value = ...``, a transform writing
the state back) drops it through a ``write_after`` hook named ``'param_cache_invalidator'``.
The cache fields are invisible to the graph (not split, merged, cloned or pickled): a Param
rebuilt by ``clone``/``treefy_merge``/``deepcopy``/``pickle`` gets its own lock, an empty cache
and its own invalidator on its own ``val``.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from brainstate import environ
from brainstate._hooks import HookHandle
from brainstate._jax_internals import jax_core as _jax_core
from brainstate._state import ParamState, State
from brainstate.nn._module import Module
from brainstate.nn._regularization import Regularization
from brainstate.nn._constraints import IdentityT, Transform

__all__ = ["Param", "Const"]

_HOOK_NAME = "param_cache_invalidator"
_HOOK_PRIORITY = 100

#: Attributes that belong to one Param object, never to its graph (see the module docstring).
_CACHE_ATTRS = (
    "_cache_lock",
    "_cache_entry",
    "_cache_logger",
    "_cache_invalidation_hook_handle",
    "_cache_hooked_state",
)


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _has_tracer(tree: Any) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(tree))


def _trace_alive(trace: Any) -> bool:
    """Whether ``trace`` is the current JAX trace or one it is nested in."""
    t = _jax_core.trace_ctx.trace
    while t is not None:
        if t is trace:
            return True
        t = getattr(t, "parent_trace", None)
    return False


class _CacheInvalidator:
    """The ``write_after`` callback: drops its Param's cache when the Param's own ``val`` changes.

    Holds the Param weakly (a state kept alive elsewhere does not keep its Param alive), and
    ignores writes to a state that is no longer the Param's ``val`` (a hook carried over by
    ``treefy_merge(copy_hooks=True)`` onto a clone's state).
    """

    __slots__ = ("owner", "__weakref__")

    def __init__(self, owner: "Param") -> None:
        self.owner = weakref.ref(owner)

    def __call__(self, ctx: Any) -> None:
        p = self.owner()
        if p is not None and ctx.state is p.__dict__.get("val"):
            p._on_param_state_write(ctx)

    def __repr__(self) -> str:
        p = self.owner()
        return f"<param cache invalidator of {type(p).__name__ if p is not None else 'dead'} " \
               f"Param at {id(p):#x}>"


def _label(p: "Param") -> str:
    name = p.__dict__.get("_name")
    return f"{type(p).__name__} {name!r}" if name else type(p).__name__


class Param(Module):
    """A parameter with a constraint transform and an optional prior.

    Parameters
    ----------
    value : array_like
        The initial *constrained* value (converted to the default float dtype). It must lie in
        the range of ``t`` and have a finite pre-image.
    t : Transform, default IdentityT()
        Maps the unconstrained ``val`` onto the constrained value.
    reg : Regularization, optional
        A prior evaluated on the constrained value by :meth:`reg_loss`.
    precompute : callable, optional
        Applied to ``t.forward(val)`` by :meth:`value` and :meth:`cache`.
    fit : bool, default True
        Trainable: ``val`` is a ``ParamState``. With ``False`` it is a plain array (a static
        attribute of the graph, invisible to ``states()`` and transforms).
    enable_cache_logging : bool, default False
        Log cache hits and invalidations at INFO on ``brainstate.nn.Param.<name or id>``.
    name : str, optional
        A display name (used in error messages and the logger name).

    Raises
    ------
    AssertionError
        ``precompute`` is neither ``None`` nor callable.
    TypeError
        ``t`` is not a ``Transform``.
    ValueError
        ``reg`` is not a ``Regularization``; ``value`` is outside the range of ``t``; the
        inverse of ``t`` is not finite at ``value``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> from brainstate.nn import Param, SoftplusT, L2Reg
    >>> tau = Param(jnp.array([1.0, 2.0]), t=SoftplusT(0.0), reg=L2Reg(0.1))
    >>> [round(v, 4) for v in tau.value().tolist()]
    [1.0, 2.0]
    >>> round(float(tau.reg_loss()), 4)
    0.5
    >>> tau.set_value(jnp.array([3.0, 4.0]))
    >>> [round(v, 4) for v in tau.value().tolist()]
    [3.0, 4.0]
    """

    __module__ = "brainstate.nn"

    graph_invisible_attrs = _CACHE_ATTRS

    # Class-level defaults: a Param rebuilt by the graph starts from these until ``val`` is set.
    _cache_lock: Any = None
    _cache_entry: tuple | None = None  # (value, trace or None); one attribute: atomic reads
    _cache_logger: logging.Logger | None = None
    _cache_invalidation_hook_handle: HookHandle | None = None
    _cache_hooked_state: State | None = None
    _enable_cache_logging: bool = False

    def __init__(self, value: Any, t: Transform = IdentityT(), reg: Regularization | None = None,
                 precompute: Callable | None = None, fit: bool = True,
                 enable_cache_logging: bool = False, name: str | None = None) -> None:
        super().__init__(name=name)
        assert precompute is None or callable(precompute), \
            'precompute must be a callable function or None.'
        if not (reg is None or isinstance(reg, Regularization)):
            raise ValueError(
                f"Regularization must be None or instance of Regularization. But got "
                f"{type(reg).__name__} {reg!r}; pass e.g. reg=brainstate.nn.L2Reg(0.01)."
            )
        if not isinstance(t, Transform):
            raise TypeError(
                f"t must be an instance of Transform. But got {type(t)}. Pass e.g. "
                "t=brainstate.nn.SoftplusT(0.0) for a positive parameter."
            )
        self.fit = bool(fit)
        self.t = t
        self.reg = reg
        self.precompute = precompute
        self._enable_cache_logging = bool(enable_cache_logging)
        self.__dict__["_cache_lock"] = threading.RLock()
        theta = self._to_unconstrained(value, None, "initial value")
        # __setattr__ registers the invalidator on a ParamState.
        self.val = ParamState(theta) if self.fit else theta

    # -- graph and pickling support --

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "val":
            # Also reached when the graph rebuilds a Param (clone, treefy_merge, deepcopy): the
            # new object must own its lock, its cache and the invalidator on its new state.
            self._attach_val(value)
        elif name in ("t", "precompute"):
            self._invalidate("attribute_change")

    def _attach_val(self, val: Any) -> None:
        d = self.__dict__
        if d.get("_cache_lock") is None:
            d["_cache_lock"] = threading.RLock()
        with d["_cache_lock"]:
            d["_cache_entry"] = None
            old_state = d.get("_cache_hooked_state")
            if old_state is val:
                return
            old = d.get("_cache_invalidation_hook_handle")
            if old is not None:
                old.remove()
            d["_cache_invalidation_hook_handle"] = None
            d["_cache_hooked_state"] = None
            if isinstance(val, State):
                d["_cache_invalidation_hook_handle"] = self._register_invalidator(val)
                d["_cache_hooked_state"] = val

    def _register_invalidator(self, st: State) -> HookHandle:
        # A state reused across rebuilds (treefy_merge with an index_ref_cache) may still carry
        # this Param's invalidator: adopt it instead of stacking a second one per merge.
        for hook in st.list_hooks("write_after"):
            cb = hook.callback
            if isinstance(cb, _CacheInvalidator) and cb.owner() is self:
                return HookHandle(weakref.ref(st.hooks), hook, "write_after")
        return st.register_hook("write_after", _CacheInvalidator(self), priority=_HOOK_PRIORITY,
                                name=_HOOK_NAME)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in _CACHE_ATTRS}

    def __setstate__(self, state: dict) -> None:
        val = state.get("val")
        self.__dict__.update(state)
        if "val" in state:
            self._attach_val(val)

    # -- values --

    def _to_unconstrained(self, value: Any, like: Any, what: str) -> Any:
        """Validate a constrained value and return ``t.inverse(value)``; changes nothing."""
        dtype = environ.dftype() if like is None else jnp.result_type(like)
        try:
            y = jnp.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{_label(self)}: the {what} must be a number or an array of numbers, got "
                f"{type(value).__name__} {value!r}."
            ) from exc
        msg = self.t.domain_error(y)
        if msg is not None:
            raise ValueError(f"{_label(self)}: the {what} is outside the range of t. {msg}")
        try:
            theta = self.t.inverse(y)
        except Exception as exc:
            exc.add_note(f"(while {_label(self)} mapped its {what} through {self.t!r}.inverse)")
            raise
        self._check_preimage(y, theta, what)
        if like is not None:
            self._check_shape(theta, like, what)
        return theta

    def _check_preimage(self, y: Any, theta: Any, what: str) -> None:
        if _has_tracer(theta) or _is_tracer(y):
            return
        th = np.asarray(theta)
        yy = np.asarray(y)
        bad_th = ~np.isfinite(th)
        if not bad_th.any():
            return
        # A non-finite pre-image of a finite value cannot be trained (inverse undefined there,
        # or the value sits on an open bound of the range). Non-finite values that map to
        # themselves (IdentityT of inf/NaN) are the user's choice and pass.
        if th.shape == yy.shape:
            bad = bad_th & np.isfinite(yy)
            if not bad.any():
                return
            shown = ", ".join(str(v) for v in yy[bad].reshape(-1)[:5])
            count = f"{int(bad.sum())} of {bad.size}"
        else:
            if not np.isfinite(yy).all():
                return
            shown = ", ".join(str(v) for v in yy.reshape(-1)[:5])
            count = f"{int(bad_th.sum())} of {th.size} unconstrained"
        raise ValueError(
            f"{_label(self)}: the inverse of {self.t!r} is not finite at {count} entries of the "
            f"{what} (entries [{shown}]); such a value sits on the boundary of the range or "
            f"outside the domain of the inverse, and cannot be stored or trained. Pass a value "
            f"strictly inside the range of t."
        )

    def _check_shape(self, theta: Any, like: Any, what: str) -> None:
        got, want = jnp.shape(theta), jnp.shape(like)
        if got != want:
            raise ValueError(
                f"{_label(self)}: cannot write a {what} whose unconstrained form has shape "
                f"{got}; the parameter's unconstrained shape is {want} (constrained shape "
                f"{jnp.shape(self.t.forward(like))}). Pass a value of the parameter's "
                f"constrained shape."
            )

    def value(self) -> Any:
        """The constrained value ``precompute(t.forward(val))``; the cached one while valid.

        A method, not a property. Outside :meth:`cache`/``param_precompute`` it is recomputed
        on every call and not stored (so inside ``jit``/``grad`` it reads ``val`` and
        gradients reach it).
        """
        entry = self._cache_entry
        if entry is not None:
            trace = entry[1]
            # A value cached under a trace that has ended would leak a dead tracer: drop it.
            if trace is None or _trace_alive(trace):
                if self._enable_cache_logging:
                    self._log_cache_event("hit")
                return entry[0]
            self._drop_entry(entry, "stale_tracer")
        x = self.val
        if isinstance(x, State):
            x = x.value
        y = self.t.forward(x)
        if self.precompute is not None:
            y = self.precompute(y)
        return y

    def set_value(self, value: Any) -> None:
        """Write a new constrained value: ``val = t.inverse(value)``.

        The value is checked first (range of ``t``, finite pre-image, shape) and nothing
        changes when a check fails. Trainable params write ``val.value`` (hooks, tracing and
        the signature check apply); non-trainable ones rebind ``val``.
        """
        current = self.val
        like = current.value if isinstance(current, State) else current
        theta = self._to_unconstrained(value, like, "new value")
        self._invalidate("set_value")
        if isinstance(current, State):
            current.value = theta
        else:
            self.val = theta

    def reg_loss(self) -> Any:
        """The prior's penalty on the constrained value (``0.0`` if not fit or no ``reg``)."""
        if not self.fit or self.reg is None:
            return 0.0
        return self.reg.loss(self.value())

    def reset_to_prior(self) -> None:
        """Write the prior's ``reset_value()`` (broadcast to the constrained shape), if ``reg`` is set.

        Upstream writes the prior as returned, which would change a shape-``(n,)`` state into a
        scalar; broadcasting keeps the state's signature.
        """
        if self.reg is None:
            return
        prior = jnp.asarray(self.reg.reset_value())
        shape = jnp.shape(self.value())
        try:
            prior = jnp.broadcast_to(prior, shape)
        except ValueError as exc:
            raise ValueError(
                f"{_label(self)}: the prior value of {type(self.reg).__name__} has shape "
                f"{prior.shape}, which does not broadcast to the parameter's shape {shape}. "
                "Give the regularizer hyper-parameters of a broadcastable shape."
            ) from exc
        self.set_value(prior)

    def clip(self, min_val: Any = None, max_val: Any = None) -> None:
        """Clamp the constrained value in place to ``[min_val, max_val]``."""
        self.set_value(jnp.clip(self.value(), min_val, max_val))

    # -- cache --

    def cache(self) -> Any:
        """Compute the constrained value, store it as the cache and return it.

        Recomputes even when the cache is valid. Inside a traced function the cached value is
        a tracer of that trace; it is never returned once that trace has ended.
        """
        with self._cache_lock:
            x = self.val
            if isinstance(x, State):
                x = x.value
            y = self.t.forward(x)
            if self.precompute is not None:
                y = self.precompute(y)
            trace = _jax_core.trace_ctx.trace if _has_tracer(y) else None
            self.__dict__["_cache_entry"] = (y, trace)
            self._log_cache_event("manual_cache")
            return y

    def clear_cache(self) -> None:
        """Drop the cached value (the next :meth:`value` recomputes)."""
        self._invalidate("manual_clear")

    @property
    def cache_stats(self) -> dict:
        """``{'valid': bool, 'has_cached_value': bool}``."""
        with self._cache_lock:
            valid = self._cache_entry is not None
            return {"valid": valid, "has_cached_value": valid}

    @property
    def _cache_valid(self) -> bool:
        return self._cache_entry is not None

    @property
    def _cached_value(self) -> Any:
        entry = self._cache_entry
        return None if entry is None else entry[0]

    def _invalidate(self, reason: str) -> None:
        lock = self.__dict__.get("_cache_lock")
        if lock is None:  # still being built or rebuilt: nothing cached yet
            return
        with lock:
            if self.__dict__.get("_cache_entry") is not None:
                self.__dict__["_cache_entry"] = None
                self._log_cache_event("invalidate", reason=reason)

    def _drop_entry(self, entry: tuple, reason: str) -> None:
        with self._cache_lock:
            if self._cache_entry is entry:
                self.__dict__["_cache_entry"] = None
                self._log_cache_event("invalidate", reason=reason)

    def _on_param_state_write(self, ctx: Any) -> None:
        """Invalidate the cache when the underlying ``ParamState`` is written."""
        self._invalidate("state_write")

    # -- logging --

    def _get_logger(self) -> logging.Logger:
        logger = self._cache_logger
        if logger is None:
            logger = logging.getLogger(f"brainstate.nn.Param.{self._name or id(self)}")
            self.__dict__["_cache_logger"] = logger
        return logger

    def _log_cache_event(self, event: str, **kwargs: Any) -> None:
        if not self._enable_cache_logging:
            return
        who = self._name or id(self)
        if event == "hit":
            text = f"Cache HIT for Param '{who}'"
        elif event == "manual_cache":
            text = f"Cache FILLED for Param '{who}'"
        else:
            text = f"Cache INVALIDATED for Param '{who}' (reason: {kwargs.get('reason')})"
        self._get_logger().info(text)

    # -- display --

    def __pretty_repr_item__(self, name: str, value: Any) -> tuple | None:
        if name in ("_enable_cache_logging", "precompute"):
            return None
        return super().__pretty_repr_item__(name, value)

    # -- construction helper --

    @classmethod
    def init(cls, data: Any, sizes: Any = None, allow_none: bool = True,
             **param_kwargs: Any) -> "Param | None":
        """Make a parameter from an initializer, a value or an existing ``Param``.

        Parameters
        ----------
        data : None, callable, number, array or Param
            ``None`` gives ``None`` (if ``allow_none``); a callable is called as
            ``data(sizes, **param_kwargs)``; a number or an array becomes a :class:`Const`; a
            ``Param`` is returned as it is.
        sizes : int or sequence of int, optional
            The expected shape; the value's shape must broadcast against it (trailing
            dimensions).
        allow_none : bool, default True
        **param_kwargs
            Passed to a callable ``data``.
        """
        if data is None:
            if allow_none:
                return None
            raise ValueError(
                "Expect a parameter with type of float, ArrayType, Initializer, or Callable "
                "function, but we got None. Pass a value or allow_none=True."
            )
        if sizes is not None:
            sizes = _to_size(sizes)
        if not isinstance(data, Param):
            if callable(data):
                assert sizes is not None, \
                    'When the parameter is a callable function, the size must be provided.'
                data = data(sizes, **param_kwargs)
            if not (np.isscalar(data) and not isinstance(data, (str, bytes))) and \
                    not isinstance(data, (np.ndarray, jax.Array)):
                raise TypeError(
                    f"Unknown parameter type: {type(data)}. Pass a number, an array, a callable "
                    "initializer or a Param."
                )
            data = Const(data)
        if sizes is not None:
            _check_shape(data.value(), sizes)
        return data


class Const(Param):
    """A non-trainable parameter: a :class:`Param` with ``fit=False``.

    Its ``val`` is a plain array (no ``ParamState``, no hook), so ``states(ParamState)`` and
    optimizers never see it; ``reg_loss()`` is ``0.0`` even with a ``reg``; ``t`` still applies.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> c = brainstate.nn.Const(jnp.array([1.0, 2.0]))
    >>> c.value().tolist(), c.fit
    ([1.0, 2.0], False)
    """

    __module__ = "brainstate.nn"

    def __init__(self, value: Any, **param_kwargs: Any) -> None:
        if param_kwargs.pop("fit", False):
            raise ValueError(
                "Const parameters must be non-trainable (fit=False). Use "
                "brainstate.nn.Param(value, fit=True) for a trainable parameter."
            )
        super().__init__(value, fit=False, **param_kwargs)


# --- helpers of Param.init ---------------------------------------------------------------------


def _to_size(x: Any) -> tuple | None:
    if isinstance(x, (tuple, list)):
        return tuple(x)
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return (int(x),)
    if x is None:
        return None
    raise ValueError(f"Cannot make a size for {x!r}; give an int or a sequence of ints.")


def _are_broadcastable_shapes(shape1: Sequence[int], shape2: Sequence[int]) -> bool:
    """Whether the trailing dimensions of the two shapes agree or one of them is 1."""
    for d1, d2 in zip(tuple(shape1)[::-1], tuple(shape2)[::-1]):
        if d1 != d2 and 1 not in (d1, d2):
            return False
    return True


def _check_shape(init: Any, sizes: tuple) -> None:
    shape = tuple(jnp.shape(init))
    if not _are_broadcastable_shapes(shape, sizes):
        raise ValueError(
            f"The shape of the parameter {shape} does not match with the given size "
            f"{tuple(sizes)}; they must broadcast (trailing dimensions equal or 1)."
        )


def _expand_params_to_match_sizes(params: Any, sizes: Sequence[int]) -> Any:
    """Prepend unit axes to ``params`` until it has as many dimensions as ``sizes``."""
    params = jnp.asarray(params)
    for _ in range(len(sizes) - params.ndim):
        params = jnp.expand_dims(params, axis=0)
    return params
