"""``ProgressBar``: progress reports from inside compiled loops, through a host callback.

A loop given ``pbar=`` counts its finished iterations in the carry and, every ``freq``
iterations (and at the last one), calls back to the host with ``jax.debug.callback`` from
inside a ``lax.cond`` branch, so the other iterations pay one compare and no host round trip.
The host side draws a ``tqdm`` bar when tqdm is installed (``pip install brainstate[progress]``)
and otherwise prints plain-text lines to stderr, at most one per ``min_interval`` seconds.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["ProgressBar"]

_DEFAULT_COUNT = 20


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _tqdm_available() -> bool:
    return importlib.util.find_spec("tqdm") is not None


class ProgressBar:
    """A progress bar for ``scan``, ``for_loop`` and their checkpointed variants.

    Parameters
    ----------
    freq : int, optional
        Report every ``freq`` iterations (the last iteration always reports).
    count : int, optional
        Report about ``count`` times over the whole loop. Cannot be combined with ``freq``.
        With neither, the loop reports about 20 times.
    desc : str or (str, callable), optional
        The description. A pair ``(fmt, fn)`` formats ``fmt`` with the dict returned by
        ``fn({'i': i, 'carry': carry, 'y': y})``; ``fn`` runs inside the traced loop body (it
        may compute from the carry and the step output), ``fmt.format(**d)`` runs on the host.
    file : file-like, optional
        Where the plain-text fallback (and tqdm) write; ``sys.stderr`` by default.
    min_interval : float
        Smallest number of seconds between two plain-text lines (the last one always prints).
    use_tqdm : bool, optional
        ``None`` (default): tqdm when installed, plain text otherwise. ``True``: require tqdm.
        ``False``: always plain text.
    **tqdm_kwargs
        Passed to ``tqdm.tqdm`` (``total`` is set from the loop length).

    Raises
    ------
    TypeError
        If ``freq``/``count`` are not ints or ``desc`` is neither a string nor a pair.
    ValueError
        If ``freq``/``count`` are not positive or both are given.
    ImportError
        If ``use_tqdm=True`` and tqdm is not installed.

    Examples
    --------
    >>> import jax.numpy as jnp, brainstate
    >>> total = brainstate.State(jnp.zeros(()))
    >>> def step(x):
    ...     total.value = total.value + x
    >>> pbar = brainstate.transform.ProgressBar(freq=500, use_tqdm=False)
    >>> _ = brainstate.transform.for_loop(step, jnp.ones(1000), pbar=pbar)  # doctest: +SKIP
    """

    __module__ = "brainstate.transform"

    def __init__(self, freq: int | None = None, count: int | None = None,
                 desc: Any = None, *, file: Any = None, min_interval: float = 0.1,
                 use_tqdm: bool | None = None, **tqdm_kwargs: Any) -> None:
        for name, v in (("freq", freq), ("count", count)):
            if v is None:
                continue
            if not _is_int(v):
                raise TypeError(f"ProgressBar({name}=...) must be an int, got "
                                f"{type(v).__name__} {v!r}.")
            if v < 1:
                raise ValueError(f"ProgressBar({name}=...) must be >= 1, got {v}.")
        if freq is not None and count is not None:
            raise ValueError(f"ProgressBar takes freq or count, not both (got freq={freq}, "
                             f"count={count}); drop one of them.")
        if desc is not None and not isinstance(desc, str):
            if not (isinstance(desc, (tuple, list)) and len(desc) == 2
                    and isinstance(desc[0], str) and callable(desc[1])):
                raise TypeError("ProgressBar(desc=...) must be a string or a pair "
                                f"(format_string, function), got {desc!r}.")
        if use_tqdm and not _tqdm_available():
            raise ImportError("ProgressBar(use_tqdm=True) needs tqdm: "
                              "pip install 'brainstate[progress]'.")
        self.freq = None if freq is None else int(freq)
        self.count = None if count is None else int(count)
        self.desc = desc
        self.file = file
        self.min_interval = float(min_interval)
        self.use_tqdm = _tqdm_available() if use_tqdm is None else bool(use_tqdm)
        for k in ("total", "iterable"):
            tqdm_kwargs.pop(k, None)
        self.tqdm_kwargs = tqdm_kwargs

    def __repr__(self) -> str:
        return f"ProgressBar(freq={self.freq}, count={self.count}, desc={self.desc!r})"

    def init(self, n: int) -> "_ProgressRunner":
        """A runner for a loop of ``n`` iterations (one per traced loop)."""
        n = int(n)
        if self.freq is not None:
            freq = self.freq
        else:
            freq = max(1, math.ceil(n / (self.count or _DEFAULT_COUNT)))
        return _ProgressRunner(self, n, freq)


def as_runner(pbar: Any, n: int, where: str) -> "_ProgressRunner | None":
    """The runner for a loop's ``pbar=`` argument (None, a ProgressBar or a positive int)."""
    if pbar is None:
        return None
    if isinstance(pbar, ProgressBar):
        return pbar.init(n)
    if _is_int(pbar):
        if pbar < 1:
            raise ValueError(f"{where}: pbar={pbar} must be >= 1 (report every pbar steps).")
        return ProgressBar(freq=int(pbar)).init(n)
    raise TypeError(f"{where}: pbar must be a ProgressBar or an int (report every n steps), "
                    f"got {type(pbar).__name__} {pbar!r}.")


