"""Linear layers: ``Linear``, ``ScaledWSLinear``, ``SignedWLinear``, ``SparseLinear``, ``AllToAll``, ``OneToOne``, ``LoRA``.

Each layer keeps its trainable arrays in one :class:`~brainstate.ParamState` named ``weight``
(a dict such as ``{'weight': W, 'bias': b}``), so ``layer.states(ParamState)`` finds them and
``brainstate.transform.grad`` can differentiate through them. Weights multiply from the right:
``y = x @ W (+ b)`` with ``W`` of shape ``(in_size[-1], out_size[-1])``; leading axes of ``x``
are batch axes.

Units (``brainunit``) are optional: Quantity inputs or weights give Quantity outputs when it is
installed; plain arrays never need it. :class:`SparseLinear` alone requires it (its sparse
matrices come from ``brainunit.sparse``).
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Callable, cast

import jax
import jax.numpy as jnp
import numpy as np

from brainstate._state import ParamState
from brainstate._units import attach as _attach, brainunit as _brainunit, loaded as _loaded
from brainstate._units import split as _split
from brainstate.nn import init
from brainstate.nn._module import Module
from brainstate.typing import Size

if TYPE_CHECKING:  # annotations only: brainstate.typing.ArrayLike is built lazily
    from brainstate.typing import ArrayLike

__all__ = [
    "weight_standardization",
    "Linear",
    "ScaledWSLinear",
    "SignedWLinear",
    "SparseLinear",
    "AllToAll",
    "OneToOne",
    "LoRA",
]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _mul_units(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a * b


def _matmul(x: Any, w: Any) -> Any:
    """``x @ w`` on the mantissas, carrying the product of the units.

    An input of another array type with its own ``@`` (an event array of brainevent, say)
    computes the product itself: it may skip the rows of silent inputs.
    """
    if _is_custom_array(x):
        return x @ w
    (xm, xu), (wm, wu) = _split(x), _split(w)
    return _attach(jnp.matmul(xm, wm), _mul_units(xu, wu))


def _is_custom_array(x: Any) -> bool:
    if isinstance(x, (jax.Array, np.ndarray, np.generic, int, float, complex, bool)):
        return False
    bu = _loaded()
    if bu is not None and isinstance(x, bu.Quantity):
        return False
    return hasattr(type(x), "__matmul__")


def _sparse_coords(bu: Any, mat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Row and column index of each stored entry of a CSR, CSC or COO matrix (``data`` order)."""
    if isinstance(mat, bu.sparse.COO):
        return np.asarray(mat.row), np.asarray(mat.col)
    indptr, indices = np.asarray(mat.indptr), np.asarray(mat.indices)
    major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    if isinstance(mat, bu.sparse.CSR):
        return major, indices
    return indices, major  # CSC: compressed columns, indices are rows


def _sparse_matmul(x: Any, rows: np.ndarray, cols: np.ndarray, data: Any, n_out: int) -> Any:
    """``x @ S`` for the sparse ``S`` with entries ``data`` at ``(rows, cols)``.

    A gather and a scatter-add: JAX differentiates it exactly, w.r.t. ``x`` and ``data``.
    """
    (xm, xu), (dm, du) = _split(x), _split(data)
    xm = jnp.asarray(xm)
    contrib = jnp.take(xm, rows, axis=-1) * dm
    y = jnp.zeros(xm.shape[:-1] + (n_out,), dtype=contrib.dtype).at[..., cols].add(contrib)
    return _attach(y, _mul_units(xu, du))


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}.")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(
            f"{owner}: {name} must be a positive int, got {type(value).__name__}: {value!r}."
        ) from None
    if value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value}.")
    return value


