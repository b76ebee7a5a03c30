"""``nn.Module``: the base class of models, a graph node with state and sub-module queries."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from brainstate._state import NewStateCatcher, ParamState, catch_new_states
from brainstate.graph import MAX_INT, Node, nodes, states, treefy_states
from brainstate.mixin import ParamDesc

__all__ = ["Module"]


def _dotted(path: tuple, prefix: str = "") -> str:
    name = ".".join(str(p) for p in path)
    if prefix:
        return f"{prefix}.{name}" if name else prefix
    return name


def _describe(module: Any) -> str:
    """``Kind(name='x')`` or ``Kind at 0x...``: how error messages name a module."""
    name = getattr(module, "name", None)
    kind = type(module).__name__
    return f"{kind}(name={name!r})" if name is not None else f"{kind} at {hex(id(module))}"


def _param_type() -> type:
    """``nn.Param`` (imported lazily: ``nn._param`` builds on this module)."""
    from brainstate.nn._param import Param

    return Param


def _as_size(value: Any, what: str) -> tuple:
    if isinstance(value, int):
        return (value,)
    if isinstance(value, (tuple, list)):
        return tuple(value)
    raise TypeError(
        f"Invalid type of {what}: {type(value).__name__}; give an int or a sequence of ints."
    )


class Module(Node, ParamDesc):
    """The base class of models: a graph node with queries over its states and sub-modules.

    Sub-modules, states and other attributes are plain attributes; the graph functions of
    :mod:`brainstate.graph` see them. ``module(x)`` calls :meth:`update`, and so does
    ``x >> module``. ``Cls.desc(*args, **kwargs)`` (from :class:`~brainstate.mixin.ParamDesc`)
    gives a deferred constructor.

    Parameters
    ----------
    name : str, optional
        A display name (read-only afterwards).

    Notes
    -----
    ``name``, ``in_size`` and ``out_size`` default to class attributes (``None``) and are
    stored on the instance only when set, so a module without them adds nothing to its graph.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Linear(brainstate.nn.Module):
    ...     def __init__(self, n_in, n_out):
    ...         super().__init__()
    ...         self.in_size, self.out_size = n_in, n_out
    ...         self.w = brainstate.ParamState(jnp.zeros((n_in, n_out)))
    ...     def update(self, x):
    ...         return x @ self.w.value
    >>> layer = Linear(2, 3)
    >>> layer(jnp.ones(2)).shape, layer.in_size
    ((3,), (2,))
    >>> list(layer.states(brainstate.ParamState))
    [('w',)]
    """

    __module__ = "brainstate.nn"

    _name: str | None = None
    _in_size: tuple | None = None
    _out_size: tuple | None = None

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            assert isinstance(name, str), f"The name must be a string, but we got {type(name)}: {name}"
            self._name = name

    # -- names and sizes --

    @property
    def name(self) -> str | None:
        """The module's name (``None`` when unnamed); read-only."""
        return self._name

    @name.setter
    def name(self, name: Any) -> None:
        raise AttributeError(
            f"The name of the module is read-only (it is {self._name!r}); give it to the "
            "constructor: Module(name=...)."
        )

    @property
    def in_size(self) -> tuple | None:
        """The input size, normalised to a tuple (``None`` when unset)."""
        return self._in_size

    @in_size.setter
    def in_size(self, in_size: int | Sequence[int]) -> None:
        self._in_size = _as_size(in_size, "in_size")

    @property
    def out_size(self) -> tuple | None:
        """The output size, normalised to a tuple (``None`` when unset)."""
        return self._out_size

    @out_size.setter
    def out_size(self, out_size: int | Sequence[int]) -> None:
        self._out_size = _as_size(out_size, "out_size")

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails. A public attribute missing from a module
        # whose class creates states in init_state is most often a state not created yet:
        # say so, instead of the bare "object has no attribute".
        attr = getattr(type(self), name, None)
        if attr is not None and hasattr(attr, "__get__"):
            # a property whose getter raised AttributeError: re-raise that error, not ours
            return object.__getattribute__(self, name)
        if name.startswith("_") or type(self).init_state is Module.init_state:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        raise AttributeError(
            f"{_describe(self)} has no attribute {name!r}. If it is a state that "
            f"{type(self).__name__}.init_state creates, the module has not been initialised: "
            "call brainstate.nn.init_all_states(model) before using it.", name=name, obj=self)

    # -- calling --

    def update(self, *args: Any, **kwargs: Any) -> Any:
        """The module's computation; subclasses implement it."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement update(...): Module.__call__ forwards to it."
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.update(*args, **kwargs)

    def __rrshift__(self, other: Any) -> Any:
        """``x >> module`` is ``module(x)``."""
        return self.__call__(other)

    # -- state and node queries --

    def states(self, *filters: Any, allowed_hierarchy: tuple = (0, MAX_INT)) -> Any:
        """The live states of this module and its sub-modules (see :func:`brainstate.graph.states`).

        Parameters
        ----------
        *filters
            Optional filters (e.g. ``ParamState``); 0 or 1 filter gives one ``FlattedDict``,
            ``n >= 2`` a tuple of ``n``.
        allowed_hierarchy : (int, int), default (0, MAX_INT)
            Depth bounds: states held by this module are at depth 0, by a direct sub-module at 1.
        """
        return states(self, *filters, allowed_hierarchy=allowed_hierarchy)

    def state_trees(self, *filters: Any) -> Any:
        """The ``TreefyState`` snapshots nested by path (see :func:`brainstate.graph.treefy_states`)."""
        return treefy_states(self, *filters)

    def nodes(self, *filters: Any, allowed_hierarchy: tuple = (0, MAX_INT)) -> Any:
        """The graph nodes below and including this module (see :func:`brainstate.graph.nodes`)."""
        return nodes(self, *filters, allowed_hierarchy=allowed_hierarchy)

    def named_children(self) -> Iterator[tuple]:
        """Yield ``(dotted_name, module)`` for the direct sub-modules (e.g. ``'layers.0'``)."""
        for path, node in nodes(self, Module, allowed_hierarchy=(1, 1)).items():
            yield _dotted(path), node

    def children(self) -> Iterator["Module"]:
        """Yield the direct sub-modules."""
        for _, node in self.named_children():
            yield node

    def named_modules(self, prefix: str = "", include_self: bool = True) -> Iterator[tuple]:
        """Yield ``(dotted_name, module)`` for this module (named ``prefix``) and every sub-module.

        This module comes first, then the sub-modules children-first; each module once.
        """
        found = nodes(self, Module)
        if include_self:
            yield prefix, self
        for path, node in found.items():
            if path:
                yield _dotted(path, prefix), node

    def modules(self, include_self: bool = True) -> Iterator["Module"]:
        """Yield this module (unless ``include_self=False``) and every sub-module, once each."""
        for _, module in self.named_modules(include_self=include_self):
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple]:
        """Yield ``(dotted_name, ParamState)`` for the trainable states.

        Parameters
        ----------
        prefix : str, default ''
            Prepended to every name (joined with ``.``).
        recurse : bool, default True
            All depths; with ``False`` only states held by direct child nodes (depth 1, e.g. the
            ``val`` of a ``Param`` held by this module), not states held by this module itself
            (upstream behaviour).
        """
        hierarchy = (0, MAX_INT) if recurse else (1, 1)
        for path, st in states(self, ParamState, allowed_hierarchy=hierarchy).items():
            yield _dotted(path, prefix), st

    def parameters(self, recurse: bool = True) -> Iterator[ParamState]:
        """Yield the trainable states (see :meth:`named_parameters`)."""
        for _, st in self.named_parameters(recurse=recurse):
            yield st

    # -- parameter modules (nn.Param) --

    def named_param_modules(self, allowed_hierarchy: tuple = (0, MAX_INT)) -> Iterator[tuple]:
        """Yield ``(dotted_name, param)`` for every ``nn.Param`` (and ``nn.Const``) node, once each.

        Depth counts graph nodes: params held by this module are at depth 1.
        """
        for path, param in nodes(self, _param_type(), allowed_hierarchy=allowed_hierarchy).items():
            yield _dotted(path), param

    def param_modules(self, allowed_hierarchy: tuple = (0, MAX_INT)) -> Iterator[Any]:
        """Yield every ``nn.Param`` node (see :meth:`named_param_modules`)."""
        for _, param in self.named_param_modules(allowed_hierarchy):
            yield param

    def reg_loss(self) -> Any:
        """The sum of ``p.reg_loss()`` over every param at any depth (``0.0`` when none)."""
        total: Any = 0.0
        for param in self.param_modules():
            total = total + param.reg_loss()
        return total

    @contextlib.contextmanager
    def param_precompute(self, allowed_hierarchy: tuple = (0, MAX_INT)) -> Iterator[None]:
        """Cache every param's value in the block; clear the caches on exit (also on error).

        Inside a traced function, use it there (a value cached outside a trace is a constant
        inside it). Depth: params held by this module are at 1, so ``(1, 1)`` caches only them.
        """
        params = list(self.param_modules(allowed_hierarchy))
        try:
            for param in params:
                param.cache()
            yield
        finally:
            for param in params:
                param.clear_cache()

    # -- state initialisation --

    def init_state(self, *args: Any, **kwargs: Any) -> None:
        """Create the module's states (no-op here; models override it)."""

    def reset_state(self, *args: Any, **kwargs: Any) -> None:
        """Reset the module's states (no-op here; models override it)."""

    def init_all_states(self, *args: Any, state_tag: str | None = None,
                        **kwargs: Any) -> NewStateCatcher:
        """Call ``init_state(*args, **kwargs)`` on every module, children first.

        As :func:`brainstate.nn.init_all_states` (``call_order`` levels respected), but
        returning what was created.

        Returns
        -------
        NewStateCatcher
            The states created meanwhile (tagged ``state_tag`` when given).
        """
        # Imported here: the collective operations build on this module.
        from brainstate.nn._collective_ops import call_all_fns

        with catch_new_states(state_tag) as catcher:
            call_all_fns(self, "init_state", args, kwargs)
        return catcher

    # -- display --

    def __pretty_repr_item__(self, name: str, value: Any) -> tuple | None:
        if value is None:
            return None
        if name.startswith("_"):
            return name[1:], value
        return name, value
