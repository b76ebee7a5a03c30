"""``HiData``: hierarchical data containers."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import jax

__all__: list[str] = ["HiData"]

_MAX_VALUE_REPR = 60


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise TypeError(
            f"HiData child names must be str, got {key!r} of type {type(key).__name__}."
        )


@jax.tree_util.register_pytree_with_keys_class
class HiData:
    """A named, immutable tree of values whose children are reached by name.

    Children may be arrays, numbers, ``None`` or nested ``HiData``; they are read as
    ``data["v"]`` or ``data.v``. ``HiData`` is a JAX pytree (children are leaves or subtrees,
    ``name`` is static), so it passes through ``jax.jit``, ``jax.tree.map`` and the brainstate
    transforms, and is the usual container of the state of composed dynamics (one child per
    sub-dynamics). Changes go through methods that return a new object: :meth:`replace`,
    :meth:`add`, :meth:`pop`.

    Parameters
    ----------
    children : mapping of str to Any, optional
        The children, in order.
    name : str, optional
        A display name (static: not a pytree leaf).
    **kwargs
        More children (added after ``children``).

    Raises
    ------
    TypeError
        ``children`` is not a mapping, a child name is not a str, or ``name`` is not a str.
    ValueError
        A child is given both in ``children`` and as a keyword.

    Notes
    -----
    Differs from upstream: malformed input (non-str names, a non-mapping ``children``, a
    child given twice) is refused instead of accepted silently; assigning an attribute raises
    ``AttributeError`` naming :meth:`replace`; missing children raise errors listing the
    existing ones; iterating yields the child names (as a dict does). Children are kept in
    the order given (upstream's pytree sorted them by name when flattening).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> soma = brainstate.nn.HiData(name="soma", v=jnp.zeros(3), w=jnp.ones(3))
    >>> cell = brainstate.nn.HiData(name="cell", soma=soma, spike=None)
    >>> cell.soma.w.tolist(), cell["soma"]["v"].shape
    ([1.0, 1.0, 1.0], (3,))
    >>> cell.state_size
    2
    >>> doubled = jax.tree.map(lambda x: 2 * x, cell)
    >>> doubled.soma.w.tolist(), doubled.name
    ([2.0, 2.0, 2.0], 'cell')
    >>> list(cell.replace(spike=1.0).keys())
    ['soma', 'spike']
    """

    __module__ = "brainstate.nn"
    __slots__ = ("children", "name")

    children: dict
    name: str | None

    def __init__(self, children: Mapping[str, Any] | None = None, name: str | None = None,
                 **kwargs: Any) -> None:
        if children is None:
            children = {}
        if not isinstance(children, Mapping):
            raise TypeError(
                f"HiData children must be a mapping of names to values, got "
                f"{type(children).__name__}. Pass HiData({{'v': v}}) or HiData(v=v)."
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"HiData name must be a str or None, got {name!r}.")
        both = sorted(set(children) & set(kwargs))
        if both:
            raise ValueError(
                f"HiData children {both} are given both in `children` and as keywords; give "
                "each child once."
            )
        merged = dict(children)
        merged.update(kwargs)
        for key in merged:
            _check_key(key)
        object.__setattr__(self, "children", merged)
        object.__setattr__(self, "name", name)

    @classmethod
    def _unchecked(cls, children: dict, name: str | None) -> "HiData":
        obj = object.__new__(cls)
        object.__setattr__(obj, "children", children)
        object.__setattr__(obj, "name", name)
        return obj

    def __reduce__(self) -> tuple:
        # Slots plus a refusing __setattr__: rebuild through the unchecked constructor.
        return type(self)._unchecked, (self.children, self.name)

    # -- pytree --

    def tree_flatten_with_keys(self) -> tuple:
        keys = tuple(self.children)
        leaves = [(jax.tree_util.DictKey(k), self.children[k]) for k in keys]
        return leaves, (self.name, keys)

    @classmethod
    def tree_unflatten(cls, aux: tuple, leaves: Any) -> "HiData":
        name, keys = aux
        return cls._unchecked(dict(zip(keys, leaves)), name)

    # -- access --

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(
            f"HiData is immutable: cannot set {key!r}. Use data.replace({key}=...) (or add / "
            "pop), which returns a new HiData."
        )

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"HiData is immutable: cannot delete {key!r}; use data.pop(...).")

    def __getattr__(self, key: str) -> Any:
        # Only called when normal lookup fails: methods and slots take precedence.
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return object.__getattribute__(self, "children")[key]
        except KeyError:
            raise AttributeError(self._missing(key)) from None

    def __getitem__(self, key: str) -> Any:
        try:
            return self.children[key]
        except KeyError:
            raise KeyError(self._missing(key)) from None

    def _missing(self, key: str) -> str:
        label = f"HiData {self.name!r}" if self.name else "HiData"
        return f"{label} has no child {key!r}; its children are {list(self.children)}."

    def __contains__(self, key: object) -> bool:
        return key in self.children

    def __len__(self) -> int:
        return len(self.children)

    def __iter__(self) -> Iterator[str]:
        return iter(self.children)

    def keys(self) -> Any:
        """The child names."""
        return self.children.keys()

    def values(self) -> Any:
        """The children."""
        return self.children.values()

    def items(self) -> Any:
        """``(name, child)`` pairs."""
        return self.children.items()

    # -- display --

    def __repr__(self) -> str:
        return self._repr(0)

    def _repr(self, indent: int) -> str:
        pad = "  " * indent
        name = repr(self.name) if self.name else "None"
        if not self.children:
            return f"HiData(name={name})"
        lines = ["HiData(", f"{pad}  name={name},"]
        items = list(self.children.items())
        for i, (key, value) in enumerate(items):
            text = value._repr(indent + 1) if isinstance(value, HiData) else _short(value)
            lines.append(f"{pad}  {key}={text}{'' if i == len(items) - 1 else ','}")
        lines.append(f"{pad})")
        return "\n".join(lines)

    # -- derived data --

    @property
    def state_size(self) -> int:
        """The number of non-``None`` children, a nested ``HiData`` counting its own."""
        return sum(v.state_size if isinstance(v, HiData) else 1
                   for v in self.children.values() if v is not None)

    @property
    def dtype(self) -> Any:
        """The dtype of the first child (searched depth-first) that has one."""
        found = self._first_dtype()
        if found is None:
            raise ValueError(
                f"HiData {self.name!r} has no child with a dtype (children: "
                f"{list(self.children)}); add an array child."
            )
        return found

    def _first_dtype(self) -> Any:
        for v in self.children.values():
            if isinstance(v, HiData):
                found = v._first_dtype()
                if found is not None:
                    return found
            elif v is not None and hasattr(v, "dtype"):
                return v.dtype
        return None

    # -- new objects --

    def clone(self) -> "HiData":
        """A copy; children with a ``clone`` method (nested ``HiData``...) are cloned too."""
        return type(self)._unchecked(
            {k: v.clone() if hasattr(v, "clone") else v for k, v in self.children.items()},
            self.name,
        )

    def replace(self, **updates: Any) -> "HiData":
        """A copy with the given children set (new names are added at the end)."""
        children = dict(self.children)
        children.update(updates)
        return type(self)._unchecked(children, self.name)

    def add(self, *others: Mapping[str, Any], **updates: Any) -> "HiData":
        """A copy with the children of each mapping (or HiData) in ``others``, then ``updates``."""
        children = dict(self.children)
        for other in others:
            if not isinstance(other, (HiData, Mapping)):
                raise TypeError(
                    f"HiData.add takes HiData or dict arguments, got {type(other).__name__}."
                )
            for key, value in other.items():
                _check_key(key)
                children[key] = value
        children.update(updates)
        return type(self)._unchecked(children, self.name)

    def pop(self, *keys: str) -> "HiData":
        """A copy without the named children (each must exist)."""
        children = dict(self.children)
        for key in keys:
            if key not in children:
                raise KeyError(self._missing(key))
            del children[key]
        return type(self)._unchecked(children, self.name)

    def to_dict(self) -> dict:
        """Nested plain dicts (nested ``HiData`` converted too; names are dropped)."""
        return {k: v.to_dict() if isinstance(v, HiData) else v for k, v in self.children.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], name: str | None = None) -> "HiData":
        """Build from nested mappings (nested mappings become nested ``HiData``)."""
        if not isinstance(d, Mapping):
            raise TypeError(f"HiData.from_dict needs a mapping, got {type(d).__name__}.")
        return cls({k: cls.from_dict(v) if isinstance(v, Mapping) else v for k, v in d.items()},
                   name=name)


def _short(value: Any) -> str:
    if value is None:
        return "None"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"Array(shape={tuple(value.shape)}, dtype={value.dtype})"
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_REPR else text[:_MAX_VALUE_REPR - 3] + "..."
