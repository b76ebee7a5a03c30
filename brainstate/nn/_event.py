"""Event-driven projections: ``FixedNumConn``, ``EventFixedNumConn``, ``EventLinear``.

A spiking network propagates a few spikes per step through many synapses. Gathering every
synapse every step costs ``n_synapses`` reads whatever the activity; these layers instead
find the neurons that spiked and add only their outgoing rows, so the cost grows with the
number of events.

The event kernel (pure JAX, chosen by measurement, see ``bench/bench_event.py``):

1. ``lax.top_k`` of the ``float32`` event mask picks at most ``max_events`` spiking indices
   (a static bound); slots beyond the spike count point at a dump row.
2. The outgoing rows of those neurons are gathered from a padded target table whose dump row
   and padding point at an extra output slot.
3. A scatter-add into ``n_post + 1`` outputs, dropping the extra slot. With a homogeneous
   weight the scatter adds integer *counts*, multiplied by the weight once: the result is
   bit-identical to the dense ``w * spikes[pre_ids].sum(1)``.

When more than ``max_events`` inputs are active in one step, a ``lax.cond`` takes the exact
dense path instead: events are never dropped.

Gradients are those of ``x @ W`` (straight-through for events): ``d/dx = W @ g`` at every
input, spiking or not, and ``d/dW`` from the event mask (or the values, with
``float_as_event=False``).
"""

from __future__ import annotations

import numbers
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, cast

import jax
import jax.numpy as jnp
import numpy as np

from brainstate import environ
from brainstate._state import ParamState
from brainstate._units import attach as _attach, split as _split
from brainstate.nn import _event_native, init
from brainstate.nn._module import Module
from brainstate.typing import Size

if TYPE_CHECKING:  # annotations only: brainstate.typing.ArrayLike is built lazily
    from brainstate.typing import ArrayLike

__all__ = [
    "FixedNumConn",
    "EventFixedNumConn",
    "EventFixedProb",
    "EventLinear",
]


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------


def _int_arg(owner: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{owner}: {name} must be an int >= {minimum}, got {type(value).__name__}: "
            f"{value!r}."
        )
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {value}.")
    return int(value)


def _sizes(owner: str, name: str, size: Any) -> tuple[int, ...]:
    if isinstance(size, numbers.Integral) and not isinstance(size, (bool, np.bool_)):
        size = (size,)
    if not isinstance(size, (tuple, list)) or len(size) == 0:
        raise ValueError(
            f"{owner}: {name} must be a positive int or a non-empty sequence of positive ints, "
            f"got {size!r}."
        )
    return tuple(_int_arg(owner, name, d, 1) for d in size)


def _max_events(owner: str, max_events: Any, n_pre: int) -> int:
    if max_events is None:
        return _default_max_events(n_pre)
    return min(_int_arg(owner, "max_events", max_events, 1), n_pre)


