"""Mixin classes, parameter describers, joint/one-of type forms and computation modes.

* :class:`Mixin` marks behaviour-only base classes; :class:`ParamDesc` gives a class a
  ``desc(...)`` classmethod returning a :class:`ParamDescriber`, a deferred constructor.
* :data:`JointTypes` and :data:`OneOfTypes` build classes that test ``isinstance`` /
  ``issubclass`` against *all* or *any* of several classes.
* :class:`Mode` and its subclasses (:class:`Batching`, :class:`Training`, :class:`JointMode`)
  describe how a computation runs.

Examples
--------
>>> class Neuron(ParamDesc):
...     def __init__(self, size, tau=10.0):
...         self.size, self.tau = size, tau
>>> make = Neuron.desc(100, tau=5.0)
>>> make().tau
5.0
>>> isinstance(make, ParamDescriber[Neuron])
True
>>> class A: pass
>>> class B: pass
>>> class AB(A, B): pass
>>> isinstance(AB(), JointTypes[A, B]), isinstance(A(), JointTypes[A, B])
(True, False)
"""

from __future__ import annotations

import copyreg
import types
from typing import Any, Callable, Generic, Optional, Sequence, TypeVar

__all__ = [
    "Mixin",
    "ParamDesc",
    "ParamDescriber",
    "AlignPost",
    "BindCondData",
    "JointTypes",
    "OneOfTypes",
    "_JointGenericAlias",
    "_OneOfGenericAlias",
    "Mode",
    "JointMode",
    "Batching",
    "Training",
]

_MODULE = "brainstate.mixin"
T = TypeVar("T")


def hashable(x: Any) -> bool:
    """Return whether ``hash(x)`` succeeds.

    Examples
    --------
    >>> hashable((1, 2)), hashable([1, 2])
    (True, False)
    """
    try:
        hash(x)
    except TypeError:
        return False
    return True


class Mixin:
    """Base of behaviour-only classes: a mixin adds methods and defines no ``__init__``.

    Examples
    --------
    >>> class Greets(Mixin):
    ...     def greet(self):
    ...         return f'hello from {type(self).__name__}'
    >>> class Thing(Greets): pass
    >>> Thing().greet()
    'hello from Thing'
    """

    __module__ = _MODULE


# --- parameter describers ----------------------------------------------------------------------


class HashableDict(dict):
    """A ``dict`` that hashes; values that cannot be hashed are replaced by their ``str``.

    Used to build :attr:`ParamDescriber.identifier`, which must hash even when the described
    keyword arguments hold arrays or lists.

    Examples
    --------
    >>> d = HashableDict({'n': 3, 'shape': [2, 2]})
    >>> d['shape'], hash(d) == hash(HashableDict({'shape': [2, 2], 'n': 3}))
    ('[2, 2]', True)
    """

    __module__ = _MODULE

    def __init__(self, the_dict: Optional[dict] = None):
        items = {} if the_dict is None else the_dict
        super().__init__({k: (v if hashable(v) else str(v)) for k, v in items.items()})

    def __hash__(self) -> int:  # type: ignore[override]  # hashable on purpose (dict's is None)
        # A frozenset is order-free and needs no ordering between mixed key types.
        return hash(frozenset(self.items()))


class NoSubclassMeta(type):
    """Metaclass of classes that refuse to be subclassed."""

    __module__ = _MODULE

    def __new__(mcs, name, bases, namespace):
        for base in bases:
            if isinstance(base, NoSubclassMeta):
                raise TypeError(
                    f"type {base.__name__!r} is not an acceptable base type: it is final. "
                    f"Wrap it instead of subclassing it (in class {name!r})."
                )
        return super().__new__(mcs, name, bases, dict(namespace))