def _size(owner: str, name: str, size: Any) -> tuple[int, ...]:
    """A non-empty tuple of positive ints (ValueError naming the layer otherwise)."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, (bool, np.bool_)):
        size = (size,)
    if not isinstance(size, (tuple, list)) or len(size) == 0:
        raise ValueError(
            f"{owner}: {name} must be a positive int or a non-empty sequence of positive ints, "
            f"got {size!r}."
        )
    return tuple(_positive_int(owner, name, d) for d in size)


def _in_out(owner: str, in_size: Any, out_size: Any) -> tuple[tuple, tuple]:
    in_size, out_size = _size(owner, "in_size", in_size), _size(owner, "out_size", out_size)
    if in_size[:-1] != out_size[:-1]:
        raise ValueError(
            f"{owner}: in_size and out_size must agree on all but the last dimension, got "
            f"in_size={in_size} and out_size={out_size}."
        )
    return in_size, out_size


def _check_input(layer: Module, x: Any, n_in: int) -> None:
    shape = np.shape(_split(x)[0])
    if len(shape) == 0 or shape[-1] != n_in:
        raise ValueError(
            f"{type(layer).__name__}: expected an input whose last dimension is {n_in} "
            f"(in_size={layer.in_size}), got shape {tuple(shape)}."
        )


def _mask(owner: str, name: str, mask: Any, shape: tuple) -> Any:
    """``mask`` as an array broadcasting to the weight ``shape`` (None stays None)."""
    try:
        return init.param(mask, shape, allow_scalar=False)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{owner}: bad {name} for the weight of shape {shape}: {exc}") from None


def _weight(owner: str, w_init: Any, shape: tuple, name: str = "w_init",
            exact: bool = True) -> Any:
    """The initial weight: exactly ``shape`` when ``exact``, else a scalar or broadcastable."""
    try:
        w = init.param(w_init, shape, allow_none=False, allow_scalar=not exact)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{owner}: bad {name} for the weight of shape {shape}: {exc}") from None
    got = tuple(np.shape(_split(w)[0]))
    if exact and got != shape:
        raise ValueError(
            f"{owner}: {name} gave a weight of shape {got}, expected exactly {shape}."
        )
    return w


def _bias(owner: str, b_init: Any, shape: tuple) -> Any:
    try:
        return init.param(b_init, shape, allow_none=True)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{owner}: bad b_init for the shape {shape}: {exc}") from None


def _standardize(w: Any, eps: float, gain: Any = None, out_axis: int = -1) -> Any:
    """Scaled weight standardisation (Qiao et al., 2019) of ``w`` over all but ``out_axis``.

    Each output slice is centred and divided by ``sqrt(max(var * fan_in, eps))``, so it has
    zero mean and unit sum of squares, then multiplied by ``gain``. The result is
    dimensionless (a unit of ``w`` cancels), times ``gain``'s unit.
    """
    m, _ = _split(w)
    out_axis = out_axis % m.ndim
    axes = tuple(i for i in range(m.ndim) if i != out_axis)
    fan_in = int(np.prod([m.shape[i] for i in axes]))
    mean = jnp.mean(m, axis=axes, keepdims=True)
    var = jnp.var(m, axis=axes, keepdims=True)
    scale = jax.lax.rsqrt(jnp.maximum(var * jnp.asarray(fan_in, m.dtype),
                                      jnp.asarray(eps, m.dtype)))
    out = (m - mean) * scale
    return out if gain is None else out * gain


def weight_standardization(w: Any, eps: float = 1e-4, gain: Any = None,
                           out_axis: int = -1) -> Any:
    """Scaled weight standardisation (Qiao et al., 2019): the weight ``ScaledWSLinear`` uses.

    Each slice along ``out_axis`` is centred and divided by ``sqrt(max(var * fan_in, eps))``
    (``fan_in``: the number of elements in the slice), so it has zero mean and unit sum of
    squares, then multiplied by ``gain`` when given.

    Parameters
    ----------
    w : array or Quantity
        The weight; with units the result is dimensionless (the unit cancels).
    eps : float
        Lower bound of ``var * fan_in``: keeps constant slices finite.
    gain : array, optional
        Broadcast against the result (e.g. one value per output unit).
    out_axis : int
        The output axis (default the last).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> w = jnp.arange(6.0).reshape(3, 2)
    >>> ws = brainstate.nn.weight_standardization(w)
    >>> [round(float(v), 4) for v in ws.sum(axis=0)], [round(float(v), 4) for v in (ws ** 2).sum(axis=0)]
    ([0.0, 0.0], [1.0, 1.0])
    """
    w_ndim = jnp.ndim(getattr(w, "mantissa", w))
    if w_ndim < 1:
        raise ValueError("weight_standardization needs a weight with at least one dimension "
                         "(an output axis), got a scalar.")
    if isinstance(out_axis, bool) or not isinstance(out_axis, int) \
            or not -w_ndim <= out_axis < w_ndim:
        raise ValueError(f"weight_standardization: out_axis={out_axis!r} is not an axis of a "
                         f"weight with {w_ndim} dimensions.")
    return _standardize(w, eps, gain, out_axis)


# ---------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------


class Linear(Module):
    """Affine map ``y = x @ (W * w_mask) + b``.

    Parameters
    ----------
    in_size, out_size : int or sequence of int
        Feature sizes; they must agree on all but the last dimension. ``W`` has shape
        ``(in_size[-1], out_size[-1])``.
    w_init : Initializer, callable or array, default ``init.KaimingNormal()``
        The weight (see :func:`brainstate.nn.init.param`).
    b_init : Initializer, callable, array or None, default ``init.ZeroInit()``
        The bias of shape ``(out_size[-1],)``; ``None`` for no bias.
    w_mask : array, callable or None, optional
        Multiplies the weight element-wise (broadcast to its shape) at every call.
    name : str, optional
    param_type : type, default ``ParamState``
        The state type holding ``{'weight': W, 'bias': b}``.

    Attributes
    ----------
    weight : ParamState
        ``{'weight': W}`` plus ``'bias'`` when there is one.

    Notes
    -----
    Differs from upstream: sizes are checked with ``ValueError`` (upstream: ``assert``);
    ``w_init`` must give exactly the ``(in_size[-1], out_size[-1])`` weight (upstream accepted
    a scalar and then returned ``x * w``, with the input's size); the mask must broadcast to
    that weight (upstream sized it ``in_size + out_size``); an input whose last dimension is
    not ``in_size[-1]`` raises a ``ValueError`` naming the layer.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> layer = brainstate.nn.Linear(3, 2, w_init=brainstate.nn.init.Constant(1.0))
    >>> layer(jnp.ones((4, 3)))
    Array([[3., 3.],
           [3., 3.],
           [3., 3.],
           [3., 3.]], dtype=float32)
    >>> sorted(layer.weight.value)
    ['bias', 'weight']
    """

    __module__ = "brainstate.nn"

    def __init__(
        self,
        in_size: Size,
        out_size: Size,
        w_init: Callable | ArrayLike = init.KaimingNormal(),
        b_init: Callable | ArrayLike | None = init.ZeroInit(),
        w_mask: ArrayLike | Callable | None = None,
        name: str | None = None,
        param_type: type = ParamState,
    ) -> None:
        super().__init__(name=name)
        owner = type(self).__name__
        in_size, out_size = _in_out(owner, in_size, out_size)
        self.in_size, self.out_size = in_size, out_size
        shape = (in_size[-1], out_size[-1])
        self.w_mask = _mask(owner, "w_mask", w_mask, shape)
        params = {"weight": _weight(owner, w_init, shape)}
        bias = _bias(owner, b_init, (out_size[-1],))
        if bias is not None:
            params["bias"] = bias
        self.weight = param_type(params)

    def update(self, x: ArrayLike) -> Any:
        _check_input(self, x, cast(tuple, self.in_size)[-1])
        params = self.weight.value
        w = params["weight"]
        if self.w_mask is not None:
            w = w * self.w_mask
        y = _matmul(x, w)
        if "bias" in params:
            y = y + params["bias"]
        return y


class ScaledWSLinear(Module):
    """Linear layer with scaled weight standardisation (Qiao et al., 2019).

    At each call the weight is standardised per output unit (zero mean, unit sum of squares
    over the inputs, with ``eps`` flooring the variance term) and multiplied by a learnable
    ``gain``: ``y = x @ (WS(W) * gain * w_mask) + b``.

    Parameters
    ----------
    in_size, out_size : int or sequence of int
    w_init : Initializer, callable or array, default ``init.KaimingNormal()``
    b_init : Initializer, callable, array or None, default ``init.ZeroInit()``
    w_mask : array, callable or None, optional
        Broadcast to the weight shape ``(in_size[-1], out_size[-1])``.
    ws_gain : bool, default True
        Learn a gain of shape ``(1, out_size[-1])`` (initialised to ones).
    eps : float, default 1e-4
        Floor of ``var * fan_in``.
    name : str, optional
    param_type : type, default ``ParamState``

    Notes
    -----
    Differs from upstream: the mask broadcasts to the full weight shape (upstream sized it
    ``(in_size[-1], 1)``, one factor per input), sizes raise ``ValueError``, and a bad input
    size raises a ``ValueError`` naming the layer.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> brainstate.random.seed(0)
    >>> layer = brainstate.nn.ScaledWSLinear(4, 3)
    >>> layer(jnp.ones((2, 4))).shape
    (2, 3)
    >>> sorted(layer.weight.value)
    ['bias', 'gain', 'weight']
    """

    __module__ = "brainstate.nn"

    def __init__(
        self,
        in_size: Size,
        out_size: Size,
        w_init: Callable | ArrayLike = init.KaimingNormal(),
        b_init: Callable | ArrayLike | None = init.ZeroInit(),
        w_mask: ArrayLike | Callable | None = None,
        ws_gain: bool = True,
        eps: float = 1e-4,
        name: str | None = None,
        param_type: type = ParamState,
    ) -> None:
        super().__init__(name=name)
        owner = type(self).__name__
        in_size, out_size = _in_out(owner, in_size, out_size)
        self.in_size, self.out_size = in_size, out_size
        if not eps > 0:
            raise ValueError(f"{owner}: eps must be positive, got {eps!r}.")
        self.eps = eps
        shape = (in_size[-1], out_size[-1])
        self.w_mask = _mask(owner, "w_mask", w_mask, shape)
        w = _weight(owner, w_init, shape)
        params = {"weight": w}
        bias = _bias(owner, b_init, (out_size[-1],))
        if bias is not None:
            params["bias"] = bias
        if ws_gain:
            params["gain"] = jnp.ones((1, shape[1]), dtype=_split(w)[0].dtype)
        self.weight = param_type(params)

    def update(self, x: ArrayLike) -> Any:
        _check_input(self, x, cast(tuple, self.in_size)[-1])
        params = self.weight.value
        w = _standardize(params["weight"], self.eps, params.get("gain"))
        if self.w_mask is not None:
            w = w * self.w_mask
        y = _matmul(x, w)
        if "bias" in params:
            y = y + params["bias"]
        return y


class SignedWLinear(Module):
    """Linear map with sign-constrained weights: ``y = x @ (|W| * w_sign)``.

    The learned ``W`` may take any sign; the effective weight takes its magnitude and the
    fixed sign of ``w_sign`` (all positive when ``w_sign`` is None), as for excitatory and
    inhibitory connections. No bias.

    Parameters
    ----------
    in_size, out_size : int or sequence of int
    w_init : Initializer, callable or array, default ``init.KaimingNormal()``
    w_sign : array or None, optional
        Signs (e.g. ``+1``/``-1``) broadcasting to the weight shape ``(in_size[-1],
        out_size[-1])``.
    name : str, optional
    param_type : type, default ``ParamState``

    Attributes
    ----------
    weight : ParamState
        Holds the weight array itself (not a dict), as upstream.

    Notes
    -----
    Differs from upstream: the weight has shape ``(in_size[-1], out_size[-1])`` like every
    other layer here (upstream used ``in_size + out_size``, which differs for
    multi-dimensional sizes), and ``w_sign`` is checked against that shape.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> layer = brainstate.nn.SignedWLinear(2, 2, w_init=-jnp.ones((2, 2)),
    ...                                     w_sign=jnp.array([1.0, -1.0]))
    >>> layer(jnp.ones(2))
    Array([ 2., -2.], dtype=float32)
    """

    __module__ = "brainstate.nn"

    def __init__(
        self,
        in_size: Size,
        out_size: Size,
        w_init: Callable | ArrayLike = init.KaimingNormal(),
        w_sign: ArrayLike | None = None,
        name: str | None = None,
        param_type: type = ParamState,
    ) -> None:
        super().__init__(name=name)
        owner = type(self).__name__
        in_size, out_size = _in_out(owner, in_size, out_size)
        self.in_size, self.out_size = in_size, out_size
        shape = (in_size[-1], out_size[-1])
        self.w_sign = _mask(owner, "w_sign", w_sign, shape)
        self.weight = param_type(_weight(owner, w_init, shape))

    def update(self, x: ArrayLike) -> Any:
        _check_input(self, x, cast(tuple, self.in_size)[-1])
        wm, wu = _split(self.weight.value)
        w = jnp.abs(wm)
        if self.w_sign is not None:
            w = w * self.w_sign
        return _matmul(x, _attach(w, wu))


class SparseLinear(Module):
    """Linear map through a sparse ``brainunit.sparse`` matrix: ``y = x @ S + b``.

    Only the stored entries of ``S`` (its ``data``) are parameters; the sparsity pattern is
    fixed.

    Parameters
    ----------
    spar_mat : brainunit.sparse.SparseMatrix
        A CSR, CSC or COO matrix of shape ``(n_in, n_out)``.
    b_init : Initializer, callable, array or None, optional
        Bias of shape ``(n_out,)``; none by default.
    in_size : int or sequence of int, optional
        Defaults to ``(n_in,)``; its last entry must be ``n_in``.
    name : str, optional
    param_type : type, default ``ParamState``

    Raises
    ------
    ImportError
        When ``brainunit`` is not installed.

    Notes
    -----
    Differs from upstream: ``in_size`` defaults to the matrix's row count (upstream left it
    unset), ``out_size`` is ``in_size[:-1] + (n_out,)``, a wrong matrix type is a
    ``TypeError`` and mismatched sizes are ``ValueError`` (upstream: ``assert``). The product
    is computed here as a gather and scatter-add over the stored entries instead of
    ``x @ spar_mat.with_data(w)``: with brainunit 0.5 the latter's gradient w.r.t. the data
    of a CSR or COO matrix comes out permuted (in CSC order), silently wrong for training.
    Any number of batch axes is accepted.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainunit as u
    >>> import brainstate
    >>> dense = jnp.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    >>> layer = brainstate.nn.SparseLinear(u.sparse.CSR.fromdense(dense))
    >>> layer(jnp.ones((4, 2))).shape, layer.in_size, layer.out_size
    ((4, 3), (2,), (3,))
    """

    __module__ = "brainstate.nn"

    def __init__(
        self,
        spar_mat: Any,
        b_init: Callable | ArrayLike | None = None,
        in_size: Size | None = None,
        name: str | None = None,
        param_type: type = ParamState,
    ) -> None:
        bu = _brainunit()
        if bu is None:
            raise ImportError("SparseLinear needs brainunit: pip install brainunit")
        super().__init__(name=name)
        owner = type(self).__name__
        if not isinstance(spar_mat, (bu.sparse.CSR, bu.sparse.CSC, bu.sparse.COO)):
            raise TypeError(
                f"{owner}: spar_mat must be a brainunit.sparse.SparseMatrix (CSR, CSC or COO), "
                f"got {type(spar_mat).__name__}. Build one with e.g. "
                f"brainunit.sparse.CSR.fromdense(w)."
            )
        if len(spar_mat.shape) != 2:
            raise ValueError(f"{owner}: spar_mat must be 2-D, got shape {spar_mat.shape}.")
        n_in, n_out = spar_mat.shape
        size: tuple[int, ...] = (
            (n_in,) if in_size is None else _size(owner, "in_size", in_size))
        if size[-1] != n_in:
            raise ValueError(
                f"{owner}: in_size={size} ends in {size[-1]}, but spar_mat has {n_in} "
                f"rows (shape {spar_mat.shape})."
            )
        self.in_size = size
        self.out_size = size[:-1] + (n_out,)
        self.spar_mat = spar_mat
        self._rows, self._cols = _sparse_coords(bu, spar_mat)
        params = {"weight": spar_mat.data}
        bias = _bias(owner, b_init, (n_out,))
        if bias is not None:
            params["bias"] = bias
        self.weight = param_type(params)

    def update(self, x: ArrayLike) -> Any:
        n_in, n_out = self.spar_mat.shape
        _check_input(self, x, n_in)
        params = self.weight.value
        y = _sparse_matmul(x, self._rows, self._cols, params["weight"], n_out)
        if "bias" in params:
            y = y + params["bias"]
        return y


class AllToAll(Module):
    """All-to-all connections, optionally without self-connections.

    ``y = x @ W (+ b)``, where ``W`` is an ``(in_size[-1], out_size[-1])`` matrix, or a scalar
    weight shared by all connections (then ``y_j = w * sum_i x_i``). With
    ``include_self=False`` the "diagonal" connections ``i -> i`` are removed (for
    ``i < min(n_in, n_out)``).

    Parameters
    ----------
    in_size, out_size : int or sequence of int
    w_init : Initializer, callable, array or scalar, default ``init.KaimingNormal()``
    b_init : Initializer, callable, array or None, optional
        Bias of shape ``(out_size[-1],)``; none by default.
    include_self : bool, default True
    name : str, optional
    param_type : type, default ``ParamState``

    Notes
    -----
    Differs from upstream: with a scalar weight the output always has ``out_size[-1]``
    features (upstream returned one summed feature when ``include_self=True``), and the
    removed diagonal of a non-square matrix is the leading ``min(n_in, n_out)`` one in both
    the scalar and the matrix cases.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> layer = brainstate.nn.AllToAll(3, 3, w_init=1.0, include_self=False)
    >>> layer(jnp.array([1.0, 2.0, 3.0]))
    Array([5., 4., 3.], dtype=float32)
    """

    __module__ = "brainstate.nn"

    def __init__(
        self,
        in_size: Size,
        out_size: Size,
        w_init: Callable | ArrayLike = init.KaimingNormal(),
        b_init: Callable | ArrayLike | None = None,
        include_self: bool = True,
        name: str | None = None,
        param_type: type = ParamState,
    ) -> None:
        super().__init__(name=name)
        owner = type(self).__name__
        in_size, out_size = _in_out(owner, in_size, out_size)
        self.in_size, self.out_size = in_size, out_size
        self.include_self = bool(include_self)
        shape = (in_size[-1], out_size[-1])
        w = _weight(owner, w_init, shape, exact=False)
        if np.ndim(_split(w)[0]) != 0 and tuple(np.shape(_split(w)[0])) != shape:
            raise ValueError(
                f"{owner}: w_init must give a scalar or a weight of shape {shape}, got shape "
                f"{tuple(np.shape(_split(w)[0]))}."
            )
        params = {"weight": w}
        bias = _bias(owner, b_init, (out_size[-1],))
        if bias is not None:
            params["bias"] = bias
        self.weight = param_type(params)

    def update(self, pre_val: ArrayLike) -> Any:
        n_in, n_out = cast(tuple, self.in_size)[-1], cast(tuple, self.out_size)[-1]
        _check_input(self, pre_val, n_in)
        params = self.weight.value
        (xm, xu), (wm, wu) = _split(pre_val), _split(params["weight"])
        xm = jnp.asarray(xm)
        if np.ndim(wm) == 0:
            total = jnp.sum(xm, axis=-1, keepdims=True)
            post = jnp.broadcast_to(total, xm.shape[:-1] + (n_out,))
            if not self.include_self:
                k = min(n_in, n_out)
                own = xm[..., :k]
                pad = [(0, 0)] * (xm.ndim - 1) + [(0, n_out - k)]
                post = post - jnp.pad(own, pad)
            post = post * wm
        else:
            if not self.include_self:
                wm = wm * (1 - jnp.eye(n_in, n_out, dtype=jnp.asarray(wm).dtype))
            post = jnp.matmul(xm, wm)
        post = _attach(post, _mul_units(xu, wu))
        if "bias" in params:
            post = post + params["bias"]
        return post


class OneToOne(Module):
    """One-to-one (diagonal) connections: ``y = x * w (+ b)`` element-wise.

    Parameters
    ----------
    in_size : int or sequence of int
        The size of the input and the output; ``w`` (and ``b``) have this shape.
    w_init : Initializer, callable, array or scalar, default ``init.Normal()``
    b_init : Initializer, callable, array or None, optional
    name : str, optional
    param_type : type, default ``ParamState``

    Notes
    -----
    Differs from upstream: an input whose trailing dimensions are not ``in_size`` raises a
    ``ValueError`` naming the layer (upstream broadcast whatever it could).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> layer = brainstate.nn.OneToOne(3, w_init=jnp.array([1.0, 2.0, 3.0]), b_init=1.0)
    >>> layer(jnp.ones((2, 3)))
    Array([[2., 3., 4.],
           [2., 3., 4.]], dtype=float32)
    """

    __module__ = "brainstate.nn"

    def __init__(
        self,
        in_size: Size,
        w_init: Callable | ArrayLike = init.Normal(),
        b_init: Callable | ArrayLike | None = None,
        name: str | None = None,
        param_type: type = ParamState,
    ) -> None:
        super().__init__(name=name)
        owner = type(self).__name__
        size = _size(owner, "in_size", in_size)
        self.in_size = size
        self.out_size = size
        params = {"weight": _weight(owner, w_init, size, exact=False)}
        bias = _bias(owner, b_init, size)
        if bias is not None:
            params["bias"] = bias
        self.weight = param_type(params)

    def update(self, pre_val: ArrayLike) -> Any:
        shape = tuple(np.shape(_split(pre_val)[0]))
        in_size = cast(tuple, self.in_size)
        n = len(in_size)
        if shape[len(shape) - n:] != in_size:
            raise ValueError(
                f"OneToOne: expected an input whose trailing dimensions are {self.in_size}, "
                f"got shape {shape}."
            )
        params = self.weight.value
        post = pre_val * params["weight"]
        if "bias" in params:
            post = post + params["bias"]
        return post


class LoRA(Module):
    """Low-rank adaptation (Hu et al., 2021): ``y = x @ A @ B (+ base_module(x))``.

    ``A`` has shape ``(in_features, lora_rank)`` and ``B`` ``(lora_rank, out_features)``:
    ``rank * (in + out)`` parameters instead of ``in * out``. Given a ``base_module`` (e.g. a
    frozen :class:`Linear`), the low-rank product is added to its output.

    Parameters
    ----------
    in_features, lora_rank, out_features : int
    base_module : callable, optional
        Called on the same input; its output is added.
    kernel_init : Initializer, callable or array, default ``init.LecunNormal()``
        Initializes both ``A`` and ``B``.
    param_type : type, default ``ParamState``
        The state type holding ``{'lora_a': A, 'lora_b': B}``.
    in_size : int or sequence of int, optional
        Its last entry must be ``in_features``; ``out_size`` is then
        ``in_size[:-1] + (out_features,)``.

    Notes
    -----
    Differs from upstream: the sizes are checked (positive ints; ``in_size[-1] ==
    in_features``; a ``base_module`` with an ``out_size`` must end in ``out_features``), a
    non-callable ``base_module`` raises ``TypeError`` at construction (upstream: at the first
    call), ``kernel_init`` may also be an array, and the computation lives in ``update``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> import brainstate
    >>> brainstate.random.seed(0)
    >>> base = brainstate.nn.Linear(4, 3)
    >>> layer = brainstate.nn.LoRA(4, 2, 3, base_module=base)
    >>> layer(jnp.ones((5, 4))).shape
    (5, 3)
    >>> {k: v.shape for k, v in layer.weight.value.items()}
    {'lora_a': (4, 2), 'lora_b': (2, 3)}
    """

    __module__ = "brainstate.nn"

    def __init__(
        self,
        in_features: int,
        lora_rank: int,
        out_features: int,
        *,
        base_module: Module | None = None,
        kernel_init: Callable | ArrayLike = init.LecunNormal(),
        param_type: type = ParamState,
        in_size: Size | None = None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        in_features = _positive_int(owner, "in_features", in_features)
        lora_rank = _positive_int(owner, "lora_rank", lora_rank)
        out_features = _positive_int(owner, "out_features", out_features)
        if base_module is not None and not callable(base_module):
            raise TypeError(
                f"{owner}: base_module must be callable (e.g. a Module), got "
                f"{type(base_module).__name__}."
            )
        base_out = getattr(base_module, "out_size", None)
        if base_out is not None and tuple(base_out)[-1] != out_features:
            raise ValueError(
                f"{owner}: base_module has out_size={tuple(base_out)}, which does not end in "
                f"out_features={out_features}."
            )
        if in_size is None:
            in_size = (in_features,)
        else:
            in_size = _size(owner, "in_size", in_size)
            if in_size[-1] != in_features:
                raise ValueError(
                    f"{owner}: in_size={in_size} must end in in_features={in_features}."
                )
        self.in_size = in_size
        self.out_size = in_size[:-1] + (out_features,)
        self.in_features = in_features
        self.out_features = out_features
        self.base_module = base_module
        a = _weight(owner, kernel_init, (in_features, lora_rank), "kernel_init")
        b = _weight(owner, kernel_init, (lora_rank, out_features), "kernel_init")
        self.weight = param_type({"lora_a": a, "lora_b": b})

    def update(self, x: ArrayLike) -> Any:
        _check_input(self, x, self.in_features)
        params = self.weight.value
        out = _matmul(_matmul(x, params["lora_a"]), params["lora_b"])
        if self.base_module is not None:
            out = out + self.base_module(x)
        return out
