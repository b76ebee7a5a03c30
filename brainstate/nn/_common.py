"""Container and wrapper modules: ``Sequential``, ``ElementWiseBlock``, ``EnvironContext``, ``Vmap``, ``Map``."""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable, Sequence

from brainstate import environ
from brainstate._state import NonBatchState, State
from brainstate.mixin import ParamDescriber
from brainstate.nn._module import Module
from brainstate.transform import vmap, vmap_new_states

__all__: list[str] = ["ElementWiseBlock", "Sequential", "EnvironContext", "Vmap", "Map"]


class ElementWiseBlock(Module):
    """Marker base class of modules that act on their input element by element.

    Activation functions, dropout and similar layers subclass it. It adds no behaviour:
    it only lets containers such as :class:`Sequential` recognise such layers with
    ``isinstance`` (an element-wise layer keeps the shape of its input, so it needs no
    ``in_size`` and its output size is the size it was given).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Double(brainstate.nn.ElementWiseBlock):
    ...     def update(self, x):
    ...         return 2 * x
    >>> layer = Double()
    >>> isinstance(layer, brainstate.nn.ElementWiseBlock)
    True
    >>> layer(jnp.ones(3)).tolist()
    [2.0, 2.0, 2.0]
    """

    __module__ = "brainstate.nn"


# --- Sequential ------------------------------------------------------------------------------


_NO_LAYER = object()


def _layer_name(layer: Any) -> str:
    if isinstance(layer, ParamDescriber):
        return repr(layer)
    if isinstance(layer, Module):
        return type(layer).__name__
    return getattr(layer, "__name__", type(layer).__name__)


def _sizes_agree(in_size: tuple, out_size: tuple) -> bool:
    """Whether a layer expecting ``in_size`` can follow one producing ``out_size``.

    The shorter of the two must be the trailing part of the longer one: a layer acting on the
    last axes (``in_size=(10,)``) may follow a layer that produces ``(4, 10)``.
    """
    n = min(len(in_size), len(out_size))
    return n == 0 or tuple(in_size[-n:]) == tuple(out_size[-n:])


