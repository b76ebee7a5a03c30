"""Recurrent cells: ``RNNCell``, ``ValinaRNNCell``, ``GRUCell``, ``MGUCell``, ``LSTMCell``, ``URLSTMCell``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import jax.numpy as jnp

from brainstate import random
from brainstate._state import HiddenState, ParamState, check_state_value_tree
from brainstate.nn import _activations as functional
from brainstate.nn import init
from brainstate.nn._linear import Linear
from brainstate.nn._module import Module

if TYPE_CHECKING:  # annotations only: brainstate.typing.ArrayLike is built lazily
    from brainstate.typing import ArrayLike

__all__: list[str] = [
    "RNNCell", "ValinaRNNCell", "GRUCell", "MGUCell", "LSTMCell", "URLSTMCell",
]


# --- shared helpers --------------------------------------------------------------------------


def _check_size(owner: str, what: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{owner}: {what} must be a positive int, got {value!r}.")
    return value


def _activation(owner: str, activation: str | Callable) -> Callable:
    """The activation function named by ``activation`` (a name in ``brainstate.nn``) or itself."""
    if isinstance(activation, str):
        fn = getattr(functional, activation, None) if activation in functional.__all__ else None
        if fn is None:
            raise ValueError(
                f"{owner}: unknown activation {activation!r}; give the name of a function of "
                f"brainstate.nn (e.g. 'tanh', 'relu', 'sigmoid') or a callable."
            )
        return fn
    if not callable(activation):
        raise TypeError(
            f"{owner}: activation must be a str or a callable, got {type(activation).__name__}."
        )
    return activation


class RNNCell(Module):
    """Base class of recurrent cells: one time step per :meth:`update` call.

    A cell keeps its recurrent values in :class:`~brainstate.HiddenState` attributes, created
    by ``init_state(batch_size=None)`` (or :func:`brainstate.nn.init_all_states`) and reset
    by ``reset_state(batch_size=None)``. ``update(x)`` reads an input of shape
    ``(num_in,)`` or ``(batch_size, num_in)``, advances the hidden values one step and
    returns the new output of shape ``(num_out,)`` or ``(batch_size, num_out)``. Sequences
    are run with :func:`brainstate.transform.for_loop`.

    Subclasses built on the shared machinery list their hidden state names in
    ``_hidden_names`` and the initializer in ``_state_initializer``.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.random.seed(0)
    >>> cell = brainstate.nn.GRUCell(3, 4)
    >>> isinstance(cell, brainstate.nn.RNNCell)
    True
    >>> brainstate.nn.init_all_states(cell, batch_size=2)  # doctest: +ELLIPSIS
    GRUCell(...)
    >>> ys = brainstate.transform.for_loop(cell, jnp.ones((5, 2, 3)))
    >>> ys.shape
    (5, 2, 4)
    """

    __module__ = "brainstate.nn"

    _hidden_names: tuple = ()
    num_in: int
    num_out: int

    def _setup(self, num_in: int, num_out: int, state_init: Any,
               activation: str | Callable) -> None:
        owner = type(self).__name__
        self.num_in = _check_size(owner, "num_in", num_in)
        self.num_out = _check_size(owner, "num_out", num_out)
        self.in_size = (num_in,)
        self.out_size = (num_out,)
        self._state_initializer = state_init
        self.activation = _activation(owner, activation)

    def _initial(self, batch_size: int | None) -> Any:
        if batch_size is not None and (not isinstance(batch_size, int)
                                       or isinstance(batch_size, bool) or batch_size <= 0):
            raise ValueError(
                f"{type(self).__name__}: batch_size must be a positive int or None, got "
                f"{batch_size!r}."
            )
        return init.param(self._state_initializer, [self.num_out], batch_size,
                          allow_none=False)

    def init_state(self, batch_size: int | None = None, **kwargs: Any) -> None:
        """Create the hidden states, with a leading batch axis when ``batch_size`` is given."""
        for name in self._hidden_names:
            setattr(self, name, HiddenState(self._initial(batch_size)))

    def reset_state(self, batch_size: int | None = None, **kwargs: Any) -> None:
        """Set the hidden states back to their initial value (``batch_size`` as in init).

        A ``batch_size`` different from the current one re-binds the states' shape.
        """
        for name in self._hidden_names:
            state = self._hidden(name)
            value = self._initial(batch_size)
            # Only a deliberate change of batch size may change the shape; dtypes stay checked.
            same_shape = jnp.shape(state.value) == jnp.shape(value)
            with check_state_value_tree(same_shape):
                state.value = value

    def _hidden(self, name: str) -> HiddenState:
        state = self.__dict__.get(name)
        if not isinstance(state, HiddenState):
            raise RuntimeError(
                f"{type(self).__name__} has no hidden state {name!r} yet: its states are "
                f"created by init_state. Call brainstate.nn.init_all_states(cell) (or "
                f"cell.init_state(batch_size)) before update or reset_state."
            )
        return state

    def _concat(self, x: ArrayLike, h: Any) -> Any:
        """``[x, h]`` along the last axis, after checking ``x`` against ``num_in`` and ``h``."""
        x = jnp.asarray(x)
        owner = type(self).__name__
        if x.ndim == 0 or x.shape[-1] != self.num_in:
            raise ValueError(
                f"{owner}: the input's last dimension must be num_in={self.num_in}, got an "
                f"input of shape {x.shape}."
            )
        if x.shape[:-1] != h.shape[:-1]:
            raise ValueError(
                f"{owner}: input of shape {x.shape} does not match the hidden state of shape "
                f"{h.shape}: their leading (batch) dimensions must agree. Initialise the "
                f"states with the input's batch size: init_state(batch_size=...)."
            )
        if x.dtype != h.dtype:
            x = x.astype(h.dtype)
        return jnp.concatenate([x, h], axis=-1)


# --- cells -----------------------------------------------------------------------------------


class ValinaRNNCell(RNNCell):
    r"""The vanilla (Elman) recurrent cell.

    .. math::

        h_t = \phi\left(W [x_t, h_{t-1}] + b\right)

    ``W`` is one :class:`~brainstate.nn.Linear` layer (attribute ``W``) from
    ``num_in + num_out`` to ``num_out`` applied to the concatenation ``[x, h]``.

    Parameters
    ----------
    num_in, num_out : int
        Input and hidden sizes.
    state_init : initializer or array, default ``init.ZeroInit()``
        Initial hidden value.
    w_init : initializer or array, default ``init.XavierNormal()``
    b_init : initializer, array or None, default ``init.ZeroInit()``
    activation : str or callable, default ``'relu'``
        :math:`\phi`, a function of :mod:`brainstate.nn` by name or any callable.
    name : str, optional

    Raises
    ------
    ValueError
        Non-positive sizes, an unknown activation name, or (at call time) an input of the
        wrong size or batch.
    RuntimeError
        :meth:`update` before the states exist.

    Notes
    -----
    Differs from upstream: sizes, activations and inputs are checked with clear errors, and
    calling before ``init_state`` raises ``RuntimeError`` naming the fix (upstream:
    ``AttributeError``). The class name keeps upstream's spelling.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.random.seed(0)
    >>> cell = brainstate.nn.ValinaRNNCell(3, 4)
    >>> cell.init_state()
    >>> cell(jnp.ones(3)).shape
    (4,)
    """

    __module__ = "brainstate.nn"
    _hidden_names = ("h",)

    def __init__(self, num_in: int, num_out: int,
                 state_init: ArrayLike | Callable = init.ZeroInit(),
                 w_init: ArrayLike | Callable = init.XavierNormal(),
                 b_init: ArrayLike | Callable | None = init.ZeroInit(),
                 activation: str | Callable = "relu", name: str | None = None) -> None:
        super().__init__(name=name)
        self._setup(num_in, num_out, state_init, activation)
        self.W = Linear(num_in + num_out, num_out, w_init=w_init, b_init=b_init)

    def update(self, x: ArrayLike) -> Any:
        h = self._hidden("h")
        new = self.activation(self.W(self._concat(x, h.value)))
        h.value = new
        return new


class GRUCell(RNNCell):
    r"""The gated recurrent unit (Cho et al., 2014).

    .. math::

        r_t, z_t &= \sigma\left(W_{rz} [x_t, h_{t-1}] + b_{rz}\right)
            \quad\text{(the two halves)}\\
        \tilde h_t &= \phi\left(W_h [x_t, r_t \odot h_{t-1}] + b_h\right)\\
        h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    ``Wrz`` is a :class:`~brainstate.nn.Linear` from ``num_in + num_out`` to
    ``2 * num_out`` (reset gate first, update gate second); ``Wh`` maps
    ``num_in + num_out`` to ``num_out``.

    Parameters
    ----------
    num_in, num_out : int
    w_init : initializer or array, default ``init.Orthogonal()``
    b_init : initializer, array or None, default ``init.ZeroInit()``
    state_init : initializer or array, default ``init.ZeroInit()``
    activation : str or callable, default ``'tanh'``
    name : str, optional

    Notes
    -----
    Differs from upstream: checked sizes, activations and inputs; ``RuntimeError`` before
    ``init_state`` (see :class:`ValinaRNNCell`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.random.seed(0)
    >>> cell = brainstate.nn.GRUCell(3, 4)
    >>> cell.init_state(batch_size=2)
    >>> cell(jnp.ones((2, 3))).shape
    (2, 4)
    """

    __module__ = "brainstate.nn"
    _hidden_names = ("h",)

    def __init__(self, num_in: int, num_out: int,
                 w_init: ArrayLike | Callable = init.Orthogonal(),
                 b_init: ArrayLike | Callable | None = init.ZeroInit(),
                 state_init: ArrayLike | Callable = init.ZeroInit(),
                 activation: str | Callable = "tanh", name: str | None = None) -> None:
        super().__init__(name=name)
        self._setup(num_in, num_out, state_init, activation)
        self.Wrz = Linear(num_in + num_out, num_out * 2, w_init=w_init, b_init=b_init)
        self.Wh = Linear(num_in + num_out, num_out, w_init=w_init, b_init=b_init)

    def update(self, x: ArrayLike) -> Any:
        h = self._hidden("h")
        old = h.value
        r, z = jnp.split(functional.sigmoid(self.Wrz(self._concat(x, old))), 2, axis=-1)
        cand = self.activation(self.Wh(self._concat(x, r * old)))
        new = (1 - z) * old + z * cand
        h.value = new
        return new


class MGUCell(RNNCell):
    r"""The minimal gated unit (Zhou et al., 2016): a GRU with a single forget gate.

    .. math::

        f_t &= \sigma\left(W_f [x_t, h_{t-1}] + b_f\right)\\
        \tilde h_t &= \phi\left(W_h [x_t, f_t \odot h_{t-1}] + b_h\right)\\
        h_t &= (1 - f_t) \odot h_{t-1} + f_t \odot \tilde h_t

    ``Wf`` and ``Wh`` are :class:`~brainstate.nn.Linear` layers from ``num_in + num_out``
    to ``num_out``.

    Parameters
    ----------
    num_in, num_out : int
    w_init : initializer or array, default ``init.Orthogonal()``
    b_init : initializer, array or None, default ``init.ZeroInit()``
    state_init : initializer or array, default ``init.ZeroInit()``
    activation : str or callable, default ``'tanh'``
    name : str, optional

    Notes
    -----
    Differs from upstream: checked sizes, activations and inputs; ``RuntimeError`` before
    ``init_state`` (see :class:`ValinaRNNCell`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.random.seed(0)
    >>> cell = brainstate.nn.MGUCell(3, 4)
    >>> cell.init_state()
    >>> cell(jnp.ones(3)).shape
    (4,)
    """

    __module__ = "brainstate.nn"
    _hidden_names = ("h",)

    def __init__(self, num_in: int, num_out: int,
                 w_init: ArrayLike | Callable = init.Orthogonal(),
                 b_init: ArrayLike | Callable | None = init.ZeroInit(),
                 state_init: ArrayLike | Callable = init.ZeroInit(),
                 activation: str | Callable = "tanh", name: str | None = None) -> None:
        super().__init__(name=name)
        self._setup(num_in, num_out, state_init, activation)
        self.Wf = Linear(num_in + num_out, num_out, w_init=w_init, b_init=b_init)
        self.Wh = Linear(num_in + num_out, num_out, w_init=w_init, b_init=b_init)

    def update(self, x: ArrayLike) -> Any:
        h = self._hidden("h")
        old = h.value
        f = functional.sigmoid(self.Wf(self._concat(x, old)))
        cand = self.activation(self.Wh(self._concat(x, f * old)))
        new = (1 - f) * old + f * cand
        h.value = new
        return new


class LSTMCell(RNNCell):
    r"""The long short-term memory cell (Hochreiter & Schmidhuber, 1997).

    .. math::

        i_t, g_t, f_t, o_t &= W [x_t, h_{t-1}] + b \quad\text{(the four quarters)}\\
        c_t &= \sigma(f_t + 1) \odot c_{t-1} + \sigma(i_t) \odot \phi(g_t)\\
        h_t &= \sigma(o_t) \odot \phi(c_t)

    ``W`` is one :class:`~brainstate.nn.Linear` from ``num_in + num_out`` to
    ``4 * num_out`` whose output is split, in order, into the input gate ``i``, the
    candidate ``g``, the forget gate ``f`` (offset by +1, so the cell starts by remembering)
    and the output gate ``o``. The hidden states are ``h`` (the output) and ``c`` (the cell).

    Parameters
    ----------
    num_in, num_out : int
    w_init : initializer or array, default ``init.XavierNormal()``
    b_init : initializer, array or None, default ``init.ZeroInit()``
    state_init : initializer or array, default ``init.ZeroInit()``
        Initial value of both ``h`` and ``c``.
    activation : str or callable, default ``'tanh'``
    name : str, optional

    Notes
    -----
    Differs from upstream: checked sizes, activations and inputs; ``RuntimeError`` before
    ``init_state`` (see :class:`ValinaRNNCell`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.random.seed(0)
    >>> cell = brainstate.nn.LSTMCell(3, 4)
    >>> cell.init_state(batch_size=2)
    >>> cell(jnp.ones((2, 3))).shape, cell.c.value.shape
    ((2, 4), (2, 4))
    """

    __module__ = "brainstate.nn"
    _hidden_names = ("c", "h")

    def __init__(self, num_in: int, num_out: int,
                 w_init: ArrayLike | Callable = init.XavierNormal(),
                 b_init: ArrayLike | Callable | None = init.ZeroInit(),
                 state_init: ArrayLike | Callable = init.ZeroInit(),
                 activation: str | Callable = "tanh", name: str | None = None) -> None:
        super().__init__(name=name)
        self._setup(num_in, num_out, state_init, activation)
        self.W = Linear(num_in + num_out, num_out * 4, w_init=w_init, b_init=b_init)

    def update(self, x: ArrayLike) -> Any:
        h, c = self._hidden("h"), self._hidden("c")
        i, g, f, o = jnp.split(self.W(self._concat(x, h.value)), 4, axis=-1)
        sig = functional.sigmoid
        new_c = sig(f + 1.0) * c.value + sig(i) * self.activation(g)
        new_h = sig(o) * self.activation(new_c)
        c.value = new_c
        h.value = new_h
        return new_h


class URLSTMCell(RNNCell):
    r"""The LSTM with uniform gate initialisation and a refine gate (Gu et al., 2020).

    .. math::

        f_t, r_t, u_t, o_t &= W [x_t, h_{t-1}] \quad\text{(the four quarters, no bias)}\\
        \bar f_t &= \sigma(f_t + b_f), \qquad \bar r_t = \sigma(r_t - b_f)\\
        g_t &= 2 \bar r_t \bar f_t + (1 - 2 \bar r_t) \bar f_t^2\\
        c_t &= g_t \odot c_{t-1} + (1 - g_t) \odot \phi(u_t)\\
        h_t &= \sigma(o_t) \odot \phi(c_t)

    ``W`` is a bias-free :class:`~brainstate.nn.Linear` from ``num_in + num_out`` to
    ``4 * num_out``; the forget bias :math:`b_f` (the ``ParamState`` ``bias``, shape
    ``(num_out,)``) is drawn at construction as ``logit(u)`` with
    ``u ~ Uniform(1/num_out, 1 - 1/num_out)`` from :mod:`brainstate.random`, which spreads
    the gates' time scales. The hidden states are ``h`` and ``c``.

    Parameters
    ----------
    num_in, num_out : int
    w_init : initializer or array, default ``init.XavierNormal()``
    state_init : initializer or array, default ``init.ZeroInit()``
    activation : str or callable, default ``'tanh'``
    name : str, optional

    Notes
    -----
    Differs from upstream: with ``num_out == 1`` the uniform range is empty and upstream drew
    an infinite bias; here the bias is then 0. Sizes, activations and inputs are checked;
    ``RuntimeError`` before ``init_state`` (see :class:`ValinaRNNCell`).

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.random.seed(0)
    >>> cell = brainstate.nn.URLSTMCell(3, 4)
    >>> cell.init_state()
    >>> cell(jnp.ones(3)).shape, cell.bias.value.shape
    ((4,), (4,))
    """

    __module__ = "brainstate.nn"
    _hidden_names = ("c", "h")

    def __init__(self, num_in: int, num_out: int,
                 w_init: ArrayLike | Callable = init.XavierNormal(),
                 state_init: ArrayLike | Callable = init.ZeroInit(),
                 activation: str | Callable = "tanh", name: str | None = None) -> None:
        super().__init__(name=name)
        self._setup(num_in, num_out, state_init, activation)
        self.W = Linear(num_in + num_out, num_out * 4, w_init=w_init, b_init=None)
        self.bias = ParamState(self._forget_bias())

    def _forget_bias(self) -> Any:
        """``logit(u)``, ``u ~ Uniform(1/n, 1 - 1/n)``: a spread of forget-gate time scales."""
        n = self.num_out
        if n == 1:
            return jnp.zeros((1,), dtype=self.W.weight.value["weight"].dtype)
        u = random.uniform(1.0 / n, 1.0 - 1.0 / n, (n,))
        return -jnp.log(1.0 / u - 1.0)

    def update(self, x: ArrayLike) -> Any:
        h, c = self._hidden("h"), self._hidden("c")
        f, r, u, o = jnp.split(self.W(self._concat(x, h.value)), 4, axis=-1)
        sig = functional.sigmoid
        b = self.bias.value
        f_gate = sig(f + b)
        r_gate = sig(r - b)
        g = 2 * r_gate * f_gate + (1 - 2 * r_gate) * f_gate ** 2
        new_c = g * c.value + (1 - g) * self.activation(u)
        new_h = sig(o) * self.activation(new_c)
        c.value = new_c
        h.value = new_h
        return new_h
