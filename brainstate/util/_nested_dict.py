"""Path-keyed state mappings: :class:`NestedDict`, :class:`FlattedDict` and their helpers.

``NestedDict`` nests values by path components (``d['layers'][0]['weight']``); inner levels are
plain ``dict`` objects. ``FlattedDict`` keys every value by its whole path tuple
(``d[('layers', 0, 'weight')]``). Both are JAX pytrees whose children are their values in sorted
key order, with the keys as auxiliary data, so ``jax.tree.map`` and ``jax.jit`` see only leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jax import tree_util as jtu

from .filter import to_predicate

__all__ = ["NestedDict", "FlattedDict", "flat_mapping", "nest_mapping"]

_MISSING = object()
_REPR_INDENT = "  "
# How many offending paths an error message lists before summarising the rest.
_MAX_LISTED = 5


# --- empty-node sentinel -----------------------------------------------------------------------


class _EmptyNode:
    """Marker for an empty sub-mapping kept by ``flat_mapping(..., keep_empty_nodes=True)``."""

    __slots__ = ()

    def __eq__(self, other):
        return isinstance(other, _EmptyNode)

    def __hash__(self):
        return hash(_EmptyNode)

    def __reduce__(self):
        return (_get_empty_node, ())

    def __repr__(self):
        return "empty_node"


def _get_empty_node():
    return empty_node


empty_node = _EmptyNode()
# A pytree without children, so jax.tree.map over a FlattedDict holding it leaves it alone.
jtu.register_pytree_node(_EmptyNode, lambda node: ((), None), lambda aux, children: empty_node)


# --- helpers -----------------------------------------------------------------------------------


def _list_paths(paths) -> str:
    paths = list(paths)
    shown = ", ".join(repr(p) for p in paths[:_MAX_LISTED])
    if len(paths) > _MAX_LISTED:
        shown += f" and {len(paths) - _MAX_LISTED} more"
    return shown


# Paths up to this long are handed down built (bounded memory); deeper ones are built from
# their link when needed.
_SHORT_PATH = 32


def link_path(link) -> tuple:
    """The path tuple a link ``(up, key)`` stands for (``None``: the root's ``()``).

    Iterative walks (here and in ``brainstate.graph``) carry a path as such links and build
    the tuple only where one is needed: a chain n deep would otherwise hold n tuples of up to
    n keys each.
    """
    keys = []
    while link is not None:
        link, k = link
        keys.append(k)
    keys.reverse()
    return tuple(keys)


def _fallback_sort_key(key):
    # Deterministic order for keys Python cannot compare (e.g. ('a', 0) next to ('a', 'b')):
    # by type name, then text. Only used where a plain sort raises.
    if isinstance(key, tuple):
        return (1, tuple(_fallback_sort_key(part) for part in key))
    return (0, type(key).__qualname__, repr(key))


def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:
        return tuple(sorted(d, key=_fallback_sort_key))


# How many nesting levels a repr shows; deeper sub-mappings (a graph nested thousands of nodes
# deep) are summarised, so the repr stays small and its recursion shallow.
_REPR_MAX_DEPTH = 64


def _pretty(obj, level: int, seen: set) -> str:
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        if id(obj) in seen:
            return "{...}"
        if level >= _REPR_MAX_DEPTH:
            return f"{{... {len(obj)} key(s), nested deeper than {_REPR_MAX_DEPTH} levels}}"
        seen.add(id(obj))
        pad = _REPR_INDENT * (level + 1)
        lines = [f"{pad}{k!r}: {_pretty(v, level + 1, seen)}" for k, v in obj.items()]
        seen.discard(id(obj))
        return "{\n" + ",\n".join(lines) + "\n" + _REPR_INDENT * level + "}"
    # Continuation lines of a multi-line repr line up under the key they belong to.
    return repr(obj).replace("\n", "\n" + _REPR_INDENT * level)


def _treefy_leaf(x):
    # Duck typing on the class: States define to_state_ref; this module must not import them.
    if getattr(type(x), "to_state_ref", None) is not None:
        return x.to_state_ref()
    return x


def _treefy(x):
    """``x`` with every state replaced by its ref; dicts (NestedDict, FlattedDict), lists and
    tuples rebuilt. Iterative (mappings nest one level per graph node): one frame per
    container, ``[its class, iterator over its (key, child) pairs, its new children (a list
    for a list or tuple, else a dict), its key in the parent]``."""
    cls = type(x)
    if cls not in _TREEFY_CONTAINERS:
        return _treefy_leaf(x)
    seq = cls is list or cls is tuple
    stack = [[cls, enumerate(x) if seq else iter(x.items()), [] if seq else {}, None]]
    while True:
        frame = stack[-1]
        cls, items, out, _ = frame
        for k, v in items:
            t = type(v)
            if t in _TREEFY_CONTAINERS:
                seq = t is list or t is tuple
                stack.append([t, enumerate(v) if seq else iter(v.items()), [] if seq else {}, k])
                break  # its value is stored when the child is done
            if type(out) is list:
                out.append(_treefy_leaf(v))
            else:
                out[k] = _treefy_leaf(v)
        else:
            stack.pop()
            if cls is tuple:
                out = tuple(out)
            elif cls is not list and cls is not dict:
                out = cls(out)
            if not stack:
                return out
            parent = stack[-1][2]
            if type(parent) is list:
                parent.append(out)
            else:
                parent[frame[3]] = out


def _check_and_convert_filters(filters: tuple) -> tuple:
    last = len(filters) - 1
    for i, f in enumerate(filters):
        if (f is Ellipsis or f is True) and i != last:
            if not all(r is Ellipsis or r is True for r in filters[i + 1 :]):
                raise ValueError(
                    "`...` or `True` can only be used as the last filters, "
                    f"got {f!r} at index {i} of {filters!r}. Move it to the end: it matches "
                    "everything, so no filter after it would ever match."
                )
    return tuple(to_predicate(f) for f in filters)


def _partition(items: Iterable, predicates: tuple) -> list:
    """Split ``(path, value)`` pairs into one dict per predicate plus a remainder (first match wins)."""
    buckets: list[dict] = [{} for _ in range(len(predicates) + 1)]
    rest = buckets[-1]
    if len(predicates) == 1:
        predicate, first = predicates[0], buckets[0]
        for path, value in items:
            if predicate(path, value):
                first[path] = value
            else:
                rest[path] = value
        return buckets
    pairs = tuple(zip(predicates, buckets))
    for path, value in items:
        for predicate, bucket in pairs:
            if predicate(path, value):
                bucket[path] = value
                break
        else:
            rest[path] = value
    return buckets


def _non_exhaustive(rest: dict) -> ValueError:
    return ValueError(
        f"Non-exhaustive filters, got a non-empty remainder: {len(rest)} path(s) matched no "
        f"filter: {_list_paths(rest)}.\n"
        "Use `...` to match all remaining elements, e.g. split(ParamState, ...)."
    )


# --- flat_mapping / nest_mapping ---------------------------------------------------------------


def flat_mapping(
    xs: Mapping,
    /,
    *,
    keep_empty_nodes: bool = False,
    is_leaf: Callable[[tuple, Mapping], bool] | None = None,
    sep: str | None = None,
) -> FlattedDict:
    """Flatten a nested mapping into a :class:`FlattedDict` keyed by path tuples.

    Parameters
    ----------
    xs : Mapping
        The nested mapping. Every value that is a ``Mapping`` is descended into.
    keep_empty_nodes : bool, default False
        Keep empty sub-mappings as the ``empty_node`` marker (dropped otherwise), so that
        :func:`nest_mapping` restores them.
    is_leaf : callable, optional
        ``is_leaf(path, mapping) -> bool``; a sub-mapping for which it is true is kept whole.
    sep : str, optional
        Join the path parts with ``sep`` into string keys (every part must then be a ``str``).

    Returns
    -------
    FlattedDict
        ``{path: leaf}`` in depth-first insertion order.

    Raises
    ------
    TypeError
        If ``xs`` is not a mapping, or ``sep`` is given and a path part is not a ``str``.
    ValueError
        If ``sep`` makes two different paths join to the same key.

    Examples
    --------
    >>> flat_mapping({'a': 1, 'b': {'c': 2, 'd': {}}})
    FlattedDict({
      ('a',): 1,
      ('b', 'c'): 2
    })
    >>> dict(flat_mapping({'b': {'c': 2}}, sep='/'))
    {'b/c': 2}
    """
    if not isinstance(xs, Mapping):
        raise TypeError(
            f"flat_mapping expects a Mapping, got {type(xs).__qualname__}. "
            "Pass a (nested) dict such as a NestedDict."
        )
    result: dict = {}
    if is_leaf is not None and is_leaf((), xs):
        result[()] = xs
    else:

        # Iterative (mappings nest one level per graph node): one frame per sub-mapping,
        # [iterator over its items, its link (up, key), its path or None until needed]. A
        # short path is handed down built, a long one is built from the link when a leaf
        # needs it (building every level's path would be quadratic in the depth); with
        # is_leaf every sub-mapping's path is built for the call anyway.
        stack: list[list[Any]] = [[iter(xs.items()), None, ()]]
        while stack:
            frame = stack[-1]
            it, link, prefix = frame
            for key, value in it:
                if isinstance(value, Mapping):
                    path = None
                    if is_leaf is not None:
                        if prefix is None:
                            prefix = frame[2] = link_path(link)
                        path = prefix + (key,)
                        if is_leaf(path, value):
                            result[path] = value
                            continue
                    if value:
                        if path is None and prefix is not None and len(prefix) < _SHORT_PATH:
                            path = prefix + (key,)  # short: handed down built
                        stack.append([iter(value.items()), (link, key), path])
                        break  # walk the sub-mapping; this frame's loop resumes after it
                    if not keep_empty_nodes:
                        continue
                    value = empty_node
                if prefix is None:
                    prefix = frame[2] = link_path(link)
                result[prefix + (key,)] = value
            else:
                stack.pop()

    if sep is None:
        return FlattedDict(result)
    joined: dict = {}
    for path, value in result.items():
        for part in path:
            if not isinstance(part, str):
                raise TypeError(
                    f"flat_mapping(sep={sep!r}) needs string path parts, but path {path!r} has "
                    f"{part!r} ({type(part).__name__}). Convert the keys first, or use sep=None."
                )
        key = sep.join(path)
        if key in joined:
            raise ValueError(
                f"flat_mapping(sep={sep!r}): two paths join to the same key {key!r}; a key "
                f"contains the separator. Choose a separator that no key contains."
            )
        joined[key] = value
    return FlattedDict(joined)


def nest_mapping(xs: Mapping, /, *, sep: str | None = None) -> NestedDict:
    """Rebuild a :class:`NestedDict` from a mapping keyed by path tuples (inverse of :func:`flat_mapping`).

    Parameters
    ----------
    xs : Mapping
        ``{path: leaf}``; paths are tuples (or lists) of keys. ``empty_node`` values become empty
        sub-dicts.
    sep : str, optional
        Keys are strings to split on ``sep`` instead of tuples.

    Returns
    -------
    NestedDict
        The nested mapping; inner levels are plain ``dict`` objects.

    Raises
    ------
    TypeError
        If ``xs`` is not a mapping or a key is not a path (or not a ``str`` with ``sep``).
    ValueError
        If a path is empty, or one path is a leaf where another needs a sub-mapping.

    Examples
    --------
    >>> nest_mapping({('a',): 1, ('b', 'c'): 2}).to_dict()
    {'a': 1, 'b': {'c': 2}}
    """
    if not isinstance(xs, Mapping):
        raise TypeError(
            f"nest_mapping expects a Mapping of path -> value, got {type(xs).__qualname__}."
        )
    result: dict = {}
    # Branches created here; anything else met on the way down is a user leaf, never mutated.
    branches = {id(result)}
    for key, value in xs.items():
        if sep is not None:
            if not isinstance(key, str):
                raise TypeError(
                    f"nest_mapping(sep={sep!r}) needs string keys, got {key!r} "
                    f"({type(key).__name__}). Use sep=None for tuple paths."
                )
            path: tuple | list = tuple(key.split(sep))
        elif isinstance(key, (tuple, list)):
            path = key
        else:
            raise TypeError(
                f"nest_mapping expects tuple paths as keys, got {key!r} ({type(key).__name__}). "
                "Use sep='...' for string keys, or wrap a single key as (key,)."
            )
        if len(path) == 0:
            raise ValueError(
                "nest_mapping got an empty path () which cannot be nested; every path needs "
                "at least one key. Store the root value outside the mapping."
            )
        cursor = result
        for depth in range(len(path) - 1):
            part = path[depth]
            child = cursor.get(part, _MISSING)
            if child is _MISSING:
                child = {}
                branches.add(id(child))
                cursor[part] = child
            elif id(child) not in branches:
                raise ValueError(
                    f"nest_mapping: path {tuple(path)!r} goes below {tuple(path[: depth + 1])!r}, "
                    "which is already a leaf. A path cannot be both a leaf and a sub-mapping."
                )
            cursor = child
        last = path[-1]
        existing = cursor.get(last, _MISSING)
        if value is empty_node:
            if existing is _MISSING:
                child = {}
                branches.add(id(child))
                cursor[last] = child
            elif id(existing) not in branches:
                raise ValueError(
                    f"nest_mapping: path {tuple(path)!r} is both a leaf and an empty sub-mapping."
                )
            continue
        if existing is not _MISSING and id(existing) in branches:
            raise ValueError(
                f"nest_mapping: path {tuple(path)!r} holds a leaf but other paths go below it. "
                "A path cannot be both a leaf and a sub-mapping."
            )
        cursor[last] = value
    return NestedDict(result)


# --- the mappings ------------------------------------------------------------------------------


class _MissingKeyError(AttributeError, KeyError):
    """A key missing behind attribute access.

    A ``KeyError`` as upstream raises, and also an ``AttributeError`` so that ``getattr`` with a
    default, ``hasattr``, ``copy`` and ``pickle`` follow the attribute protocol.
    """


class _PathDict(dict):
    """Shared behaviour of :class:`NestedDict` and :class:`FlattedDict`."""

    __slots__ = ()

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            pass
        raise _MissingKeyError(
            f"{type(self).__name__} has no key {key!r}; keys: {_list_paths(self)}. "
            f"Use d[key] for keys that are not identifiers."
        )

    def to_dict(self) -> dict:
        """Return a shallow plain-``dict`` copy.

        Returns
        -------
        dict
            Same keys and values; inner levels are shared, not copied.
        """
        return dict(self)

    def copy(self):
        """Return a shallow copy of the same type (``dict.copy`` would return a plain dict).

        Returns
        -------
        NestedDict or FlattedDict
            A new mapping holding the same values.
        """
        return type(self)(self)

    def subset(self, first, /, *filters):
        """Alias of :meth:`filter`.

        Parameters
        ----------
        first, *filters
            Filters accepted by :func:`brainstate.util.filter.to_predicate`.

        Returns
        -------
        mapping or tuple of mappings
            One mapping for one filter, a tuple for several.
        """
        return self.filter(first, *filters)

    def treefy_state(self):
        """Return a copy in which every live state is replaced by its reference.

        A leaf whose class defines ``to_state_ref`` (a ``State``) becomes ``leaf.to_state_ref()``;
        nested ``dict``/``list``/``tuple`` containers are searched, other values are kept.

        Returns
        -------
        NestedDict or FlattedDict
            A new mapping of the same type.
        """
        return _treefy(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_pretty(self, 0, set())})"


class NestedDict(_PathDict):
    """A ``dict`` nested by path components, e.g. ``{'layers': {0: {'weight': ref}}}``.

    Produced by ``graph.treefy_states`` and ``graph.treefy_split``. Inner levels are plain
    ``dict`` objects; items are also readable as attributes (``d.layers``). Registered as a JAX pytree:
    children are the values in sorted key order, the keys are auxiliary data.

    Examples
    --------
    >>> d = NestedDict({'a': 1, 'b': {'c': 2}})
    >>> d.b
    {'c': 2}
    >>> d.to_flat()
    FlattedDict({
      ('a',): 1,
      ('b', 'c'): 2
    })
    """

    __module__ = "brainstate.util"
    __slots__ = ()

    def to_flat(self) -> FlattedDict:
        """Flatten to a :class:`FlattedDict` keyed by path tuples (empty sub-dicts dropped).

        Returns
        -------
        FlattedDict
            ``{path: leaf}``.
        """
        return flat_mapping(self)

    @classmethod
    def from_flat(cls, flat_dict: Mapping | Iterable) -> NestedDict:
        """Build a :class:`NestedDict` from a mapping or pairs of ``(path, value)``.

        Parameters
        ----------
        flat_dict : Mapping or iterable of (tuple, value)
            Path-keyed values.

        Returns
        -------
        NestedDict
            The nested mapping.
        """
        nested = nest_mapping(flat_dict if isinstance(flat_dict, Mapping) else dict(flat_dict))
        return nested if cls is NestedDict else cls(nested)

    def split(self, first, /, *filters):
        """Partition the leaves by filters that together must match every leaf.

        Each leaf goes to the first filter that matches it. ``...`` (or ``True``) may only be
        the last filter and collects the rest.

        Parameters
        ----------
        first, *filters
            Filters accepted by :func:`brainstate.util.filter.to_predicate`.

        Returns
        -------
        NestedDict or tuple of NestedDict
            One mapping for one filter, else a tuple with one mapping per filter.

        Raises
        ------
        ValueError
            If some leaf matches no filter, or ``...`` is not last.

        Examples
        --------
        >>> d = NestedDict({'a': 1, 'b': 'x'})
        >>> ints, rest = d.split(int, ...)
        >>> ints.to_dict(), rest.to_dict()
        ({'a': 1}, {'b': 'x'})
        """
        predicates = _check_and_convert_filters((first, *filters))
        *parts, rest = _partition(self.to_flat().items(), predicates)
        if rest:
            raise _non_exhaustive(rest)
        result = tuple(nest_mapping(p) for p in parts)
        return result[0] if len(result) == 1 else result

    def filter(self, first, /, *filters):
        """Select the leaves matching each filter (first match wins; unmatched leaves dropped).

        Parameters
        ----------
        first, *filters
            Filters accepted by :func:`brainstate.util.filter.to_predicate`.

        Returns
        -------
        NestedDict or tuple of NestedDict
            One mapping for one filter, else a tuple with one mapping per filter.

        Raises
        ------
        ValueError
            If ``...`` is not the last filter.
        """
        predicates = _check_and_convert_filters((first, *filters))
        *parts, _ = _partition(self.to_flat().items(), predicates)
        result = tuple(nest_mapping(p) for p in parts)
        return result[0] if len(result) == 1 else result

    @staticmethod
    def merge(state, /, *states) -> NestedDict:
        """Merge mappings path by path into a new :class:`NestedDict` (later ones win).

        Parameters
        ----------
        state, *states : NestedDict or FlattedDict
            The mappings to merge.

        Returns
        -------
        NestedDict
            A new mapping; the inputs are not modified.

        Raises
        ------
        TypeError
            If an argument is neither a ``NestedDict`` nor a ``FlattedDict``.
        ValueError
            If a path is a leaf in one mapping and a sub-mapping in another.
        """
        return nest_mapping(_merge_flat((state, *states)))

    def __or__(self, other) -> NestedDict:
        if not isinstance(other, NestedDict):
            raise TypeError(
                f"NestedDict | ... expects a NestedDict, got {type(other).__qualname__}. "
                "Use NestedDict.merge(a, b) to merge a FlattedDict."
            )
        return NestedDict.merge(self, other)

    def __ior__(self, other) -> NestedDict:
        # Keep |= a path-wise merge like |, not dict's shallow top-level update.
        merged = self | other
        self.clear()
        self.update(merged)
        return self

    def __sub__(self, other) -> NestedDict:
        if not isinstance(other, NestedDict):
            raise TypeError(
                f"NestedDict - ... expects a NestedDict, got {type(other).__qualname__}."
            )
        drop = other.to_flat()
        return nest_mapping({k: v for k, v in self.to_flat().items() if k not in drop})

    def to_pure_dict(self) -> dict:
        """Return the same tree as nested plain ``dict`` objects (leaves unchanged, empty sub-dicts dropped).

        Returns
        -------
        dict
            Nested plain dicts; ``TreefyState`` leaves stay ``TreefyState``.
        """
        return dict(nest_mapping(self.to_flat()))

    def replace_by_pure_dict(self, pure_dict: Mapping, replace_fn: Callable | None = None) -> None:
        """Overwrite leaves in place from a nested plain dict of new values.

        Every path of ``pure_dict`` must exist here. All replacements are computed before any
        is stored, so an error leaves this mapping unchanged.

        Parameters
        ----------
        pure_dict : Mapping
            Nested dict with the new values at the paths to change.
        replace_fn : callable, optional
            ``replace_fn(old_leaf, new_value) -> new_leaf``. The default calls
            ``old_leaf.replace(new_value)`` when the leaf has a ``replace`` method (e.g. a
            ``TreefyState``) and otherwise stores ``new_value``.

        Raises
        ------
        ValueError
            If a path of ``pure_dict`` is not a leaf path of this mapping.
        """
        if not isinstance(pure_dict, Mapping):
            raise TypeError(
                f"replace_by_pure_dict expects a nested Mapping, got {type(pure_dict).__qualname__}."
            )
        if replace_fn is None:
            replace_fn = _default_replace
        current = self.to_flat()
        updates = []
        for path, value in flat_mapping(pure_dict).items():
            if path not in current:
                raise ValueError(
                    f"key in pure_dict not available in state: {path!r}. The state has "
                    f"{len(current)} leaf path(s), e.g. {_list_paths(current)}."
                )
            updates.append((path, replace_fn(current[path], value)))
        for path, new_leaf in updates:
            node = self
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = new_leaf


def _default_replace(leaf, value):
    replace = getattr(leaf, "replace", None)
    # str.replace/bytes.replace are not "same leaf, new value".
    if replace is not None and not isinstance(leaf, (str, bytes)):
        return replace(value)
    return value


def _merge_flat(mappings: tuple) -> dict:
    flat: dict = {}
    for m in mappings:
        if isinstance(m, NestedDict):
            flat.update(flat_mapping(m))
        elif isinstance(m, FlattedDict):
            flat.update(m)
        else:
            raise TypeError(
                f"Expected Nested or Flatted Mapping, got {type(m)} instead. Convert a plain "
                "dict with NestedDict(d) (nested) or FlattedDict(d) (path-keyed)."
            )
    return flat


class FlattedDict(_PathDict):
    """A ``dict`` keyed by whole path tuples, e.g. ``{('layers', 0, 'weight'): state}``.

    Produced by ``graph.states`` and ``graph.nodes``. Registered as a JAX pytree: children are
    the values in sorted key order, the keys are auxiliary data.

    Examples
    --------
    >>> f = FlattedDict({('a',): 1, ('b', 'c'): 2})
    >>> f.to_nest().to_dict()
    {'a': 1, 'b': {'c': 2}}
    """

    __module__ = "brainstate.util"
    __slots__ = ()

    def to_nest(self) -> NestedDict:
        """Nest into a :class:`NestedDict`.

        Returns
        -------
        NestedDict
            The nested mapping.
        """
        return nest_mapping(self)

    @classmethod
    def from_nest(cls, nested_dict: Mapping) -> FlattedDict:
        """Build a :class:`FlattedDict` from a nested mapping.

        Parameters
        ----------
        nested_dict : Mapping
            A nested mapping.

        Returns
        -------
        FlattedDict
            ``{path: leaf}``.
        """
        flat = flat_mapping(nested_dict)
        return flat if cls is FlattedDict else cls(flat)

    def split(self, first, /, *filters):
        """Partition the values by filters that together must match every value.

        Parameters
        ----------
        first, *filters
            Filters accepted by :func:`brainstate.util.filter.to_predicate`; ``...`` only last.

        Returns
        -------
        FlattedDict or tuple of FlattedDict
            One mapping for one filter, else a tuple with one mapping per filter.

        Raises
        ------
        ValueError
            If some value matches no filter, or ``...`` is not last.
        """
        predicates = _check_and_convert_filters((first, *filters))
        *parts, rest = _partition(self.items(), predicates)
        if rest:
            raise _non_exhaustive(rest)
        result = tuple(FlattedDict(p) for p in parts)
        return result[0] if len(result) == 1 else result

    def filter(self, first, /, *filters):
        """Select the values matching each filter (first match wins; unmatched values dropped).

        Parameters
        ----------
        first, *filters
            Filters accepted by :func:`brainstate.util.filter.to_predicate`.

        Returns
        -------
        FlattedDict or tuple of FlattedDict
            One mapping for one filter, else a tuple with one mapping per filter.
        """
        predicates = _check_and_convert_filters((first, *filters))
        *parts, _ = _partition(self.items(), predicates)
        result = tuple(FlattedDict(p) for p in parts)
        return result[0] if len(result) == 1 else result

    @staticmethod
    def merge(state, /, *states) -> FlattedDict:
        """Merge mappings path by path into a new :class:`FlattedDict` (later ones win).

        Parameters
        ----------
        state, *states : FlattedDict or NestedDict
            The mappings to merge.

        Returns
        -------
        FlattedDict
            A new mapping.

        Raises
        ------
        TypeError
            If an argument is neither a ``NestedDict`` nor a ``FlattedDict``.
        """
        return FlattedDict(_merge_flat((state, *states)))

    def __or__(self, other) -> FlattedDict:
        if not isinstance(other, FlattedDict):
            raise TypeError(
                f"FlattedDict | ... expects a FlattedDict, got {type(other).__qualname__}. "
                "Use FlattedDict.merge(a, b) to merge a NestedDict."
            )
        return FlattedDict.merge(self, other)

    def __sub__(self, other) -> FlattedDict:
        if not isinstance(other, FlattedDict):
            raise TypeError(
                f"FlattedDict - ... expects a FlattedDict, got {type(other).__qualname__}."
            )
        return FlattedDict({k: v for k, v in self.items() if k not in other})

    def to_dict_values(self) -> dict:
        """Return a plain dict in which every ``State`` is replaced by its current value.

        Returns
        -------
        dict
            ``{path: state.value}`` for states, other values unchanged.
        """
        from brainstate._state import State

        return {k: (v.value if isinstance(v, State) else v) for k, v in self.items()}

    def assign_dict_values(self, data: Mapping) -> None:
        """Write values from ``data``: ``state.value = data[path]`` for states, replace others.

        Every key of this mapping must be in ``data`` (checked before anything is written);
        extra keys of ``data`` are ignored.

        Parameters
        ----------
        data : Mapping
            ``{path: new value}``, e.g. from :meth:`to_dict_values`.

        Raises
        ------
        KeyError
            If a key of this mapping is missing from ``data``.
        """
        if not isinstance(data, Mapping):
            raise TypeError(
                f"assign_dict_values expects a Mapping of path -> value, got "
                f"{type(data).__qualname__}."
            )
        missing = [k for k in self if k not in data]
        if missing:
            raise KeyError(
                f"Invalid key: {missing[0]!r} is not in the data; {len(missing)} key(s) of this "
                f"FlattedDict are missing ({_list_paths(missing)}). Provide a value for every "
                "path; extra keys are ignored."
            )
        from brainstate._state import State

        for k, v in list(self.items()):
            if isinstance(v, State):
                v.value = data[k]
            else:
                self[k] = data[k]


# --- pytree registration -----------------------------------------------------------------------


def _make_pytree_fns(cls):
    def flatten(d):
        keys = _sorted_keys(d)
        return [d[k] for k in keys], keys

    def flatten_with_keys(d):
        keys = _sorted_keys(d)
        return [(jtu.DictKey(k), d[k]) for k in keys], keys

    def unflatten(keys, children):
        return cls(zip(keys, children))

    return flatten_with_keys, unflatten, flatten


_TREEFY_CONTAINERS = frozenset((dict, list, tuple, NestedDict, FlattedDict))

for _cls in (NestedDict, FlattedDict):
    _fwk, _unf, _fl = _make_pytree_fns(_cls)
    jtu.register_pytree_with_keys(_cls, _fwk, _unf, flatten_func=_fl)
del _cls, _fwk, _unf, _fl