class Sequential(Module):
    """A chain of layers: the output of each layer is the input of the next.

    The first layer must be a :class:`Module`. Each later layer may be

    - a :class:`Module`: its ``in_size`` (when set) must agree with the output size so far;
    - a :class:`~brainstate.mixin.ParamDescriber` (``Cls.desc(...)``): it is built here with
      ``in_size=`` the output size so far, which must therefore be known;
    - an :class:`ElementWiseBlock` or any other callable (``jax.nn.relu``...): it keeps the
      output size.

    ``in_size`` is the first layer's; ``out_size`` is the last known output size.

    Parameters
    ----------
    first : Module
        The first layer.
    *layers : Module, ParamDescriber or callable
        The following layers, in order.

    Raises
    ------
    ValueError
        No layer given; a describer with no known input size; a layer whose ``in_size``
        disagrees with the output size of the layer before it.
    TypeError
        The first layer is not a Module; a layer is neither a Module, a describer nor a
        callable; a describer builds something that is not a Module.

    Notes
    -----
    Differs from upstream: a layer whose ``in_size`` disagrees with the previous output size
    is refused here, naming both layers (upstream let it fail at the first call). Sizes agree
    when the shorter is the trailing part of the longer one. An exception raised by a layer
    during :meth:`update` propagates with its own type, with a note naming the failing layer
    (upstream re-raised every exception as a ``BrainStateError`` that printed the input).
    :meth:`insert` follows ``list.insert`` for negative indices (``-1`` inserts before the
    last layer, as upstream documented; upstream's code appended instead) and refuses an
    out-of-range index with ``IndexError``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> class Scale(brainstate.nn.Module):
    ...     def __init__(self, in_size, factor=2.0):
    ...         super().__init__()
    ...         self.in_size = self.out_size = in_size
    ...         self.factor = factor
    ...     def update(self, x):
    ...         return self.factor * x
    >>> net = brainstate.nn.Sequential(Scale(3), jax.nn.relu, Scale.desc(factor=-1.0))
    >>> net(jnp.asarray([1.0, -1.0, 2.0])).tolist()
    [-2.0, -0.0, -4.0]
    >>> net.in_size, net.out_size, len(net.layers)
    ((3,), (3,), 3)
    >>> type(net[1:]).__name__
    'Sequential'
    """

    __module__ = "brainstate.nn"

    def __init__(self, first: Any = _NO_LAYER, *layers: Any) -> None:
        super().__init__()
        if first is _NO_LAYER:
            raise ValueError(
                "Sequential needs at least one layer, got none. Pass the layers in order, e.g. "
                "Sequential(Linear(4, 8), jax.nn.relu, Linear(8, 2))."
            )
        self.layers: list = []
        self._set_chain([first, *layers])

    def _set_chain(self, layers: Sequence[Any]) -> None:
        """Check (and build) ``layers`` in order, then store them and the sizes."""
        first = layers[0]
        if not isinstance(first, Module):
            raise TypeError(
                f"Sequential's first layer must be a brainstate.nn.Module (it fixes the input "
                f"size), got {_layer_name(first)} of type {type(first).__name__}. Build it "
                "first (a describer needs an input size) or put a Module before it."
            )
        chain, size = [first], first.out_size
        for layer in layers[1:]:
            layer, size = self._format_layer(layer, size, chain[-1])
            chain.append(layer)
        self.layers = chain
        if first.in_size is not None:
            self.in_size = first.in_size
        if size is not None:
            self.out_size = size

    @classmethod
    def _from_layers(cls, layers: Sequence[Any]) -> "Sequential":
        """A Sequential over already-checked layers (possibly none, from an empty slice)."""
        layers = list(layers)
        if layers and isinstance(layers[0], Module):
            return cls(*layers)
        seq = cls.__new__(cls)
        Module.__init__(seq)
        seq.layers = layers
        return seq

    @staticmethod
    def _format_layer(layer: Any, in_size: tuple | None, previous: Any) -> tuple:
        """Build or check ``layer`` after ``previous`` (output size ``in_size``)."""
        if isinstance(layer, ParamDescriber):
            if in_size is None:
                raise ValueError(
                    f"Sequential cannot build {layer!r}: the layer before it, "
                    f"{_layer_name(previous)}, has no out_size. Set out_size on that layer or "
                    "pass a built module instead of a describer."
                )
            built: Any = layer(in_size=in_size)
            if not isinstance(built, Module):
                raise TypeError(
                    f"Sequential: the describer {layer!r} built a {type(built).__name__}, not a "
                    "brainstate.nn.Module. Describe a Module subclass."
                )
            return built, built.out_size
        if isinstance(layer, ElementWiseBlock):
            return layer, in_size
        if isinstance(layer, Module):
            if layer.in_size is not None and in_size is not None \
                    and not _sizes_agree(layer.in_size, in_size):
                raise ValueError(
                    f"Sequential: layer {_layer_name(layer)} expects in_size={layer.in_size}, "
                    f"but the layer before it, {_layer_name(previous)}, gives "
                    f"out_size={tuple(in_size)}. Make the sizes agree (or pass "
                    f"{_layer_name(layer)}.desc(...) to build it with the right in_size)."
                )
            return layer, layer.out_size
        if callable(layer):
            return layer, in_size
        raise TypeError(
            f"Sequential layers must be Modules, describers (Cls.desc(...)) or callables, got "
            f"{layer!r} of type {type(layer).__name__}."
        )

    def update(self, x: Any) -> Any:
        """Pass ``x`` through every layer in order and return the last output."""
        for i, layer in enumerate(self.layers):
            try:
                x = layer(x)
            except Exception as exc:
                exc.add_note(f"raised in layer {i} ({_layer_name(layer)}) of a Sequential")
                raise
        return x

    def __getitem__(self, key: int | slice | Sequence[int]) -> Any:
        """One layer for an int; a Sequential of the selected layers for a slice or a list."""
        if isinstance(key, slice):
            return self._from_layers(self.layers[key])
        if isinstance(key, int) and not isinstance(key, bool):
            return self.layers[key]
        if isinstance(key, (tuple, list)):
            return self._from_layers([self.layers[k] for k in key])
        raise TypeError(
            f"Sequential indices must be an int, a slice or a list of ints, got "
            f"{type(key).__name__}."
        )

    def __iter__(self) -> Any:
        return iter(self.layers)

    def append(self, layer: Any) -> None:
        """Add ``layer`` at the end (built or checked against the current ``out_size``)."""
        self._set_chain([*self.layers, layer])

    def extend(self, layers: Iterable[Any]) -> None:
        """Append each of ``layers`` in order."""
        self._set_chain([*self.layers, *layers])

    def insert(self, index: int, layer: Any) -> None:
        """Insert ``layer`` before position ``index`` (list convention) and re-check the chain.

        Layers after the insertion point are checked again against their new predecessor.
        """
        n = len(self.layers)
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"Sequential.insert index must be an int, got {index!r}.")
        if not -n <= index <= n:
            raise IndexError(
                f"Sequential.insert index {index} is out of range for {n} layers "
                f"(valid: {-n} to {n})."
            )
        layers = list(self.layers)
        layers.insert(index, layer)
        self._set_chain(layers)