class ParamDescriber(Generic[T], metaclass=NoSubclassMeta):
    """A deferred constructor: stores a class and arguments, and builds an instance on call.

    Calling the describer appends the call's positional arguments after the stored ones and
    lets the call's keyword arguments override the stored ones.
    ``ParamDescriber[SomeClass]`` is a describer usable as an ``isinstance`` target: it matches
    describers whose class is ``SomeClass`` or a subclass.

    Parameters
    ----------
    cls : callable
        The class (or factory) to call.
    *desc_tuple
        Positional arguments stored for the call.
    **desc_dict
        Keyword arguments stored for the call.

    Raises
    ------
    TypeError
        If ``cls`` is not callable.

    Notes
    -----
    Differs from upstream: a non-callable ``cls`` is refused at construction (upstream failed
    later, at the first call).

    Examples
    --------
    >>> class Net:
    ...     def __init__(self, n, lr=0.1):
    ...         self.n, self.lr = n, lr
    >>> make = ParamDescriber(Net, 10, lr=0.5)
    >>> net = make(lr=0.01)
    >>> net.n, net.lr
    (10, 0.01)
    >>> make
    ParamDescriber(Net(10, lr=0.5))
    """

    __module__ = _MODULE

    def __init__(self, cls: Callable[..., T], *desc_tuple, **desc_dict):
        if not callable(cls):
            raise TypeError(
                f"ParamDescriber needs a class or callable to construct, got {cls!r} of type "
                f"{type(cls).__name__}. Pass the class itself, e.g. ParamDescriber(MyClass, ...)."
            )
        self.cls = cls
        self.args = desc_tuple
        self.kwargs = desc_dict
        self._identifier = (cls, tuple(desc_tuple), HashableDict(desc_dict))

    def __call__(self, *args, **kwargs) -> T:
        return self.cls(*self.args, *args, **{**self.kwargs, **kwargs})

    def init(self, *args, **kwargs) -> T:
        """Build the instance; the same as calling the describer."""
        return self(*args, **kwargs)

    def __instancecheck__(self, instance) -> bool:
        if not isinstance(instance, ParamDescriber):
            return False
        if not (isinstance(instance.cls, type) and isinstance(self.cls, type)):
            return instance.cls is self.cls
        return issubclass(instance.cls, self.cls)

    def __class_getitem__(cls, item) -> Any:
        # A type variable is a generic annotation (``ParamDescriber[T]``), not a describer.
        if isinstance(item, TypeVar):
            return types.GenericAlias(cls, (item,))
        return ParamDescriber(item)

    @property
    def identifier(self) -> tuple:
        """A hashable ``(cls, args, kwargs)`` triple identifying the described call."""
        return self._identifier

    @identifier.setter
    def identifier(self, value) -> None:
        raise AttributeError("ParamDescriber.identifier is read-only; build a new describer.")

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        name = getattr(self.cls, "__name__", repr(self.cls))
        return f"ParamDescriber({name}({', '.join(parts)}))"


class ParamDesc(Mixin):
    """Mixin giving a class the ``desc(...)`` classmethod, which returns a :class:`ParamDescriber`.

    Attributes
    ----------
    non_hashable_params : sequence of str, optional
        Names of constructor parameters whose values are not hashable.

    Examples
    --------
    >>> class Layer(ParamDesc):
    ...     def __init__(self, n, act='relu'):
    ...         self.n, self.act = n, act
    >>> template = Layer.desc(64)
    >>> template(act='tanh').act
    'tanh'
    """

    __module__ = _MODULE
    non_hashable_params: Optional[Sequence[str]] = None

    @classmethod
    def desc(cls, *args, **kwargs) -> ParamDescriber:
        """Return a :class:`ParamDescriber` of this class with the given arguments stored."""
        return ParamDescriber(cls, *args, **kwargs)


def not_implemented(func: Callable) -> Callable:
    """Decorate a method as not implemented: calling it raises ``NotImplementedError``.

    The wrapper carries ``not_implemented = True``; see :func:`is_not_implemented`.

    Examples
    --------
    >>> class Base:
    ...     @not_implemented
    ...     def step(self): ...
    >>> is_not_implemented(Base.step)
    True
    """
    name = getattr(func, "__qualname__", getattr(func, "__name__", repr(func)))

    def wrapper(*args, **kwargs):
        raise NotImplementedError(f"{name} is not implemented; override it in a subclass.")

    wrapper.__name__ = getattr(func, "__name__", "wrapper")
    wrapper.__qualname__ = name
    wrapper.__doc__ = getattr(func, "__doc__", None)
    wrapper.not_implemented = True  # type: ignore[attr-defined]  # marker attribute on the function
    return wrapper


def is_not_implemented(fn: Callable) -> bool:
    """Return whether ``fn`` was decorated with :func:`not_implemented`."""
    return getattr(fn, "not_implemented", False) is True


# --- behaviour mixins --------------------------------------------------------------------------


class AlignPost(Mixin):
    """Mixin of components that accept inputs aligned to the post-synaptic side.

    Subclasses implement :meth:`align_post_input_add`.
    """

    __module__ = _MODULE

    def align_post_input_add(self, *args, **kwargs):
        """Add an input aligned to the post-synaptic population."""
        raise NotImplementedError(
            f"{type(self).__name__} mixes in AlignPost but does not implement "
            "align_post_input_add(); define it in the class."
        )


class BindCondData(Mixin):
    """Mixin holding a temporarily bound conductance.

    Examples
    --------
    >>> class Syn(BindCondData): pass
    >>> s = Syn()
    >>> s.bind_cond(0.5); s._conductance
    0.5
    >>> s.unbind_cond(); s._conductance is None
    True
    """

    __module__ = _MODULE
    _conductance: Any = None

    def bind_cond(self, conductance) -> None:
        """Bind ``conductance`` until :meth:`unbind_cond` is called."""
        self._conductance = conductance

    def unbind_cond(self) -> None:
        """Drop the bound conductance."""
        self._conductance = None