def _default_max_events(n_pre: int) -> int:
    # About 4x the spikes of a network firing at 0.2 % of its neurons per step; see the
    # measurements in bench/bench_event.py. Busier steps take the exact dense path.
    return min(n_pre, max(32, -(-n_pre // 128)))


def _check_input(layer: Module, x: Any, n_pre: int) -> None:
    shape = np.shape(_split(x)[0])
    if len(shape) == 0 or shape[-1] != n_pre:
        raise ValueError(
            f"{type(layer).__name__}: expected an input whose last dimension is {n_pre} "
            f"(in_size={layer.in_size}), got shape {tuple(shape)}."
        )


def _float_weight(owner: str, w: Any) -> jax.Array:
    m = jnp.asarray(w)
    if not jnp.issubdtype(m.dtype, jnp.floating):
        m = m.astype(environ.dftype())
    return m


# ---------------------------------------------------------------------------------------------
# connectivity (host side, numpy)
# ---------------------------------------------------------------------------------------------


def _draw_rows(rng: np.random.Generator, n_rows: int, n_cols: int, k: int,
               replace: bool) -> np.ndarray:
    """``(n_rows, k)`` indices in ``[0, n_cols)``, distinct within a row unless ``replace``."""
    if replace or k == 0:
        return rng.integers(0, n_cols, size=(n_rows, k), dtype=np.int64)
    if 4 * k > n_cols:
        # dense draw: the first k of a random permutation of each row
        keys = rng.random((n_rows, n_cols))
        return np.argpartition(keys, k - 1, axis=1)[:, :k] if k < n_cols else \
            np.argsort(keys, axis=1)
    # sparse draw: redraw the rows that repeat an index (rare when k << n_cols)
    out = rng.integers(0, n_cols, size=(n_rows, k), dtype=np.int64)
    while True:
        s = np.sort(out, axis=1)
        bad = np.nonzero((s[:, 1:] == s[:, :-1]).any(axis=1))[0]
        if bad.size == 0:
            return out
        out[bad] = rng.integers(0, n_cols, size=(bad.size, k), dtype=np.int64)


def _host_rng(owner: str, seed: Any) -> np.random.Generator:
    if seed is None:
        # Reproducible from brainstate.random: one integer drawn from the global key.
        from brainstate import random as _random

        try:
            seed = int(_random.randint(0, 2 ** 31 - 1, dtype=jnp.int32))
        except jax.errors.ConcretizationTypeError:
            raise ValueError(
                f"{owner}: with seed=None the connectivity is drawn from brainstate.random, "
                f"which is traced here (the layer is built inside a transform). Pass an int "
                f"seed=..., or build the layer outside jit/vmap."
            ) from None
    elif isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (numbers.Integral,
                                                                          np.random.SeedSequence)):
        raise TypeError(f"{owner}: seed must be None or an int, got {type(seed).__name__}.")
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# kernels: a row table ``table (n_rows, K)`` with ``row_ids (n_rows,)``.
# 'post' layout: synapse (row_ids[r] -> table[r, k]); 'pre' layout: (table[r, k] -> row_ids[r]).
# ---------------------------------------------------------------------------------------------


def _pad(v: jax.Array) -> jax.Array:
    """``v`` with one zero appended on the last axis (the dump slot)."""
    return jnp.concatenate([v, jnp.zeros(v.shape[:-1] + (1,), v.dtype)], axis=-1)


def _row_gather(v: jax.Array, w: jax.Array, table: jax.Array, row_ids: jax.Array | None,
                n_out: int) -> jax.Array:
    """``out[row_ids[r]] = sum_k w[r, k] * v[table[r, k]]`` (``w`` scalar or ``(n_rows, K)``)."""
    g = v[table]
    rows = (g * w).sum(1) if w.ndim else g.sum(1) * w
    if row_ids is None:
        return rows
    return jnp.zeros(n_out + 1, rows.dtype).at[row_ids].add(rows)[:n_out]


def _row_scatter(v: jax.Array, w: jax.Array, table: jax.Array, row_ids: jax.Array | None,
                 n_out: int) -> jax.Array:
    """``out[table[r, k]] += w[r, k] * v[row_ids[r]]``."""
    vr = v if row_ids is None else v[row_ids]
    if w.ndim == 0:
        # homogeneous: sum the inputs, times the weight once (exact counts for 0/1 events)
        contrib = jnp.broadcast_to(vr[:, None], table.shape)
        return jnp.zeros(n_out + 1, vr.dtype).at[table].add(contrib)[:n_out] * w
    return jnp.zeros(n_out + 1, w.dtype).at[table].add(vr[:, None] * w)[:n_out]


class _Conn:
    """The static connectivity of a fixed-number projection and its kernels.

    ``table``/``row_ids`` as drawn (for the dense path and the gradients); ``ell_targets``
    (``(n_pre + 1, D)``, padding and the last row at ``n_post``) and ``ell_slots`` (index of
    each entry in the flattened weight, ``nnz`` for padding) for the event path of the 'pre'
    layout; ``pre_to_row`` for the 'post' layout with unselected rows.
    """

    def __init__(self, table: np.ndarray, row_ids: np.ndarray | None, n_pre: int, n_post: int,
                 layout: str):
        self.layout, self.n_pre, self.n_post = layout, n_pre, n_post
        n_rows, k = table.shape
        self.n_rows, self.k = n_rows, k
        self.table = jnp.asarray(table, jnp.int32)
        self.row_ids = None if row_ids is None else jnp.asarray(row_ids, jnp.int32)
        self.pre_to_row = self.ell_targets = self.ell_slots = None
        if layout == "post":
            if row_ids is not None:
                p2r = np.full(n_pre + 1, n_rows, np.int64)
                p2r[row_ids] = np.arange(n_rows)
                self.pre_to_row = jnp.asarray(p2r, jnp.int32)
        else:
            pre = table.reshape(-1)
            post = np.repeat(np.arange(n_rows) if row_ids is None else row_ids, k)
            order = np.argsort(pre, kind="stable")
            counts = np.bincount(pre, minlength=n_pre)
            d = max(int(counts.max()) if counts.size else 0, 1)
            start = np.concatenate([[0], np.cumsum(counts)[:-1]])
            col = np.arange(pre.size) - np.repeat(start, counts)
            targets = np.full((n_pre + 1, d), n_post, np.int64)
            slots = np.full((n_pre + 1, d), pre.size, np.int64)
            targets[pre[order], col] = post[order]
            slots[pre[order], col] = order
            self.ell_targets = jnp.asarray(targets, jnp.int32)
            self.ell_slots = jnp.asarray(slots, jnp.int32)
        # the outgoing table of every presynaptic neuron, for the native kernels (entries
        # n_post are padding, skipped)
        if layout == "post":
            if row_ids is None:
                native = table
            else:
                native = np.full((n_pre, k), n_post, np.int64)
                native[row_ids] = table
        else:
            native = targets[:n_pre]
        self.native_targets = jnp.asarray(native, jnp.int32)
        # per-synapse weights line up with native_targets only in the plain 'post' layout
        self.native_weights = layout == "post" and row_ids is None

    # -- dense (every synapse) --------------------------------------------------------------

    def dense(self, v: jax.Array, w: jax.Array) -> jax.Array:
        """``v @ W`` over every synapse, ``v`` of shape ``(n_pre,)``."""
        if self.layout == "post":
            return _row_scatter(v, w, self.table, self.row_ids, self.n_post)
        return _row_gather(v, w, self.table, self.row_ids, self.n_post)

    def transpose(self, g: jax.Array, w: jax.Array) -> jax.Array:
        """``W @ g``, ``g`` of shape ``(n_post,)``: the input gradient."""
        if self.layout == "post":
            return _row_gather(g, w, self.table, self.row_ids, self.n_pre)
        return _row_scatter(g, w, self.table, self.row_ids, self.n_pre)

    def weight_grad(self, e: jax.Array, g: jax.Array, homo: bool) -> jax.Array:
        """``d(e @ W)/dW`` against the cotangent ``g``, in the weight's layout."""
        if self.layout == "post":
            rows, cols = (e if self.row_ids is None else e[self.row_ids]), g
        else:
            rows, cols = (g if self.row_ids is None else g[self.row_ids]), e
        if homo:  # sum over synapses, without the (n_rows, K) product
            return jnp.dot(rows, cols[self.table].sum(1))
        return rows[:, None] * cols[self.table]

    # -- event-driven ----------------------------------------------------------------------

    def event(self, idx: jax.Array, vals: jax.Array | None, w: jax.Array) -> jax.Array:
        """Sum of the outgoing rows of ``idx`` (``n_pre`` = none), times ``vals[idx]``."""
        if self.layout == "post":
            r = idx if self.pre_to_row is None else self.pre_to_row[idx]
            tgt = jnp.take(self.table, r, axis=0, mode="fill", fill_value=self.n_post)
            w_rows = None if w.ndim == 0 else jnp.take(w, r, axis=0, mode="fill", fill_value=0)
        else:  # the 'pre' layout always has its ELL tables
            tgt = cast(jax.Array, self.ell_targets)[idx]
            w_rows = None if w.ndim == 0 else jnp.take(
                w.reshape(-1), cast(jax.Array, self.ell_slots)[idx], mode="fill", fill_value=0)
        return _scatter_rows(tgt, w_rows, None if vals is None else _pad(vals)[idx], w,
                             self.n_post)


def _scatter_rows(tgt: jax.Array, w_rows: jax.Array | None, v: jax.Array | None,
                  w: jax.Array, n_out: int) -> jax.Array:
    """Scatter-add the gathered rows into ``n_out + 1`` slots; drop the dump slot."""
    flat = tgt.reshape(-1)
    if w_rows is None:
        if v is None:
            # homogeneous weight, unit events: integer counts, exact, times the weight once
            counts = jnp.zeros(n_out + 1, jnp.int32).at[flat].add(1)[:n_out]
            return counts.astype(w.dtype) * w
        contrib = jnp.broadcast_to(v[:, None], tgt.shape)
        return jnp.zeros(n_out + 1, w.dtype).at[flat].add(contrib.reshape(-1))[:n_out] * w
    contrib = w_rows if v is None else w_rows * v[:, None]
    return jnp.zeros(n_out + 1, w.dtype).at[flat].add(contrib.reshape(-1))[:n_out]


def _event_indices(mask: jax.Array, bound: int) -> jax.Array:
    """At most ``bound`` indices where ``mask`` is True; the other slots hold ``mask.size``.

    ``top_k`` of the float mask (measured faster than ``jnp.nonzero(size=...)`` and a cumsum
    compaction on CPU); correct when the mask has at most ``bound`` True entries.
    """
    vals, idx = jax.lax.top_k(mask.astype(jnp.float32), bound)
    return jnp.where(vals > 0, idx, mask.shape[-1])


# ---------------------------------------------------------------------------------------------
# the differentiable event propagation of one vector
# ---------------------------------------------------------------------------------------------


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _propagate(op: Any, as_event: bool, bound: int, x: jax.Array, w: jax.Array) -> jax.Array:
    return op.forward(as_event, bound, x, w)


def _propagate_fwd(op: Any, as_event: bool, bound: int, x: jax.Array, w: jax.Array):
    return op.forward(as_event, bound, x, w), (x, w)


def _propagate_bwd(op: Any, as_event: bool, bound: int, res: tuple, g: jax.Array):
    x, w = res
    e = (x != 0).astype(w.dtype) if as_event else x
    return op.transpose(g, w).astype(x.dtype), op.weight_grad(e, g, w.ndim == 0).reshape(w.shape)


_propagate.defvjp(_propagate_fwd, _propagate_bwd)


class _FixedNumOp:
    """Forward/backward of the fixed-number projection for ``_propagate`` (hashable by id)."""

    def __init__(self, conn: _Conn):
        self.conn = conn

    def forward(self, as_event: bool, bound: int, x: jax.Array, w: jax.Array) -> jax.Array:
        native = self._native(as_event, w)
        if native is not None:
            return _event_native.on_cpu(native, partial(self._pure, as_event, bound, x, w),
                                        x != 0)
        return self._pure(as_event, bound, x, w, x != 0)

    def _pure(self, as_event: bool, bound: int, x: jax.Array, w: jax.Array,
              mask: jax.Array) -> jax.Array:
        vals = None if as_event else x

        def dense(_):
            return self.conn.dense(mask.astype(w.dtype) if as_event else x, w)

        def event(_):
            return self.conn.event(_event_indices(mask, bound), vals, w)

        if bound >= self.conn.n_pre:
            return event(None)
        count = jnp.sum(mask, dtype=jnp.int32)
        return jax.lax.cond(count > bound, dense, event, None)

    def _native(self, as_event: bool, w: jax.Array) -> Callable | None:
        """The native kernel for events (no bound: exact for any spike count), or None."""
        conn = self.conn
        if not as_event or not _event_native.available():
            return None
        if w.ndim == 0:
            # integer counts times the weight, as the pure kernel: bit-identical results
            return lambda m: (_event_native.event_count(m, conn.native_targets, conn.n_post)
                              .astype(w.dtype) * w)
        if conn.native_weights and w.dtype == jnp.float32:
            return lambda m: _event_native.event_weight(m, conn.native_targets, w, conn.n_post)
        return None

    def transpose(self, g: jax.Array, w: jax.Array) -> jax.Array:
        return self.conn.transpose(g, w)

    def weight_grad(self, e: jax.Array, g: jax.Array, homo: bool) -> jax.Array:
        return self.conn.weight_grad(e, g, homo)


class _DenseOp:
    """Forward/backward of a dense ``(n_pre, n_post)`` weight with event input."""

    def __init__(self, n_pre: int, n_post: int):
        self.n_pre, self.n_post = n_pre, n_post

    def forward(self, as_event: bool, bound: int, x: jax.Array, w: jax.Array) -> jax.Array:
        mask = x != 0
        v = mask.astype(w.dtype) if as_event else x
        if w.ndim == 0:
            # every output receives the same total input
            total = jnp.sum(mask, dtype=jnp.int32).astype(w.dtype) if as_event else v.sum()
            return jnp.full((self.n_post,), total * w, w.dtype)

        def dense(_):
            return v @ w

        def event(_):
            idx = _event_indices(mask, bound)
            rows = jnp.take(w, idx, axis=0, mode="fill", fill_value=0)
            return rows.sum(0) if as_event else (_pad(v)[idx] @ rows)

        if bound >= self.n_pre:
            return event(None)
        count = jnp.sum(mask, dtype=jnp.int32)
        return jax.lax.cond(count > bound, dense, event, None)

    def transpose(self, g: jax.Array, w: jax.Array) -> jax.Array:
        if w.ndim == 0:
            return jnp.full((self.n_pre,), g.sum() * w, w.dtype)
        return w @ g

    def weight_grad(self, e: jax.Array, g: jax.Array, homo: bool) -> jax.Array:
        return e.sum() * g.sum() if homo else jnp.outer(e, g)


def _apply(layer: Any, x: Any, fn: Callable[[jax.Array, jax.Array], jax.Array]) -> Any:
    """``fn(x_vector, w)`` over the leading axes of ``x``, with units."""
    _check_input(layer, x, layer.n_pre)
    (xm, xu), (wm, wu) = _split(x), _split(layer.weight.value)
    wm = _float_weight(type(layer).__name__, wm)
    if wm.ndim == 1:  # flat per-synapse weights (afferent_ratio < 1): one row per table row
        wm = wm.reshape(layer.indices.shape)
    xm = jnp.asarray(xm)
    xm = xm.astype(wm.dtype) if xm.dtype != wm.dtype else xm
    lead = xm.shape[:-1]
    if lead:
        # lax.map keeps the per-sample lax.cond (a vmap would evaluate both branches)
        out = jax.lax.map(lambda row: fn(row, wm), xm.reshape((-1, xm.shape[-1])))
        out = out.reshape(lead + out.shape[-1:])
    else:
        out = fn(xm, wm)
    unit = wu if xu is None else (xu if wu is None else xu * wu)
    return _attach(out, unit)


# ---------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------


class FixedNumConn(Module):
    """Sparse projection where each neuron has a fixed number of random partners.

    ``y = x @ W`` for ``x`` of shape ``(..., n_pre)`` (float or bool), ``W`` an
    ``(n_pre, n_post)`` sparse matrix with ``conn_num`` entries per row (``efferent_target=
    'post'``, a fixed out-degree) or per column (``'pre'``, a fixed in-degree). This layer
    reads every synapse (exact for any input, differentiated by JAX);
    :class:`EventFixedNumConn` skips the silent inputs.

    Parameters
    ----------
    in_size, out_size : int or sequence of int
        ``n_pre = in_size[-1]`` inputs, ``n_post = out_size[-1]`` outputs.
    conn_num : int or float
        Partners per neuron; a float in ``[0, 1]`` is a probability: ``int(n * conn_num)``
        with ``n`` the number of candidates (``n_post`` for ``'post'``, ``n_pre`` for
        ``'pre'``).
    conn_weight : scalar, array, Quantity, Initializer or callable
        A scalar is a homogeneous weight (one trainable number); otherwise a weight per
        synapse of shape ``(n_rows, conn_num)`` (``n_rows = n_pre`` for ``'post'``,
        ``n_post`` for ``'pre'``), or ``(n_selected * conn_num,)`` when ``afferent_ratio <
        1``. A weight with a unit gives outputs with that unit.
    efferent_target : {'post', 'pre'}, default 'post'
        ``'post'``: each presynaptic neuron projects to ``conn_num`` postsynaptic neurons.
        ``'pre'``: each postsynaptic neuron receives from ``conn_num`` presynaptic neurons.
    afferent_ratio : float in [0, 1], default 1.
        Fraction of the rows (presynaptic neurons for ``'post'``, postsynaptic for
        ``'pre'``) that get connections, chosen at random.
    allow_multi_conn : bool, default True
        Whether a row may repeat a partner. ``False`` draws without replacement and needs
        ``conn_num <= n``.
    seed : int, optional
        Seed of the host-side ``numpy`` generator that draws the connectivity. ``None``
        draws one seed from :mod:`brainstate.random` (reproducible with
        ``brainstate.random.seed``).
    name : str, optional
    conn_init : {'vmap', 'for_loop'}, default 'vmap'
        Accepted for compatibility; the connectivity is drawn on the host either way.
    param_type : type, default ``ParamState``
        The state type holding the weight.

    Attributes
    ----------
    weight : ParamState
        The weight (scalar, ``(n_rows, conn_num)`` or flat).
    indices : jax.Array
        ``(n_rows, conn_num)`` partner indices (``int32``); with ``afferent_ratio < 1``
        only the selected rows, whose ids are in ``row_ids``.

    Notes
    -----
    Differs from upstream: ``efferent_target='pre'`` works (upstream raises
    ``NotImplementedError``); no ``brainevent`` dependency (pure JAX kernels); a scalar
    ``conn_weight`` stays one homogeneous trainable number (upstream broadcast it to every
    synapse); bad arguments raise ``ValueError``/``TypeError`` naming the layer (upstream:
    ``assert``); ``allow_multi_conn=False`` with ``conn_num > n`` is refused (upstream
    failed inside the sampler); a wrong input size is refused.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> layer = brainstate.nn.FixedNumConn(100, 50, conn_num=10, conn_weight=0.5, seed=0)
    >>> layer.indices.shape
    (100, 10)
    >>> y = layer(jnp.ones(100))
    >>> float(y.sum())  # 100 inputs x 10 synapses x 0.5
    500.0
    """

    __module__ = "brainstate.nn"
    _conn: _Conn
    _op: _FixedNumOp

    def __init__(
        self,
        in_size: Size,
        out_size: Size,
        conn_num: int | float,
        conn_weight: Callable | ArrayLike,
        efferent_target: str = "post",
        afferent_ratio: int | float = 1.,
        allow_multi_conn: bool = True,
        seed: int | None = None,
        name: str | None = None,
        conn_init: str = "vmap",
        param_type: type = ParamState,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        in_size = _sizes(owner, "in_size", in_size)
        out_size = _sizes(owner, "out_size", out_size)
        self.in_size, self.out_size = in_size, out_size
        self.n_pre, self.n_post = in_size[-1], out_size[-1]
        if efferent_target not in ("post", "pre"):
            raise ValueError(
                f"{owner}: efferent_target must be 'post' or 'pre', got {efferent_target!r}."
            )
        if conn_init not in ("vmap", "for_loop"):
            raise ValueError(f"{owner}: conn_init must be 'vmap' or 'for_loop', got {conn_init!r}.")
        if isinstance(afferent_ratio, (bool, np.bool_)) or \
                not isinstance(afferent_ratio, numbers.Real) or not 0. <= afferent_ratio <= 1.:
            raise ValueError(f"{owner}: afferent_ratio must be a number in [0, 1], "
                             f"got {afferent_ratio!r}.")
        self.efferent_target = efferent_target
        self.afferent_ratio = float(afferent_ratio)
        self.allow_multi_conn = bool(allow_multi_conn)
        self.seed, self.conn_init = seed, conn_init

        n_rows, n_cols = ((self.n_pre, self.n_post) if efferent_target == "post"
                          else (self.n_post, self.n_pre))
        self.conn_num = self._conn_num(owner, conn_num, n_cols)
        _check_multi(owner, self.conn_num, n_cols, self.allow_multi_conn)
        rng = _host_rng(owner, seed)
        table = _draw_rows(rng, n_rows, n_cols, self.conn_num, self.allow_multi_conn)
        row_ids = None
        if self.afferent_ratio < 1.:
            row_ids = np.nonzero(rng.random(n_rows) < self.afferent_ratio)[0]
            table = table[row_ids]
        self.indices = jnp.asarray(table, jnp.int32)
        self.row_ids = None if row_ids is None else jnp.asarray(row_ids, jnp.int32)
        self._conn = _Conn(table, row_ids, self.n_pre, self.n_post, efferent_target)
        self._op = _FixedNumOp(self._conn)
        self.weight = param_type(self._init_weight(owner, conn_weight, table.shape, row_ids))

    @staticmethod
    def _conn_num(owner: str, conn_num: Any, n_cols: int) -> int:
        if isinstance(conn_num, (bool, np.bool_)) or not isinstance(conn_num, numbers.Real):
            raise TypeError(f"{owner}: conn_num must be an int or a float probability, got "
                            f"{type(conn_num).__name__}: {conn_num!r}.")
        if isinstance(conn_num, numbers.Integral):
            return _int_arg(owner, "conn_num", conn_num, 0)
        p = cast(float, conn_num)  # a numbers.Real: typeshed's Real has no >= nor int()
        if not 0. <= p <= 1.:
            raise ValueError(f"{owner}: a float conn_num is a probability in [0, 1], got "
                             f"{conn_num}. Pass an int for a number of connections.")
        return int(n_cols * p)

    def _init_weight(self, owner: str, conn_weight: Any, shape: tuple, row_ids: Any) -> Any:
        if row_ids is not None:
            shape = (int(shape[0] * shape[1]),)
        try:
            w = init.param(conn_weight, shape, allow_none=False)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{owner}: bad conn_weight for the weight of shape {shape}: "
                            f"{exc}") from None
        m, unit = _split(w)
        got = tuple(np.shape(m))
        if got not in ((), shape):
            raise ValueError(f"{owner}: conn_weight must be a scalar or of shape {shape} "
                             f"(one per synapse), got shape {got}.")
        return _attach(_float_weight(owner, m), unit)

    def update(self, x: Any) -> Any:
        """``x @ W`` for ``x`` of shape ``(..., n_pre)``, reading every synapse."""
        return _apply(self, x, self._conn.dense)


def _check_multi(owner: str, conn_num: int, n_cols: int, allow_multi_conn: bool) -> None:
    if not allow_multi_conn and conn_num > n_cols:
        raise ValueError(
            f"{owner}: conn_num={conn_num} distinct partners out of {n_cols} candidates is "
            f"impossible with allow_multi_conn=False. Lower conn_num or allow multiple "
            f"connections."
        )


class EventFixedNumConn(FixedNumConn):
    """:class:`FixedNumConn` driven by events: only the active inputs' synapses are read.

    Same connectivity, weights and arguments as :class:`FixedNumConn`; ``update(spikes)``
    computes ``events @ W`` where ``events`` are the nonzero entries of ``spikes`` (bool or
    float, shape ``(..., n_pre)``). The cost grows with the number of events of the step,
    not with the number of synapses.

    Parameters
    ----------
    in_size, out_size, conn_num, conn_weight, efferent_target, afferent_ratio, \
allow_multi_conn, seed, name, conn_init, param_type
        As for :class:`FixedNumConn`.
    float_as_event : bool, default True
        A float input is an event where it is nonzero, of size 1 (``True``), or of its value
        (``False``: ``y = x @ W`` computed from the nonzero entries only).
    max_events : int, optional
        The static bound of the event path: at most this many active inputs per step (and
        per sample) go through it. A step with more takes the exact dense path (a
        ``lax.cond``): events are never dropped, the step only costs as much as
        :class:`FixedNumConn`. Default ``max(32, ceil(n_pre / 128))`` (about 4x the spikes
        of a network where 0.2 % of the neurons fire per step); raise it for busier
        networks, lower it for quieter ones (its cost grows with the bound).

    Notes
    -----
    With a homogeneous (scalar) weight and events, the kernel adds integer spike counts and
    multiplies by the weight once, so the result is bit-identical to the dense
    ``w * spikes[pre_ids].sum(1)``.

    Gradients are those of ``x @ W``: w.r.t. ``x`` it is ``W @ g`` at every input, active or
    not (a straight-through estimator for events, as surrogate-gradient training needs);
    w.r.t. the weight, the event mask (``float_as_event=True``) or the values times ``g``.

    A leading batch axis of the input runs sample by sample (``lax.map``), keeping the
    event path. Under ``vmap`` the ``lax.cond`` becomes a select, which evaluates both the
    event and the dense path: correct, but as slow as the dense layer.

    Differs from upstream: no ``brainevent`` dependency; ``float_as_event`` and
    ``max_events`` are new; a float event is any nonzero entry (brainevent: ``> 0``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> proj = brainstate.nn.EventFixedProb(1000, 1000, 0.02, conn_weight=0.6, seed=0)
    >>> spikes = jnp.zeros(1000, bool).at[jnp.array([3, 500])].set(True)
    >>> y = proj(spikes)
    >>> round(float(y.sum()), 3)  # 2 spikes x 20 synapses x 0.6
    24.0
    >>> dense = brainstate.nn.FixedNumConn(1000, 1000, 0.02, conn_weight=0.6, seed=0)
    >>> bool((dense(spikes) == y).all())
    True
    """

    __module__ = "brainstate.nn"

    def __init__(
        self,
        in_size: Size,
        out_size: Size,
        conn_num: int | float,
        conn_weight: Callable | ArrayLike,
        efferent_target: str = "post",
        afferent_ratio: int | float = 1.,
        allow_multi_conn: bool = True,
        seed: int | None = None,
        name: str | None = None,
        conn_init: str = "vmap",
        param_type: type = ParamState,
        *,
        float_as_event: bool = True,
        max_events: int | None = None,
    ):
        super().__init__(in_size, out_size, conn_num, conn_weight,
                         efferent_target=efferent_target, afferent_ratio=afferent_ratio,
                         allow_multi_conn=allow_multi_conn, seed=seed, name=name,
                         conn_init=conn_init, param_type=param_type)
        self.float_as_event = bool(float_as_event)
        self.max_events = _max_events(type(self).__name__, max_events, self.n_pre)

    def update(self, spk: Any) -> Any:
        """``events @ W`` for ``spk`` of shape ``(..., n_pre)``, reading active rows only."""
        as_event = self.float_as_event or jnp.asarray(_split(spk)[0]).dtype == jnp.bool_
        return _apply(self, spk, partial(_propagate, self._op, as_event, self.max_events))


EventFixedProb = EventFixedNumConn


class EventLinear(Module):
    """Dense projection ``y = events @ W`` that reads only the rows of the active inputs.

    Parameters
    ----------
    in_size, out_size : int or sequence of int
        ``W`` has shape ``(in_size[-1], out_size[-1])``.
    weight : scalar, array, Quantity, Initializer or callable
        The weight; a scalar is homogeneous (every output receives the number of events
        times it). A weight with a unit gives outputs with that unit.
    float_as_event : bool, default True
        A float input is an event where it is nonzero, of size 1 (``True``), or of its
        value (``False``: ``y = x @ W``).
    block_size : int, default 64
        Accepted for compatibility (a kernel tuning knob upstream); unused.
    name : str, optional
    param_type : type, default ``ParamState``
    max_events : int, optional
        Static bound of the event path, as in :class:`EventFixedNumConn` (more active
        inputs in one step take the exact dense path). Default
        ``max(32, ceil(in_size[-1] / 128))``.

    Notes
    -----
    Gradients are those of ``x @ W`` (straight-through for events), see
    :class:`EventFixedNumConn`. Differs from upstream: no ``brainevent`` dependency; the
    weight must be a scalar or exactly ``(in_size[-1], out_size[-1])``; a wrong input size
    raises ``ValueError``; ``max_events`` is new.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> layer = brainstate.nn.EventLinear(4, 3, jnp.arange(12.0).reshape(4, 3))
    >>> layer(jnp.array([True, False, False, True]))
    Array([ 9., 11., 13.], dtype=float32)
    >>> brainstate.nn.EventLinear(4, 3, 0.5)(jnp.array([1.0, 0.0, 2.0, 0.0]))
    Array([1., 1., 1.], dtype=float32)
    """

    __module__ = "brainstate.nn"
    _op: _DenseOp

    def __init__(
        self,
        in_size: Size,
        out_size: Size,
        weight: Callable | ArrayLike,
        float_as_event: bool = True,
        block_size: int = 64,
        name: str | None = None,
        param_type: type = ParamState,
        *,
        max_events: int | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        in_size = _sizes(owner, "in_size", in_size)
        out_size = _sizes(owner, "out_size", out_size)
        self.in_size, self.out_size = in_size, out_size
        self.n_pre, self.n_post = in_size[-1], out_size[-1]
        self.float_as_event = bool(float_as_event)
        self.block_size = block_size
        self.max_events = _max_events(owner, max_events, self.n_pre)
        shape = (self.n_pre, self.n_post)
        try:
            w = init.param(weight, shape, allow_none=False)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{owner}: bad weight for the shape {shape}: {exc}") from None
        m, unit = _split(w)
        if tuple(np.shape(m)) not in ((), shape):
            raise ValueError(f"{owner}: weight must be a scalar or of shape {shape}, got shape "
                             f"{tuple(np.shape(m))}.")
        self.weight = param_type(_attach(_float_weight(owner, m), unit))
        self._op = _DenseOp(self.n_pre, self.n_post)

    def update(self, spk: Any) -> Any:
        """``events @ W`` for ``spk`` of shape ``(..., in_size[-1])``."""
        as_event = self.float_as_event or jnp.asarray(_split(spk)[0]).dtype == jnp.bool_
        return _apply(self, spk, partial(_propagate, self._op, as_event, self.max_events))