# --- EnvironContext --------------------------------------------------------------------------


class EnvironContext(Module):
    """Run a module inside ``brainstate.environ.context(**context)``.

    Parameters
    ----------
    layer : Module
        The wrapped module.
    **context
        Environment values in effect while ``layer`` runs (``fit=True``, ``dt=0.1``...).

    Raises
    ------
    TypeError
        If ``layer`` is not a Module.

    Examples
    --------
    >>> import brainstate
    >>> class ReadDt(brainstate.nn.Module):
    ...     def update(self):
    ...         return brainstate.environ.get_dt()
    >>> wrapped = brainstate.nn.EnvironContext(ReadDt(), dt=0.25)
    >>> float(wrapped())
    0.25
    >>> float(wrapped(context={"dt": 0.5}))
    0.5
    """

    __module__ = "brainstate.nn"

    def __init__(self, layer: Module, **context: Any) -> None:
        super().__init__()
        if not isinstance(layer, Module):
            raise TypeError(
                f"EnvironContext wraps a brainstate.nn.Module, got {type(layer).__name__}. "
                "Wrap a function with brainstate.environ.context(...) as a decorator instead."
            )
        self.layer = layer
        self.context = dict(context)

    def update(self, *args: Any, context: dict | None = None, **kwargs: Any) -> Any:
        """Call the layer with the stored context, extended by ``context`` for this call."""
        values = {**self.context, **(context or {})}
        with environ.context(**values):
            return self.layer(*args, **kwargs)

    def add_context(self, **context: Any) -> None:
        """Add (or override) stored environment values."""
        self.context.update(context)


# --- Vmap and Map ----------------------------------------------------------------------------


def _is_axis(axis: Any) -> bool:
    return axis is None or (isinstance(axis, int) and not isinstance(axis, bool))


def _axis_groups(spec: Any, owner: str, what: str) -> list:
    """``[(axis, filter), ...]`` from a filter, ``{filter: axis}`` or ``{axis: filter}``."""
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [(0, spec)]
    if all(isinstance(a, int) and not isinstance(a, bool) for a in spec.values()):
        return [(axis, f) for f, axis in spec.items()]
    if all(isinstance(a, int) and not isinstance(a, bool) for a in spec):
        return list(spec.items())
    raise TypeError(
        f"{owner} {what} must be a state filter, a dict {{filter: axis}} or a dict "
        f"{{axis: filter}} with int axes, got {spec!r}. E.g. {what}={{0: "
        "brainstate.HiddenState}."
    )


def _resolve_states(module: Module, groups: list) -> dict:
    """``{axis: {path: state}}`` of ``module``'s states matching each group's filter."""
    out: dict = {}
    for axis, f in groups:
        # String keys: jax sorts the keys of a declaration dict, and raw paths may mix types.
        found = {".".join(map(str, path)): st for path, st in module.states(f).items()}
        out.setdefault(axis, {}).update(found)
    return out


def _declaration_key(decl: dict) -> tuple:
    return tuple(sorted((axis, id(st)) for axis, group in decl.items() for st in group.values()))


def _check_arity(in_axes: Any, args: tuple, owner: str) -> None:
    if isinstance(in_axes, tuple) and len(in_axes) != len(args):
        raise ValueError(
            f"{owner} in_axes has {len(in_axes)} entries but it was called with {len(args)} "
            "positional arguments; give one entry per argument (None to broadcast one)."
        )


