"""The ``Dropout`` family: random masking of inputs while a model is being fitted.

Every layer here is active only while the environment says the model is being fitted
(``brainstate.environ.get('fit')`` is ``True``, e.g. inside
``with brainstate.environ.context(fit=True):``); with ``fit=False`` it returns its input
unchanged, and with ``fit`` unset it raises the ``KeyError`` of :func:`brainstate.environ.get`.
``prob`` is always the probability to **keep** an element, in ``(0, 1]``. Masks are drawn from
:mod:`brainstate.random`, so seeding it (``brainstate.random.seed``) makes them reproducible,
and the layers work inside ``brainstate.transform.jit``, ``vmap`` and ``for_loop``.
"""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING, Any, Sequence, cast

import jax
import jax.numpy as jnp

from brainstate import environ, random
from brainstate._state import ShortTermState, check_state_value_tree
from brainstate.nn import _activations as F
from brainstate.nn._common import ElementWiseBlock

if TYPE_CHECKING:  # annotations only: brainstate.typing.ArrayLike is built lazily
    from brainstate.typing import ArrayLike

__all__ = [
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "DropoutFixed",
]

# The negative saturation of SELU, -scale * alpha: where alpha dropout sends dropped units.
_SELU_SATURATION = -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717


def _check_prob(prob: Any, owner: str) -> float:
    """``prob`` (the keep probability) as a float in ``(0, 1]``."""
    if isinstance(prob, bool):
        raise TypeError(f"{owner}: prob must be a number in (0, 1], got the bool {prob!r}.")
    try:
        if isinstance(prob, (str, bytes)):  # float("0.5") would parse it
            raise TypeError
        p = float(prob)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        raise TypeError(
            f"{owner}: prob must be a concrete number in (0, 1] (the probability to keep an "
            f"element), got {prob!r} ({type(prob).__name__})."
        ) from None
    if not 0.0 < p <= 1.0:  # also rejects nan
        raise ValueError(
            f"{owner}: prob is the probability to keep an element and must be in (0, 1], got "
            f"{prob!r}. Use prob=1 for no dropout; to drop a fraction r, pass prob=1 - r."
        )
    return p


def _fitting(owner: str) -> bool:
    """Whether the model is being fitted (``environ`` key ``'fit'``), with a hint when unset."""
    try:
        return environ.get(environ.FIT, desc="Whether this is a fitting process. Bool.")
    except KeyError as exc:
        exc.add_note(
            f"{owner} drops inputs only while fitting: call it inside "
            f"`with brainstate.environ.context(fit=True):` for training or fit=False for "
            f"evaluation (or set it once with brainstate.environ.set(fit=...))."
        )
        raise


def _axis(axis: Any, ndim: int, owner: str, what: str, shape: tuple) -> int:
    """``axis`` made non-negative after checking it against ``ndim``."""
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{owner}: {what} {axis} is out of range for an input of shape {shape} ({ndim} "
            f"dimensions); give an axis in [{-ndim}, {ndim - 1}]."
        )
    return axis % ndim


def _int(value: Any, owner: str, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{owner}: {what} must be an int, got {value!r}.")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{owner}: {what} must be an int, got {value!r} ({type(value).__name__})."
        ) from None


def _keep_scaled(x: Any, keep: jax.Array, prob: float) -> Any:
    """Kept elements divided by ``prob``, dropped ones 0; ``x``'s unit (if any) is kept."""
    m, unit = F._split(x)
    m = F._as_float(m)
    out = jnp.where(keep, m / F._cast(prob, m), jnp.zeros_like(m))
    return F._join(out, unit)


