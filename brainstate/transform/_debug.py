"""Debugging helpers: ``debug_nan``, ``debug_nan_if`` and ``breakpoint_if``.

``debug_nan`` runs a (stateful) function's traced jaxpr under ``jax.experimental.checkify``
with the float checks, which attributes the first NaN (or floating division by zero) to the
primitive that produced it and the user line that called it. A report is raised only when a
NaN or Inf reaches what the function returns or writes to its states: values computed and then
masked away (``jnp.where`` guards, the untaken lane of a batched ``cond``) stay silent.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any, Callable, Sequence, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify as _cfy

import brainstate
from brainstate._impl import core as _core
from brainstate._messages import describe_state
from brainstate.transform._error_if import unvmap_any
from brainstate.transform._make_jaxpr import PerEntry, StatefulFunction

__all__ = ["debug_nan", "debug_nan_if", "breakpoint_if"]

# Frames inside these directories are library code, never the "source" of a NaN.
# (Both are regular packages, so ``__file__`` is set.)
_LIBRARY_DIRS = tuple(os.path.dirname(cast(str, m.__file__)) + os.sep for m in (jax, brainstate))


def _inexact(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)


def _has_nan_flag(values: Sequence) -> jax.Array:
    """A scalar bool: whether any float or complex value holds a NaN or an Inf."""
    flags = [jnp.any(~jnp.isfinite(v)) for v in values if _inexact(v)]
    return jnp.any(jnp.stack(flags)) if flags else jnp.array(False)


def _user_frame(traceback: Any) -> str | None:
    """``File "f.py", line 3, in fn`` of the innermost frame outside JAX and this package."""
    frames = getattr(traceback, "frames", None) or ()
    for fr in frames:  # innermost first
        if not fr.file_name.startswith(_LIBRARY_DIRS):
            # the bare function name, as Python's own tracebacks print it
            func = fr.function_name.rsplit(".", 1)[-1]
            return f'File "{fr.file_name}", line {fr.line_num}, in {func}'
    return None


def _origin(err: Any) -> tuple[str | None, str | None, str | None]:
    """``(primitive, source line, checkify message)`` of the first recorded failure."""
    exc = err.get_exception()
    if exc is None:
        return None, None, None
    return (getattr(exc, "prim", None), _user_frame(getattr(exc, "traceback_info", None)),
            err.get())


def _counts(v: Any) -> str | None:
    """``shape=(2,) float32: 1 NaN, 0 Inf`` for a contaminated concrete value, else None."""
    if not _inexact(v):
        return None
    a = np.asarray(v)
    n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    if not (n_nan or n_inf):
        return None
    return f"shape={a.shape} {a.dtype}: {n_nan} NaN, {n_inf} Inf"


def _report(name: str, phase: str, err: Any, out: Any, written: Sequence,
            write_states: Sequence) -> str:
    prim, where, detail = _origin(err)
    tag = f" [{phase}]" if phase else ""
    lines = [f"debug_nan{tag}: NaN/Inf detected in the output of {name}."]
    if prim is not None:
        lines.append(f"  Introduced by primitive: `{prim}`")
    if where is not None:
        lines.append(f"  Source location: {where}")
    if detail:
        lines.append(f"  checkify: {detail}")
    bad = []
    for i, v in enumerate(jax.tree_util.tree_leaves(out)):
        c = _counts(v)
        if c:
            bad.append(f"    returned leaf {i}: {c}")
    for st, val in zip(write_states, written):
        for v in jax.tree_util.tree_leaves(val):
            c = _counts(v)
            if c:
                bad.append(f"    written {describe_state(st)}: {c}")
    if bad:
        lines.append("  Contaminated outputs:")
        lines.extend(bad)
    if prim is None and where is None:
        lines.append("  The producing primitive could not be located: checkify attributes NaN "
                     "and division by zero, not other Infs (overflow, log(0)), nor values that "
                     "were already NaN/Inf in the inputs or states.")
    return "\n".join(lines)


def _raise_from_callback(err: Any, out: Any, written: Sequence, *, name: str, phase: str,
                         write_states: Sequence) -> None:
    # Runs on the host at execution time (inside a compiled computation): JAX re-raises it.
    raise RuntimeError(_report(name, phase, err, out, written, write_states))


# checkify's float checks of a traced entry, built once per entry (JAX's caches then hit)
_FLOAT_CHECKED = PerEntry(lambda pure: _cfy.checkify(pure, errors=_cfy.float_checks))


class DebugNan:
    """Run a function with NaN/Inf detection; the engine of :func:`debug_nan`.

    Parameters
    ----------
    fn : callable
        The function; it may read and write states.
    *args
        Its arguments: the values it is checked on.
    phase : str
        A label added to the report (e.g. ``"forward"``).

    Notes
    -----
    The check never writes states: the values the function would write are inspected, then
    dropped.
    """


    def __init__(self, fn: Callable, *args: Any, phase: str = "") -> None:
        if not callable(fn):
            raise TypeError(f"debug_nan needs a callable, got {type(fn).__name__}.")
        if not isinstance(phase, str):
            raise TypeError(f"debug_nan: phase must be a str, got {type(phase).__name__}.")
        self.fn = fn
        self.phase = phase
        self._args = args
        self._sf = StatefulFunction(fn, name="debug_nan")
        self._name = getattr(fn, "__name__", None) or type(fn).__name__

    def _run(self) -> tuple:
        """``(entry, error, out, written values, flag)``; flag: whether an output is bad."""
        key_leaves = self._sf.key_and_leaves(self._args, {})
        entry = self._sf.entry(self._args, {}, key_leaves)
        leaves = key_leaves[1]
        checked = _FLOAT_CHECKED(entry)
        err, (out, written) = checked(_core.gather(entry.states), list(leaves))
        flag = unvmap_any(_has_nan_flag(jax.tree_util.tree_leaves((out, written))))
        return entry, err, out, written, flag

    def _raise_under_trace(self, entry: Any, err: Any, out: Any, written: Sequence,
                           flag: Any) -> None:
        cb = functools.partial(_raise_from_callback, name=self._name, phase=self.phase,
                               write_states=entry.write_states)
        jax.lax.cond(flag, lambda: jax.debug.callback(cb, err, out, written, ordered=True),
                     lambda: None)

    def check(self) -> None:
        """Run the function; raise ``RuntimeError`` if a NaN/Inf reaches an output.

        Under an enclosing trace (``jit``, loops, ...) the flag is not known yet: the report
        is raised at run time from a host callback (JAX wraps it in its runtime error).
        """
        entry, err, out, written, flag = self._run()
        if isinstance(flag, jax.core.Tracer):
            self._raise_under_trace(entry, err, out, written, flag)
        elif bool(flag):
            raise RuntimeError(_report(self._name, self.phase, err, out, written,
                                       entry.write_states))

    def check_if(self, has_nan: Any) -> None:
        """:meth:`check` when ``has_nan`` is true (any lane, under ``vmap``)."""
        pred = unvmap_any(has_nan)
        if not isinstance(pred, jax.core.Tracer):
            if bool(pred):
                self.check()
            return

        def run() -> None:
            entry, err, out, written, flag = self._run()
            self._raise_under_trace(entry, err, out, written, flag)

        jax.lax.cond(pred, run, lambda: None)


def debug_nan(fn: Callable, *args: Any, phase: str = "") -> None:
    """Run ``fn(*args)`` and raise if a NaN or Inf reaches its outputs, saying where it came from.

    The report names the primitive that produced the first NaN (or floating division by zero)
    and the user source line that called it, and lists the contaminated outputs: returned
    leaves and written states. NaNs that are computed and then masked away (``jnp.where``
    guards, the untaken lane of a batched ``cond``) do not raise. States are not written.
    Works eagerly and inside ``jit``, ``vmap`` and the loops (there the report is raised at run
    time from a host callback).

    Parameters
    ----------
    fn : callable
        The function; it may read and write states.
    *args
        Its arguments.
    phase : str
        A label added to the report.

    Raises
    ------
    RuntimeError
        If a NaN or Inf reaches the returned value or a written state.
    TypeError
        If ``fn`` is not callable or ``phase`` is not a str.

    Notes
    -----
    Attribution is checkify's: the first NaN produced in program order, which may be one
    that is later masked while another reaches the output. Infs other than a division by zero
    (overflow, ``log(0)``) are detected at the output but not attributed.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> brainstate.transform.debug_nan(jnp.sqrt, jnp.array([4.0]))  # clean: silent
    >>> def f(x):
    ...     return jnp.log(x) * 2
    >>> try:
    ...     brainstate.transform.debug_nan(f, jnp.array([-1.0, 1.0]))
    ... except RuntimeError as e:
    ...     print(str(e).splitlines()[1])
      Introduced by primitive: `log`
    """
    DebugNan(fn, *args, phase=phase).check()


def debug_nan_if(has_nan: Any, fn: Callable, *args: Any, phase: str = "") -> None:
    """:func:`debug_nan` run only when ``has_nan`` is true (any lane under ``vmap``).

    ``has_nan`` may be traced: inside ``jit`` the check is under a ``lax.cond``, so it costs
    nothing at run time while the predicate is false.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> x = jnp.array([-1.0])
    >>> brainstate.transform.debug_nan_if(False, jnp.log, x)  # not run
    """
    DebugNan(fn, *args, phase=phase).check_if(has_nan)


def breakpoint_if(pred: Any, **breakpoint_kwargs: Any) -> Any:
    """``jax.debug.breakpoint`` that stops only when ``pred`` is true.

    Under ``vmap`` it stops when any lane's ``pred`` is true, and then, as JAX's breakpoint
    does under ``vmap``, once per lane with that lane's values.

    Parameters
    ----------
    pred : bool or scalar bool array
        Whether to stop; may be traced.
    **breakpoint_kwargs
        Passed to ``jax.debug.breakpoint`` (``backend``, ``filter_frames``, ``num_frames``,
        ``ordered``, ``token``).

    Returns
    -------
    The ``token`` keyword's value (None when it is not given).

    Raises
    ------
    TypeError
        If ``pred`` is not a scalar.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, brainstate
    >>> def f(x):
    ...     brainstate.transform.breakpoint_if(x < 0)
    ...     return x
    >>> "cond" in str(jax.make_jaxpr(f)(1.0))
    True
    """
    if np.ndim(pred) != 0:
        raise TypeError(
            f"breakpoint_if: pred must be a scalar, got shape {np.shape(pred)}. Reduce it first, "
            "e.g. breakpoint_if(jnp.any(x < 0))."
        )
    token = breakpoint_kwargs.get("token")

    def stop() -> Any:
        # JAX flattens every captured frame's locals for the debugger and warns about the
        # generators it meets there (the caller's frames, not something the caller can fix).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Python iterable type",
                                    category=DeprecationWarning)
            return jax.debug.breakpoint(**breakpoint_kwargs)

    return jax.lax.cond(unvmap_any(pred), stop, lambda: token)