def _mapped(fn: Callable, in_axes: Any, out_axes: Any, axis_name: Any, axis_size: Any,
            spmd_axis_name: Any, in_states: Any, out_states: Any) -> Callable:
    """``vmap`` of ``fn(args, kwargs)``: positional args at ``in_axes``, keywords at axis 0."""

    def run(args: tuple, kwargs: dict) -> Any:
        return fn(*args, **kwargs)

    return vmap(run, in_axes=(in_axes, 0), out_axes=out_axes, axis_name=axis_name,
                axis_size=axis_size, spmd_axis_name=spmd_axis_name, in_states=in_states,
                out_states=out_states)


def _norm_in_axes(in_axes: Any, owner: str) -> Any:
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    if isinstance(in_axes, tuple):
        bad = [a for a in in_axes if not _is_axis(a)]
    else:
        bad = [] if _is_axis(in_axes) else [in_axes]
    if bad:
        raise ValueError(
            f"{owner} in_axes must be an int, None, or a tuple of them (one per positional "
            f"argument), got {in_axes!r}."
        )
    return in_axes


class Vmap(Module):
    """Vectorise a module over a mapped axis with :func:`brainstate.transform.vmap`.

    Parameters
    ----------
    module : Module
        The module to map; calling the wrapper calls ``module(*args, **kwargs)`` per lane.
    in_axes : int, None or tuple, default 0
        Mapped axis of each positional argument (``None`` broadcasts it). Keyword arguments
        are mapped along axis 0.
    out_axes : int, None or pytree, default 0
        Where the mapped axis goes in the output.
    vmap_states : filter or dict, optional
        The module's states read per lane and written back along the mapped axis: a state
        filter (all at axis 0), ``{filter: axis}`` or ``{axis: filter}``.
    vmap_out_states : filter or dict, optional
        States that gain the mapped axis when written (same forms).
    axis_name : hashable, optional
        Name of the mapped axis, for collectives.
    axis_size : int, optional
        Size of the mapped axis; needed when nothing is mapped.

    Raises
    ------
    TypeError
        If ``module`` is not a Module, or a state declaration is malformed.
    ValueError
        If ``in_axes`` holds something other than ints and ``None``, or (at call time) has
        a different number of entries than positional arguments.

    Notes
    -----
    Differs from upstream: the filters are resolved against the module's states at each
    call (upstream resolved them once, at construction, so states created afterwards, e.g.
    by ``init_all_states``, were silently left unmapped); the compiled function is reused
    while the set of matching states is unchanged.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Acc(brainstate.nn.Module):
    ...     def __init__(self, shape):
    ...         super().__init__()
    ...         self.total = brainstate.ShortTermState(jnp.zeros(shape))
    ...     def update(self, x):
    ...         self.total.value = self.total.value + x
    ...         return self.total.value.sum()
    >>> acc = Acc((4, 3))  # one row of the state per lane
    >>> mapped = brainstate.nn.Vmap(acc, vmap_states=brainstate.ShortTermState)
    >>> mapped(jnp.ones((4, 3))).tolist()
    [3.0, 3.0, 3.0, 3.0]
    >>> acc.total.value.shape
    (4, 3)
    """

    __module__ = "brainstate.nn"

    def __init__(self, module: Module, in_axes: int | None | Sequence[Any] = 0,
                 out_axes: Any = 0, vmap_states: Any = None, vmap_out_states: Any = None,
                 axis_name: Hashable | None = None, axis_size: int | None = None) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(
                f"Vmap wraps a brainstate.nn.Module, got {type(module).__name__}. Use "
                "brainstate.transform.vmap for plain functions."
            )
        self.module = module
        self.in_axes = _norm_in_axes(in_axes, "Vmap")
        self.out_axes = out_axes
        self.axis_name = axis_name
        self.axis_size = axis_size
        self._in_groups = _axis_groups(vmap_states, "Vmap", "vmap_states")
        self._out_groups = _axis_groups(vmap_out_states, "Vmap", "vmap_out_states")
        self._fn_key: tuple | None = None
        self._fn: Callable | None = None
        self._vmapped()  # validate the configuration now

    def __pretty_repr_item__(self, name: str, value: Any) -> tuple | None:
        if name in ("_fn", "_fn_key", "_in_groups", "_out_groups"):
            return None
        return super().__pretty_repr_item__(name, value)

    def _vmapped(self) -> Callable:
        ins = _resolve_states(self.module, self._in_groups)
        outs = _resolve_states(self.module, self._out_groups)
        key = (_declaration_key(ins), _declaration_key(outs))
        fn = self._fn
        if fn is None or key != self._fn_key:
            fn = _mapped(self.module, self.in_axes, self.out_axes, self.axis_name,
                         self.axis_size, None, ins or None, outs or None)
            self._fn, self._fn_key = fn, key
        return fn

    @property
    def vmapped_fn(self) -> Callable:
        """The mapped callable over the module's current states."""
        fn = self._vmapped()
        return lambda *args, **kwargs: fn(args, kwargs)

    def update(self, *args: Any, **kwargs: Any) -> Any:
        """Call the module once per lane and return the stacked outputs."""
        _check_arity(self.in_axes, args, "Vmap")
        return self._vmapped()(args, kwargs)