class Dropout(ElementWiseBlock):
    r"""Randomly zero elements while fitting, scaling the kept ones by ``1 / prob``.

    Each element is kept with probability ``prob`` (independently, or shared along
    ``broadcast_dims``), so the expected output equals the input (Srivastava et al., 2014).

    Parameters
    ----------
    prob : float, default 0.5
        The probability to keep an element, in ``(0, 1]``; 1 disables dropout.
    broadcast_dims : sequence of int, default ()
        Axes along which one mask value is shared (e.g. ``(0,)`` drops the same features for
        every row of a batch).
    name : str, optional
        The module's name.

    Raises
    ------
    ValueError
        If ``prob`` is outside ``(0, 1]``, or (when calling) an axis of ``broadcast_dims`` is
        out of range for the input.
    KeyError
        When called with the environment key ``'fit'`` unset.

    Notes
    -----
    Integer inputs give float outputs (default float dtype); a brainunit quantity keeps its
    unit. Differs from upstream: ``prob = 0`` (which would divide by zero) is rejected, a bad
    ``prob`` raises ``ValueError`` instead of failing an ``assert``, integer inputs are not
    truncated back to integers after scaling, and ``broadcast_dims`` is checked.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> layer = brainstate.nn.Dropout(prob=0.8)
    >>> x = jnp.ones((10, 20))
    >>> with brainstate.environ.context(fit=True):
    ...     y = layer(x)
    >>> y.shape, sorted(set(y.ravel().tolist()))
    ((10, 20), [0.0, 1.25])
    >>> with brainstate.environ.context(fit=False):
    ...     bool((layer(x) == x).all())
    True
    """

    __module__ = "brainstate.nn"

    def __init__(
        self,
        prob: float = 0.5,
        broadcast_dims: Sequence[int] = (),
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.prob = _check_prob(prob, type(self).__name__)
        dims = (broadcast_dims,) if isinstance(broadcast_dims, int) else tuple(broadcast_dims)
        self.broadcast_dims = tuple(_int(d, type(self).__name__, "broadcast_dims") for d in dims)

    def update(self, x: ArrayLike) -> Any:
        if self.prob == 1.0 or not _fitting(type(self).__name__):
            return x
        shape = list(jnp.shape(F._split(x)[0]))
        for d in self.broadcast_dims:
            shape[_axis(d, len(shape), type(self).__name__, "broadcast_dims axis",
                        tuple(jnp.shape(F._split(x)[0])))] = 1
        keep = random.bernoulli(self.prob, tuple(shape))
        return _keep_scaled(x, keep, self.prob)


class _DropoutNd(ElementWiseBlock):
    """Channel-wise dropout on inputs with ``minimal_dim`` dims, plus an optional batch axis."""

    __module__ = "brainstate.nn"
    minimal_dim: int = 1
    _spatial: str = ""

    def __init__(self, prob: float = 0.5, channel_axis: int = -1, name: str | None = None) -> None:
        super().__init__(name=name)
        owner = type(self).__name__
        self.prob = _check_prob(prob, owner)
        channel_axis = _int(channel_axis, owner, "channel_axis")
        n = self.minimal_dim
        if not -n <= channel_axis < n:
            raise ValueError(
                f"{owner}: channel_axis {channel_axis} is out of range for an unbatched input "
                f"of {n} dimensions; give an axis in [{-n}, {n - 1}] (counted without the "
                f"batch axis; -1 is the channel-last convention)."
            )
        self.channel_axis = channel_axis

    def _mask_shape(self, shape: tuple) -> list[int]:
        owner, n = type(self).__name__, self.minimal_dim
        if len(shape) not in (n, n + 1):
            raise ValueError(
                f"{owner}: expected a {n}D input ({self._spatial}, channels) or a {n + 1}D "
                f"batched one, but got a {len(shape)}D input of shape {shape}."
            )
        batched = len(shape) == n + 1
        # channel_axis counts axes of the unbatched input; a batch axis comes first.
        channel = self.channel_axis % n + (1 if batched else 0)
        kept_axes = (0, channel) if batched else (channel,)
        return [d if i in kept_axes else 1 for i, d in enumerate(shape)]

    def update(self, x: ArrayLike) -> Any:
        mask_shape = self._mask_shape(tuple(jnp.shape(F._split(x)[0])))
        if self.prob == 1.0 or not _fitting(type(self).__name__):
            return x
        keep = random.bernoulli(self.prob, tuple(mask_shape))
        return _keep_scaled(x, keep, self.prob)


_ND_NOTES = """
    Parameters
    ----------
    prob : float, default 0.5
        The probability to keep a channel, in ``(0, 1]``.
    channel_axis : int, default -1
        The channel axis, counted in the unbatched input (channel-last by default).
    name : str, optional
        The module's name.

    Raises
    ------
    ValueError
        If ``prob`` is outside ``(0, 1]`` or ``channel_axis`` out of range; when calling, if
        the input has the wrong number of dimensions.
    KeyError
        When called with the environment key ``'fit'`` unset.

    Notes
    -----
    A batched input draws one mask per (sample, channel); an unbatched one per channel. Kept
    channels are scaled by ``1 / prob``. Differs from upstream: a wrong input rank raises
    ``ValueError`` (upstream: ``RuntimeError``), ``prob = 0`` is rejected and
    ``channel_axis`` is checked when the layer is built.
"""


class Dropout1d(_DropoutNd):
    __doc__ = r"""Randomly zero whole channels of 1D feature maps while fitting.

    For an input ``(N, L, C)`` or ``(L, C)`` every channel (all ``L`` positions of one
    channel) is kept or zeroed together. When neighbouring positions are strongly correlated
    (early convolution layers), element-wise dropout barely regularises; dropping whole
    channels does (Tompson et al., 2015).
    """ + _ND_NOTES + r"""
    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> m = brainstate.nn.Dropout1d(prob=0.5)
    >>> with brainstate.environ.context(fit=True):
    ...     y = m(jnp.ones((4, 8, 3)))
    >>> bool(((y == 0).all(axis=1) | (y == 2).all(axis=1)).all())
    True
    """
    __module__ = "brainstate.nn"
    minimal_dim = 2
    _spatial = "length"


class Dropout2d(_DropoutNd):
    __doc__ = r"""Randomly zero whole channels of 2D feature maps while fitting.

    For an input ``(N, H, W, C)`` or ``(H, W, C)`` every channel (a whole ``H x W`` map) is
    kept or zeroed together (Tompson et al., 2015).
    """ + _ND_NOTES + r"""
    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> m = brainstate.nn.Dropout2d(prob=0.8)
    >>> with brainstate.environ.context(fit=True):
    ...     y = m(jnp.ones((2, 5, 5, 4)))
    >>> y.shape
    (2, 5, 5, 4)
    """
    __module__ = "brainstate.nn"
    minimal_dim = 3
    _spatial = "height, width"


class Dropout3d(_DropoutNd):
    __doc__ = r"""Randomly zero whole channels of 3D feature maps while fitting.

    For an input ``(N, D, H, W, C)`` or ``(D, H, W, C)`` every channel (a whole
    ``D x H x W`` volume) is kept or zeroed together (Tompson et al., 2015).
    """ + _ND_NOTES + r"""
    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> m = brainstate.nn.Dropout3d(prob=0.8)
    >>> with brainstate.environ.context(fit=True):
    ...     y = m(jnp.ones((2, 3, 4, 4, 5)))
    >>> y.shape
    (2, 3, 4, 4, 5)
    """
    __module__ = "brainstate.nn"
    minimal_dim = 4
    _spatial = "depth, height, width"


def _alpha_affine(prob: float) -> tuple[float, float]:
    """``(a, b)`` such that ``a * masked + b`` has zero mean and unit variance again.

    A unit-variance, zero-mean input whose dropped elements are set to the SELU saturation
    ``s`` has mean ``(1 - p) s`` and variance ``p (1 + (1 - p) s^2)`` (keep probability ``p``).
    """
    q = 1.0 - prob
    a = 1.0 / math.sqrt(prob * (1.0 + q * _SELU_SATURATION ** 2))
    return a, -a * q * _SELU_SATURATION


def _alpha_apply(x: Any, keep: jax.Array, layer: Any) -> jax.Array:
    m = F._unitless(x, type(layer).__name__)
    sat = F._cast(layer.alpha, m)
    return jnp.where(keep, m, sat) * F._cast(layer.a, m) + F._cast(layer.b, m)


class AlphaDropout(ElementWiseBlock):
    r"""Dropout that keeps the mean and variance of self-normalising (SELU) activations.

    While fitting, each element is kept with probability ``prob``; dropped ones are set to
    SELU's negative saturation :math:`\alpha' = -\lambda\alpha \approx -1.7581` and the result
    goes through the affine map :math:`a y + b` that restores zero mean and unit variance for a
    standardised input (Klambauer et al., 2017):

    .. math::
        a = \left(p\,(1 + (1 - p)\,\alpha'^2)\right)^{-1/2}, \qquad b = -a\,(1 - p)\,\alpha'.

    Parameters
    ----------
    prob : float, default 0.5
        The probability to keep an element, in ``(0, 1]``.
    name : str, optional
        The module's name.

    Attributes
    ----------
    alpha, a, b : float
        The saturation value and the affine coefficients.

    Raises
    ------
    ValueError
        If ``prob`` is outside ``(0, 1]``.
    TypeError
        When called on a quantity with a physical dimension (the statistics are those of
        dimensionless activations).

    Notes
    -----
    Differs from upstream: ``prob = 0`` (a division by zero in ``a``) is rejected, and integer
    inputs give floats instead of being truncated.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.random.seed(0)
    >>> m = brainstate.nn.AlphaDropout(prob=0.8)
    >>> x = brainstate.random.randn(200, 200)
    >>> with brainstate.environ.context(fit=True):
    ...     y = m(x)
    >>> abs(float(y.mean())) < 0.05, abs(float(y.std()) - 1.0) < 0.05
    (True, True)
    """

    __module__ = "brainstate.nn"

    def __init__(self, prob: float = 0.5, name: str | None = None) -> None:
        super().__init__(name=name)
        self.prob = _check_prob(prob, type(self).__name__)
        self.alpha = _SELU_SATURATION
        self.a, self.b = _alpha_affine(self.prob)

    def update(self, x: ArrayLike) -> Any:
        if self.prob == 1.0 or not _fitting(type(self).__name__):
            return x
        keep = random.bernoulli(self.prob, jnp.shape(F._split(x)[0]))
        return _alpha_apply(x, keep, self)


class FeatureAlphaDropout(ElementWiseBlock):
    r"""Alpha dropout of whole channels: every (sample, channel) is kept or saturated together.

    The channel-wise counterpart of :class:`AlphaDropout` for convolutional SELU networks:
    for an input ``(N, *, C)`` one mask value is drawn per sample (axis 0) and channel, and
    shared over the other axes. Dropped channels are set to SELU's saturation and the result
    goes through the same mean- and variance-restoring affine map.

    Parameters
    ----------
    prob : float, default 0.5
        The probability to keep a channel, in ``(0, 1]``.
    channel_axis : int, default -1
        The channel axis of the input (which has its batch axis first).
    name : str, optional
        The module's name.

    Raises
    ------
    ValueError
        If ``prob`` is outside ``(0, 1]``; when calling, if ``channel_axis`` is out of range or
        names the batch axis 0 of an input with two or more dimensions.
    TypeError
        When called on a quantity with a physical dimension.

    Notes
    -----
    Differs from upstream: ``prob = 0`` is rejected and ``channel_axis`` is checked.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> m = brainstate.nn.FeatureAlphaDropout(prob=0.5)
    >>> with brainstate.environ.context(fit=True):
    ...     y = m(jnp.zeros((4, 6, 3)))
    >>> bool((y == y[:, :1, :]).all())  # each (sample, channel) is constant over axis 1
    True
    """

    __module__ = "brainstate.nn"

    def __init__(self, prob: float = 0.5, channel_axis: int = -1, name: str | None = None) -> None:
        super().__init__(name=name)
        owner = type(self).__name__
        self.prob = _check_prob(prob, owner)
        self.channel_axis = _int(channel_axis, owner, "channel_axis")
        self.alpha = _SELU_SATURATION
        self.a, self.b = _alpha_affine(self.prob)

    def update(self, x: ArrayLike) -> Any:
        owner = type(self).__name__
        shape = tuple(jnp.shape(F._split(x)[0]))
        channel = _axis(self.channel_axis, len(shape), owner, "channel_axis", shape)
        if len(shape) >= 2 and channel == 0:
            raise ValueError(
                f"{owner}: channel_axis {self.channel_axis} names axis 0, the batch axis, of an "
                f"input of shape {shape}; the channel axis must be another axis."
            )
        if self.prob == 1.0 or not _fitting(owner):
            return x
        mask_shape = [d if i in (0, channel) else 1 for i, d in enumerate(shape)]
        keep = random.bernoulli(self.prob, tuple(mask_shape))
        return _alpha_apply(x, keep, self)


class DropoutFixed(ElementWiseBlock):
    r"""Dropout with a mask that stays fixed until it is redrawn: one mask for a whole sequence.

    In a spiking network one training iteration runs many time steps before a single update of
    the parameters. Drawing a new mask at every step would average the dropout away, so this
    layer draws its mask once, in :meth:`init_state` (or :meth:`reset_state`), and applies the
    same mask at every call until the next reset (Lee et al., 2020). Kept elements are scaled
    by ``1 / prob``; like the other layers it acts only while fitting.

    Parameters
    ----------
    in_size : int or sequence of int
        The shape of one (unbatched) input.
    prob : float, default 0.5
        The probability to keep an element, in ``(0, 1]``.
    name : str, optional
        The module's name.

    Attributes
    ----------
    mask : ShortTermState
        The boolean keep-mask, shape ``in_size`` or ``(batch_size, *in_size)``; created by
        :meth:`init_state` (not at all when ``prob == 1``).

    Raises
    ------
    ValueError
        If ``prob`` is outside ``(0, 1]``, ``batch_size`` is not a positive int,
        :meth:`reset_state` is given another batch size than :meth:`init_state`, or (when
        calling) the input's shape differs from the mask's.
    RuntimeError
        When called while fitting before :meth:`init_state`.

    Notes
    -----
    Differs from upstream: :meth:`reset_state` redraws the mask (upstream has none),
    ``prob = 0`` is rejected, and calling before ``init_state`` raises ``RuntimeError`` naming
    the fix (upstream: ``AttributeError``).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> layer = brainstate.nn.DropoutFixed(in_size=20, prob=0.8)
    >>> layer.init_state(batch_size=10)
    >>> x = jnp.ones((10, 20))
    >>> with brainstate.environ.context(fit=True):
    ...     y1, y2 = layer(x), layer(x)
    >>> y1.shape, bool((y1 == y2).all())
    ((10, 20), True)
    """

    __module__ = "brainstate.nn"

    def __init__(self, in_size: int | Sequence[int], prob: float = 0.5,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.prob = _check_prob(prob, type(self).__name__)
        self.in_size = in_size
        self.out_size = in_size

    def _draw(self, batch_size: int | None) -> jax.Array:
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(
                f"{type(self).__name__}: batch_size must be a positive int or None, got "
                f"{batch_size!r}."
            )
        in_size = cast(tuple, self.in_size)  # set (and checked) by __init__
        shape = in_size if batch_size is None else (batch_size,) + in_size
        return random.bernoulli(self.prob, shape)

    def init_state(self, batch_size: int | None = None, **kwargs: Any) -> None:
        """Draw the mask (with a leading batch axis when ``batch_size`` is given)."""
        if self.prob < 1.0:
            self.mask = ShortTermState(self._draw(batch_size))

    def reset_state(self, batch_size: int | None = None, **kwargs: Any) -> None:
        """Draw a fresh mask into the existing state (``batch_size`` as in :meth:`init_state`).

        A ``batch_size`` different from the current one re-binds the mask's shape.
        """
        if self.prob == 1.0:
            return
        if not isinstance(self.__dict__.get("mask"), ShortTermState):
            self.init_state(batch_size)
            return
        mask = self._draw(batch_size)
        # As the RNN cells: a deliberate change of batch size re-binds the mask's shape.
        with check_state_value_tree(mask.shape == self.mask.value.shape):
            self.mask.value = mask

    def update(self, x: ArrayLike) -> Any:
        owner = type(self).__name__
        if self.prob == 1.0 or not _fitting(owner):
            return x
        mask = self.__dict__.get("mask")
        if not isinstance(mask, ShortTermState):
            raise RuntimeError(
                f"{owner} has no mask yet: it is drawn by init_state. Call "
                f"brainstate.nn.init_all_states(model) (or layer.init_state(batch_size)) first."
            )
        shape = tuple(jnp.shape(F._split(x)[0]))
        if mask.value.shape != shape:
            raise ValueError(
                f"{owner}: the input has shape {shape}, but the mask has shape "
                f"{mask.value.shape}. Call init_state(batch_size=...) with the input's batch "
                f"size (in_size is {self.in_size})."
            )
        return _keep_scaled(x, mask.value, self.prob)