class _ProgressRunner:
    """Per-loop progress state: the traced step hook and the host-side display."""

    def __init__(self, bar: ProgressBar, n: int, freq: int) -> None:
        self.bar = bar
        self.n = n
        self.freq = freq
        self._lock = threading.Lock()
        self._pos = 0
        self._tqdm = None
        self._t0 = 0.0
        self._last_print = -math.inf

    # --- inside the traced loop body ---

    def data(self, i: Any, carry: Any, y: Any) -> dict:
        """The values ``desc``'s function computes from the loop (traced)."""
        desc = self.bar.desc
        if desc is None or isinstance(desc, str):
            return {}
        d = desc[1]({"i": i, "carry": carry, "y": y})
        if not isinstance(d, dict):
            raise TypeError("ProgressBar desc function must return a dict of values to format, "
                            f"got {type(d).__name__}.")
        return d

    def step(self, done: Any, data: dict) -> None:
        """Report ``done`` finished iterations when due (traced; ``done`` is an int32 scalar)."""
        due = (done % self.freq == 0) | (done == self.n)
        # Under vmap: one report showing the first lane's values, not one report per lane.
        from brainstate.transform._error_if import unvmap_first

        data = jax.tree.map(unvmap_first, data)

        def report(operands):
            jax.debug.callback(self.host_update, *operands)

        jax.lax.cond(due, report, lambda operands: None, (done, data))

    # --- on the host ---

    def host_update(self, done: Any, data: dict | None = None) -> None:
        """Move the display to ``done`` finished iterations (idempotent; a restart re-opens)."""
        done = int(np.asarray(done))
        with self._lock:
            # A smaller count than the last one means the loop was started again after a run
            # that did not finish (an equal one is a repeat, e.g. one call per vmap lane).
            if self._pos == 0 or done < self._pos:
                self._open()
            self._pos = done
            text = self._describe(data)
            if self._tqdm is not None:
                if text is not None:
                    self._tqdm.set_description(text, refresh=False)
                self._tqdm.update(done - self._tqdm.n)
            else:
                now = time.monotonic()
                if done >= self.n or now - self._last_print >= self.bar.min_interval:
                    self._last_print = now
                    self._print(done, text, now)
            if done >= self.n:
                self._close()

    def _describe(self, data: dict | None) -> str | None:
        desc = self.bar.desc
        if desc is None:
            return None
        if isinstance(desc, str):
            return desc
        values = {k: (v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v)
                  for k, v in (data or {}).items()}
        return desc[0].format(**values)

    def _stream(self) -> Any:
        return self.bar.file if self.bar.file is not None else sys.stderr

    def _open(self) -> None:
        self._close()
        self._pos = 0
        self._t0 = time.monotonic()
        self._last_print = -math.inf
        if self.bar.use_tqdm:
            from tqdm import tqdm

            kw = dict(self.bar.tqdm_kwargs)
            kw.setdefault("file", self._stream())
            if isinstance(self.bar.desc, str):
                kw.setdefault("desc", self.bar.desc)
            self._tqdm = tqdm(total=self.n, **kw)

    def _print(self, done: int, text: str | None, now: float) -> None:
        label = text if text is not None else f"Running for {self.n:,} iterations"
        pct = 100.0 * done / self.n if self.n else 100.0
        line = f"{label}: {done:,}/{self.n:,} ({pct:.0f}%) {now - self._t0:.1f}s"
        stream = self._stream()
        stream.write(line + "\n")
        stream.flush()

    def _close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        self._pos = 0


def counter_init() -> Any:
    """The initial iteration counter a loop with a progress bar carries."""
    return jnp.zeros((), jnp.int32)


def describe_callable(runner: "_ProgressRunner | None") -> Callable | None:
    """``runner.data`` when the description needs loop values, else None."""
    if runner is None:
        return None
    desc = runner.bar.desc
    return runner.data if isinstance(desc, (tuple, list)) else None