def _batched(st: State) -> bool:
    """Whether ``vmap_new_states`` gave ``st`` the mapped axis (mirrors its rule)."""
    return not (isinstance(st, NonBatchState) or (st.tag is not None
                                                   and "INIT_NO_BATCHING" in st.tag))


class Map(Module):
    """Build a module's states ``init_map_size`` times over, then run it once per lane.

    :meth:`init_all_states` runs the module's ``init_all_states(**kwargs)`` under
    :func:`brainstate.transform.vmap_new_states`: every state it creates holds one value per
    lane (leading axis of size ``init_map_size``; random initialisers draw independently per
    lane). :meth:`update` then calls the module under :func:`brainstate.transform.vmap` with
    those states mapped along axis 0, and :meth:`map` does the same for any method.

    Parameters
    ----------
    module : Module
        The module to map.
    init_map_size : int
        Number of lanes (copies of each state).
    init_state_axes : None
        Where the created states get the mapped axis; only ``None`` (axis 0 for all, except
        ``NonBatchState`` and states tagged ``'INIT_NO_BATCHING'``, which keep one value) is
        supported.
    state_tag : str, optional
        Tag added to the created states.
    in_axes, out_axes : default 0
        Mapped axes of the inputs and outputs of :meth:`update` (keywords at axis 0).
    axis_name : hashable, optional
        Name of the mapped axis, for collectives.
    spmd_axis_name : optional
        Passed to ``jax.vmap``.
    call_state_axes : dict, optional
        Further states to map during :meth:`update`: ``{axis: filter}`` or
        ``{filter: axis}``, added to the states created by :meth:`init_all_states`.
    behavior : {'vmap'}
        Only ``'vmap'``; ``'pmap'`` raises ``NotImplementedError``.

    Raises
    ------
    TypeError, ValueError
        Invalid arguments (named in the message).
    NotImplementedError
        ``behavior='pmap'`` or a non-``None`` ``init_state_axes``.
    RuntimeError
        :meth:`update` or :meth:`map` before :meth:`init_all_states`.

    Notes
    -----
    Differs from upstream: multi-device ``'pmap'`` and per-filter ``init_state_axes`` are not
    available (refused with ``NotImplementedError`` rather than approximated); calling before
    initialisation raises ``RuntimeError`` (upstream: ``ValueError``); a wrong
    ``init_map_size`` raises ``TypeError``/``ValueError`` (upstream: ``AssertionError``).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> class Neuron(brainstate.nn.Module):
    ...     def init_state(self, n=3):
    ...         self.v = brainstate.HiddenState(jnp.zeros(n))
    ...     def update(self, x):
    ...         self.v.value = self.v.value + x
    ...         return self.v.value
    >>> pop = brainstate.nn.Map(Neuron(), init_map_size=4)
    >>> pop.init_all_states(n=3)
    >>> pop.module.v.value.shape
    (4, 3)
    >>> pop(jnp.ones((4, 3))).shape
    (4, 3)
    """

    __module__ = "brainstate.nn"

    def __init__(self, module: Module, init_map_size: int, init_state_axes: Any = None,
                 state_tag: str | None = None, in_axes: Any = 0, out_axes: Any = 0,
                 axis_name: Hashable | None = None, spmd_axis_name: Any = None,
                 call_state_axes: Any = None, behavior: str = "vmap") -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"Map wraps a brainstate.nn.Module, got {type(module).__name__}.")
        if not isinstance(init_map_size, int) or isinstance(init_map_size, bool):
            raise TypeError(
                f"Map init_map_size must be an int (the number of lanes), got "
                f"{init_map_size!r} of type {type(init_map_size).__name__}."
            )
        if init_map_size <= 0:
            raise ValueError(f"Map init_map_size must be positive, got {init_map_size}.")
        if behavior == "pmap":
            raise NotImplementedError(
                "Map behavior='pmap' (multi-device mapping) is not available in this version; "
                "use behavior='vmap'."
            )
        if behavior != "vmap":
            raise ValueError(f"Map behavior must be 'vmap' or 'pmap', got {behavior!r}.")
        if init_state_axes is not None:
            raise NotImplementedError(
                "Map init_state_axes is not supported: created states get the mapped axis at "
                "0 (NonBatchState and states tagged 'INIT_NO_BATCHING' keep one value). Pass "
                "init_state_axes=None."
            )
        self.module = module
        self.init_map_size = init_map_size
        self.init_state_axes = init_state_axes
        self.state_tag = state_tag
        self.in_axes = _norm_in_axes(in_axes, "Map")
        self.out_axes = out_axes
        self.axis_name = axis_name
        self.spmd_axis_name = spmd_axis_name
        self.call_state_axes = call_state_axes
        self.behavior = behavior
        self._call_groups = _axis_groups(call_state_axes, "Map", "call_state_axes")
        self.dict_vmap_states: dict | None = None
        self._update_fn: Callable | None = None

    def __pretty_repr_item__(self, name: str, value: Any) -> tuple | None:
        if name in ("dict_vmap_states", "_update_fn", "_call_groups"):
            return None
        return super().__pretty_repr_item__(name, value)

    def init_all_states(self, **kwargs: Any) -> None:  # type: ignore[override]
        """Create the module's states, one value per lane (``module.init_all_states(**kwargs)``)."""
        module, box = self.module, {}

        def create() -> None:
            box["states"] = module.init_all_states(**kwargs).get_states()

        vmap_new_states(create, axis_size=self.init_map_size, state_tag=self.state_tag,
                        spmd_axis_name=self.spmd_axis_name)()
        self.dict_vmap_states = {0: [st for st in box["states"] if _batched(st)]}
        self._update_fn = None

    def _state_decl(self, groups: list) -> dict:
        if self.dict_vmap_states is None:
            raise RuntimeError(
                f"{type(self).__name__} was called before its states exist. Call "
                f"init_all_states(...) on the Map itself first (it creates "
                f"{self.init_map_size} copies of each state)."
            )
        decl = _resolve_states(self.module, groups)
        taken = {id(st) for group in decl.values() for st in group.values()}
        created = {f"<created {i}>": st for i, st in enumerate(self.dict_vmap_states[0])
                   if id(st) not in taken}
        decl.setdefault(0, {}).update(created)
        return decl

    def update(self, *args: Any, **kwargs: Any) -> Any:
        """Call the module once per lane with the mapped states."""
        _check_arity(self.in_axes, args, "Map")
        if self._update_fn is None:
            self._update_fn = _mapped(self.module, self.in_axes, self.out_axes, self.axis_name,
                                      None, self.spmd_axis_name,
                                      self._state_decl(self._call_groups), None)
        return self._update_fn(args, kwargs)

    def map(self, fn: str | Callable, in_axes: Any = 0, out_axes: Any = 0,
            axis_name: Hashable | None = None, state_axes: Any = None) -> Callable:
        """A callable running ``fn`` (a method name or a callable) once per lane.

        States created by :meth:`init_all_states` are mapped along axis 0, plus those
        selected by ``state_axes`` (``{axis: filter}`` or ``{filter: axis}``).
        """
        target: Any = fn
        if isinstance(fn, str):
            target = getattr(self.module, fn, None)
            if target is None:
                raise AttributeError(
                    f"Map.map: {type(self.module).__name__} has no method named {fn!r}."
                )
        if not callable(target):
            raise TypeError(f"Map.map needs a method name or a callable, got {fn!r}.")
        in_axes = _norm_in_axes(in_axes, "Map.map")
        decl = self._state_decl(_axis_groups(state_axes, "Map.map", "state_axes"))
        mapped = _mapped(target, in_axes, out_axes, axis_name, None, None, decl, None)

        def call(*args: Any, **kwargs: Any) -> Any:
            _check_arity(in_axes, args, "Map.map")
            return mapped(args, kwargs)

        return call