# --- JointTypes / OneOfTypes -------------------------------------------------------------------


def _type_name(t: type) -> str:
    if isinstance(t, (_JointGenericAlias, _OneOfGenericAlias)) or t.__module__ == "builtins":
        return t.__qualname__
    return f"{t.__module__}.{t.__qualname__}"


class _TypeCombination(type):
    """Metaclass of the classes built by JointTypes / OneOfTypes (shared machinery)."""

    _form_name: str = ""
    __args__: tuple  # the member classes (set in the namespace by _TypeForm._make)

    def __call__(cls, *args, **kwargs):
        raise TypeError(
            f"{cls.__qualname__} is a type test, not a class to instantiate; instantiate one of "
            f"its component classes instead."
        )

    def __repr__(cls) -> str:
        return cls.__qualname__


class _JointGenericAlias(_TypeCombination):
    """The class of ``JointTypes[A, B, ...]``: ``isinstance``/``issubclass`` need all of them."""

    __module__ = _MODULE

    def __instancecheck__(cls, obj) -> bool:
        return all(isinstance(obj, t) for t in cls.__args__)

    def __subclasscheck__(cls, sub) -> bool:
        return all(issubclass(sub, t) for t in cls.__args__)


class _OneOfGenericAlias(_TypeCombination):
    """The class of ``OneOfTypes[A, B, ...]``: ``isinstance``/``issubclass`` need any of them."""

    __module__ = _MODULE

    def __instancecheck__(cls, obj) -> bool:
        return any(isinstance(obj, t) for t in cls.__args__)

    def __subclasscheck__(cls, sub) -> bool:
        return any(issubclass(sub, t) for t in cls.__args__)


class _TypeForm:
    """``JointTypes`` / ``OneOfTypes``: subscript or call with classes to combine them."""

    __slots__ = ("_name", "_meta", "_cache")

    def __init__(self, name: str, meta: type[_TypeCombination]):
        self._name = name
        self._meta = meta
        # Keyed by the frozenset of members, so member order never makes a second class.
        self._cache: dict = {}

    def __getitem__(self, item):
        return self(*item) if isinstance(item, tuple) else self(item)

    def __call__(self, *types_):
        members = self._members(types_)
        if len(members) == 1:
            return members[0]
        key = frozenset(members)
        made = self._cache.get(key)
        if made is None:
            made = self._make(members)
            self._cache[key] = made
        return made

    def _members(self, types_: tuple) -> tuple:
        if not types_:
            raise TypeError(f"{self._name}[...] needs at least one class, got none.")
        out: list = []
        for t in types_:
            if t is None:
                t = type(None)
            if not isinstance(t, type):
                raise TypeError(
                    f"{self._name}[...] takes classes, got {t!r} of type {type(t).__name__}. "
                    "Pass the class itself (e.g. int, not 1)."
                )
            # Same-kind combinations flatten: JointTypes[JointTypes[A, B], C] has A, B, C.
            for member in (t.__args__ if type(t) is self._meta else (t,)):
                if member not in out:
                    out.append(member)
        return tuple(out)

    def _make(self, members: tuple) -> type:
        name = f"{self._name}[{', '.join(_type_name(m) for m in members)}]"
        namespace = {"__module__": _MODULE, "__qualname__": name, "__args__": members,
                     "__origin__": self}
        return self._meta(name, (), namespace)

    def __repr__(self) -> str:
        return f"{_MODULE}.{self._name}"

    def __reduce__(self):
        return self._name


JointTypes = _TypeForm("JointTypes", _JointGenericAlias)
"""``JointTypes[A, B, ...]``: a class that ``isinstance``/``issubclass`` match only when *all*
of ``A, B, ...`` match.

Single members vanish (``JointTypes[A] is A``), duplicates and nesting flatten, member order
does not matter (``JointTypes[A, B] is JointTypes[B, A]``), and ``None`` means ``type(None)``.
``JointTypes(A, B)`` is the same as ``JointTypes[A, B]``. The result can be used in
annotations, ``Union[...]`` and pickled, but not instantiated.

Notes
-----
Differs from upstream: non-class members raise ``TypeError`` at construction, and the result
is a class (an instance of ``_JointGenericAlias``) rather than a private ``typing`` alias, so
it does not depend on the interpreter's private ``typing`` internals.
"""

OneOfTypes = _TypeForm("OneOfTypes", _OneOfGenericAlias)
"""``OneOfTypes[A, B, ...]``: a class that ``isinstance``/``issubclass`` match when *any* of
``A, B, ...`` matches. Same rules as :data:`JointTypes`."""

_FORMS = {_JointGenericAlias: JointTypes, _OneOfGenericAlias: OneOfTypes}


def _reduce_combination(cls):
    return (_FORMS[type(cls)], cls.__args__)


# Pickle saves classes by qualified name unless their metaclass is registered here.
copyreg.pickle(_JointGenericAlias, _reduce_combination)
copyreg.pickle(_OneOfGenericAlias, _reduce_combination)


# --- modes -------------------------------------------------------------------------------------


def _require_type(what: str, mode) -> None:
    if not isinstance(mode, type):
        raise TypeError(
            f"{what} takes a mode class such as brainstate.mixin.Training, got {mode!r} of "
            f"type {type(mode).__name__}."
        )


class Mode(Mixin):
    """Base of computation modes; two modes are equal when they have the same class.

    Notes
    -----
    Differs from upstream: comparing with a non-mode returns ``False`` instead of failing an
    assertion, a non-class argument to :meth:`is_a`/:meth:`has` raises ``TypeError``, and modes
    hash by class (upstream modes were unhashable).

    Examples
    --------
    >>> m = Training()
    >>> m.is_a(Training), m.has(Mode), m.is_a(Mode)
    (True, True, False)
    >>> Training() == Training(), Training() == Batching()
    (True, False)
    """

    __module__ = _MODULE

    def __repr__(self) -> str:
        return type(self).__name__

    def __eq__(self, other) -> bool:
        if not isinstance(other, Mode):
            return NotImplemented
        return type(other) is type(self)

    def __hash__(self) -> int:
        # Consistent with __eq__: equal modes share a class.
        return hash(type(self))

    def is_a(self, mode: type) -> bool:
        """Return whether this mode's class is exactly ``mode``."""
        _require_type(f"{type(self).__name__}.is_a()", mode)
        return type(self) is mode

    def has(self, mode: type) -> bool:
        """Return whether this mode is an instance of ``mode`` (subclasses included)."""
        _require_type(f"{type(self).__name__}.has()", mode)
        return isinstance(self, mode)


class JointMode(Mode):
    """Several modes at once; attribute lookups fall through to the component modes.

    Parameters
    ----------
    *modes : Mode
        The component modes.

    Raises
    ------
    TypeError
        If a component is not a :class:`Mode` instance.

    Examples
    --------
    >>> m = JointMode(Training(), Batching(batch_size=8))
    >>> m.has(Training), m.has(Batching), m.batch_size
    (True, True, 8)
    >>> m.is_a(JointTypes[Training, Batching])
    True

    Notes
    -----
    Differs from upstream: two joint modes are equal when their sets of component classes are
    equal (upstream compared only the ``JointMode`` class itself).
    """

    __module__ = _MODULE

    def __init__(self, *modes: Mode):
        for m in modes:
            if not isinstance(m, Mode):
                raise TypeError(
                    f"JointMode takes Mode instances, got {m!r} of type {type(m).__name__}. "
                    "Instantiate the mode first, e.g. JointMode(Training(), Batching())."
                )
        self.modes = tuple(modes)
        self.types = set(type(m) for m in modes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(m) for m in self.modes)})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Mode):
            return NotImplemented
        return isinstance(other, JointMode) and other.types == self.types

    def __hash__(self) -> int:
        return hash((JointMode, frozenset(self.types)))

    def has(self, mode: type) -> bool:
        """Return whether any component mode is an instance of ``mode``."""
        _require_type("JointMode.has()", mode)
        return any(issubclass(t, mode) for t in self.types)

    def is_a(self, cls) -> bool:
        """Return whether ``cls`` is exactly the joint type of the component mode classes."""
        return JointTypes(*self.types) == cls if self.types else False

    def __getattr__(self, item: str):
        # Only reached when normal lookup failed; 'modes' missing means __init__ never ran.
        if item in ("modes", "types") or item.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {item!r}")
        for m in self.modes:
            if hasattr(m, item):
                return getattr(m, item)
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {item!r}, and none of its "
            f"modes {self.modes!r} has it."
        )


class Batching(Mode):
    """Batched computation: ``batch_size`` samples along axis ``batch_axis``.

    Examples
    --------
    >>> Batching(32)
    Batching(batch_size=32, batch_axis=0)

    Notes
    -----
    Differs from upstream: the repr names the constructor arguments (upstream printed
    ``in_size=`` and ``axis=``).
    """

    __module__ = _MODULE

    def __init__(self, batch_size: int = 1, batch_axis: int = 0):
        self.batch_size = batch_size
        self.batch_axis = batch_axis

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self.batch_size}, batch_axis={self.batch_axis})"


class Training(Mode):
    """Training computation (e.g. dropout active)."""

    __module__ = _MODULE
